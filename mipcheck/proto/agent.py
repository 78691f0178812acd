"""Agent Advertisement and Agent Solicitation as octets, without Scapy (RFC 5944 2.1, 2.2; RFC 1256 3).

An Agent Advertisement is an ICMP Router Advertisement (RFC 1256 3: Type 9,
Code, Checksum, Num Addrs, Addr Entry Size 2, Lifetime, then Router Address
and Preference Level pairs) followed by the Mobility Agent Advertisement
extension (RFC 5944 2.1.1: Type 16, Length 6 + 4N, Sequence Number,
Registration Lifetime, 16 bits of flags R B H F M G r T then U (RFC 3519),
X (RFC 3543), I (RFC 4857) and reserved bits, N care-of addresses). The
ICMP checksum covers the whole ICMP message, extensions included. It goes in
an IPv4 packet with TTL 1 (RFC 5944 2.1). An Agent Solicitation is an ICMP
Router Solicitation (Type 10, Code 0, Checksum, 4 reserved octets; RFC 5944
2.2, RFC 1256 3).

The Scapy layers (:mod:`mipcheck.layers.agent`) and tshark are the
independent judges of these octets (tests/test_fa_advertisement.py).
Parsers return None for anything they do not accept, never raise.
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

from . import numbers as n
from .ip import PROTO_ICMP, build_ipv4, checksum, parse_ipv4

# The 16-bit flags field of the Mobility Agent Advertisement extension, most significant bit first.
FLAG_LETTERS = "RBHFMGrTUXI"
FLAG_BITS: dict[str, int] = {letter: 0x8000 >> i for i, letter in enumerate(FLAG_LETTERS)}
ADVERTISEMENT_TTL = 1  # RFC 5944 2.1: the TTL of every Agent Advertisement
ADDR_ENTRY_SIZE = 2  # RFC 1256 3: 32-bit words per (Router Address, Preference Level)
CODE_ROUTES_COMMON_TRAFFIC = 0
CODE_NOT_COMMON_TRAFFIC = 16  # RFC 5944 2.1: the agent does not route common traffic
SEQUENCE_WRAP = 256  # RFC 5944 2.3.2: after 0xffff the sequence number goes on at 256, not 0

_RA_HEADER = struct.Struct("!BBHBBH")  # type, code, checksum, num addrs, addr entry size, lifetime
_ROUTER = struct.Struct("!4si")  # router address, preference level (signed)
_MOBILITY = struct.Struct("!BBHHH")  # type 16, length, sequence, registration lifetime, flags


class MobilityExtension(NamedTuple):
    sequence: int
    registration_lifetime: int
    flags: int
    care_of_addresses: tuple[str, ...]

    def has(self, letter: str) -> bool:
        return bool(self.flags & FLAG_BITS[letter])


class Advertisement(NamedTuple):
    """An ICMP Router Advertisement and the agent extensions it carries."""

    code: int
    lifetime: int
    routers: tuple[tuple[str, int], ...]
    mobility: MobilityExtension | None
    extensions: tuple[tuple[int, bytes], ...]  # (type, body) of every extension, in order


def next_sequence(sequence: int) -> int:
    """RFC 5944 2.3.2: counts up by one; 0xffff is followed by 256 (0-255 mean the agent rebooted)."""
    return SEQUENCE_WRAP if sequence >= 0xFFFF else sequence + 1


def mobility_extension(
    sequence: int, registration_lifetime: int, flags: int, care_of_addresses: tuple[str, ...] | list[str]
) -> bytes:
    """RFC 5944 2.1.1: Type 16, Length 6 + 4N, Sequence Number, Registration Lifetime, flags, care-of addresses."""
    coas = b"".join(socket.inet_aton(a) for a in care_of_addresses)
    length = 6 + len(coas)
    if length > 0xFF:
        raise ValueError(f"{len(care_of_addresses)} care-of addresses do not fit one extension")
    return _MOBILITY.pack(n.AGENT_EXT_MOBILITY, length, sequence & 0xFFFF, registration_lifetime, flags) + coas


def icmp_advertisement(
    *,
    code: int,
    lifetime: int,
    routers: tuple[tuple[str, int], ...] | list[tuple[str, int]],
    extensions: bytes,
) -> bytes:
    """RFC 1256 3 Router Advertisement with ``extensions`` appended; the checksum covers them (RFC 5944 2.1)."""
    body = b"".join(_ROUTER.pack(socket.inet_aton(a), pref) for a, pref in routers)
    msg = _RA_HEADER.pack(n.ICMP_ROUTER_ADVERTISEMENT, code, 0, len(routers), ADDR_ENTRY_SIZE, lifetime) + body
    msg += extensions
    return msg[:2] + struct.pack("!H", checksum(msg)) + msg[4:]


def build_advertisement(
    *,
    source: str,
    destination: str,
    sequence: int,
    registration_lifetime: int,
    flags: int,
    care_of_addresses: tuple[str, ...] | list[str],
    lifetime: int,
    code: int = CODE_NOT_COMMON_TRAFFIC,
    routers: tuple[tuple[str, int], ...] | list[tuple[str, int]] | None = None,
    ttl: int = ADVERTISEMENT_TTL,
) -> bytes:
    """IPv4 (TTL 1) / ICMP Router Advertisement / Mobility Agent Advertisement: the whole packet."""
    ext = mobility_extension(sequence, registration_lifetime, flags, care_of_addresses)
    icmp = icmp_advertisement(
        code=code, lifetime=lifetime, routers=((source, 0),) if routers is None else routers, extensions=ext
    )
    return build_ipv4(source, destination, PROTO_ICMP, icmp, ttl=ttl)


def parse_advertisement(icmp: bytes) -> Advertisement | None:
    """An ICMP Router Advertisement (no IP header) with its extensions; None unless well formed.

    Checked: type 9, checksum, Addr Entry Size 2 (RFC 1256 3), the router entries within the
    message, every extension within it (One-byte Padding has no Length, RFC 5944 2.1.3), a
    Mobility Agent Advertisement extension's Length of 6 + 4N (2.1.1).
    """
    if len(icmp) < _RA_HEADER.size or icmp[0] != n.ICMP_ROUTER_ADVERTISEMENT or checksum(icmp) != 0:
        return None
    _type, code, _sum, num, entry, lifetime = _RA_HEADER.unpack_from(icmp)
    if entry != ADDR_ENTRY_SIZE or len(icmp) < _RA_HEADER.size + num * _ROUTER.size:
        return None
    routers = []
    off = _RA_HEADER.size
    for _ in range(num):
        addr, pref = _ROUTER.unpack_from(icmp, off)
        routers.append((socket.inet_ntoa(addr), pref))
        off += _ROUTER.size
    exts: list[tuple[int, bytes]] = []
    mobility = None
    while off < len(icmp):
        t = icmp[off]
        if t == n.AGENT_EXT_PADDING:
            exts.append((t, b""))
            off += 1
            continue
        if off + 2 > len(icmp) or off + 2 + icmp[off + 1] > len(icmp):
            return None
        body = icmp[off + 2 : off + 2 + icmp[off + 1]]
        exts.append((t, body))
        off += 2 + len(body)
        if t == n.AGENT_EXT_MOBILITY:
            if len(body) < 6 or (len(body) - 6) % 4 or mobility is not None:
                return None
            seq, reg, flags = struct.unpack_from("!HHH", body)
            coas = tuple(socket.inet_ntoa(body[i : i + 4]) for i in range(6, len(body), 4))
            mobility = MobilityExtension(seq, reg, flags, coas)
    return Advertisement(code, lifetime, tuple(routers), mobility, tuple(exts))


def solicitation(icmp: bytes) -> bool:
    """An acceptable ICMP Router Solicitation (RFC 1256 3, 6.2.2): type 10, code 0, 8 octets or more, checksum."""
    return len(icmp) >= 8 and icmp[0] == n.ICMP_ROUTER_SOLICITATION and icmp[1] == 0 and checksum(icmp) == 0


def build_solicitation(source: str, destination: str = "255.255.255.255", ttl: int = 1) -> bytes:
    """IPv4 (TTL 1, RFC 5944 2.2) / ICMP Router Solicitation."""
    msg = struct.pack("!BBHI", n.ICMP_ROUTER_SOLICITATION, 0, 0, 0)
    msg = msg[:2] + struct.pack("!H", checksum(msg)) + msg[4:]
    return build_ipv4(source, destination, PROTO_ICMP, msg, ttl=ttl)


def parse_advertisement_packet(packet: bytes) -> tuple[str, str, int, Advertisement] | None:
    """(IP source, IP destination, TTL, advertisement) of a whole IPv4 packet; None for anything else."""
    ip = parse_ipv4(packet)
    if ip is None or ip.protocol != PROTO_ICMP:
        return None
    adv = parse_advertisement(ip.payload)
    return None if adv is None else (ip.src, ip.dst, ip.ttl, adv)
