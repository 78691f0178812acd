"""Tests of the sans-IO registration client (mipcheck.mn.core).

Most run the client against the sans-IO home agent core, both driven by
hand-moved clocks, so backoff, resynchronisation and re-registration are
checked without a socket or a sleep.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from mipcheck.ha import HAConfig, HomeAgent, MobileNodeConfig
from mipcheck.layers import MIPExtTNC, MIPExtUnknown, MobileIPMessage, RegistrationRequest
from mipcheck.layers.auth import Key
from mipcheck.layers.identification import high32, identification_time, low32
from mipcheck.mn import MNConfig
from mipcheck.mn.core import (
    Denied,
    Deregistered,
    Ignored,
    Registered,
    RegistrationClient,
    Resynchronised,
    State,
    TimedOut,
)
from mipcheck.proto import codec

NOW = 1_800_000_000.0
HA = "127.0.0.1"
HOA = "10.3.0.1"
SPI = 0x3000
KEY = b"client-test-key"
SRC = ("127.0.0.10", 45000)


def mn_config(**over: Any) -> MNConfig:
    kw: dict[str, Any] = dict(home_address=HOA, home_agent=HA, spi=SPI, secret=KEY, local_address=SRC[0], lifetime=100)
    kw.update(over)
    return MNConfig(**kw)


def home_agent(replay: str = "timestamp", **over: Any) -> HomeAgent:
    counter = itertools.count(0x7000_0000)
    cfg = HAConfig(
        trusted_networks=("127.0.0.0/24",), mobile_nodes=(MobileNodeConfig(HOA, SPI, KEY, replay=replay),), **over
    )
    return HomeAgent(cfg, nonce_source=lambda: next(counter))


def sent(client: RegistrationClient, now: float) -> list[bytes]:
    """What the client has to send (the actor interface's datagrams_to_send), all to the home agent."""
    out = client.datagrams_to_send(now)
    assert all(dst == (HA, 434) for _data, _local, dst in out)
    return [data for data, _local, _dst in out]


def start(client: RegistrationClient, now: float, **kw: Any) -> bytes:
    """register(), and the one request it queues."""
    client.register(now, **kw)
    (request,) = sent(client, now)
    return request


def stop(client: RegistrationClient, now: float, **kw: Any) -> bytes:
    client.deregister(now, **kw)
    (request,) = sent(client, now)
    return request


def drain(client: RegistrationClient) -> list[Any]:
    events = []
    while (ev := client.next_event()) is not None:
        events.append(ev)
    return events


def receive(client: RegistrationClient, data: bytes, now: float, source: str = HA) -> list[Any]:
    client.receive_datagram(data, (source, 434), SRC, now)
    return drain(client)


def fire(client: RegistrationClient, now: float) -> list[bytes]:
    client.handle_timer(now)
    return sent(client, now)


def exchange(
    client: RegistrationClient, ha: HomeAgent, request: bytes, mn_now: float, ha_now: float | None = None
) -> list[Any]:
    d = ha.handle(request, SRC, (HA, 434), mn_now if ha_now is None else ha_now)
    assert d.reply is not None, d.reason
    return receive(client, d.reply, mn_now)


# ---------------------------------------------------------------- requests


@pytest.mark.parametrize(
    ("over", "flags", "exts"),
    [
        ({}, 0x20, [32]),
        ({"colocated": False, "care_of_address": "127.0.0.77"}, 0x00, [32]),
        ({"reverse_tunnel": True, "simultaneous": True}, 0x80 | 0x20 | 0x02, [32]),
        ({"nai": "mn@lab.test", "udp_tunnel": True, "force_udp": True}, 0x20, [131, 144, 32]),
    ],
    ids=["colocated", "fa-coa", "flags", "nai-udp"],
)
def test_request_layout(over: dict[str, Any], flags: int, exts: list[int]) -> None:
    c = RegistrationClient(mn_config(**over))
    data = c.build_request(NOW)
    pkt = MobileIPMessage(data)
    assert isinstance(pkt, RegistrationRequest)
    assert data[1] == flags
    assert (pkt.home_address, pkt.home_agent, pkt.lifetime) == (HOA, HA, 100)
    assert pkt.care_of_address == over.get("care_of_address", SRC[0])
    assert [e.type for e in pkt.extensions] == exts
    assert [chk.valid for chk in pkt.verify({SPI: Key(KEY)})] == [True]
    assert abs(identification_time(pkt.identification) - NOW) < 1e-6
    if 144 in exts:
        assert pkt.extensions[1].F == 1


def test_identifications_strictly_increase_within_one_second() -> None:
    c = RegistrationClient(mn_config())
    ids = [codec.parse_request(c.build_request(NOW)).identification for _ in range(5)]
    assert ids == sorted(set(ids))


# ---------------------------------------------------------------- backoff (RFC 5944 3.6.3)


def test_retransmission_backoff_and_timeout() -> None:
    c = RegistrationClient(mn_config(), initial_timeout=1.0, max_timeout=4.0, max_attempts=5)
    first = start(c, NOW)
    assert c.state is State.REGISTERING and c.get_timer() == NOW + 1.0
    assert fire(c, NOW + 0.5) == []  # not yet
    sent = [first]
    t = NOW
    gaps = []
    while True:
        due = c.get_timer()
        gaps.append(due - t)
        t = due
        out = fire(c, t)
        if not out:
            break
        sent.extend(out)
    assert gaps == [1.0, 2.0, 4.0, 4.0, 4.0]  # doubling, capped
    assert len(sent) == 5
    (ev,) = drain(c)
    assert isinstance(ev, TimedOut) and ev.attempts == 5 and c.state is State.TIMED_OUT
    assert c.get_timer() is None
    idents = [codec.parse_request(s).identification for s in sent]
    assert idents == sorted(set(idents)), "each retransmission carries a new Identification"


def test_reply_to_an_earlier_transmission_is_accepted() -> None:
    c = RegistrationClient(mn_config())
    ha = home_agent()
    first = start(c, NOW)
    fire(c, NOW + 1.0)  # retransmitted; the first one's reply arrives late
    (ev,) = exchange(c, ha, first, NOW + 1.1)
    assert isinstance(ev, Registered) and ev.tnc and ev.lifetime == 100


# ---------------------------------------------------------------- reply validation (RFC 5944 3.6.2.1)


def accepted_reply(
    request: bytes,
    *,
    key: bytes = KEY,
    code: int = 0,
    lifetime: int = 100,
    exts: bytes = codec.TNC_EXTENSION,
    trailing: bytes = b"",
    hoa: str = HOA,
    ident: int | None = None,
) -> bytes:
    r = codec.parse_request(request)
    return codec.build_reply(
        code,
        lifetime,
        hoa,
        HA,
        r.identification if ident is None else ident,
        exts,
        auth=(SPI, "hmac-md5", key),
        trailing=trailing,
    )


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda req: accepted_reply(req, key=b"wrong"), "does not verify"),
        (lambda req: accepted_reply(req, hoa="10.3.0.99"), "home address"),
        (lambda req: accepted_reply(req, ident=codec.parse_request(req).identification ^ 1), "Identification"),
        (lambda req: accepted_reply(req)[:-22], "no MN-HA"),
        (lambda req: accepted_reply(req, exts=bytes(MIPExtUnknown(type=99, data=b"x"))), "non-skippable"),
        (lambda req: b"\x04\x04\x00\x00", "not a Registration Reply"),
        (lambda req: accepted_reply(req)[:-1], "malformed"),
    ],
    ids=["bad-auth", "other-home", "id-mismatch", "no-auth", "nonskippable", "not-a-reply", "truncated"],
)
def test_invalid_replies_are_ignored(make: Any, reason: str) -> None:
    c = RegistrationClient(mn_config())
    req = start(c, NOW)
    (ev,) = receive(c, make(req), NOW)
    assert isinstance(ev, Ignored) and reason in ev.reason
    assert c.state is State.REGISTERING and c.get_timer() == NOW + 1.0  # still waiting


