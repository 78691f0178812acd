"""Differential test: the struct-level fast path must agree with the Scapy layers field for field.

Packets are generated from the Scapy layers (every message and extension
class, random field values, random encapsulation and link type), then
mutated (bit flips, truncation, length fields). Whenever ``fastpath.decode``
accepts a frame, its record and summary must equal what ``layered`` gives;
unmutated well-formed frames must be accepted, so the comparison cannot pass
by the fast path declining everything.
"""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import CookedLinux, Dot1Q, Ether
from scapy.packet import Raw

from mipcheck.capture import fastpath, layered
from mipcheck.capture.keys import KeyRing, MipKey
from mipcheck.capture.record import new_record, summary_body
from mipcheck.layers import (
    MIPExtCVSE,
    MIPExtFAHAAuth,
    MIPExtGenAuth,
    MIPExtMessageString,
    MIPExtMNFAAuth,
    MIPExtMNFAChallenge,
    MIPExtMNHAAuth,
    MIPExtNAI,
    MIPExtNVSE,
    MIPExtRevocationSupport,
    MIPExtTNC,
    MIPExtUDPTunnelReply,
    MIPExtUDPTunnelRequest,
    MIPExtUnknown,
    RegistrationReply,
    RegistrationRequest,
    RegistrationRevocation,
    RevocationAcknowledgment,
    TunnelData,
)

KEYS = {256: MipKey(256, b"sixteen-byte-key"), 300: MipKey(300, b"k2", "prefix-suffix-md5")}
RING = KeyRing(mip=dict(KEYS))

addresses = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
u8, u16, u32 = st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
blob = st.binary(max_size=24)
spis = st.sampled_from([256, 300, 7, 0xFFFFFFFF])


@st.composite
def extensions(draw):
    kind = draw(st.integers(0, 13))
    if kind <= 2:
        cls = (MIPExtMNHAAuth, MIPExtMNFAAuth, MIPExtFAHAAuth)[kind]
        spi = draw(spis)
        key = KEYS.get(spi)
        if key is not None and draw(st.booleans()):
            return cls(spi=spi, key=key.secret, algorithm=key.algorithm)
        return cls(spi=spi, authenticator=draw(st.binary(min_size=0, max_size=20)))
    if kind == 3:
        return MIPExtGenAuth(subtype=draw(u8), spi=draw(spis), authenticator=draw(st.binary(max_size=20)))
    if kind == 4:
        return MIPExtCVSE(reserved=draw(u8), vendor_id=draw(u32), vendor_type=draw(u16), value=draw(blob))
    if kind == 5:
        return MIPExtNVSE(reserved=draw(u16), vendor_id=draw(u32), vendor_type=draw(u16), value=draw(blob))
    if kind == 6:
        return MIPExtNAI(nai=draw(st.binary(max_size=30)))
    if kind == 7:
        return MIPExtMNFAChallenge(challenge=draw(blob))
    if kind == 8:
        return MIPExtRevocationSupport(
            I=draw(st.integers(0, 1)),
            reserved=draw(st.integers(0, 0x7FFF)),
            timestamp=draw(u32),
            extra=draw(st.binary(max_size=4)),
        )
    if kind == 9:
        return MIPExtUDPTunnelRequest(
            subtype=draw(u8),
            reserved1=draw(u8),
            F=draw(st.integers(0, 1)),
            R=draw(st.integers(0, 1)),
            reserved2=draw(st.integers(0, 63)),
            encapsulation=draw(u8),
            reserved3=draw(u16),
        )
    if kind == 10:
        return MIPExtUDPTunnelReply(
            subtype=draw(u8),
            code=draw(u8),
            F=draw(st.integers(0, 1)),
            reserved=draw(st.integers(0, 0x7FFF)),
            keepalive=draw(u16),
        )
    if kind == 11:
        return MIPExtMessageString(subtype=draw(u8), text=draw(st.binary(max_size=20)))
    if kind == 12:
        return MIPExtTNC(subtype=draw(u8), reserved=draw(u8), extra=draw(st.binary(max_size=3)))
    return MIPExtUnknown(type=draw(st.sampled_from([37, 45, 130, 139, 200, 255, 127])), data=draw(blob))


