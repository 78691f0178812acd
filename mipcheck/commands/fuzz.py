"""``mipcheck fuzz``: structure-aware fuzzing of home agents and mobile nodes (run, replay, show, merge, strategies).

Without ``--target`` the built-in i-HA is fuzzed on loopback. A profile whose
``[dut] role`` is ``mn``, or ``--device mn`` (without a profile: the built-in
reference mobile node), fuzzes a mobile node instead (:mod:`mipcheck.fuzz.mn`). A case is named
by (seed, index): ``replay`` sends it again, ``show`` dissects it without
sending. Exit 1 when the campaign holds a finding, 0 when none, 2 on bad input.

``--identification fresh`` (``run`` and ``replay``; the default with
``--target``) re-stamps every registration request with a fresh timestamp
Identification at send time and re-signs it, for devices with strict replay
protection; the case's own octets (``show``, ``case_hex``) stay those of
(seed, index) (:mod:`mipcheck.fuzz.fresh`).
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from pathlib import Path

import click

from mipcheck.errors import ConfigError, MipcheckError

DEFAULT_OUT = "out/fuzz"
IDENTIFICATION_MODES = ("case", "fresh")
IDENTIFICATION_HELP = (
    "Identification of registration requests: 'case' sends the case's own (from seed and index), 'fresh' "
    "re-stamps each request with a fresh timestamp when sending it and re-signs it, for devices with strict "
    "replay protection (RFC 5944 5.7). [default: case for the built-in i-HA, fresh with --target]"
)


DEVICES = ("ha", "mn")
DEVICE_HELP = (
    "What is fuzzed: 'ha' a home agent, 'mn' a mobile node (mipcheck plays its i-HA and x-HA). [default: as the "
    "profile's [dut] role says; without a profile, ha (the built-in i-HA)]; --device mn without --profile fuzzes the "
    "built-in reference mobile node."
)


def _profile_role(profile_path: str | None) -> str | None:
    """``[dut] role`` of the profile (None: no profile, or it does not say)."""
    if not profile_path or not Path(profile_path).is_file():
        return None
    from mipcheck.tomlfile import read_toml

    try:
        dut = read_toml(Path(profile_path), "--profile").get("dut")
    except ConfigError:
        return None  # reported by whoever loads it
    role = dut.get("role") if isinstance(dut, dict) else None
    return role if isinstance(role, str) else None


def _device(device: str | None, profile_path: str | None) -> str:
    """``ha`` or ``mn``: as given, else as the profile's ``[dut] role`` says (``mn``: a mobile node)."""
    role = _profile_role(profile_path)
    if device is None:
        return "mn" if role == "mn" else "ha"
    if role is not None and (role == "mn") != (device == "mn"):
        raise ConfigError("--device", f"{device}, but the profile's [dut] role is {role!r}")
    return device


def _identification(mode: str | None, spec) -> str:
    """The mode in force: as given, else ``case`` for the built-in i-HA (its window is open), ``fresh`` otherwise."""
    if mode is not None:
        return mode
    return "case" if spec.kind == "lab" else "fresh"


def _shard(text: str) -> tuple[int, int]:
    k, sep, total = text.partition("/")
    if not sep or not k.isdigit() or not total.isdigit() or not 1 <= int(k) <= int(total):
        raise ConfigError("--shard", f"{text!r}: expected K/N with 1 <= K <= N, e.g. 2/4")
    return int(k), int(total)


