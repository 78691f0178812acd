"""Probes between the lab's namespaces: UDP, ping and IP-in-IP, from sockets created inside them.

Each probe opens its sockets in the namespaces themselves (see
:func:`mipcheck.lab.netns.socket_in`), so no process is started and a probe
takes milliseconds when it arrives and ``timeout`` when the firewall drops it.
Probes only ever address the lab's own namespaces.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import time
from typing import NamedTuple

from . import netns

IPPROTO_IPIP = 4


class UdpResult(NamedTuple):
    arrived: bool
    source: tuple[str, int] | None  # as the receiver saw it (a NAT changes it)
    replied: bool  # the receiver's answer made it back (stateful firewalls, NAT)


def _recv(sock: socket.socket, timeout: float) -> tuple[bytes, tuple[str, int]] | None:
    ready, _, _ = select.select([sock], [], [], timeout)
    if not ready:
        return None
    return sock.recvfrom(65535)


def udp(src_ns: str, dst_ns: str, dst: str, port: int, *, timeout: float = 0.5, reply: bool = True) -> UdpResult:
    """Send one datagram from ``src_ns`` to ``dst:port`` in ``dst_ns``; answer it when it arrives.

    When a server already holds the port (a home agent on 434), the probe
    listens with a raw UDP socket instead: it sees the datagram arrive but
    cannot answer (``replied`` is False), and the server gets it too.
    """
    marker = os.urandom(8)
    listener = netns.socket_in(dst_ns)
    try:
        listener.bind((dst, port))
    except OSError as exc:
        listener.close()
        if exc.errno != errno.EADDRINUSE:
            raise
        return _udp_raw(src_ns, dst_ns, dst, port, marker, timeout)
    sender = netns.socket_in(src_ns)
    try:
        sender.sendto(b"mipcheck-probe " + marker, (dst, port))
        deadline = time.monotonic() + timeout
        while True:
            got = _recv(listener, max(0.0, deadline - time.monotonic()))
            if got is None:
                return UdpResult(False, None, False)
            data, source = got
            if data.endswith(marker):
                break
        if not reply:
            return UdpResult(True, source, False)
        listener.sendto(b"mipcheck-reply " + marker, source)
        back = _recv(sender, timeout)
        return UdpResult(True, source, back is not None and back[0].endswith(marker))
    finally:
        listener.close()
        sender.close()


def _udp_raw(src_ns: str, dst_ns: str, dst: str, port: int, marker: bytes, timeout: float) -> UdpResult:
    listener = netns.socket_in(dst_ns, socket.SOCK_RAW, socket.IPPROTO_UDP)
    sender = netns.socket_in(src_ns)
    try:
        sender.sendto(b"mipcheck-probe " + marker, (dst, port))
        deadline = time.monotonic() + timeout
        while True:
            got = _recv(listener, max(0.0, deadline - time.monotonic()))
            if got is None:
                return UdpResult(False, None, False)
            data, (source, _zero) = got
            ihl = (data[0] & 0x0F) * 4
            sport, dport = struct.unpack("!HH", data[ihl : ihl + 4])
            if dport == port and data.endswith(marker):
                return UdpResult(True, (source, sport), False)
    finally:
        listener.close()
        sender.close()


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ping(src_ns: str, dst: str, *, timeout: float = 0.5) -> bool:
    """One ICMP echo from ``src_ns`` to ``dst``; True when its reply came back."""
    ident = os.getpid() & 0xFFFF
    seq = int.from_bytes(os.urandom(2), "big")
    payload = b"mipcheck-ping"
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, seq) + payload
    sock = netns.socket_in(src_ns, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    try:
        sock.sendto(packet, (dst, 0))
        deadline = time.monotonic() + timeout
        while True:
            got = _recv(sock, max(0.0, deadline - time.monotonic()))
            if got is None:
                return False
            data, (source, _port) = got
            ihl = (data[0] & 0x0F) * 4
            icmp = data[ihl : ihl + 8]
            if source == dst and len(icmp) == 8:
                kind, _code, _sum, rid, rseq = struct.unpack("!BBHHH", icmp)
                if kind == 0 and rid == ident and rseq == seq:
                    return True
    finally:
        sock.close()


def _inner_ipv4(src: str, dst: str, payload: bytes) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, 253, 0, socket.inet_aton(src), socket.inet_aton(dst)
    )
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + payload


def ipip(src_ns: str, dst_ns: str, dst: str, *, inner_src: str, inner_dst: str, timeout: float = 0.5) -> bool:
    """One IP-in-IP packet (protocol 4) from ``src_ns`` to ``dst``; True when a raw socket in ``dst_ns`` saw it."""
    marker = os.urandom(8)
    receiver = netns.socket_in(dst_ns, socket.SOCK_RAW, IPPROTO_IPIP)
    sender = netns.socket_in(src_ns, socket.SOCK_RAW, IPPROTO_IPIP)
    try:
        sender.sendto(_inner_ipv4(inner_src, inner_dst, b"mipcheck-ipip " + marker), (dst, 0))
        deadline = time.monotonic() + timeout
        while True:
            got = _recv(receiver, max(0.0, deadline - time.monotonic()))
            if got is None:
                return False
            if got[0].endswith(marker):
                return True
    finally:
        receiver.close()
        sender.close()
