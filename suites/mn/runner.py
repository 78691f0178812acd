"""Runs the MN suite: one device, so cases one after another; the engine's results, reports and exit codes.

The pre-flight moves the first interface inside and waits for one
registration with a valid authenticator at the i-HA. Nothing at all from the
device, requests whose authenticator fails with the profile's key, or a
move command that fails make every case ``error`` (exit 2) with one line
naming what to check: the device is then not what is being measured.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mipcheck.engine.evidence import Capture, write_pcap
from mipcheck.engine.runner import Preflight, Progress, RunResult, case_evidence, case_requirements
from mipcheck.engine.verdicts import CaseOutcome, CaseResult, Check, TesterError, Verdict, grade
from mipcheck.mn.profile import MobileNodeProfile

from . import judge as j
from .cases import MnCase
from .env import MnEnv
from .played import DIRECT, IHA, XHA

PREFLIGHT_TIMEOUT = 10.0  # seconds for a first registration after the move (a real device may need DHCP first)
EMPTY_EVIDENCE: dict[str, object] = {"frames": 0, "judged": [], "datagrams": []}


def public_profile(profile: MobileNodeProfile) -> dict[str, Any]:
    """The profile for reports: addresses, SPIs, timers, where secrets come from; never a key."""
    vpn = profile.vpn
    return {
        "source": profile.source,
        "dut": {
            "role": "mn",
            "home_address": profile.home_address,
            "interfaces": list(profile.interfaces),
            "t_monitor": profile.t_monitor,
            "detection_period": profile.detection_period,
            "rereg_grace": profile.grace,
            "port": profile.port,
            "correspondent": profile.correspondent,
        },
        "i_ha": {
            "address": profile.i_ha.address,
            "port": profile.i_ha.port,
            "spi": profile.i_ha.sa.spi,
            "algorithm": profile.i_ha.sa.algorithm,
            "secret": f"<hidden: {profile.i_ha.secret_from}>",
        },
        "x_ha": {
            "address": profile.x_ha.address,
            "port": profile.x_ha.port,
            "home_address": profile.x_ha.home_address,
            "spi": profile.x_ha.sa.spi,
            "algorithm": profile.x_ha.sa.algorithm,
            "secret": f"<hidden: {profile.x_ha.secret_from}>",
        },
        "vpn": {
            "gateway": vpn.gateway,
            "port": vpn.port,
            "inner_address": vpn.inner_address,
            "spi_in": vpn.spi_in,
            "spi_out": vpn.spi_out,
            "encryption": vpn.encryption,
            "integrity": vpn.integrity,
            "keys": "<hidden>",
        },
        "networks": dict(profile.networks),
        "commands": {"move": profile.move_command, "timeout": profile.command_timeout},
    }


def preflight(env: MnEnv, timeout: float = PREFLIGHT_TIMEOUT) -> Preflight:
    """Move inside; a registration with a valid authenticator must reach the i-HA."""
    capture = Capture(env.clock)
    env.begin(capture)
    profile = env.profile
    iface = profile.interfaces[0]
    try:
        try:
            for other in profile.interfaces[1:]:
                env.move(other, "down")
            env.move(iface, "down")
            coa = env.move(iface, "inside")
        except TesterError as exc:
            return Preflight("error", f"{exc.reason}; check [commands].move", tuple(capture.frames))
        since = env.moves[-1].at
        t = j.Timing(env)

        def to_iha() -> list:
            return j.requests(env.observations(since), IHA, valid=False)

        env.wait_until(lambda: any(o.auth == "valid" for o in to_iha()), timeout)
        # give the x-HA's request (sent at the same time, 3.3) a moment too, to check its key
        env.wait_until(lambda: bool(j.requests(env.observations(since), XHA, valid=False)), min(t.tol, 2.0))
        log = env.observations(since)
    finally:
        env.end()
    frames = tuple(capture.frames)
    iha = j.requests(log, IHA, valid=False)
    xha = j.requests(log, XHA, valid=False)
    good = [o for o in iha if o.auth == "valid"]
    bad_x = [o for o in xha if o.auth != "valid"]
    if bad_x and not any(o.auth == "valid" for o in xha):
        o = bad_x[0]
        return Preflight(
            "unauthenticated",
            f"bad keys: the device's requests to the x-HA fail authentication with the profile's key (authenticator "
            f"{o.auth}, SPI {o.spi}, frame {o.frame}): check [x_ha] spi, secret and algorithm",
            frames,
        )
    if good:
        first = good[0]
        where = "" if first.path == DIRECT and first.peer[0] == coa else f" (from {first.peer[0]}, not {coa})"
        return Preflight("accepted", f"a registration with a valid authenticator reached the i-HA{where}", frames)
    if iha:
        o = iha[0]
        return Preflight(
            "unauthenticated",
            f"bad keys: the device's requests to the i-HA fail authentication with the profile's key (authenticator "
            f"{o.auth}, SPI {o.spi}, frame {o.frame}): check [i_ha] spi, secret and algorithm",
            frames,
        )
    seen = j.arrived(log)
    if seen:
        return Preflight(
            "misdirected",
            f"after `move {iface} inside` nothing reached the i-HA at {profile.i_ha.address}:{profile.i_ha.port} "
            f"within {timeout:g} s, but: {j.show(seen, since)}; check [i_ha] address and port and [networks].inside",
            frames,
        )
    return Preflight(
        "silent",
        f"nothing arrived from the device within {timeout:g} s after `move {iface} inside`: check [commands].move, "
        f"the addresses ([i_ha], [x_ha], [networks].inside = {coa}) and that the device runs",
        frames,
    )


def _result(case: MnCase, verdict: Verdict, reason: str, **kw: Any) -> CaseResult:
    return CaseResult(
        id=case.id,
        title=case.title,
        level=case.level,
        requirement=case.requirement,
        requirements=case_requirements(case.id),
        verdict=verdict,
        reason=reason,
        faults=list(case.faults),
        **kw,
    )


def run_case(case: MnCase, env: MnEnv, evidence_dir: Path | None) -> CaseResult:
    """Run one case; always returns a result (a tester fault is an ``error``, never a crash)."""
    capture = Capture(env.clock)
    t0 = time.monotonic()
    checks: list[Check] = []
    failure = None
    files: dict[str, str] = {}
    env.begin(capture)
    try:
        checks = list(case.run(env))
        g = grade(case.level, checks)
        verdict, reason, failure = g.verdict, g.reason, g.failure
    except CaseOutcome as out:
        verdict, reason = out.verdict, out.reason
    except Exception as exc:  # a bug or environment problem of the tester, never the device's fault
        verdict, reason = Verdict.ERROR, f"tester fault: {type(exc).__name__}: {exc}"
        if evidence_dir is not None:
            rel = Path("evidence") / f"{case.id}.error.txt"
            (evidence_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (evidence_dir / rel).write_text(traceback.format_exc(), encoding="utf-8")
            files["error.txt"] = rel.as_posix()
    finally:
        notes = list(env.notes)
        try:
            env.end()
        except Exception:  # noqa: S110 - ending a case must not hide its verdict
            pass
    evidence, problem = case_evidence(case.id, capture.frames, checks, evidence_dir, notes, files)
    if problem is not None:
        verdict, reason = Verdict.ERROR, problem
    return _result(
        case, verdict, reason, failure=failure, checks=checks, evidence=evidence, duration=time.monotonic() - t0
    )


def run_mn_suite(
    cases: Sequence[MnCase],
    env: MnEnv,
    *,
    evidence_dir: str | Path | None = None,
    progress: Progress | None = None,
    builtin: bool = False,
    preflight_timeout: float = PREFLIGHT_TIMEOUT,
) -> RunResult:
    """Run ``cases`` in order against the device of ``env.profile``; ``env`` is started here, closed by its owner."""
    profile = env.profile
    out = Path(evidence_dir) if evidence_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    started, t0 = time.time(), time.monotonic()
    results: dict[str, CaseResult] = {}

    def finish(result: CaseResult) -> None:
        results[result.id] = result
        if progress is not None:
            progress.finished(result)

    runnable = []
    for case in cases:
        why = case.applicable(profile)
        if why:
            finish(_result(case, Verdict.NOT_APPLICABLE, why, evidence=dict(EMPTY_EVIDENCE)))
        elif case.id in env.unobservable:
            finish(_result(case, Verdict.INCONCLUSIVE, env.unobservable[case.id], evidence=dict(EMPTY_EVIDENCE)))
        else:
            runnable.append(case)

    checked: Preflight | None = None
    if runnable:
        try:
            env.start()
        except TesterError as exc:
            checked = Preflight("error", exc.reason)
        else:
            checked = preflight(env, preflight_timeout)
        if out is not None and checked.frames:
            write_pcap(out / "pcaps" / "PREFLIGHT.pcap", list(checked.frames))
        if checked.status != "accepted":
            for case in runnable:
                finish(
                    _result(
                        case, Verdict.ERROR, f"not run: pre-flight: {checked.detail}", evidence=dict(EMPTY_EVIDENCE)
                    )
                )
            runnable = []

    for case in runnable:
        if progress is not None:
            progress.started(case)  # type: ignore[arg-type]
        finish(run_case(case, env, out))

    return RunResult(
        suite="mn",
        target={"address": profile.home_address, "port": profile.port, "role": "mn", "builtin": builtin},
        profile=public_profile(profile),
        results=[results[c.id] for c in cases],
        started=started,
        duration=time.monotonic() - t0,
        evidence_dir=str(out) if out is not None else None,
        preflight=checked,
    )