def _target_spec(
    target: str | None,
    profile_path: str | None,
    target_cmd: str | None,
    restart_wait: float,
    faults: tuple[str, ...] = (),
):
    from mipcheck.engine.profile import parse_target
    from mipcheck.fuzz.campaign import TargetSpec

    if faults:
        from mipcheck.ha.faults import check_faults

        if target or target_cmd is not None:
            raise ConfigError("--fault", "only for the built-in i-HA (no --target); give your own target its faults")
        faults = tuple(sorted(check_faults(faults)))
    address, port = parse_target(target) if target else (None, None)
    if target_cmd is not None and not target:
        raise ConfigError("--target", "needed with --target-cmd: where the started command listens (HOST:PORT)")
    if target and not profile_path and not target_cmd:
        raise ConfigError("--profile", "needed with --target: the device's mobile node keys and the tester's addresses")
    if profile_path and not Path(profile_path).is_file():
        raise ConfigError("--profile", f"{profile_path}: no such file")
    if not target:
        if profile_path:
            raise ConfigError("--target", "needed with --profile (the built-in i-HA brings its own profile)")
        return TargetSpec("lab", faults=faults)
    if target_cmd is not None:
        if not target_cmd.strip():
            raise ConfigError("--target-cmd", "is empty")
        return TargetSpec("command", address, port, target_cmd, profile_path)
    return TargetSpec("remote", address, port, None, profile_path, restart_wait)


def _check_profile(spec) -> None:
    """Load the profile once in the parent so a bad one is one line, exit 2, before any worker starts."""
    if spec.profile_path:
        from mipcheck.engine.profile import load_profile
        from mipcheck.fuzz.context import context_from_profile

        context_from_profile(load_profile(spec.profile_path, target=f"{spec.address}:{spec.port}"))


def _strategies(names: tuple[str, ...]) -> tuple[str, ...]:
    from mipcheck.fuzz.strategies import STRATEGIES

    chosen = tuple(s.strip() for name in names for s in name.split(",") if s.strip())
    for name in chosen:
        if name not in STRATEGIES:
            raise ConfigError("--strategy", f"unknown strategy {name!r} (see mipcheck fuzz strategies)")
    return chosen


@click.group("fuzz")
def fuzz() -> None:
    """Fuzz a home agent (default: the built-in i-HA) or a mobile node (--device mn) with structure-aware Mobile IPv4
    messages."""


