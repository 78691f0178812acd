"""Minimal Encapsulation within IP (RFC 2004, IP protocol 55) without Scapy: encapsulate and decapsulate.

RFC 2004 section 3: no second IP header. The original datagram's IP header is
modified (Protocol 55, Destination the tunnel's exit point, Source the
encapsulator's address when the encapsulator is not the original source,
Total Length increased by the forwarding header, header checksum redone; the
TTL is not touched) and the minimal forwarding header is inserted after it
(after any options), followed by the unchanged IP payload:

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |   Protocol    |S| reserved    |        Header Checksum        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                 Original Destination Address                  |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    :            (if present) Original Source Address               :
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Protocol is copied from the original header; S set means the Original Source
Address is present (the encapsulator is not the original source): 12 octets,
else 8; reserved is sent as zero and ignored on reception; the Header Checksum
is the Internet checksum over the forwarding header alone (RFC 1071), its own
field zero while computing. Decapsulation restores Protocol, Destination and
(S=1) Source into the IP header, removes the forwarding header, decreases Total
Length and redoes the IP header checksum. A datagram that is already
fragmented MUST NOT be encapsulated this way (no room for the fragmentation
fields): :func:`encapsulate` refuses it. The layout is also Wireshark's
("minencap" dissector) and the Scapy layer's (``layers/minenc.py``); the tests
hold all three to hand-built RFC vectors.

Like :mod:`mipcheck.proto.ip`: builders raise ``ValueError`` for what they
cannot build; :func:`decapsulate` never raises, it returns :class:`Rejected`
with the reason (for a decision log).
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

from .ip import checksum

PROTO_MINENC = 55  # IANA: "Minimal Encapsulation within IP" (RFC 2004)
HEADER = struct.Struct("!BBH4s")  # Protocol, S|reserved, Header Checksum, Original Destination Address
HEADER_WITHOUT_SOURCE = HEADER.size  # 8 octets, S = 0
HEADER_WITH_SOURCE = HEADER.size + 4  # 12 octets, S = 1
S_BIT = 0x80
_MORE_FRAGMENTS, _OFFSET = 0x2000, 0x1FFF


class Decapsulated(NamedTuple):
    """A minimally encapsulated datagram after :func:`decapsulate`."""

    packet: bytes  # the original datagram, its IP header restored and checksummed again
    tunnel_source: str  # the encapsulated packet's IP source: the encapsulator (or the original source, S=0)
    tunnel_destination: str  # its IP destination: the tunnel's exit point
    source_present: bool  # S: the forwarding header carried the Original Source Address
    overhead: int  # 8 or 12: the forwarding header's length


class Rejected(NamedTuple):
    """Why :func:`decapsulate` did not accept a packet; falsy, like a parser's None."""

    reason: str

    def __bool__(self) -> bool:
        return False


def forwarding_header(protocol: int, destination: str, source: str | None = None) -> bytes:
    """The minimal forwarding header: S = 1 and 12 octets with ``source``, else S = 0 and 8 octets."""
    try:
        dst = socket.inet_aton(destination)
        src = b"" if source is None else socket.inet_aton(source)
    except OSError:
        raise ValueError(f"not an IPv4 address: {destination!r} / {source!r}") from None
    header = HEADER.pack(protocol & 0xFF, S_BIT if source is not None else 0, 0, dst) + src
    return header[:2] + struct.pack("!H", checksum(header)) + header[4:]


def _header_length(packet: bytes) -> int:
    if len(packet) < 20 or packet[0] >> 4 != 4:
        raise ValueError("not an IPv4 packet")
    ihl = (packet[0] & 0x0F) * 4
    total = struct.unpack_from("!H", packet, 2)[0]
    if ihl < 20 or not ihl <= total <= len(packet):
        raise ValueError("IPv4 header lengths are inconsistent")
    return ihl


