"""The reference mobile node's fault table (mipcheck.mn.faults): each fault shows on the wire.

For every fault a short scenario runs twice over the simulated network, with
the conformant node and with the faulty one, against the parties of
tests/mn_peer.py; the wire (every datagram between node and parties, ESP
opened) must differ, and the ``witness`` line count says where.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from mn_peer import INSIDE, OUTSIDE, OUTSIDE_2, Played, describe, make_profile

from mipcheck.clock import VirtualClock
from mipcheck.errors import ConfigError
from mipcheck.mn.detection_behaviour import BROKEN_RULES, DetectionBehaviour
from mipcheck.mn.detection_events import DetectionStarted
from mipcheck.mn.faults import FAULTS, TABLE, behaviour_for, check_faults
from mipcheck.mn.node import ReferenceMobileNode
from mipcheck.sim.network import SimNetwork
from mipcheck.sim.reference_node import SimReferenceNode

NOW = 1_800_000_000.0
Lab = tuple[SimNetwork, Played, SimReferenceNode]
Step = Callable[[SimNetwork, Played, SimReferenceNode], None]


def test_each_fault_flips_one_setting_and_names_its_rule() -> None:
    assert [f.setting for f in TABLE] == list(dict.fromkeys(f.setting for f in TABLE))  # one fault per setting
    assert {f.setting for f in TABLE} == set(BROKEN_RULES)
    for fault in TABLE:
        assert fault.name == fault.name.lower() and " " not in fault.name and "_" not in fault.name
        assert behaviour_for([fault.name]).broken == (fault.setting,)
        assert fault.as_dict()["rule"] == BROKEN_RULES[fault.setting] == fault.rule
    assert behaviour_for([]) == DetectionBehaviour()
    assert check_faults(["skip-vpn", "skip-vpn"]) == ("skip-vpn",)
    with pytest.raises(ConfigError, match="'no-such-fault' is not a reference mobile node fault"):
        check_faults(["no-such-fault"])


# ---------------------------------------------------------------- scenarios


def move(network: str, interface: str = "eth0") -> Step:
    def step(net: SimNetwork, peer: Played, mn: SimReferenceNode) -> None:
        mn.move(interface, network)

    return step


def run(seconds: float) -> Step:
    return lambda net, peer, mn: net.run_for(seconds)


def echo(coa: str, *, via_vpn: bool = False) -> Step:
    def step(net: SimNetwork, peer: Played, mn: SimReferenceNode) -> None:
        peer.echo(coa, via_vpn=via_vpn)
        net.wake(peer)
        net.run_for(0.5)

    return step


def play(**changes: Any) -> Step:
    return lambda net, peer, mn: [setattr(peer, k, v) for k, v in changes.items()] and None


def every(seconds: float, times: int, step: Step) -> list[Step]:
    return [s for _ in range(times) for s in (run(seconds), step)]


INSIDE_NOW = [move("inside"), run(1)]
REPLY = "TD(echo reply"
IHA_REG = "mn>iha RRQ reg hoa=10.1.9.9"
XHA_REG = "mn>xha RRQ reg hoa=192.0.2.99"
XHA_DEREG = "mn>xha RRQ dereg hoa=192.0.2.99"

#: fault -> (profile [dut] keys, played-party settings, steps, witness: a substring whose count must differ)
SCENARIOS: dict[str, tuple[dict[str, Any], dict[str, Any], list[Step], str]] = {
    "shared-interface-verdict": (
        {"interfaces": ["eth0", "wlan0"]},
        {},
        [*INSIDE_NOW, move("outside", "wlan0"), run(0.5), echo(OUTSIDE_2)],
        REPLY,
    ),
    "data-through-status-change": ({}, {}, [*INSIDE_NOW, move("outside"), echo(OUTSIDE)], REPLY),
    "inside-without-tnc": ({}, {"iha_mode": "omit-tnc"}, [move("inside"), run(5), echo(INSIDE)], REPLY),
    "trust-unauthenticated-tnc": ({}, {"iha_mode": "tnc-after-auth"}, [move("inside"), run(5), echo(INSIDE)], REPLY),
    "no-tmonitor-rereg": ({}, {}, [*INSIDE_NOW, run(58)], IHA_REG),
    "no-rereg-while-data": ({}, {}, [*INSIDE_NOW, *every(4.5, 13, echo(INSIDE))], IHA_REG),
    "data-after-tmonitor": (
        {"rereg_grace": 2},
        {},
        [*INSIDE_NOW, play(iha_mode="silent"), run(60), echo(INSIDE)],
        REPLY,
    ),
    "release-queue-early": (  # the faulty node's reply leaves once the VPN is up; the conformant one discards
        {"rereg_grace": 2, "when_gated": "queue"},
        {"inner_mode": "tnc"},
        [*INSIDE_NOW, play(iha_mode="silent"), run(60), echo(INSIDE), run(14)],
        "echo reply",
    ),
    "stop-iha-after-xha": ({}, {}, [move("outside"), run(2.9)], "mn>iha RRQ reg"),
    "keep-retransmitting": ({}, {"xha_answers": False}, [move("inside"), run(5)], XHA_REG),
    "ignore-tnc": ({}, {}, [move("inside"), run(5), echo(INSIDE)], REPLY),
    "no-xha-dereg": ({}, {}, INSIDE_NOW, XHA_DEREG),
    "plaintext-after-rereg-failure": (
        {},
        {},
        [*INSIDE_NOW, run(46), play(iha_mode="omit-tnc", xha_answers=False), run(2), echo(INSIDE)],
        REPLY,
    ),
    "no-restart-after-rereg-failure": (
        {},
        {},
        [*INSIDE_NOW, run(46), play(iha_mode="omit-tnc"), run(2)],
        XHA_REG,
    ),
    "ignore-late-iha": ({}, {"iha_delay": 4.0}, [move("inside"), run(10)], XHA_DEREG),
    "detect-with-same-ha": ({}, {}, [move("outside"), run(1)], "RRQ reg hoa=10.1.9.9 coa=198.51.100.5"),
    "skip-vpn": ({}, {}, [move("outside"), run(5)], "ESP["),
    "no-inner-t-bit": ({}, {}, [move("outside"), run(5)], "flags=DT"),
    "sequential-detection": ({}, {}, [move("outside"), run(1)], XHA_REG),
}
SAME_HA = {"detect-with-same-ha"}  # the profile gives the i-HA's address to the x-HA too (3.5)


def wire(fault: str | None, name: str) -> list[str]:
    dut, played, steps, _witness = SCENARIOS[name]
    profile = make_profile({"address": "10.1.0.1"} if name in SAME_HA else None, **dut)
    net = SimNetwork(VirtualClock(epoch=NOW))
    peer = Played(profile, **played)
    peer.attach(net)
    mn = SimReferenceNode(net, ReferenceMobileNode(profile, behaviour=behaviour_for([fault] if fault else [])))
    for step in steps:
        step(net, peer, mn)
    roles = {peer.iha: "iha", peer.xha: "xha"}
    return [f"{roles.get(t.src, 'mn')}>{roles.get(t.dst, 'mn')} {describe(t.data, peer)}" for t in net.log]


def test_every_fault_has_a_scenario() -> None:
    assert set(SCENARIOS) == set(FAULTS)


@pytest.mark.parametrize("fault", sorted(SCENARIOS))
def test_fault_shows_on_the_wire(fault: str) -> None:
    witness = SCENARIOS[fault][3]
    conformant, faulty = wire(None, fault), wire(fault, fault)
    count = [sum(witness in line for line in lines) for lines in (conformant, faulty)]
    assert count[0] != count[1], f"{fault}: {witness!r} {count}\n" + "\n".join(faulty)


# ---------------------------------------------------------------- 3.3: two simultaneous requests


@pytest.mark.parametrize(
    ("fault", "network", "asked", "first_xha_request"),
    [
        (None, "outside", ("10.1.0.1", "192.0.2.1"), 0.0),
        ("sequential-detection", "outside", ("10.1.0.1",), 7.5),  # the i-HA gave up: 0.5 + 1 + 2 + 4 s
        (None, "inside", ("10.1.0.1", "192.0.2.1"), 0.0),
        ("sequential-detection", "inside", ("10.1.0.1",), None),  # inside at once: the x-HA is never asked
    ],
)
def test_parallel_detection(fault: str | None, network: str, asked: tuple[str, ...], first_xha_request: float) -> None:
    profile = make_profile()
    net = SimNetwork(VirtualClock(epoch=NOW))
    peer = Played(profile)
    peer.attach(net)
    mn = SimReferenceNode(net, ReferenceMobileNode(profile, behaviour=behaviour_for([fault] if fault else [])))
    mn.move("eth0", network)
    net.run_for(10)
    (started,) = [e for e in mn.events if isinstance(e, DetectionStarted)]
    assert started.home_agents == asked
    to_xha = [t.time - NOW for t in net.log if t.dst == peer.xha and t.data[0] == 1]
    assert (round(to_xha[0] - 0.0002, 3) if to_xha else None) == first_xha_request
