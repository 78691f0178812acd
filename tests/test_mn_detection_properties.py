"""The plaintext safety invariant of RFC 5265 over random event sequences (Hypothesis stateful testing).

Invariant: no user data leaves an interface in plaintext unless its last
direct i-HA registration carried an authenticated TNC extension, had no
status change since, and is younger than T_MONITOR (3.2.2, 3.2.3, 3.2.4,
3.3, 4.1). Judged by :class:`PlaintextSafetyChecker` from the core's events
only. The same machine run against a core with a broken gate must fail: that
is what shows the property can fail at all.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from test_mn_detection import (
    IHA,
    INSIDE_COA,
    INSIDE_COA2,
    NOW,
    OUTSIDE_COA,
    TIA,
    XHA,
    i_ha,
    interface,
    x_ha,
)

from mipcheck.mn.detection import MobileNodeDetection
from mipcheck.mn.detection_behaviour import DetectionBehaviour
from mipcheck.mn.detection_config import QUEUE, DetectionConfig
from mipcheck.mn.detection_events import VpnRequested
from mipcheck.mn.detection_safety import PlaintextSafetyChecker

ADDRESSES = (INSIDE_COA, INSIDE_COA2, OUTSIDE_COA, None)  # None: link down
# How the i-HA answers: normally, without TNC, with TNC after the authenticator, or not at all.
IHA_KINDS = ("tnc", "omit-tnc", "tnc-after-auth", "silent")


class DetectionMachine(RuleBasedStateMachine):
    behaviour = DetectionBehaviour()
    when_gated = "drop"

    def __init__(self) -> None:
        super().__init__()
        self.now = NOW
        self.core = MobileNodeDetection(
            (interface("eth0"), interface("wlan0")), DetectionConfig(when_gated=self.when_gated), self.behaviour
        )
        self.checker = PlaintextSafetyChecker(60.0)
        self.has = {kind: i_ha(frozenset() if kind in ("tnc", "silent") else frozenset({kind})) for kind in IHA_KINDS}
        self.xha = x_ha()
        self.vpn_wanted: set[str] = set()

    def _drain(self) -> None:
        while (ev := self.core.next_event()) is not None:
            self.checker.observe(ev)
            if isinstance(ev, VpnRequested):
                self.vpn_wanted.add(ev.interface)

    @rule(name=st.sampled_from(("eth0", "wlan0")), coa=st.sampled_from(ADDRESSES))
    def link_change(self, name: str, coa: str | None) -> None:
        self.core.link_change(name, "up" if coa else "down", coa, self.now)
        self.vpn_wanted.discard(name)
        self._drain()

    @rule(iha=st.sampled_from(IHA_KINDS), xha=st.booleans(), loss=st.lists(st.booleans(), max_size=6))
    def deliver(self, iha: str, xha: bool, loss: list[bool]) -> None:
        """Send what is queued; the i-HA answers only from inside (3.1), as ``iha`` says; some are lost."""
        out = [(d, lo, dst, False) for d, lo, dst in self.core.datagrams_to_send(self.now)]
        out += [(d, lo, dst, True) for d, lo, dst in self.core.vpn_datagrams_to_send(self.now)]
        for i, (data, local, dst, via_vpn) in enumerate(out):
            if i < len(loss) and loss[i]:
                continue
            if dst[0] == IHA:
                if iha == "silent" or not local[0].startswith("10."):
                    continue
                ha = self.has[iha]
            elif dst[0] == XHA and xha:
                ha = self.xha
            else:
                continue
            d = ha.handle(data, local, dst, self.now)
            if d.reply is not None:
                receive = self.core.receive_vpn_datagram if via_vpn else self.core.receive_datagram
                receive(d.reply, dst, local, self.now)
            self._drain()

    @rule(seconds=st.sampled_from((0.5, 1.0, 3.0, 10.0, 30.0, 47.0, 59.0, 61.0, 200.0)))
    def time_passes(self, seconds: float) -> None:
        """The clock jumps; the timers that were due fire late (as they would after a suspend)."""
        self.now += seconds
        if (at := self.core.get_timer()) is not None and at <= self.now:
            self.core.handle_timer(self.now)
        self._drain()

    @rule()
    def fire_next_timer(self) -> None:
        at = self.core.get_timer()
        if at is not None:
            self.now = max(self.now, at)
            self.core.handle_timer(self.now)
            self._drain()

    @rule(name=st.sampled_from(tuple(sorted(("eth0", "wlan0")))))
    def vpn_comes_up(self, name: str) -> None:
        if name in self.vpn_wanted:
            self.vpn_wanted.discard(name)
            self.core.vpn_up(name, TIA if name == "eth0" else "10.8.0.6", self.now)
            self._drain()

    @rule(name=st.sampled_from(("eth0", "wlan0")), receive=st.booleans())
    def inside_then_the_iha_falls_silent(self, name: str, receive: bool) -> None:
        """A path random steps rarely take: inside, then no i-HA answer for longer than T_MONITOR, data all along
        (3.2.4).
        """
        self.link_change(name, INSIDE_COA)
        self.deliver("tnc", False, [])
        for _ in range(8):
            self.user_data(name, receive)
            self.time_passes(10.0)
            self.deliver("silent", False, [])

    @rule(name=st.sampled_from(("eth0", "wlan0")), receive=st.booleans())
    def moves_out_while_inside(self, name: str, receive: bool) -> None:
        """Inside, then the link changes to an external network with data right after it (3.2.2)."""
        self.link_change(name, INSIDE_COA)
        self.deliver("tnc", False, [])
        self.user_data(name, receive)
        self.link_change(name, OUTSIDE_COA)
        self.user_data(name, receive)

    @rule(name=st.sampled_from(("eth0", "wlan0")), receive=st.booleans(), iha=st.sampled_from(IHA_KINDS))
    def outside_then_data(self, name: str, receive: bool, iha: str) -> None:
        """On an external network: the x-HA answers, the VPN comes up, data flows (2.3, 3.2.3)."""
        self.link_change(name, OUTSIDE_COA)
        self.deliver(iha, True, [])
        self.time_passes(3.0)
        self.deliver(iha, True, [])
        self.vpn_comes_up(name)
        self.deliver(iha, True, [])
        self.user_data(name, receive)

    @rule(name=st.sampled_from(("eth0", "wlan0")), receive=st.booleans())
    def user_data(self, name: str, receive: bool) -> None:
        if receive:
            decision = self.core.receive_user_data(name, b"in", self.now)
        else:
            decision = self.core.send_user_data(name, b"out", self.now)
        self._drain()
        self.checker.data(name, decision, self.now)

    @invariant()
    def no_plaintext_leak(self) -> None:
        assert not self.checker.violations, self.checker.violations[0]


SETTINGS = settings(max_examples=150, stateful_step_count=40, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("when_gated", ["drop", QUEUE])
def test_safety_invariant_holds_for_the_conformant_core(when_gated: str) -> None:
    machine = type("Conformant", (DetectionMachine,), {"when_gated": when_gated})
    run_state_machine_as_test(machine, settings=SETTINGS)


def _scripted(behaviour: DetectionBehaviour) -> PlaintextSafetyChecker:
    """One fixed run: inside with a TNC-less i-HA or past T_MONITOR, sending data each 10 s."""
    m = type("Scripted", (DetectionMachine,), {"behaviour": behaviour})()
    m.link_change("eth0", INSIDE_COA)
    m.deliver("omit-tnc" if not behaviour.require_tnc else "tnc", False, [])
    for _ in range(10):
        m.user_data("eth0", False)
        m.time_passes(10.0)
        m.deliver("silent", False, [])
    return m.checker


@pytest.mark.parametrize(
    ("setting", "rule"),
    [("t_monitor_gate", "5265-3.2.4-NO-DATA-AFTER-TMONITOR"), ("require_tnc", "5265-3.2.3-TNC-BEFORE-INSIDE")],
)
def test_the_invariant_checker_reports_a_broken_gate(setting: str, rule: str) -> None:
    assert not _scripted(DetectionBehaviour()).violations
    violations = _scripted(DetectionBehaviour.breaking(setting)).violations
    assert violations and {v.rule_id for v in violations} == {rule}


@pytest.mark.parametrize("setting", ["t_monitor_gate", "require_tnc", "stop_data_on_status_change", "skip_vpn"])
def test_the_stateful_test_finds_a_broken_gate(setting: str) -> None:
    """The machine itself fails against a faulty core: the property is not vacuous."""
    machine = type("Faulty", (DetectionMachine,), {"behaviour": DetectionBehaviour.breaking(setting)})
    with pytest.raises(AssertionError, match="plaintext"):
        run_state_machine_as_test(
            machine, settings=settings(SETTINGS, max_examples=500, database=None, phases=[Phase.generate])
        )  # no shrinking: finding is the point
