"""Runs a suite's cases against a device: selection, concurrency, grading, evidence.

Cases that wait for silence dominate a run, so cases run concurrently in
threads; what keeps them apart is the device's per-home-address state, so
each case leases its own mobile node(s) from the profile's pool (see
``pool.py``). Cases that reconfigure the device itself are ``exclusive`` and
run alone after the others. Any exception from a case becomes an ``error``
verdict (the tester's fault), never a crash of the run.
"""

from __future__ import annotations

import fnmatch
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mipcheck import __version__
from mipcheck.clock import Clock
from mipcheck.errors import ConfigError

from .control import DeviceControl
from .evidence import Capture, write_pcap
from .pool import IdentificationClock, MobileNodePool
from .profile import MobileNode, Profile
from .transport import UDP, Endpoint
from .verdicts import LEVELS, CaseOutcome, CaseResult, Check, Verdict, grade, summarise


@dataclass(frozen=True)
class Case:
    """One conformance case of a suite (public id, level, how to run it)."""

    id: str
    title: str
    level: str  # MUST | SHOULD | MAY: how a failed check grades
    requirement: str  # human reference, e.g. "RFC 5265 4.3"
    run: Callable[[CaseContext], Iterable[Check]]
    mobile_nodes: int = 1
    applicable: Callable[[Profile, DeviceControl], str | None] = lambda _p, _c: None
    exclusive: Callable[[Profile, DeviceControl], bool] = lambda _p, _c: False
    faults: tuple[str, ...] = ()  # built-in HA faults each of which must make this case fail (or warn)


@dataclass
class CaseContext:
    """What a running case may use; everything it opens is closed when it ends."""

    case: Case
    profile: Profile
    control: DeviceControl
    capture: Capture
    mobile_nodes: list[MobileNode]
    evidence_dir: Path | None = None
    notes: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    transport: Any = UDP  # UDPTransport or SimTransport: where endpoints live and what time it is
    _endpoints: list[Endpoint] = field(default_factory=list)

    @property
    def mn(self) -> MobileNode:
        return self.mobile_nodes[0]

    @property
    def target(self) -> tuple[str, int]:
        return self.profile.target

    def endpoint(self, address: str, port: int = 0) -> Endpoint:
        ep = self.transport.endpoint(self.capture, address, port)
        self._endpoints.append(ep)
        return ep

    def clock(self, mn: MobileNode | None = None, target: tuple[str, int] | None = None) -> IdentificationClock:
        """The Identification clock of a home address at a device (RFC 5944 5.7.1)."""
        return self.transport.identification_clock(target or self.target, (mn or self.mn).home_address)

    @property
    def time(self) -> Clock:
        """The clock of the network the case runs on (virtual over the simulated network)."""
        return self.transport.clock

    def note(self, text: str) -> None:
        self.notes.append(text)

    def attach(self, name: str, text: str) -> None:
        """Keep a text file (e.g. a log excerpt) as evidence next to the pcap."""
        if self.evidence_dir is None:
            self.notes.append(f"{name}: {text[:2000]}")
            return
        rel = Path("evidence") / f"{self.case.id}.{name}"
        path = self.evidence_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.files[name] = rel.as_posix()

    def close(self) -> None:
        for ep in self._endpoints:
            ep.close()
        self._endpoints.clear()


@dataclass(frozen=True)
class Preflight:
    """One conforming exchange before the suite: does the device answer at all, and how.

    ``silent``: nothing came back, so every case would only measure the
    tester's own mistake (wrong target, port, keys, trusted sources): each
    case ends ``error`` and the run exits 2. ``denied``/``unusable``: the
    device answers, but not with an acceptance a mobile node can use; the
    cases run and end inconclusive where their controls fail, and the
    reason is said once here.
    """

    status: str  # accepted | denied | unusable | misdirected | silent
    detail: str  # one line: what arrived and what to check
    frames: tuple[Any, ...] = ()  # the evidence datagrams

    @property
    def answered(self) -> bool:
        return self.status != "silent"

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "detail": self.detail, "datagrams": [d.summary() for d in self.frames]}


