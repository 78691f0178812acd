"""Minimal IPv4, UDP and ICMP echo without Scapy: what a mobile node's data plane builds and checks.

Why here: the reference mobile node tunnels user data (RFC 3519 3.3) and
carries its inner registrations in IPv4/UDP through the VPN (RFC 5265 2.3);
it must not pay Scapy's cost, and a second copy of header checksums in each
user would be a second place for a bug. Only what the loopback data plane
needs: no options on send, no fragments, no IPv6. Parsers return None for
anything they do not accept, never raise.

Layouts: RFC 791 3.1 (IPv4 header), RFC 768 (UDP, pseudo-header checksum;
0 means "no checksum" over IPv4), RFC 792 (echo and echo reply), RFC 1071
(the Internet checksum).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from typing import NamedTuple

Address = tuple[str, int]
PROTO_ICMP = 1
PROTO_IPIP = 4
PROTO_UDP = 17
PROTO_ESP = 50
ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
IPV4_HEADER = struct.Struct("!BBHHHBBH4s4s")  # RFC 791 3.1, without options
UDP_HEADER = struct.Struct("!HHHH")  # RFC 768
ICMP_ECHO = struct.Struct("!BBHHH")  # RFC 792: type, code, checksum, identifier, sequence number
_MORE_FRAGMENTS, _OFFSET = 0x2000, 0x1FFF
DONT_FRAGMENT = 0x4000


def checksum(data: bytes) -> int:
    """RFC 1071: the ones' complement of the ones' complement sum of 16-bit words (odd length padded)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _address(address: str) -> bytes:
    try:
        return ipaddress.IPv4Address(address).packed
    except (ipaddress.AddressValueError, ValueError):
        raise ValueError(f"{address!r} is not an IPv4 address") from None


# --------------------------------------------------------------------------- IPv4


class IPv4(NamedTuple):
    """An IPv4 packet that passed :func:`parse_ipv4`'s checks."""

    src: str
    dst: str
    protocol: int
    payload: bytes
    ttl: int = 64
    identification: int = 0
    tos: int = 0
    flags_fragment: int = 0
    header_length: int = 20


def build_ipv4(
    src: str,
    dst: str,
    protocol: int,
    payload: bytes,
    *,
    ttl: int = 64,
    identification: int = 0,
    tos: int = 0,
    dont_fragment: bool = False,
) -> bytes:
    """An IPv4 header without options (IHL 5) with its checksum, then ``payload``."""
    total = IPV4_HEADER.size + len(payload)
    if total > 0xFFFF:
        raise ValueError(f"IPv4 packet of {total} octets is longer than 65535")
    flags = DONT_FRAGMENT if dont_fragment else 0
    header = IPV4_HEADER.pack(
        0x45, tos, total, identification & 0xFFFF, flags, ttl, protocol, 0, _address(src), _address(dst)
    )
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + payload


def parse_ipv4(data: bytes) -> IPv4 | None:
    """None unless: version 4, IHL >= 5, Total Length within the data, header checksum right, not a fragment.

    Octets after Total Length (link padding) are cut off.
    """
    if len(data) < IPV4_HEADER.size:
        return None
    vihl, tos, total, ident, frag, ttl, proto, _sum, src, dst = IPV4_HEADER.unpack_from(data)
    ihl = (vihl & 0x0F) * 4
    if vihl >> 4 != 4 or ihl < IPV4_HEADER.size or not ihl <= total <= len(data):
        return None
    if checksum(data[:ihl]) != 0:  # RFC 791 3.1: the sum over a correct header is all ones
        return None
    if frag & (_MORE_FRAGMENTS | _OFFSET):
        return None  # no reassembly here
    ntoa = socket.inet_ntoa
    return IPv4(ntoa(src), ntoa(dst), proto, bytes(data[ihl:total]), ttl, ident, tos, frag, ihl)


# --------------------------------------------------------------------------- UDP