def test_reply_from_another_address_than_the_home_agent_is_ignored() -> None:
    c = RegistrationClient(mn_config())
    req = start(c, NOW)
    (ev,) = receive(c, accepted_reply(req), NOW, "127.0.0.99")
    assert isinstance(ev, Ignored) and "not the home agent" in ev.reason and ev.code is None
    assert c.state is State.REGISTERING
    (ev,) = receive(c, accepted_reply(req), NOW, HA)
    assert isinstance(ev, Registered)


def test_foreign_agent_denial_without_authenticator() -> None:
    c = RegistrationClient(mn_config())
    req = start(c, NOW)
    r = codec.parse_request(req)
    (ev,) = receive(c, codec.build_reply(65, 0, HOA, HA, r.identification), NOW)
    assert isinstance(ev, Denied) and (ev.code, ev.authenticated) == (65, False)


def test_lifetime_longer_than_requested_is_clamped_and_reported() -> None:
    c = RegistrationClient(mn_config())
    req = start(c, NOW)
    (ev,) = receive(c, accepted_reply(req, lifetime=500), NOW)
    assert isinstance(ev, Registered) and ev.lifetime == 100 and "500" in ev.warnings[0]


@pytest.mark.parametrize(
    ("exts", "trailing", "tnc", "issue"),
    [
        (codec.TNC_EXTENSION, b"", True, None),
        (b"", b"", False, None),
        (b"", codec.TNC_EXTENSION, False, "after the MN-HA"),
        (bytes((149, 4, 1, 0, 0, 0)), b"", False, "malformed"),
        (bytes((149, 2, 0, 7)), b"", True, None),  # Reserved is ignored on receipt (RFC 5265 3.4)
    ],
    ids=["covered", "absent", "after-auth", "malformed", "reserved-nonzero"],
)
def test_tnc_recording(exts: bytes, trailing: bytes, tnc: bool, issue: str | None) -> None:
    c = RegistrationClient(mn_config())
    req = start(c, NOW)
    r = codec.parse_request(req)
    msg = codec.build_reply(0, 100, HOA, HA, r.identification, exts, auth=(SPI, "hmac-md5", KEY), trailing=trailing)
    (ev,) = receive(c, msg, NOW)
    assert isinstance(ev, Registered) and ev.tnc is tnc
    assert (issue is None and ev.tnc_issue is None) or (issue in ev.tnc_issue)


