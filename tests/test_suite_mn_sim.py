"""The MN suite over the simulated network (T_MONITOR 60 s in virtual time) against the reference mobile node.

The conformant reference node passes every case; each case fails (warns, for
SHOULD) under each of its faults, and says which catalogue rule broke; every
fault of the reference node fails at least one case. Odd devices that are not
at fault for a case end inconclusive (a device that answers no ping at all)
or error (nothing from the device, bad keys, a move that fails), never fail.
Everything runs in virtual time: the whole file takes seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from mipcheck.catalogue import by_case
from mipcheck.engine.runner import RunResult
from mipcheck.engine.verdicts import Verdict, exit_code
from mipcheck.mn.faults import FAULTS as MN_FAULTS
from mipcheck.mn.faults import behaviour_for
from mipcheck.mn.node import ReferenceMobileNode
from mipcheck.mn.profile import MobileNodeProfile, parse_mobile_node_profile
from mipcheck.outcomes import Party
from mipcheck.sim.network import SimNetwork
from mipcheck.sim.reference_node import SimReferenceNode
from mipcheck.suites.mn import CASES, CASES_BY_ID, FAULTS, WARN_UNDER, SimEnv, run_mn_suite
from mipcheck.suites.mn.played import DIRECT, IHA, PlayedParties

IHA_ADDRESS, XHA_ADDRESS, GATEWAY = "10.1.0.1", "192.0.2.1", "192.0.2.10"
HOA, XHOA, TIA = "10.1.9.9", "192.0.2.99", "10.8.0.5"
INSIDE, OUTSIDE, INSIDE_2, OUTSIDE_2 = "10.2.0.5", "198.51.100.5", "10.2.0.6", "198.51.100.6"
SAME_ADDRESS = {"MN-SAME-HA-OUTSIDE"}  # cases that apply only when the i-HA and the x-HA share an address


def profile_doc(*, same_address: bool = False, interfaces: Iterable[str] = ("eth0", "eth1"), **dut: Any) -> dict:
    """T_MONITOR 60 s (the RFC's default); N = 5 s, so a re-registration is still pending when T_MONITOR lapses."""
    return {
        "dut": {
            "home_address": HOA,
            "interfaces": list(interfaces),
            "t_monitor": 60,
            "rereg_grace": 5,
            "detection_period": 3,
            "when_gated": "queue",
            **dut,
        },
        "i_ha": {"address": IHA_ADDRESS, "spi": 0x5265, "secret": "i-ha test key"},
        "x_ha": {
            "address": IHA_ADDRESS if same_address else XHA_ADDRESS,
            "home_address": XHOA,
            "spi": 0x5266,
            "secret": "x-ha test key",
        },
        "vpn": {
            "gateway": GATEWAY,
            "inner_address": TIA,
            "spi_in": 0x1001,
            "spi_out": 0x1002,
            "encryption": "AES-CBC",
            "encryption_key_hex": bytes(range(16)).hex(),
            "integrity": "HMAC-SHA1-96",
            "integrity_key_hex": bytes(range(20)).hex(),
        },
        "networks": {"inside": INSIDE, "outside": OUTSIDE, "inside_2": INSIDE_2, "outside_2": OUTSIDE_2},
    }


def make_profile(**kw: Any) -> MobileNodeProfile:
    return parse_mobile_node_profile(profile_doc(**kw))


def run(
    cases: Iterable[str] | None = None,
    faults: Iterable[str] = (),
    *,
    node: type[ReferenceMobileNode] = ReferenceMobileNode,
    device_profile: MobileNodeProfile | None = None,
    move: Any = None,
    **profile: Any,
) -> RunResult:
    """The suite (or ``cases``) against a reference node on a fresh simulated network."""
    suite_profile = make_profile(**profile)
    net = SimNetwork()
    mn = SimReferenceNode(net, node(device_profile or suite_profile, behaviour=behaviour_for(faults)))
    env = SimEnv(suite_profile, net, move or (lambda i, n, c: mn.move(i, n, c)))
    chosen = list(CASES) if cases is None else [CASES_BY_ID[c] for c in cases]
    try:
        return run_mn_suite(chosen, env)
    finally:
        env.close()


def verdicts(result: RunResult) -> dict[str, str]:
    return {r.id: f"{r.verdict}: {r.reason}" for r in result.results}


# ---------------------------------------------------------------- the conformant reference node


def test_the_conformant_reference_node_passes_every_case() -> None:
    result = run()
    assert result.preflight is not None and result.preflight.status == "accepted"
    bad = {k: v for k, v in verdicts(result).items() if not v.startswith("pass") and k not in SAME_ADDRESS}
    assert bad == {}
    assert [r.verdict for r in result.results if r.id in SAME_ADDRESS] == [Verdict.NOT_APPLICABLE]
    assert exit_code(result.results) == 0
    for r in result.results:
        if r.verdict is Verdict.PASS:  # every judged frame is in the case's evidence
            assert set(r.evidence["judged"]) <= set(range(1, int(r.evidence["frames"]) + 1)), r.id


def test_with_one_home_agent_address_only_the_outside_cases_apply() -> None:
    result = run(same_address=True)
    got = {r.id: r.verdict for r in result.results}
    assert got["MN-SAME-HA-OUTSIDE"] is Verdict.PASS, verdicts(result)["MN-SAME-HA-OUTSIDE"]
    assert got["MN-NO-VPN-SKIP"] is Verdict.PASS, verdicts(result)["MN-NO-VPN-SKIP"]
    assert {v for k, v in got.items() if k not in ("MN-SAME-HA-OUTSIDE", "MN-NO-VPN-SKIP")} == {Verdict.NOT_APPLICABLE}


def test_status_change_to_a_second_inside_network_with_one_interface() -> None:
    """One interface and networks.inside_2: the move goes inside to inside, detection ends with the held TNC reply."""
    for faults, expected in (((), Verdict.PASS), (("data-through-status-change",), Verdict.FAIL)):
        result = run(["MN-STATUS-CHANGE-STOP", "MN-PER-INTERFACE"], faults, interfaces=("eth0",))
        status, per_interface = result.results
        assert status.verdict is expected, status.reason
        assert "10.2.0.6" in status.reason
        assert per_interface.verdict is Verdict.NOT_APPLICABLE and "one interface" in per_interface.reason


# ---------------------------------------------------------------- each case can fail

PAIRS = [(case_id, fault) for case_id, faults in FAULTS.items() for fault in faults]


@pytest.mark.parametrize(("case_id", "fault"), PAIRS, ids=[f"{c}--{f}" for c, f in PAIRS])
def test_case_fails_under_its_fault(case_id: str, fault: str) -> None:
    case = CASES_BY_ID[case_id]
    result = run([case_id], [fault], same_address=case_id in SAME_ADDRESS).results[0]
    graded_must = case.level == "MUST" and (case_id, fault) not in WARN_UNDER
    expected = Verdict.FAIL if graded_must else Verdict.WARN
    assert result.verdict is expected, f"{result.verdict}: {result.reason}"
    assert result.failure is not None and result.failure.ok is False
    assert result.failure.expected and result.failure.observed
    assert "frame " in result.failure.observed  # the reason names what actually arrived
    violation = result.violation
    assert violation is not None and violation.party is Party.DEVICE and violation.code == case_id
    assert violation.rule_id in case.rules and violation.rule_id in {r.id for r in by_case(case_id)}
    if len(case.faults) == 1 or case_id == "MN-REREG-FAIL-RESTART":  # the check says which rule broke
        assert violation.rule_id == MN_FAULTS[fault].rule, violation


def test_every_fault_fails_at_least_one_case_and_every_case_has_a_fault() -> None:
    assert {f for faults in FAULTS.values() for f in faults} == set(MN_FAULTS)
    assert all(FAULTS[c.id] for c in CASES)
    for case in CASES:  # the catalogue lists every case under the rules it judges
        assert {r.id for r in by_case(case.id)} >= set(case.rules), case.id


# ---------------------------------------------------------------- odd devices


class EchoDeaf(ReferenceMobileNode):
    """Registers, detects and tunnels like the reference node, but answers no echo request at all."""

    def _user_data_in(self, interface: str, packet: bytes, now: float, *, via_vpn: bool) -> None:
        return None


def test_a_device_that_answers_no_ping_is_inconclusive_never_failed() -> None:
    result = run(node=EchoDeaf)
    got = {r.id: r.verdict for r in result.results}
    assert Verdict.FAIL not in got.values() and Verdict.WARN not in got.values(), verdicts(result)
    needs_a_ping = {
        "MN-TNC-MEANS-INSIDE",
        "MN-TNC-REQUIRED",
        "MN-TNC-UNAUTHENTICATED",
        "MN-TMONITOR-REREG",
        "MN-TMONITOR-GATE",
        "MN-QUEUE-HELD",
        "MN-REREG-FAIL-RESTART",
        "MN-STATUS-CHANGE-STOP",
        "MN-PER-INTERFACE",
        "MN-NO-VPN-SKIP",
        "MN-LATE-IHA-SWITCH",
        "MN-XHA-DEREG",
    }
    assert {k for k, v in got.items() if v is Verdict.INCONCLUSIVE} == needs_a_ping, verdicts(result)
    # what the registrations alone show is still judged
    assert got["MN-PARALLEL-DETECT"] is Verdict.PASS and got["MN-STOP-RETRANSMIT"] is Verdict.PASS
    control = next(r for r in result.results if r.id == "MN-TNC-REQUIRED").reason
    assert control.startswith("control:") and "answered none of" in control and "frame " in control


def test_nothing_from_the_device_makes_every_case_an_error() -> None:
    result = run(move=lambda i, n, c: None)  # the move "works", but there is no device
    assert result.preflight is not None and result.preflight.status == "silent"
    assert "nothing arrived from the device" in result.preflight.detail
    assert "[commands].move" in result.preflight.detail
    assert {r.verdict for r in result.results if r.id not in SAME_ADDRESS} == {Verdict.ERROR}
    assert exit_code(result.results) == 2
    assert all(
        r.violation is not None and r.violation.party is Party.TESTER for r in result.results if r.verdict == "error"
    )


def test_bad_keys_are_a_tester_error_not_a_device_failure() -> None:
    device = parse_mobile_node_profile(
        {**profile_doc(), "i_ha": {"address": IHA_ADDRESS, "spi": 0x5265, "secret": "another key"}}
    )
    result = run(["MN-TNC-REQUIRED"], device_profile=device)
    assert result.preflight is not None and result.preflight.status == "unauthenticated"
    assert result.preflight.detail.startswith("bad keys") and "[i_ha]" in result.preflight.detail
    assert result.results[0].verdict is Verdict.ERROR and exit_code(result.results) == 2


def test_a_failing_move_is_a_tester_error() -> None:
    def move(interface: str, network: str, coa: str | None) -> None:
        raise ValueError("no such interface in this lab")

    result = run(["MN-TNC-REQUIRED", "MN-XHA-DEREG"], move=move)
    assert result.preflight is not None and result.preflight.status == "error"
    assert all(r.verdict is Verdict.ERROR and "no such interface in this lab" in r.reason for r in result.results)


# ---------------------------------------------------------------- the played parties


def test_the_i_ha_drops_requests_from_outside_and_answers_inside_with_tnc_before_the_authenticator() -> None:
    from mipcheck.layers import MIPExtMNHAAuth, MIPExtTNC, MIPExtUDPTunnelRequest, RegistrationReply
    from mipcheck.layers import RegistrationRequest as RRQ

    profile = make_profile()
    played = PlayedParties(profile)

    def request(coa: str) -> bytes:
        sa = profile.i_ha.sa
        return bytes(
            RRQ(
                D=1,
                home_address=HOA,
                home_agent=IHA_ADDRESS,
                care_of_address=coa,
                identification=1 << 32,
                extensions=[
                    MIPExtUDPTunnelRequest(F=1, encapsulation=4),
                    MIPExtMNHAAuth(spi=sa.spi, key=sa.secret, algorithm=sa.algorithm),
                ],
            )
        )

    played.receive_datagram(request(OUTSIDE), (OUTSIDE, 49434), profile.i_ha.place, 1.0)
    assert played.datagrams_to_send(1.0) == []
    assert played.log[-1].action.startswith("dropped: from outside")
    played.receive_datagram(request(INSIDE), (INSIDE, 49434), profile.i_ha.place, 2.0)
    ((data, local, dst),) = played.datagrams_to_send(2.0)
    assert (local, dst) == (profile.i_ha.place, (INSIDE, 49434))
    reply = RegistrationReply(data)
    kinds = [type(e) for e in reply.extensions]
    assert reply.code == 0 and kinds.index(MIPExtTNC) < kinds.index(MIPExtMNHAAuth)
    assert all(c.valid for c in reply.verify({profile.i_ha.sa.spi: profile.i_ha.sa}))
    request_obs = [o for o in played.log if o.kind == "request"][-1]
    assert request_obs.udp_tunnel and request_obs.udp_tunnel_f and request_obs.udp_tunnel_before_auth
    assert played.bindings[(IHA, DIRECT)].dst == (INSIDE, 49434)
    ping = played.ping(DIRECT, 3.0)
    assert ping is not None and ping.dst == (INSIDE, 49434)


def test_a_delayed_i_ha_answers_the_last_pending_request_late_with_tnc() -> None:
    from mipcheck.layers import MIPExtMNHAAuth, MIPExtTNC, RegistrationReply
    from mipcheck.layers import RegistrationRequest as RRQ

    profile = make_profile()
    played = PlayedParties(profile)
    played.set_mode(IHA, "delay", 0.0, delay=2.0)
    sa = profile.i_ha.sa
    for at, ident in ((1.0, 1 << 32), (1.5, 2 << 32)):  # the request and its retransmission
        rrq = RRQ(D=1, home_address=HOA, home_agent=IHA_ADDRESS, care_of_address=INSIDE, identification=ident,
                  extensions=[MIPExtMNHAAuth(spi=sa.spi, key=sa.secret, algorithm=sa.algorithm)])  # fmt: skip
        played.receive_datagram(bytes(rrq), (INSIDE, 49434), profile.i_ha.place, at)
    assert played.datagrams_to_send(1.5) == [] and played.get_timer() == 3.0
    played.handle_timer(3.0)
    ((data, _, dst),) = played.datagrams_to_send(3.0)
    reply = RegistrationReply(data)
    assert dst == (INSIDE, 49434) and reply.code == 0 and reply.identification == 2 << 32
    assert [type(e) for e in reply.extensions] == [MIPExtTNC, MIPExtMNHAAuth]
    assert played.get_timer() is None
