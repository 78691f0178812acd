"""A fuzz campaign: workers, the index plan, health checks, triage and the reports in ``--out``.

Index plan: shard k/N owns the indexes k-1, k-1+N, k-1+2N, ... (position j is
index k-1+j*N); ``--max-cases`` bounds the positions; ``--jobs`` workers take
every J-th pending position (:func:`mipcheck.fuzz.store.positions`). A case's
octets depend on (seed, index) only, so the split changes nothing but speed.

A worker pipelines cases (:mod:`.sender`), keeps one health check in flight
in the background every ``health_every`` cases and at once after an unusual
reaction, and stops sending when a check is late (so that few cases are
suspects). A failed check becomes a finding through :mod:`.triage`.

``--identification fresh`` (:mod:`.fresh`): every request is stamped with a
fresh Identification right before it goes out, from one clock that the
worker's health checks and culprit search use too; workers fuzzing one
``--target`` share that clock in shared memory.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from mipcheck.errors import MipcheckError

from . import store
from .case import Case
from .context import FuzzContext, context_from_profile
from .fresh import CASE, FreshClock, Stamper, is_request
from .health import HealthChecker, HealthResult
from .pcap import write_finding_pcap
from .reaction import UNUSUAL, classify
from .sender import DEFAULT_SLOTS, DEFAULT_WINDOW, Flight, Pipeline
from .strategies import generate
from .target import CommandTarget, LabTarget, RemoteTarget, Target
from .triage import Prober, TargetLost, find_culprit, minimise

HEALTH_LATE = 0.05  # seconds: a check not answered by then pauses sending until it is (or times out)
CRASH_POLL_EVERY = 64  # cases between looks at the target process


@dataclass(frozen=True)
class TargetSpec:
    """How a worker reaches (and maybe runs) the target; picklable for worker processes."""

    kind: str  # lab | command | remote
    address: str | None = None
    port: int | None = None
    command: str | None = None
    profile_path: str | None = None
    restart_wait: float = 0.0
    faults: tuple[str, ...] = ()  # lab: the built-in i-HA's fault profiles (`mipcheck fuzz run --fault`)

    def build(self, log) -> Target:
        if self.kind == "lab":
            return LabTarget(log, self.faults)
        if self.kind == "command":
            return CommandTarget(self.command, self.address, self.port, log)
        return RemoteTarget(self.address, self.port, self.restart_wait)

    def profile(self, target: Target):
        if self.profile_path:
            from mipcheck.engine.profile import load_profile

            return load_profile(self.profile_path, target=f"{target.address}:{target.port}")
        from .lab import profile_for

        return profile_for(target.address, target.port)


@dataclass(frozen=True)
class WorkerSpec:
    seed: int
    shard: tuple[int, int]
    worker: int
    workers: int
    limit: int | None
    deadline: float | None  # wall-clock time.time() to stop at
    target: TargetSpec
    out: str
    gaps: tuple[int, ...] = ()
    first_new: int = 0
    health_every: int = 100
    window: float = DEFAULT_WINDOW
    slots: int = DEFAULT_SLOTS
    strategies: tuple[str, ...] = ()
    identification: str = CASE  # case | fresh (mipcheck.fuzz.fresh)


@dataclass
class Stats:
    cases: int = 0
    health_passed: int = 0
    health_failed: int = 0
    findings: int = 0
    reactions: Counter = field(default_factory=Counter)
    elapsed: float = 0.0
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "health_passed": self.health_passed,
            "health_failed": self.health_failed,
            "findings": self.findings,
            "reactions": dict(self.reactions),
            "elapsed": self.elapsed,
            "note": self.note,
        }


def _step_idents(case: Case, sent: list[bytes]) -> frozenset[int]:
    """Low-order 32 bits of the Identifications of a stateful case's valid steps, as sent."""
    main = len(case.before)
    return frozenset(int.from_bytes(d[20:24], "big") for k, d in enumerate(sent) if k != main and len(d) >= 24)


def _stamp_into(stamper: Stamper, case: Case, out: list[bytes]) -> list[bytes]:
    out[:] = stamper.datagrams(case)
    return out


def main_datagram(case: Case, sent: list[bytes]) -> bytes:
    """The mutated message among a case's datagrams as sent (the valid steps of a stateful case around it)."""
    return sent[len(case.before)] if len(sent) > len(case.before) else case.payload


