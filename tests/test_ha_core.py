"""Table-driven tests of the sans-IO home agent (mipcheck.ha.core).

Requests are crafted with the Scapy layers (the reference), replies are
dissected with them too, so the home agent's own struct-level codec is
checked against an independent implementation on every case.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mipcheck.ha import HAConfig, HomeAgent, MobileNodeConfig
from mipcheck.ha.behaviour import CONFORMANT, Behaviour
from mipcheck.ha.binding import Binding
from mipcheck.ha.core import Decision
from mipcheck.ha.faults import ALL_FAULTS, FAULT_CASES, FAULTS, ROBUSTNESS, behaviour_for
from mipcheck.ha.replay import ntp_seconds
from mipcheck.ha.testing import dissect_reply, extension_types, reply_auth_valid, request
from mipcheck.ha.tunnel import TunnelError, echo_request, internet_checksum, parse_ipv4
from mipcheck.layers import (
    MIPExtCVSE,
    MIPExtMNFAAuth,
    MIPExtMNHAAuth,
    MIPExtNAI,
    MIPExtUDPTunnelReply,
    MIPExtUDPTunnelRequest,
    MIPExtUnknown,
    MobileIPMessage,
    RegistrationReply,
    RegistrationRequest,
)
from mipcheck.layers.auth import PREFIX_SUFFIX_MD5, Key, compute_authenticator
from mipcheck.layers.extensions import MIPExtTNC
from mipcheck.layers.identification import (
    high32,
    low32,
    nonce_identification,
    timestamp_identification,
)
from mipcheck.proto import codec

NOW = 1_800_000_000.0
HA = "127.0.0.1"
LOCAL = (HA, 434)
HOA = "10.1.0.5"  # timestamp replay protection
HOA_NONCE = "10.1.0.6"  # nonce replay protection
HOA_PS = "10.1.0.7"  # keyed prefix+suffix MD5
SPI = 0x1000
KEY = b"test-only-key-16"
SRC = ("127.0.0.10", 40000)  # inside the trusted network
UNTRUSTED = ("127.0.1.66", 40000)  # outside it
NAT_COA = "127.0.0.200"  # a Care-of Address that differs from the IP source: a NAT on the path
ID0 = timestamp_identification(NOW, low_bits=0x1234)
FIRST_NONCE = 0x50000000
ID_BACK = timestamp_identification(NOW - 3, low_bits=0x1234)  # inside the window, a different second than NOW


def make_config(**over: Any) -> HAConfig:
    kw: dict[str, Any] = dict(
        trusted_networks=("127.0.0.0/24",),
        mobile_nodes=(
            MobileNodeConfig(HOA, SPI, KEY),
            MobileNodeConfig(HOA_NONCE, SPI, KEY, replay="nonce"),
            MobileNodeConfig(HOA_PS, SPI, KEY, algorithm=PREFIX_SUFFIX_MD5),
        ),
    )
    kw.update(over)
    return HAConfig(**kw)


def make_ha(faults: tuple[str, ...] = (), **over: Any) -> HomeAgent:
    counter = itertools.count(FIRST_NONCE)
    return HomeAgent(make_config(**over), faults, nonce_source=lambda: next(counter))


def rrq(
    *,
    hoa: str = HOA,
    ha: str = HA,
    coa: str = SRC[0],
    ident: int = ID0,
    lifetime: int = 100,
    key: bytes | None = KEY,
    spi: int = SPI,
    **kw: Any,
) -> bytes:
    return request(
        home_address=hoa,
        home_agent=ha,
        care_of_address=coa,
        identification=ident,
        lifetime=lifetime,
        spi=spi,
        key=key,
        **kw,
    )


def flip(data: bytes, index: int) -> bytes:
    b = bytearray(data)
    b[index] ^= 0xFF
    return bytes(b)


def shorten_authenticator(data: bytes, octets: int) -> bytes:
    """The right authenticator over the octets as sent, cut to ``octets`` with the Length shrunk to match."""
    at = len(data) - 16 - 6  # type of the MN-HA authentication extension (2-octet header + SPI)
    covered = data[: at + 1] + bytes((4 + octets,)) + data[at + 2 : at + 6]
    return covered + codec.authenticator("hmac-md5", KEY, covered)[:octets]


def a_reply() -> bytes:
    return bytes(RegistrationReply(code=0, home_address=HOA, home_agent=HA, identification=ID0))


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    outcome: str
    code: int | None = None
    src: tuple[str, int] = SRC
    config: dict[str, Any] = field(default_factory=dict)
    setup: tuple[bytes, ...] = ()  # sent from src first, in order
    auth: bool | None = True  # reply's MN-HA authenticator: valid / absent (None)
    tnc: bool = True  # reply carries a TNC extension before the authenticator
    setup_src: tuple[str, int] | None = None  # where setup is sent from (default: src)


NONCE_FIRST = rrq(hoa=HOA_NONCE, ident=nonce_identification(0, 7))
NONCE_OK = rrq(hoa=HOA_NONCE, ident=nonce_identification(FIRST_NONCE, 8))
TWO_AUTH = rrq(key=None, before=[MIPExtMNHAAuth(spi=SPI, key=KEY), MIPExtMNHAAuth(spi=SPI, key=KEY)])
SHORT_AUTH = shorten_authenticator(rrq(), 8)
TRUNCATED_EXT = rrq(key=None) + b"\x83\x10abc"  # NAI claiming 16 octets, 3 present

CASES = [
    Case("accepted", rrq(), "accepted", 0),
    Case("simultaneous-unsupported", rrq(S=1), "accepted", 1),
    Case("simultaneous-supported", rrq(S=1), "accepted", 0, config={"simultaneous_bindings": True}),
    Case(
        "too-many-simultaneous",
        rrq(S=1, coa="127.0.0.11", ident=ID0 + 1),
        "denied",
        135,
        config={"simultaneous_bindings": True, "max_simultaneous_bindings": 1},
        setup=(rrq(S=1),),
    ),
    Case("missing-auth", rrq(key=None), "denied", 131),
    Case("bad-authenticator", flip(rrq(), -16), "denied", 131),
    Case("bad-authenticator-tail", flip(rrq(), -1), "denied", 131),
    Case("unknown-spi", rrq(spi=SPI + 1), "denied", 131),
    Case("two-auth-extensions", TWO_AUTH, "denied", 131),
    Case("unknown-home-address", rrq(hoa="10.9.9.9"), "denied", 131, auth=None),
    Case("stale-timestamp", rrq(ident=timestamp_identification(NOW - 60)), "denied", 133),
    Case("future-timestamp", rrq(ident=timestamp_identification(NOW + 60)), "denied", 133),
    # 3 s old (inside the window) so that 5.7.1's reply Identification differs from the request's.
    Case(
        "replay-repeat",
        rrq(ident=timestamp_identification(NOW - 3)),
        "denied",
        133,
        setup=(rrq(ident=timestamp_identification(NOW - 3)),),
    ),
    Case("nonce-first", NONCE_FIRST, "denied", 133),
    Case("nonce-ok", NONCE_OK, "accepted", 0, setup=(NONCE_FIRST,)),
    Case("nonce-replayed", NONCE_OK, "denied", 133, setup=(NONCE_FIRST, NONCE_OK)),
    Case("wrong-ha-field", rrq(ha="127.0.0.99"), "denied", 136),
    Case("reverse-tunnel-accepted", rrq(T=1), "accepted", 0),
    Case("reverse-tunnel-unavailable", rrq(T=1), "denied", 137, config={"reverse_tunneling": False}),
    Case("reverse-tunnel-mandatory", rrq(), "denied", 138, config={"reverse_tunnel_required": True}),
    Case("minimal-encapsulation", rrq(M=1), "denied", 139),
    Case("gre-encapsulation", rrq(G=1), "denied", 139),
    Case("cvse", rrq(before=[MIPExtCVSE(vendor_id=9, vendor_type=1)]), "denied", 140),
    Case("nat-udp-tunnel", rrq(coa=NAT_COA, D=1, before=[MIPExtUDPTunnelRequest()]), "accepted", 0),
    Case("forced-udp-tunnel", rrq(D=1, before=[MIPExtUDPTunnelRequest(F=1)]), "accepted", 0),
    Case("no-nat-no-udp-tunnel", rrq(D=1, before=[MIPExtUDPTunnelRequest()]), "accepted", 0),
    Case(
        "udp-tunnel-off",
        rrq(coa=NAT_COA, before=[MIPExtUDPTunnelRequest()]),
        "denied",
        142,
        config={"udp_tunneling": False},
    ),
    Case("udp-tunnel-gre", rrq(coa=NAT_COA, before=[MIPExtUDPTunnelRequest(encapsulation=47)]), "denied", 139),
    Case("udp-tunnel-short", rrq(coa=NAT_COA, before=[MIPExtUnknown(type=144, data=b"\x00\x00")]), "denied", 134),
    Case("udp-tunnel-after-auth", rrq(coa=NAT_COA, after=[MIPExtUDPTunnelRequest()]), "accepted", 0),
    Case("truncated-extension", TRUNCATED_EXT, "denied", 134),
    Case("unknown-nonskippable", rrq(before=[MIPExtUnknown(type=100, data=b"xy")]), "dropped", auth=None, tnc=False),
    Case("nonskippable-after-auth", rrq(after=[MIPExtUnknown(type=127, data=b"")]), "dropped", auth=None, tnc=False),
    Case("unknown-skippable", rrq(before=[MIPExtUnknown(type=200, data=b"xy")]), "accepted", 0),
    Case(
        "nai-and-mn-fa-auth",
        rrq(before=[MIPExtNAI(nai=b"mn@lab.test")], after=[MIPExtMNFAAuth(spi=SPI, authenticator=b"\x00" * 16)]),
        "accepted",
        0,
    ),
    Case("prefix-suffix-md5", rrq(hoa=HOA_PS, algorithm=PREFIX_SUFFIX_MD5), "accepted", 0),
    Case("untrusted-source", rrq(coa=UNTRUSTED[0]), "dropped", src=UNTRUSTED, auth=None, tnc=False),
    Case("untrusted-source-trusted-coa", rrq(coa=SRC[0]), "dropped", src=UNTRUSTED, auth=None, tnc=False),
    Case("trusted-source-untrusted-coa", rrq(coa="127.0.1.77"), "accepted", 0),
    Case("no-trusted-networks", rrq(), "dropped", config={"trusted_networks": ()}, auth=None, tnc=False),
    Case(
        "x-ha-any-source",
        rrq(coa=UNTRUSTED[0]),
        "accepted",
        0,
        src=UNTRUSTED,
        config={"role": "x-ha", "trusted_networks": ()},
        tnc=False,
    ),
    Case("x-ha-denial", rrq(key=None), "denied", 131, config={"role": "x-ha"}, tnc=False),
    Case("truncated-fixed-part", rrq()[:20], "dropped", auth=None, tnc=False),
    Case("not-a-request", a_reply(), "ignored", auth=None, tnc=False),
    Case("empty", b"", "dropped", auth=None, tnc=False),
    Case("deregistration", rrq(lifetime=0, ident=ID0 + 1), "accepted", 0, setup=(rrq(),)),
    Case("deregistration-all", rrq(lifetime=0, coa=HOA, ident=ID0 + 1), "accepted", 0, setup=(rrq(),)),
    # RFC 5265 trust branches: a live binding registered from inside, then probed from outside.
    Case("renewal", rrq(ident=ID0 + 1), "accepted", 0, setup=(rrq(),)),
    Case(
        "untrusted-renewal",
        rrq(coa=UNTRUSTED[0], ident=ID0 + 1),
        "dropped",
        src=UNTRUSTED,
        setup=(rrq(),),
        setup_src=SRC,
        auth=None,
        tnc=False,
    ),
    Case(
        "untrusted-dereg",
        rrq(coa=HOA, lifetime=0, ident=ID0 + 1),
        "dropped",
        src=UNTRUSTED,
        setup=(rrq(),),
        setup_src=SRC,
        auth=None,
        tnc=False,
    ),
    Case("untrusted-bad-auth", flip(rrq(coa=UNTRUSTED[0]), -1), "dropped", src=UNTRUSTED, auth=None, tnc=False),
    Case(
        "untrusted-registered-coa",
        rrq(coa="127.0.1.77", ident=ID0 + 1),
        "dropped",
        src=UNTRUSTED,
        setup=(rrq(coa="127.0.1.77"),),
        setup_src=SRC,
        auth=None,
        tnc=False,
    ),
    # Replay branches a real HA gets wrong: a replay of a later registration, of a de-registration.
    Case("replay-of-later", rrq(ident=ID_BACK + 1), "denied", 133, setup=(rrq(ident=ID_BACK), rrq(ident=ID_BACK + 1))),
    Case(
        "dereg-replay",
        rrq(lifetime=0, ident=ID_BACK + 1),
        "denied",
        133,
        setup=(rrq(ident=ID_BACK), rrq(lifetime=0, ident=ID_BACK + 1), rrq(ident=ID_BACK + 2)),
    ),
    Case("short-authenticator", SHORT_AUTH, "denied", 131),
    Case("lifetime-shorter-renewal", rrq(lifetime=30, ident=ID0 + 1), "accepted", 0, setup=(rrq(lifetime=300),)),
    Case(
        "tunnel-keepalive",
        codec.tunnel_data(echo_request(HOA, HA, seq=7)),
        "accepted",
        None,
        setup=(rrq(coa=NAT_COA, before=[MIPExtUDPTunnelRequest()]),),
        auth=None,
        tnc=False,
    ),
]
CASE_IDS = [c.name for c in CASES]


def run(case: Case, faults: tuple[str, ...] = ()) -> tuple[HomeAgent, Decision]:
    ha = make_ha(faults, **case.config)
    for data in case.setup:
        ha.handle(data, case.setup_src or case.src, LOCAL, NOW)
    return ha, ha.handle(case.data, case.src, LOCAL, NOW)


def test_case_names_unique() -> None:
    assert len(set(CASE_IDS)) == len(CASE_IDS)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_reply_code_paths(case: Case) -> None:
    ha, d = run(case)
    assert (d.outcome, d.code) == (case.outcome, case.code), d.reason
    assert d.source == case.src
    if case.outcome in ("dropped", "ignored"):
        assert d.reply is None and d.reply_to is None
        return
    # RFC 5944 3.8.3.1: the reply goes back to the request's source address and port.
    assert d.reply_to == case.src
    if case.data[0] == 4:  # tunnel data: the keepalive reply is judged in test_udp_tunnel_*
        return
    reply = dissect_reply(d.reply)
    req = MobileIPMessage(case.data)
    assert reply.code == case.code
    assert reply.home_address == req.home_address  # RFC 5944 3.8.3.2: copied
    assert (
        reply_auth_valid(d.reply, SPI, KEY, PREFIX_SUFFIX_MD5 if req.home_address == HOA_PS else "hmac-md5")
        is case.auth
    )
    types = extension_types(d.reply)
    assert (149 in types) is case.tnc
    if case.tnc and case.auth:
        assert types.index(149) < types.index(32), "TNC must precede the MN-HA authentication extension"
    if case.code == 136:
        assert reply.home_agent == HA  # RFC 5944 3.8.2.1: the home agent's own unicast address
    else:
        assert reply.home_agent == req.home_agent
    if case.outcome == "denied":
        assert reply.lifetime == 0
    if case.code != 133 and req.home_address != HOA_NONCE:
        assert reply.identification == req.identification  # RFC 5944 5.7.1: copied whole when valid
    if case.outcome == "accepted":
        assert reply.lifetime == min(req.lifetime, ha.config.max_lifetime)
        assert d.lifetime == reply.lifetime


# ---------------------------------------------------------------- identification (RFC 5944 5.7)


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (0.0, True),
        (-7.0, True),
        (7.0, True),
        (-6.999, True),
        (-7.001, False),
        (7.001, False),
        (-3600.0, False),
        (3600.0, False),
    ],
)
def test_timestamp_skew_edges(offset: float, accepted: bool) -> None:
    ha = make_ha()
    ident = timestamp_identification(NOW + offset)
    d = ha.handle(rrq(ident=ident), SRC, LOCAL, NOW)
    assert d.outcome == ("accepted" if accepted else "denied"), d.reason
    reply = dissect_reply(d.reply)
    if accepted:
        assert reply.identification == ident
    else:
        assert d.code == 133
        # RFC 5944 5.7.1: high-order 32 bits = the home agent's time, low-order copied.
        assert high32(reply.identification) == ntp_seconds(NOW)
        assert low32(reply.identification) == low32(ident)
        assert reply_auth_valid(d.reply, SPI, KEY) is True


def test_strict_ordering() -> None:
    ha = make_ha()
    assert ha.handle(rrq(ident=ID0), SRC, LOCAL, NOW).code == 0
    for older in (ID0, ID0 - 1):
        d = ha.handle(rrq(ident=older), SRC, LOCAL, NOW)
        assert d.code == 133, older
        assert low32(dissect_reply(d.reply).identification) == low32(older)
    assert ha.handle(rrq(ident=ID0 + 1), SRC, LOCAL, NOW).code == 0
    assert ha.replay_state(HOA).last_accepted == ID0 + 1


def test_not_strict_accepts_duplicate_without_extending_lifetime() -> None:
    ha = make_ha(replay_strict=False)
    assert ha.handle(rrq(ident=ID0, lifetime=100), SRC, LOCAL, NOW).lifetime == 100
    # RFC 5944 3.8.2.2: a duplicate of an accepted request must not extend the lifetime.
    d = ha.handle(rrq(ident=ID0, lifetime=100), SRC, LOCAL, NOW + 5)
    assert (d.outcome, d.lifetime) == ("accepted", 95)
    assert ha.bindings[HOA][0].expires == NOW + 100
    # An older (but in-window) identification is accepted when ordering is not enforced.
    assert ha.handle(rrq(ident=ID0 - 5, lifetime=100), SRC, LOCAL, NOW + 6).code == 0


def test_nonce_flow() -> None:
    ha = make_ha()
    d = ha.handle(rrq(hoa=HOA_NONCE, ident=nonce_identification(0xDEAD, 1)), SRC, LOCAL, NOW)
    assert d.code == 133
    rid = dissect_reply(d.reply).identification
    assert (high32(rid), low32(rid)) == (FIRST_NONCE, 1)  # RFC 5944 5.7.2: new HA nonce high, MN nonce copied low
    d = ha.handle(rrq(hoa=HOA_NONCE, ident=nonce_identification(FIRST_NONCE, 2)), SRC, LOCAL, NOW)
    assert d.code == 0
    rid = dissect_reply(d.reply).identification
    assert (high32(rid), low32(rid)) == (FIRST_NONCE + 1, 2)
    # The old HA nonce is used up; the new one works once.
    assert ha.handle(rrq(hoa=HOA_NONCE, ident=nonce_identification(FIRST_NONCE, 3)), SRC, LOCAL, NOW).code == 133
    assert ha.handle(rrq(hoa=HOA_NONCE, ident=nonce_identification(FIRST_NONCE + 2, 4)), SRC, LOCAL, NOW).code == 0
    # Repeating the mobile node's nonce with the current HA nonce is a replay.
    assert ha.handle(rrq(hoa=HOA_NONCE, ident=nonce_identification(FIRST_NONCE + 3, 4)), SRC, LOCAL, NOW).code == 133


# ---------------------------------------------------------------- lifetime (RFC 5944 3.8.2.2, 3.8.3.2)


@pytest.mark.parametrize(
    ("requested", "max_lifetime", "granted"),
    [
        (1, 1800, 1),
        (1799, 1800, 1799),
        (1800, 1800, 1800),
        (1801, 1800, 1800),
        (65534, 1800, 1800),
        (65535, 1800, 1800),
        (65535, 65535, 65535),
        (100, 65535, 100),
        (1, 1, 1),
        (2, 1, 1),
    ],
)
def test_lifetime_edges(requested: int, max_lifetime: int, granted: int) -> None:
    ha = make_ha(max_lifetime=max_lifetime)
    d = ha.handle(rrq(lifetime=requested), SRC, LOCAL, NOW)
    assert (d.code, d.lifetime, dissect_reply(d.reply).lifetime) == (0, granted, granted)
    (b,) = ha.bindings[HOA]
    if granted == 65535:  # RFC 5944 3.3: all ones is infinity
        assert ha.expire(NOW + 10**9) == [] and HOA in ha.bindings
    else:
        assert ha.expire(NOW + granted - 0.001) == []
        assert ha.expire(NOW + granted) == [b]
        assert HOA not in ha.bindings


def test_expired_binding_gone_before_next_request() -> None:
    ha = make_ha()
    ha.handle(rrq(lifetime=10), SRC, LOCAL, NOW)
    ha.handle(b"", SRC, LOCAL, NOW + 10)  # any datagram sweeps expired bindings first
    assert HOA not in ha.bindings


def test_deregistration_of_one_care_of_address_keeps_the_others() -> None:
    ha = make_ha(simultaneous_bindings=True)
    ha.handle(rrq(S=1, coa="127.0.0.11", ident=ID0), SRC, LOCAL, NOW)
    ha.handle(rrq(S=1, coa="127.0.0.12", ident=ID0 + 1), SRC, LOCAL, NOW)
    assert {b.care_of_address for b in ha.bindings[HOA]} == {"127.0.0.11", "127.0.0.12"}
    d = ha.handle(rrq(lifetime=0, coa="127.0.0.11", ident=ID0 + 2), SRC, LOCAL, NOW)
    assert (d.code, d.lifetime) == (0, 0)
    assert [b.care_of_address for b in ha.bindings[HOA]] == ["127.0.0.12"]
    d = ha.handle(rrq(lifetime=0, coa=HOA, ident=ID0 + 3), SRC, LOCAL, NOW)  # CoA = home address: all
    assert (d.code, d.lifetime) == (0, 0) and HOA not in ha.bindings
    ha.check_invariants()


def test_registration_without_s_replaces_bindings() -> None:
    ha = make_ha(simultaneous_bindings=True)
    ha.handle(rrq(S=1, coa="127.0.0.11", ident=ID0), SRC, LOCAL, NOW)
    ha.handle(rrq(S=1, coa="127.0.0.12", ident=ID0 + 1), SRC, LOCAL, NOW)
    ha.handle(rrq(coa="127.0.0.13", ident=ID0 + 2), SRC, LOCAL, NOW)
    assert [b.care_of_address for b in ha.bindings[HOA]] == ["127.0.0.13"]


# ---------------------------------------------------------------- TNC (RFC 5265 3.4, 4.3)


@pytest.mark.parametrize(
    "data",
    [rrq(), rrq(ident=timestamp_identification(NOW - 100)), rrq(ha="127.0.0.99")],
    ids=["accepted", "denied-133", "denied-136"],
)
def test_tnc_format_placement_and_coverage(data: bytes) -> None:
    d = make_ha().handle(data, SRC, LOCAL, NOW)
    reply = d.reply
    fixed = codec.RRP_FIXED.size
    # Exactly: fixed part, TNC (149, 2, 0, 0), MN-HA authentication extension.
    assert reply[fixed : fixed + 4] == bytes((149, 2, 0, 0))
    assert reply[fixed + 4] == 32
    assert reply_auth_valid(reply, SPI, KEY) is True
    # The authenticator covers the TNC: without it the same authenticator no longer verifies.
    stripped = reply[:fixed] + reply[fixed + 4 :]
    assert reply_auth_valid(stripped, SPI, KEY) is False
    tnc = dissect_reply(reply).extensions[0]
    assert isinstance(tnc, MIPExtTNC) and (tnc.length, tnc.subtype, tnc.reserved) == (2, 0, 0)


def test_trust_is_by_source_address_not_care_of_address() -> None:
    ha = make_ha()
    assert ha.handle(rrq(coa=SRC[0]), UNTRUSTED, LOCAL, NOW).outcome == "dropped"
    assert ha.handle(rrq(coa=UNTRUSTED[0]), SRC, LOCAL, NOW).code == 0


def test_untrusted_drops_are_logged_with_source_and_rate_limited() -> None:
    ha = make_ha()
    data = rrq(coa=UNTRUSTED[0])
    ds = [ha.handle(data, (f"127.0.9.{i % 250}", 1000 + i), LOCAL, NOW) for i in range(1000)]
    assert all(d.outcome == "dropped" and d.reply is None for d in ds)
    logged = [d for d in ds if d.log]
    assert len(logged) == ha.config.log_burst
    assert all(d.source[0] in d.reason and d.as_log()["source"] == f"{d.source[0]}:{d.source[1]}" for d in logged)
    later = ha.handle(data, UNTRUSTED, LOCAL, NOW + 1.0)  # the bucket refills with time only
    assert later.log and later.suppressed == 1000 - ha.config.log_burst
    assert later.as_log()["suppressed"] == later.suppressed


def test_authenticated_decisions_are_always_logged() -> None:
    ha = make_ha()
    ds = [ha.handle(rrq(ident=ID0 + i), SRC, LOCAL, NOW) for i in range(200)]
    assert all(d.log and d.code == 0 for d in ds)


def test_as_log_never_contains_the_secret() -> None:
    for case in CASES:
        _ha, d = run(case)
        text = repr(d.as_log())
        assert KEY.decode() not in text and KEY.hex() not in text


# ---------------------------------------------------------------- RFC 3519 UDP tunnelling


def nat_registration(ha: HomeAgent, nat: tuple[str, int] = ("127.0.0.10", 61000)) -> Decision:
    return ha.handle(rrq(coa=NAT_COA, D=1, before=[MIPExtUDPTunnelRequest()]), nat, LOCAL, NOW)


def test_udp_tunnel_reply_and_binding_endpoint() -> None:
    ha = make_ha(keepalive_interval=25)
    nat = ("127.0.0.10", 61000)
    d = nat_registration(ha, nat)
    assert d.udp_tunnel and d.reply_to == nat
    ext = dissect_reply(d.reply).extensions
    assert [e.type for e in ext] == [44, 149, 32]  # all covered by the authenticator
    assert isinstance(ext[0], MIPExtUDPTunnelReply) and (ext[0].code, ext[0].keepalive) == (0, 25)
    (b,) = ha.bindings[HOA]
    assert (b.udp_tunnel, b.tunnel_endpoint, b.care_of_address) == (True, nat, NAT_COA)


def test_tunnel_data_decapsulate_encapsulate_and_keepalive() -> None:
    ha = make_ha()
    nat = ("127.0.0.10", 61000)
    nat_registration(ha, nat)
    inner = echo_request(HOA, "127.0.0.50")
    assert ha.decapsulate(codec.tunnel_data(inner), nat) == inner
    for bad_src in [("127.0.0.10", 61001), ("127.0.0.11", 61000)]:
        err = ha.decapsulate(codec.tunnel_data(inner), bad_src)
        assert isinstance(err, TunnelError) and "no registered" in err.reason
    spoofed = echo_request("10.9.9.9", "127.0.0.50")
    assert isinstance(ha.decapsulate(codec.tunnel_data(spoofed), nat), TunnelError)
    assert isinstance(ha.decapsulate(codec.tunnel_data(inner, 47), nat), TunnelError)
    assert isinstance(ha.decapsulate(codec.tunnel_data(b"\x45\x00"), nat), TunnelError)
    # Data decision: accepted, not logged, inner packet handed out.
    d = ha.handle(codec.tunnel_data(inner), nat, LOCAL, NOW)
    assert (d.outcome, d.inner, d.reply, d.log) == ("accepted", inner, None, False)
    # Keepalive: an ICMP Echo Request to the home agent is answered inside the tunnel.
    ka = ha.handle(codec.tunnel_data(echo_request(HOA, HA, seq=7)), nat, LOCAL, NOW)
    assert ka.reply_to == nat and ka.reply[:4] == bytes((4, 4, 0, 0))
    hdr = parse_ipv4(ka.reply[4:])
    assert (hdr.src, hdr.dst, ka.reply[4 + hdr.ihl]) == (HA, HOA, 0)
    from scapy.layers.inet import ICMP, IP

    pkt = IP(ka.reply[4:])
    assert pkt[ICMP].type == 0 and pkt[ICMP].seq == 7
    assert internet_checksum(ka.reply[4 : 4 + hdr.ihl]) == 0  # IP header checksum valid
    assert internet_checksum(ka.reply[4 + hdr.ihl :]) == 0  # ICMP checksum valid
    # Towards the mobile node.
    out, dest = ha.encapsulate(HOA, b"\x45" + bytes(19))
    assert (out[:4], dest) == (bytes((4, 4, 0, 0)), nat)
    assert isinstance(ha.encapsulate("10.9.9.9", b""), TunnelError)
    # Dropped from anyone else.
    assert ha.handle(codec.tunnel_data(inner), ("127.0.0.99", 1), LOCAL, NOW).outcome == "dropped"


def test_new_registration_moves_the_endpoint() -> None:
    ha = make_ha()
    nat_registration(ha, ("127.0.0.10", 61000))
    ha.handle(rrq(coa=NAT_COA, ident=ID0 + 1, before=[MIPExtUDPTunnelRequest()]), ("127.0.0.10", 62000), LOCAL, NOW)
    inner = echo_request(HOA, "127.0.0.50")
    assert isinstance(ha.decapsulate(codec.tunnel_data(inner), ("127.0.0.10", 61000)), TunnelError)
    assert ha.decapsulate(codec.tunnel_data(inner), ("127.0.0.10", 62000)) == inner
    ha.check_invariants()


# ---------------------------------------------------------------- fault profiles


def key(d: Decision) -> tuple[Any, ...]:
    return (d.outcome, d.code, d.reply, d.reply_to, d.log, d.lifetime, d.tnc, d.udp_tunnel)


BASELINE = {c.name: run(c)[1] for c in CASES}
WITH_REPLY = {n for n, d in BASELINE.items() if d.reply is not None}
WITH_TNC = {n for n, d in BASELINE.items() if d.tnc}
WITH_TNC_AND_AUTH = {
    n
    for n in WITH_TNC
    if reply_auth_valid(BASELINE[n].reply, SPI, KEY, PREFIX_SUFFIX_MD5 if n == "prefix-suffix-md5" else "hmac-md5")
    is not None
}
DENIED_WITH_TNC = {n for n in WITH_TNC if BASELINE[n].outcome == "denied"}
ACCEPTED_REGISTRATIONS = {n for n, d in BASELINE.items() if d.outcome == "accepted" and d.lifetime}
UNTRUSTED_DROPS = {
    "untrusted-source",
    "untrusted-source-trusted-coa",
    "no-trusted-networks",
    "untrusted-renewal",
    "untrusted-dereg",
    "untrusted-bad-auth",
    "untrusted-registered-coa",
}
TUNNEL_DATA = {"tunnel-keepalive"}
REPLAY_CASES = {
    "stale-timestamp",
    "future-timestamp",
    "replay-repeat",
    "replay-of-later",
    "dereg-replay",
    "nonce-first",
    "nonce-replayed",
}
TIMESTAMP_REPLAYS = REPLAY_CASES - {"nonce-first", "nonce-replayed"}
WITH_MN_HA_AUTH = {n for n in WITH_REPLY - TUNNEL_DATA if BASELINE[n].reply and bytes((32, 20)) in BASELINE[n].reply}

EXPECTED_CHANGES: dict[str, set[str]] = {
    "answer-untrusted": UNTRUSTED_DROPS,
    # Trust follows the CoA field: differs wherever source and CoA disagree (a deregistration
    # from home carries the home address as CoA, outside the trusted network).
    "trust-by-coa": {"untrusted-source-trusted-coa", "trusted-source-untrusted-coa", "deregistration-all"},
    "omit-tnc": WITH_TNC,
    "bad-tnc-format": WITH_TNC,
    "tnc-after-auth": WITH_TNC_AND_AUTH,  # without an authenticator there is no "after"
    "no-tnc-on-denial": DENIED_WITH_TNC,
    "trust-all-when-unconfigured": {"no-trusted-networks"},
    "no-untrusted-log": UNTRUSTED_DROPS,
    "no-udp-tunnel": {
        "nat-udp-tunnel",
        "forced-udp-tunnel",
        "udp-tunnel-off",
        "udp-tunnel-gre",
        "udp-tunnel-short",
        "tunnel-keepalive",
    },
    "reply-to-port-434": WITH_REPLY - TUNNEL_DATA,
    "answer-untrusted-renewal": {"untrusted-renewal", "untrusted-registered-coa"},
    "answer-untrusted-dereg": {"untrusted-dereg"},
    "auth-before-trust": {"untrusted-bad-auth"},
    "untrusted-reply-to-coa": UNTRUSTED_DROPS,
    "trust-registered-coa": {"untrusted-registered-coa"},
    "no-tnc-on-renewal": {"renewal", "lifetime-shorter-renewal"},
    "no-tnc-with-udp-tunnel": {"nat-udp-tunnel", "forced-udp-tunnel"},
    "extra-bad-tnc": {n for n in WITH_TNC if BASELINE[n].outcome == "accepted"},
    "tunnel-data-to-port-434": TUNNEL_DATA,
    "accept-missing-auth": {"missing-auth", "x-ha-denial"},
    "truncated-auth-compare": {"bad-authenticator-tail", "short-authenticator"},
    "accept-unknown-spi": {"unknown-spi"},
    "no-replay-check": REPLAY_CASES,
    "bad-reply-identification": REPLAY_CASES,
    "ignore-ha-field": {"wrong-ha-field"},
    "reject-skippable": {"unknown-skippable"},
    "accept-nonskippable": {"unknown-nonskippable", "nonskippable-after-auth"},
    "dereg-nonzero-lifetime": {"deregistration", "deregistration-all"},
    "grant-longer-lifetime": ACCEPTED_REGISTRATIONS,
    "bad-reverse-tunnel-code": {"reverse-tunnel-accepted", "reverse-tunnel-unavailable"},
    "mangle-reply-identification": WITH_REPLY - TUNNEL_DATA,
    "reply-without-mn-ha-auth": WITH_MN_HA_AUTH,
    "replay-first-only": {"replay-of-later", "dereg-replay"},
    "replay-dereg-unchecked": {"dereg-replay"},
    "drop-replays": TIMESTAMP_REPLAYS,
    "accept-future-identification": {"future-timestamp"},
    "auth-compare-claimed-length": {"short-authenticator"},
    "ha-field-copied-in-136": {"wrong-ha-field"},
    "nonskippable-after-auth-ignored": {"nonskippable-after-auth"},
    "lifetime-keeps-longest": {"lifetime-shorter-renewal"},
}


def test_every_fault_has_an_expectation() -> None:
    assert set(EXPECTED_CHANGES) == set(FAULTS)
    assert all(EXPECTED_CHANGES.values())


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_changes_exactly_what_it_names(fault: str) -> None:
    changed = {c.name for c in CASES if key(run(c, (fault,))[1]) != key(BASELINE[c.name])}
    assert changed == EXPECTED_CHANGES[fault]


FAULT_EFFECT: dict[str, Callable[[Decision, Decision], bool]] = {
    "answer-untrusted": lambda b, f: b.reply is None and f.reply is not None and not f.tnc,
    "trust-by-coa": lambda b, f: (b.reply is None) != (f.reply is None),
    "omit-tnc": lambda b, f: b.tnc and not f.tnc,
    "bad-tnc-format": lambda b, f: bytes((149, 4, 1, 0, 0, 0)) in f.reply and bytes((149, 2, 0, 0)) not in f.reply,
    "tnc-after-auth": lambda b, f: (
        f.reply.endswith(bytes((149, 2, 0, 0))) and not b.reply.endswith(bytes((149, 2, 0, 0)))
    ),
    "no-tnc-on-denial": lambda b, f: f.outcome == "denied" and b.tnc and not f.tnc,
    "trust-all-when-unconfigured": lambda b, f: b.reply is None and f.code == 0 and f.tnc,
    "no-untrusted-log": lambda b, f: b.log and not f.log and f.outcome == "dropped",
    "no-udp-tunnel": lambda b, f: (
        (not f.udp_tunnel and f.code == 0) or (b.inner is None and b.reply and f.outcome == "dropped")
    ),  # keepalive: no tunnel
    "reply-to-port-434": lambda b, f: f.reply_to == (b.reply_to[0], 434) and f.reply == b.reply,
    "answer-untrusted-renewal": lambda b, f: b.reply is None and f.code == 0 and f.lifetime,
    "answer-untrusted-dereg": lambda b, f: b.reply is None and f.code == 0 and f.lifetime == 0,
    "auth-before-trust": lambda b, f: b.reply is None and f.code == 131,
    "untrusted-reply-to-coa": lambda b, f: b.reply is None and f.reply_to == (f.care_of_address, f.source[1]),
    "trust-registered-coa": lambda b, f: b.reply is None and f.code == 0,
    "no-tnc-on-renewal": lambda b, f: b.tnc and not f.tnc and f.code == 0,
    "no-tnc-with-udp-tunnel": lambda b, f: b.udp_tunnel and b.tnc and not f.tnc,
    "extra-bad-tnc": lambda b, f: bytes((149, 2, 0, 0, 149, 2, 1, 0)) in f.reply,
    "tunnel-data-to-port-434": lambda b, f: f.reply == b.reply and f.reply_to == (b.reply_to[0], 434),
    "accept-missing-auth": lambda b, f: (b.code, f.code) == (131, 0),
    "truncated-auth-compare": lambda b, f: (b.code, f.code) == (131, 0),
    "accept-unknown-spi": lambda b, f: (b.code, f.code) == (131, 0),
    "no-replay-check": lambda b, f: (b.code, f.code) == (133, 0),
    "bad-reply-identification": lambda b, f: b.code == f.code == 133 and b.reply != f.reply,
    "ignore-ha-field": lambda b, f: (b.code, f.code) == (136, 0),
    "reject-skippable": lambda b, f: (b.code, f.code) == (0, 134),
    "accept-nonskippable": lambda b, f: b.outcome == "dropped" and f.code == 0,
    "dereg-nonzero-lifetime": lambda b, f: b.lifetime == 0 and f.lifetime,
    "grant-longer-lifetime": lambda b, f: f.lifetime > b.lifetime,
    "bad-reverse-tunnel-code": lambda b, f: f.code == 128,
    "mangle-reply-identification": lambda b, f: f.reply[12:20] != b.reply[12:20] and f.reply[:12] == b.reply[:12],
    "reply-without-mn-ha-auth": lambda b, f: bytes((32, 20)) not in f.reply and bytes((34, 20)) in f.reply,
    "replay-first-only": lambda b, f: (b.code, f.code) == (133, 0),
    "replay-dereg-unchecked": lambda b, f: (b.code, f.code, f.lifetime) == (133, 0, 0),
    "drop-replays": lambda b, f: b.code == 133 and f.outcome == "dropped" and f.reply is None,
    "accept-future-identification": lambda b, f: (b.code, f.code) == (133, 0),
    "auth-compare-claimed-length": lambda b, f: (b.code, f.code) == (131, 0),
    "ha-field-copied-in-136": lambda b, f: b.code == f.code == 136 and f.reply[8:12] != b.reply[8:12],
    "nonskippable-after-auth-ignored": lambda b, f: b.outcome == "dropped" and f.code == 0,
    "lifetime-keeps-longest": lambda b, f: b.lifetime == 30 and f.lifetime == 300,
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_effect_is_the_named_one(fault: str) -> None:
    for name in EXPECTED_CHANGES[fault]:
        case = next(c for c in CASES if c.name == name)
        assert FAULT_EFFECT[fault](BASELINE[name], run(case, (fault,))[1]), name


def test_bad_reply_identification_copies_request_identification() -> None:
    case = next(c for c in CASES if c.name == "stale-timestamp")
    _ha, d = run(case, ("bad-reply-identification",))
    assert dissect_reply(d.reply).identification == MobileIPMessage(case.data).identification


def test_dereg_fault_keeps_the_binding() -> None:
    case = next(c for c in CASES if c.name == "deregistration")
    ha, _d = run(case, ("dereg-nonzero-lifetime",))
    assert HOA in ha.bindings
    ha, _d = run(case)
    assert HOA not in ha.bindings


@pytest.mark.parametrize("fault", sorted(ALL_FAULTS))
def test_every_fault_changes_one_behaviour_setting_the_core_reads(fault: str) -> None:
    """A fault is one Behaviour setting, not the default, and the core reads that setting."""
    f = ALL_FAULTS[fault]
    assert len(f.changes) == 1, f.changes
    ((setting, value),) = f.changes.items()
    assert setting in {x.name for x in fields(Behaviour)}
    assert getattr(CONFORMANT, setting) != value
    b = behaviour_for((fault,))
    assert b != CONFORMANT and b.changed() == {setting: value}
    source = (Path(__file__).parents[1] / "mipcheck" / "ha" / "core.py").read_text()
    assert re.search(rf"\b(b|behaviour|self\.behaviour)\.{setting}\b", source), setting
    if f.robustness:  # a fuzz target: no conformance case, outside FAULTS and FAULT_CASES
        assert not f.cases and not f.conformant and fault in ROBUSTNESS and fault not in FAULT_CASES
        return
    assert bool(f.cases) != f.conformant and set(FAULT_CASES) == set(FAULTS)
    assert fault in FAULTS or (f.conformant and f.passes)


def test_every_behaviour_setting_has_a_fault() -> None:
    assert {s for f in ALL_FAULTS.values() for s in f.changes} == {x.name for x in fields(Behaviour)}


BEHAVIOUR_FOR = [
    ((), {}),
    (("omit-tnc",), {"tnc_position": "omitted"}),
    (("tnc-after-auth",), {"tnc_position": "after-auth"}),
    (
        ("answer-untrusted-dereg", "reply-to-port-434"),
        {"untrusted_requests": "answer-deregistrations", "reply_port": 434},
    ),
    (
        ("truncated-auth-compare", "auth-compare-claimed-length"),
        {"auth_compare_octets": 8, "auth_compare_claimed_length": True},
    ),
    (("log-untrusted-once",), {"log_untrusted": "once-per-source"}),
    (("no-replay-check", "no-replay-check"), {"replay_check": "none"}),
    (("omit-tnc", "tnc-after-auth"), "both set behaviour.tnc_position"),
    (("grant-longer-lifetime", "lifetime-keeps-longest"), "both set behaviour.lifetime_grant"),
    (("no-untrusted-log", "log-untrusted-once"), "both set behaviour.log_untrusted"),
    (("nope",), "unknown fault 'nope'"),
]


@pytest.mark.parametrize(("names", "expected"), BEHAVIOUR_FOR, ids=[",".join(n) or "none" for n, _ in BEHAVIOUR_FOR])
def test_behaviour_for(names: tuple[str, ...], expected: dict[str, Any] | str) -> None:
    from mipcheck.errors import ConfigError

    if isinstance(expected, str):
        with pytest.raises(ConfigError, match=re.escape(expected)):
            behaviour_for(names)
        return
    b = behaviour_for(names)
    assert b.changed() == expected and b == replace(Behaviour(), **expected)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("trust_by", "coa"),
        ("reply_port", 435),
        ("tnc_on_denial", 0),
        ("auth_compare_octets", 17),
        ("reverse_tunnel_denial_code", 7),
    ],
)
def test_behaviour_rejects_unknown_values(setting: str, value: Any) -> None:
    from mipcheck.errors import ConfigError

    with pytest.raises(ConfigError, match=f"behaviour.{setting}"):
        Behaviour(**{setting: value})


def test_home_agent_takes_a_behaviour_or_fault_names() -> None:
    from mipcheck.errors import ConfigError

    case = next(c for c in CASES if c.name == "wrong-ha-field")
    by_name = run(case, ("ha-field-copied-in-136",))[1]
    ha = HomeAgent(make_config(), behaviour=Behaviour(ha_field_in_136="copied"), nonce_source=lambda: FIRST_NONCE)
    assert key(ha.handle(case.data, case.src, LOCAL, NOW)) == key(by_name)
    with pytest.raises(ConfigError, match="not both"):
        HomeAgent(make_config(), ("omit-tnc",), Behaviour())


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_conformant_fast_path_decides_as_the_steps_do(case: Case) -> None:
    """_accept_conformant (the hot path) against the steps it fuses: same Decision, bindings and replay state."""
    fast, d = run(case)
    slow = make_ha(**case.config)
    slow._fast = False
    for data in case.setup:
        slow.handle(data, case.setup_src or case.src, LOCAL, NOW)
    s = slow.handle(case.data, case.src, LOCAL, NOW)
    assert d == s
    if case.name in ("accepted", "renewal", "reverse-tunnel-accepted", "prefix-suffix-md5", "nai-and-mn-fa-auth"):
        direct = make_ha(**case.config)
        for data in case.setup:
            direct.handle(data, case.setup_src or case.src, LOCAL, NOW)
        assert direct._accept_conformant(case.data, case.src, LOCAL, NOW) == d, "the fast path takes it"
    assert dict(fast.bindings) == dict(slow.bindings)
    assert fast.replay_state(HOA) == slow.replay_state(HOA)


def test_unknown_fault_rejected() -> None:
    from mipcheck.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown fault 'nope'"):
        HomeAgent(make_config(), ("nope",))


# ---------------------------------------------------------------- lean codec == Scapy layers

addresses = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))


@settings(max_examples=150, deadline=None)
@given(
    flags=st.integers(0, 255),
    lifetime=st.integers(0, 65535),
    hoa=addresses,
    ha=addresses,
    coa=addresses,
    ident=st.integers(0, 2**64 - 1),
    nai=st.binary(max_size=40),
    spi=st.integers(256, 2**32 - 1),
    key=st.binary(min_size=1, max_size=80),
    tunnel=st.booleans(),
    force=st.booleans(),
    algorithm=st.sampled_from(["hmac-md5", PREFIX_SUFFIX_MD5]),
)
def test_codec_request_matches_scapy(
    flags: int,
    lifetime: int,
    hoa: str,
    ha: str,
    coa: str,
    ident: int,
    nai: bytes,
    spi: int,
    key: bytes,
    tunnel: bool,
    force: bool,
    algorithm: str,
) -> None:
    exts = codec.nai_extension(nai) + (codec.udp_tunnel_request(force=force) if tunnel else b"")
    ours = codec.build_request(flags, lifetime, hoa, ha, coa, ident, exts, auth=(spi, algorithm, key))
    bits = {name: (flags >> (7 - i)) & 1 for i, name in enumerate("SBDMGrTx")}
    scapy_exts = (
        [MIPExtNAI(nai=nai)]
        + ([MIPExtUDPTunnelRequest(F=int(force))] if tunnel else [])
        + [MIPExtMNHAAuth(spi=spi, key=key, algorithm=algorithm)]
    )
    ref = bytes(
        RegistrationRequest(
            lifetime=lifetime,
            home_address=hoa,
            home_agent=ha,
            care_of_address=coa,
            identification=ident,
            extensions=scapy_exts,
            **bits,
        )
    )
    assert ours == ref
    parsed = codec.parse_request(ours)
    pkt = MobileIPMessage(ours)
    assert (
        parsed.flags,
        parsed.lifetime,
        parsed.home_address,
        parsed.home_agent,
        parsed.care_of_address,
        parsed.identification,
    ) == (
        int.from_bytes(ref[1:2], "big"),
        pkt.lifetime,
        pkt.home_address,
        pkt.home_agent,
        pkt.care_of_address,
        pkt.identification,
    )
    assert [e.type for e in parsed.extensions] == [e.type for e in pkt.extensions]
    auth = parsed.extensions[-1]
    assert codec.spi_of(ours, auth) == spi
    assert codec.check_authenticator(ours, auth, algorithm, key)
    assert [c.valid for c in pkt.verify({spi: Key(key, algorithm)})] == [True]
    if tunnel:
        (t,) = [e for e in parsed.extensions if e.type == 144]
        assert codec.parse_udp_tunnel_request(ours, t) == (force, False, 4)


@settings(max_examples=100, deadline=None)
@given(
    code=st.integers(0, 255),
    lifetime=st.integers(0, 65535),
    hoa=addresses,
    ha=addresses,
    ident=st.integers(0, 2**64 - 1),
    tnc=st.booleans(),
    tunnel=st.booleans(),
    keepalive=st.integers(0, 65535),
    spi=st.integers(256, 2**32 - 1),
    key=st.binary(min_size=1, max_size=70),
)
def test_codec_reply_matches_scapy(
    code: int,
    lifetime: int,
    hoa: str,
    ha: str,
    ident: int,
    tnc: bool,
    tunnel: bool,
    keepalive: int,
    spi: int,
    key: bytes,
) -> None:
    exts = (codec.udp_tunnel_reply(0, keepalive) if tunnel else b"") + (codec.TNC_EXTENSION if tnc else b"")
    ours = codec.build_reply(code, lifetime, hoa, ha, ident, exts, auth=(spi, "hmac-md5", key))
    scapy_exts = (
        ([MIPExtUDPTunnelReply(code=0, keepalive=keepalive)] if tunnel else [])
        + ([MIPExtTNC()] if tnc else [])
        + [MIPExtMNHAAuth(spi=spi, key=key)]
    )
    ref = bytes(
        RegistrationReply(
            code=code, lifetime=lifetime, home_address=hoa, home_agent=ha, identification=ident, extensions=scapy_exts
        )
    )
    assert ours == ref
    parsed = codec.parse_reply(ours)
    assert (parsed.code, parsed.lifetime, parsed.home_address, parsed.home_agent, parsed.identification) == (
        code,
        lifetime,
        hoa,
        ha,
        ident,
    )
    if tunnel:
        assert codec.parse_udp_tunnel_reply(ours, parsed.extensions[0]) == (0, False, keepalive)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_walk_extensions_never_raises_and_matches_layers(tail: bytes) -> None:
    data = bytes(RegistrationRequest()) + tail
    exts, err = codec.walk_extensions(data, 24)
    assert sum(e.header + e.length for e in exts) <= len(tail)
    if err is None:
        assert sum(e.header + e.length for e in exts) == len(tail)
        pkt = MobileIPMessage(data)
        assert [e.type for e in exts] == [e.type for e in pkt.extensions]
    make_ha().handle(data, SRC, LOCAL, NOW)  # never raises


def test_authenticator_matches_layers() -> None:
    for alg in ("hmac-md5", PREFIX_SUFFIX_MD5):
        for k in (b"k", b"x" * 64, b"y" * 100):
            assert codec.authenticator(alg, k, b"data") == compute_authenticator(alg, k, b"data")
    # The layers now share the codec's MAC, so also hold it to the standard library (RFC 2104, RFC 2002 3.5.1).
    for k in (b"k", b"x" * 64, b"y" * 100):
        assert codec.authenticator("hmac-md5", k, b"data") == hmac.new(k, b"data", hashlib.md5).digest()
        assert codec.authenticator(PREFIX_SUFFIX_MD5, k, b"data") == hashlib.md5(k + b"data" + k).digest()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.sampled_from([SRC, UNTRUSTED]))
def test_handle_never_raises(data: bytes, src: tuple[str, int]) -> None:
    d = make_ha().handle(data, src, LOCAL, NOW)
    assert d.outcome in ("accepted", "denied", "dropped", "ignored")
    assert (d.reply is None) == (d.reply_to is None)


def test_identification_low_bits_struct() -> None:
    assert struct.unpack("!Q", struct.pack("!Q", ID0))[0] == ID0


# ---------------------------------------------------------------- hot path: the same values, built faster


def test_accepted_decision_and_binding_hold_their_fields_in_order() -> None:
    """The accept path builds Decision and Binding from positional tuples; built by keyword they must be equal."""
    ha = make_ha()
    data = rrq(T=1)
    d = ha.handle(data, SRC, LOCAL, NOW)
    assert d == Decision(
        "accepted", 0, "registration accepted", d.reply, SRC, HOA, SRC, lifetime=100, care_of_address=SRC[0], tnc=True
    )
    assert (d.log, d.suppressed, d.udp_tunnel, d.inner) == (True, 0, False, None)
    (b,) = ha.bindings[HOA]
    assert b == Binding(HOA, SRC[0], 100, NOW, ID0, data[1], SRC)
    assert (b.expires, b.reverse_tunnel, b.udp_tunnel, b.tunnel_endpoint, b.keepalive) == (
        NOW + 100,
        True,
        False,
        None,
        None,
    )
    nat = ("127.0.0.10", 61000)
    d = ha.handle(rrq(coa=NAT_COA, ident=ID0 + 1, before=[MIPExtUDPTunnelRequest()]), nat, LOCAL, NOW)
    assert (d.reply_to, d.care_of_address, d.udp_tunnel, d.lifetime) == (nat, NAT_COA, True, 100)
    (b,) = ha.bindings[HOA]
    assert (b.care_of_address, b.source, b.udp_tunnel, b.tunnel_endpoint, b.keepalive) == (
        NAT_COA,
        nat,
        True,
        nat,
        ha.config.keepalive_interval,
    )


STAMPS = ["2027-01-15T08:00:00.000Z", "2027-01-15T08:00:59.999Z"]


@pytest.mark.parametrize("faults", [(), *((f,) for f in sorted(FAULTS))])
def test_text_log_line_is_the_formatted_record(faults: tuple[str, ...]) -> None:
    """server.text_line (the hot path) writes what format_record makes of Decision.as_log()."""
    from mipcheck.ha.server import format_record, text_line

    for case in CASES:
        d = run(case, faults)[1]
        for stamp in STAMPS:
            assert text_line(d, stamp) == format_record({"time": stamp, **d.as_log()}, False), case.name


def test_log_clock_caches_without_changing_a_stamp() -> None:
    """The log clock reuses its last stamp within a millisecond; every stamp is still the one computed afresh."""
    from mipcheck.ha.server import _Clock, _timestamp

    def fresh(t: float) -> str:
        sec = int(t)
        return f"{_timestamp(float(sec))[:-5]}.{int((t - sec) * 1000):03d}Z"

    clock = _Clock()
    times = [
        NOW,
        NOW,
        NOW + 0.0004,
        NOW + 0.0011,
        NOW + 0.9995,
        NOW + 1.0,
        NOW + 0.5,
        NOW - 86400.25,
        NOW - 86400.25,
        0.0,
        1.9999,
    ]
    times += [NOW + i * 0.000377 for i in range(6000)]  # many stamps per millisecond, across seconds
    for t in times:
        assert clock(t) == fresh(t), t


@pytest.mark.parametrize(
    ("name", "rule_id", "check"),
    [
        ("missing-auth", "5944-3.8.2.1-AUTH-REQUIRED", "MIP-AUTH-MISSING"),
        ("bad-authenticator-tail", "5944-3.8.2.1-AUTH-FAILED-131", "MIP-AUTH-BAD"),
        ("stale-timestamp", "5944-3.8.2.1-ID-MISMATCH-133", "MIP-ID-STALE"),
        ("wrong-ha-field", "5944-3.8.2.1-UNKNOWN-HA-136", "MIP-HA-FIELD"),
    ],
)
def test_denials_name_the_rule_the_request_broke(name: str, rule_id: str, check: str) -> None:
    from mipcheck.catalogue import load_catalogue
    from mipcheck.outcomes import Party

    d = BASELINE[name]
    v = d.violation
    assert v is not None and (v.rule_id, v.party, v.code) == (rule_id, Party.MOBILE_NODE, check)
    assert rule_id in {r.id for r in load_catalogue()}
    assert d.as_log()["rule_id"] == rule_id and d.as_log()["party"] == "mobile-node"
    assert BASELINE["accepted"].violation is None and "rule_id" not in BASELINE["accepted"].as_log()