@fuzz.command("run")
@click.option("--target", metavar="HOST[:PORT]", help="The home agent to fuzz; omit for the built-in i-HA on loopback.")
@click.option(
    "--profile",
    "profile_path",
    metavar="FILE",
    help="Test profile (TOML) with the device's keys and the tester's trusted sources.",
)
@click.option(
    "--target-cmd",
    metavar="'SHELL COMMAND'",
    help="Start the target with this command (own process group; restarted after a crash or hang). With --jobs > 1, "
    "'{port}' in it is replaced by each worker's port.",
)
@click.option(
    "--seed",
    type=click.IntRange(0, 2**63 - 1),
    default=None,
    help="Campaign seed [default: random, printed; on --resume: the campaign's].",
)
@click.option(
    "--max-cases",
    type=click.IntRange(1),
    default=None,
    help="Stop after this many cases of this shard (counted over resumed runs).",
)
@click.option(
    "--duration",
    type=click.FloatRange(0.1),
    default=None,
    help="Stop after this many seconds (whichever of --max-cases/--duration comes first).",
)
@click.option(
    "--health-every",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="Cases between health checks (also after any unusual reaction).",
)
@click.option(
    "--jobs",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes (each its own built-in i-HA when there is no --target).",
)
@click.option(
    "--shard",
    "shard_text",
    default="1/1",
    show_default=True,
    metavar="K/N",
    help="Run only indexes i with i % N == K-1.",
)
@click.option(
    "--out",
    "out_dir",
    default=DEFAULT_OUT,
    show_default=True,
    metavar="DIR",
    help="campaign.sqlite, findings.json, summary.json, pcaps/.",
)
@click.option("--resume", is_flag=True, help="Continue the campaign in --out: no case is lost or run twice.")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="NAME",
    help="Built-in i-HA only: run it with this fault profile (repeatable; the robustness faults of 'mipcheck ha "
    "faults' are what a campaign must find).",
)
@click.option(
    "--strategy",
    "strategy_names",
    multiple=True,
    metavar="NAME",
    help="Only these strategies (repeatable; see 'mipcheck fuzz strategies').",
)
@click.option(
    "--window",
    type=click.FloatRange(0.001, 5.0),
    default=0.02,
    show_default=True,
    help="Seconds each case is listened to (cases are pipelined meanwhile).",
)
@click.option(
    "--restart-wait",
    type=click.FloatRange(0.0, 3600.0),
    default=0.0,
    help="--target without --target-cmd: seconds to wait for a failed device to come back.",
)
@click.option("--identification", type=click.Choice(IDENTIFICATION_MODES), default=None, help=IDENTIFICATION_HELP)
@click.option("--device", type=click.Choice(DEVICES), default=None, help=DEVICE_HELP)
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
def run_cmd(
    target,
    profile_path,
    target_cmd,
    seed,
    max_cases,
    duration,
    health_every,
    jobs,
    shard_text,
    out_dir,
    resume,
    faults,
    strategy_names,
    window,
    restart_wait,
    identification,
    device,
    quiet,
) -> int:
    """Run (or resume) a fuzz campaign; exit 1 when it holds a finding."""
    from mipcheck.fuzz.campaign import Worker, WorkerSpec, free_port

    if _device(device, profile_path) == "mn":
        if target:
            raise ConfigError("--target", "not for a mobile node: its profile says where the i-HA and x-HA are played")
        if identification is not None:
            raise ConfigError("--identification", "for home agents only: a reply copies the mobile node's")
        return _run_mn(
            profile_path,
            target_cmd,
            seed,
            max_cases,
            duration,
            health_every,
            jobs,
            _shard(shard_text),
            Path(out_dir),
            resume,
            faults,
            strategy_names,
            window,
            restart_wait,
            quiet,
        )
    shard = _shard(shard_text)
    spec = _target_spec(target, profile_path, target_cmd, restart_wait, faults)
    strategies = _strategies(strategy_names)
    identification = _identification(identification, spec)
    if jobs > 1 and spec.kind == "command" and "{port}" not in spec.command:
        raise ConfigError(
            "--target-cmd", "with --jobs > 1 each worker starts its own target: put {port} in the command"
        )
    _check_profile(spec)
    out = Path(out_dir)
    seed, gaps, first_new = _plan(out, seed, resume, shard, _target_name(spec), strategies, max_cases)
    deadline = time.time() + duration if duration is not None else None
    specs = []
    for w in range(jobs):
        ts = spec
        if jobs > 1 and spec.kind == "command":
            from dataclasses import replace

            port = free_port()
            ts = replace(spec, port=port, command=spec.command.replace("{port}", str(port)))
        specs.append(
            WorkerSpec(
                seed,
                shard,
                w,
                jobs,
                max_cases,
                deadline,
                ts,
                str(out),
                tuple(gaps),
                first_new,
                health_every,
                window,
                strategies=strategies,
                identification=identification,
            )
        )

    where = "the built-in i-HA" if spec.kind == "lab" else f"{spec.address}:{spec.port}"
    if spec.faults:
        where += f" with fault {', '.join(spec.faults)}"
    header = (
        f"mipcheck fuzz: seed {seed}, shard {shard[0]}/{shard[1]}, {jobs} job(s), against "
        f"{where}, {identification} identifications{' (resumed)' if resume else ''}"
    )
    # Workers on one --target stamp (fresh cases and health checks) from one clock; the built-in i-HA and
    # --target-cmd run one target per worker.
    return _execute(specs, Worker, header, out, quiet, identification, share_clock=spec.kind == "remote")


