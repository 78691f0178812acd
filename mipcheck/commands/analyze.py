"""``mipcheck analyze``: passive RFC 5265 checks of a capture against a site profile."""

from __future__ import annotations

import json
import os

import click

from mipcheck.capture.keys import build_keyring
from mipcheck.keysource import INLINE_WARNING


@click.command("analyze")
@click.argument("file", metavar="FILE")
@click.option(
    "--profile",
    "profile_path",
    required=True,
    metavar="SITE.toml",
    help="Site profile: home agents, trusted and internal networks, T_MONITOR, mobile nodes (see examples/site.toml).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="SPI=[ALG:]SOURCE",
    help="Mobile IP key from env:NAME or file:PATH (as for dissect).",
)
@click.option("--keys", "keys_file", metavar="FILE", help="TOML keys file (as for dissect).")
@click.option(
    "--esp-sa",
    "esp_sas",
    multiple=True,
    metavar="SPI,ENC,KEY,AUTH,KEY",
    help="ESP SA, to see registrations inside the VPN (as for dissect).",
)
def analyze(
    file: str, profile_path: str, as_json: bool, keys: tuple[str, ...], keys_file: str | None, esp_sas: tuple[str, ...]
) -> int:
    """Check capture FILE passively against RFC 5265.

    Findings: a reply with TNC sent to an untrusted address; the i-HA answering
    a source outside the trusted networks; one address used as i-HA and x-HA
    (3.5); TNC placed after the authenticator; plaintext user data more than
    T_MONITOR seconds after the last successful i-HA registration (3.2.4); a
    plaintext registration to the i-HA from an external address (3.1, 6.1).
    Each names its PASSIVE- check and the catalogue's requirements. Exit
    status 1 when a MUST-level finding exists, 0 otherwise, 2 on bad input.
    """
    from mipcheck.capture.analysis import Analyzer
    from mipcheck.capture.dissector import Dissector, records
    from mipcheck.capture.profile import load_profile
    from mipcheck.capture.progress import FileProgress
    from mipcheck.capture.reader import CaptureReader

    profile = load_profile(profile_path)
    ring = build_keyring(keys, esp_sas, keys_file)
    for what in ring.typed_inline:
        click.echo(f"mipcheck: warning: {what}: {INLINE_WARNING}", err=True)
    analyzer = Analyzer(profile, file)
    dissector = Dissector(ring)
    size = CaptureReader(file).size  # fails early, with one line, when the file is unreadable
    with FileProgress(os.path.basename(file), size) as bar:
        for record in records(file, dissector, bar.update if bar.enabled else None):
            analyzer.feed(record)
    findings = analyzer.findings()
    must = sum(1 for f in findings if f.level == "MUST")
    if as_json:
        doc = {
            "file": file,
            "profile": profile_path,
            "packets": analyzer.packets,
            "t_monitor": profile.t_monitor,
            "findings": [f.as_dict() for f in findings],
            "summary": {level: sum(1 for f in findings if f.level == level) for level in ("MUST", "SHOULD", "MAY")},
        }
        click.echo(json.dumps(doc, indent=2))
    else:
        _table(file, analyzer.packets, findings)
    click.get_current_context().exit(1 if must else 0)


def _frames(frames: list[int], count: int) -> str:
    if not frames:
        return "(profile)"
    shown = ", ".join(map(str, frames[:8]))
    return shown + (f" ... ({count} in all)" if count > len(frames[:8]) else "")


def _table(file: str, packets: int, findings: list) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if not findings:
        console.print(f"{file}: {packets} packets, no findings")
        return
    table = Table(title=f"{file}: {packets} packets, {len(findings)} findings", show_lines=True)
    table.add_column("check", no_wrap=True)
    table.add_column("level")
    table.add_column("broken by")
    table.add_column("frames")
    table.add_column("finding")
    seen: dict[str, str] = {}
    for f in findings:
        party = f"{f.violation.party}\n{f.violation.rule_id}" if f.violation else ""
        table.add_row(f.id.removeprefix("PASSIVE-"), f.level, party, _frames(f.frames, f.count), f.explanation)
        for r in f.requirements:
            seen.setdefault(r.id, f"[bold]{r.id}[/] ({r.level}) {r.text}")
    console.print(table)
    if seen:
        console.print("[bold]Requirements concerned[/] (the catalogue, see mipcheck list):")
        for line in seen.values():
            console.print(f"  {line}")
