"""HA-UNTRUSTED-LOG does not depend on the other cases of the run.

A home agent that logs each untrusted source once (legitimate deduplication,
fault profile ``log-untrusted-once`` of mipcheck.ha.faults.PASSING_FAULTS)
has already logged the source when HA-UNTRUSTED-DROP ran first in the same
run: the case must still pass, and still warn when nothing is logged at all.
"""

from __future__ import annotations

import pytest

from mipcheck.builtin import BuiltinLab
from mipcheck.engine.runner import run_suite
from mipcheck.engine.verdicts import Verdict
from mipcheck.ha.core import HomeAgent
from mipcheck.ha.faults import FAULT_CASES, FAULTS, PASSING_FAULTS
from mipcheck.suites.ha import CASES_BY_ID, SUITE

ORDER = ("HA-UNTRUSTED-DROP", "HA-SOURCE-NOT-COA", "HA-UNTRUSTED-LOG")  # the log case last, one at a time


def _run(faults: tuple[str, ...]):
    with BuiltinLab(faults) as lab:
        run = run_suite(SUITE, [CASES_BY_ID[c] for c in ORDER], lab.profile, lab.control, jobs=1)
    return {r.id: r for r in run.results}


def test_once_per_source_logger_passes_after_other_cases_used_the_source() -> None:
    results = _run(("log-untrusted-once",))
    log = results["HA-UNTRUSTED-LOG"]
    assert log.verdict is Verdict.PASS, log.reason
    assert results["HA-UNTRUSTED-DROP"].verdict is Verdict.PASS  # the variant drops like the conformant HA


def test_no_log_at_all_still_warns_after_other_cases() -> None:
    log = _run(("no-untrusted-log",))["HA-UNTRUSTED-LOG"]
    assert log.verdict is Verdict.WARN, log.reason
    assert log.failure is not None and log.failure.ok is False


def test_log_untrusted_once_logs_the_first_drop_only() -> None:
    from mipcheck.builtin import ha_config, mobile_nodes

    ha = HomeAgent(ha_config(mobile_nodes(1)), ("log-untrusted-once",))
    rrq = bytes((1, 0x20, 0, 30)) + bytes(20)
    first = ha.handle(rrq, ("127.0.0.66", 5000), ("127.0.0.1", 434), 1.0)
    again = ha.handle(rrq, ("127.0.0.66", 5001), ("127.0.0.1", 434), 2.0)
    other = ha.handle(rrq, ("127.0.0.99", 5000), ("127.0.0.1", 434), 3.0)
    assert [d.outcome for d in (first, again, other)] == ["dropped"] * 3
    assert [d.log for d in (first, again, other)] == [True, False, True]


@pytest.mark.parametrize("name", sorted(PASSING_FAULTS))
def test_passing_faults_are_not_faults_of_any_case(name: str) -> None:
    assert name not in FAULTS and name not in FAULT_CASES
    assert PASSING_FAULTS[name].split(":", 1)[0] in CASES_BY_ID