def _plan(
    out: Path,
    seed: int | None,
    resume: bool,
    shard: tuple[int, int],
    target_name: str,
    strategies: tuple[str, ...],
    max_cases: int | None,
) -> tuple[int, list[int], int]:
    """Open (or reopen, for --resume) the campaign in ``out``: its seed and the positions still to run."""
    from mipcheck.fuzz import store

    if seed is None and resume and (out / store.DB_NAME).exists():
        seed = int(dict(sqlite3.connect(out / store.DB_NAME).execute("SELECT key, value FROM meta")).get("seed", 0))
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    meta = {
        "seed": str(seed),
        "shard": f"{shard[0]}/{shard[1]}",
        "target": target_name,
        "strategies": ",".join(strategies) or "all",
    }
    db = store.open_campaign(out, meta, resume=resume)
    try:
        gaps, first_new = store.pending(store.committed_positions(db, seed, shard), max_cases)
    finally:
        db.close()
    return seed, gaps, first_new


def _execute(
    specs, worker_class, header: str, out: Path, quiet: bool, identification: str | None, *, share_clock: bool
) -> int:
    """Run the workers (in this process when there is one), then write the reports; exit 1 with a finding."""
    from mipcheck.fuzz.campaign import StopCampaign, run_workers, write_reports
    from mipcheck.fuzz.progress import Progress

    progress = Progress(quiet)
    if not quiet:
        progress.final(header)
    started = time.monotonic()
    stopped: str | None = None
    with progress:
        if len(specs) == 1:
            try:
                stats = worker_class(specs[0], lambda s: progress.update({0: s.as_dict()})).run()
                this_run = stats.cases
            except StopCampaign as exc:
                stopped = str(exc)
                this_run = 0
        else:
            latest: dict[int, dict] = {}

            def on_stats(workers: dict[int, dict]) -> None:
                latest.update(workers)
                progress.update(workers)

            errors = run_workers(specs, on_stats, share_clock=share_clock)
            this_run = sum(w["cases"] for w in latest.values())
            hard = [e for e in errors if e[1] != 1]
            if hard:
                raise MipcheckError(hard[0][0], exit_code=hard[0][1])
            if errors:
                stopped = errors[0][0]
    elapsed = time.monotonic() - started
    summary = write_reports(out, elapsed, this_run, identification)
    if not quiet:
        progress.final(
            f"mipcheck fuzz: {summary['cases']} cases in the campaign ({this_run} this run, "
            f"{summary['cases_per_s']:,.0f}/s), "
            f"{summary['health_checks']} health checks, {summary['findings']} findings -> {out}"
        )
    if stopped:
        click.echo(f"mipcheck: campaign stopped: {stopped}", err=True)
    return 1 if summary["findings"] else 0


def _target_name(spec) -> str:
    """The campaign's target as its meta table records it (a resumed campaign must name the same)."""
    if spec.kind != "lab":
        return f"{spec.address}:{spec.port}"
    return "lab" + "".join(f" --fault {f}" for f in spec.faults)


def _one_case(seed: int, index: int, spec, target=None):
    from mipcheck.fuzz.context import context_from_profile
    from mipcheck.fuzz.strategies import generate

    if target is None:
        from mipcheck.fuzz.lab import profile_for

        if spec.profile_path:
            from mipcheck.engine.profile import load_profile

            profile = load_profile(spec.profile_path, target=f"{spec.address}:{spec.port}")
        else:
            profile = profile_for(spec.address or "127.0.0.1", spec.port or 434)
    else:
        profile = spec.profile(target)
    ctx = context_from_profile(profile)
    return ctx, generate(seed, index, ctx)