class Progress(Protocol):
    def started(self, case: Case) -> None: ...

    def finished(self, result: CaseResult) -> None: ...


@dataclass
class RunResult:
    suite: str
    target: dict[str, Any]
    profile: dict[str, Any]
    results: list[CaseResult]
    started: float
    duration: float
    tool: dict[str, str] = field(default_factory=lambda: {"name": "mipcheck", "version": __version__})
    evidence_dir: str | None = None
    preflight: Preflight | None = None

    @property
    def summary(self) -> dict[str, int]:
        return summarise(self.results)


def select_cases(cases: Sequence[Case], patterns: Iterable[str] = (), levels: Iterable[str] = ()) -> list[Case]:
    """Cases by id or glob (``HA-TNC-*``) and by level; a pattern that matches nothing is a usage error."""
    chosen = list(cases)
    pats = [p.strip().upper() for raw in patterns for p in raw.split(",") if p.strip()]
    if pats:
        keep: set[str] = set()
        for pat in pats:
            hit = {c.id for c in cases if fnmatch.fnmatchcase(c.id, pat)}
            if not hit:
                raise ConfigError("--case", f"{pat!r} matches no case (see mipcheck run --list)")
            keep |= hit
        chosen = [c for c in chosen if c.id in keep]
    lvls = [lv.strip().upper() for lv in levels if lv.strip()]
    for lv in lvls:
        if lv not in LEVELS:
            raise ConfigError("--level", f"{lv!r} is not one of {', '.join(LEVELS)}")
    if lvls:
        chosen = [c for c in chosen if c.level in lvls]
    return chosen


def _requirements(case_id: str) -> list[dict[str, object]]:
    from mipcheck.catalogue import by_case

    return [
        {
            "id": r.id,
            "rfc": r.rfc,
            "section": r.section,
            "keyword": r.keyword,
            "level": r.level,
            # A base-RFC sentence that could not be checked against the RFC text says so where it is shown.
            "text": f"(paraphrase, not a quote of RFC {r.rfc}) {r.text}" if r.paraphrase else r.text,
            "quoted": not r.paraphrase,
        }
        for r in by_case(case_id)
    ]


def case_requirements(case_id: str) -> list[dict[str, object]]:
    """The catalogue entries a case tests, as reports show them (for any suite's runner)."""
    return _requirements(case_id)


def _result(case: Case, verdict: Verdict, reason: str, **kw: Any) -> CaseResult:
    return CaseResult(
        id=case.id,
        title=case.title,
        level=case.level,
        requirement=case.requirement,
        requirements=_requirements(case.id),
        verdict=verdict,
        reason=reason,
        faults=list(case.faults),
        **kw,
    )


def case_evidence(
    case_id: str,
    frames: list[Any],
    checks: Iterable[Check],
    evidence_dir: Path | None,
    notes: list[str],
    files: dict[str, str],
) -> tuple[dict[str, object], str | None]:
    """A finished case's evidence record, its pcap written under ``evidence_dir`` (every suite's runner uses it).

    The second item is None, or why the pcap could not be written (the case then ends ``error``: the tester's fault).
    """
    evidence: dict[str, object] = {
        "frames": len(frames),
        "judged": sorted({f for c in checks for f in c.frames}),
        "datagrams": [d.summary() for d in frames],
    }
    problem = None
    if evidence_dir is not None:
        rel = Path("pcaps") / f"{case_id}.pcap"
        try:
            write_pcap(evidence_dir / rel, frames)
            evidence["pcap"] = rel.as_posix()
        except OSError as exc:
            problem = f"cannot write evidence {evidence_dir / rel}: {exc.strerror or exc}"
    if notes:
        evidence["notes"] = notes
    if files:
        evidence["files"] = files
    return evidence, problem


