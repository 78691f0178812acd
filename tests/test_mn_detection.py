"""Tests of the sans-IO RFC 5265 detection core (mipcheck.mn.detection): one test per MN rule.

Replies come from the reference home agent cores (an i-HA with trusted
networks, an x-HA) or are built by hand for odd cases; each rule's test runs
the conformant core and the core with that rule's behaviour setting flipped,
so each test also proves the setting breaks its rule. Time is a number moved
by hand; nothing sleeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from mipcheck.catalogue import load_catalogue
from mipcheck.ha import HAConfig, HomeAgent, MobileNodeConfig
from mipcheck.mn import MNConfig
from mipcheck.mn.detection import MobileNodeDetection
from mipcheck.mn.detection_behaviour import BROKEN_RULES, DetectionBehaviour
from mipcheck.mn.detection_config import QUEUE, DetectionConfig, InterfaceConfig
from mipcheck.mn.detection_events import (
    ClientEvent,
    DataDecision,
    DataGated,
    DataReleased,
    DataResumed,
    DetectionStarted,
    Inside,
    ReregistrationFailed,
    Role,
    UntrustedReply,
    VpnReleased,
    VpnRequested,
)
from mipcheck.mn.detection_safety import PlaintextSafetyChecker
from mipcheck.mn.detection_table import FAULTY_MOVES, TRANSITIONS, Mode, Stimulus, transitions_for
from mipcheck.proto import codec
from mipcheck.proto import numbers as n

NOW = 1_800_000_000.0
IHA, XHA = "10.1.0.1", "192.0.2.1"
HOA, XHOA = "10.1.9.9", "192.0.2.99"
SPI, XSPI = 0x5265, 0x5266
KEY, XKEY = b"inner-key", b"outer-key"
INSIDE_COA, INSIDE_COA2, OUTSIDE_COA = "10.2.0.5", "10.2.0.6", "198.51.100.5"
TIA = "10.8.0.5"
PORT = 49434
PLAIN, VPN, QUEUED, DROPPED = DataDecision.PLAINTEXT, DataDecision.VIA_VPN, DataDecision.QUEUED, DataDecision.DROPPED


def interface(name: str = "eth0", *, xha: str = XHA, lifetime: int = 1800) -> InterfaceConfig:
    return InterfaceConfig(
        name,
        MNConfig(home_address=HOA, home_agent=IHA, spi=SPI, secret=KEY, lifetime=lifetime),
        MNConfig(home_address=XHOA, home_agent=xha, spi=XSPI, secret=XKEY, lifetime=lifetime),
        port=PORT,
    )


def i_ha(faults: frozenset[str] = frozenset()) -> HomeAgent:
    cfg = HAConfig(
        address=IHA, role="i-ha", trusted_networks=("10.0.0.0/8",), mobile_nodes=(MobileNodeConfig(HOA, SPI, KEY),)
    )
    return HomeAgent(cfg, faults)


def x_ha(address: str = XHA) -> HomeAgent:
    return HomeAgent(HAConfig(address=address, role="x-ha", mobile_nodes=(MobileNodeConfig(XHOA, XSPI, XKEY),)))


def inside(address: str) -> bool:
    return address.startswith("10.")


@dataclass
class Lab:
    """The core, two home agent cores and a firewall rule (the i-HA only from 10/8), driven by hand."""

    core: MobileNodeDetection
    iha: HomeAgent = field(default_factory=i_ha)
    xha: HomeAgent = field(default_factory=x_ha)
    xha_from_inside: bool = True  # 3.1: the firewall MAY block the x-HA from inside
    iha_answers: bool = True
    sent: list[tuple[float, tuple[str, int] | None, tuple[str, int], bytes, bool]] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    checker: PlaintextSafetyChecker = field(default_factory=lambda: PlaintextSafetyChecker(60.0))

    def drain(self) -> list[Any]:
        new = []
        while (ev := self.core.next_event()) is not None:
            new.append(ev)
            self.checker.observe(ev)
        self.events.extend(new)
        return new

    def reaches(self, src: str, ha: str) -> bool:
        if ha == IHA:
            return self.iha_answers and inside(src)
        return self.xha_from_inside or not inside(src)

    def pump(self, now: float, *, hold: tuple[str, ...] = ()) -> list[tuple[bytes, tuple[str, int], tuple[str, int]]]:
        """Send everything queued, deliver what the firewall lets through; return held datagrams."""
        held = []
        for _ in range(20):
            out = [(d, lo, dst, False) for d, lo, dst in self.core.datagrams_to_send(now)]
            out += [(d, lo, dst, True) for d, lo, dst in self.core.vpn_datagrams_to_send(now)]
            if not out:
                break
            for data, local, dst, via_vpn in out:
                assert local is not None
                self.sent.append((now, local, dst, data, via_vpn))
                if dst[0] in hold:
                    held.append((data, local, dst))
                    continue
                if not self.reaches(local[0], dst[0]):
                    continue
                self.answer(data, local, dst, now, via_vpn)
        self.drain()
        return held

    def answer(
        self, data: bytes, local: tuple[str, int], dst: tuple[str, int], now: float, via_vpn: bool = False
    ) -> None:
        ha = self.iha if dst[0] == IHA else self.xha
        d = ha.handle(data, local, dst, now)
        if d.reply is not None:
            receive = self.core.receive_vpn_datagram if via_vpn else self.core.receive_datagram
            receive(d.reply, dst, local, now)

    def run(self, start: float, end: float, *, every: float | None = None, send: str | None = None) -> None:
        """Fire timers (and send user data every ``every`` s) from ``start`` to ``end``."""
        t = start
        next_data = start if every else None
        while True:
            timer = self.core.get_timer()
            candidates = [x for x in (timer, next_data) if x is not None and x <= end]
            if not candidates:
                break
            t = max(t, min(candidates))
            if next_data is not None and t >= next_data:
                self.send(send or "eth0", t)
                next_data = t + (every or 0)
            if timer is not None and timer <= t:
                self.core.handle_timer(t)
            self.pump(t)
        self.drain()

    def send(self, name: str, now: float, packet: bytes = b"user") -> DataDecision:
        decision = self.core.send_user_data(name, packet, now)
        self.drain()
        self.checker.data(name, decision, now)
        return decision

    def link(self, name: str, coa: str | None, now: float) -> None:
        self.core.link_change(name, "up" if coa else "down", coa, now)
        self.drain()

    def requests(self, ha: str, *, after: float = 0.0, lifetime: bool | None = None) -> list[codec.Request]:
        out = []
        for at, _local, dst, data, _vpn in self.sent:
            if dst[0] != ha or at < after:
                continue
            req = codec.parse_request(data)
            if req is not None and (lifetime is None or (req.lifetime > 0) == lifetime):
                out.append(req)
        return out

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def lab(*broken: str, interfaces: tuple[InterfaceConfig, ...] | None = None, **config: Any) -> Lab:
    core = MobileNodeDetection(
        interfaces or (interface(),), DetectionConfig(**config), DetectionBehaviour.breaking(*broken)
    )
    return Lab(core)


def go_inside(lb: Lab, name: str = "eth0", coa: str = INSIDE_COA, now: float = NOW) -> None:
    lb.link(name, coa, now)
    lb.pump(now)
    assert lb.core.mode(name) is Mode.INSIDE, lb.events


def go_outside(lb: Lab, now: float = NOW) -> float:
    lb.link("eth0", OUTSIDE_COA, now)
    lb.pump(now)
    lb.run(now, now + 3.0)
    assert lb.core.mode("eth0") is Mode.VPN_SETUP
    assert lb.core.vpn_up("eth0", TIA, now + 3.5)
    lb.pump(now + 3.5)
    return now + 3.5


def reply_to(
    request: bytes, *, code: int = 0, exts: bytes = codec.TNC_EXTENSION, trailing: bytes = b"", key: bytes = KEY
) -> bytes:
    r = codec.parse_request(request)
    return codec.build_reply(
        code, r.lifetime, HOA, IHA, r.identification, exts, auth=(SPI, "hmac-md5", key), trailing=trailing
    )


# ---------------------------------------------------------------- the table and the settings


def test_transition_table_covers_every_mode_and_every_stimulus() -> None:
    assert {m for m, _s in TRANSITIONS} == set(Mode)  # every mode has a way out
    assert {m for m in TRANSITIONS.values()} == set(Mode)  # and a way in
    assert {s for _m, s in TRANSITIONS} == set(Stimulus)
    assert {TRANSITIONS[(m, Stimulus.LINK_UP)] for m in Mode} == {Mode.DETECTING}  # 3.2.2
    assert {TRANSITIONS[(m, Stimulus.LINK_DOWN)] for m in Mode} == {Mode.DOWN}
    # 3.2.3: only a trusted direct i-HA registration leads inside.
    assert {s for (_m, s), new in TRANSITIONS.items() if new is Mode.INSIDE} == {
        Stimulus.IHA_TRUSTED,
        Stimulus.REREG_SUCCEEDED,
    }
    # 2.3: outside only after the inner registration through the VPN.
    assert {(m, s) for (m, s), new in TRANSITIONS.items() if new is Mode.OUTSIDE} == {
        (Mode.INNER_REGISTERING, Stimulus.INNER_REGISTERED)
    }


@pytest.mark.parametrize("setting", sorted(FAULTY_MOVES))
def test_a_faulty_setting_changes_only_its_own_moves(setting: str) -> None:
    table = transitions_for(DetectionBehaviour.breaking(setting))
    changed = {k for k in TRANSITIONS if table[k] != TRANSITIONS[k]}
    assert changed and changed == set(FAULTY_MOVES[setting]) and table.keys() == TRANSITIONS.keys()


def test_every_setting_names_one_catalogue_mn_rule() -> None:
    reqs = {r.id: r for r in load_catalogue()}
    defaults = DetectionBehaviour()
    assert set(BROKEN_RULES) == set(defaults.__dataclass_fields__)
    assert len(set(BROKEN_RULES.values())) == len(BROKEN_RULES)
    for setting, rule in BROKEN_RULES.items():
        assert rule in reqs and reqs[rule].role == "mn", setting
        assert DetectionBehaviour.breaking(setting).broken_rules == (rule,)
    assert defaults.broken == ()
    with pytest.raises(KeyError):
        DetectionBehaviour.breaking("no-such-setting")


def test_unknown_move_is_a_bug() -> None:
    lb = lab()
    det = lb.core.interface("eth0")
    with pytest.raises(RuntimeError, match="monitor-expired in mode down"):
        det._move(Stimulus.MONITOR_EXPIRED, NOW, "test")


def test_configuration_is_checked() -> None:
    from mipcheck.errors import ConfigError

    for bad in ({"t_monitor": 0}, {"rereg_grace": 60.0}, {"when_gated": "keep"}, {"detection_period": -1}):
        with pytest.raises(ConfigError):
            DetectionConfig(**bad)
    assert DetectionConfig().reregister_interval == 48.0  # 3.2.4: T_MONITOR 60 s, N 20%
    assert DetectionConfig(t_monitor=30, rereg_grace=5).reregister_interval == 25.0


# ---------------------------------------------------------------- detection (3.3) and the access mode cvc (2.3)


def test_parallel_requests_then_inside() -> None:
    lb = lab()
    lb.link("eth0", INSIDE_COA, NOW)
    (started,) = lb.of(DetectionStarted)
    assert started.local == (INSIDE_COA, PORT) and started.home_agents == (IHA, XHA)
    lb.pump(NOW)
    assert len(lb.requests(IHA)) == 1 and len(lb.requests(XHA, lifetime=True)) == 1  # 3.3: both at once
    assert lb.core.mode("eth0") is Mode.INSIDE and lb.of(Inside) == [Inside("eth0", NOW, False)]
    assert lb.send("eth0", NOW + 1) is PLAIN
    assert not lb.checker.violations


def test_outside_path_cvc() -> None:
    """2.3: x-MIP (co-CoA), then the VPN from the x-HoA, then i-MIP with the VPN-TIA through it."""
    lb = lab()
    lb.link("eth0", OUTSIDE_COA, NOW)
    lb.pump(NOW)
    assert lb.core.mode("eth0") is Mode.TENTATIVELY_OUTSIDE
    assert lb.send("eth0", NOW + 1) is DROPPED  # 3.2.2: not before registrations and tunnels are up
    lb.run(NOW, NOW + 3.0)
    (vpn,) = lb.of(VpnRequested)
    assert (vpn.x_home_address, vpn.x_home_agent, vpn.at) == (XHOA, XHA, NOW + 3.0)
    assert lb.send("eth0", NOW + 3.2) is DROPPED
    assert lb.core.vpn_up("eth0", TIA, NOW + 3.5)
    lb.pump(NOW + 3.5)
    inner = [s for s in lb.sent if s[4]]
    assert len(inner) == 1 and inner[0][1] == (TIA, PORT) and inner[0][2] == (IHA, 434)
    req = codec.parse_request(inner[0][3])
    assert req.care_of_address == TIA and req.flags & n.FLAG_T  # 2.3: VPN-TIA as co-CoA, T-bit
    assert lb.core.mode("eth0") is Mode.OUTSIDE
    assert lb.send("eth0", NOW + 4) is VPN
    assert lb.core.receive_user_data("eth0", b"x", NOW + 4) is DROPPED  # plaintext from outside
    assert lb.core.receive_user_data("eth0", b"x", NOW + 4, via_vpn=True) is VPN
    assert lb.core.vpn_down("eth0", NOW + 5) and lb.send("eth0", NOW + 5) is DROPPED


def test_queued_data_is_released_when_the_gate_opens() -> None:
    lb = lab(when_gated=QUEUE)
    lb.link("eth0", OUTSIDE_COA, NOW)
    assert lb.send("eth0", NOW, b"p1") is QUEUED
    lb.pump(NOW)
    lb.run(NOW, NOW + 3.0)
    assert not lb.of(DataReleased)
    lb.core.vpn_up("eth0", TIA, NOW + 3.5)
    lb.pump(NOW + 3.5)
    (released,) = lb.of(DataReleased)
    assert (released.packet, released.decision) == (b"p1", VPN)


def test_no_home_agent_answers_then_retry() -> None:
    lb = lab(retry_interval=30.0)
    lb.iha_answers, lb.xha_from_inside = False, False
    lb.link("eth0", INSIDE_COA, NOW)
    lb.run(NOW, NOW + 20)
    assert lb.core.mode("eth0") is Mode.ISOLATED
    lb.iha_answers = True
    lb.run(NOW + 20, NOW + 60)
    assert lb.core.mode("eth0") is Mode.INSIDE and len(lb.of(DetectionStarted)) == 2


# ---------------------------------------------------------------- one test per MN rule, conformant and broken


@pytest.mark.parametrize("broken", [False, True], ids=["conformant", "broken"])
def test_3_2_1_interfaces_are_tracked_separately(broken: bool) -> None:
    """3.2.1: successful registration with the i-HA through X says nothing about Y."""
    lb = lab(*(["track_interfaces_separately"] if broken else []), interfaces=(interface("eth0"), interface("wlan0")))
    go_inside(lb, "eth0")
    lb.iha_answers = False  # wlan0's request is lost
    lb.link("wlan0", INSIDE_COA2, NOW + 1)
    lb.pump(NOW + 1)
    assert lb.core.mode("wlan0") in (Mode.DETECTING, Mode.TENTATIVELY_OUTSIDE)
    assert lb.send("wlan0", NOW + 2) is (PLAIN if broken else DROPPED)
    assert [v.rule_id for v in lb.checker.violations] == (["5265-3.2.1-PER-INTERFACE"] if broken else [])


@pytest.mark.parametrize("broken", [False, True], ids=["conformant", "broken"])
def test_3_2_2_status_change_stops_data_at_once(broken: bool) -> None:
    """3.2.2: stop relaying at once; resume only after detection and registrations."""
    lb = lab(*(["stop_data_on_status_change"] if broken else []))
    go_inside(lb)
    lb.link("eth0", INSIDE_COA2, NOW + 10)  # nothing answered yet
    assert lb.send("eth0", NOW + 10) is (PLAIN if broken else DROPPED)
    if not broken:
        assert any(isinstance(e, DataGated) and e.at == NOW + 10 for e in lb.events)
    lb.pump(NOW + 10)
    assert lb.send("eth0", NOW + 11) is PLAIN
    assert [v.rule_id for v in lb.checker.violations] == (["5265-3.2.2-STATUS-CHANGE"] if broken else [])


@pytest.mark.parametrize(
    ("setting", "ha_fault", "rule"),
    [
        ("require_tnc", "omit-tnc", "5265-3.2.3-TNC-BEFORE-INSIDE"),
        ("trust_tnc_after_auth", "tnc-after-auth", "5265-4.1-KEEP-IPSEC-WITHOUT-TNC"),
    ],
)
@pytest.mark.parametrize("broken", [False, True], ids=["conformant", "broken"])
def test_3_2_3_and_4_1_no_inside_without_authenticated_tnc(
    setting: str, ha_fault: str, rule: str, broken: bool
) -> None:
    """3.2.3, 4.1: an i-HA reply without TNC (or with TNC after the authenticator) never makes the MN inside."""
    lb = lab(*([setting] if broken else []))
    lb.iha = i_ha(frozenset({ha_fault}))
    lb.link("eth0", INSIDE_COA, NOW)
    lb.pump(NOW)
    if broken:
        assert lb.core.mode("eth0") is Mode.INSIDE and lb.send("eth0", NOW + 1) is PLAIN
        assert [v.rule_id for v in lb.checker.violations] == [rule]
        return
    (untrusted,) = lb.of(UntrustedReply)
    assert not lb.of(Inside)
    lb.run(NOW, NOW + 3)
    assert lb.core.mode("eth0") is Mode.VPN_SETUP  # keeps IPsec
    assert lb.send("eth0", NOW + 4) is DROPPED and not lb.checker.violations


def test_3_2_3_bad_authenticator_is_no_reply() -> None:
    lb = lab()
    lb.link("eth0", INSIDE_COA, NOW)
    held = lb.pump(NOW, hold=(IHA,))
    (req, local, dst) = held[0]
    lb.core.receive_datagram(reply_to(req, key=b"forged"), dst, local, NOW)
    lb.drain()
    assert lb.core.mode("eth0") is Mode.TENTATIVELY_OUTSIDE and not lb.of(Inside)


@pytest.mark.parametrize("broken", [False, True], ids=["conformant", "broken"])
def test_3_3_inside_reregisters_every_t_monitor_minus_n(broken: bool) -> None:
    """3.3, 3.2.4: inside, re-register every T_MONITOR - N (48 s here) regardless of the 1800 s lifetime."""
    lb = lab(*(["t_monitor_reregistration"] if broken else []))
    go_inside(lb)
    lb.run(NOW, NOW + 200)
    times = [round(at - NOW) for at, _l, dst, _d, _v in lb.sent if dst[0] == IHA]
    assert times == ([0] if broken else [0, 48, 96, 144, 192])


@pytest.mark.parametrize("broken", [False, True], ids=["conformant", "broken"])
def test_3_2_4_reregistration_while_data_flows(broken: bool) -> None:
    """3.2.4: re-registration packets are sent even while user data is relayed."""
    lb = lab(*(["rereg_while_data_flows"] if broken else []))
    go_inside(lb)
    lb.run(NOW, NOW + 100, every=5.0)
    times = [round(at - NOW) for at, _l, dst, _d, _v in lb.sent if dst[0] == IHA]
    assert (times[:3] == [0, 48, 96]) is not broken
    assert not lb.checker.violations  # the T_MONITOR gate still holds


@pytest.mark.parametrize("broken", [False, True], ids=["conformant", "broken"])
def test_3_2_4_no_data_after_t_monitor(broken: bool) -> None:
    """3.2.4: no user data once T_MONITOR has passed since the last successful registration."""
    lb = lab(*(["t_monitor_gate"] if broken else []))
    go_inside(lb)
    lb.iha_answers = False  # the re-registration at 48 s is lost
    lb.run(NOW, NOW + 59.9)
    assert lb.send("eth0", NOW + 59.9) is PLAIN
    lb.run(NOW + 59.9, NOW + 61)
    assert lb.send("eth0", NOW + 61) is (PLAIN if broken else DROPPED)
    if broken:
        assert [v.rule_id for v in lb.checker.violations] == ["5265-3.2.4-NO-DATA-AFTER-TMONITOR"]
    else:
        assert lb.core.mode("eth0") is Mode.LAPSED and not lb.checker.violations
        assert any(isinstance(e, DataGated) and "T_MONITOR" in e.reason for e in lb.events)


def test_3_2_4_queue_released_after_successful_reregistration() -> None:
    """3.2.4: queued data waits until a re-registration completed (here: a slow reply at 62 s)."""
    lb = lab(when_gated=QUEUE)
    go_inside(lb)
    lb.run(NOW, NOW + 47)
    held = []
    for t in (48.0, 49.0, 51.0, 55.0):  # the i-HA's replies are delayed
        lb.core.handle_timer(NOW + t)
        held += lb.pump(NOW + t, hold=(IHA,))
    assert lb.send("eth0", NOW + 61, b"q") is QUEUED
    data, local, dst = held[-1]
    lb.answer(data, local, dst, NOW + 62)
    lb.drain()
    (released,) = lb.of(DataReleased)
    assert (released.at, released.decision, released.packet) == (NOW + 62, PLAIN, b"q")
    assert lb.core.mode("eth0") is Mode.INSIDE and not lb.checker.violations


@pytest.mark.parametrize("broken", [False, True], ids=["conformant", "broken"])
def test_3_2_4_queue_held_when_reregistration_fails(broken: bool) -> None:
    lb = lab(*(["hold_queue_until_rereg"] if broken else []), when_gated=QUEUE)
    go_inside(lb)
    lb.iha_answers = False
    lb.run(NOW, NOW + 61)
    assert lb.send("eth0", NOW + 61, b"q") is QUEUED
    lb.run(NOW + 61, NOW + 64)  # the re-registration times out at 63 s
    assert lb.of(ReregistrationFailed)
    assert bool(lb.of(DataReleased)) is broken
    assert [v.rule_id for v in lb.checker.violations] == (["5265-3.2.4-QUEUE-HELD"] if broken else [])


@pytest.mark.parametrize("broken", [False, True], ids=["conformant", "broken"])
def test_3_3_keep_retransmitting_to_the_iha_after_the_xha_replied(broken: bool) -> None:
    """3.3: after the x-HA's reply, the i-HA is still asked during the detection period."""
    lb = lab(*(["keep_iha_retransmit_after_xha"] if broken else []))
    lb.link("eth0", OUTSIDE_COA, NOW)
    lb.pump(NOW)
    lb.run(NOW, NOW + 10)
    assert len(lb.requests(XHA)) == 1  # the x-HA's reply stopped its retransmissions
    iha_times = [round(at - NOW) for at, _l, dst, _d, _v in lb.sent if dst[0] == IHA]
    assert iha_times == ([0] if broken else [0, 1, 3])  # detection period 3 s, then no more