@fuzz.command("replay")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), required=True)
@click.option("--index", type=click.IntRange(0), required=True)
@click.option("--target", metavar="HOST[:PORT]", help="The home agent; omit for the built-in i-HA.")
@click.option("--profile", "profile_path", metavar="FILE")
@click.option("--target-cmd", metavar="'SHELL COMMAND'", help="Start the target with this command first.")
@click.option(
    "--fault", "faults", multiple=True, metavar="NAME", help="Built-in i-HA only: run it with this fault profile."
)
@click.option("--window", type=click.FloatRange(0.001, 5.0), default=0.05, show_default=True)
@click.option("--identification", type=click.Choice(IDENTIFICATION_MODES), default=None, help=IDENTIFICATION_HELP)
@click.option("--device", type=click.Choice(DEVICES), default=None, help=DEVICE_HELP)
def replay(seed, index, target, profile_path, target_cmd, faults, window, identification, device) -> int:
    """Send case (seed, index) once, then a health check; exit 1 when the target fails it (reproduced)."""
    if _device(device, profile_path) == "mn":
        if target:
            raise ConfigError("--target", "not for a mobile node: its profile says where the i-HA and x-HA are played")
        if identification is not None:
            raise ConfigError("--identification", "for home agents only: a reply copies the mobile node's")
        return _replay_mn(seed, index, profile_path, target_cmd, faults, window)
    from mipcheck.fuzz.campaign import failure_kind, main_datagram
    from mipcheck.fuzz.fresh import Stamper, is_request
    from mipcheck.fuzz.health import HealthChecker
    from mipcheck.fuzz.target import LabTarget
    from mipcheck.fuzz.triage import Prober

    spec = _target_spec(target, profile_path, target_cmd, 0.0, faults)
    _check_profile(spec)
    stamper = Stamper(_identification(identification, spec))
    tgt = spec.build(None)
    try:
        if isinstance(tgt, LabTarget):
            tgt.launch()
        ctx, case = _one_case(seed, index, spec, tgt)
        health = HealthChecker(ctx, (tgt.address, tgt.port), stamper)
        try:
            if spec.kind == "remote":
                if not health.check().ok:
                    raise MipcheckError(
                        f"the target {tgt.address}:{tgt.port} fails the health check before the case is sent"
                    )
            else:
                tgt.start(lambda: health.check(min(ctx.reply_timeout, 0.5), counted=False).ok)
            prober = Prober(ctx, tgt, health, window, stamper=stamper)
            result = prober.fails_case(case)
        finally:
            health.close()
        name = f"case {seed}/{index} ({case.strategy}, {len(case.payload)} octets)"
        if stamper.fresh and is_request(case.draft):
            sent = main_datagram(case, prober.last_sent)
            how = "kept (the case breaks it)" if case.keeps_identification else "re-stamped"
            name += f", Identification {how}: sent {sent[16:24].hex() or 'none'}"
        if result is None:
            click.echo(f"{name}: target healthy afterwards: not reproduced")
            return 0
        kind = failure_kind(tgt, result)
        click.echo(f"{name}: reproduced: {kind} ({result.detail})")
        return 1
    finally:
        tgt.stop()


@fuzz.command("show")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), required=True)
@click.option("--index", type=click.IntRange(0), required=True)
@click.option(
    "--profile",
    "profile_path",
    metavar="FILE",
    help="The campaign's profile (its addresses and keys shape the octets); omit for the built-in i-HA's.",
)
@click.option("--target", metavar="HOST[:PORT]", help="As given to the campaign (overrides the profile's [dut]).")
@click.option("--device", type=click.Choice(DEVICES), default=None, help=DEVICE_HELP)
def show(seed, index, profile_path, target, device) -> None:
    """Dissect case (seed, index) without sending it: strategy, mutations, octets, Scapy dissection."""
    if _device(device, profile_path) == "mn":
        if target:
            raise ConfigError("--target", "not for a mobile node: its profile says where the i-HA and x-HA are played")
        return _show_mn(seed, index, profile_path)
    from mipcheck.engine.profile import parse_target
    from mipcheck.fuzz.campaign import TargetSpec

    if profile_path and not Path(profile_path).is_file():
        raise ConfigError("--profile", f"{profile_path}: no such file")
    address, port = parse_target(target) if target else (None, None)
    spec = TargetSpec("remote" if profile_path else "lab", address, port, None, profile_path)
    _ctx, case = _one_case(seed, index, spec)
    from mipcheck.layers import MobileIPMessage

    click.echo(
        f"case seed={seed} index={index} strategy={case.strategy} kind={case.kind} "
        f"signed={'yes' if case.signed else 'no'}"
    )
    click.echo("mutations: " + (json.dumps([list(op) for op in case.draft.ops]) if case.draft.ops else "none"))
    if case.before or case.after:
        click.echo(f"sequence: {len(case.before)} valid request(s) before, {len(case.after)} after (de-registration)")
    click.echo(_identification_note(case))
    payload = case.payload
    click.echo(f"octets ({len(payload)}): {payload.hex()}")
    click.echo(MobileIPMessage(payload).show(dump=True).rstrip())