class Worker:
    def __init__(self, spec: WorkerSpec, report: Callable[[Stats], None] | None = None, shared: Any = None) -> None:
        """``shared``: the fresh-Identification clock value shared with the other workers on this target."""
        self.spec = spec
        self.report = report or (lambda s: None)
        self.stamper = Stamper(spec.identification, FreshClock(shared))
        self.stats = Stats()
        self.out = Path(spec.out)
        self.started = time.monotonic()

    # ---------------------------------------------------------------- lifecycle
    def run(self) -> Stats:
        spec = self.spec
        log = open(self.out / f"target-{spec.worker}.log", "ab")  # noqa: SIM115 - closed below
        self.target = spec.target.build(log)
        try:
            if isinstance(self.target, LabTarget):
                self.target.launch()
            self.ctx: FuzzContext = context_from_profile(spec.target.profile(self.target))
            self.health = HealthChecker(self.ctx, (self.target.address, self.target.port), self.stamper)
            self.start_target()
            self.db = store.connect(self.out / store.DB_NAME)
            self.recorder = store.Recorder(self.db)
            self.pipeline = Pipeline(
                self.ctx.source,
                (self.target.address, self.target.port),
                spec.slots,
                spec.window,
                self.stamper.guard,
            )
            try:
                self.loop()
            finally:
                self.pipeline.close()
                self.recorder.commit(self.counters())
                self.db.close()
        finally:
            self.target.stop()
            self.health.close() if hasattr(self, "health") else None
            log.close()
        self.stats.elapsed = time.monotonic() - self.started
        self.report(self.stats)
        return self.stats

    def start_target(self) -> None:
        if isinstance(self.target, RemoteTarget):
            result = self.health.check()
            if not result.ok:
                raise MipcheckError(
                    f"the target {self.target.address}:{self.target.port} fails the first health check "
                    f"({result.status}: {result.detail}); check --target, the profile's keys and trusted sources"
                )
        else:
            self.target.start(lambda: self.health.check(min(self.ctx.reply_timeout, 0.5), counted=False).ok)

    def counters(self) -> tuple[float, int, int]:
        return (time.monotonic() - self.started, self.health.passed, self.health.failed)

    # ---------------------------------------------------------------- main loop
    def loop(self) -> None:
        spec = self.spec
        k, total = spec.shard
        suspects: list[tuple[int, Case, list[bytes]]] = []  # (sequence number, case, as sent) since the last pass
        fresh = self.stamper.fresh
        seq = 0
        marker = -1  # sequence number of the last case sent before the check in flight
        since_check = 0
        self.unusual = False
        last_report = time.monotonic()
        for j in store.positions(list(spec.gaps), spec.first_new, spec.limit, spec.worker, spec.workers):
            if spec.deadline is not None and time.time() >= spec.deadline:
                break
            case = generate(spec.seed, (k - 1) + j * total, self.ctx, spec.strategies)
            seq += 1
            if fresh:  # stamped inside the pipeline's guard, right before it goes out
                sent: list[bytes] = []
                datagrams: Any = partial(_stamp_into, self.stamper, case, sent)
            else:
                sent = datagrams = case.steps()
            suspects.append((seq, case, sent))
            for flight in self.pipeline.send(case, datagrams):
                self.finish(flight)
            since_check += 1
            failure: HealthResult | None = None
            if self.health.outstanding is None:
                if since_check >= spec.health_every or self.unusual:
                    self.health.send()
                    marker, since_check, self.unusual = seq, 0, False
            else:
                failure = self.poll_health(marker, suspects)
            if failure is None and self.target.watched and seq % CRASH_POLL_EVERY == 0 and self.target.exited():
                failure = HealthResult("no-reply", "the target process exited")
            if failure is not None:
                self.on_failure(failure, suspects)
                suspects.clear()
                since_check = 0
            now = time.monotonic()
            if now - last_report > 0.25:
                self.stats.elapsed = now - self.started
                self.report(self.stats)
                last_report = now
        for flight in self.pipeline.flush():
            self.finish(flight)
        # The last cases need a check sent after them: one still in flight vouches only for the cases before it.
        final = self.wait_health() if self.health.outstanding is not None else None
        if final is not None and final.ok:
            self.stats.health_passed += 1
            suspects[:] = [x for x in suspects if x[0] > marker]
        if final is None or (final.ok and suspects):
            final = self.health.check()
        if not final.ok:
            self.on_failure(final, suspects)

    def poll_health(self, marker: int, suspects: list[tuple[int, Case, list[bytes]]]) -> HealthResult | None:
        result = self.health.poll()
        if result is None and self.health.overdue(HEALTH_LATE):
            result = self.wait_health()
        if result is None:
            return None
        if result.ok:
            self.stats.health_passed += 1
            suspects[:] = [x for x in suspects if x[0] > marker]
            return None
        return result

    def wait_health(self) -> HealthResult:
        """Stop sending until the check in flight is answered or times out (harvesting the cases meanwhile)."""
        while True:
            result = self.health.poll()
            if result is not None:
                return result
            if self.health.overdue(self.ctx.reply_timeout) or (self.target.watched and self.target.exited()):
                return self.health.timed_out()
            self.pipeline.harvest(0.002)

    def finish(self, flight: Flight) -> None:
        case: Case = flight.token
        reaction = classify(
            flight.replies,
            flight.refused,
            signed=case.signed,
            step_idents=_step_idents(case, flight.sent) if case.before else frozenset(),
        )
        if reaction in UNUSUAL:
            self.unusual = True
        self.stats.cases += 1
        self.stats.reactions[reaction] += 1
        sent_ident = None
        if self.stamper.fresh and is_request(case.draft):
            main = main_datagram(case, flight.sent)
            sent_ident = main[16:24].hex() if len(main) >= 24 else None
        self.recorder.add(
            (case.seed, case.index, case.strategy, case.kind, reaction, int(case.signed), sent_ident),
            self.counters(),
        )

    # ---------------------------------------------------------------- findings
    def failure_kind(self, result: HealthResult) -> str:
        return failure_kind(self.target, result)

    def on_failure(self, result: HealthResult, suspects: list[tuple[int, Case, list[bytes]]]) -> None:
        """Find, minimise and record the culprit among ``suspects`` ((sequence number, case, as sent))."""
        for flight in self.pipeline.flush():
            self.finish(flight)
        self.recorder.commit(self.counters())
        self.stats.health_failed += 1
        kind = self.failure_kind(result)
        self.stats.note = f"{kind}: looking for the culprit among {len(suspects)} cases"
        self.report(self.stats)
        prober = Prober(
            self.ctx, self.target, self.health, max(self.spec.window, 0.01), failed=True, stamper=self.stamper
        )
        last = suspects[-1] if suspects else None
        try:
            found = find_culprit(prober, [c for _s, c, _sent in suspects])
            if found is None:
                self.stats.note = f"{kind} not reproduced by any of the last {len(suspects)} cases"
                if last is not None:
                    self.record(
                        kind,
                        last[1],
                        None,
                        f"{result.detail}; not reproduced by a single case of the last {len(suspects)}",
                        last[2],
                    )
                return
            culprit, again = found
            culprit_sent = list(prober.last_sent)
            kind = self.failure_kind(again)
            small = minimise(prober, culprit)
            self.record(kind, culprit, small, again.detail, culprit_sent, prober.minimised_sent)
            prober.recover()
        except TargetLost as exc:
            if last is not None:
                detail = f"{result.detail}; {exc}; culprit not isolated (last case sent)"
                self.record(kind, last[1], None, detail, last[2])
            raise StopCampaign(str(exc)) from None
        finally:
            self.stats.note = ""

    def record(
        self,
        kind: str,
        case: Case,
        small: Case | None,
        detail: str,
        sent: list[bytes] | None = None,
        small_sent: list[bytes] | None = None,
    ) -> None:
        """A finding: the case's own octets (``case_hex``) and, in ``sent_hex`` and the pcap, what went out."""
        sent = sent or case.steps()
        if small is not None and not small_sent:
            small_sent = small.steps()
        if record_finding(
            self.recorder,
            self.out,
            kind,
            case,
            small,
            detail,
            sent,
            small_sent or [],
            main_datagram(case, sent),
            (self.ctx.source, 40000),
            (self.target.address, self.target.port),
        ):
            self.stats.findings += 1


