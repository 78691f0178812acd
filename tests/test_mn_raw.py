"""Raw-socket transport: spoofed loopback sources against the running home agent (root only)."""

from __future__ import annotations

import socket
import time

import pytest

from mipcheck.errors import MipcheckError
from mipcheck.ha import HAConfig, MobileNodeConfig
from mipcheck.ha.server import run_home_agent
from mipcheck.layers.identification import timestamp_identification
from mipcheck.mn.raw import ip_udp, raw_available, send_spoofed
from mipcheck.proto import codec

OK, WHY = raw_available()
needs_raw = pytest.mark.skipif(not OK, reason=f"needs root or CAP_NET_RAW: {WHY}")

KEY = b"raw-test-key"
SPI = 0x5000
HOA = "10.6.0.1"


def free_port(addr: str) -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def request(ha: str, coa: str, ident_offset: int = 0) -> bytes:
    return codec.build_request(
        0x20, 60, HOA, ha, coa, timestamp_identification(time.time()) + ident_offset, auth=(SPI, "hmac-md5", KEY)
    )


def test_refuses_non_loopback() -> None:
    with pytest.raises(MipcheckError, match="127.0.0.0/8"):
        send_spoofed(b"x", ("192.0.2.1", 1), ("127.0.0.1", 434))
    with pytest.raises(MipcheckError, match="127.0.0.0/8"):
        send_spoofed(b"x", ("127.0.0.2", 1), ("198.51.100.7", 434))


def test_ip_udp_checksum_override() -> None:
    from scapy.layers.inet import IP, UDP

    good = IP(ip_udp(b"abc", ("127.0.0.2", 1000), ("127.0.0.1", 434)))
    bad = IP(ip_udp(b"abc", ("127.0.0.2", 1000), ("127.0.0.1", 434), udp_checksum=0x1234))
    assert bad[UDP].chksum == 0x1234 and good[UDP].chksum != 0x1234


@needs_raw
def test_spoofed_sources_against_the_i_ha() -> None:
    cfg = HAConfig(port=0, trusted_networks=("127.0.0.0/28",), mobile_nodes=(MobileNodeConfig(HOA, SPI, KEY),))
    with run_home_agent(cfg) as ha:
        dst = (ha.address, ha.port)
        trusted = ("127.0.0.9", free_port("127.0.0.9"))
        r = send_spoofed(request(ha.address, trusted[0]), trusted, dst)
        assert r.reply is not None and r.reply_from == dst
        rep = codec.parse_reply(r.reply)
        assert rep.code == 0 and [e.type for e in rep.extensions] == [149, 32]
        # A wrong UDP checksum never reaches the home agent (RFC 5944 3.8.2.1: silently discarded).
        r = send_spoofed(
            request(ha.address, trusted[0], 1),
            (trusted[0], free_port(trusted[0])),
            dst,
            timeout=0.5,
            udp_checksum=0x1234,
        )
        assert r.reply is None
        # Untrusted source, trusted CoA field: dropped (RFC 5265 4.3).
        untrusted = ("127.0.0.66", free_port("127.0.0.66"))
        r = send_spoofed(request(ha.address, trusted[0], 2), untrusted, dst, timeout=0.5)
        assert r.reply is None
        rec = ha.wait_for(lambda d: d.get("outcome") == "dropped")
        assert rec is not None and rec["source"] == f"{untrusted[0]}:{untrusted[1]}"