# ---------------------------------------------------------------- against the home agent core


def test_register_with_x_ha_records_no_tnc() -> None:
    ha = home_agent(role="x-ha")
    c = RegistrationClient(mn_config())
    (ev,) = exchange(c, ha, start(c, NOW), NOW)
    assert isinstance(ev, Registered) and ev.tnc is False


def test_timestamp_resynchronisation_from_133() -> None:
    ha = home_agent()
    c = RegistrationClient(mn_config())
    mn_now, ha_now = NOW, NOW + 100.4  # the home agent's clock is 100.4 s ahead
    (ev,) = exchange(c, ha, start(c, mn_now), mn_now, ha_now)
    assert isinstance(ev, Resynchronised) and ev.mode == "timestamp"
    assert abs(ev.value - 100.4) <= 0.5
    (retry,) = sent(c, NOW)
    (ev,) = exchange(c, ha, retry, mn_now, ha_now)
    assert isinstance(ev, Registered), ev
    # Later requests keep the learnt offset.
    (ev,) = exchange(c, ha, start(c, mn_now + 10), mn_now + 10, ha_now + 10)
    assert isinstance(ev, Registered)


def test_nonce_resynchronisation_and_reuse() -> None:
    ha = home_agent("nonce")
    c = RegistrationClient(mn_config(replay="nonce"), rng=itertools.count(1).__next__)
    (ev,) = exchange(c, ha, start(c, NOW), NOW)
    assert isinstance(ev, Resynchronised) and ev.mode == "nonce" and int(ev.value) == 0x7000_0000
    (retry,) = sent(c, NOW)
    assert high32(codec.parse_request(retry).identification) == 0x7000_0000
    (ev,) = exchange(c, ha, retry, NOW)
    assert isinstance(ev, Registered)
    assert c.ha_nonce == 0x7000_0001 == high32(ev.identification)
    # The next registration needs no resynchronisation.
    nxt = start(c, NOW + 1)
    assert high32(codec.parse_request(nxt).identification) == 0x7000_0001
    (ev,) = exchange(c, ha, nxt, NOW + 1)
    assert isinstance(ev, Registered)