def encapsulate(packet: bytes, tunnel_source: str, tunnel_destination: str) -> bytes:
    """RFC 2004 3: ``packet`` minimally encapsulated from ``tunnel_source`` (the encapsulator) to the exit point.

    S is set (12 octets) when the encapsulator is not the packet's source, else clear (8 octets). The TTL,
    Type of Service, Identification, flags and options stay as they are. Raises ValueError for a fragment
    (RFC 2004 3: MUST NOT), a malformed packet or one that would exceed 65535 octets.
    """
    ihl = _header_length(packet)
    total = struct.unpack_from("!H", packet, 2)[0]
    if struct.unpack_from("!H", packet, 6)[0] & (_MORE_FRAGMENTS | _OFFSET):
        raise ValueError("a fragmented datagram MUST NOT be minimally encapsulated (RFC 2004 3)")
    original_source = socket.inet_ntoa(packet[12:16])
    try:
        encapsulator = socket.inet_aton(tunnel_source)
        exit_point = socket.inet_aton(tunnel_destination)
    except OSError:
        raise ValueError(f"not an IPv4 address: {tunnel_source!r} / {tunnel_destination!r}") from None
    s = original_source != socket.inet_ntoa(encapsulator)
    fh = forwarding_header(packet[9], socket.inet_ntoa(packet[16:20]), original_source if s else None)
    if total + len(fh) > 0xFFFF:
        raise ValueError(f"minimally encapsulated datagram of {total + len(fh)} octets is longer than 65535")
    header = bytearray(packet[:ihl])
    header[2:4] = struct.pack("!H", total + len(fh))
    header[9] = PROTO_MINENC
    header[10:12] = b"\0\0"
    header[12:16] = encapsulator
    header[16:20] = exit_point
    header[10:12] = struct.pack("!H", checksum(bytes(header)))
    return bytes(header) + fh + packet[ihl:total]


def overhead(packet: bytes, tunnel_source: str) -> int:
    """What :func:`encapsulate` adds to ``packet``: 12 octets when ``tunnel_source`` is not its source, else 8."""
    return HEADER_WITH_SOURCE if socket.inet_ntoa(packet[12:16]) != tunnel_source else HEADER_WITHOUT_SOURCE


def decapsulate(packet: bytes) -> Decapsulated | Rejected:
    """RFC 2004 3: the original datagram of a protocol 55 packet (whole, as a raw socket reads it), or why not.

    Checked: IPv4, consistent lengths, a right IP header checksum, not a fragment (the kernel reassembles
    before a raw socket reads), protocol 55, the forwarding header whole and its checksum right. Octets after
    Total Length (link padding) are cut off.
    """
    try:
        ihl = _header_length(packet)
    except ValueError as exc:
        return Rejected(f"malformed IPv4 header: {exc}")
    if checksum(packet[:ihl]) != 0:
        return Rejected("IPv4 header checksum is wrong")
    if struct.unpack_from("!H", packet, 6)[0] & (_MORE_FRAGMENTS | _OFFSET):
        return Rejected("a fragment, not a whole datagram")
    if packet[9] != PROTO_MINENC:
        return Rejected(f"IP protocol {packet[9]} is not minimal encapsulation ({PROTO_MINENC})")
    total = struct.unpack_from("!H", packet, 2)[0]
    avail = total - ihl
    if avail < HEADER_WITHOUT_SOURCE:
        return Rejected(f"minimal forwarding header truncated: {avail} octets")
    s = bool(packet[ihl + 1] & S_BIT)
    size = HEADER_WITH_SOURCE if s else HEADER_WITHOUT_SOURCE
    if avail < size:
        return Rejected(f"minimal forwarding header truncated: {avail} octets, S=1 needs {size}")
    fh = packet[ihl : ihl + size]
    if checksum(fh) != 0:
        return Rejected("minimal forwarding header checksum is wrong (RFC 2004 3)")
    header = bytearray(packet[:ihl])
    header[2:4] = struct.pack("!H", total - size)
    header[9] = fh[0]
    header[10:12] = b"\0\0"
    if s:
        header[12:16] = fh[8:12]
    header[16:20] = fh[4:8]
    header[10:12] = struct.pack("!H", checksum(bytes(header)))
    ntoa = socket.inet_ntoa
    return Decapsulated(bytes(header) + packet[ihl + size : total], ntoa(packet[12:16]), ntoa(packet[16:20]), s, size)


__all__ = [
    "HEADER_WITHOUT_SOURCE",
    "HEADER_WITH_SOURCE",
    "PROTO_MINENC",
    "Decapsulated",
    "Rejected",
    "decapsulate",
    "encapsulate",
    "forwarding_header",
    "overhead",
]
