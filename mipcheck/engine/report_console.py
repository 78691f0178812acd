"""The console table printed at the end of ``mipcheck run``."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .runner import RunResult
from .verdicts import VERDICT_ORDER

STYLES = {
    "pass": "green",
    "fail": "bold red",
    "warn": "yellow",
    "inconclusive": "cyan",
    "not-applicable": "dim",
    "error": "bold magenta",
}


def print_run(run: RunResult, console: Console | None = None) -> None:
    console = console or Console()
    if not console.is_terminal:  # files and pipes: whole lines, not 80 columns
        console = Console(file=console.file, width=200)
    table = Table(title=f"mipcheck {run.suite}: {run.target['address']}:{run.target['port']}")
    for col in ("case", "level", "requirement", "verdict", "reason"):
        table.add_column(col, no_wrap=col in ("case", "level", "verdict"), overflow="fold")
    for r in run.results:
        v = str(r.verdict)
        table.add_row(Text(r.id), r.level, Text(r.requirement), Text(v, style=STYLES[v]), Text(r.reason))
    console.print(table)
    if run.preflight is not None and run.preflight.status != "accepted":
        console.print(Text(f"pre-flight: {run.preflight.detail}"), style="bold")
    s = run.summary
    totals = ", ".join(f"[{STYLES[str(v)]}]{s[str(v)]} {v}[/]" for v in VERDICT_ORDER if s[str(v)])
    console.print(f"{len(run.results)} cases in {run.duration:.2f} s: {totals}")
    if run.evidence_dir:
        console.print(Text(f"evidence: {run.evidence_dir}"))
