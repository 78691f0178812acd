"""``mipcheck run``: run a conformance suite against a device, or against the built-in i-HA.

Without ``--target`` and ``--profile`` the built-in home agent is started on
loopback and tested (the README's main job). Progress goes to stderr, the
verdict table to stdout, reports and pcaps to ``--out`` (default ``out/``).
Exit 0 when no MUST-level case failed, 1 when one did, 2 on usage, profile or
tester errors.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from mipcheck.engine.verdicts import LEVELS, CaseResult, exit_code
from mipcheck.errors import ConfigError

DEFAULT_OUT = "out"


class _LiveProgress:
    """Live progress on stderr: a bar on a terminal, one line per finished case otherwise."""

    def __init__(self, total: int, console: Console) -> None:
        self.console = console
        self.total = total
        self.done = 0
        self.bar: Progress | None = None
        if console.is_terminal:
            self.bar = Progress(
                TextColumn("[bold]mipcheck[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=console,
                transient=True,
            )
            self.task = self.bar.add_task("", total=total)

    def __enter__(self) -> _LiveProgress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def started(self, case) -> None:
        if self.bar is not None:
            self.bar.update(self.task, description=case.id)

    def finished(self, result: CaseResult) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.advance(self.task)
            self.bar.console.print(Text(f"{result.verdict:>14}  {result.id}", style=_style(result)))
        else:
            self.console.print(Text(f"[{self.done}/{self.total}] {result.verdict:<14} {result.id}"), highlight=False)


def _style(result: CaseResult) -> str:
    from mipcheck.engine.report_console import STYLES

    return STYLES[str(result.verdict)]


class _Silent:
    def started(self, case) -> None:
        pass

    def finished(self, result) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        pass


LIST_TITLE = "mipcheck run --suite ha: cases and the built-in HA fault that makes each fail"
LIST_TITLES = {
    "ha": LIST_TITLE,
    "mn": "mipcheck run --suite mn: cases and the reference mobile node fault that makes each fail",
}
LIST_COLUMNS = ("case", "level", "requirement", "fault(s)", "title")


def _print_cases(cases, as_json: bool, title: str = LIST_TITLE) -> None:
    """The suite's cases as JSON, a rich table on a terminal, or plain aligned text otherwise.

    Off a terminal (a pipe, CI, a test) rich would wrap at 80 columns and split
    case IDs and fault names, so the rows go out whole, one case per line, for grep.
    """
    if as_json:
        rows = [
            {"id": c.id, "level": c.level, "requirement": c.requirement, "title": c.title, "faults": list(c.faults)}
            for c in cases
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    rows = [(c.id, c.level, c.requirement, ", ".join(c.faults), c.title) for c in cases]
    if not _stdout_is_terminal():
        click.echo(title)
        for line in _aligned([LIST_COLUMNS, *rows]):
            click.echo(line)
        return
    table = Table(title=title)
    for col in LIST_COLUMNS:
        table.add_column(col, overflow="fold")
    for case_id, level, requirement, faults, title in rows:
        table.add_row(Text(case_id), level, Text(requirement), Text(faults), Text(title))
    Console().print(table)


def _stdout_is_terminal() -> bool:
    """Ask the stream itself: rich's is_terminal is forced on by FORCE_COLOR, common in CI."""
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


