"""Grading checks into verdicts, and the exit code: pure functions, table-driven."""

from __future__ import annotations

import pytest

from mipcheck.engine.verdicts import CaseResult, Check, Grade, Verdict, exit_code, grade, summarise

OK = Check("a", "x", "x", True, (1,))
BAD = Check("b", "x", "y", False, (2,))
BAD2 = Check("c", "x", "z", False, (3,))
UNKNOWN = Check("d", "x", "cannot tell", None)
BAD_MUST = Check("e", "x", "w", False, (4,), level="MUST")


@pytest.mark.parametrize(
    ("level", "checks", "verdict", "failure"),
    [
        ("MUST", [OK], Verdict.PASS, None),
        ("MUST", [OK, BAD], Verdict.FAIL, BAD),
        ("MUST", [BAD, BAD2], Verdict.FAIL, BAD),  # the first failing check is reported
        ("SHOULD", [OK, BAD], Verdict.WARN, BAD),
        ("MAY", [BAD], Verdict.PASS, BAD),  # leaving out a MAY is conformant
        ("MUST", [OK, UNKNOWN], Verdict.INCONCLUSIVE, UNKNOWN),
        ("MUST", [UNKNOWN, BAD], Verdict.FAIL, BAD),  # a failure outranks what could not be judged
        ("SHOULD", [BAD, BAD_MUST], Verdict.FAIL, BAD_MUST),  # a MUST check inside a SHOULD case
        ("MUST", [], Verdict.INCONCLUSIVE, None),
    ],
)
def test_grade(level: str, checks: list[Check], verdict: Verdict, failure: Check | None) -> None:
    g = grade(level, checks)
    assert g.verdict is verdict
    assert g.failure == failure
    if failure is not None and verdict in (Verdict.FAIL, Verdict.WARN):
        assert failure.expected in g.reason and failure.observed in g.reason


def test_grade_rejects_unknown_level() -> None:
    with pytest.raises(ValueError):
        grade("SHALL", [OK])


def _result(verdict: Verdict, level: str = "MUST") -> CaseResult:
    return CaseResult("X", "t", level, "RFC 1 1", [], verdict, "r")


@pytest.mark.parametrize(
    ("verdicts", "code"),
    [
        ([Verdict.PASS, Verdict.WARN, Verdict.INCONCLUSIVE, Verdict.NOT_APPLICABLE], 0),
        ([Verdict.PASS, Verdict.FAIL], 1),
        ([Verdict.PASS, Verdict.ERROR], 2),
        ([Verdict.FAIL, Verdict.ERROR], 2),  # the run itself is unreliable: the tester's fault wins
        ([], 0),
    ],
)
def test_exit_code(verdicts: list[Verdict], code: int) -> None:
    assert exit_code([_result(v) for v in verdicts]) == code


def test_summary_has_every_verdict() -> None:
    s = summarise([_result(Verdict.PASS), _result(Verdict.PASS), _result(Verdict.FAIL)])
    assert s == {"error": 0, "fail": 1, "warn": 0, "inconclusive": 0, "not-applicable": 0, "pass": 2}


def test_result_dict_carries_expected_and_observed() -> None:
    r = CaseResult(
        "X", "t", "MUST", "RFC 5265 4.3", [], Verdict.FAIL, "b: expected x, observed y", failure=BAD, checks=[OK, BAD]
    )
    d = r.as_dict()
    assert d["verdict"] == "fail" and d["expected"] == "x" and d["observed"] == "y"
    assert d["failure"]["frames"] == [2]
    assert isinstance(grade("MUST", [OK]), Grade)
