"""``mipcheck layers``: what the Scapy layers can build and dissect."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table


@click.command("layers")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
def layers(as_json: bool) -> None:
    """List every message and extension the layers know, with its number and RFC."""
    from mipcheck.layers import known_layers

    rows = known_layers()
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in rows], indent=2))
        return
    table = Table(title="mipcheck layers")
    for col in ("kind", "number", "name", "RFC", "Scapy class", "skippable"):
        table.add_column(col)
    for r in rows:
        skip = "" if r.skippable is None else ("yes" if r.skippable else "no")
        table.add_row(r.kind, str(r.number), r.name, r.rfc, r.layer, skip)
    Console().print(table)
