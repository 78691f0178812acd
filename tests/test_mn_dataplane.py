"""The reference MN's packet helpers (mipcheck.proto.ip, mipcheck.mn.dataplane, mipcheck.mn.esp) against Scapy.

Differential: what mipcheck builds, Scapy (scapy.layers.inet, mipcheck.layers,
Scapy's SecurityAssociation on the gateway side) parses to the same fields
with right checksums, and the other way round.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.packet import Raw

from mipcheck.layers import TunnelData
from mipcheck.mn import dataplane as dp
from mipcheck.mn.esp import EspTunnel
from mipcheck.mn.profile import VpnPeer
from mipcheck.proto import ip
from mipcheck.proto.secret import Secret

addresses = st.ip_addresses(v=4).map(str)
ports = st.integers(0, 65535)
payloads = st.binary(max_size=64)
u16 = st.integers(0, 0xFFFF)


@given(addresses, addresses, st.integers(0, 255), payloads, st.integers(1, 255), u16, st.integers(0, 255))
def test_ipv4_built_here_parses_in_scapy(
    src: str, dst: str, proto: int, payload: bytes, ttl: int, ident: int, tos: int
):
    data = ip.build_ipv4(src, dst, proto, payload, ttl=ttl, identification=ident, tos=tos)
    pkt = IP(data)
    assert (pkt.src, pkt.dst, pkt.proto, pkt.ttl, pkt.id, pkt.tos, pkt.len) == (
        src,
        dst,
        proto,
        ttl,
        ident,
        tos,
        20 + len(payload),
    )
    rebuilt = pkt.copy()
    del rebuilt.chksum
    assert IP(bytes(rebuilt)).chksum == pkt.chksum


@given(addresses, addresses, st.integers(0, 255), payloads, st.integers(0, 255), u16, st.binary(max_size=8))
def test_ipv4_built_by_scapy_parses_here(
    src: str, dst: str, proto: int, payload: bytes, ttl: int, ident: int, pad: bytes
):
    data = bytes(IP(src=src, dst=dst, proto=proto, ttl=ttl, id=ident) / Raw(payload)) + pad
    got = ip.parse_ipv4(data)
    assert got is not None and (got.src, got.dst, got.protocol, got.payload, got.ttl, got.identification) == (
        src,
        dst,
        proto,
        payload,
        ttl,
        ident,
    )


@given(st.binary(min_size=20, max_size=40), st.integers(0, 159))
def test_any_bit_flip_in_the_header_is_refused(payload: bytes, bit: int):
    data = bytearray(ip.build_ipv4("10.0.0.1", "10.0.0.2", 17, payload))
    data[bit // 8] ^= 1 << (bit % 8)
    assert ip.parse_ipv4(bytes(data)) is None


def test_ipv4_refuses_fragments_short_and_options_are_skipped():
    assert ip.parse_ipv4(bytes(IP(src="1.2.3.4", dst="5.6.7.8", flags="MF") / Raw(b"x" * 8))) is None
    assert ip.parse_ipv4(bytes(IP(src="1.2.3.4", dst="5.6.7.8", frag=3) / Raw(b"x" * 8))) is None
    assert ip.parse_ipv4(ip.build_ipv4("1.2.3.4", "5.6.7.8", 1, b"abcd")[:-1]) is None
    opt = ip.parse_ipv4(bytes(IP(src="1.2.3.4", dst="5.6.7.8", options=[b"\x01\x01\x01\x00"]) / Raw(b"xy")))
    assert opt is not None and opt.payload == b"xy" and opt.header_length == 24
    with pytest.raises(ValueError):
        ip.build_ipv4("1.2.3", "5.6.7.8", 1, b"")


@given(addresses, addresses, ports, ports, payloads, st.booleans())
def test_udp_both_ways(src: str, dst: str, sport: int, dport: int, payload: bytes, with_checksum: bool):
    data = ip.build_udp_ipv4((src, sport), (dst, dport), payload, with_checksum=with_checksum)
    pkt = IP(data)
    udp = pkt[UDP]
    assert (udp.sport, udp.dport, udp.len, bytes(udp.payload)) == (sport, dport, 8 + len(payload), payload)
    if with_checksum:
        rebuilt = pkt.copy()
        del rebuilt[UDP].chksum
        assert IP(bytes(rebuilt))[UDP].chksum == udp.chksum
    else:
        assert udp.chksum == 0
    scapy_built = bytes(IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(payload))
    assert ip.parse_udp_ipv4(scapy_built) == ((src, sport), (dst, dport), payload)
    assert ip.parse_udp_ipv4(data) == ((src, sport), (dst, dport), payload)


def test_udp_with_a_wrong_checksum_is_refused():
    data = bytearray(ip.build_udp_ipv4(("10.0.0.1", 1), ("10.0.0.2", 2), b"payload"))
    data[-1] ^= 1
    assert ip.parse_udp_ipv4(bytes(data)) is None


@given(st.sampled_from([0, 8]), u16, u16, payloads)
def test_icmp_echo_both_ways(type_: int, ident: int, seq: int, payload: bytes):
    data = ip.build_icmp_echo(type_, ident, seq, payload)
    pkt = ICMP(data)
    assert (pkt.type, pkt.code, pkt.id, pkt.seq, bytes(pkt.payload)) == (type_, 0, ident, seq, payload)
    rebuilt = pkt.copy()
    del rebuilt.chksum
    assert ICMP(bytes(rebuilt)).chksum == pkt.chksum
    scapy_built = bytes(ICMP(type=type_, id=ident, seq=seq) / Raw(payload))
    assert ip.parse_icmp_echo(scapy_built) == ip.IcmpEcho(type_, ident, seq, payload)
    assert ip.parse_icmp_echo(scapy_built[:-1] + bytes([scapy_built[-1] ^ 1])) is None or not payload


@given(addresses, addresses, u16, u16, payloads)
def test_echo_reply_in_tunnel_data(src: str, dst: str, ident: int, seq: int, payload: bytes):
    """RFC 3519 3.3 around RFC 792: what the node sends the i-HA, read with the Scapy layers."""
    request = dp.parse_echo(dp.echo_request(src, dst, ident, seq, payload))
    assert request is not None and request.request
    td = TunnelData(dp.tunnel(dp.echo_reply(request)))
    assert (td.type, td.next_header, td.reserved) == (4, 4, 0)
    assert (td[IP].src, td[IP].dst, td[ICMP].type, td[ICMP].id, td[ICMP].seq) == (dst, src, 0, ident, seq)
    assert bytes(td[ICMP].payload) == payload
    scapy_td = bytes(TunnelData() / IP(src=src, dst=dst) / ICMP(id=ident, seq=seq) / Raw(payload))
    inner = dp.untunnel(scapy_td)
    assert inner is not None and dp.parse_echo(inner) == dp.Echo(src, dst, True, ident, seq, payload)


def test_untunnel_refuses_other_messages():
    assert dp.untunnel(b"\x04\x2f\x00\x00" + b"x" * 20) is None  # GRE, not IPv4
    assert dp.untunnel(b"\x03\x04\x00\x00" + b"x" * 20) is None
    assert dp.untunnel(b"\x04\x04\x00\x00") is None


# ---------------------------------------------------------------- ESP (RFC 4303, RFC 3948) against Scapy's SA

GW, XHOA, TIA, IHA = "192.0.2.10", "192.0.2.99", "10.8.0.5", "10.1.0.1"
ALGORITHMS = [
    ("AES-CBC", bytes(range(16)), "HMAC-SHA1-96", bytes(20)),
    ("AES-CBC", bytes(range(32)), "SHA2-256-128", bytes(range(32))),
    ("3DES", bytes(range(24)), "HMAC-MD5-96", bytes(16)),
    ("AES-CTR", bytes(range(20)), "SHA2-512-256", bytes(64)),
    ("NULL", b"", "HMAC-SHA1-96", bytes(20)),
    ("AES-CBC", bytes(16), "NULL", b""),
]


def _vpn(enc: str, ekey: bytes, integ: str, ikey: bytes, port: int = 4500) -> VpnPeer:
    return VpnPeer(GW, port, TIA, 0x1001, 0x1002, enc, Secret(ekey), integ, Secret(ikey))


def _gateway(vpn: VpnPeer, spi: int, src: str, dst: str, sport: int, dport: int) -> SecurityAssociation:
    return SecurityAssociation(
        ESP,
        spi=spi,
        crypt_algo=vpn.encryption,
        crypt_key=vpn.encryption_key.reveal() or None,
        auth_algo=vpn.integrity,
        auth_key=vpn.integrity_key.reveal() or None,
        tunnel_header=IP(src=src, dst=dst),
        nat_t_header=UDP(sport=sport, dport=dport),
    )


@pytest.mark.parametrize("algorithms", ALGORITHMS, ids=[f"{a[0]}+{a[2]}" for a in ALGORITHMS])
def test_esp_both_ways_with_scapy(algorithms: tuple[str, bytes, str, bytes]):
    vpn = _vpn(*algorithms, port=4501)
    tunnel = EspTunnel(vpn, XHOA)
    inner = dp.udp_packet((TIA, 49434), (IHA, 434), b"\x01registration")
    sealed = IP(tunnel.seal(inner))
    assert (sealed.src, sealed.dst, sealed[UDP].sport, sealed[UDP].dport, sealed[UDP].chksum) == (
        XHOA,
        GW,
        4500,
        4501,
        0,
    )
    assert int.from_bytes(bytes(sealed[UDP].payload)[:4], "big") == vpn.spi_out
    rx = _gateway(vpn, vpn.spi_out, XHOA, GW, 4500, 4501)
    esp_pkt = IP(bytes(sealed)[:28]) / ESP(bytes(sealed)[28:])
    assert bytes(rx.decrypt(esp_pkt)) == inner
    tx = _gateway(vpn, vpn.spi_in, GW, XHOA, 4501, 4500)
    toward = bytes(tx.encrypt(IP(inner)))
    assert tunnel.open(toward) == inner
    wrong_spi = bytes(_gateway(vpn, vpn.spi_out, GW, XHOA, 4501, 4500).encrypt(IP(inner)))
    assert tunnel.open(wrong_spi) is None
    assert tunnel.open(bytes(sealed)) is None  # our own direction: wrong addresses
    if vpn.integrity != "NULL":
        tampered = bytearray(toward)
        tampered[-1] ^= 1
        tampered[26:28] = b"\0\0"  # UDP checksum 0 (the byte flip would otherwise be caught there)
        assert tunnel.open(bytes(tampered)) is None
    assert tunnel.open(b"") is None and tunnel.open(b"\x45" + bytes(40)) is None


def test_mipcheck_helpers_do_not_import_scapy():
    code = (
        "import mipcheck.proto.ip, mipcheck.mn.dataplane, mipcheck.mn.esp, mipcheck.mn.faults, mipcheck.mn.node, sys; "
        "assert not [m for m in sys.modules if m.startswith('scapy')]"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