@pytest.mark.parametrize("broken", [False, True], ids=["conformant", "broken"])
def test_3_3_iha_reply_stops_retransmission_to_both(broken: bool) -> None:
    """3.3: after the i-HA's reply, no more registration requests to the x-HA (only its de-registration)."""
    lb = lab(*(["stop_retransmit_on_iha_reply"] if broken else []))
    lb.xha_from_inside = False
    go_inside(lb)
    lb.run(NOW, NOW + 20)
    registrations = lb.requests(XHA, lifetime=True)
    assert len(registrations) == (4 if broken else 1)
    assert len(lb.requests(IHA)) == 1


@pytest.mark.parametrize("broken", [False, True], ids=["conformant", "broken"])
def test_3_3_tnc_reply_means_inside(broken: bool) -> None:
    lb = lab(*(["inside_on_tnc"] if broken else []))
    lb.link("eth0", INSIDE_COA, NOW)
    lb.pump(NOW)
    lb.run(NOW, NOW + 5)
    assert lb.core.mode("eth0") is (Mode.VPN_SETUP if broken else Mode.INSIDE)


@pytest.mark.parametrize("broken", [False, True], ids=["conformant", "broken"])
def test_3_3_deregister_with_the_xha_once_inside(broken: bool) -> None:
    lb = lab(*(["deregister_xha_when_inside"] if broken else []))
    go_inside(lb)
    lb.run(NOW, NOW + 5)
    assert len(lb.requests(XHA, lifetime=False)) == (0 if broken else 1)
    if not broken:
        assert XHOA not in lb.xha.bindings


