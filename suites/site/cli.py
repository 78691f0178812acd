"""The entry point of ``mipcheck run --suite site --profile site.toml`` (called by ``mipcheck.commands.run``).

:func:`run_site` loads the profile, runs the selected cases from its vantage
points, prints the verdict table and writes the same reports as the HA
suite: ``report.json``, ``junit.xml``, ``report.html`` and the pcaps under the
evidence folder, plus any of ``report_json``/``junit``/``html_path`` given.
Exit code: 0 no MUST failed, 1 a MUST failed, 2 tester or profile error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.text import Text

from mipcheck.engine.runner import select_cases
from mipcheck.engine.verdicts import CaseResult, exit_code
from mipcheck.errors import ConfigError

from . import CASES
from .profile import load_site_profile
from .runner import SiteCase, run_site_suite

DEFAULT_OUT = "out"


class _Lines:
    """One line per finished case on stderr (the site suite runs its cases in sequence)."""

    def __init__(self, total: int, console: Console) -> None:
        self.total, self.done, self.console = total, 0, console

    def started(self, case: SiteCase) -> None:
        pass

    def finished(self, result: CaseResult) -> None:
        from mipcheck.engine.report_console import STYLES

        self.done += 1
        self.console.print(
            Text(f"[{self.done}/{self.total}] {result.verdict:<14} {result.id}", style=STYLES[str(result.verdict)]),
            highlight=False,
        )


def list_site_cases(cases: Iterable[SiteCase] = CASES, as_json: bool = False, out: IO[str] | None = None) -> None:
    """``mipcheck run --suite site --list``: id, level, requirement, vantage roles, lab breaks, title."""
    out = out or sys.stdout
    cases = list(cases)
    if as_json:
        rows = [
            {
                "id": c.id,
                "level": c.level,
                "requirement": c.requirement,
                "title": c.title,
                "roles": list(c.roles),
                "breaks": list(c.breaks),
            }
            for c in cases
        ]
        out.write(json.dumps(rows, indent=2) + "\n")
        return
    rows = [("case", "level", "requirement", "vantage roles", "lab break(s)", "title")]
    rows += [(c.id, c.level, c.requirement, ", ".join(c.roles), ", ".join(c.breaks), c.title) for c in cases]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out.write("mipcheck run --suite site: cases and the lab break (mipcheck lab up --break) that makes each fail\n")
    for r in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() + "\n")


def run_site(
    profile_path: str | Path,
    *,
    out_dir: str | Path | None = None,
    report_json: str | Path | None = None,
    junit: str | Path | None = None,
    html_path: str | Path | None = None,
    case_patterns: Iterable[str] = (),
    levels: Iterable[str] = (),
    quiet: bool = False,
    stdout: Console | None = None,
    stderr: Console | None = None,
) -> int:
    """Run the site audit against the site of ``profile_path``; returns the exit code (0, 1 or 2).

    Profile and selection problems raise :class:`~mipcheck.errors.ConfigError`
    (one line, exit 2, as every mipcheck command reports them).
    """
    from mipcheck.engine.report_console import print_run
    from mipcheck.engine.report_html import write_html
    from mipcheck.engine.report_json import write_json
    from mipcheck.engine.report_junit import write_junit

    cases = select_cases(CASES, case_patterns, levels)  # type: ignore[arg-type]  # SiteCase has id and level
    if not cases:
        raise ConfigError("--level", "selects no case")
    profile = load_site_profile(profile_path)
    out = Path(out_dir or DEFAULT_OUT)
    err = stderr or Console(stderr=True)
    progress = None if quiet else _Lines(len(cases), err)
    result = run_site_suite(cases, profile, evidence_dir=out, progress=progress)  # type: ignore[arg-type]
    print_run(result, stdout or Console(file=sys.stdout))
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