def _aligned(rows: list[tuple[str, ...]]) -> list[str]:
    """Columns padded to their widest cell, two spaces apart; nothing is ever wrapped."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


@click.command("run")
@click.option(
    "--suite",
    type=click.Choice(["ha", "mn", "site"]),
    default="ha",
    show_default=True,
    help="Which suite: ha plays the mobile node against a home agent; mn plays the i-HA, x-HA and VPN gateway "
    "against a mobile node; site audits a deployment (firewall, VPN policy, home agents) from vantage points.",
)
@click.option(
    "--target",
    metavar="HOST[:PORT]",
    help="The device under test (overrides the profile's [dut]); omit both --target and --profile for the built-in "
    "i-HA.",
)
@click.option(
    "--profile",
    "profile_path",
    metavar="FILE",
    help="Test profile (TOML): keys, addresses, applicability; see examples/profile-vendor.toml (--suite mn: the "
    "mobile node profile of docs/design/mn-loopback.md).",
)
@click.option(
    "--case",
    "case_patterns",
    multiple=True,
    metavar="ID|GLOB",
    help="Run only these cases (repeatable, comma-separated, globs like 'HA-TNC-*').",
)
@click.option(
    "--level",
    "levels",
    multiple=True,
    type=click.Choice(LEVELS, case_sensitive=False),
    help="Run only cases of this level (repeatable).",
)
@click.option("--report-json", "report_json", metavar="FILE", help="Write the JSON report here.")
@click.option("--junit", "junit", metavar="FILE", help="Write JUnit XML here (for CI servers).")
@click.option("--html", "html_path", metavar="FILE", help="Write the self-contained HTML report here.")
@click.option(
    "--out",
    "out_dir",
    metavar="DIR",
    default=None,
    help=f"Folder for all evidence: pcaps and every report [default: {DEFAULT_OUT}].",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="NAME",
    help="Built-in device only (i-HA, or with --suite mn the reference mobile node): inject a fault to watch the "
    "suite fail (--list shows the fault that breaks each case).",
)
@click.option(
    "--jobs", type=click.IntRange(1, 256), default=None, help="Cases run at once [default: the profile's tester.jobs]."
)
@click.option(
    "--sim",
    is_flag=True,
    help="Built-in i-HA only: run over the simulated network in virtual time instead of loopback UDP.",
)
@click.option("--list", "list_only", is_flag=True, help="List the suite's cases (with their faults) and exit.")
@click.option("--json", "as_json", is_flag=True, help="With --list: JSON instead of a table.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
def run(
    suite,
    target,
    profile_path,
    case_patterns,
    levels,
    report_json,
    junit,
    html_path,
    out_dir,
    faults,
    jobs,
    sim,
    list_only,
    as_json,
    quiet,
) -> int:
    """Run a conformance suite against a device (default: the built-in i-HA on loopback)."""
    from mipcheck.engine.runner import select_cases

    if suite == "site":
        return _run_site(
            profile_path,
            target,
            case_patterns,
            levels,
            faults,
            jobs,
            sim,
            list_only,
            as_json,
            quiet,
            out_dir,
            (report_json, junit, html_path),
        )
    if suite == "mn":
        reports = (report_json, junit, html_path)
        return _run_mn(
            profile_path, target, case_patterns, levels, faults, sim, list_only, as_json, quiet, out_dir, reports
        )
    from mipcheck.suites.ha import CASES, PREFLIGHT, SUITE

    cases = select_cases(CASES, case_patterns, levels)
    if list_only:
        _print_cases(cases, as_json)
        return 0
    if not cases:
        raise ConfigError("--level", "selects no case")
    if (target or profile_path) and faults:
        raise ConfigError("--fault", "injects faults into the built-in home agent only; drop --target/--profile")
    if target and not profile_path:
        raise ConfigError("--profile", "needed with --target: the device's mobile node keys and the tester's addresses")
    if sim and (target or profile_path):
        raise ConfigError("--sim", "runs the built-in home agent on the simulated network; drop --target/--profile")

    out = Path(out_dir or DEFAULT_OUT)
    err = Console(stderr=True)
    progress = _Silent() if quiet else _LiveProgress(len(cases), err)

    if profile_path:
        from mipcheck.engine.control import CommandControl
        from mipcheck.engine.profile import load_profile
        from mipcheck.engine.runner import run_suite

        profile = load_profile(profile_path, target=target)
        control = CommandControl(profile.commands, profile.target)
        with progress:
            result = run_suite(
                SUITE, cases, profile, control, evidence_dir=out, progress=progress, jobs=jobs, preflight=PREFLIGHT
            )
    else:
        from mipcheck.builtin import BuiltinLab
        from mipcheck.engine.runner import run_suite
        from mipcheck.ha.faults import check_faults

        check_faults(faults)
        where = "the simulated network" if sim else "loopback"
        if not quiet:
            err.print(
                Text(
                    "mipcheck: no --target: testing the built-in i-HA on "
                    f"{where}{' with fault ' + ', '.join(faults) if faults else ''}"
                ),
                highlight=False,
            )
        if sim:
            from contextlib import nullcontext

            from mipcheck.sim.home_agent import SimLab

            lab_context = nullcontext(SimLab(faults))
        else:
            lab_context = BuiltinLab(faults)
        with lab_context as lab, progress:
            transport = {"transport": lab.transport} if sim else {"jobs": jobs}
            result = run_suite(
                SUITE,
                cases,
                lab.profile,
                lab.control,
                evidence_dir=out,
                progress=progress,
                preflight=PREFLIGHT,
                **transport,
            )

    return _report(result, out, report_json, junit, html_path)


def _report(result, out: Path, report_json, junit, html_path) -> int:
    """The verdict table on stdout, every report into ``out`` (and where asked); the exit code."""
    from mipcheck.engine.report_console import print_run
    from mipcheck.engine.report_html import write_html
    from mipcheck.engine.report_json import write_json
    from mipcheck.engine.report_junit import write_junit

    print_run(result, Console(file=sys.stdout))
    write_json(result, out / "report.json")
    write_junit(result, out / "junit.xml")
    write_html(result, out / "report.html")
    if report_json:
        write_json(result, report_json)
    if junit:
        write_junit(result, junit)
    if html_path:
        write_html(result, html_path)
    return exit_code(result.results)


def _run_site(
    profile_path, target, case_patterns, levels, faults, jobs, sim, list_only, as_json, quiet, out_dir, reports
) -> int:
    """``--suite site``: the RFC 5265 deployment audit (suites/site) from the profile's vantage points."""
    from mipcheck.engine.runner import select_cases
    from mipcheck.suites.site import CASES as SITE_CASES
    from mipcheck.suites.site.cli import list_site_cases, run_site

    if list_only:
        list_site_cases(select_cases(SITE_CASES, case_patterns, levels), as_json=as_json)
        return 0
    if not profile_path:
        raise ConfigError(
            "--profile", "the site suite needs a site profile (`mipcheck lab up` writes one: site_profile)"
        )
    if target or faults or sim or jobs:
        raise ConfigError("--suite", "site takes only --profile, --case, --level, --out and the report options")
    report_json, junit, html_path = reports
    return run_site(
        profile_path,
        out_dir=out_dir,
        report_json=report_json,
        junit=junit,
        html_path=html_path,
        case_patterns=case_patterns,
        levels=levels,
        quiet=quiet,
    )


