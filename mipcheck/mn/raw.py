"""Registration messages with hand-made IP/UDP headers, over a raw socket (root only; loopback only).

An ordinary UDP socket already binds any 127.x source without privileges,
which covers trusted and untrusted sources. The raw path is for what the
kernel would not let a UDP socket send: a source port in use by another
socket, a wrong UDP checksum (RFC 5944 3.8.2.1: the home agent must discard
it; on Linux the kernel does so before any socket sees it), a chosen TTL.
The reply, if any, is caught by a UDP socket bound to the spoofed source.
Sources and destinations are restricted to 127.0.0.0/8.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass

from mipcheck.errors import MipcheckError

LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")


def raw_available() -> tuple[bool, str]:
    """(usable, why not): raw IP sockets need root or CAP_NET_RAW."""
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    except PermissionError:
        return False, f"raw sockets need root or CAP_NET_RAW (euid {os.geteuid()})"
    except OSError as exc:
        return False, f"raw sockets unavailable: {exc.strerror or exc}"
    s.close()
    return True, ""


def _loopback(addr: str, what: str) -> str:
    try:
        ip = ipaddress.IPv4Address(addr)
    except ValueError:
        raise MipcheckError(f"{what} {addr!r} is not an IPv4 address") from None
    if ip not in LOOPBACK:
        raise MipcheckError(f"{what} {addr} is outside 127.0.0.0/8: the raw transport stays on loopback")
    return str(ip)


@dataclass(frozen=True)
class RawResult:
    reply: bytes | None
    reply_from: tuple[str, int] | None


def ip_udp(
    payload: bytes, src: tuple[str, int], dst: tuple[str, int], *, udp_checksum: int | None = None, ttl: int = 64
) -> bytes:
    """IPv4 + UDP + ``payload`` built with Scapy (the reference); ``udp_checksum`` forces a value."""
    from scapy.layers.inet import IP, UDP

    udp = UDP(sport=src[1], dport=dst[1])
    if udp_checksum is not None:
        udp.chksum = udp_checksum
    return bytes(IP(src=src[0], dst=dst[0], ttl=ttl) / udp / payload)


def send_spoofed(
    payload: bytes,
    src: tuple[str, int],
    dst: tuple[str, int],
    *,
    timeout: float = 1.0,
    udp_checksum: int | None = None,
    listen: bool = True,
) -> RawResult:
    """Send ``payload`` from ``src`` to ``dst`` through a raw socket; wait ``timeout`` for a reply to ``src``."""
    src = (_loopback(src[0], "source"), src[1])
    dst = (_loopback(dst[0], "destination"), dst[1])
    ok, why = raw_available()
    if not ok:
        raise MipcheckError(why)
    rx = None
    if listen:
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            rx.bind(src)
        except OSError as exc:
            rx.close()
            raise MipcheckError(f"cannot listen on {src[0]}:{src[1]} for the reply: {exc.strerror or exc}") from None
        rx.settimeout(timeout)
    tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    try:
        tx.sendto(ip_udp(payload, src, dst, udp_checksum=udp_checksum), (dst[0], 0))
        if rx is None:
            return RawResult(None, None)
        try:
            data, addr = rx.recvfrom(65535)
        except TimeoutError:
            return RawResult(None, None)
        return RawResult(data, addr[:2])
    finally:
        tx.close()
        if rx is not None:
            rx.close()
