"""Evidence of a finding: the culprit (and its minimised form) as IPv4/UDP packets in a pcap, for Wireshark or
``mipcheck dissect``.
"""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

from mipcheck.capture.writer import LINKTYPE_RAW, PcapWriter


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_udp(src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> bytes:
    """A raw IPv4 packet carrying ``payload`` in UDP (checksums computed)."""
    s, d = socket.inet_aton(src[0]), socket.inet_aton(dst[0])
    udp_len = 8 + len(payload)
    pseudo = s + d + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", src[1], dst[1], udp_len, 0) + payload
    udp = udp[:6] + struct.pack("!H", _checksum(pseudo + udp) or 0xFFFF) + udp[8:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0x4000, 64, 17, 0, s, d)
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + udp


def write_finding_pcap(path: Path, src: tuple[str, int], dst: tuple[str, int], payloads: list[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    now = time.time()
    with open(path, "wb") as handle:
        writer = PcapWriter(handle, LINKTYPE_RAW)
        for i, payload in enumerate(payloads):
            writer.write(ipv4_udp(src, dst, payload[:65507]), now + i * 0.001)
    return path