class UDP(NamedTuple):
    src_port: int
    dst_port: int
    payload: bytes
    checksum: int  # as received; 0: the sender computed none (RFC 768)


def _pseudo_header(src: str, dst: str, length: int) -> bytes:
    return _address(src) + _address(dst) + struct.pack("!BBH", 0, PROTO_UDP, length)


def build_udp(src: str, dst: str, src_port: int, dst_port: int, payload: bytes, *, with_checksum: bool = True) -> bytes:
    """A UDP header and ``payload`` (the IPv4 payload); ``with_checksum=False`` sends checksum 0."""
    length = UDP_HEADER.size + len(payload)
    if length > 0xFFFF:
        raise ValueError(f"UDP datagram of {length} octets is longer than 65535")
    header = UDP_HEADER.pack(src_port, dst_port, length, 0)
    if not with_checksum:
        return header + payload
    value = checksum(_pseudo_header(src, dst, length) + header + payload) or 0xFFFF  # RFC 768: 0 sent as all ones
    return header[:6] + struct.pack("!H", value) + payload


def parse_udp(data: bytes, src: str | None = None, dst: str | None = None) -> UDP | None:
    """None unless the Length fits the data; a non-zero checksum is verified when ``src`` and ``dst`` are given."""
    if len(data) < UDP_HEADER.size:
        return None
    sport, dport, length, value = UDP_HEADER.unpack_from(data)
    if not UDP_HEADER.size <= length <= len(data):
        return None
    if value and src is not None and dst is not None:
        if checksum(_pseudo_header(src, dst, length) + data[:length]) != 0:
            return None
    return UDP(sport, dport, bytes(data[UDP_HEADER.size : length]), value)


def build_udp_ipv4(src: Address, dst: Address, payload: bytes, *, with_checksum: bool = True, ttl: int = 64) -> bytes:
    """IPv4(src -> dst)/UDP(src port -> dst port)/payload."""
    udp = build_udp(src[0], dst[0], src[1], dst[1], payload, with_checksum=with_checksum)
    return build_ipv4(src[0], dst[0], PROTO_UDP, udp, ttl=ttl)


def parse_udp_ipv4(data: bytes) -> tuple[Address, Address, bytes] | None:
    """(src, dst, payload) of an IPv4/UDP packet; None for anything else."""
    ip = parse_ipv4(data)
    if ip is None or ip.protocol != PROTO_UDP:
        return None
    udp = parse_udp(ip.payload, ip.src, ip.dst)
    if udp is None:
        return None
    return (ip.src, udp.src_port), (ip.dst, udp.dst_port), udp.payload


# --------------------------------------------------------------------------- ICMP echo


class IcmpEcho(NamedTuple):
    type: int  # ICMP_ECHO_REQUEST or ICMP_ECHO_REPLY
    identifier: int
    sequence: int
    payload: bytes

    @property
    def is_request(self) -> bool:
        return self.type == ICMP_ECHO_REQUEST


def build_icmp_echo(type_: int, identifier: int, sequence: int, payload: bytes = b"") -> bytes:
    """RFC 792 echo (8) or echo reply (0), code 0, with its checksum over the whole message."""
    if type_ not in (ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY):
        raise ValueError(f"ICMP type {type_} is not echo (8) or echo reply (0)")
    message = ICMP_ECHO.pack(type_, 0, 0, identifier & 0xFFFF, sequence & 0xFFFF) + payload
    return message[:2] + struct.pack("!H", checksum(message)) + message[4:]


def parse_icmp_echo(data: bytes) -> IcmpEcho | None:
    """None unless an echo or echo reply with code 0 and a right checksum."""
    if len(data) < ICMP_ECHO.size:
        return None
    type_, code, _sum, ident, seq = ICMP_ECHO.unpack_from(data)
    if type_ not in (ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY) or code != 0 or checksum(data) != 0:
        return None
    return IcmpEcho(type_, ident, seq, bytes(data[ICMP_ECHO.size :]))
