"""Stream the packet records of a pcap or pcapng file in constant memory.

Our own reader rather than Scapy's: it never builds a Scapy object (the fast
path must not pay for one), reads the file in fixed-size chunks however large
it is, and turns every way a file can be broken into one ``InputError`` line
raised only after all the packets before the damage were handed out.

Formats: pcap (libpcap, both byte orders, microsecond and nanosecond
magics) and pcapng (Enhanced, Simple and obsolete Packet blocks, any number
of sections and interfaces, ``if_tsresol`` and ``if_tsoffset``).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

from mipcheck.errors import InputError

CHUNK = 1 << 20
MAX_RECORD = 1 << 26  # larger captured lengths mean a corrupt file, not a packet

PCAP_MAGIC_USEC = 0xA1B2C3D4
PCAP_MAGIC_NSEC = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BYTE_ORDER = 0x1A2B3C4D
PCAPNG_IDB = 1
PCAPNG_OPB = 2  # obsolete Packet Block
PCAPNG_SPB = 3
PCAPNG_EPB = 6


class Record(NamedTuple):
    """One captured packet: link-layer octets as captured.

    The reader yields plain tuples of this layout (a NamedTuple costs a
    Python-level call per packet); unpack them as (time, linktype, data, wirelen).
    """

    time: float
    linktype: int
    data: bytes
    wirelen: int


class _Buffer:
    """A sliding window over a binary file: ``need(n)`` guarantees n octets at ``pos``."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.buf = b""
        self.pos = 0
        self.consumed = 0  # file offset of buf[0]

    def need(self, n: int) -> bool:
        if self.pos + n <= len(self.buf):
            return True
        if self.pos > len(self.buf):  # skipped past the window (pcap_split): skip in the file too
            self.handle.seek(self.pos - len(self.buf), os.SEEK_CUR)
        rest = self.buf[self.pos :]
        self.consumed += self.pos
        more = self.handle.read(max(CHUNK, n - len(rest)))
        self.buf = rest + more
        self.pos = 0
        return n <= len(self.buf)

    @property
    def at_end(self) -> bool:
        return self.pos >= len(self.buf) and not self.need(1)

    @property
    def offset(self) -> int:
        return self.consumed + self.pos


