"""Mutation engine for fuzzing the capture readers: golden frames in, damaged frames out.

Not a test module of its own (it holds no tests); the fuzz tests and
``bench/fuzz_capture.py`` import it. One engine serves both drivers: every
random decision goes through a ``choose(n)`` callable returning 0..n-1, which
is ``random.Random.randrange`` for the long campaign and a Hypothesis
``draw(st.integers(0, n - 1))`` in the tests, so Hypothesis can shrink a
crash to the fewest, smallest mutations.

Why structure-aware: random bit flips almost never reach past the first
length check of a header. Each golden frame is walked once (``layout``) to
find its header boundaries and the octets that steer a dissector - IPv4 IHL
and total length, UDP length, Mobile IP message and extension types and
lengths, agent advertisement fields, tunnel next-header - and the mutations
aim at those. Frames inside ESP are reached by decrypting with the golden
keys, mutating the plaintext and encrypting again (``EspReseal``), so the
``--keys`` path sees damaged inner packets that pass the integrity check.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from mipcheck.capture.reader import CaptureReader
from mipcheck.capture.writer import PcapWriter

PCAPS = Path(__file__).resolve().parent.parent / "pcaps"
KEYS_FILE = PCAPS / "keys.toml"
SITE_PROFILE = Path(__file__).resolve().parent.parent / "examples" / "site.toml"

Choose = Callable[[int], int]

BOUNDARY_OCTETS = (0x00, 0xFF, 0x7F, 0x80)
MIP_TYPES = (1, 3, 4, 5, 6, 7, 2, 9, 0, 0xFF)  # RRQ, RRP, tunnel data, revocation (ack), unknown ones
# 36/38: the real 16-bit-Length types; 44/144/145: sub-typed ones with a fixed body; the rest unknown or short
EXTENSION_TYPES = (36, 38, 44, 144, 145, 32, 33, 34, 131, 132, 134, 137, 149, 0, 127, 128, 200, 255, 16)
AGENT_EXTENSION_TYPES = (0, 16, 19, 24, 1, 128, 255)
IP_PROTOCOLS = (4, 17, 6, 1, 50, 51, 55, 47, 41, 0, 255)
ICMP_TYPES = (9, 10, 0, 3, 8, 17, 18, 13, 255)
NEXT_HEADERS = (4, 55, 47, 17, 0, 99, 255)
PORTS = (434, 4500, 500, 7, 0, 49152)
IKE_PAYLOADS = (1, 2, 3, 0, 4, 5, 13, 33, 46, 255)  # SA, proposal, transform, none, KE, ID, vendor ID, IKEv2 ...
LONG_HEADER_EXTENSIONS = (36, 38)  # as layers/auth.py reads them


@dataclass(frozen=True)
class Knob:
    """An octet (or two) of a frame that steers dissection: where, how wide, what it means."""

    offset: int
    size: int
    kind: str


@dataclass
class Layout:
    """Header boundaries and steering fields of one frame, and its ESP payloads."""

    boundaries: list[int] = field(default_factory=list)
    knobs: list[Knob] = field(default_factory=list)
    esp: list[tuple[int, int]] = field(default_factory=list)  # (start, end) of each ESP header+payload
    payload_ends: list[int] = field(default_factory=list)  # where a Mobile IP extension or IKE payload may be added


@dataclass(frozen=True)
class GoldenFrame:
    capture: str
    number: int
    time: float
    linktype: int
    data: bytes


@cache
def golden_frames() -> tuple[GoldenFrame, ...]:
    """Every frame of every golden capture, read by the project's own reader."""
    out = []
    for path in sorted(PCAPS.glob("*.pcap*")):
        with CaptureReader(str(path)) as reader:
            for number, (time, linktype, data, _wirelen) in enumerate(reader, start=1):
                out.append(GoldenFrame(path.name, number, time, linktype, data))
    return tuple(out)


# -- where the steering octets are ------------------------------------------------


