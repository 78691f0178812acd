"""Verdicts and how checks grade into one.

A case judges what it saw as a list of :class:`Check` (expected versus
observed, with the frames judged); :func:`grade` turns those checks and the
case's requirement level into exactly one :class:`Verdict`. Grading is a pure
function so it can be tested table-driven. ``error`` is never the device's
fault: it means the tester could not do its job.

A failed case names who broke which rule as a
:class:`~mipcheck.outcomes.Violation` (:attr:`CaseResult.violation`): the
device under test and a catalogue requirement of the case for ``fail`` and
``warn``, the tester (no RFC rule) for ``error``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from mipcheck.outcomes import Party, Violation

LEVELS = ("MUST", "SHOULD", "MAY")


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"  # a MUST not met
    WARN = "warn"  # a SHOULD not met
    INCONCLUSIVE = "inconclusive"  # the device's behaviour could not be judged
    NOT_APPLICABLE = "not-applicable"  # excluded by the profile's [applicability]
    ERROR = "error"  # the tester failed (bind failure, bad profile, crash)


# Worst first: the order reports sort and summarise by.
VERDICT_ORDER = (
    Verdict.ERROR,
    Verdict.FAIL,
    Verdict.WARN,
    Verdict.INCONCLUSIVE,
    Verdict.NOT_APPLICABLE,
    Verdict.PASS,
)


@dataclass(frozen=True)
class Check:
    """One judged property: what the RFC expects, what the device did, where."""

    what: str
    expected: str
    observed: str
    ok: bool | None  # None: could not be judged (e.g. the tester has no way to see it)
    frames: tuple[int, ...] = ()
    level: str | None = None  # overrides the case's level for this check (e.g. a MUST inside a SHOULD case)
    rule_id: str | None = None  # the catalogue requirement judged; None: the case's requirement at this level
    party: Party = Party.DEVICE  # who is at fault when the check is not met

    def as_dict(self) -> dict[str, object]:
        return {
            "what": self.what,
            "expected": self.expected,
            "observed": self.observed,
            "ok": self.ok,
            "frames": list(self.frames),
            "level": self.level,
            "rule_id": self.rule_id,
            "party": str(self.party),
        }


class CaseOutcome(Exception):
    """Raised by a case to end with a verdict that no check expresses."""

    verdict: Verdict = Verdict.INCONCLUSIVE

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Inconclusive(CaseOutcome):
    verdict = Verdict.INCONCLUSIVE


class NotApplicable(CaseOutcome):
    verdict = Verdict.NOT_APPLICABLE


class TesterError(CaseOutcome):
    """The tester failed: cannot bind, cannot run a profile command, ..."""

    __test__ = False  # not a pytest class, despite the name
    verdict = Verdict.ERROR


def failed_verdict(level: str) -> Verdict:
    """What a check that is not met means at a requirement level."""
    if level == "MUST":
        return Verdict.FAIL
    if level == "SHOULD":
        return Verdict.WARN
    return Verdict.PASS  # MAY: leaving an optional behaviour out is conformant


@dataclass(frozen=True)
class Grade:
    verdict: Verdict
    reason: str
    failure: Check | None = None  # the first check that decided the verdict


def describe(check: Check) -> str:
    return f"{check.what}: expected {check.expected}, observed {check.observed}"


def grade(level: str, checks: list[Check] | tuple[Check, ...]) -> Grade:
    """One verdict from a case's checks: the worst failing check wins, first of its kind reported."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}")
    if not checks:
        return Grade(Verdict.INCONCLUSIVE, "the case judged nothing")
    worst: tuple[int, Check] | None = None
    for check in checks:
        if check.ok is False:
            v = failed_verdict(check.level or level)
            if v is Verdict.PASS:
                continue
            rank = VERDICT_ORDER.index(v)
            if worst is None or rank < worst[0]:
                worst = (rank, check)
    if worst is not None:
        check = worst[1]
        return Grade(VERDICT_ORDER[worst[0]], describe(check), check)
    for check in checks:
        if check.ok is None:
            return Grade(Verdict.INCONCLUSIVE, describe(check), check)
    optional = [c for c in checks if c.ok is False]
    if optional:
        return Grade(Verdict.PASS, f"optional behaviour absent: {describe(optional[0])}", optional[0])
    return Grade(
        Verdict.PASS, checks[-1].what + ": as expected" if len(checks) == 1 else f"all {len(checks)} checks met"
    )


@dataclass
class CaseResult:
    """Everything a report needs about one case."""

    id: str
    title: str
    level: str
    requirement: str  # "RFC 5265 4.3" style, for humans
    requirements: list[dict[str, object]]  # catalogue entries (id, rfc, section, keyword, text)
    verdict: Verdict
    reason: str
    failure: Check | None = None
    checks: list[Check] = field(default_factory=list)
    evidence: dict[str, object] = field(default_factory=dict)
    duration: float = 0.0
    faults: list[str] = field(default_factory=list)  # built-in HA faults that make this case fail

    @property
    def violation(self) -> Violation | None:
        """Who broke which rule: derived from the verdict, so it can never disagree with it."""
        return blame(self)

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "requirement": self.requirement,
            "requirements": self.requirements,
            "level": self.level,
            "verdict": str(self.verdict),
            "reason": self.reason,
            "expected": self.failure.expected if self.failure else None,
            "observed": self.failure.observed if self.failure else None,
            "failure": self.failure.as_dict() if self.failure else None,
            "checks": [c.as_dict() for c in self.checks],
            "evidence": self.evidence,
            "duration": round(self.duration, 4),
            "faults": self.faults,
            "violation": violation.as_dict() if (violation := self.violation) else None,
        }


def blame(result: CaseResult) -> Violation | None:
    """The violation a case result reports: ``fail``/``warn`` the device's, ``error`` the tester's.

    The rule is the failing check's ``rule_id`` when it names one, else the
    first of the case's catalogue requirements at the level the check failed
    at (else its first requirement). Other verdicts blame nobody.
    """
    if result.verdict is Verdict.ERROR:
        return Violation(None, Party.TESTER, result.id, result.reason)
    if result.verdict not in (Verdict.FAIL, Verdict.WARN):
        return None
    failure = result.failure
    rule_id = failure.rule_id if failure else None
    if rule_id is None:
        level = (failure.level if failure else None) or result.level
        ids = [str(r["id"]) for r in result.requirements if r.get("level") == level]
        ids += [str(r["id"]) for r in result.requirements]
        rule_id = ids[0] if ids else None
    return Violation(rule_id, failure.party if failure else Party.DEVICE, result.id, result.reason)


def summarise(results: list[CaseResult]) -> dict[str, int]:
    """Counts per verdict, every verdict present so reports have a fixed shape."""
    counts = {str(v): 0 for v in VERDICT_ORDER}
    for r in results:
        counts[str(r.verdict)] += 1
    return counts


def exit_code(results: list[CaseResult]) -> int:
    """2 when the tester failed somewhere (an error verdict), else 1 when any case failed, else 0."""
    if any(r.verdict is Verdict.ERROR for r in results):
        return 2
    if any(r.verdict is Verdict.FAIL for r in results):
        return 1
    return 0
