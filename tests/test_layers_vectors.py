"""Byte vectors for the Mobile IPv4 layers, written by hand from the RFC field layouts.

Every expected octet string below was typed from the figure in the cited RFC,
not produced by our own code; authenticators are recomputed with ``hmac`` and
``hashlib`` directly, and checksums with the one's-complement sum in this file.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import struct
import subprocess
import sys

import pytest
from scapy.fields import PacketListField
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import GRE
from scapy.plist import PacketList

from mipcheck.layers import (
    AgentAdvertisement,
    AgentExtPadding,
    AgentSolicitation,
    Key,
    MinimalEncapsulation,
    MIPExtCVSE,
    MIPExtFAHAAuth,
    MIPExtGenAuth,
    MIPExtMessageString,
    MIPExtMNFAAuth,
    MIPExtMNHAAuth,
    MIPExtNAI,
    MIPExtNVSE,
    MIPExtRevocationSupport,
    MIPExtTNC,
    MIPExtUDPTunnelReply,
    MIPExtUDPTunnelRequest,
    MIPExtUnknown,
    MIPTruncatedMessage,
    MIPUnknownMessage,
    MobileIPMessage,
    MobilityAgentAdvertisement,
    PrefixLengths,
    RegistrationReply,
    RegistrationRequest,
    RegistrationRevocation,
    RevocationAcknowledgment,
    RouterAddress,
    TunnelData,
)
from mipcheck.layers.agent import AgentExtTruncated, AgentExtUnknown
from mipcheck.layers.secret import VirtualField


def h(text: str) -> bytes:
    """Hex with spaces for readability -> bytes."""
    return bytes.fromhex(text.replace(" ", ""))


def ones_complement(data: bytes) -> int:
    """Internet checksum (RFC 1071), written here independently of Scapy and of our layers."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


# Common field values, and their octets as the RFC figures lay them out.
HOA, HOA_HEX = "10.0.0.1", "0a 00 00 01"
HA, HA_HEX = "10.0.0.2", "0a 00 00 02"
COA, COA_HEX = "192.0.2.7", "c0 00 02 07"
IDENT, IDENT_HEX = 0x0123456789ABCDEF, "01 23 45 67 89 ab cd ef"

# RFC 5944 3.3: Type | S B D M G r T x | Lifetime ; Home Address ; Home Agent ; Care-of Address ; Identification (64)
RRQ_HEX = f"01 00 07 08 {HOA_HEX} {HA_HEX} {COA_HEX} {IDENT_HEX}"
# RFC 5944 3.4: Type | Code | Lifetime ; Home Address ; Home Agent ; Identification (64)
RRP_HEX = f"03 00 07 08 {HOA_HEX} {HA_HEX} {IDENT_HEX}"


def rrq(**kw) -> RegistrationRequest:
    base = dict(lifetime=1800, home_address=HOA, home_agent=HA, care_of_address=COA, identification=IDENT)
    base.update(kw)
    return RegistrationRequest(**base)


def rrp(**kw) -> RegistrationReply:
    base = dict(lifetime=1800, home_address=HOA, home_agent=HA, identification=IDENT)
    base.update(kw)
    return RegistrationReply(**base)


# --------------------------------------------------------------------------- fixed headers

RRQ_FLAGS = ["S", "B", "D", "M", "G", "r", "T", "x"]


@pytest.mark.parametrize(
    ("flag", "octet"),
    [("S", 0x80), ("B", 0x40), ("D", 0x20), ("M", 0x10), ("G", 0x08), ("r", 0x04), ("T", 0x02), ("x", 0x01)],
)
def test_rrq_each_flag_alone(flag: str, octet: int) -> None:
    expected = h(RRQ_HEX)
    expected = expected[:1] + bytes([octet]) + expected[2:]
    assert bytes(rrq(**{flag: 1})) == expected
    parsed = MobileIPMessage(expected)
    assert isinstance(parsed, RegistrationRequest)
    assert {f: getattr(parsed, f) for f in RRQ_FLAGS} == {f: int(f == flag) for f in RRQ_FLAGS}


def test_rrq_layout_is_24_octets() -> None:
    raw = bytes(rrq())
    assert raw == h(RRQ_HEX)
    assert len(raw) == 24 == RegistrationRequest.fixed_size
    parsed = MobileIPMessage(raw)
    assert (parsed.type, parsed.lifetime) == (1, 1800)
    assert (parsed.home_address, parsed.home_agent, parsed.care_of_address) == (HOA, HA, COA)
    assert parsed.identification == IDENT
    assert parsed.extensions == []


@pytest.mark.parametrize("code", [0, 1, 64, 69, 128, 131, 133, 136, 139, 255])
def test_rrp_layout_is_20_octets(code: int) -> None:
    expected = h(RRP_HEX)
    expected = expected[:1] + bytes([code]) + expected[2:]
    raw = bytes(rrp(code=code))
    assert raw == expected
    assert len(raw) == 20 == RegistrationReply.fixed_size
    parsed = MobileIPMessage(expected)
    assert isinstance(parsed, RegistrationReply)
    assert (parsed.code, parsed.lifetime, parsed.home_address, parsed.home_agent, parsed.identification) == (
        code,
        1800,
        HOA,
        HA,
        IDENT,
    )
    assert parsed.accepted is (code < 64)