@pytest.mark.parametrize("broken", [False, True], ids=["conformant", "broken"])
def test_3_3_failed_reregistration_stops_plaintext(broken: bool) -> None:
    """3.3: a denied re-registration stops plaintext at once (not only at T_MONITOR)."""
    lb = lab(*(["stop_plaintext_on_rereg_failure"] if broken else []))
    go_inside(lb)
    lb.run(NOW, NOW + 47)
    lb.core.handle_timer(NOW + 48)
    ((req, local, dst),) = lb.pump(NOW + 48, hold=(IHA,))
    lb.core.receive_datagram(reply_to(req, code=129), dst, local, NOW + 48)  # administratively prohibited
    lb.drain()
    (failed,) = lb.of(ReregistrationFailed)
    assert "129" in failed.reason
    assert lb.send("eth0", NOW + 48.5) is (PLAIN if broken else DROPPED)
    assert [v.rule_id for v in lb.checker.violations] == (["5265-3.3-REREG-FAIL-STOP-PLAINTEXT"] if broken else [])


@pytest.mark.parametrize("broken", [False, True], ids=["conformant", "broken"])
def test_3_3_failed_reregistration_restarts_detection(broken: bool) -> None:
    lb = lab(*(["restart_on_rereg_failure"] if broken else []))
    go_inside(lb)
    lb.iha_answers = False
    lb.run(NOW, NOW + 64)
    assert lb.of(ReregistrationFailed)
    assert len(lb.of(DetectionStarted)) == (1 if broken else 2)
    assert len(lb.requests(XHA, after=NOW + 60, lifetime=True)) == (0 if broken else 1)
    assert lb.core.mode("eth0") is (Mode.LAPSED if broken else Mode.TENTATIVELY_OUTSIDE)