def _run_mn(profile_path, target, case_patterns, levels, faults, sim, list_only, as_json, quiet, out_dir, reports):
    """``--suite mn``: a vendor's mobile node by ``--profile``, else the built-in reference mobile node."""
    from mipcheck.engine.runner import select_cases
    from mipcheck.suites.mn import CASES, run_mn_suite

    cases = select_cases(CASES, case_patterns, levels)
    if list_only:
        _print_cases(cases, as_json, LIST_TITLES["mn"])
        return 0
    if not cases:
        raise ConfigError("--level", "selects no case")
    if target:
        raise ConfigError("--target", "is for --suite ha; the MN suite reads every address from --profile")
    if sim:
        raise ConfigError("--sim", "runs the built-in home agent on the simulated network (--suite ha only)")
    if profile_path and faults:
        raise ConfigError("--fault", "injects faults into the built-in reference mobile node only; drop --profile")
    out = Path(out_dir or DEFAULT_OUT)
    err = Console(stderr=True)
    progress = _Silent() if quiet else _LiveProgress(len(cases), err)
    if profile_path:
        from mipcheck.mn.profile import load_mobile_node_profile
        from mipcheck.suites.mn import LoopbackEnv

        env = LoopbackEnv(load_mobile_node_profile(profile_path))
        try:
            with progress:
                result = run_mn_suite(cases, env, evidence_dir=out, progress=progress)
        finally:
            env.close()
    else:
        from mipcheck.mn.faults import check_faults
        from mipcheck.suites.mn.builtin import BuiltinMobileNode

        check_faults(faults)
        if not quiet:
            err.print(
                Text(
                    "mipcheck: no --profile: testing the built-in reference mobile node on loopback"
                    f"{' with fault ' + ', '.join(faults) if faults else ''}"
                ),
                highlight=False,
            )
        from mipcheck.suites.mn import SAME_ADDRESS_CASES

        # Two reference mobile nodes: one with distinct home agent addresses for most cases, one with a single
        # address for the cases of RFC 5265 3.5, so that the default run leaves no case untested.
        results = []
        with progress:
            for same, chosen in (
                (False, [c for c in cases if c.id not in SAME_ADDRESS_CASES]),
                (True, [c for c in cases if c.id in SAME_ADDRESS_CASES]),
            ):
                if not chosen:
                    continue
                with BuiltinMobileNode(faults, same_home_agent=same) as lab:
                    assert lab.env is not None
                    results.append(
                        run_mn_suite(
                            chosen,
                            lab.env,
                            evidence_dir=out,
                            progress=progress,
                            builtin=True,
                            preflight_timeout=lab.preflight_timeout,
                        )
                    )
        result = results[0]
        if len(results) > 1:
            order = {c.id: i for i, c in enumerate(cases)}
            merged = sorted((r for run in results for r in run.results), key=lambda r: order[r.id])
            result = dataclasses.replace(result, results=merged, duration=sum(run.duration for run in results))
    return _report(result, out, *reports)