@pytest.mark.parametrize(
    ("flags", "octets"),
    [({}, "00 00"), ({"A": 1}, "80 00"), ({"I": 1}, "40 00"), ({"A": 1, "I": 1}, "c0 00")],
)
def test_revocation_layout(flags: dict[str, int], octets: str) -> None:
    # RFC 3543 3.1: Type=7 | Reserved | A|I|Reserved(14) ; Home Address ; Home Domain Address ;
    # Foreign Domain Address ; Revocation Identifier
    expected = h(f"07 00 {octets} {HOA_HEX} {HA_HEX} {COA_HEX} 00 00 30 39")
    pkt = RegistrationRevocation(
        home_address=HOA, home_domain_address=HA, foreign_domain_address=COA, revocation_id=12345, **flags
    )
    assert bytes(pkt) == expected
    parsed = MobileIPMessage(expected)
    assert isinstance(parsed, RegistrationRevocation)
    assert (parsed.A, parsed.I) == (flags.get("A", 0), flags.get("I", 0))
    assert (parsed.home_domain_address, parsed.foreign_domain_address, parsed.revocation_id) == (HA, COA, 12345)


@pytest.mark.parametrize(("i_bit", "octets"), [(0, "00 00"), (1, "80 00")])
def test_revocation_ack_layout(i_bit: int, octets: str) -> None:
    # RFC 3543 3.2: Type=15 | Reserved | I|Reserved(15) ; Home Address ; Revocation Identifier
    expected = h(f"0f 00 {octets} {HOA_HEX} 00 00 30 39")
    assert bytes(RevocationAcknowledgment(home_address=HOA, revocation_id=12345, I=i_bit)) == expected
    parsed = MobileIPMessage(expected)
    assert isinstance(parsed, RevocationAcknowledgment)
    assert (parsed.I, parsed.home_address, parsed.revocation_id) == (i_bit, HOA, 12345)


def test_tunnel_data_ip() -> None:
    # RFC 3519 3.3: Type=4 | Next Header | Reserved(16), then the tunnelled packet
    inner = bytes(IP(src="10.0.0.1", dst="198.51.100.9") / UDP(sport=1000, dport=2000) / b"hello")
    pkt = TunnelData() / IP(inner)
    assert bytes(pkt) == h("04 04 00 00") + inner
    parsed = MobileIPMessage(h("04 04 00 00") + inner)
    assert isinstance(parsed, TunnelData)
    assert parsed.next_header == 4
    assert isinstance(parsed.payload, IP)
    assert (parsed[IP].src, parsed[IP].dst, bytes(parsed[UDP].payload)) == ("10.0.0.1", "198.51.100.9", b"hello")


def test_tunnel_data_gre() -> None:
    gre = bytes(GRE(proto=0x0800) / IP(dst="198.51.100.9"))
    parsed = MobileIPMessage(h("04 2f 00 00") + gre)
    assert isinstance(parsed.payload, GRE)
    assert bytes(parsed) == h("04 2f 00 00") + gre


@pytest.mark.parametrize("with_source", [False, True])
def test_minimal_encapsulation(with_source: bool) -> None:
    # RFC 2004 3.1: Protocol | S | reserved(7) | Header Checksum ; Original Destination ; [Original Source]
    dst_hex, src_hex = "c6 33 64 09", "0a 00 00 01"
    if with_source:
        header = h(f"11 80 00 00 {dst_hex} {src_hex}")
        pkt = MinimalEncapsulation(proto=17, S=1, dst="198.51.100.9", src="10.0.0.1")
    else:
        header = h(f"11 00 00 00 {dst_hex}")
        pkt = MinimalEncapsulation(proto=17, dst="198.51.100.9")
    ck = ones_complement(header)
    expected = header[:2] + struct.pack("!H", ck) + header[4:]
    assert len(expected) == (12 if with_source else 8)
    assert ones_complement(expected) == 0  # a correct header sums to 0xffff
    udp = bytes(UDP(sport=1000, dport=2000, chksum=0) / b"x")
    raw = bytes(pkt / UDP(sport=1000, dport=2000, chksum=0) / b"x")
    assert raw == expected + udp
    parsed = MinimalEncapsulation(raw)
    assert parsed.checksum_ok()
    assert parsed.S == int(with_source)
    assert parsed.dst == "198.51.100.9"
    assert isinstance(parsed.payload, UDP)  # the original protocol's layer follows (Protocol=17)
    assert parsed[UDP].dport == 2000
    # an explicit (wrong) checksum is kept and detected
    bad = MinimalEncapsulation(raw[:2] + b"\x12\x34" + raw[4:])
    assert bytes(bad)[2:4] == b"\x12\x34"
    assert not bad.checksum_ok()


def test_minimal_encapsulation_in_ip_and_tunnel_data() -> None:
    inner = MinimalEncapsulation(proto=6, dst="198.51.100.9")
    outer = IP(bytes(IP(src="192.0.2.7", dst="10.0.0.2") / inner / b"payload"))
    assert outer.proto == 55
    assert isinstance(outer.payload, MinimalEncapsulation)
    td = MobileIPMessage(h("04 37 00 00") + bytes(inner))
    assert isinstance(td.payload, MinimalEncapsulation)


# --------------------------------------------------------------------------- extensions


