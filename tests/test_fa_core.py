"""The sans-IO foreign agent: RFC 5944 3.7 checks and denials, relaying, the visitor list, delivery, faults.

Table-driven: each check of RFC 5944 3.7.2 has a row (the request, the
configuration, the code); relayed octets are compared with what the mobile
node and the home agent sent, byte for byte, except for what the foreign
agent must change (the extensions after the MN-HA authenticator, an FA-HA or
MN-FA authenticator of its own). Authenticators are checked with the Scapy
layers (``msg.verify``), not with the codec the agent uses. Time is an
argument: lifetimes run in virtual time.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from typing import Any

import pytest
from scapy.layers.inet import IP

from mipcheck.errors import ConfigError
from mipcheck.fa.config import FAConfig, HomeAgentPeer, VisitorSA
from mipcheck.fa.core import (
    ADVERTISED,
    DELIVERED,
    DENIED,
    DROPPED,
    EXPIRED,
    FORWARDED,
    IGNORED,
    RELAYED,
    TIMED_OUT,
    TUNNELLED,
    Decision,
    ForeignAgent,
)
from mipcheck.fa.faults import FAULTS, TABLE, behaviour_for, check_faults
from mipcheck.layers import Key, RegistrationReply, RegistrationRequest
from mipcheck.proto import codec
from mipcheck.proto import numbers as n
from mipcheck.proto.ip import build_ipv4, build_udp_ipv4
from mipcheck.proto.security import SecurityAssociation

NOW = 1_800_000_000.0
FA_ADDR, OTHER_COA = "127.0.0.5", "127.0.0.6"
FA_PLACE = (FA_ADDR, 434)
HA_ADDR, HA2_ADDR = "127.0.0.2", "127.0.0.3"
HA_PLACE = (HA_ADDR, 434)
MN_LINK = ("127.0.0.9", 40000)
HOA = "10.1.0.9"
IDENT = 0x1234_5678_9ABC_DEF0
MN_HA = (300, "hmac-md5", b"mn-ha key")
MN_FA_SA = SecurityAssociation(400, b"mn-fa key")
FA_HA_SA = SecurityAssociation(500, b"fa-ha key")


def config(**over: Any) -> FAConfig:
    kw: dict[str, Any] = dict(
        address=FA_ADDR,
        port=434,
        care_of_addresses=(FA_ADDR, OTHER_COA),
        flags="FT",
        max_lifetime=600,
        home_agents=(HomeAgentPeer(HA_ADDR), HomeAgentPeer(HA2_ADDR)),
    )
    kw.update(over)
    return FAConfig(**kw)


def agent(faults: tuple[str, ...] = (), **over: Any) -> ForeignAgent:
    return ForeignAgent(config(**over), faults)


def request(
    flags: int = 0,
    lifetime: int = 300,
    hoa: str = HOA,
    ha: str = HA_ADDR,
    coa: str = FA_ADDR,
    ident: int = IDENT,
    before: bytes = b"",
    after: bytes = b"",
    auth: bool = True,
) -> bytes:
    """A Registration Request: ``before`` the MN-HA authenticator (the home agent's), ``after`` it (the FA's)."""
    return codec.build_request(flags, lifetime, hoa, ha, coa, ident, before, auth=MN_HA if auth else None) + after


def mn_fa_auth(message: bytes, sa: SecurityAssociation = MN_FA_SA, spi: int | None = None) -> bytes:
    """``message`` with an MN-FA authentication extension appended (RFC 5944 3.5.3)."""
    covered = message + codec.AUTH_HDR.pack(n.EXT_MN_FA_AUTH, 20, sa.spi if spi is None else spi)
    return covered + codec.authenticator(sa.algorithm, sa.key, covered)


def fa_ha_auth(message: bytes, sa: SecurityAssociation = FA_HA_SA) -> bytes:
    covered = message + codec.AUTH_HDR.pack(n.EXT_FA_HA_AUTH, 20, sa.spi)
    return covered + codec.authenticator(sa.algorithm, sa.key, covered)


def ha_reply(
    code: int = 0, lifetime: int = 300, hoa: str = HOA, ha: str = HA_ADDR, ident: int = IDENT, after: bytes = b""
) -> bytes:
    return codec.build_reply(code, lifetime, hoa, ha, ident, auth=MN_HA) + after


def feed(
    fa: ForeignAgent, data: bytes, src: tuple[str, int] = MN_LINK, now: float = NOW
) -> tuple[Decision, list[tuple[bytes, tuple[str, int], tuple[str, int]]]]:
    """One datagram in; its decision and what the agent sends."""
    fa.receive_datagram(data, src, FA_PLACE, now)
    decisions = []
    while (d := fa.next_event()) is not None:
        decisions.append(d)
    sent = fa.datagrams_to_send(now)
    return decisions[-1], sent


def register(
    fa: ForeignAgent, now: float = NOW, granted: int = 300, link: tuple[str, int] = MN_LINK, **req: Any
) -> bytes:
    """Relay a request and its accepting reply; returns the reply the mobile node got."""
    ha = req.get("ha", HA_ADDR)
    d, _ = feed(fa, request(**req), src=link, now=now)
    assert d.outcome == RELAYED, d
    rq = codec.parse_request(request(**req))
    d, sent = feed(fa, ha_reply(0, granted, rq.home_address, ha, rq.identification), src=(ha, 434), now=now)
    assert d.outcome == RELAYED and d.code == 0, d
    return sent[0][0]


# --------------------------------------------------------------------------- denials (RFC 5944 3.7.2, RFC 3024)


@dataclasses.dataclass(frozen=True)
class Denial:
    name: str
    code: int
    request: dict[str, Any]
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    lifetime: int | None = None  # the reply's Lifetime, when not the request's
    setup: Callable[[ForeignAgent], None] | None = None


def _fill_one_slot(fa: ForeignAgent) -> None:
    d, _ = feed(fa, request(hoa="10.1.0.77", ident=1), src=("127.0.0.77", 40000))
    assert d.outcome == RELAYED


DENIALS = [
    Denial("lifetime-too-long", 69, {"lifetime": 601}, lifetime=600),
    Denial("infinite-lifetime-too-long", 69, {"lifetime": n.INFINITE_LIFETIME}, lifetime=600),
    Denial("poorly-formed-extension-overrun", 70, {"after": bytes((n.EXT_NVSE, 40, 0, 0))}),
    Denial("poorly-formed-long-length-overrun", 70, {"before": bytes((n.EXT_CVSE, 0, 0, 200, 1, 2))}),
    Denial("minimal-encapsulation", 72, {"flags": n.FLAG_M}),
    Denial("gre", 72, {"flags": n.FLAG_G}),
    Denial("reverse-tunnel-unavailable", 74, {"flags": n.FLAG_T}, {"flags": "F"}),
    Denial("reverse-tunnel-mandatory", 75, {}, {"reverse_tunnel_required": True}),
    Denial("foreign-care-of-address", 77, {"coa": "127.0.0.77"}),
    Denial("home-agent-not-served", 65, {"ha": "127.0.0.99"}),
    Denial("home-agent-unspecified", 98, {"ha": "0.0.0.0"}),
    Denial("home-agent-broadcast", 98, {"ha": "255.255.255.255"}),
    Denial("home-address-zero-without-nai", 97, {"hoa": "0.0.0.0"}),
    Denial("busy-advertised", 66, {}, {"flags": "BF"}),
    Denial("visitor-list-full", 66, {}, {"max_visitors": 1}, setup=_fill_one_slot),
    Denial("mn-fa-auth-missing", 67, {}, {"mobile_nodes": (VisitorSA(HOA, MN_FA_SA),)}),
    Denial("mn-fa-auth-required-no-sa", 67, {"after": b""}, {"require_mn_fa_auth": True}),
    Denial(
        "mn-fa-auth-wrong-key",
        67,
        {"after": b"\x21\x14" + struct.pack("!I", 400) + bytes(16)},
        {"mobile_nodes": (VisitorSA(HOA, MN_FA_SA),)},
    ),
]


@pytest.mark.parametrize("case", DENIALS, ids=lambda c: c.name)
def test_each_check_denies_with_its_code_and_copies_the_fields(case: Denial) -> None:
    fa = agent(**case.config)
    if case.setup is not None:
        case.setup(fa)
    data = request(**case.request)
    d, sent = feed(fa, data)
    assert (d.outcome, d.code) == (DENIED, case.code), d
    assert 64 <= d.code <= 127  # foreign agent codes (RFC 5944 3.4)
    [(reply, local, dst)] = sent
    assert (local, dst) == (FA_PLACE, MN_LINK)  # to the mobile node, from where the request arrived
    rq, rp = RegistrationRequest(data), RegistrationReply(reply)
    assert rp.code == case.code
    # RFC 5944 3.7.2.3: Home Address, Home Agent and Identification copied; Lifetime copied or the maximum
    assert (rp.home_address, rp.home_agent, rp.identification) == (rq.home_address, rq.home_agent, rq.identification)
    assert rp.lifetime == (rq.lifetime if case.lifetime is None else case.lifetime)
    has_mn_fa = bool(case.config.get("mobile_nodes"))
    assert len(reply) == 20 + (22 if has_mn_fa else 0)
    if has_mn_fa:  # denials to a mobile node with an MN-FA association are authenticated (RFC 5944 3.5.3)
        assert [c.valid for c in rp.verify({400: Key(b"mn-fa key")})] == [True]
    assert all(p.home_address != rq.home_address for p in fa.pending) and fa.visitors == ()  # nothing relayed


@pytest.mark.parametrize("case", DENIALS, ids=lambda c: c.name)
def test_relay_without_checks_relays_what_each_check_denies(case: Denial) -> None:
    fa = agent(("relay-without-checks",), **case.config)
    if case.setup is not None:
        case.setup(fa)
    data = request(**case.request)
    d, sent = feed(fa, data)
    if case.request.get("ha") in ("0.0.0.0", "255.255.255.255"):
        assert d.outcome == DROPPED and sent == []  # nowhere to relay it to
        return
    assert d.outcome == RELAYED, d
    for_ha = request(**{k: v for k, v in case.request.items() if k != "after"})  # the FA's extensions go
    assert sent[0][0] == for_ha and sent[0][2][0] == case.request.get("ha", HA_ADDR)


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty", b"", "empty"),
        ("truncated", request()[:23], "truncated Registration Request"),
        ("unrecognised-nonskippable-for-the-fa", request(after=b"\x64\x00"), "non-skippable extension 100"),
    ],
)
def test_silent_drops(name: str, data: bytes, reason: str) -> None:
    d, sent = feed(agent(), data)
    assert d.outcome == DROPPED and reason in d.reason and sent == []


def test_one_denial_a_second_to_the_same_mobile_node() -> None:
    fa = agent()
    bad = request(lifetime=601)
    assert feed(fa, bad, now=NOW)[0].outcome == DENIED
    d, sent = feed(fa, bad, now=NOW + 0.5)
    assert d.outcome == DROPPED and d.code == 69 and "one a second" in d.reason and sent == []
    assert feed(fa, bad, src=("127.0.0.10", 40000), now=NOW + 0.5)[0].outcome == DENIED  # another mobile node
    assert feed(fa, bad, now=NOW + 1.0)[0].outcome == DENIED


# --------------------------------------------------------------------------- relaying requests (RFC 5944 3.7.2.2)


@pytest.mark.parametrize(
    ("name", "req", "cfg"),
    [
        ("plain", {}, {}),
        ("lifetime-at-the-maximum", {"lifetime": 600}, {}),
        ("deregistration", {"lifetime": 0}, {}),
        ("reverse-tunnel", {"flags": n.FLAG_T}, {}),
        ("reserved-bits-ignored", {"flags": n.FLAG_R | n.FLAG_X}, {}),  # RFC 5944 3.3: 'r', 'x' ignored
        ("second-care-of-address", {"coa": OTHER_COA}, {}),
        ("co-located-care-of-address", {"flags": n.FLAG_D, "coa": "192.0.2.1"}, {}),
        ("ha-unknown-nonskippable-untouched", {"before": b"\x64\x02ab"}, {}),
        ("no-mn-ha-auth-relayed-for-the-ha-to-judge", {"auth": False}, {}),
        ("any-home-agent-when-none-configured", {"ha": "127.0.0.99"}, {"home_agents": ()}),
        ("infinite-lifetime-accepted", {"lifetime": n.INFINITE_LIFETIME}, {"max_lifetime": n.INFINITE_LIFETIME}),
        ("dynamic-home-address-with-nai", {"hoa": "0.0.0.0", "before": codec.nai_extension("mn@example")}, {}),
    ],
)
def test_relay_is_the_request_unchanged(name: str, req: dict[str, Any], cfg: dict[str, Any]) -> None:
    fa = agent(**cfg)
    data = request(**req)
    d, sent = feed(fa, data)
    assert d.outcome == RELAYED, d
    [(relayed, local, dst)] = sent
    assert relayed == data  # octet for octet: the MN-HA authenticator still verifies
    assert (local, dst) == (FA_PLACE, (req.get("ha", HA_ADDR), 434))
    rq = codec.parse_request(data)
    [p] = fa.pending
    assert (p.home_address, p.identification, p.link, p.lifetime) == (rq.home_address, IDENT, MN_LINK, rq.lifetime)


def test_relay_removes_the_extensions_after_the_mn_ha_authenticator() -> None:
    fa = agent(mobile_nodes=(VisitorSA(HOA, MN_FA_SA),))
    for_ha = request(before=codec.nai_extension("mn@example"))
    data = mn_fa_auth(for_ha + b"\xc8\x02zz")  # a skippable unknown extension, then MN-FA authentication
    d, sent = feed(fa, data)
    assert d.outcome == RELAYED
    assert sent[0][0] == for_ha  # everything up to and including the MN-HA authentication extension
    assert [c.valid for c in RegistrationRequest(sent[0][0]).verify({300: Key(b"mn-ha key")})] == [True]


def test_relay_appends_fa_ha_authentication() -> None:
    fa = agent(home_agents=(HomeAgentPeer(HA_ADDR, 4340, FA_HA_SA),))
    data = request()
    d, sent = feed(fa, data)
    [(relayed, _local, dst)] = sent
    assert dst == (HA_ADDR, 4340) and relayed[: len(data)] == data
    checks = RegistrationRequest(relayed).verify({300: Key(b"mn-ha key"), 500: Key(b"fa-ha key")})
    assert [(c.ext_type, c.valid) for c in checks] == [(n.EXT_MN_HA_AUTH, True), (n.EXT_FA_HA_AUTH, True)]


def test_mn_fa_authentication_verified() -> None:
    fa = agent(mobile_nodes=(VisitorSA(HOA, MN_FA_SA),))
    d, _ = feed(fa, mn_fa_auth(request()))
    assert d.outcome == RELAYED
    d, _ = feed(agent(mobile_nodes=(VisitorSA(HOA, MN_FA_SA),)), mn_fa_auth(request(), spi=401))
    assert d.code == 67 and "unknown SPI 0x191" in d.reason


def test_retransmission_is_relayed_again_once_pending() -> None:
    fa = agent()
    feed(fa, request())
    d, sent = feed(fa, request(), now=NOW + 1)
    assert d.outcome == RELAYED and "retransmitted" in d.reason and len(sent) == 1
    assert len(fa.pending) == 1 and fa.pending[0].relayed_at == NOW + 1


# --------------------------------------------------------------------------- relaying replies (RFC 5944 3.7.3)


def test_accepting_reply_is_relayed_unchanged_and_makes_a_visitor() -> None:
    fa = agent()
    feed(fa, request(flags=n.FLAG_T))
    reply = ha_reply(0, 200)
    d, sent = feed(fa, reply, src=HA_PLACE)
    assert (d.outcome, d.code, d.lifetime) == (RELAYED, 0, 200)
    assert sent == [(reply, FA_PLACE, MN_LINK)]
    assert fa.pending == ()
    [v] = fa.visitors
    assert (v.home_address, v.home_agent, v.care_of_address, v.link) == (HOA, HA_ADDR, FA_ADDR, MN_LINK)
    assert (v.lifetime, v.expires, v.reverse_tunnel) == (200, NOW + 200, True)


def test_reply_loses_fa_ha_auth_and_gains_mn_fa_auth() -> None:
    fa = agent(home_agents=(HomeAgentPeer(HA_ADDR, sa=FA_HA_SA),), mobile_nodes=(VisitorSA(HOA, MN_FA_SA),))
    feed(fa, mn_fa_auth(request()))
    reply = ha_reply()
    d, sent = feed(fa, fa_ha_auth(reply), src=HA_PLACE)
    assert d.outcome == RELAYED
    relayed = sent[0][0]
    assert relayed[: len(reply)] == reply
    checks = RegistrationReply(relayed).verify({300: Key(b"mn-ha key"), 400: Key(b"mn-fa key")})
    assert [(c.ext_type, c.valid) for c in checks] == [(n.EXT_MN_HA_AUTH, True), (n.EXT_MN_FA_AUTH, True)]


@pytest.mark.parametrize(
    ("name", "reply", "src", "reason"),
    [
        ("no-pending-request", ha_reply(ident=IDENT + 1), HA_PLACE, "no pending request"),
        ("other-home-address", ha_reply(hoa="10.1.0.10"), HA_PLACE, "no pending request"),
        ("not-from-that-home-agent", ha_reply(), ("127.0.0.66", 434), "no pending request"),
        ("truncated", ha_reply()[:19], HA_PLACE, "truncated Registration Reply"),
        ("fa-ha-auth-missing", ha_reply(), HA_PLACE, "no FA-HA authentication"),
        ("fa-ha-auth-wrong", fa_ha_auth(ha_reply(), SecurityAssociation(500, b"wrong")), HA_PLACE, "does not verify"),
    ],
)
def test_replies_silently_discarded(name: str, reply: bytes, src: tuple[str, int], reason: str) -> None:
    fa = agent(home_agents=(HomeAgentPeer(HA_ADDR, sa=FA_HA_SA),)) if "fa-ha" in name else agent()
    feed(fa, request())
    d, sent = feed(fa, reply, src=src)
    assert d.outcome == DROPPED and reason in d.reason and sent == []
    assert len(fa.pending) == 1 and fa.visitors == ()  # still waiting for the right reply


def test_reply_matches_on_the_low_order_32_bits() -> None:
    """A nonce-based home agent puts its own nonce in the high-order bits (RFC 5944 5.7, 3.7.3.1)."""
    fa = agent()
    feed(fa, request())
    reply = ha_reply(ident=(0xCAFE_F00D << 32) | (IDENT & 0xFFFF_FFFF))
    d, sent = feed(fa, reply, src=HA_PLACE)
    assert d.outcome == RELAYED and sent[0][0] == reply


def test_poorly_formed_reply_denied_with_71() -> None:
    fa = agent()
    feed(fa, request())
    d, sent = feed(fa, codec.build_reply(0, 300, HOA, HA_ADDR, IDENT, bytes((n.EXT_NVSE, 50))), src=HA_PLACE)
    assert (d.outcome, d.code) == (DENIED, 71)
    [(reply, _, dst)] = sent
    rp = RegistrationReply(reply)
    assert (dst, rp.code, rp.home_address, rp.identification) == (MN_LINK, 71, HOA, IDENT)
    assert fa.pending == () and fa.visitors == ()


def test_denying_reply_relayed_and_no_visitor() -> None:
    fa = agent()
    feed(fa, request())
    reply = codec.build_reply(131, 0, HOA, HA_ADDR, IDENT)  # no SA at the HA: unauthenticated
    d, sent = feed(fa, reply, src=HA_PLACE)
    assert (d.outcome, d.code) == (RELAYED, 131) and sent[0][0] == reply
    assert fa.visitors == () and fa.pending == ()


def test_denied_renewal_keeps_the_current_visitor() -> None:
    fa = agent()
    register(fa)
    feed(fa, request(ident=IDENT + 1), now=NOW + 10)
    feed(fa, ha_reply(133, 0, ident=IDENT + 1), src=HA_PLACE, now=NOW + 10)
    assert fa.visitor(HOA).expires == NOW + 300


def test_deregistration_removes_the_visitor() -> None:
    fa = agent()
    register(fa)
    feed(fa, request(lifetime=0, ident=IDENT + 1), now=NOW + 5)
    d, _ = feed(fa, ha_reply(0, 0, ident=IDENT + 1), src=HA_PLACE, now=NOW + 5)
    assert "visitor removed" in d.reason and fa.visitors == ()


def test_dynamic_home_address_becomes_the_assigned_one() -> None:
    fa = agent()
    feed(fa, request(hoa="0.0.0.0", before=codec.nai_extension("mn@example")))
    d, sent = feed(fa, ha_reply(hoa="10.1.0.200"), src=HA_PLACE)
    assert d.outcome == RELAYED and sent[0][2] == MN_LINK
    assert fa.visitor("10.1.0.200") is not None


def test_two_registrations_of_one_home_address_through_one_fa() -> None:
    """RFC 5265 3.5: parallel registrations to the i-HA and the x-HA with the same home address."""
    fa = agent()
    register(fa, ha=HA_ADDR, ident=1)
    register(fa, ha=HA2_ADDR, ident=2)
    assert {v.home_agent for v in fa.visitors} == {HA_ADDR, HA2_ADDR}


# --------------------------------------------------------------------------- the visitor list in virtual time


@pytest.mark.parametrize(
    ("requested", "granted", "lifetime"),
    [(300, 200, 200), (300, 300, 300), (300, 400, 300), (1, 1, 1)],  # never longer than requested
)
def test_visitor_lifetime_and_expiry(requested: int, granted: int, lifetime: int) -> None:
    fa = agent()
    register(fa, lifetime=requested, granted=granted)
    v = fa.visitor(HOA)
    assert v.lifetime == lifetime and v.expires == NOW + lifetime
    assert fa.get_timer() == NOW + lifetime
    fa.handle_timer(NOW + lifetime - 0.001)
    assert fa.visitor(HOA) is not None
    fa.handle_timer(fa.get_timer())
    assert fa.visitors == () and fa.next_event().outcome == EXPIRED
    assert fa.get_timer() is None


def test_lifetime_counts_from_the_relay_not_the_reply() -> None:
    fa = agent()
    feed(fa, request(), now=NOW)
    feed(fa, ha_reply(0, 300), src=HA_PLACE, now=NOW + 2)
    assert fa.visitor(HOA).expires == NOW + 300


def test_infinite_lifetime_never_expires() -> None:
    fa = agent(max_lifetime=n.INFINITE_LIFETIME)
    register(fa, lifetime=n.INFINITE_LIFETIME, granted=n.INFINITE_LIFETIME)
    assert fa.visitor(HOA).expires is None and fa.get_timer() is None


def test_every_entry_point_expires_first() -> None:
    fa = agent()
    register(fa, lifetime=10, granted=10)
    feed(fa, b"\x63", now=NOW + 10)  # anything at all, at the expiry time
    assert fa.visitors == ()


def test_renewal_extends_the_visitor() -> None:
    fa = agent()
    register(fa, lifetime=100, granted=100)
    register(fa, now=NOW + 50, lifetime=100, granted=100, ident=IDENT + 1)
    assert fa.visitor(HOA).expires == NOW + 150 and len(fa.visitors) == 1


@pytest.mark.parametrize("reply_on_timeout", [True, False])
def test_pending_request_times_out(reply_on_timeout: bool) -> None:
    fa = agent(pending_timeout=7, reply_on_timeout=reply_on_timeout)
    feed(fa, request())
    assert fa.get_timer() == NOW + 7
    fa.handle_timer(NOW + 7)
    d = fa.next_event()
    assert d.outcome == TIMED_OUT and fa.pending == ()
    sent = fa.datagrams_to_send(NOW + 7)
    if reply_on_timeout:
        [(reply, _, dst)] = sent
        rp = RegistrationReply(reply)
        assert (dst, rp.code, rp.lifetime, rp.identification) == (MN_LINK, 78, 300, IDENT)
    else:
        assert sent == []
    feed(fa, ha_reply(), src=HA_PLACE, now=NOW + 8)  # too late: discarded
    assert fa.visitors == ()


# --------------------------------------------------------------------------- data (RFC 2003, RFC 3519, RFC 3024)

INNER = build_udp_ipv4(("192.0.2.50", 7), (HOA, 9), b"payload")
FROM_MN = build_udp_ipv4((HOA, 9), ("192.0.2.50", 7), b"reply")


def test_ip_in_ip_to_the_care_of_address_is_delivered() -> None:
    fa = agent()
    register(fa)
    d, sent = feed(fa, build_ipv4(HA_ADDR, FA_ADDR, 4, INNER), src=HA_PLACE)
    assert d.outcome == DELIVERED and sent == [(INNER, FA_PLACE, MN_LINK)]


def test_mip_tunnel_data_over_udp_is_delivered() -> None:
    fa = agent()
    register(fa)
    d, sent = feed(fa, codec.tunnel_data(INNER), src=HA_PLACE)
    assert d.outcome == DELIVERED and sent == [(INNER, FA_PLACE, MN_LINK)]


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        (
            "no-visitor",
            build_ipv4(HA_ADDR, FA_ADDR, 4, build_udp_ipv4(("1.2.3.4", 1), ("10.9.9.9", 2), b"x")),
            "no visitor",
        ),
        ("not-a-care-of-address", build_ipv4(HA_ADDR, "127.0.0.99", 4, INNER), "no visitor"),
        ("minimal-encapsulation", build_ipv4(HA_ADDR, FA_ADDR, 55, INNER), "not offered"),
        ("bad-inner", build_ipv4(HA_ADDR, FA_ADDR, 4, b"\x45" + bytes(10)), "not a valid IPv4"),
        ("bad-outer", b"\x45" + bytes(10), "not a valid IPv4"),
        ("tunnel-data-gre", bytes((4, 47, 0, 0)) + INNER, "Next Header 47"),
        ("tunnel-data-short", bytes((4, 4)), "shorter than"),
    ],
)
def test_tunnelled_data_that_is_not_delivered(name: str, data: bytes, reason: str) -> None:
    fa = agent()
    register(fa)
    d, sent = feed(fa, data, src=HA_PLACE)
    assert d.outcome == DROPPED and reason in d.reason and sent == []  # never forwarded (RFC 5944 4.2.2)


def test_delivery_picks_the_registration_of_the_tunnelling_home_agent() -> None:
    fa = agent()
    register(fa, ha=HA_ADDR, ident=1)
    register(fa, ha=HA2_ADDR, ident=2, now=NOW + 1, link=("127.0.0.10", 1))
    d, sent = feed(fa, build_ipv4(HA2_ADDR, FA_ADDR, 4, INNER), src=(HA2_ADDR, 434))
    assert d.home_agent == HA2_ADDR and sent[0][2] == ("127.0.0.10", 1)


def test_visitor_traffic_is_reverse_tunnelled_with_t() -> None:
    fa = agent()
    register(fa, flags=n.FLAG_T)
    d, sent = feed(fa, FROM_MN)
    assert d.outcome == TUNNELLED
    [(outer, _, dst)] = sent
    assert dst == HA_PLACE
    pkt = IP(outer)  # Scapy judges the encapsulation (RFC 2003)
    assert (pkt.src, pkt.dst, pkt.proto) == (FA_ADDR, HA_ADDR, 4) and bytes(pkt.payload) == FROM_MN


@pytest.mark.parametrize("upstream", [("127.0.0.40", 5000), None])
def test_visitor_traffic_without_t_goes_to_the_default_router(upstream: tuple[str, int] | None) -> None:
    fa = agent(upstream=upstream)
    register(fa)
    d, sent = feed(fa, FROM_MN)
    if upstream is None:
        assert d.outcome == DROPPED and sent == []
    else:
        assert d.outcome == FORWARDED and sent == [(FROM_MN, FA_PLACE, upstream)]


def test_packets_from_strangers_are_dropped() -> None:
    fa = agent(upstream=("127.0.0.40", 5000))
    register(fa)
    assert feed(fa, FROM_MN, src=("127.0.0.10", 40000))[0].outcome == DROPPED  # another link address
    spoofed = build_udp_ipv4(("10.1.0.10", 9), ("192.0.2.50", 7), b"x")
    assert feed(fa, spoofed)[0].outcome == DROPPED  # not the visitor's home address


def test_other_messages_are_ignored() -> None:
    for data in (bytes((7,)) + bytes(19), bytes((15,)) + bytes(11), b"\x09abc", b"\xff"):
        assert feed(agent(), data)[0].outcome == IGNORED


# --------------------------------------------------------------------------- faults: one table, each shows


def _advertised_coas(fa: ForeignAgent) -> Any:
    from mipcheck.proto.agent import parse_advertisement_packet

    return parse_advertisement_packet(fa.advertisement("255.255.255.255"))[3].mobility.care_of_addresses


def _sequence_after_ffff(fa: ForeignAgent) -> int:
    fa._sequence = 0xFFFF
    fa.advertisement("255.255.255.255")
    return fa.sequence


def _advertisement_ttl(fa: ForeignAgent) -> int:
    return IP(fa.advertisement("255.255.255.255")).ttl


def _too_long(fa: ForeignAgent) -> Any:
    d, sent = feed(fa, request(lifetime=601))
    return d.outcome, d.code, codec.RRQ_FIXED.unpack_from(sent[0][0])[2] if d.outcome == RELAYED else None


def _lifetime_in_69(fa: ForeignAgent) -> int:
    return RegistrationReply(feed(fa, request(lifetime=700))[1][0][0]).lifetime


def _relayed_length(fa: ForeignAgent) -> int:
    return len(feed(fa, mn_fa_auth(request()))[1][0][0])


def _nonce_reply(fa: ForeignAgent) -> str:
    feed(fa, request())
    return feed(fa, ha_reply(ident=IDENT ^ (1 << 40)), src=HA_PLACE)[0].outcome


def _visitors_after_lifetime(fa: ForeignAgent) -> int:
    register(fa, lifetime=10, granted=10)
    fa.handle_timer(NOW + 11)
    return len(fa.visitors)


def _reverse_tunnel(fa: ForeignAgent) -> str:
    register(fa, flags=n.FLAG_T)
    return feed(fa, FROM_MN)[0].outcome


FAULT_SHOWS: dict[str, tuple[Callable[[ForeignAgent], Any], dict[str, Any]]] = {
    "relay-without-checks": (_too_long, {}),
    "wrong-coa-in-advertisement": (_advertised_coas, {}),
    "sequence-wraps-to-zero": (_sequence_after_ffff, {}),
    "advertisement-ttl-64": (_advertisement_ttl, {}),
    "clamp-relayed-lifetime": (_too_long, {}),
    "lifetime-copied-in-69": (_lifetime_in_69, {}),
    "relay-mn-fa-extensions": (_relayed_length, {"mobile_nodes": (VisitorSA(HOA, MN_FA_SA),)}),
    "match-full-identification": (_nonce_reply, {}),
    "no-visitor-expiry": (_visitors_after_lifetime, {}),
    "no-reverse-tunnel": (_reverse_tunnel, {"upstream": ("127.0.0.40", 5000)}),
}
CONFORMANT_ANSWERS = {
    "relay-without-checks": (DENIED, 69, None),
    "wrong-coa-in-advertisement": (FA_ADDR, OTHER_COA),
    "sequence-wraps-to-zero": 256,
    "advertisement-ttl-64": 1,
    "clamp-relayed-lifetime": (DENIED, 69, None),
    "lifetime-copied-in-69": 600,
    "relay-mn-fa-extensions": len(request()),
    "match-full-identification": RELAYED,
    "no-visitor-expiry": 0,
    "no-reverse-tunnel": TUNNELLED,
}


def test_every_fault_has_a_scenario() -> None:
    assert set(FAULT_SHOWS) == set(FAULTS) and len(TABLE) == len(FAULTS)


@pytest.mark.parametrize("name", sorted(FAULT_SHOWS))
def test_each_fault_changes_what_the_agent_does(name: str) -> None:
    show, cfg = FAULT_SHOWS[name]
    conformant, faulty = show(agent(**cfg)), show(agent((name,), **cfg))
    assert conformant == CONFORMANT_ANSWERS.get(name, conformant)
    assert faulty != conformant, name
    if name == "clamp-relayed-lifetime":
        assert faulty == (RELAYED, None, 600)  # relayed with a rewritten Lifetime: the MN-HA authenticator breaks


def test_fault_names_are_checked() -> None:
    with pytest.raises(ConfigError, match="unknown fault 'nope'"):
        check_faults(["nope"])
    assert behaviour_for(["no-visitor-expiry"]).changed() == {"visitor_expiry": False}
    with pytest.raises(ConfigError, match="not both"):
        ForeignAgent(config(), ["no-visitor-expiry"], behaviour_for([]))


def test_decisions_log_without_octets() -> None:
    fa = agent(mobile_nodes=(VisitorSA(HOA, MN_FA_SA),))
    d, _ = feed(fa, request())
    log = d.as_log()
    assert (
        log["code"] == 67 and log["code_name"].startswith("mobile node failed") and log["source"] == "127.0.0.9:40000"
    )
    assert "mn-fa key" not in repr(fa.config) and "mn-fa key" not in str(log)
    assert fa.counters[DENIED] == 1 and fa.counters[ADVERTISED] == 0


def test_the_foreign_agent_does_not_import_scapy() -> None:
    """Like the HA and MN cores, the FA and its shell stay Scapy-free (tests/test_proto_imports.py)."""
    import subprocess
    import sys

    modules = "mipcheck.fa.core, mipcheck.fa.server, mipcheck.proto.agent, mipcheck.commands.fa"
    check = f"import {modules}, sys; assert not [m for m in sys.modules if m.startswith('scapy')]"
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