def _identification_note(case) -> str:
    """What ``--identification fresh`` does to this case when it is sent (``show`` never sends)."""
    from mipcheck.fuzz.fresh import is_request

    if not is_request(case.draft):
        return "identification: not a registration request: sent as shown in either --identification mode"
    ident = case.payload[16:24].hex() or "none (cut)"
    if case.keeps_identification:
        return (
            f"identification: {ident}, broken on purpose by the strategy: sent as shown in either --identification mode"
        )
    steps = " (and the valid requests around it)" if case.before or case.after else ""
    return (
        f"identification: {ident}, from (seed, index); with --identification fresh (the default with --target) "
        f"the sender re-stamps it{steps} with a fresh timestamp at send time and re-signs a signed case, so the "
        "octets sent differ from these in the Identification and the authenticator (findings.json: sent_hex)"
    )


@fuzz.command("merge")
@click.argument("dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", "out_dir", required=True, metavar="DIR")
def merge(dirs, out_dir) -> int:
    """Join campaign folders (e.g. one per --shard) into one; exit 1 when the result holds a finding."""
    import shutil

    from mipcheck.fuzz import store
    from mipcheck.fuzz.campaign import write_reports

    out = Path(out_dir)
    db = store.merge([Path(d) for d in dirs], out)
    elapsed = db.execute("SELECT coalesce(max(elapsed), 0) FROM runs").fetchone()[0]
    db.close()
    for d in dirs:
        for pcap in (Path(d) / "pcaps").glob("*.pcap"):
            (out / "pcaps").mkdir(exist_ok=True)
            shutil.copy2(pcap, out / "pcaps" / pcap.name)
    summary = write_reports(out, elapsed, 0)
    click.echo(f"merged {len(dirs)} campaign(s): {summary['cases']} cases, {summary['findings']} findings -> {out}")
    return 1 if summary["findings"] else 0


@fuzz.command("strategies")
@click.option("--device", type=click.Choice(DEVICES), default="ha", show_default=True, help="Whose strategies.")
def strategies(device) -> None:
    """List the fuzzing strategies with what each breaks."""
    if device == "mn":
        from mipcheck.fuzz.mn.strategies import STRATEGIES
    else:
        from mipcheck.fuzz.strategies import STRATEGIES

    for name, (_fn, weight, line) in STRATEGIES.items():
        click.echo(f"{name:<22} weight {weight:>2}  {line}")


# ------------------------------------------------------------------ mobile nodes (mipcheck.fuzz.mn)


