"""Minimal encapsulation (RFC 2004) codec: hand-built RFC vectors, Scapy both ways, tshark, a Hypothesis round trip.

The expected octets are built by hand from RFC 2004 section 3 (the forwarding
header: Protocol, S and 7 reserved bits, the Internet checksum over the
forwarding header alone, Original Destination, Original Source when S = 1),
with Scapy's plain ``IP`` for the modified header (scapy.layers.inet has no
minimal encapsulation layer); the project's Scapy layer and tshark read the
codec's output independently. tshark 4.0 has no RFC 2004 dissector (protocol
55 shows as "IP Mobility" and the rest as data), so it judges the modified IP
header and carries the forwarding header's octets.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, UDP
from scapy.packet import Raw
from scapy.utils import wrpcap

from mipcheck.proto import minenc
from mipcheck.proto.ip import build_ipv4, build_udp, checksum, parse_ipv4

HA, COA, HOA, CN = "10.60.0.2", "10.60.0.1", "10.1.0.100", "10.1.0.10"
# RFC 2004 3, by hand: Protocol 1 (ICMP), S = 1 (0x80), checksum, Original Destination 10.1.0.100, Original Source
# 10.1.0.10. Sum of the words 0180 0000 0a01 0064 0a01 000a = 15f0, complemented: ea0f.
FH_S1 = bytes.fromhex("01 80 ea0f 0a010064 0a01000a")
# S = 0: 0100 0000 0a01 0064 -> 0b65, complemented: f49a. 8 octets, no Original Source.
FH_S0 = bytes.fromhex("01 00 f49a 0a010064")


def _original(src: str = CN, dst: str = HOA, *, df: bool = True, ttl: int = 63, tos: int = 0xB8) -> IP:
    return IP(src=src, dst=dst, id=0x1234, ttl=ttl, tos=tos, flags="DF" if df else 0) / ICMP(id=7, seq=1) / b"ping!"


def test_rfc_vector_with_original_source() -> None:
    """The home agent tunnels a correspondent's packet: it is not the source, so S = 1 and 12 octets."""
    original = _original()
    packet = bytes(original)
    got = minenc.encapsulate(packet, HA, COA)
    # the original header modified (RFC 2004 3): protocol 55, source the encapsulator, destination the exit point,
    # Total Length + 12, checksum redone; TTL, TOS, Identification and DF untouched.
    outer = IP(src=HA, dst=COA, id=0x1234, ttl=63, tos=0xB8, flags="DF", proto=55)
    expected = outer / Raw(FH_S1) / bytes(original[ICMP])
    assert got == bytes(expected)
    assert len(got) - len(packet) == minenc.HEADER_WITH_SOURCE == 12 == minenc.overhead(packet, HA)
    assert minenc.forwarding_header(1, HOA, CN) == FH_S1


def test_rfc_vector_without_original_source() -> None:
    """The encapsulator is the packet's source (the home agent's own packet): S = 0, 8 octets, source kept."""
    original = _original(src=HA, df=False, tos=0)
    packet = bytes(original)
    got = minenc.encapsulate(packet, HA, COA)
    expected = IP(src=HA, dst=COA, id=0x1234, ttl=63, proto=55) / Raw(FH_S0) / bytes(original[ICMP])
    assert got == bytes(expected)
    assert len(got) - len(packet) == minenc.HEADER_WITHOUT_SOURCE == 8 == minenc.overhead(packet, HA)


@pytest.mark.parametrize("src", [CN, HA])
def test_decapsulation_restores_the_original_as_scapy_builds_it(src: str) -> None:
    original = _original(src=src)
    out = minenc.decapsulate(minenc.encapsulate(bytes(original), HA, COA) + b"\0\0pad")
    assert out
    assert out.packet == bytes(original)  # Scapy computes the original checksum itself
    assert (out.tunnel_source, out.tunnel_destination) == (HA, COA)
    assert out.source_present == (src != HA) and out.overhead == (12 if src != HA else 8)


def test_the_project_scapy_layer_reads_the_codec_output() -> None:
    from mipcheck.layers import MinimalEncapsulation

    wire = minenc.encapsulate(bytes(_original()), HA, COA)
    me = MinimalEncapsulation(wire[20:])  # explicitly: other tests may rebind IP protocol 55
    assert (me.proto, me.S, me.reserved, me.dst, me.src) == (1, 1, 0, HOA, CN)
    assert me.checksum_ok() and me.chksum == 0xEA0F
    assert ICMP(bytes(me.payload)).id == 7 and bytes(me.payload)[8:] == b"ping!"
    # and the other way: the layer's octets decapsulate
    built = IP(src=COA, dst=HA, proto=55) / MinimalEncapsulation(proto=17, S=1, dst=CN, src=HOA) / UDP(sport=1, dport=2)
    out = minenc.decapsulate(bytes(built))
    assert out and parse_ipv4(out.packet)[:3] == (HOA, CN, 17)


def test_options_stay_before_the_forwarding_header() -> None:
    with_options = IP(src=CN, dst=HOA, options=b"\x01\x01\x01\x00") / UDP(sport=5, dport=6) / b"o"  # NOP NOP NOP EOL
    packet = bytes(with_options)
    got = minenc.encapsulate(packet, HA, COA)
    assert got[0] == 0x46 and got[24:36] == minenc.forwarding_header(17, HOA, CN)
    assert minenc.decapsulate(got).packet == packet


