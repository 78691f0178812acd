#!/usr/bin/env python3
"""Write the benchmark capture: 100,000 registrations (RRQ and RRP in turn) on Ethernet.

1,000 mobile nodes register with one i-HA; every packet differs (home
address, care-of address, identification, authenticator), like a busy home
agent's link. Each node's RRQ and RRP are built once with the Scapy layers;
for every registration the identification is rewritten and the MN-HA
authenticator recomputed (RFC 5944 3.5.1), so the file takes seconds to make,
not the minutes 100,000 Scapy builds would.

    python bench/make_bench_pcap.py [--packets 100000] [--out out/bench-registrations.pcap]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import struct
import sys
from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from mipcheck.capture.writer import PcapWriter
from mipcheck.layers import (
    MIPExtMNHAAuth,
    MIPExtNAI,
    MIPExtTNC,
    RegistrationReply,
    RegistrationRequest,
)

SECRET = b"bench-shared-key"
SPI = 256
HA = "10.20.0.1"
T0 = 1212278400.0
ETH_IP_UDP = 14 + 20 + 8


def templates(i: int) -> tuple[bytes, bytes]:
    hoa = f"10.21.{i // 250}.{i % 250 + 1}"
    coa = f"10.31.{i // 250}.{i % 250 + 1}"
    rrq = RegistrationRequest(
        D=1,
        T=1,
        home_address=hoa,
        home_agent=HA,
        care_of_address=coa,
        extensions=[MIPExtNAI(nai=f"mn{i}@example.com".encode()), MIPExtMNHAAuth(spi=SPI, key=SECRET)],
    )
    rrp = RegistrationReply(
        home_address=hoa, home_agent=HA, extensions=[MIPExtTNC(), MIPExtMNHAAuth(spi=SPI, key=SECRET)]
    )
    mac_mn, mac_ha = f"02:00:00:00:{i // 256:02x}:{i % 256:02x}", "02:00:00:00:ff:01"
    out = bytes(Ether(src=mac_mn, dst=mac_ha) / IP(src=coa, dst=HA, id=0) / UDP(sport=49152, dport=434, chksum=0) / rrq)
    back = bytes(
        Ether(src=mac_ha, dst=mac_mn) / IP(src=HA, dst=coa, id=0) / UDP(sport=434, dport=49152, chksum=0) / rrp
    )
    return out, back


def sign(frame: bytes, identification: int, ident_offset: int) -> bytes:
    """Put a new identification in, then recompute the authenticator (the last 16 octets)."""
    buf = bytearray(frame)
    struct.pack_into("!Q", buf, ETH_IP_UDP + ident_offset, identification)
    covered = bytes(buf[ETH_IP_UDP:-16])  # message, all extensions, through the SPI
    buf[-16:] = hmac.new(SECRET, covered, hashlib.md5).digest()
    return bytes(buf)


def write(path: Path, packets: int, nodes: int = 1000) -> None:
    pairs = [templates(i) for i in range(nodes)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        writer = PcapWriter(handle)
        for n in range(packets // 2 + packets % 2):
            out, back = pairs[n % nodes]
            at = T0 + n * 0.01
            ident = ((int(at) + 2_208_988_800) << 32) | n  # NTP seconds, then a counter (RFC 5944 5.7)
            writer.write(sign(out, ident, 16), at)
            if 2 * n + 1 < packets:
                writer.write(sign(back, ident, 12), at + 0.002)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path("out/bench-registrations.pcap"))
    args = parser.parse_args(argv)
    write(args.out, args.packets)
    print(f"{args.out}: {args.packets} packets, {args.out.stat().st_size} octets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