@pytest.mark.parametrize(
    ("ext", "expected"),
    [
        # RFC 5265 3.4: Type=149, Length=2, Sub-Type=0, Reserved=0
        (MIPExtTNC(), "95 02 00 00"),
        # RFC 2794 2: Type=131 | Length | NAI
        (MIPExtNAI(nai=b"mn@example.net"), "83 0e" + b"mn@example.net".hex()),
        # RFC 5944 3.5.2: Type=32 | Length | SPI | Authenticator
        (MIPExtMNHAAuth(spi=0x1234, authenticator=b"\xaa" * 16), "20 14 00 00 12 34" + "aa" * 16),
        (MIPExtMNFAAuth(spi=0x1234, authenticator=b"\xbb" * 16), "21 14 00 00 12 34" + "bb" * 16),
        (MIPExtFAHAAuth(spi=0x1234, authenticator=b"\xcc" * 16), "22 14 00 00 12 34" + "cc" * 16),
        # RFC 3012 5: Type=36 | Subtype | Length(16) | SPI | Authenticator
        (MIPExtGenAuth(subtype=1, spi=0x1234, authenticator=b"\xdd" * 16), "24 01 00 14 00 00 12 34" + "dd" * 16),
        # RFC 3115 3.1: Type=38 | Reserved | Length(16) | Vendor/Org-ID | Vendor-CVSE-Type | Value
        (MIPExtCVSE(vendor_id=5535, vendor_type=1, value=b"\x01\x02"), "26 00 00 08 00 00 15 9f 00 01 01 02"),
        # RFC 3115 3.2: Type=134 | Length | Reserved(16) | Vendor/Org-ID | Vendor-NVSE-Type | Value
        (MIPExtNVSE(vendor_id=5535, vendor_type=2, value=b"\x09"), "86 09 00 00 00 00 15 9f 00 02 09"),
        # RFC 3543 3.3: Type=137 | Length=6 | I|Reserved(15) | Timestamp
        (MIPExtRevocationSupport(I=1, timestamp=0x01020304), "89 06 80 00 01 02 03 04"),
        (MIPExtRevocationSupport(I=0, timestamp=7), "89 06 00 00 00 00 00 07"),
        # RFC 4917 3: Type=145 | Length | Sub-Type | Text
        (MIPExtMessageString(subtype=1, text=b"ok"), "91 03 01 6f 6b"),
        # RFC 3519 3.1: Type=144 | Length=6 | Sub-Type | Reserved 1 | F|R|Reserved 2 | Encapsulation | Reserved 3
        (MIPExtUDPTunnelRequest(), "90 06 00 00 00 04 00 00"),
        (MIPExtUDPTunnelRequest(F=1), "90 06 00 00 80 04 00 00"),
        (MIPExtUDPTunnelRequest(R=1), "90 06 00 00 40 04 00 00"),
        (MIPExtUDPTunnelRequest(F=1, R=1, encapsulation=47), "90 06 00 00 c0 2f 00 00"),
        (MIPExtUDPTunnelRequest(encapsulation=55), "90 06 00 00 00 37 00 00"),
        # RFC 3519 3.2: Type=44 | Length=6 | Sub-Type | Reply Code | F|Reserved(15) | Keepalive Interval
        (MIPExtUDPTunnelReply(code=0, keepalive=110), "2c 06 00 00 00 00 00 6e"),
        (MIPExtUDPTunnelReply(code=0, F=1, keepalive=110), "2c 06 00 00 80 00 00 6e"),
        (MIPExtUDPTunnelReply(code=64, keepalive=0x0102), "2c 06 00 40 00 00 01 02"),
        # unknown extension: octets as given
        (MIPExtUnknown(type=200, data=b"\x01\x02\x03"), "c8 03 01 02 03"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_extension_vectors(ext, expected: str) -> None:
    raw = h(expected)
    assert bytes(ext) == raw
    # the same octets after a registration reply dissect back to the same class and fields
    msg = MobileIPMessage(h(RRP_HEX) + raw)
    (parsed,) = msg.extensions
    assert type(parsed) is type(ext)
    for name in (
        "spi",
        "authenticator",
        "nai",
        "vendor_id",
        "vendor_type",
        "value",
        "F",
        "R",
        "code",
        "keepalive",
        "I",
        "timestamp",
        "encapsulation",
        "text",
        "subtype",
        "data",
    ):
        if name in ext.fields:
            assert getattr(parsed, name) == getattr(ext, name), name
    assert bytes(msg) == h(RRP_HEX) + raw


@pytest.mark.parametrize(
    ("ext", "offset", "size", "value"),
    [
        # one-octet Length at offset 1
        (MIPExtNAI(nai=b"x" * 200), 1, 1, 200),
        (MIPExtMNHAAuth(spi=1, authenticator=b"\x00" * 16), 1, 1, 20),
        (MIPExtMNHAAuth(spi=1, authenticator=b"\x00" * 20), 1, 1, 24),  # authenticator of another size
        (MIPExtMNHAAuth(spi=1, key=b"k"), 1, 1, 20),  # placeholder for a computed authenticator
        (MIPExtTNC(), 1, 1, 2),
        (MIPExtNVSE(value=b"abc"), 1, 1, 11),
        # 16-bit Length at offset 2 (RFC 3012 type 36, RFC 3115 type 38)
        (MIPExtGenAuth(spi=1, authenticator=b"\x00" * 16), 2, 2, 20),
        (MIPExtCVSE(value=b"v" * 300), 2, 2, 306),
    ],
)
def test_length_computed_when_none(ext, offset: int, size: int, value: int) -> None:
    raw = bytes(ext)
    assert int.from_bytes(raw[offset : offset + size], "big") == value
    assert len(raw) == offset + size + value


@pytest.mark.parametrize(
    ("ext", "expected"),
    [
        (MIPExtTNC(length=4), "95 04 00 00"),  # RFC 5265 long-format length on the short format
        (MIPExtTNC(length=0), "95 00 00 00"),
        (MIPExtMNHAAuth(spi=1, authenticator=b"\xee" * 16, length=19), "20 13 00 00 00 01" + "ee" * 16),
        (MIPExtGenAuth(spi=1, authenticator=b"\xee" * 16, length=0x1234), "24 01 12 34 00 00 00 01" + "ee" * 16),
        (MIPExtCVSE(length=2), "26 00 00 02 00 00 00 00 00 00"),
        (MIPExtNAI(nai=b"ab", length=9), "83 09 61 62"),
        (MIPExtUDPTunnelRequest(length=8), "90 08 00 00 00 04 00 00"),
    ],
)
def test_length_kept_when_overridden(ext, expected: str) -> None:
    assert bytes(ext) == h(expected)


@pytest.mark.parametrize(
    ("pkt", "expected"),
    [
        (MIPExtTNC(type=150, subtype=1, reserved=0xFF), "96 02 01 ff"),
        (MIPExtMNHAAuth(type=33, spi=0xFFFFFFFF, authenticator=b"\x01"), "21 05 ff ff ff ff 01"),
        (MIPExtGenAuth(type=36, subtype=4, spi=2, authenticator=b""), "24 04 00 04 00 00 00 02"),
        (MIPExtCVSE(reserved=0xAB, vendor_id=1, vendor_type=0xFFFF), "26 ab 00 06 00 00 00 01 ff ff"),
        (MIPExtNVSE(reserved=0xABCD, vendor_id=1, vendor_type=3), "86 08 ab cd 00 00 00 01 00 03"),
        (MIPExtUDPTunnelRequest(subtype=9, reserved1=8, reserved2=0x3F, reserved3=0xFFFF), "90 06 09 08 3f 04 ff ff"),
        (MIPExtUDPTunnelReply(subtype=1, reserved=0x7FFF, keepalive=0), "2c 06 01 00 7f ff 00 00"),
        (MIPExtRevocationSupport(reserved=0x7FFF, timestamp=1), "89 06 7f ff 00 00 00 01"),
        (MIPExtTNC(extra=b"\x01\x02"), "95 04 00 00 01 02"),
        (rrq(type=2, lifetime=0, identification=0), f"02 00 00 00 {HOA_HEX} {HA_HEX} {COA_HEX}" + "00" * 8),
        (rrp(type=1, code=0x85, lifetime=0xFFFF), f"01 85 ff ff {HOA_HEX} {HA_HEX} {IDENT_HEX}"),
        (TunnelData(type=5, next_header=55, reserved=0xBEEF), "05 37 be ef"),
        (RegistrationRevocation(reserved=1, reserved2=0x3FFF), "07 01 3f ff" + "00" * 16),
        (RevocationAcknowledgment(type=16, reserved=2, reserved2=0x7FFF), "10 02 7f ff" + "00" * 8),
        (
            MobilityAgentAdvertisement(reserved=0x1F, sequence=0xFFFF, registration_lifetime=0),
            "10 06 ff ff 00 00 00 1f",
        ),
        (AgentSolicitation(code=3, chksum=0x1234, reserved=0xDEADBEEF), "0a 03 12 34 de ad be ef"),
        (MinimalEncapsulation(proto=4, reserved=0x7F, chksum=0xABCD, dst="1.2.3.4"), "04 7f ab cd 01 02 03 04"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_every_field_overridable(pkt, expected: str) -> None:
    assert bytes(pkt) == h(expected)


# --------------------------------------------------------------------------- agent advertisement

AGENT_FLAGS = [
    ("R", 0x8000),
    ("B", 0x4000),
    ("H", 0x2000),
    ("F", 0x1000),
    ("M", 0x0800),
    ("G", 0x0400),
    ("r", 0x0200),
    ("T", 0x0100),
    ("U", 0x0080),
    ("X", 0x0040),
    ("I", 0x0020),
]


@pytest.mark.parametrize(("flag", "value"), AGENT_FLAGS)
def test_agent_advertisement_flag_alone(flag: str, value: int) -> None:
    # RFC 5944 2.1.1: Type=16 | Length | Sequence ; Registration Lifetime | R B H F M G r T U X I reserved ; CoAs
    expected = h("10 0a 00 07 07 08") + struct.pack("!H", value) + h(COA_HEX)
    ext = MobilityAgentAdvertisement(sequence=7, registration_lifetime=1800, care_of_addresses=[COA], **{flag: 1})
    assert bytes(ext) == expected
    parsed = AgentAdvertisement(bytes(AgentAdvertisement(extensions=[ext]))).extensions[0]
    assert {f: getattr(parsed, f) for f, _ in AGENT_FLAGS} == {f: int(f == flag) for f, _ in AGENT_FLAGS}


def test_agent_advertisement_full_message() -> None:
    # RFC 1256 Router Advertisement: Type=9 | Code | Checksum ; Num Addrs | Addr Entry Size=2 | Lifetime ;
    # Router Address ; Preference Level ; then the RFC 5944 extensions.
    body = h(
        "09 10 00 00  01 02 07 08  0a 00 00 02  00 00 00 05"
        " 10 0e 00 2a 01 2c 30 80 " + COA_HEX + " c0 00 02 08"  # H F + U; two CoAs
        " 13 01 18"  # Prefix-Lengths: one prefix length of 24
        " 00"  # One-byte Padding
    )
    expected = body[:2] + struct.pack("!H", ones_complement(body)) + body[4:]
    pkt = AgentAdvertisement(
        code=16,
        lifetime=1800,
        addresses=[RouterAddress(address=HA, preference=5)],
        extensions=[
            MobilityAgentAdvertisement(
                sequence=42, registration_lifetime=300, H=1, F=1, U=1, care_of_addresses=[COA, "192.0.2.8"]
            ),
            PrefixLengths(prefix_lengths=[24]),
            AgentExtPadding(),
        ],
    )
    assert bytes(pkt) == expected
    parsed = IP(bytes(IP(src=HA, dst="224.0.0.11") / pkt))
    adv = parsed[AgentAdvertisement]
    assert adv.num_addrs == 1 and adv.addresses[0].address == HA and adv.addresses[0].preference == 5
    assert [type(e) for e in adv.extensions] == [MobilityAgentAdvertisement, PrefixLengths, AgentExtPadding]
    assert adv.mobility.care_of_addresses == [COA, "192.0.2.8"]
    assert adv.extensions[1].prefix_lengths == [24]
    assert bytes(adv.extensions[2]) == b"\x00"  # one octet, no Length
    assert ones_complement(bytes(adv)) == 0


def test_agent_solicitation_and_other_icmp() -> None:
    body = h("0a 00 00 00 00 00 00 00")
    expected = body[:2] + struct.pack("!H", ones_complement(body)) + body[4:]
    assert bytes(AgentSolicitation()) == expected
    assert isinstance(IP(bytes(IP() / AgentSolicitation())).payload, AgentSolicitation)
    # other ICMP types stay Scapy's ICMP
    echo = IP(bytes(IP() / ICMP(type=8)))
    assert type(echo.payload) is ICMP


# --------------------------------------------------------------------------- authentication

KEY = b"mn-ha shared key"
KEY_FA = b"mn-fa shared key"
KEY_FAHA = b"fa-ha shared key"
NAI = b"mn@example.net"
NAI_HEX = "83 0e " + NAI.hex()


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.md5).digest()


def test_hmac_md5_covers_message_through_spi() -> None:
    covered = h(f"{RRQ_HEX} {NAI_HEX} 20 14 00 00 01 00")
    expected = covered + _hmac(KEY, covered)
    pkt = rrq(extensions=[MIPExtNAI(nai=NAI), MIPExtMNHAAuth(spi=0x100, key=KEY)])
    assert bytes(pkt) == expected


def test_prefix_suffix_md5() -> None:
    covered = h(f"{RRQ_HEX} 20 14 00 00 01 00")
    expected = covered + hashlib.md5(KEY + covered + KEY).digest()
    pkt = rrq(extensions=[MIPExtMNHAAuth(spi=0x100, key=KEY, algorithm="prefix-suffix-md5")])
    assert bytes(pkt) == expected


def test_chain_mnfa_covers_mnha_authenticator_and_faha_covers_both() -> None:
    part1 = h(f"{RRQ_HEX} {NAI_HEX} 20 14 00 00 01 00")
    part1 += _hmac(KEY, part1)
    part2 = part1 + h("21 14 00 00 02 00")
    part2 += _hmac(KEY_FA, part2)
    part3 = part2 + h("22 14 00 00 03 00")
    expected = part3 + _hmac(KEY_FAHA, part3)
    pkt = rrq(
        extensions=[
            MIPExtNAI(nai=NAI),
            MIPExtMNHAAuth(spi=0x100, key=KEY),
            MIPExtMNFAAuth(spi=0x200, key=KEY_FA),
            MIPExtFAHAAuth(spi=0x300, key=KEY_FAHA),
        ]
    )
    assert bytes(pkt) == expected


def test_generalized_auth_covers_its_four_octet_header() -> None:
    covered = h(f"{RRQ_HEX} {NAI_HEX} 24 01 00 14 00 00 01 00")
    expected = covered + _hmac(KEY, covered)
    assert bytes(rrq(extensions=[MIPExtNAI(nai=NAI), MIPExtGenAuth(subtype=1, spi=0x100, key=KEY)])) == expected


def test_reply_with_tnc_before_auth() -> None:
    # RFC 5265 3.4: TNC precedes the MN-HA authentication extension, so it is covered
    covered = h(f"{RRP_HEX} 95 02 00 00 20 14 00 00 01 00")
    pkt = rrp(extensions=[MIPExtTNC(), MIPExtMNHAAuth(spi=0x100, key=KEY)])
    assert bytes(pkt) == covered + _hmac(KEY, covered)


def test_explicit_authenticator_is_kept() -> None:
    pkt = rrq(extensions=[MIPExtMNHAAuth(spi=0x100, key=KEY, authenticator=b"\x5a" * 16)])
    assert bytes(pkt) == h(f"{RRQ_HEX} 20 14 00 00 01 00") + b"\x5a" * 16


def test_wrong_length_auth_still_authenticated_in_place() -> None:
    """An overridden Length does not move where the authenticators are written."""
    part1 = h(f"{RRQ_HEX} 20 03 00 00 01 00")  # Length 3: too short for SPI + authenticator
    part1 += _hmac(KEY, part1)
    part2 = part1 + h("21 14 00 00 02 00")
    expected = part2 + _hmac(KEY_FA, part2)
    pkt = rrq(extensions=[MIPExtMNHAAuth(spi=0x100, key=KEY, length=3), MIPExtMNFAAuth(spi=0x200, key=KEY_FA)])
    assert bytes(pkt) == expected


def test_verify_reports_each_extension() -> None:
    pkt = rrq(
        extensions=[
            MIPExtMNHAAuth(spi=0x100, key=KEY),
            MIPExtMNFAAuth(spi=0x200, key=KEY_FA),
            MIPExtFAHAAuth(spi=0x300, key=KEY_FAHA),
        ]
    )
    raw = bytes(pkt)
    keys = {0x100: Key(KEY), 0x200: Key(b"not the key")}  # 0x300 unknown
    checks = MobileIPMessage(raw).verify(keys)
    assert [(c.ext_type, c.spi, c.valid, c.offset) for c in checks] == [
        (32, 0x100, True, 24),
        (33, 0x200, False, 46),
        (34, 0x300, None, 68),
    ]
    # one changed octet in the fixed part breaks every authenticator that covers it
    tampered = raw[:8] + b"\x0b" + raw[9:]
    all_keys = {0x100: Key(KEY), 0x200: Key(KEY_FA), 0x300: Key(KEY_FAHA)}
    assert [c.valid for c in MobileIPMessage(raw).verify(all_keys)] == [True, True, True]
    assert [c.valid for c in MobileIPMessage(tampered).verify(all_keys)] == [False, False, False]
    # changing the MN-FA authenticator breaks only what covers it (FA-HA), not MN-HA
    mnfa_auth = 46 + 6
    flipped = raw[:mnfa_auth] + bytes([raw[mnfa_auth] ^ 1]) + raw[mnfa_auth + 1 :]
    assert [c.valid for c in MobileIPMessage(flipped).verify(all_keys)] == [True, False, False]


def test_verify_prefix_suffix_key() -> None:
    raw = bytes(rrq(extensions=[MIPExtMNHAAuth(spi=7, key=KEY, algorithm="prefix-suffix-md5")]))
    assert [c.valid for c in MobileIPMessage(raw).verify({7: Key(KEY, "prefix-suffix-md5")})] == [True]
    assert [c.valid for c in MobileIPMessage(raw).verify({7: Key(KEY, "hmac-md5")})] == [False]


SECRET = b"Sup3r-Secret-Key-Material-42"


@pytest.mark.parametrize("key", [SECRET, SECRET.decode()])
def test_key_never_printed(key) -> None:
    pkt = (
        IP()
        / UDP(sport=434, dport=434)
        / rrq(extensions=[MIPExtNAI(nai=NAI), MIPExtMNHAAuth(spi=0x100, key=key), MIPExtGenAuth(spi=2, key=key)])
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        pkt.show()
        pkt.show2()
        print(pkt.summary())
    texts = {
        "repr": repr(pkt),
        "str": str(pkt),
        "command": pkt.command(),
        "show": out.getvalue(),
        "ext repr": repr(pkt[MIPExtMNHAAuth]),
        "key repr": repr(pkt[MIPExtMNHAAuth].key),
        "Key": repr(Key(SECRET)),
    }
    for where, text in texts.items():
        for needle in (SECRET.decode(), SECRET.hex(), repr(SECRET)):
            assert needle not in text, where
    assert "<hidden>" in texts["show"] and "<hidden>" in texts["repr"]
    assert pkt[MIPExtMNHAAuth].key.reveal() == SECRET  # the key is there, just not printed


# --------------------------------------------------------------------------- robust dissection

RRQ_RAW = h(RRQ_HEX)
RRP_RAW = h(RRP_HEX)


@pytest.mark.parametrize(
    ("raw", "cls", "error"),
    [
        (h("09 01 02 03"), MIPUnknownMessage, "unknown Mobile IP message type 9"),
        (h("ff"), MIPUnknownMessage, "unknown Mobile IP message type 255"),
        (RRQ_RAW[:10], MIPTruncatedMessage, "truncated Registration Request: 10 octets, fixed part needs 24"),
        (RRP_RAW[:19], MIPTruncatedMessage, "truncated Registration Reply: 19 octets, fixed part needs 20"),
        (h("01"), MIPTruncatedMessage, "truncated Registration Request: 1 octets, fixed part needs 24"),
        (h("07 00 00"), MIPTruncatedMessage, "truncated Registration Revocation"),
        (h("0f 00 00 00 00"), MIPTruncatedMessage, "truncated Revocation Acknowledgment"),
        (h("04 04 00"), MIPTruncatedMessage, "truncated Tunnel Data"),
        (RRQ_RAW, RegistrationRequest, None),
    ],
    ids=lambda v: v.hex() if isinstance(v, bytes) else None,
)
def test_dissect_unknown_and_truncated_messages(raw: bytes, cls, error: str | None) -> None:
    msg = MobileIPMessage(raw)
    assert type(msg) is cls
    if error is None:
        assert msg.error is None
    else:
        assert msg.error.startswith(error)
    assert bytes(msg) == raw
    # and as the payload of UDP port 434
    over_udp = UDP(bytes(UDP(sport=1234, dport=434) / raw))
    assert type(over_udp.payload) is cls
    assert bytes(over_udp.payload) == raw


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        # (type, class name, skippable, malformed) of each extension
        (h("c8 02 01 02"), [(200, "MIPExtUnknown", True, False)]),
        (h("64 02 01 02"), [(100, "MIPExtUnknown", False, False)]),
        (h("c8 00 64 00"), [(200, "MIPExtUnknown", True, False), (100, "MIPExtUnknown", False, False)]),
        (h("ff 00 95 02 00 00"), [(255, "MIPExtUnknown", True, False), (149, "MIPExtTNC", True, None)]),
        # Length overruns the message: octets kept, nothing raised
        (h("83 32 61 62 63"), [(131, "MIPExtNAI", True, None)]),
        (h("c8 ff 01"), [(200, "MIPExtUnknown", True, False)]),
        (h("64 10"), [(100, "MIPExtUnknown", False, False)]),
        # known type whose Length cannot hold its fixed body
        (h("20 02 00 00"), [(32, "MIPExtUnknown", False, True)]),
        (h("95 01 00"), [(149, "MIPExtUnknown", True, True)]),
        (
            h("24 01 00 02 09 09 20 02 00 00"),
            [(36, "MIPExtUnknownLong", False, True), (32, "MIPExtUnknown", False, True)],
        ),
        (h("26 00 00 01 05"), [(38, "MIPExtUnknownLong", False, True)]),
        # fewer octets than an extension header
        (h("83"), [(131, "MIPExtTruncated", True, True)]),
        (h("64"), [(100, "MIPExtTruncated", False, True)]),
        (h("24 01 00"), [(36, "MIPExtTruncated", False, True)]),
        (h("95 02 00 00 c8"), [(149, "MIPExtTNC", True, None), (200, "MIPExtTruncated", True, True)]),
    ],
    ids=lambda v: v.hex() if isinstance(v, bytes) else None,
)
@pytest.mark.parametrize("head", [RRQ_RAW, RRP_RAW], ids=["rrq", "rrp"])
def test_dissect_odd_extensions(head: bytes, tail: bytes, expected) -> None:
    raw = head + tail
    msg = MobileIPMessage(raw)
    got = [(e.type, type(e).__name__, e.skippable, getattr(e, "malformed", None)) for e in msg.extensions]
    assert got == expected
    assert bytes(msg) == raw


def test_more_extensions_than_scapy_list_default() -> None:
    """Scapy stops packet lists at 100 items by raising; a message may carry more."""
    raw = RRQ_RAW + h("c8 00") * 150 + h("95 02 00 00")
    msg = MobileIPMessage(raw)
    assert len(msg.extensions) == 151 and isinstance(msg.extensions[-1], MIPExtTNC)
    assert bytes(msg) == raw
    udp = UDP(bytes(UDP(sport=434, dport=434) / raw))
    assert type(udp.payload) is RegistrationRequest and len(udp.payload.extensions) == 151


def test_agent_advertisement_long_lists() -> None:
    adv = AgentAdvertisement(
        addresses=[RouterAddress(address=f"10.0.{i // 256}.{i % 256}") for i in range(255)],
        extensions=[
            PrefixLengths(prefix_lengths=[24] * 255),
            *[AgentExtPadding()] * 150,
            MobilityAgentAdvertisement(care_of_addresses=[COA] * 62),
        ],
    )
    raw = bytes(IP(dst="224.0.0.1", ttl=1) / adv)
    got = IP(raw)[AgentAdvertisement]
    assert bytes(got) == bytes(adv)
    assert len(got.addresses) == 255 and got.addresses[-1].address == "10.0.0.254"
    assert [type(e) for e in got.extensions] == [PrefixLengths, *[AgentExtPadding] * 150, MobilityAgentAdvertisement]
    assert len(got.extensions[0].prefix_lengths) == 255 and len(got.mobility.care_of_addresses) == 62


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (h("10"), [AgentExtTruncated]),
        (h("00 13"), [AgentExtPadding, AgentExtTruncated]),
        (h("10 03 01 02 03"), [AgentExtUnknown]),  # too short for the mobility extension's fixed part
        (h("c8 01 07"), [AgentExtUnknown]),
    ],
    ids=lambda v: v.hex() if isinstance(v, bytes) else None,
)
def test_agent_extension_odd_octets(tail: bytes, expected) -> None:
    body = bytes(AgentAdvertisement()) + tail
    got = IP(bytes(IP(dst="224.0.0.1", proto=1) / body))[AgentAdvertisement]
    assert [type(e) for e in got.extensions] == expected
    assert bytes(got) == body


# --------------------------------------------------------------------------- UDP 434 binding

_BINDING_SCRIPT = """
import sys
if sys.argv[1] == "scapy-first":
    from scapy.all import *  # loads scapy.layers.mobileip
    import mipcheck.layers as L
else:
    import mipcheck.layers as L
    from scapy.all import *
import scapy.layers.mobileip
from scapy.layers.inet import UDP
rrq = bytes(L.RegistrationRequest())
rrp = bytes(L.RegistrationReply())
for sport, dport, raw in ((5000, 434, rrq), (434, 5000, rrp), (434, 434, rrq), (434, 5000, bytes([9, 0]))):
    print(type(UDP(bytes(UDP(sport=sport, dport=dport) / raw)).payload).__name__)
"""


@pytest.mark.parametrize("order", ["scapy-first", "ours-first"])
def test_udp_434_binding_beats_scapy_mobileip(order: str, tmp_path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _BINDING_SCRIPT, order], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout.split()
    assert out == ["RegistrationRequest", "RegistrationReply", "RegistrationRequest", "MIPUnknownMessage"]


@pytest.mark.parametrize(
    ("msg", "sport", "dport"),
    [
        (RegistrationRequest(), 53, 434),  # UDP's default sport is 53
        (RegistrationReply(), 434, 53),
        (TunnelData(), 434, 434),
        (RegistrationRevocation(), 434, 434),
        (RevocationAcknowledgment(), 434, 434),
    ],
)
def test_udp_ports_set_on_build(msg, sport: int, dport: int) -> None:
    udp = UDP(bytes(UDP() / msg))
    assert (udp.sport, udp.dport) == (sport, dport)
    assert type(udp.payload) is type(msg)


def test_explicit_ports_not_overridden() -> None:
    udp = UDP(bytes(UDP(sport=1234, dport=434) / RegistrationReply()))
    assert (udp.sport, udp.dport) == (1234, 434)


# --------------------------------------------------------------------------- answers / hashret


def _exchange(hoa: str, ident: int, reply_ident: int, mn_port: int = 40000, code: int = 0):
    req = IP(src=COA, dst=HA) / UDP(sport=mn_port, dport=434) / rrq(home_address=hoa, identification=ident)
    rep = (
        IP(src=HA, dst=COA)
        / UDP(sport=434, dport=mn_port)
        / rrp(home_address=hoa, identification=reply_ident, code=code)
    )
    return IP(bytes(req)), IP(bytes(rep))


def test_reply_answers_its_request_only() -> None:
    # the home agent puts its own time in the high 32 bits and copies the low 32 bits (RFC 5944 5.7)
    req1, rep1 = _exchange("10.0.0.1", 0x11111111_00000001, 0x22222222_00000001)
    req2, rep2 = _exchange("10.0.0.5", 0x11111111_00000002, 0x33333333_00000002, mn_port=40001)
    assert rep1.answers(req1) and rep2.answers(req2)
    assert not rep1.answers(req2) and not rep2.answers(req1)
    assert not req1.answers(rep1)  # a request answers nothing
    assert rep1.hashret() == req1.hashret() and rep2.hashret() == req2.hashret()
    assert rep1.hashret() != req2.hashret()
    # at the message layer too
    assert rep1[RegistrationReply].answers(req1[RegistrationRequest])
    assert rep1[RegistrationReply].hashret() == req1[RegistrationRequest].hashret()

    matched, unmatched = PacketList([req1, req2, rep2, rep1]).sr()
    pairs = [(q[RegistrationRequest].home_address, r[RegistrationReply].home_address) for q, r in matched]
    assert sorted(pairs) == [("10.0.0.1", "10.0.0.1"), ("10.0.0.5", "10.0.0.5")]
    assert len(unmatched) == 0


@pytest.mark.parametrize(
    ("reply_hoa", "reply_ident"),
    [
        ("10.0.0.9", 0x11111111_00000001),  # another home address
        ("10.0.0.1", 0x11111111_00000002),  # other low-order 32 bits
    ],
)
def test_reply_for_another_registration_does_not_answer(reply_hoa: str, reply_ident: int) -> None:
    req, _ = _exchange("10.0.0.1", 0x11111111_00000001, 0)
    _, rep = _exchange(reply_hoa, 0, reply_ident)
    assert not rep.answers(req)
    assert rep.hashret() != req.hashret()
    matched, unmatched = PacketList([req, rep]).sr()
    assert len(matched) == 0 and len(unmatched) == 2


def test_revocation_ack_answers_revocation() -> None:
    rev = RegistrationRevocation(home_address=HOA, revocation_id=77)
    ack = RevocationAcknowledgment(home_address=HOA, revocation_id=77)
    assert ack.answers(rev) and ack.hashret() == rev.hashret()
    other = RevocationAcknowledgment(home_address=HOA, revocation_id=78)
    assert not other.answers(rev) and other.hashret() != rev.hashret()
    assert not RevocationAcknowledgment(home_address="10.9.9.9", revocation_id=77).answers(rev)


# --------------------------------------------------------------------------- every field, generically

_EVERY_CLASS = [
    RegistrationRequest,
    RegistrationReply,
    TunnelData,
    RegistrationRevocation,
    RevocationAcknowledgment,
    MIPExtMNHAAuth,
    MIPExtMNFAAuth,
    MIPExtFAHAAuth,
    MIPExtGenAuth,
    MIPExtCVSE,
    MIPExtNVSE,
    MIPExtNAI,
    MIPExtRevocationSupport,
    MIPExtUDPTunnelRequest,
    MIPExtUDPTunnelReply,
    MIPExtMessageString,
    MIPExtTNC,
    MIPExtUnknown,
    AgentAdvertisement,
    AgentSolicitation,
    MobilityAgentAdvertisement,
    PrefixLengths,
    RouterAddress,
    MinimalEncapsulation,
]


def _odd_value(fld):
    """A value unlike any default, valid for the field's width."""
    name = type(fld).__name__
    if name == "IPField":
        return "198.51.100.99"
    if name == "BitField":
        return (1 << fld.size) - 1
    if name == "FieldListField":
        return ["198.51.100.99"] if type(fld.field).__name__ == "IPField" else [24, 16]
    if name in ("StrLenField", "StrField", "_AuthenticatorField"):
        return b"\x01\x02\x03"
    if name == "SignedIntField":
        return -5
    return {1: 0xEE, 2: 0xBEEF, 4: 0xDEADBEEF, 8: 0x0123456789ABCDEF}[fld.sz]


def _overridable_fields():
    for cls in _EVERY_CLASS:
        for fld in cls.fields_desc:
            real = getattr(fld, "fld", fld)  # ConditionalField wraps the real one
            if isinstance(real, PacketListField | VirtualField) or real.name in ("length", "num_addrs"):
                continue  # lists of packets, build-time helpers and lengths have their own tests above
            yield pytest.param(cls, real, id=f"{cls.__name__}.{real.name}")


@pytest.mark.parametrize(("cls", "fld"), list(_overridable_fields()))
def test_every_field_overridable_generic(cls, fld) -> None:
    value = _odd_value(fld)
    kwargs = {fld.name: value}
    if cls is MinimalEncapsulation and fld.name == "src":
        kwargs["S"] = 1  # the Original Source is present only with S
    default_raw = bytes(cls(**({"S": 1} if "S" in kwargs and fld.name == "src" else {})))
    raw = bytes(cls(**kwargs))
    assert raw != default_raw
    assert getattr(cls(raw), fld.name) == value