def run_case(
    case: Case,
    profile: Profile,
    control: DeviceControl,
    mobile_nodes: list[MobileNode],
    evidence_dir: Path | None,
    transport: Any = UDP,
) -> CaseResult:
    """Run one case with the mobile nodes it was given; always returns a result."""
    ctx = CaseContext(case, profile, control, Capture(transport.clock), mobile_nodes, evidence_dir, transport=transport)
    t0 = time.monotonic()
    checks: list[Check] = []
    failure = None
    try:
        checks = list(case.run(ctx))
        g = grade(case.level, checks)
        verdict, reason, failure = g.verdict, g.reason, g.failure
    except CaseOutcome as out:
        verdict, reason = out.verdict, out.reason
    except Exception as exc:  # a bug or environment problem of the tester, never the device's fault
        verdict, reason = Verdict.ERROR, f"tester fault: {type(exc).__name__}: {exc}"
        ctx.attach("error.txt", traceback.format_exc())
    finally:
        ctx.close()
    evidence, problem = case_evidence(case.id, ctx.capture.frames, checks, evidence_dir, ctx.notes, ctx.files)
    if problem is not None:
        verdict, reason = Verdict.ERROR, problem
    return _result(
        case, verdict, reason, failure=failure, checks=checks, evidence=evidence, duration=time.monotonic() - t0
    )


def run_suite(
    suite: str,
    cases: Sequence[Case],
    profile: Profile,
    control: DeviceControl | None = None,
    *,
    evidence_dir: str | Path | None = None,
    progress: Progress | None = None,
    jobs: int | None = None,
    preflight: Callable[..., Preflight] | None = None,
    transport: Any = UDP,
) -> RunResult:
    """Run ``cases`` against the device of ``profile``; results in the order of ``cases``.

    ``preflight`` (the suite's one conforming exchange) runs first when given;
    a device that does not answer it at all makes every case an ``error``.
    ``transport`` is real UDP (cases concurrently) or a simulated network
    (``SimTransport``: cases one after another in virtual time).
    """
    control = control or DeviceControl()
    out = Path(evidence_dir) if evidence_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    started, t0 = time.time(), time.monotonic()
    pool = MobileNodePool(profile.mobile_nodes, profile.target)
    results: dict[str, CaseResult] = {}

    def finish(result: CaseResult) -> None:
        results[result.id] = result
        if progress is not None:
            progress.finished(result)

    runnable: list[Case] = []
    exclusive: list[Case] = []
    for case in cases:
        why = case.applicable(profile, control)
        if why:
            finish(_result(case, Verdict.NOT_APPLICABLE, why, evidence={"frames": 0, "judged": [], "datagrams": []}))
        elif case.mobile_nodes > pool.size:
            finish(
                _result(
                    case,
                    Verdict.ERROR,
                    f"needs {case.mobile_nodes} mobile nodes; the profile has {pool.size} (add home_addresses)",
                )
            )
        elif case.exclusive(profile, control):
            exclusive.append(case)
        else:
            runnable.append(case)

    checked: Preflight | None = None
    if preflight is not None and runnable + exclusive:
        with pool.lease(1) as nodes:
            checked = preflight(profile, control, nodes[0], transport)
        if out is not None and checked.frames:
            write_pcap(out / "pcaps" / "PREFLIGHT.pcap", list(checked.frames))
        if not checked.answered:
            for case in runnable + exclusive:
                finish(
                    _result(
                        case,
                        Verdict.ERROR,
                        "not run: the device did not answer the pre-flight registration (see pre-flight)",
                        evidence={"frames": 0, "judged": [], "datagrams": []},
                    )
                )
            runnable, exclusive = [], []

    def work(case: Case) -> CaseResult:
        with pool.lease(case.mobile_nodes) as nodes:
            if progress is not None:
                progress.started(case)
            return run_case(case, profile, control, nodes, out, transport)

    workers = max(1, min(jobs or profile.jobs, len(runnable) or 1)) if transport.concurrent else 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mipcheck-case") as ex:
        for future in as_completed([ex.submit(work, case) for case in runnable]):
            finish(future.result())
    for case in exclusive:
        finish(work(case))

    return RunResult(
        suite=suite,
        target={
            "address": profile.dut_address,
            "port": profile.dut_port,
            "role": profile.role,
            "builtin": profile.builtin,
        },
        profile=profile.public(),
        results=[results[c.id] for c in cases],
        started=started,
        duration=time.monotonic() - t0,
        evidence_dir=str(out) if out is not None else None,
        preflight=checked,
    )
