"""The reference mobile node's packets: MIP Tunnel Data around IPv4, ICMP echo, IPv4/UDP (Scapy-free).

Why a module: docs/design/mn-loopback.md pins the stacks the reference MN and
the MN suite's played parties speak; the node builds and checks them here,
with :mod:`mipcheck.proto.ip` and :mod:`mipcheck.proto.codec`, so the suite
(which uses the Scapy layers) never shares a codec bug with it.
"""

from __future__ import annotations

from typing import NamedTuple

from mipcheck.proto import codec
from mipcheck.proto import numbers as n
from mipcheck.proto.ip import (
    ICMP_ECHO_REPLY,
    ICMP_ECHO_REQUEST,
    PROTO_ICMP,
    Address,
    build_icmp_echo,
    build_ipv4,
    build_udp_ipv4,
    parse_icmp_echo,
    parse_ipv4,
    parse_udp_ipv4,
)

__all__ = ["Echo", "echo_reply", "echo_request", "parse_echo", "tunnel", "untunnel", "udp_packet", "parse_udp_packet"]


def tunnel(inner_ipv4: bytes) -> bytes:
    """RFC 3519 3.3: MIP Tunnel Data (Type 4, Next Header 4, Reserved 0) then the IPv4 packet."""
    return codec.tunnel_data(inner_ipv4, n.IPPROTO_IPIP)


def untunnel(data: bytes) -> bytes | None:
    """The IPv4 packet a MIP Tunnel Data message carries; None for any other message or next header."""
    if len(data) <= codec.TUNNEL_DATA_HEADER or data[0] != n.MSG_TUNNEL_DATA or data[1] != n.IPPROTO_IPIP:
        return None
    return data[codec.TUNNEL_DATA_HEADER :]


class Echo(NamedTuple):
    """An ICMP echo or echo reply in IPv4 that passed every check."""

    src: str
    dst: str
    request: bool
    identifier: int
    sequence: int
    payload: bytes


def parse_echo(ipv4: bytes) -> Echo | None:
    ip = parse_ipv4(ipv4)
    if ip is None or ip.protocol != PROTO_ICMP:
        return None
    icmp = parse_icmp_echo(ip.payload)
    if icmp is None:
        return None
    return Echo(ip.src, ip.dst, icmp.is_request, icmp.identifier, icmp.sequence, icmp.payload)


def echo_request(src: str, dst: str, identifier: int, sequence: int, payload: bytes = b"") -> bytes:
    return build_ipv4(src, dst, PROTO_ICMP, build_icmp_echo(ICMP_ECHO_REQUEST, identifier, sequence, payload))


def echo_reply(request: Echo) -> bytes:
    """RFC 792: the reply swaps the addresses and keeps identifier, sequence number and data."""
    icmp = build_icmp_echo(ICMP_ECHO_REPLY, request.identifier, request.sequence, request.payload)
    return build_ipv4(request.dst, request.src, PROTO_ICMP, icmp)


def udp_packet(src: Address, dst: Address, payload: bytes) -> bytes:
    """IPv4/UDP with a real UDP checksum (what the node puts into ESP)."""
    return build_udp_ipv4(src, dst, payload)


def parse_udp_packet(data: bytes) -> tuple[Address, Address, bytes] | None:
    return parse_udp_ipv4(data)