def layout(linktype: int, data: bytes) -> Layout:
    """Walk a frame as the golden captures build them; stops quietly where it stops making sense."""
    out = Layout(boundaries=[0, len(data)])
    off = {1: 14, 113: 16, 276: 20, 101: 0, 228: 0}.get(linktype)
    if off is None or len(data) < off:
        return out
    if linktype == 1 and len(data) >= 18 and data[12:14] == b"\x81\x00":
        off = 18
    out.boundaries.append(off)
    _ipv4(data, off, len(data), out, 0)
    out.boundaries = sorted(set(out.boundaries))
    return out


def _ipv4(data: bytes, off: int, end: int, out: Layout, depth: int) -> None:
    if depth > 8 or end - off < 20 or data[off] >> 4 != 4:
        return
    ihl = (data[off] & 0x0F) * 4
    total = struct.unpack_from("!H", data, off + 2)[0]
    out.knobs += [
        Knob(off, 1, "ip.vihl"),
        Knob(off + 2, 2, "ip.len"),
        Knob(off + 9, 1, "ip.proto"),
        Knob(off + 6, 2, "ip.frag"),
    ]
    if ihl < 20 or total < ihl or off + ihl > end:
        return
    end = min(end, off + total)
    body = off + ihl
    out.boundaries += [off, body, end]
    proto = data[off + 9]
    if proto == 4:
        _ipv4(data, body, end, out, depth + 1)
    elif proto == 17:
        _udp(data, body, end, out, depth)
    elif proto == 1:
        _icmp(data, body, end, out)
    elif proto == 50:
        out.esp.append((body, end))
        out.boundaries += [body + 8]


def _udp(data: bytes, off: int, end: int, out: Layout, depth: int) -> None:
    if end - off < 8:
        return
    sport, dport, length = struct.unpack_from("!HHH", data, off)
    out.knobs += [Knob(off + 4, 2, "udp.len"), Knob(off, 2, "udp.port"), Knob(off + 2, 2, "udp.port")]
    body, end = off + 8, min(end, off + max(length, 8))
    out.boundaries += [off, body, end]
    if 434 in (sport, dport) and body < end:
        _mip(data, body, end, out, depth)
    elif 500 in (sport, dport):
        _ike(body, end, out)
    elif 4500 in (sport, dport) and end - body >= 8:
        if data[body : body + 4] == b"\x00\x00\x00\x00":
            out.boundaries.append(body + 4)  # Non-ESP Marker, then IKE
            _ike(body + 4, end, out)
        elif data[body : body + 1] != b"\xff":
            out.esp.append((body, end))
            out.boundaries.append(body + 8)


def _ike(off: int, end: int, out: Layout) -> None:
    """ISAKMP header (RFC 2408 3.1): Next Payload at 16, Length at 24; payloads go at its end."""
    if end - off >= 28:
        out.knobs += [Knob(off + 16, 1, "ike.next"), Knob(off + 26, 2, "ike.len")]
        out.boundaries += [off + 28]
        out.payload_ends.append(end)


def _mip(data: bytes, off: int, end: int, out: Layout, depth: int) -> None:
    out.knobs.append(Knob(off, 1, "mip.type"))
    mtype = data[off]
    if mtype == 4 and end - off >= 4:
        out.knobs.append(Knob(off + 1, 1, "tunnel.next"))
        out.boundaries.append(off + 4)
        if data[off + 1] == 4:
            _ipv4(data, off + 4, end, out, depth + 1)
        return
    fixed = {1: 24, 3: 20, 5: 20, 6: 12}.get(mtype)
    if fixed is None or end - off < fixed:
        return
    ext = off + fixed
    out.boundaries.append(ext)
    out.payload_ends.append(end)
    while ext < end:
        hdr = 4 if data[ext] in LONG_HEADER_EXTENSIONS else 2
        if ext + hdr > end:
            break
        out.knobs.append(Knob(ext, 1, "ext.type"))
        if hdr == 4:
            out.knobs.append(Knob(ext + 2, 2, "ext.len"))
            length = struct.unpack_from("!H", data, ext + 2)[0]
        else:
            out.knobs.append(Knob(ext + 1, 1, "ext.len"))
            length = data[ext + 1]
        out.boundaries += [ext + hdr, min(end, ext + hdr + length)]
        ext += hdr + length