@pytest.mark.parametrize("frag", [0x2000, 0x0001, 0x2005])
def test_a_fragment_is_never_minimally_encapsulated(frag: int) -> None:
    """RFC 2004 3: MUST NOT be used when the original datagram is already fragmented."""
    packet = bytearray(bytes(_original(df=False)))
    packet[6:8] = struct.pack("!H", frag)
    packet[10:12] = b"\0\0"
    packet[10:12] = struct.pack("!H", checksum(bytes(packet[:20])))
    with pytest.raises(ValueError, match="MUST NOT"):
        minenc.encapsulate(bytes(packet), HA, COA)


def test_too_long_and_malformed_are_refused() -> None:
    big = build_ipv4(CN, HOA, 17, b"\0" * (65535 - 20))
    with pytest.raises(ValueError, match="65535"):
        minenc.encapsulate(big, HA, COA)
    for bad in (b"", b"\x60" + bytes(39), b"\x45\x00\x00\x05" + bytes(16)):
        with pytest.raises(ValueError):
            minenc.encapsulate(bad, HA, COA)


def _corrupt(packet: bytes, at: int, value: int, fix_ip: bool = True) -> bytes:
    b = bytearray(packet)
    b[at] = value
    if fix_ip:
        b[10:12] = b"\0\0"
        b[10:12] = struct.pack("!H", checksum(bytes(b[:20])))
    return bytes(b)


GOOD = minenc.encapsulate(bytes(_original()), HA, COA)


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (GOOD[:20] + GOOD[20:27], "lengths"),  # Total Length beyond the data
        (_corrupt(GOOD, 22, 0x00), "checksum is wrong"),  # a forwarding-header octet changed
        (_corrupt(GOOD, 8, 1, fix_ip=False), "IPv4 header checksum"),
        (build_ipv4(COA, HA, 55, GOOD[20:27]), "truncated: 7"),
        (build_ipv4(COA, HA, 55, GOOD[20:30]), "S=1 needs 12"),
        (build_ipv4(COA, HA, 4, GOOD[20:]), "is not minimal encapsulation"),
        (_corrupt(GOOD, 6, 0x20), "fragment"),
    ],
)
def test_decapsulate_rejects_with_a_reason(packet: bytes, reason: str) -> None:
    out = minenc.decapsulate(packet)
    assert not out and isinstance(out, minenc.Rejected) and reason in out.reason, out


def test_reserved_bits_are_ignored_on_reception() -> None:
    fh = bytearray(FH_S1)
    fh[1] |= 0x7F
    fh[2:4] = b"\0\0"
    fh[2:4] = struct.pack("!H", checksum(bytes(fh)))
    out = minenc.decapsulate(build_ipv4(HA, COA, 55, bytes(fh) + bytes(_original()[ICMP])))
    assert out and out.source_present and parse_ipv4(out.packet)[:3] == (CN, HOA, 1)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_reads_the_modified_header_and_carries_the_forwarding_header(tmp_path) -> None:
    packets = [minenc.encapsulate(bytes(_original(src=s)), HA, COA) for s in (CN, HA)]
    pcap = tmp_path / "minenc.pcap"
    wrpcap(str(pcap), [IP(p) for p in packets])
    done = subprocess.run(
        ["tshark", "-r", str(pcap), "-o", "ip.check_checksum:TRUE", "-T", "json", "-e", "ip.src", "-e", "ip.dst"]
        + ["-e", "ip.proto", "-e", "ip.len", "-e", "ip.ttl", "-e", "ip.checksum.status", "-e", "data.data"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    rows = [p["_source"]["layers"] for p in json.loads(done.stdout)]
    for row, packet, fh in zip(rows, packets, (FH_S1, FH_S0), strict=True):
        assert row["ip.src"] == [HA] and row["ip.dst"] == [COA] and row["ip.proto"] == ["55"]
        assert row["ip.len"] == [str(len(packet))] and row["ip.ttl"] == ["63"]
        assert row["ip.checksum.status"] == ["1"]  # good
        assert bytes.fromhex(row["data.data"][0].replace(":", "")).startswith(fh)


@given(
    src=st.ip_addresses(v=4).map(str),
    dst=st.ip_addresses(v=4).map(str),
    entry=st.ip_addresses(v=4).map(str),
    exit_point=st.ip_addresses(v=4).map(str),
    protocol=st.integers(0, 255),
    ttl=st.integers(1, 255),
    tos=st.integers(0, 255),
    ident=st.integers(0, 0xFFFF),
    df=st.booleans(),
    payload=st.binary(max_size=200),
    use_source=st.booleans(),
)
def test_round_trip(src, dst, entry, exit_point, protocol, ttl, tos, ident, df, payload, use_source) -> None:
    entry = src if use_source else entry
    packet = build_ipv4(src, dst, protocol, payload, ttl=ttl, tos=tos, identification=ident, dont_fragment=df)
    wire = minenc.encapsulate(packet, entry, exit_point)
    assert len(wire) - len(packet) == minenc.overhead(packet, entry) == (8 if src == entry else 12)
    outer = parse_ipv4(wire)
    assert outer is not None and (outer.src, outer.dst, outer.protocol, outer.ttl) == (entry, exit_point, 55, ttl)
    out = minenc.decapsulate(wire)
    assert out and out.packet == packet and (out.tunnel_source, out.tunnel_destination) == (entry, exit_point)


def test_udp_checksum_survives_because_the_original_addresses_come_back() -> None:
    udp = build_udp(CN, HOA, 1000, 2000, b"data")
    packet = build_ipv4(CN, HOA, 17, udp)
    out = minenc.decapsulate(minenc.encapsulate(packet, HA, COA))
    assert out and out.packet == packet
