"""Property tests: build -> bytes -> dissect -> bytes is the identity, and dissection never raises."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import GRE
from scapy.packet import Packet, Raw

from mipcheck.layers import (
    AGENT_EXTENSION_CLASSES,
    EXTENSION_CLASSES,
    MESSAGE_CLASSES,
    AgentAdvertisement,
    AgentChallenge,
    AgentExtension,
    AgentExtPadding,
    AgentExtUnknown,
    AgentSolicitation,
    MinimalEncapsulation,
    MIPExtCVSE,
    MIPExtension,
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

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

u1 = st.integers(0, 1)
u5 = st.integers(0, 0x1F)
u6 = st.integers(0, 0x3F)
u7 = st.integers(0, 0x7F)
u8 = st.integers(0, 0xFF)
u14 = st.integers(0, 0x3FFF)
u15 = st.integers(0, 0x7FFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, 2**64 - 1)
ipv4 = st.ip_addresses(v=4).map(str)


def blob(max_size: int) -> st.SearchStrategy[bytes]:
    return st.binary(max_size=max_size)


# --------------------------------------------------------------------------- extension strategies

AUTH_CLASSES = [MIPExtMNHAAuth, MIPExtMNFAAuth, MIPExtFAHAAuth]


@st.composite
def auth_fields(draw, long_length: bool = False) -> dict[str, Any]:
    kw: dict[str, Any] = {"spi": draw(u32)}
    how = draw(st.sampled_from(["computed", "explicit", "placeholder"]))
    if how == "computed":
        kw["key"] = draw(st.binary(min_size=1, max_size=32))
        kw["algorithm"] = draw(st.sampled_from(["hmac-md5", "prefix-suffix-md5"]))
    elif how == "explicit":
        kw["authenticator"] = draw(blob(300 if long_length else 251))
    return kw


EXTENSION_FIELDS: dict[type[MIPExtension], st.SearchStrategy[dict[str, Any]]] = {
    MIPExtMNHAAuth: auth_fields(),
    MIPExtMNFAAuth: auth_fields(),
    MIPExtFAHAAuth: auth_fields(),
    MIPExtGenAuth: auth_fields(long_length=True).flatmap(
        lambda kw: st.fixed_dictionaries({"subtype": u8}).map(kw.__or__)
    ),
    MIPExtCVSE: st.fixed_dictionaries({"reserved": u8, "vendor_id": u32, "vendor_type": u16, "value": blob(300)}),
    MIPExtNVSE: st.fixed_dictionaries({"reserved": u16, "vendor_id": u32, "vendor_type": u16, "value": blob(247)}),
    MIPExtNAI: st.fixed_dictionaries({"nai": blob(255)}),
    MIPExtMNFAChallenge: st.fixed_dictionaries({"challenge": blob(255)}),
    MIPExtRevocationSupport: st.fixed_dictionaries({"I": u1, "reserved": u15, "timestamp": u32, "extra": blob(20)}),
    MIPExtUDPTunnelRequest: st.fixed_dictionaries(
        {
            "subtype": u8,
            "reserved1": u8,
            "F": u1,
            "R": u1,
            "reserved2": u6,
            "encapsulation": u8,
            "reserved3": u16,
            "extra": blob(20),
        }
    ),
    MIPExtUDPTunnelReply: st.fixed_dictionaries(
        {"subtype": u8, "code": u8, "F": u1, "reserved": u15, "keepalive": u16, "extra": blob(20)}
    ),
    MIPExtMessageString: st.fixed_dictionaries({"subtype": u8, "text": blob(254)}),
    MIPExtTNC: st.fixed_dictionaries({"subtype": u8, "reserved": u8, "extra": blob(20)}),
}
UNKNOWN_TYPES = [t for t in range(256) if t not in EXTENSION_CLASSES]
EXTENSION_FIELDS[MIPExtUnknown] = st.fixed_dictionaries({"type": st.sampled_from(UNKNOWN_TYPES), "data": blob(255)})


def test_every_extension_class_has_a_strategy() -> None:
    assert set(EXTENSION_CLASSES.values()) | {MIPExtUnknown} == set(EXTENSION_FIELDS)


@st.composite
def extension(draw, cls: type[MIPExtension] | None = None) -> MIPExtension:
    if cls is None:
        cls = draw(st.sampled_from(sorted(EXTENSION_FIELDS, key=lambda c: c.__name__)))
    kw = draw(EXTENSION_FIELDS[cls])
    ext = cls(**kw)
    if draw(st.booleans()):  # an explicit Length, consistent with the body
        ext.length = len(bytes(cls(**kw))) - cls.header_size
    return ext


extension_list = st.lists(extension(), max_size=5)


# --------------------------------------------------------------------------- message strategies

MESSAGE_FIELDS: dict[type[Packet], st.SearchStrategy[dict[str, Any]]] = {
    RegistrationRequest: st.fixed_dictionaries(
        {
            **{f: u1 for f in "SBDMGrTx"},
            "lifetime": u16,
            "home_address": ipv4,
            "home_agent": ipv4,
            "care_of_address": ipv4,
            "identification": u64,
            "extensions": extension_list,
        }
    ),
    RegistrationReply: st.fixed_dictionaries(
        {
            "code": u8,
            "lifetime": u16,
            "home_address": ipv4,
            "home_agent": ipv4,
            "identification": u64,
            "extensions": extension_list,
        }
    ),
    RegistrationRevocation: st.fixed_dictionaries(
        {
            "reserved": u8,
            "A": u1,
            "I": u1,
            "reserved2": u14,
            "home_address": ipv4,
            "home_domain_address": ipv4,
            "foreign_domain_address": ipv4,
            "revocation_id": u32,
            "extensions": extension_list,
        }
    ),
    RevocationAcknowledgment: st.fixed_dictionaries(
        {
            "reserved": u8,
            "I": u1,
            "reserved2": u15,
            "home_address": ipv4,
            "revocation_id": u32,
            "extensions": extension_list,
        }
    ),
}


def test_every_message_class_has_a_strategy() -> None:
    assert set(MESSAGE_CLASSES.values()) == set(MESSAGE_FIELDS) | {TunnelData}


def _same_structure(a: Packet, b: Packet) -> None:
    assert type(a) is type(b)
    assert [type(e) for e in a.extensions] == [type(e) for e in b.extensions]


@pytest.mark.parametrize("cls", list(MESSAGE_FIELDS), ids=lambda c: c.__name__)
@SETTINGS
@given(data=st.data())
def test_message_roundtrip(cls: type[Packet], data: st.DataObject) -> None:
    msg = cls(**data.draw(MESSAGE_FIELDS[cls]))
    raw = bytes(msg)
    parsed = MobileIPMessage(raw)
    assert bytes(parsed) == raw
    _same_structure(parsed, msg)
    # and behind UDP port 434, in both directions
    for sport, dport in ((434, 434), (40000, 434), (434, 40000)):
        udp = IP(bytes(IP(dst="10.0.0.2") / UDP(sport=sport, dport=dport) / msg))[UDP]
        assert bytes(udp.payload) == raw
        _same_structure(udp.payload, msg)


@pytest.mark.parametrize("cls", sorted(EXTENSION_FIELDS, key=lambda c: c.__name__), ids=lambda c: c.__name__)
@SETTINGS
@given(data=st.data())
def test_extension_roundtrip(cls: type[MIPExtension], data: st.DataObject) -> None:
    ext = data.draw(extension(cls))
    raw = bytes(ext)
    parsed = MIPExtension(raw)
    assert type(parsed) is cls
    assert bytes(parsed) == raw
    # inside a message, after another extension
    msg = RegistrationReply(extensions=[MIPExtTNC(), ext])
    again = MobileIPMessage(bytes(msg))
    assert bytes(again) == bytes(msg)
    assert [type(e) for e in again.extensions] == [MIPExtTNC, cls]


inner_ip = st.builds(lambda src, dst, body: IP(src=src, dst=dst) / UDP(sport=1, dport=2) / body, ipv4, ipv4, blob(40))


@SETTINGS
@given(next_header=st.sampled_from([4, 47, 55, 0, 200]), reserved=u16, inner=inner_ip, proto=u8, rest=blob(30))
def test_tunnel_data_roundtrip(next_header: int, reserved: int, inner: Packet, proto: int, rest: bytes) -> None:
    payload: Packet
    if next_header == 4:
        payload = inner
    elif next_header == 47:
        payload = GRE(proto=0x0800) / inner
    elif next_header == 55:
        payload = MinimalEncapsulation(proto=4, dst="203.0.113.1") / inner
    else:
        payload = Raw(rest)
    msg = TunnelData(next_header=next_header, reserved=reserved) / payload
    raw = bytes(msg)
    parsed = MobileIPMessage(raw)
    assert type(parsed) is TunnelData
    assert bytes(parsed) == raw
    assert type(parsed.payload) is type(payload) or (not rest and next_header not in (4, 47, 55))


@SETTINGS
@given(
    cls=st.sampled_from([RegistrationRequest, RegistrationReply, RegistrationRevocation, RevocationAcknowledgment]),
    before=extension_list,
    chain=st.lists(
        st.tuples(
            st.sampled_from([*AUTH_CLASSES, MIPExtGenAuth]),
            st.binary(min_size=1, max_size=20),
            st.sampled_from(["hmac-md5", "prefix-suffix-md5"]),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_computed_authenticators_verify(cls, before, chain) -> None:
    """Each key-computed authenticator verifies with its key, whatever precedes it."""
    from mipcheck.layers import Key

    exts = [e for e in before if not hasattr(e, "spi")]  # keep SPIs unique: only the chain authenticates
    auths = [ext_cls(spi=0x1000 + i, key=key, algorithm=alg) for i, (ext_cls, key, alg) in enumerate(chain)]
    msg = cls(extensions=exts + auths)
    keys = {0x1000 + i: Key(key, alg) for i, (_, key, alg) in enumerate(chain)}
    checks = MobileIPMessage(bytes(msg)).verify(keys)
    assert [(c.spi, c.valid) for c in checks] == [(0x1000 + i, True) for i in range(len(chain))]


# --------------------------------------------------------------------------- agent advertisement

AGENT_UNKNOWN_TYPES = [t for t in range(1, 256) if t not in AGENT_EXTENSION_CLASSES]


@st.composite
def agent_extension(draw) -> Packet:
    kind = draw(st.sampled_from(["mobility", "prefix", "challenge", "padding", "unknown"]))
    if kind == "padding":
        return AgentExtPadding()
    if kind == "mobility":
        kw = {f: draw(u1) for f in "RBHFMGrTUXI"}
        ext = MobilityAgentAdvertisement(
            sequence=draw(u16),
            registration_lifetime=draw(u16),
            reserved=draw(u5),
            care_of_addresses=draw(st.lists(ipv4, max_size=62)),
            **kw,
        )
    elif kind == "prefix":
        ext = PrefixLengths(prefix_lengths=draw(st.lists(u8, max_size=255)))
    elif kind == "challenge":
        ext = AgentChallenge(challenge=draw(blob(255)))
    else:
        ext = AgentExtUnknown(type=draw(st.sampled_from(AGENT_UNKNOWN_TYPES)), data=draw(blob(255)))
    if draw(st.booleans()):
        ext.length = len(bytes(ext)) - 2
    return ext


@SETTINGS
@given(
    code=st.sampled_from([0, 16]) | u8,
    lifetime=u16,
    addresses=st.lists(st.builds(RouterAddress, address=ipv4, preference=st.integers(-(2**31), 2**31 - 1)), max_size=4),
    extensions=st.lists(agent_extension(), max_size=5)
    | st.lists(st.just(AgentExtPadding()), min_size=90, max_size=160),
    explicit_count=st.booleans(),
    chksum=st.none() | u16,
)
def test_agent_advertisement_roundtrip(code, lifetime, addresses, extensions, explicit_count, chksum) -> None:
    adv = AgentAdvertisement(
        code=code,
        lifetime=lifetime,
        addresses=addresses,
        extensions=extensions,
        chksum=chksum,
        num_addrs=len(addresses) if explicit_count else None,
    )
    raw = bytes(IP(dst="224.0.0.1", ttl=1) / adv)
    parsed = IP(raw)
    assert bytes(parsed) == raw
    got = parsed[AgentAdvertisement]
    assert [type(e) for e in got.extensions] == [type(e) for e in extensions]
    assert [a.address for a in got.addresses] == [a.address for a in addresses]


@SETTINGS
@given(code=u8, reserved=u32, chksum=st.none() | u16)
def test_agent_solicitation_roundtrip(code: int, reserved: int, chksum: int | None) -> None:
    raw = bytes(IP() / AgentSolicitation(code=code, reserved=reserved, chksum=chksum))
    parsed = IP(raw)
    assert type(parsed.payload) is AgentSolicitation
    assert bytes(parsed) == raw


# --------------------------------------------------------------------------- minimal encapsulation


@SETTINGS
@given(
    proto=st.sampled_from([1, 4, 6, 17, 250]),
    s_bit=u1,
    reserved=u7,
    chksum=st.none() | u16,
    dst=ipv4,
    src=ipv4,
    body=blob(30),
    via_tunnel_data=st.booleans(),
)
def test_minimal_encapsulation_roundtrip(proto, s_bit, reserved, chksum, dst, src, body, via_tunnel_data) -> None:
    inner = {1: ICMP() / body, 4: IP() / body, 6: TCP() / body, 17: UDP() / body, 250: Raw(body or b"\x00")}[proto]
    minenc = MinimalEncapsulation(proto=proto, S=s_bit, reserved=reserved, chksum=chksum, dst=dst, src=src) / inner
    if via_tunnel_data:
        raw = bytes(IP() / UDP(sport=434, dport=434) / TunnelData(next_header=55) / minenc)
    else:
        raw = bytes(IP() / minenc)
    parsed = IP(raw)
    assert bytes(parsed) == raw
    got = parsed[MinimalEncapsulation]
    assert (got.proto, got.S, got.dst) == (proto, s_bit, dst)
    assert type(got.payload) is type(inner)  # the original protocol's layer follows the header
    if chksum is None:
        assert got.checksum_ok()
    else:
        assert got.chksum == chksum  # an explicit checksum is kept


# --------------------------------------------------------------------------- arbitrary octets


@st.composite
def mip_like_bytes(draw) -> bytes:
    """Arbitrary octets, often starting like a real message so extensions get exercised."""
    if draw(st.booleans()):
        return draw(blob(120))
    cls = draw(st.sampled_from(sorted(MESSAGE_CLASSES.values(), key=lambda c: c.__name__)))
    head = bytes([next(t for t, c in MESSAGE_CLASSES.items() if c is cls)]) + draw(
        st.binary(min_size=cls.fixed_size - 1, max_size=cls.fixed_size - 1)
    )
    tail = draw(
        st.lists(
            st.sampled_from(
                [
                    b"\x24",
                    b"\x26",
                    b"\x95\x02\x00\x00",
                    b"\x20\x14",
                    b"\xc8",
                    b"\x64",
                    b"\x90\x06",
                    b"\x2c\x06",
                    b"\x83\x05",
                ]
            )
            | blob(12),
            max_size=6,
        )
    )
    return head + b"".join(tail)


@settings(max_examples=300, deadline=None)
@given(payload=mip_like_bytes(), sport=st.sampled_from([434, 1234]))
def test_arbitrary_udp_434_payload(payload: bytes, sport: int) -> None:
    dport = 434 if sport != 434 else 5000
    for pkt in (IP() / UDP(sport=sport, dport=dport) / Raw(payload), IP() / UDP(sport=434) / Raw(payload)):
        parsed = IP(bytes(pkt))
        assert bytes(parsed[UDP].payload) == payload
        msg = parsed[UDP].payload
        if payload:
            assert isinstance(msg, MobileIPMessage)
            for ext in getattr(msg, "extensions", []):
                assert isinstance(ext, MIPExtUnknown) or type(ext) in EXTENSION_CLASSES.values()
                assert ext.skippable == (ext.type >= 128)
            msg.summary()
            msg.verify({})


@settings(max_examples=300, deadline=None)
@given(icmp_type=st.sampled_from([9, 10]), body=blob(80))
def test_arbitrary_icmp_router_discovery(icmp_type: int, body: bytes) -> None:
    payload = bytes([icmp_type]) + body
    parsed = IP(bytes(IP(proto=1) / Raw(payload)))
    assert bytes(parsed.payload) == payload
    if len(payload) >= 8:
        assert type(parsed.payload) is (AgentAdvertisement if icmp_type == 9 else AgentSolicitation)
        for ext in getattr(parsed.payload, "extensions", []):
            assert isinstance(ext, AgentExtension), repr(ext)
    parsed.summary()