def _icmp(data: bytes, off: int, end: int, out: Layout) -> None:
    if end - off < 8:
        return
    out.knobs.append(Knob(off, 1, "icmp.type"))
    if data[off] != 9:
        return
    out.knobs += [Knob(off + 4, 1, "agent.num_addrs"), Knob(off + 5, 1, "agent.entry_size")]
    ext = off + 8 + data[off + 4] * 8
    out.boundaries += [off + 8, ext]
    while ext < end:
        out.knobs.append(Knob(ext, 1, "agent.ext.type"))
        if data[ext] == 0:
            ext += 1
            continue
        if ext + 2 > end:
            break
        out.knobs.append(Knob(ext + 1, 1, "agent.ext.len"))
        out.boundaries.append(ext + 2)
        ext += 2 + data[ext + 1]
        out.boundaries.append(min(ext, end))


# -- mutations ------------------------------------------------------------------------


def _pick(choose: Choose, values: tuple | list):
    return values[choose(len(values))]


def _set(data: bytearray, knob: Knob, value: int) -> None:
    if knob.offset + knob.size <= len(data):
        data[knob.offset : knob.offset + knob.size] = (value & ((1 << (8 * knob.size)) - 1)).to_bytes(knob.size, "big")


def _knob_value(choose: Choose, data: bytearray, knob: Knob) -> int:
    """A value for a steering field: its kind's interesting values, or near what it holds."""
    current = int.from_bytes(data[knob.offset : knob.offset + knob.size], "big")
    kind = knob.kind
    if kind == "ip.vihl":  # a quarter of the time another version, else version 4; any IHL
        return _pick(choose, (4, 6, 0, 15)) << 4 | choose(16) if choose(4) == 0 else 0x40 | choose(16)
    if kind == "mip.type":
        return _pick(choose, MIP_TYPES)
    if kind == "ext.type":
        return _pick(choose, EXTENSION_TYPES)
    if kind == "agent.ext.type":
        return _pick(choose, AGENT_EXTENSION_TYPES)
    if kind == "ip.proto":
        return _pick(choose, IP_PROTOCOLS)
    if kind == "icmp.type":
        return _pick(choose, ICMP_TYPES)
    if kind == "tunnel.next":
        return _pick(choose, NEXT_HEADERS)
    if kind == "udp.port":
        return _pick(choose, PORTS)
    if kind == "ike.next":
        return _pick(choose, IKE_PAYLOADS)
    top = (1 << (8 * knob.size)) - 1
    how = choose(4)
    if how == 0:
        return _pick(choose, (0, 1, 2, 3, 4, 5, 6, 7, 8, 20, 24, top, top >> 1, (top >> 1) + 1))
    if how == 1:
        return current + choose(17) - 8  # off by a little, either way
    if how == 2:
        return current + 1 if choose(2) else current - 1
    return choose(top + 1)