def record_finding(
    recorder: store.Recorder,
    out: Path,
    kind: str,
    case: Case,
    small: Case | None,
    detail: str,
    sent: list[bytes],
    small_sent: list[bytes],
    sent_main: bytes,
    src: tuple[str, int],
    dst: tuple[str, int],
) -> bool:
    """Write one finding (and its pcap of ``sent`` then ``small_sent``) unless it is known; True when written.

    ``sent_main``: the case's own message as it went out (``sent_hex``); ``case_hex`` is the case's own octets.
    """
    finding_id = f"{kind}-{case.seed}-{case.index}"
    if recorder.known_finding(finding_id):
        return False
    payloads = sent + (small_sent if small is not None else [])
    pcap = write_finding_pcap(out / "pcaps" / f"{finding_id}.pcap", src, dst, payloads)
    recorder.finding(
        {
            "id": finding_id,
            "kind": kind,
            "seed": case.seed,
            "index": case.index,
            "case_hex": case.payload.hex(),
            "sent_hex": sent_main.hex(),
            "minimised_hex": small.payload.hex() if small is not None else None,
            "minimised_ops": json.dumps([list(op) for op in small.draft.ops]) if small is not None else None,
            "pcap": str(pcap.relative_to(out)),
            "detail": detail,
            "found_at": time.time(),
        }
    )
    return True