class CaptureReader:
    """Iterate the records of one capture file; ``position`` and ``size`` feed a progress bar."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._handle: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by close()/__exit__
            self.size = os.fstat(self._handle.fileno()).st_size
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
        self._buf = _Buffer(self._handle)
        if not self._buf.need(4):
            self.close()
            raise InputError(f"{path}: not a capture file (only {self.size} octets)")
        magic_le = struct.unpack_from("<I", self._buf.buf, 0)[0]
        magic_be = struct.unpack_from(">I", self._buf.buf, 0)[0]
        if magic_le == PCAPNG_SHB:
            self.format = "pcapng"
        elif PCAP_MAGIC_USEC in (magic_le, magic_be) or PCAP_MAGIC_NSEC in (magic_le, magic_be):
            self.format = "pcap"
        else:
            self.close()
            raise InputError(f"{path}: not a pcap or pcapng file (magic 0x{magic_be:08x})")
        self.count = 0

    @property
    def position(self) -> int:
        return self._buf.offset

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[tuple[float, int, bytes, int]]:
        if self.format == "pcap":
            return self._pcap()
        return self._pcapng()

    def _cut(self, what: str) -> InputError:
        return InputError(f"{self.path}: {what} (file cut short or corrupt after packet {self.count})")

    # -- pcap ---------------------------------------------------------------

    def _pcap_header(self) -> tuple[str, float, int]:
        """Byte order, timestamp ticks per second and link type from the 24-octet file header."""
        b = self._buf
        if b.consumed or not b.need(24):
            if b.consumed:
                raise InputError(f"{self.path}: pcap header is no longer in the buffer")
            raise self._cut("pcap file header is incomplete")
        magic = struct.unpack_from("<I", b.buf, 0)[0]
        endian = "<" if magic in (PCAP_MAGIC_USEC, PCAP_MAGIC_NSEC) else ">"
        magic = struct.unpack_from(endian + "I", b.buf, 0)[0]
        per_second = 1e9 if magic == PCAP_MAGIC_NSEC else 1e6
        _major, _minor, _zone, _sigfigs, _snaplen, network = struct.unpack_from(endian + "HHiIII", b.buf, 4)
        return endian, per_second, network & 0x0FFFFFFF  # upper bits of the link type may carry FCS length

    def pcap_split(self) -> tuple[int, int, float] | None:
        """(offset, packets before it, first packet's time) of the first record past the middle of a pcap.

        Reads only record headers, with its own file handle; None when the
        file is not a classic pcap or has fewer than two packets.
        """
        if self.format != "pcap":
            return None
        endian, per_second, _linktype = self._pcap_header()
        unpack = struct.Struct(endian + "IIII").unpack_from
        middle = self.size // 2
        with open(self.path, "rb") as handle:
            scan = _Buffer(handle)
            if not scan.need(24):
                return None
            scan.pos = 24
            count, first = 0, None
            while scan.offset < middle:
                if not scan.need(16):
                    return None
                sec, frac, incl, _orig = unpack(scan.buf, scan.pos)
                if incl > MAX_RECORD:
                    return None
                if first is None:
                    first = sec + frac / per_second
                scan.pos += 16 + incl
                count += 1
            if first is None or count < 1 or not scan.need(16):
                return None
            return scan.offset, count, first

    def iter_from(
        self, start: int, stop: int | None = None, count_before: int = 0
    ) -> Iterator[tuple[float, int, bytes, int]]:
        """Records of a classic pcap from offset ``start`` (a record boundary from ``pcap_split``) to ``stop``."""
        self.count = count_before
        return self._pcap(start, stop)

    def _pcap(self, start: int = 24, stop: int | None = None) -> Iterator[tuple[float, int, bytes, int]]:
        endian, per_second, linktype = self._pcap_header()
        b = self._buf
        if start == 24:
            b.pos = 24
        else:
            self._handle.seek(start)
            b.buf, b.pos, b.consumed = b"", 0, start
        header = struct.Struct(endian + "IIII")
        unpack = header.unpack_from
        while True:
            if stop is not None and b.consumed + b.pos >= stop:
                return
            if b.pos + 16 > len(b.buf) and not b.need(16):
                if b.pos < len(b.buf):
                    raise self._cut("record header is incomplete")
                return
            sec, frac, incl, orig = unpack(b.buf, b.pos)
            if incl > MAX_RECORD:
                raise self._cut(f"record claims {incl} captured octets")
            start = b.pos + 16
            end = start + incl
            if end > len(b.buf):
                if not b.need(16 + incl):
                    raise self._cut(f"packet {self.count + 1} is incomplete")
                start = b.pos + 16
                end = start + incl
            data = b.buf[start:end]
            b.pos = end
            self.count += 1
            yield (sec + frac / per_second, linktype, data, orig)

    # -- pcapng -------------------------------------------------------------

    def _pcapng(self) -> Iterator[tuple[float, int, bytes, int]]:
        b = self._buf
        endian = "<"
        interfaces: list[tuple[int, float, float, int]] = []  # linktype, ticks per second, offset, snaplen
        while True:
            if not b.need(12):
                if b.pos < len(b.buf):
                    raise self._cut("block header is incomplete")
                return
            raw_type = struct.unpack_from("<I", b.buf, b.pos)[0]
            if raw_type == PCAPNG_SHB:
                bom = b.buf[b.pos + 8 : b.pos + 12]
                if bom == struct.pack("<I", PCAPNG_BYTE_ORDER):
                    endian = "<"
                elif bom == struct.pack(">I", PCAPNG_BYTE_ORDER):
                    endian = ">"
                else:
                    raise self._cut("section header has no byte-order magic")
                interfaces = []  # interface ids are per section
            block_type, total = struct.unpack_from(endian + "II", b.buf, b.pos)
            if total < 12 or total % 4 or total > MAX_RECORD:
                raise self._cut(f"block of type {block_type} has an invalid length {total}")
            if not b.need(total):
                raise self._cut(f"block of type {block_type} is incomplete")
            body = b.buf[b.pos + 8 : b.pos + total - 4]
            b.pos += total
            if block_type == PCAPNG_IDB:
                interfaces.append(self._interface(body, endian))
            elif block_type in (PCAPNG_EPB, PCAPNG_OPB):
                if block_type == PCAPNG_EPB:
                    if len(body) < 20:
                        raise self._cut("enhanced packet block too short")
                    iface, hi, lo, incl, orig = struct.unpack_from(endian + "IIIII", body, 0)
                else:
                    if len(body) < 20:
                        raise self._cut("packet block too short")
                    iface, _drops, hi, lo, incl, orig = struct.unpack_from(endian + "HHIIII", body, 0)
                if iface >= len(interfaces):
                    raise self._cut(f"packet names interface {iface}, which was not described")
                if 20 + incl > len(body):
                    raise self._cut(f"packet {self.count + 1} is longer than its block")
                linktype, per_second, offset, _snap = interfaces[iface]
                self.count += 1
                yield (((hi << 32) | lo) / per_second + offset, linktype, body[20 : 20 + incl], orig)
            elif block_type == PCAPNG_SPB:
                if not interfaces:
                    raise self._cut("simple packet block before any interface")
                linktype, _per_second, _offset, snaplen = interfaces[0]
                (orig,) = struct.unpack_from(endian + "I", body, 0)
                incl = min(orig, snaplen or orig, len(body) - 4)
                self.count += 1
                yield (0.0, linktype, body[4 : 4 + incl], orig)
            # other blocks (name resolution, statistics, custom, ...) carry no packets

    def _interface(self, body: bytes, endian: str) -> tuple[int, float, float, int]:
        if len(body) < 8:
            raise self._cut("interface description block too short")
        linktype, _reserved, snaplen = struct.unpack_from(endian + "HHI", body, 0)
        per_second, offset = 1e6, 0.0
        off = 8
        while off + 4 <= len(body):
            code, length = struct.unpack_from(endian + "HH", body, off)
            value = body[off + 4 : off + 4 + length]
            if code == 0:  # opt_endofopt
                break
            if code == 9 and length >= 1:  # if_tsresol: 10^-n, or 2^-n when the top bit is set
                res = value[0]
                per_second = 2.0 ** (res & 0x7F) if res & 0x80 else 10.0**res
            elif code == 14 and length >= 8:  # if_tsoffset, seconds
                offset = float(struct.unpack_from(endian + "q", value, 0)[0])
            off += 4 + length + (-length % 4)
        return linktype, per_second, offset, snaplen