def _mn_target_spec(profile_path: str | None, target_cmd: str | None, restart_wait: float, faults: tuple[str, ...]):
    from mipcheck.fuzz.mn.campaign import MnTargetSpec

    if faults:
        from mipcheck.mn.faults import FAULTS
        from mipcheck.mn.robustness import FAULTS as ROBUSTNESS

        if profile_path or target_cmd is not None:
            raise ConfigError(
                "--fault", "only for the built-in reference mobile node (no --profile); give your own device its faults"
            )
        for name in faults:
            if name not in FAULTS and name not in ROBUSTNESS:
                known = ", ".join(sorted(ROBUSTNESS) + sorted(FAULTS))
                raise ConfigError("--fault", f"unknown mobile node fault {name!r}; known faults: {known}")
        faults = tuple(sorted(set(faults)))
    if profile_path and not Path(profile_path).is_file():
        raise ConfigError("--profile", f"{profile_path}: no such file")
    if target_cmd is not None:
        if not profile_path:
            raise ConfigError("--profile", "needed with --target-cmd: the mobile node's addresses, keys, move command")
        if not target_cmd.strip():
            raise ConfigError("--target-cmd", "is empty")
        return MnTargetSpec("command", profile_path, target_cmd)
    if profile_path:
        return MnTargetSpec("remote", profile_path, restart_wait=restart_wait)
    return MnTargetSpec("lab", faults=faults)


def _check_mn_profile(spec) -> None:
    """Load the MN profile once in the parent: a bad one is one line, exit 2, before anything starts."""
    if spec.profile_path:
        from mipcheck.fuzz.mn.context import mn_context
        from mipcheck.fuzz.mn.target import CommandMover
        from mipcheck.mn.profile import load_mobile_node_profile

        profile = load_mobile_node_profile(spec.profile_path)
        CommandMover(profile, mn_context(profile).interface)  # [commands].move is there


def _mn_strategies(names: tuple[str, ...]) -> tuple[str, ...]:
    from mipcheck.fuzz.mn.strategies import STRATEGIES

    chosen = tuple(s.strip() for name in names for s in name.split(",") if s.strip())
    for name in chosen:
        if name not in STRATEGIES:
            raise ConfigError("--strategy", f"unknown strategy {name!r} (see mipcheck fuzz strategies --device mn)")
    return chosen


def _mn_where(spec) -> str:
    if spec.kind == "lab":
        return "the built-in reference mobile node" + (f" with fault {', '.join(spec.faults)}" if spec.faults else "")
    return f"the mobile node of {spec.profile_path}"


def _run_mn(
    profile_path,
    target_cmd,
    seed,
    max_cases,
    duration,
    health_every,
    jobs,
    shard,
    out: Path,
    resume,
    faults,
    strategy_names,
    window,
    restart_wait,
    quiet,
) -> int:
    """``mipcheck fuzz run`` against a mobile node: the built-in reference MN, or the device of an MN profile."""
    from mipcheck.fuzz.mn.campaign import MnWorker, MnWorkerSpec

    spec = _mn_target_spec(profile_path, target_cmd, restart_wait, faults)
    strategies = _mn_strategies(strategy_names)
    if jobs > 1 and spec.kind != "lab":
        raise ConfigError("--jobs", "one mobile node is moved before every case: more jobs only for the built-in one")
    _check_mn_profile(spec)
    if spec.kind == "lab":
        name = "mn-lab" + "".join(f" --fault {f}" for f in spec.faults)
    else:
        name = f"mn {Path(spec.profile_path).resolve()}"
    seed, gaps, first_new = _plan(out, seed, resume, shard, name, strategies, max_cases)
    deadline = time.time() + duration if duration is not None else None
    specs = [
        MnWorkerSpec(
            seed,
            shard,
            w,
            jobs,
            max_cases,
            deadline,
            spec,
            str(out),
            tuple(gaps),
            first_new,
            health_every,
            window,
            strategies,
        )
        for w in range(jobs)
    ]
    header = (
        f"mipcheck fuzz: seed {seed}, shard {shard[0]}/{shard[1]}, {jobs} job(s), against {_mn_where(spec)}"
        f"{' (resumed)' if resume else ''}"
    )
    return _execute(specs, MnWorker, header, out, quiet, None, share_clock=False)