def test_3_3_reply_without_tnc_on_reregistration_is_a_failure() -> None:
    lb = lab()
    go_inside(lb)
    lb.iha = i_ha(frozenset({"omit-tnc"}))  # e.g. the i-HA now sees an untrusted source
    lb.run(NOW, NOW + 48.5)
    (failed,) = lb.of(ReregistrationFailed)
    assert "Trusted Networks" in failed.reason and lb.send("eth0", NOW + 49) is DROPPED


@pytest.mark.parametrize("broken", [False, True], ids=["conformant", "broken"])
def test_3_3_late_iha_reply_switches_to_inside(broken: bool) -> None:
    """3.3 last paragraph, 3.5: an i-HA reply after IPsec set-up began still switches to the i-HA."""
    lb = lab(*(["switch_to_iha_on_late_reply"] if broken else []))
    lb.link("eth0", INSIDE_COA, NOW)
    held = lb.pump(NOW, hold=(IHA,))
    lb.iha_answers = False
    lb.run(NOW, NOW + 3.0)  # only the x-HA answered: outside, VPN requested
    assert lb.core.mode("eth0") is Mode.VPN_SETUP and lb.of(VpnRequested)
    data, local, dst = held[0]
    lb.answer(data, local, dst, NOW + 4)
    lb.drain()
    if broken:
        assert lb.core.mode("eth0") is Mode.VPN_SETUP and not lb.of(Inside)
        return
    assert lb.core.mode("eth0") is Mode.INSIDE and lb.of(Inside) == [Inside("eth0", NOW + 4, True)]
    assert lb.of(VpnReleased) and lb.send("eth0", NOW + 5) is PLAIN and not lb.checker.violations