def mutate(choose: Choose, linktype: int, data: bytes, shape: Layout | None = None, rounds: int | None = None) -> bytes:
    """One to three mutations of ``data``, each picked by ``choose``."""
    shape = shape if shape is not None else layout(linktype, data)
    out = bytearray(data)
    for _ in range(rounds if rounds is not None else 1 + choose(3)):
        how = choose(9)
        n = len(out)
        if how == 0 and n:  # bit flip
            out[choose(n)] ^= 1 << choose(8)
        elif how == 1 and n:  # boundary octet
            out[choose(n)] = _pick(choose, BOUNDARY_OCTETS)
        elif how == 2 and shape.boundaries:  # cut at a header boundary, or one octet either side
            cut = _pick(choose, shape.boundaries) + choose(3) - 1
            del out[max(0, cut) :]
        elif how == 3 and n:  # cut anywhere
            del out[choose(n + 1) :]
        elif how == 4:  # insert octets
            at = _pick(choose, shape.boundaries) if shape.boundaries and choose(2) else choose(n + 1)
            out[at:at] = bytes(
                _pick(choose, BOUNDARY_OCTETS) if choose(2) else choose(256) for _ in range(1 + choose(8))
            )
        elif how == 5 and n:  # delete octets
            at = choose(n)
            del out[at : at + 1 + choose(8)]
        elif how == 6 and shape.payload_ends and len(out) == len(data):  # a crafted element, lengths kept consistent
            at = _pick(choose, shape.payload_ends)
            out = bytearray(splice(linktype, bytes(out), at, _element(choose)))
        elif shape.knobs:  # 7, 8: structure-aware, the most likely to get deep
            knob = _pick(choose, shape.knobs)
            _set(out, knob, _knob_value(choose, out, knob))
    return bytes(out)


def _element(choose: Choose) -> bytes:
    """A Mobile IP extension or IKE payload header whose Length may or may not fit what follows it."""
    body = bytes(choose(256) for _ in range(choose(12)))
    length = _pick(choose, (len(body), len(body) + 1, max(0, len(body) - 1), 0, 1, 0xFF))
    if choose(3) == 0:  # IKE generic payload header (RFC 2408 3.2) or a transform with one attribute (3.5, 3.3)
        attribute = struct.pack("!HH", _pick(choose, (0x8001, 0x0001, 0x000E, 0x800E)), _pick(choose, (0, 2, 4, 200)))
        payload = (
            bytes((_pick(choose, IKE_PAYLOADS), 0))
            + struct.pack("!H", 8 + len(attribute) + len(body))
            + bytes((1, 1, 0, 0))
        )
        return payload + attribute + body
    ext_type = _pick(choose, EXTENSION_TYPES)
    if ext_type in LONG_HEADER_EXTENSIONS:
        return bytes((ext_type, choose(256))) + struct.pack("!H", length if length != 0xFF else 0xFFFF) + body
    return bytes((ext_type, length & 0xFF)) + body


def splice(linktype: int, data: bytes, at: int, insert: bytes) -> bytes:
    """``insert`` at offset ``at``, every IP and UDP length around it grown to match."""
    return replace(linktype, data, at, at, insert)


def replace(linktype: int, data: bytes, start: int, end: int, new: bytes) -> bytes:
    """``data[start:end]`` replaced by ``new``, every IP and UDP length around it moved by the difference."""
    out = bytearray(data[:start] + new + data[end:])
    for knob in _enclosing_lengths(linktype, data, start):
        value = struct.unpack_from("!H", data, knob.offset)[0] + len(new) - (end - start)
        out[knob.offset : knob.offset + 2] = struct.pack("!H", value & 0xFFFF)
    return bytes(out)


# -- ESP: mutate the plaintext, seal it again --------------------------------------


@dataclass(frozen=True)
class EspKey:
    """3DES-CBC + HMAC-SHA1-96, the only suite of the golden captures (pcaps/README.md)."""

    spi: int
    encryption_key: bytes
    authentication_key: bytes


def golden_esp_keys() -> dict[int, EspKey]:
    from mipcheck.capture.keys import load_keys_file

    ring = load_keys_file(str(KEYS_FILE))
    return {spi: EspKey(spi, sa.encryption_key, sa.authentication_key) for spi, sa in ring.esp.items()}


def _cipher(key: EspKey, iv: bytes):
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    return Cipher(TripleDES(key.encryption_key), modes.CBC(iv))


def esp_open(key: EspKey, esp: bytes) -> tuple[int, bytes, int] | None:
    """(sequence number, plaintext, next header) of an ESP header+payload+ICV, or None when it does not open."""
    if len(esp) < 8 + 8 + 12 or (len(esp) - 8 - 8 - 12) % 8:
        return None
    seq = struct.unpack_from("!I", esp, 4)[0]
    iv, body = esp[8:16], esp[16:-12]
    decryptor = _cipher(key, iv).decryptor()
    plain = decryptor.update(body) + decryptor.finalize()
    pad, next_header = plain[-2], plain[-1]
    if pad + 2 > len(plain):
        return None
    return seq, plain[: -2 - pad], next_header