@st.composite
def messages(draw):
    kind = draw(st.integers(0, 3))
    exts = draw(st.lists(extensions(), max_size=5))
    if kind == 0:
        flags = draw(st.integers(0, 255))
        bits = {name: (flags >> (7 - i)) & 1 for i, name in enumerate("SBDMGrTx")}
        return RegistrationRequest(
            **bits,
            lifetime=draw(u16),
            home_address=draw(addresses),
            home_agent=draw(addresses),
            care_of_address=draw(addresses),
            identification=draw(st.integers(0, 2**64 - 1)),
            extensions=exts,
        )
    if kind == 1:
        return RegistrationReply(
            code=draw(u8),
            lifetime=draw(u16),
            home_address=draw(addresses),
            home_agent=draw(addresses),
            identification=draw(st.integers(0, 2**64 - 1)),
            extensions=exts,
        )
    if kind == 2:
        return RegistrationRevocation(
            reserved=draw(u8),
            A=draw(st.integers(0, 1)),
            I=draw(st.integers(0, 1)),
            reserved2=draw(st.integers(0, 0x3FFF)),
            home_address=draw(addresses),
            home_domain_address=draw(addresses),
            foreign_domain_address=draw(addresses),
            revocation_id=draw(u32),
            extensions=exts,
        )
    return RevocationAcknowledgment(
        reserved=draw(u8),
        I=draw(st.integers(0, 1)),
        reserved2=draw(st.integers(0, 0x7FFF)),
        home_address=draw(addresses),
        revocation_id=draw(u32),
        extensions=exts,
    )


@st.composite
def ip_packets(draw):
    """IPv4 datagram: a Mobile IP message (maybe inside UDP tunnelling), or plain user traffic."""
    ports = draw(st.sampled_from([(49152, 434), (434, 49152), (434, 434)]))
    what = draw(st.integers(0, 5))
    src, dst = draw(addresses), draw(addresses)
    if what <= 2:
        inner = IP(src=src, dst=dst) / UDP(sport=ports[0], dport=ports[1]) / draw(messages())
    elif what == 3:
        inner = IP(src=src, dst=dst) / TCP(sport=draw(u16), dport=draw(u16)) / Raw(draw(blob))
    elif what == 4:
        inner = IP(src=src, dst=dst) / ICMP(type=draw(st.sampled_from([0, 3, 8, 11]))) / Raw(draw(blob))
    else:
        sport, dport = draw(st.sampled_from([(53, 1024), (5000, 7)]))
        inner = IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(draw(blob))
    for _ in range(draw(st.integers(0, 2))):
        if draw(st.booleans()):
            inner = IP(src=draw(addresses), dst=draw(addresses), proto=4) / inner
        else:
            inner = (
                IP(src=draw(addresses), dst=draw(addresses))
                / UDP(sport=draw(st.sampled_from([434, 49152])), dport=434)
                / TunnelData(next_header=4)
                / inner
            )
    return bytes(inner)


@st.composite
def frames(draw):
    packet = draw(ip_packets())
    link = draw(st.sampled_from(["eth", "vlan", "sll", "raw"]))
    if link == "eth":
        return 1, bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x0800)) + packet
    if link == "vlan":
        return 1, bytes(Ether(type=0x8100) / Dot1Q(vlan=draw(st.integers(1, 4094)), type=0x0800)) + packet
    if link == "sll":
        return 113, bytes(CookedLinux(proto=0x0800)) + packet
    return 101, packet


@st.composite
def mutated(draw):
    linktype, data = draw(frames())
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.integers(0, 3))
        if how == 0 and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif how == 1 and data:
            del data[draw(st.integers(0, len(data) - 1)) :]
        elif how == 2 and len(data) > 2:
            i = draw(st.integers(0, len(data) - 2))
            data[i] = draw(u8)
        else:
            data += draw(st.binary(min_size=1, max_size=6))
    return linktype, bytes(data)


