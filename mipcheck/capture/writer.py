"""Write pcap and pcapng files byte for byte reproducibly.

Used by the golden-capture generator, the benchmark and the tests: the
timestamp of every packet is given by the caller, nothing depends on the
clock, so the same packets always give the same file.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from .reader import PCAP_MAGIC_USEC, PCAPNG_BYTE_ORDER, PCAPNG_EPB, PCAPNG_IDB, PCAPNG_SHB

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276


class PcapWriter:
    """Classic little-endian microsecond pcap with one link type."""

    def __init__(self, handle: BinaryIO, linktype: int = LINKTYPE_ETHERNET, snaplen: int = 262144) -> None:
        self.handle = handle
        handle.write(struct.pack("<IHHiIII", PCAP_MAGIC_USEC, 2, 4, 0, 0, snaplen, linktype))

    def write(self, data: bytes, time: float, wirelen: int | None = None) -> None:
        sec = int(time)
        usec = round((time - sec) * 1_000_000)
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        self.handle.write(struct.pack("<IIII", sec, usec, len(data), len(data) if wirelen is None else wirelen))
        self.handle.write(data)


class PcapngWriter:
    """Little-endian pcapng: one section, interfaces added on demand, Enhanced Packet Blocks."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.interfaces: dict[int, int] = {}
        body = struct.pack("<IHHq", PCAPNG_BYTE_ORDER, 1, 0, -1)
        self._block(PCAPNG_SHB, body)

    def _block(self, block_type: int, body: bytes) -> None:
        body += b"\x00" * (-len(body) % 4)
        total = len(body) + 12
        self.handle.write(struct.pack("<II", block_type, total) + body + struct.pack("<I", total))

    def interface(self, linktype: int) -> int:
        if linktype not in self.interfaces:
            # if_tsresol = 9 (nanoseconds), so times survive exactly
            options = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0)
            self._block(PCAPNG_IDB, struct.pack("<HHI", linktype, 0, 262144) + options)
            self.interfaces[linktype] = len(self.interfaces)
        return self.interfaces[linktype]

    def write(self, data: bytes, time: float, linktype: int = LINKTYPE_ETHERNET, wirelen: int | None = None) -> None:
        iface = self.interface(linktype)
        ns = round(time * 1_000_000_000)
        head = struct.pack(
            "<IIIII", iface, ns >> 32, ns & 0xFFFFFFFF, len(data), len(data) if wirelen is None else wirelen
        )
        self._block(PCAPNG_EPB, head + data)
