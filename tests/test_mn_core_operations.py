"""The registration client's silencing operations (mipcheck.mn.core): stop_retransmitting, quiesce, abandon.

Why: RFC 5265 3.3 detection composes clients and stops their retransmissions
on other events than their own replies (the x-HA's reply, the end of the
detection period, a status change). Each operation is checked against the
sans-IO home agent core, with hand-moved clocks, like tests/test_mn_core.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from mipcheck.ha import HAConfig, HomeAgent, MobileNodeConfig
from mipcheck.mn import MNConfig
from mipcheck.mn.core import (
    TRANSITIONS,
    Deregistered,
    Ignored,
    Registered,
    RegistrationClient,
    State,
    TimedOut,
    Trigger,
)

NOW = 1_800_000_000.0
HA = "127.0.0.1"
HOA = "10.3.0.1"
SPI = 0x3000
KEY = b"client-test-key"
SRC = ("127.0.0.10", 45000)


def client(**over: Any) -> RegistrationClient:
    kw: dict[str, Any] = dict(home_address=HOA, home_agent=HA, spi=SPI, secret=KEY, local_address=SRC[0], lifetime=100)
    kw.update(over)
    return RegistrationClient(MNConfig(**kw))


def home_agent() -> HomeAgent:
    return HomeAgent(HAConfig(trusted_networks=("127.0.0.0/24",), mobile_nodes=(MobileNodeConfig(HOA, SPI, KEY),)))


def sent(c: RegistrationClient, now: float) -> list[bytes]:
    return [data for data, _local, _dst in c.datagrams_to_send(now)]


def drain(c: RegistrationClient) -> list[Any]:
    events = []
    while (ev := c.next_event()) is not None:
        events.append(ev)
    return events


def answer(c: RegistrationClient, ha: HomeAgent, request: bytes, now: float, sent_at: float | None = None) -> list[Any]:
    """The home agent answers ``request`` (when it was ``sent_at``); the client gets it at ``now``."""
    d = ha.handle(request, SRC, (HA, 434), now if sent_at is None else sent_at)
    assert d.reply is not None, d.reason
    c.receive_datagram(d.reply, (HA, 434), SRC, now)
    return drain(c)


def run_timers(c: RegistrationClient, until: float) -> list[bytes]:
    """Fire every timer up to ``until``; what was sent."""
    out = []
    while (at := c.get_timer()) is not None and at <= until:
        c.handle_timer(at)
        out += sent(c, at)
    return out


# ---------------------------------------------------------------- the table


def test_abandon_is_a_move_from_every_state() -> None:
    assert {TRANSITIONS[(s, Trigger.ABANDON)] for s in State} == {State.ABANDONED}
    assert TRANSITIONS[(State.ABANDONED, Trigger.REGISTER)] is State.REGISTERING
    assert TRANSITIONS[(State.ABANDONED, Trigger.DEREGISTER)] is State.DEREGISTERING
    assert not any((State.ABANDONED, t) in TRANSITIONS for t in (Trigger.ACCEPTED, Trigger.DENIED, Trigger.GAVE_UP))


# ---------------------------------------------------------------- stop_retransmitting


def test_stop_retransmitting_keeps_accepting_the_reply_to_what_was_sent() -> None:
    """RFC 5265 3.3, 3.5: no more retransmissions, but a late reply still counts."""
    ha, c = home_agent(), client()
    c.register(NOW)
    (first,) = sent(c, NOW)
    c.handle_timer(NOW + 1.0)
    (second,) = sent(c, NOW + 1.0)  # one retransmission, then silence
    c.stop_retransmitting()
    assert c.get_timer() is None and c.state is State.REGISTERING and c.waiting
    assert run_timers(c, NOW + 100) == [] and drain(c) == []  # never times out
    (ev,) = answer(c, ha, first, NOW + 20, sent_at=NOW)  # the reply to the first transmission, late
    assert isinstance(ev, Registered) and c.state is State.REGISTERED
    assert c.get_timer() == pytest.approx(NOW + 20 + 80)  # renewals run again after a reply


def test_stop_retransmitting_while_registered_leaves_renewal_alone() -> None:
    ha, c = home_agent(), client()
    c.register(NOW)
    answer(c, ha, sent(c, NOW)[0], NOW)
    c.stop_retransmitting()
    assert c.state is State.REGISTERED and c.get_timer() == pytest.approx(NOW + 80)


# ---------------------------------------------------------------- quiesce


def test_quiesce_stops_retransmissions_and_renewals_but_not_the_transaction() -> None:
    """RFC 5265 4.1: an i-HA that answered without TNC is not renewed in plaintext."""
    ha, c = home_agent(), client()
    c.register(NOW)
    (req,) = sent(c, NOW)
    answer(c, ha, req, NOW)
    c.quiesce()
    assert c.state is State.REGISTERED and c.get_timer() is None
    assert run_timers(c, NOW + 1000) == []
    c.register(NOW + 200)  # a caller may still start a new transaction
    assert c.state is State.REGISTERING and len(sent(c, NOW + 200)) == 1


def test_quiesce_while_waiting_still_takes_the_reply() -> None:
    ha, c = home_agent(), client()
    c.register(NOW)
    (req,) = sent(c, NOW)
    c.quiesce()
    assert c.waiting and c.get_timer() is None
    (ev,) = answer(c, ha, req, NOW + 5)
    assert isinstance(ev, Registered)


# ---------------------------------------------------------------- abandon


@pytest.mark.parametrize("stage", ["registering", "registered", "deregistering", "timed-out"])
def test_abandon_ignores_replies_and_stops_every_timer(stage: str) -> None:
    """RFC 5265 3.2.2, 3.2.3: after a status change, a reply to an earlier request proves nothing."""
    ha, c = home_agent(), client(attempts=2)
    c.register(NOW)
    (req,) = sent(c, NOW)
    if stage == "registered":
        answer(c, ha, req, NOW)
    elif stage == "deregistering":
        answer(c, ha, req, NOW)
        c.deregister(NOW + 1)
        (req,) = sent(c, NOW + 1)
    elif stage == "timed-out":
        run_timers(c, NOW + 10)
        assert isinstance(drain(c)[-1], TimedOut)
    c.abandon()
    assert c.state is State.ABANDONED and not c.waiting and c.get_timer() is None
    assert run_timers(c, NOW + 1000) == []
    d = ha.handle(req, SRC, (HA, 434), NOW + 2)
    if d.reply is not None:
        c.receive_datagram(d.reply, (HA, 434), SRC, NOW + 2)
        (ev,) = drain(c)
        assert isinstance(ev, Ignored) and "state abandoned" in ev.reason


def test_abandon_keeps_what_was_learnt_and_allows_a_fresh_start() -> None:
    ha, c = home_agent(), client()
    c.register(NOW)
    answer(c, ha, sent(c, NOW)[0], NOW)
    until = c.registered_until
    c.clock_offset = 0.25
    c.abandon()
    assert (c.registered_until, c.clock_offset) == (until, 0.25)
    c.deregister(NOW + 3)
    (ev,) = answer(c, ha, sent(c, NOW + 3)[0], NOW + 3)
    assert isinstance(ev, Deregistered) and c.state is State.DEREGISTERED