@pytest.mark.parametrize("broken", [False, True], ids=["conformant", "broken"])
def test_3_5_same_address_means_outside(broken: bool) -> None:
    lb = lab(*(["same_ha_goes_outside"] if broken else []), interfaces=(interface(xha=IHA),))
    lb.link("eth0", INSIDE_COA, NOW)
    (started,) = lb.of(DetectionStarted)
    out = lb.core.datagrams_to_send(NOW)
    assert len(out) == (2 if broken else 1) and started.same_address is not broken
    if not broken:
        assert lb.core.mode("eth0") is Mode.XHA_REGISTERING
        xha = x_ha(IHA)
        for data, local, dst in out:
            lb.core.receive_datagram(xha.handle(data, local, dst, NOW).reply, dst, local, NOW)
        lb.drain()
        assert lb.core.mode("eth0") is Mode.VPN_SETUP and lb.of(VpnRequested)


@pytest.mark.parametrize("broken", [False, True], ids=["conformant", "broken"])
def test_2_3_vpn_layer_is_never_skipped(broken: bool) -> None:
    lb = lab(*(["skip_vpn"] if broken else []))
    lb.link("eth0", OUTSIDE_COA, NOW)
    lb.pump(NOW)
    lb.run(NOW, NOW + 3.0)
    assert lb.send("eth0", NOW + 4) is (PLAIN if broken else DROPPED)
    assert bool(lb.of(VpnRequested)) is not broken
    assert bool(lb.checker.violations) is broken


