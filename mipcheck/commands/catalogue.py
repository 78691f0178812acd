"""``mipcheck list``: the requirement catalogue, and how much of it has a test case."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text


def coverage_rows(rfc: int | None = None) -> list[dict[str, object]]:
    """Per keyword with at least one requirement: total, with a case, percentage."""
    from mipcheck.catalogue import coverage

    rows = []
    for keyword, c in coverage(rfc).items():
        if c["total"]:
            rows.append(
                {
                    "keyword": keyword,
                    "total": c["total"],
                    "with_case": c["with_case"],
                    "percent": round(100 * c["with_case"] / c["total"], 1),
                }
            )
    return rows


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object (requirements and coverage) instead of tables.")
@click.option("--rfc", type=int, default=None, metavar="N", help="Only requirements of RFC N (e.g. 5265).")
def list_cmd(as_json: bool, rfc: int | None) -> None:
    """List the requirement catalogue: id, section, keyword, role, test method, cases; and coverage per keyword."""
    from mipcheck.catalogue import load_catalogue

    reqs = [r for r in load_catalogue() if rfc is None or r.rfc == rfc]
    cov = coverage_rows(rfc)
    if as_json:
        doc = {
            "requirements": [
                {
                    "id": r.id,
                    "rfc": r.rfc,
                    "section": r.section,
                    "keyword": r.keyword,
                    "level": r.level,
                    "role": r.role,
                    "test": r.test,
                    "cases": list(r.cases),
                    "text": r.text,
                    "reason": r.reason,
                }
                for r in reqs
            ],
            "coverage": cov,
        }
        click.echo(json.dumps(doc, indent=2))
        return
    console = Console()
    if not console.is_terminal:  # files and pipes: whole ids on one line, not 80 columns
        console = Console(width=200)
    table = Table(title="mipcheck requirement catalogue" + (f" (RFC {rfc})" if rfc else ""))
    for col in ("id", "section", "keyword", "role", "test", "cases"):
        table.add_column(col, no_wrap=col != "cases", overflow="fold")
    for r in reqs:
        table.add_row(
            Text(r.id), f"RFC {r.rfc} {r.section}", r.keyword, r.role, r.test, Text(", ".join(r.cases) or "-")
        )
    console.print(table)
    cov_table = Table(title="coverage: requirements with a case")
    for col in ("keyword", "with a case", "total", "%"):
        cov_table.add_column(col, justify="right" if col != "keyword" else "left")
    for row in cov:
        cov_table.add_row(str(row["keyword"]), str(row["with_case"]), str(row["total"]), f"{row['percent']:.1f}")
    with_case = sum(int(row["with_case"]) for row in cov)
    total = sum(int(row["total"]) for row in cov)
    cov_table.add_row(
        Text("all", style="bold"), str(with_case), str(total), f"{100 * with_case / total:.1f}" if total else "-"
    )
    console.print(cov_table)