def _replay_mn(seed: int, index: int, profile_path, target_cmd, faults, window: float) -> int:
    from mipcheck.fuzz.campaign import failure_kind
    from mipcheck.fuzz.mn.campaign import MnProber
    from mipcheck.fuzz.mn.health import MnHealthChecker
    from mipcheck.fuzz.mn.strategies import generate
    from mipcheck.fuzz.mn.target import ReferenceMnTarget
    from mipcheck.fuzz.mn.wire import Wire

    spec = _mn_target_spec(profile_path, target_cmd, 0.0, faults)
    _check_mn_profile(spec)
    tgt, mover, ctx = spec.build(None)
    wire = None
    try:
        wire = Wire(ctx)
        health = MnHealthChecker(ctx, wire, mover)
        case = generate(seed, index, ctx)
        if spec.kind == "remote":
            first = health.check()
            if not first.ok:
                raise MipcheckError(f"the mobile node fails the health check before the case is sent: {first.detail}")
        else:
            tgt.start(lambda: health.check(min(ctx.health_timeout, 0.5), counted=False).ok)
        prober = MnProber(ctx, tgt, wire, mover, health, window)
        result = prober.fails_case(case)
        ex = prober.last_exchange
        name = f"case {seed}/{index} ({case.strategy}, {case.kind}, {len(case.payload)} octets)"
        if ex is not None and ex.main is None:
            click.echo(f"{name}: not sent ({ex.problem}: {ex.detail})")
            return 2
        if result is None:
            click.echo(f"{name}: mobile node healthy afterwards: not reproduced")
            return 0
        click.echo(f"{name}: reproduced: {failure_kind(tgt, result)} ({result.detail})")
        return 1
    finally:
        tgt.stop()
        if isinstance(tgt, ReferenceMnTarget):
            tgt.close()
        if wire is not None:
            wire.close()


def _mn_show_context(profile_path: str | None):
    from mipcheck.fuzz.mn.context import mn_context
    from mipcheck.mn.profile import load_mobile_node_profile

    if profile_path:
        if not Path(profile_path).is_file():
            raise ConfigError("--profile", f"{profile_path}: no such file")
        return mn_context(load_mobile_node_profile(profile_path))
    import tomllib

    from mipcheck.fuzz.mn.target import BUILTIN_INTERFACES, BUILTIN_SEED
    from mipcheck.mn.builtin import builtin_profile_text
    from mipcheck.mn.profile import parse_mobile_node_profile

    text = builtin_profile_text("mn.sock", interfaces=BUILTIN_INTERFACES, seed=BUILTIN_SEED)
    return mn_context(parse_mobile_node_profile(tomllib.loads(text), source="built-in"))


def _show_mn(seed: int, index: int, profile_path: str | None) -> None:
    from mipcheck.fuzz.mn.cases import DATA
    from mipcheck.fuzz.mn.strategies import generate
    from mipcheck.layers import MobileIPMessage

    case = generate(seed, index, _mn_show_context(profile_path))
    who = "the i-HA" if case.party == "iha" else "the x-HA"
    click.echo(
        f"case seed={seed} index={index} strategy={case.strategy} kind={case.kind} "
        f"signed={'yes' if case.signed else 'no'}"
    )
    if case.stage == DATA:
        click.echo(f"sent by {who} after a valid registration (code 0, UDP Tunnel Reply, TNC) of the device inside")
    else:
        click.echo(f"sent by {who} in answer to the device's first registration request to it after a move inside")
    click.echo("mutations: " + (json.dumps([list(op) for op in case.draft.ops]) if case.draft.ops else "none"))
    if case.restamped:
        ident = case.payload[12:20].hex() or "none (cut)"
        how = "then the case's own Identification operation" if case.keeps_identification else f"mode {case.ident}"
        click.echo(
            f"identification: {ident} here, from (seed, index); when sent, the device's request's ({how}), and a "
            "signed case is signed over the octets sent (findings.json: sent_hex)"
        )
    payload = case.payload
    click.echo(f"octets ({len(payload)}): {payload.hex()}")
    click.echo(MobileIPMessage(payload).show(dump=True).rstrip())
