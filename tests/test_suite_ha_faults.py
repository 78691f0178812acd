"""Proof that each case can fail: run it against the built-in i-HA with the fault made for it.

For every (case, fault) pair of the suite's table the case must fail, or
warn when it is a SHOULD-level case; without the fault it must pass. A case
no fault can break would be a test that cannot fail.
"""

from __future__ import annotations

import pytest

from mipcheck.builtin import BuiltinLab
from mipcheck.catalogue import load_catalogue
from mipcheck.engine.runner import run_suite
from mipcheck.engine.verdicts import Verdict
from mipcheck.ha.faults import PASSING_FAULTS
from mipcheck.outcomes import Party
from mipcheck.suites.ha import CASES_BY_ID, FAIL_UNDER, FAULTS, SUITE, WARN_UNDER

CATALOGUE_IDS = {req.id for req in load_catalogue()}
PAIRS = [(case_id, fault) for case_id, faults in FAULTS.items() for fault in faults]


# Faults that send to port 434 instead of the tester's socket: only a tester that may bind UDP
# port 434 (root, or net.ipv4.ip_unprivileged_port_start <= 434) sees where the datagram went;
# without it the case is rightly inconclusive. The simulated network (test_sim_network) needs no
# privileges and runs these pairs everywhere.
NEEDS_PORT_434 = {"reply-to-port-434", "tunnel-data-to-port-434"}


def _can_bind_434() -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.2", 434))
        except OSError:
            return False
    return True


def _run(case_id: str, faults: tuple[str, ...] = ()):
    with BuiltinLab(faults) as lab:
        return run_suite(SUITE, [CASES_BY_ID[case_id]], lab.profile, lab.control).results[0]


@pytest.mark.parametrize(("case_id", "fault"), PAIRS, ids=[f"{c}--{f}" for c, f in PAIRS])
def test_case_fails_under_its_fault(case_id: str, fault: str) -> None:
    case = CASES_BY_ID[case_id]
    if fault in NEEDS_PORT_434 and not _can_bind_434():
        pytest.skip("needs to bind UDP port 434 (root) to see replies sent there; covered over the simulated network")
    result = _run(case_id, (fault,))
    graded_must = (case.level == "MUST" and (case_id, fault) not in WARN_UNDER) or (case_id, fault) in FAIL_UNDER
    expected = Verdict.FAIL if graded_must else Verdict.WARN
    assert result.verdict is expected, f"{result.verdict}: {result.reason}"
    assert result.failure is not None and result.failure.ok is False
    assert result.failure.expected and result.failure.observed
    violation = result.violation  # the device broke a catalogue rule, and the report says which
    assert violation is not None and violation.party is Party.DEVICE and violation.code == case_id
    assert violation.rule_id in CATALOGUE_IDS, violation


def test_the_same_cases_pass_without_faults() -> None:
    with BuiltinLab() as lab:
        run = run_suite(SUITE, [CASES_BY_ID[c] for c in FAULTS], lab.profile, lab.control)
    assert {r.id: str(r.verdict) for r in run.results} == dict.fromkeys(FAULTS, "pass")


@pytest.mark.parametrize("variant", sorted(PASSING_FAULTS))
def test_every_case_passes_under_each_conformant_variant(variant: str) -> None:
    """A conformant behaviour a real device may have (e.g. logging each source once) fails no case."""
    with BuiltinLab((variant,)) as lab:
        run = run_suite(SUITE, [CASES_BY_ID[c] for c in FAULTS], lab.profile, lab.control)
    assert {r.id: f"{r.verdict}: {r.reason}" for r in run.results if r.verdict is not Verdict.PASS} == {}