def esp_seal(key: EspKey, seq: int, plaintext: bytes, next_header: int) -> bytes:
    """RFC 4303 ESP with RFC 2451 3DES-CBC and RFC 2404 HMAC-SHA1-96, a fixed IV (tests need reproducibility)."""
    pad = -(len(plaintext) + 2) % 8
    body = plaintext + bytes(range(1, pad + 1)) + bytes((pad, next_header))
    iv = hashlib.sha256(b"fuzz-iv" + plaintext).digest()[:8]
    encryptor = _cipher(key, iv).encryptor()
    sealed = struct.pack("!II", key.spi, seq) + iv + encryptor.update(body) + encryptor.finalize()
    return sealed + hmac.new(key.authentication_key, sealed, hashlib.sha1).digest()[:12]


def _enclosing_lengths(linktype: int, data: bytes, start: int) -> list[Knob]:
    """IP total length and UDP length fields of the headers that contain offset ``start``."""
    return [
        k
        for k in layout(linktype, data).knobs
        if k.kind in ("ip.len", "udp.len") and k.offset < start and _length_end(data, k) >= start
    ]


def _length_end(data: bytes, knob: Knob) -> int:
    value = struct.unpack_from("!H", data, knob.offset)[0]
    header = knob.offset - 2 if knob.kind == "ip.len" else knob.offset - 4
    return header + value


class EspReseal:
    """Damaged plaintext inside a valid ESP packet: decrypt, mutate as a raw IP frame, encrypt, fix outer lengths."""

    def __init__(self, keys: dict[int, EspKey]) -> None:
        self.keys = keys

    def mutate(self, choose: Choose, linktype: int, data: bytes, shape: Layout) -> bytes | None:
        if not shape.esp:
            return None
        start, end = _pick(choose, shape.esp)
        esp = data[start:end]
        key = self.keys.get(struct.unpack_from("!I", esp, 0)[0]) if len(esp) >= 8 else None
        opened = esp_open(key, esp) if key is not None else None
        if opened is None:
            return None
        seq, plain, next_header = opened
        inner = mutate(choose, 101, plain) if next_header == 4 else plain
        if choose(8) == 0:
            next_header = _pick(choose, IP_PROTOCOLS)
        sealed = esp_seal(key, seq, inner, next_header)
        return replace(linktype, data, start, end, sealed)


# -- one mutant from one choice sequence ---------------------------------------------


@cache
def _golden_layouts() -> tuple[Layout, ...]:
    return tuple(layout(f.linktype, f.data) for f in golden_frames())


@cache
def _resealer() -> EspReseal:
    return EspReseal(golden_esp_keys())


def mutant(choose: Choose) -> tuple[GoldenFrame, bytes]:
    """A golden frame and a mutant of it; about one in five frames with ESP gets its plaintext mutated."""
    frames = golden_frames()
    index = choose(len(frames))
    frame, shape = frames[index], _golden_layouts()[index]
    if shape.esp and choose(5) == 0:
        sealed = _resealer().mutate(choose, frame.linktype, frame.data, shape)
        if sealed is not None:
            return frame, sealed
    return frame, mutate(choose, frame.linktype, frame.data, shape)


def write_capture(path: Path, frames: list[tuple[int, bytes]], t0: float = 1212278400.0) -> None:
    """A classic pcap of one link type (the frames' own) holding ``frames``, one second apart."""
    linktypes = {linktype for linktype, _ in frames}
    assert len(linktypes) == 1, "one link type per pcap"
    with open(path, "wb") as handle:
        writer = PcapWriter(handle, linktypes.pop())
        for i, (_linktype, data) in enumerate(frames):
            writer.write(data, t0 + i)