def test_resynchronisation_is_bounded() -> None:
    ha = home_agent()
    c = RegistrationClient(mn_config(), max_resyncs=1)
    skewed = NOW + 1000
    exchange(c, ha, start(c, NOW), NOW, skewed)
    (retry,) = sent(c, NOW)
    (ev,) = exchange(c, ha, retry, NOW, skewed + 500)  # the home agent's clock jumps again
    assert isinstance(ev, Denied) and ev.code == 133 and c.state is State.DENIED


def test_unauthenticated_133_is_not_trusted() -> None:
    c = RegistrationClient(mn_config())
    req = start(c, NOW)
    r = codec.parse_request(req)
    forged = codec.build_reply(
        133, 0, HOA, HA, (0xFFFF0000 << 32) | low32(r.identification), auth=(SPI, "hmac-md5", b"attacker")
    )
    (ev,) = receive(c, forged, NOW)
    assert isinstance(ev, Ignored) and c.clock_offset == 0.0


def test_denial_is_final() -> None:
    ha = home_agent(reverse_tunneling=False)
    c = RegistrationClient(mn_config(reverse_tunnel=True))
    (ev,) = exchange(c, ha, start(c, NOW), NOW)
    assert isinstance(ev, Denied) and (ev.code, ev.authenticated, ev.tnc) == (137, True, True)
    assert c.get_timer() is None and c.state is State.DENIED


def test_reregistration_before_lifetime_ends() -> None:
    ha = home_agent()
    c = RegistrationClient(mn_config(lifetime=100))
    exchange(c, ha, start(c, NOW), NOW)
    assert c.state is State.REGISTERED and c.registered_until == NOW + 100
    assert c.get_timer() == NOW + 80
    assert fire(c, NOW + 79) == []
    (renewal,) = fire(c, NOW + 80)
    assert c.state is State.REGISTERING
    (ev,) = exchange(c, ha, renewal, NOW + 80)
    assert isinstance(ev, Registered) and c.registered_until == NOW + 180
    assert ha.bindings[HOA][0].expires == NOW + 180


def test_t_monitor_style_reregistration_interval() -> None:
    ha = home_agent()
    c = RegistrationClient(mn_config(lifetime=1800), reregister_interval=55.0)  # RFC 5265 3.2.4: T_MONITOR - N
    exchange(c, ha, start(c, NOW), NOW)
    assert c.get_timer() == NOW + 55.0


def test_deregistration() -> None:
    ha = home_agent()
    c = RegistrationClient(mn_config())
    exchange(c, ha, start(c, NOW), NOW)
    req = stop(c, NOW + 1)
    assert codec.parse_request(req).lifetime == 0
    (ev,) = exchange(c, ha, req, NOW + 1)
    assert isinstance(ev, Deregistered) and c.state is State.DEREGISTERED and c.get_timer() is None
    assert HOA not in ha.bindings
    all_req = stop(c, NOW + 2, all_bindings=True)
    assert codec.parse_request(all_req).care_of_address == HOA


def test_udp_tunnel_reply_is_recorded() -> None:
    ha = home_agent(keepalive_interval=30)
    c = RegistrationClient(mn_config(udp_tunnel=True, care_of_address="10.77.0.5"))
    (ev,) = exchange(c, ha, start(c, NOW), NOW)
    assert isinstance(ev, Registered) and ev.udp_tunnel == (0, 30)
    c2 = RegistrationClient(mn_config(udp_tunnel=True))  # no NAT: no UDP tunnel
    (ev,) = exchange(c2, home_agent(), start(c2, NOW), NOW)
    assert ev.udp_tunnel is None and "UDP Tunnel Reply" in ev.warnings[0]