def failure_kind(target: Target, result: HealthResult) -> str:
    """The finding a failed health check is: ``crash`` (the watched process exited), ``wrong-reply`` (answered,
    but not the conforming answer), ``hang`` (the watched process lives but does not answer) or ``no-reply``."""
    if target.watched and target.exited():
        return "crash"
    if result.status == "wrong-reply":
        return "wrong-reply"
    return "hang" if target.watched else "no-reply"


class StopCampaign(MipcheckError):
    """The target is gone for good; findings so far are kept (exit 1 when there are any)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=1)


# ------------------------------------------------------------------ several workers


def _worker_main(spec: WorkerSpec, queue, shared: Any = None) -> None:
    def report(stats: Stats) -> None:
        queue.put((spec.worker, "stats", stats.as_dict()))

    try:
        if isinstance(spec, WorkerSpec):
            Worker(spec, report, shared).run()
        else:  # an MN campaign's worker (mipcheck.fuzz.mn.campaign.MnWorkerSpec)
            from .mn.campaign import MnWorker

            MnWorker(spec, report).run()
        queue.put((spec.worker, "done", None))
    except MipcheckError as exc:
        queue.put((spec.worker, "error", (str(exc), exc.exit_code)))
    except BaseException as exc:  # reported as one line by the parent
        queue.put((spec.worker, "error", (f"worker {spec.worker}: {type(exc).__name__}: {exc}", 2)))


def run_workers(
    specs: list[WorkerSpec], on_stats: Callable[[dict[int, dict]], None], *, share_clock: bool = False
) -> list[tuple[str, int]]:
    """Run each spec in its own process; returns the workers' errors (message, exit code).

    ``share_clock``: the workers fuzz one target, so they stamp their health checks (and fresh cases) from one clock.
    """
    import multiprocessing as mp

    from .fresh import shared_clock

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    shared = shared_clock(ctx) if share_clock else None
    procs = [ctx.Process(target=_worker_main, args=(s, queue, shared), daemon=False) for s in specs]
    for p in procs:
        p.start()
    latest: dict[int, dict] = {}
    errors: list[tuple[str, int]] = []
    running = len(procs)
    while running:
        try:
            worker, what, payload = queue.get(timeout=0.5)
        except Exception:  # queue.Empty
            if not any(p.is_alive() for p in procs):
                break
            continue
        if what == "stats":
            latest[worker] = payload
            on_stats(latest)
        else:
            running -= 1
            if what == "error":
                errors.append(tuple(payload))
    for p in procs:
        p.join()
    return errors


def write_reports(out: Path, elapsed: float, this_run_cases: int, identification: str | None = None) -> dict[str, Any]:
    """``findings.json`` and ``summary.json`` from the database (the whole campaign, all runs).

    ``identification``: this run's ``--identification`` mode, recorded in ``summary.json``.
    """
    db = store.connect(out / store.DB_NAME)
    try:
        found = store.findings(db)
        t = store.totals(db)
    finally:
        db.close()
    (out / "findings.json").write_text(json.dumps({"findings": found}, indent=2) + "\n")
    summary = {
        "cases": t["cases"],
        "elapsed_s": round(elapsed, 3),
        "cases_per_s": round(this_run_cases / elapsed, 1) if elapsed > 0 else 0.0,
        "findings": len(found),
        "health_checks": t["health_checks"],
        "health_checks_failed": t["health_failed"],
        "cases_this_run": this_run_cases,
        "coverage": t["coverage"],
    }
    if identification is not None:
        summary["identification"] = identification
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
