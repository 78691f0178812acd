"""RFC 3519 UDP tunnelling helpers: inner IPv4 checks and the keepalive answer.

A MIP Tunnel Data message (type 4) carries an IP packet over the UDP port of
the registration, so it passes the NAT the registration came through. The
mobile node keeps the NAT mapping alive with keepalives: ICMP Echo Requests
to the home agent sent inside the tunnel (RFC 3519, tunnel keepalive); the
home agent answers them, inside the tunnel, as any host answers a ping.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

IPPROTO_ICMP = 1
ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8


@dataclass(frozen=True, slots=True)
class TunnelError:
    """Why a tunnel data message was not accepted (errors are data)."""

    reason: str

    def __bool__(self) -> bool:  # so `if not result:` reads naturally
        return False


def internet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


@dataclass(frozen=True, slots=True)
class IPv4Header:
    ihl: int  # header length in octets
    total_length: int
    protocol: int
    src: str
    dst: str


def parse_ipv4(packet: bytes) -> IPv4Header | TunnelError:
    if len(packet) < 20:
        return TunnelError(f"inner packet of {len(packet)} octets is shorter than an IPv4 header")
    if packet[0] >> 4 != 4:
        return TunnelError(f"inner packet is IP version {packet[0] >> 4}, not 4")
    ihl = (packet[0] & 0x0F) * 4
    total = struct.unpack_from("!H", packet, 2)[0]
    if ihl < 20 or total < ihl or total > len(packet):
        return TunnelError("inner IPv4 header lengths are inconsistent")
    return IPv4Header(ihl, total, packet[9], socket.inet_ntoa(packet[12:16]), socket.inet_ntoa(packet[16:20]))


def is_echo_request(packet: bytes, hdr: IPv4Header) -> bool:
    return hdr.protocol == IPPROTO_ICMP and hdr.total_length >= hdr.ihl + 8 and packet[hdr.ihl] == ICMP_ECHO_REQUEST


def echo_reply(packet: bytes, hdr: IPv4Header) -> bytes:
    """The ICMP Echo Reply a host sends back for ``packet`` (addresses swapped, checksums redone)."""
    icmp = bytearray(packet[hdr.ihl : hdr.total_length])
    icmp[0] = ICMP_ECHO_REPLY
    icmp[2:4] = b"\x00\x00"
    icmp[2:4] = internet_checksum(bytes(icmp)).to_bytes(2, "big")
    ip = bytearray(packet[: hdr.ihl])
    ip[8] = 64  # TTL
    ip[10:12] = b"\x00\x00"
    ip[12:16], ip[16:20] = packet[16:20], packet[12:16]
    ip[10:12] = internet_checksum(bytes(ip)).to_bytes(2, "big")
    return bytes(ip) + bytes(icmp)


def echo_request(
    src: str, dst: str, ident: int = 0x4D49, seq: int = 1, payload: bytes = b"mipcheck keepalive"
) -> bytes:
    """An IPv4 ICMP Echo Request, as a mobile node sends for an RFC 3519 keepalive."""
    icmp = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, ident, seq) + payload
    icmp = icmp[:2] + internet_checksum(icmp).to_bytes(2, "big") + icmp[4:]
    total = 20 + len(icmp)
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, IPPROTO_ICMP, 0, socket.inet_aton(src), socket.inet_aton(dst)
    )
    ip = ip[:10] + internet_checksum(ip).to_bytes(2, "big") + ip[12:]
    return ip + icmp