def test_events_name_interface_and_home_agent() -> None:
    ha = home_agent()
    c = RegistrationClient(mn_config(), interface="wlan0")
    (ev,) = exchange(c, ha, start(c, NOW), NOW)
    assert (ev.interface, ev.home_agent, ev.at) == ("wlan0", HA, NOW)


def test_tnc_extension_class_is_the_layer_one() -> None:
    assert bytes(MIPExtTNC()) == codec.TNC_EXTENSION


# ---------------------------------------------------------------- the state table and the actor interface


def test_transition_table_covers_every_state_and_refuses_the_rest() -> None:
    from mipcheck.mn.core import TRANSITIONS, Trigger

    assert {s for s, _t in TRANSITIONS} == set(State)  # every state has a way out
    assert {TRANSITIONS[(s, Trigger.REGISTER)] for s in State} == {State.REGISTERING}
    c = RegistrationClient(mn_config())
    with pytest.raises(RuntimeError, match="accepted in state idle"):
        c._move(Trigger.ACCEPTED)
    start(c, NOW)
    c._move(Trigger.ACCEPTED)
    assert c.state is State.REGISTERED and not c.waiting


def test_a_reply_while_no_request_is_outstanding_is_ignored() -> None:
    ha = home_agent()
    c = RegistrationClient(mn_config())
    req = start(c, NOW)
    d = ha.handle(req, SRC, (HA, 434), NOW)
    (ev,) = receive(c, d.reply, NOW)
    assert isinstance(ev, Registered)
    (again,) = receive(c, d.reply, NOW + 0.1)  # a duplicate, after the transaction ended
    assert isinstance(again, Ignored) and "no request outstanding" in again.reason and c.state is State.REGISTERED


def test_registration_client_is_an_actor_on_the_simulated_network() -> None:
    """T_MONITOR-style re-registration for ten virtual minutes costs no real time."""
    import time as _time

    from mipcheck.clock import VirtualClock
    from mipcheck.sim.home_agent import HomeAgentActor
    from mipcheck.sim.network import SimNetwork

    net = SimNetwork(VirtualClock(epoch=NOW))
    ha = home_agent()
    net.attach(HomeAgentActor(ha), HA, 434)
    c = RegistrationClient(mn_config(lifetime=1800), reregister_interval=55.0)
    c.local = net.attach(c, SRC[0], 0)
    c.register(net.clock.time())
    net.wake(c)
    t0 = _time.monotonic()
    net.run_for(600.0)
    assert _time.monotonic() - t0 < 2.0
    events = drain(c)
    registered = [e for e in events if isinstance(e, Registered)]
    assert len(registered) == 11  # at 0 s, then every 55 s up to 550 s
    assert [round(e.at - NOW) for e in registered[:3]] == [0, 55, 110]
    assert ha.bindings[HOA][0].expires == pytest.approx(registered[-1].at + 1800, abs=0.01)


def test_discarded_replies_name_the_rule_the_home_agent_broke() -> None:
    from mipcheck.catalogue import load_catalogue
    from mipcheck.outcomes import Party

    c = RegistrationClient(mn_config())
    req = start(c, NOW)
    (bad_auth,) = receive(c, accepted_reply(req, key=b"wrong"), NOW)
    (bad_id,) = receive(c, accepted_reply(req, ident=codec.parse_request(req).identification ^ 1), NOW)
    (elsewhere,) = receive(c, accepted_reply(req), NOW, "127.0.0.99")
    ids = {r.id for r in load_catalogue()}
    assert (bad_auth.violation.rule_id, bad_auth.violation.party, bad_auth.violation.code) == (
        "5944-3.5.2-REPLY-MN-HA-AUTH",
        Party.HOME_AGENT,
        "MIP-REPLY-AUTH",
    )
    assert (
        bad_id.violation.rule_id == "5944-5.7-REPLY-ID-LOW-ORDER"
        and {bad_auth.violation.rule_id, bad_id.violation.rule_id} <= ids
    )
    assert elsewhere.violation is None  # not the home agent's reply at all