@pytest.mark.parametrize("broken", [False, True], ids=["conformant", "broken"])
def test_2_3_inner_registration_sets_t(broken: bool) -> None:
    lb = lab(*(["inner_reverse_tunnel"] if broken else []))
    go_outside(lb)
    (inner,) = [codec.parse_request(d) for _at, _l, _dst, d, vpn in lb.sent if vpn]
    assert bool(inner.flags & n.FLAG_T) is not broken


def test_events_show_client_roles_and_gate_changes() -> None:
    lb = lab()
    go_outside(lb)
    roles = {e.role for e in lb.of(ClientEvent)}
    assert roles == {Role.XHA, Role.INNER}  # the i-HA is unreachable from outside
    assert [e.decision for e in lb.of(DataResumed)] == [VPN]


# ---------------------------------------------------------------- over the simulated network


class SimMobileNode:
    """The detection core on a SimNetwork: at its care-of address, and (the VPN modelled as
    transparent) at its VPN-TIA, where what comes out of the tunnel is handed to receive_vpn_datagram."""

    def __init__(self, core: MobileNodeDetection, via_vpn: bool = False, owner: SimMobileNode | None = None) -> None:
        self.core, self.via_vpn, self.owner = core, via_vpn, owner

    def receive_datagram(self, data: bytes, src: Any, local: Any, now: float) -> None:
        (self.core.receive_vpn_datagram if self.via_vpn else self.core.receive_datagram)(data, src, local, now)

    def datagrams_to_send(self, now: float) -> list[Any]:
        return self.core.datagrams_to_send(now) + self.core.vpn_datagrams_to_send(now)

    def get_timer(self) -> float | None:
        return None if self.via_vpn else self.core.get_timer()

    def handle_timer(self, now: float) -> None:
        self.core.handle_timer(now)


