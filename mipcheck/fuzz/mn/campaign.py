"""An MN fuzz campaign: the index plan, the cases one at a time, health checks, triage, the same database and reports.

Same plan, database and reports as the home-agent campaign
(:mod:`mipcheck.fuzz.campaign`, :mod:`mipcheck.fuzz.store`): shard k/N owns
indexes k-1, k-1+N, ...; ``--jobs`` workers each fuzz their own built-in
reference mobile node; a case's row is committed with its reaction, so a
killed campaign resumes without loss or repeat. A mobile node is one device
moved before every case, so the cases run one after the other
(:func:`~mipcheck.fuzz.mn.wire.run_case`), not pipelined.

Health checks (:mod:`.health`) run every ``health_every`` cases, after any
unusual reaction (:data:`~mipcheck.fuzz.mn.wire.UNUSUAL`) and as soon as a
watched device's process is gone. A failed one is a finding: the cases since
the last passed check are replayed one by one against the (restarted)
device, each followed by a check, the first that fails it is minimised
(:func:`~mipcheck.fuzz.triage.minimise`) and recorded with its pcap.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mipcheck.errors import MipcheckError
from mipcheck.mn.profile import load_mobile_node_profile

from .. import store
from ..campaign import Stats, StopCampaign, failure_kind, record_finding
from ..health import HealthResult
from ..target import CommandTarget, RemoteTarget, Target
from ..triage import MAX_PROBES, TargetLost, find_culprit, minimise
from .cases import MnCase
from .context import MnContext, mn_context
from .health import MnHealthChecker
from .strategies import generate
from .target import CommandMover, Mover, ReferenceMnTarget
from .wire import Exchange, Wire, classify, run_case, unusual

DEFAULT_WINDOW = 0.02  # seconds the device's reaction to a case is listened to


@dataclass(frozen=True)
class MnTargetSpec:
    """How a worker reaches (and maybe runs) the mobile node; picklable for worker processes."""

    kind: str  # lab | command | remote
    profile_path: str | None = None
    command: str | None = None
    restart_wait: float = 0.0
    faults: tuple[str, ...] = ()  # lab: the reference mobile node's faults (`mipcheck fuzz run --device mn --fault`)

    def build(self, log) -> tuple[Target, Mover, MnContext]:
        if self.kind == "lab":
            target = ReferenceMnTarget(log, self.faults)
            return target, target.mover(), mn_context(target.profile)
        assert self.profile_path is not None
        profile = load_mobile_node_profile(self.profile_path)
        ctx = mn_context(profile)
        mover = CommandMover(profile, ctx.interface)
        if self.kind == "command":
            assert self.command is not None
            return CommandTarget(self.command, ctx.care_of_address, profile.port, log), mover, ctx
        return RemoteTarget(ctx.care_of_address, profile.port, self.restart_wait), mover, ctx


@dataclass(frozen=True)
class MnWorkerSpec:
    seed: int
    shard: tuple[int, int]
    worker: int
    workers: int
    limit: int | None
    deadline: float | None  # wall-clock time.time() to stop at
    target: MnTargetSpec
    out: str
    gaps: tuple[int, ...] = ()
    first_new: int = 0
    health_every: int = 100
    window: float = DEFAULT_WINDOW
    strategies: tuple[str, ...] = ()


class MnProber:
    """Sends one case on its own (the whole exchange) and asks a health check whether the device survived it."""

    def __init__(
        self, ctx: MnContext, target: Target, wire: Wire, mover: Mover, health: MnHealthChecker, window: float
    ) -> None:
        self.ctx, self.target, self.wire, self.mover, self.health = ctx, target, wire, mover, health
        self.window = window
        self.last_sent: list[bytes] = []
        self.minimised_sent: list[bytes] = []
        self.last_exchange: Exchange | None = None
        self.probes = 0
        self.failed = False  # the device failed its last check: restart it before the next probe

    def recover(self) -> None:
        if not self.failed and not self.target.exited() and self.health.check().ok:
            return
        self.failed = False
        if not self.target.restart(lambda: self.health.check(min(self.ctx.health_timeout, 0.5), counted=False).ok):
            raise TargetLost("the mobile node stopped answering and cannot be restarted")

    def fails_case(self, case: MnCase) -> HealthResult | None:
        self.recover()
        self.probes += 1
        ex = run_case(self.ctx, self.wire, self.mover, case, self.window, self.ctx.health_timeout)
        self.last_exchange = ex
        self.last_sent = list(ex.sent)
        if ex.main is None:  # the device was not ready for the case: not this case's doing
            self.failed = True
            return None
        if self.target.watched:
            time.sleep(self.window)  # a crash takes a moment to become an exit status
        result = self.health.check()
        self.failed = not result.ok
        return None if result.ok else explained(self.target, result)


def explained(target: Target, result: HealthResult) -> HealthResult:
    """A failed check of a watched device whose process is gone says so first (with its exit status)."""
    proc = getattr(target, "proc", None)
    if result.ok or not target.watched or not target.exited() or proc is None:
        return result
    return HealthResult(result.status, f"the process exited with status {proc.returncode}; {result.detail}")


class MnWorker:
    def __init__(self, spec: MnWorkerSpec, report: Callable[[Stats], None] | None = None, shared: Any = None) -> None:
        self.spec = spec
        self.report = report or (lambda s: None)
        self.stats = Stats()
        self.out = Path(spec.out)
        self.started = time.monotonic()

    def run(self) -> Stats:
        spec = self.spec
        log = open(self.out / f"target-{spec.worker}.log", "ab")  # noqa: SIM115 - closed below
        wire: Wire | None = None
        try:
            self.target, self.mover, self.ctx = spec.target.build(log)
            wire = self.wire = Wire(self.ctx)
            self.health = MnHealthChecker(self.ctx, wire, self.mover)
            self.start_target()
            self.db = store.connect(self.out / store.DB_NAME)
            self.recorder = store.Recorder(self.db)
            try:
                self.loop()
            finally:
                self.recorder.commit(self.counters())
                self.db.close()
        finally:
            if hasattr(self, "target"):
                self.target.stop()
                if isinstance(self.target, ReferenceMnTarget):
                    self.target.close()
            if wire is not None:
                wire.close()
            log.close()
        self.stats.elapsed = time.monotonic() - self.started
        self.report(self.stats)
        return self.stats

    def start_target(self) -> None:
        if isinstance(self.target, RemoteTarget):
            result = self.health.check()
            if not result.ok:
                raise MipcheckError(
                    f"the mobile node fails the first health check ({result.status}: {result.detail}); check the "
                    "profile's addresses, keys and [commands].move"
                )
        else:
            self.target.start(lambda: self.health.check(min(self.ctx.health_timeout, 0.5), counted=False).ok)

    def counters(self) -> tuple[float, int, int]:
        return (time.monotonic() - self.started, self.health.passed, self.health.failed)

    def loop(self) -> None:
        spec = self.spec
        k, total = spec.shard
        suspects: list[tuple[MnCase, list[bytes]]] = []  # since the last passed check, as sent
        since_check = 0
        last_report = time.monotonic()
        for j in store.positions(list(spec.gaps), spec.first_new, spec.limit, spec.worker, spec.workers):
            if spec.deadline is not None and time.time() >= spec.deadline:
                break
            case = generate(spec.seed, (k - 1) + j * total, self.ctx, spec.strategies)
            ex = run_case(self.ctx, self.wire, self.mover, case, spec.window, self.ctx.health_timeout)
            reaction = classify(ex, case)
            self.finish(case, ex, reaction)
            if ex.main is not None:  # a case that was not sent cannot be the culprit
                suspects.append((case, ex.sent))
            since_check += 1
            failure: HealthResult | None = None
            if self.target.watched and self.target.exited():
                failure = explained(self.target, HealthResult("no-reply", "right after this case"))
            elif since_check >= spec.health_every or unusual(reaction):
                failure = self.check(suspects)
                since_check = 0
            if failure is not None:
                self.on_failure(failure, suspects)
                suspects.clear()
                since_check = 0
            now = time.monotonic()
            if now - last_report > 0.25:
                self.stats.elapsed = now - self.started
                self.report(self.stats)
                last_report = now
        if suspects:
            failure = self.check(suspects)
            if failure is not None:
                self.on_failure(failure, suspects)

    def check(self, suspects: list[tuple[MnCase, list[bytes]]]) -> HealthResult | None:
        """A health check now; on success the suspects are cleared, on failure its result."""
        result = self.health.check()
        if result.ok:
            self.stats.health_passed += 1
            suspects.clear()
            return None
        return explained(self.target, result)

    def finish(self, case: MnCase, ex: Exchange, reaction: str) -> None:
        self.stats.cases += 1
        self.stats.reactions[reaction] += 1
        sent_ident = ex.main[12:20].hex() if ex.main is not None and case.restamped and len(ex.main) >= 20 else None
        self.recorder.add(
            (case.seed, case.index, case.strategy, case.kind, reaction, int(case.signed), sent_ident),
            self.counters(),
        )

    def on_failure(self, result: HealthResult, suspects: list[tuple[MnCase, list[bytes]]]) -> None:
        self.recorder.commit(self.counters())
        self.stats.health_failed += 1
        kind = failure_kind(self.target, result)
        self.stats.note = f"{kind}: looking for the culprit among {len(suspects)} cases"
        self.report(self.stats)
        prober = MnProber(self.ctx, self.target, self.wire, self.mover, self.health, max(self.spec.window, 0.01))
        prober.failed = True
        last = suspects[-1] if suspects else None
        try:
            # Newest first: a crash or hang shows right after its case; each probe starts from a healthy device.
            newest = [c for c, _sent in reversed(suspects[-MAX_PROBES:])]
            found = find_culprit(prober, newest)  # type: ignore[arg-type]
            if found is None:
                self.stats.note = f"{kind} not reproduced by any of the last {len(suspects)} cases"
                if last is not None:
                    detail = f"{result.detail}; not reproduced by a single case of the last {len(suspects)}"
                    self.record(kind, last[0], None, detail, last[1])
                return
            culprit, again = found
            culprit_sent = list(prober.last_sent)
            kind = failure_kind(self.target, again)
            small = minimise(prober, culprit)  # type: ignore[arg-type]
            self.record(kind, culprit, small, again.detail, culprit_sent, prober.minimised_sent)  # type: ignore[arg-type]
            prober.recover()
        except TargetLost as exc:
            if last is not None:
                detail = f"{result.detail}; {exc}; culprit not isolated (last case sent)"
                self.record(kind, last[0], None, detail, last[1])
            raise StopCampaign(str(exc)) from None
        finally:
            self.stats.note = ""

    def record(
        self,
        kind: str,
        case: MnCase,
        small: MnCase | None,
        detail: str,
        sent: list[bytes],
        small_sent: list[bytes] | None = None,
    ) -> None:
        """A finding: the case's own octets (``case_hex``); in ``sent_hex`` and the pcap, what went out."""
        sent = sent or [case.payload]
        small_sent = small_sent or ([small.payload] if small is not None else [])
        party = self.ctx.party(case.party if case.stage == "reply" else "iha")
        if record_finding(
            self.recorder,
            self.out,
            kind,
            case,
            small,
            detail,
            sent,
            small_sent,
            sent[-1],
            party.place,
            (self.ctx.care_of_address, self.ctx.profile.port),
        ):
            self.stats.findings += 1
