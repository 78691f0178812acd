"""Runs the site audit's cases one after another and turns their checks into the engine's results.

The cases share the home agents' replay state (one Identification clock per
home address for the whole run) and watch for silence, so they run in
sequence, not in threads. Verdicts, evidence and reports are the engine's
(:mod:`mipcheck.engine.verdicts`, ``report_*``): a case yields
:class:`~mipcheck.engine.verdicts.Check` values, graded by its level; any
exception becomes an ``error`` verdict (the tester's fault), never a crash.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mipcheck.engine.evidence import Capture
from mipcheck.engine.runner import Progress, RunResult, case_evidence, case_requirements
from mipcheck.engine.verdicts import CaseOutcome, CaseResult, Check, Inconclusive, TesterError, Verdict, grade

from .probes import IdentificationClock, vantage_problem
from .profile import Identity, SiteProfile, Vantage

SUITE = "site"


@dataclass(frozen=True)
class SiteCase:
    id: str
    title: str
    level: str  # MUST | SHOULD | MAY
    requirement: str  # "RFC 5265 3.1" style, for people
    run: Callable[[SiteContext], list[Check]]
    roles: tuple[str, ...]  # vantage roles it probes from (for --list and docs)
    breaks: tuple[str, ...] = ()  # lab breaks (mipcheck.lab.breaks) that must make it fail or warn


@dataclass
class SiteContext:
    case: SiteCase
    profile: SiteProfile
    clock: IdentificationClock
    capture: Capture = field(default_factory=Capture)
    evidence_dir: Path | None = None
    notes: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    raw: dict[str, list[tuple[float, bytes]]] = field(default_factory=dict)  # name -> raw IPv4 packets seen

    def note(self, text: str) -> None:
        self.notes.append(text)

    def vantages(self, role: str, *, needed: str) -> tuple[Vantage, ...]:
        """The usable vantage points of ``role``: none in the profile is inconclusive, unusable ones an error."""
        found = self.profile.vantages_of(role)
        if not found:
            raise Inconclusive(f"the profile names no vantage point with role {role!r}: {needed}")
        problems = [p for v in found if (p := vantage_problem(v))]
        if problems:
            raise TesterError("; ".join(problems))
        return found

    def vantage(self, role: str, *, needed: str) -> Vantage:
        return self.vantages(role, needed=needed)[0]

    def observer(self, *, needed: str) -> Vantage | None:
        """The i-HA vantage point (raw sockets where the i-HA is), or None with the reason noted."""
        try:
            return self.vantage("i-ha", needed=needed)
        except Inconclusive:
            return None

    def identity(self, kind: str, *, needed: str) -> Identity:
        found = self.profile.identity(kind)
        if found is None:
            raise Inconclusive(
                f"the profile has no [[mobile_node]] with home_agent = {kind!r}: {needed} needs a valid request"
            )
        return found

    def keep_raw(self, name: str, packets: list[tuple[float, bytes]]) -> None:
        if packets:
            self.raw.setdefault(name, []).extend(packets)


def _result(case: SiteCase, verdict: Verdict, reason: str, **kw: Any) -> CaseResult:
    return CaseResult(
        id=case.id,
        title=case.title,
        level=case.level,
        requirement=case.requirement,
        requirements=case_requirements(case.id),
        verdict=verdict,
        reason=reason,
        faults=list(case.breaks),  # reports' "faults": what makes the case fail (here: lab breaks)
        **kw,
    )


def _write_raw(path: Path, packets: list[tuple[float, bytes]]) -> None:
    from scapy.layers.inet import IP
    from scapy.utils import wrpcap

    pkts = []
    for when, data in packets:
        pkt = IP(data)
        pkt.time = when
        pkts.append(pkt)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrpcap(str(path), pkts, linktype=228)  # LINKTYPE_IPV4


def run_case(case: SiteCase, profile: SiteProfile, clock: IdentificationClock, evidence_dir: Path | None) -> CaseResult:
    ctx = SiteContext(case, profile, clock, evidence_dir=evidence_dir)
    t0 = time.monotonic()
    checks: list[Check] = []
    failure = None
    try:
        checks = list(case.run(ctx))
        g = grade(case.level, checks)
        verdict, reason, failure = g.verdict, g.reason, g.failure
    except CaseOutcome as out:
        verdict, reason = out.verdict, out.reason
    except Exception as exc:  # a bug or environment problem of the tester, never the site's fault
        verdict, reason = Verdict.ERROR, f"tester fault: {type(exc).__name__}: {exc}"
        ctx.note(traceback.format_exc(limit=6))
    problem = None
    if evidence_dir is not None:
        try:  # what the vantages' raw sockets saw, next to the case's pcap
            for name, packets in sorted(ctx.raw.items()):
                rel_raw = Path("pcaps") / f"{case.id}.{name}.pcap"
                _write_raw(evidence_dir / rel_raw, packets)
                ctx.files[f"{name} (raw IPv4)"] = rel_raw.as_posix()
        except OSError as exc:
            problem = f"cannot write evidence under {evidence_dir}: {exc.strerror or exc}"
    else:
        for name, packets in ctx.raw.items():
            ctx.note(f"{name}: {len(packets)} raw packets seen")
    evidence, pcap_problem = case_evidence(case.id, ctx.capture.frames, checks, evidence_dir, ctx.notes, ctx.files)
    problem = pcap_problem or problem
    if problem is not None:
        verdict, reason = Verdict.ERROR, problem
    return _result(
        case, verdict, reason, failure=failure, checks=checks, evidence=evidence, duration=time.monotonic() - t0
    )


def run_site_suite(
    cases: Sequence[SiteCase],
    profile: SiteProfile,
    *,
    evidence_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Run ``cases`` against the site of ``profile``, in order; results in the order of ``cases``."""
    out = Path(evidence_dir) if evidence_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    started, t0 = time.time(), time.monotonic()
    clock = IdentificationClock()
    results: list[CaseResult] = []
    for case in cases:
        if progress is not None:
            progress.started(case)  # type: ignore[arg-type]  # duck-typed: progress reads .id
        result = run_case(case, profile, clock, out)
        results.append(result)
        if progress is not None:
            progress.finished(result)
    iha = profile.internal_home_agents[0]
    return RunResult(
        suite=SUITE,
        target={
            "address": iha,
            "port": 434,
            "role": "site",
            "builtin": False,
            "site": profile.name,
            "internal_home_agents": list(profile.internal_home_agents),
            "external_home_agents": list(profile.external_home_agents),
            "vpn_gateways": list(profile.vpn_gateways),
        },
        profile=profile.public(),
        results=results,
        started=started,
        duration=time.monotonic() - t0,
        evidence_dir=str(out) if out is not None else None,
    )