def test_inside_outside_inside_over_the_simulated_network() -> None:
    """Several virtual minutes, T_MONITOR 60 s, the i-HA behind the firewall of 3.1, in well under a second."""
    import time as _time

    from mipcheck.clock import VirtualClock
    from mipcheck.sim.home_agent import HomeAgentActor
    from mipcheck.sim.network import SimNetwork

    net = SimNetwork(VirtualClock(epoch=NOW))
    net.block("198.51.100.0/24", "10.0.0.0/8")  # 3.1: the i-HA is unreachable from outside
    iha, xha = i_ha(), x_ha()
    net.attach(HomeAgentActor(iha), IHA, 434)
    net.attach(HomeAgentActor(xha), XHA, 434)
    core = MobileNodeDetection((interface(),))
    mn = SimMobileNode(core)
    vpn_side = SimMobileNode(core, via_vpn=True)
    checker = PlaintextSafetyChecker(60.0)
    decisions: list[tuple[float, DataDecision]] = []
    events: list[Any] = []
    places: list[tuple[str, int]] = []

    def move(coa: str) -> None:
        for place in places:
            net.release(place)
        places[:] = [net.attach(mn, coa, PORT)]
        core.link_change("eth0", "up", coa, net.clock.time())
        net.wake(mn)

    def live(seconds: float) -> None:
        end = net.clock.monotonic() + seconds
        while net.clock.monotonic() < end:
            net.run_for(1.0)
            now = net.clock.time()
            while (ev := core.next_event()) is not None:
                events.append(ev)
                checker.observe(ev)
                if isinstance(ev, VpnRequested):  # the VPN gateway assigns a TIA in the internal pool
                    places.append(net.attach(vpn_side, TIA, PORT))
                    core.vpn_up("eth0", TIA, now)
                    net.wake(mn)
            d = core.send_user_data("eth0", b"data", now)
            checker.data("eth0", d, now)
            decisions.append((now - NOW, d))

    t0 = _time.monotonic()
    move(INSIDE_COA)
    live(150)
    move(OUTSIDE_COA)
    live(150)
    move(INSIDE_COA2)
    live(150)
    assert _time.monotonic() - t0 < 1.0
    assert not checker.violations
    assert checker.plaintext_checked > 250
    # inside: plaintext all along (re-registrations every 48 s keep the gate open)
    assert {d for t, d in decisions if 2 <= t < 150} == {PLAIN}
    # outside: via the VPN once x-MIP (3 s detection period), VPN and inner registration are up
    assert {d for t, d in decisions if 150 < t < 153} == {DROPPED}
    assert {d for t, d in decisions if 155 <= t < 300} == {VPN}
    assert {d for t, d in decisions if 302 <= t < 450} == {PLAIN}
    inside_times = [round(e.at - NOW) for e in events if isinstance(e, Inside)]
    assert inside_times == [0, 300]
    rereg = [round(t.time - NOW) for t in net.log if t.dst == (IHA, 434) and t.src == (INSIDE_COA, PORT)]
    assert rereg[:4] == [0, 48, 96, 144]
    assert any(t.fate == "blocked" and t.dst == (IHA, 434) for t in net.log)  # the firewall did its part
    assert XHOA not in xha.bindings  # 3.3: de-registered with the x-HA once inside again
    assert iha.bindings[HOA][0].care_of_address == INSIDE_COA2
