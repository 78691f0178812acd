"""The simulated network: virtual time, reachability, evidence; the HA suite runs over it unchanged.

The same cases and the same faults give the same verdicts as over real UDP
(``tests/test_suite_ha_faults.py``), while a minute of protocol time costs
milliseconds.
"""

from __future__ import annotations

import time

import pytest

from mipcheck.clock import VirtualClock
from mipcheck.engine.evidence import Capture
from mipcheck.engine.runner import run_suite
from mipcheck.engine.transport import SimTransport
from mipcheck.engine.verdicts import Verdict
from mipcheck.ha.core import HomeAgent
from mipcheck.sim.home_agent import HomeAgentActor, SimLab
from mipcheck.sim.network import BLOCKED, DELIVERED, UNREACHABLE, SimNetwork
from mipcheck.suites.ha import CASES, CASES_BY_ID, FAIL_UNDER, FAULTS, PREFLIGHT, SUITE, WARN_UNDER
from mipcheck.suites.ha.messages import build_request


class Echo:
    """An actor that answers every datagram with its reversal, and keeps one timer."""

    def __init__(self, timer: float | None = None) -> None:
        self.out: list = []
        self.timer = timer
        self.fired: list[float] = []

    def receive_datagram(self, data, src, local, now) -> None:
        self.out.append((data[::-1], local, src))

    def datagrams_to_send(self, now):
        out, self.out = self.out, []
        return out

    def get_timer(self):
        return self.timer

    def handle_timer(self, now) -> None:
        self.fired.append(now)
        self.timer = None


def test_datagrams_reach_actors_and_sockets_in_virtual_time() -> None:
    net = SimNetwork(VirtualClock(epoch=1_000_000.0), latency=0.001)
    place = net.attach(Echo(), "10.0.0.1", 7)
    sock = net.socket("10.0.0.2")
    sock.send(b"abc", place)
    t0 = time.monotonic()
    net.run_for(3600.0, lambda: bool(sock.queue))
    assert time.monotonic() - t0 < 1.0  # an hour of virtual time is not waited for
    at, src, data = sock.queue.popleft()
    assert (src, data) == (place, b"cba") and at == pytest.approx(1_000_000.002)
    assert [t.fate for t in net.log] == [DELIVERED, DELIVERED]


def test_firewall_rules_and_unreachable_ports() -> None:
    net = SimNetwork()
    inside = net.attach(Echo(), "10.20.0.1", 434)
    net.block("0.0.0.0/0", "10.20.0.0/16")
    net.allow("10.20.9.0/24", "10.20.0.0/16")  # rules are first-match: this one never wins
    outside = net.socket("198.51.100.7")
    outside.send(b"x", inside)
    net.run_for(1.0)
    assert not outside.queue and net.log[-1].fate == BLOCKED and not outside.refused
    outside.send(b"x", ("198.51.100.99", 434))
    net.run_for(1.0)
    assert net.log[-1].fate == UNREACHABLE and outside.refused  # as an ICMP port unreachable would say


def test_timers_fire_at_their_virtual_time() -> None:
    clock = VirtualClock(epoch=5_000.0)
    net = SimNetwork(clock)
    echo = Echo(timer=5_060.0)
    net.attach(echo, "10.0.0.1", 1)
    net.run_for(59.0)
    assert echo.fired == []
    net.run_for(2.0)
    assert echo.fired == [5_060.0] and clock.monotonic() == pytest.approx(61.0)


def test_a_binding_expires_after_its_lifetime_without_waiting() -> None:
    lab = SimLab()
    mn = lab.nodes[0]
    sock = lab.network.socket("127.0.0.2")
    ident = SimTransport(lab.network).identification_clock(lab.profile.target, mn.home_address).next()
    req = build_request(mn, home_agent=lab.address, care_of_address="127.0.0.2", identification=ident, lifetime=60)
    sock.send(req.data, (lab.address, lab.port))
    lab.network.run_for(1.0)
    assert lab.core.bindings.get(mn.home_address)
    lab.network.run_for(60.0)
    assert not lab.core.bindings.get(mn.home_address)  # the core's expiry timer fired in virtual time


def test_the_conformant_home_agent_passes_every_case_over_the_simulated_network() -> None:
    lab = SimLab()
    t0 = time.monotonic()
    run = run_suite(SUITE, CASES, lab.profile, lab.control, preflight=PREFLIGHT, transport=lab.transport)
    real = time.monotonic() - t0
    assert run.preflight.status == "accepted"
    assert {r.id: f"{r.verdict}: {r.reason}" for r in run.results if r.verdict is not Verdict.PASS} == {}
    assert lab.network.clock.monotonic() > real  # silence windows cost virtual time only
    # The network's own record agrees with each case's evidence: every datagram a case sent was carried.
    sent = sum(1 for r in run.results for d in r.evidence["datagrams"] if "->" in d)
    assert len([t for t in lab.network.log if t.src[0] != lab.address]) >= sent


PAIRS = [(case_id, fault) for case_id, faults in FAULTS.items() for fault in faults]


@pytest.mark.parametrize(("case_id", "fault"), PAIRS, ids=[f"{c}--{f}" for c, f in PAIRS])
def test_each_case_fails_under_its_fault_over_the_simulated_network(case_id: str, fault: str) -> None:
    case = CASES_BY_ID[case_id]
    lab = SimLab((fault,))
    result = run_suite(SUITE, [case], lab.profile, lab.control, transport=lab.transport).results[0]
    graded_must = (case.level == "MUST" and (case_id, fault) not in WARN_UNDER) or (case_id, fault) in FAIL_UNDER
    assert result.verdict is (Verdict.FAIL if graded_must else Verdict.WARN), result.reason


def test_sim_evidence_carries_virtual_time() -> None:
    lab = SimLab()
    capture = Capture(lab.transport.clock)
    ep = lab.transport.endpoint(capture, "127.0.0.2")
    ep.send(b"\x00", (lab.address, lab.port))
    ep.drain(30.0)
    assert capture.frames[0].time == pytest.approx(lab.network.clock.epoch, abs=1e-3)
    assert lab.network.clock.monotonic() == pytest.approx(30.0)


def test_home_agent_actor_replies_from_the_address_it_was_asked_at() -> None:
    lab = SimLab()
    actor = HomeAgentActor(HomeAgent(lab.core.config))
    actor.receive_datagram(b"\x01", ("127.0.0.2", 5000), ("127.0.0.1", 434), lab.network.clock.time())
    assert actor.datagrams_to_send(0.0) == []  # a truncated request is dropped: nothing to send


def test_the_home_agent_core_is_an_actor_itself() -> None:
    """receive_datagram/datagrams_to_send/next_event give what handle() decides, queued."""
    lab = SimLab()
    core = HomeAgent(lab.core.config)
    mn = lab.nodes[0]
    ident = SimTransport(lab.network).identification_clock(("x", 1), mn.home_address).next()
    req = build_request(mn, home_agent=lab.address, care_of_address="127.0.0.2", identification=ident, lifetime=60)
    now = lab.network.clock.time()
    core.receive_datagram(req.data, ("127.0.0.2", 5000), (lab.address, 434), now)
    (reply,) = core.datagrams_to_send(now)
    decision = core.next_event()
    assert decision.outcome == "accepted" and reply == (decision.reply, (lab.address, 434), ("127.0.0.2", 5000))
    assert core.next_event() is None and core.datagrams_to_send(now) == []
    assert core.get_timer() == pytest.approx(now + 60)
    core.handle_timer(now + 61)
    assert core.get_timer() is None and not core.bindings.get(mn.home_address)