def slow_record(data: bytes, linktype: int, ring: KeyRing | None) -> dict:
    record = new_record(1, 0.0, len(data))
    layered.dissect_frame(data, linktype, record, ring)
    return record


def fast_record(decoded: tuple, data: bytes, keys) -> dict:
    return fastpath.record_of(decoded, new_record(1, 0.0, len(data)), keys)


def check_same(linktype: int, data: bytes, ring: KeyRing | None) -> bool:
    decoded = fastpath.decode(data, linktype)
    if decoded is None:
        return False
    keys = ring.mip if ring else None
    slow = slow_record(data, linktype, ring)
    assert not slow["errors"], f"fast path accepted a frame the Scapy path finds malformed: {slow['errors']}"
    assert fast_record(decoded, data, keys) == slow
    assert fastpath.summary_of(decoded, keys) == summary_body(slow)
    return True


SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@SETTINGS
@given(frames(), st.booleans())
def test_well_formed_frames_take_the_fast_path_and_match_scapy(frame, with_keys):
    linktype, data = frame
    assert check_same(linktype, data, RING if with_keys else None), "well-formed frame declined by the fast path"


@SETTINGS
@given(mutated(), st.booleans())
# Found by Hypothesis in CI: an 8-octet ICMP address mask request (type 17)
# made Scapy's ICMP raise, so the Scapy path called the packet malformed.
@example(
    (1, bytes.fromhex("02000000000202000000000108004500001c0001000040017ae100000000000000001100ffff00000000")), False
)
def test_mutated_frames_match_scapy_whenever_the_fast_path_accepts_them(frame, with_keys):
    linktype, data = frame
    assume(check_same(linktype, data, RING if with_keys else None))


def test_fast_path_declines_what_it_does_not_model():
    esp = bytes(IP(src="1.1.1.1", dst="2.2.2.2", proto=50) / Raw(b"\x00\x00\x10\x01" + bytes(40)))
    natt = bytes(IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=4500, dport=4500) / Raw(b"\xff"))
    fragment = bytes(IP(src="1.1.1.1", dst="2.2.2.2", flags="MF") / UDP(sport=1, dport=434) / Raw(b"\x01" * 30))
    truncated = bytes(IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=1, dport=434) / RegistrationRequest())[:40]
    for data in (esp, natt, fragment, truncated):
        assert fastpath.decode(data, 101) is None
    assert fastpath.decode(bytes(20), 276) is None  # SLL2 goes to Scapy


def test_authenticator_verdicts_agree_with_the_layers():
    msg = RegistrationRequest(
        home_address="10.0.0.1", extensions=[MIPExtNAI(nai=b"a@b"), MIPExtMNHAAuth(spi=256, key=KEYS[256].secret)]
    )
    data = bytes(IP(src="10.0.0.2", dst="10.0.0.3") / UDP(sport=1000, dport=434) / msg)
    bad = bytearray(data)
    bad[-1] ^= 0xFF
    for frame, expected in ((data, True), (bytes(bad), False)):
        decoded = fastpath.decode(frame, 101)
        assert decoded is not None
        assert fast_record(decoded, frame, RING.mip)["mip"]["auth"] == [{"type": 32, "spi": 256, "verified": expected}]
        assert check_same(101, frame, RING)


def test_long_length_extension_header_is_read_as_16_bits():
    ext = MIPExtGenAuth(spi=5, authenticator=b"x" * 300)
    data = bytes(IP(src="10.0.0.2", dst="10.0.0.3") / UDP(sport=1000, dport=434) / RegistrationReply(extensions=[ext]))
    decoded = fastpath.decode(data, 101)
    assert decoded is not None
    (got,) = fast_record(decoded, data, None)["mip"]["extensions"]
    assert got["length"] == 304 and struct.unpack("!H", bytes(ext)[2:4])[0] == 304
    assert check_same(101, data, None)
