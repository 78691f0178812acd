"""``mipcheck lab``: RFC 5265 Figure 1 in network namespaces (up, down, status, shell, breaks). Needs root."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mipcheck.errors import EXIT_FAIL, EXIT_OK


def _lab_options(func: Callable[..., Any]) -> Callable[..., Any]:
    @click.option(
        "--name",
        "-n",
        default=lambda: os.environ.get("MIPCHECK_LAB", "lab"),
        show_default="lab, or $MIPCHECK_LAB",
        help="Lab name: namespaces are mipcheck-NAME-NODE.",
    )
    @click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Where lab.json, configs and logs go (default /run/mipcheck/lab-NAME).",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


@click.group("lab")
def lab() -> None:
    """RFC 5265 Figure 1 in network namespaces: MN, x-FA, NAT, x-HA, VPN gateway, firewall, i-FA, i-HA, CN."""


@lab.command("up")
@_lab_options
@click.option("--nat", is_flag=True, help="Put the MN behind the NAT instead of on the external network.")
@click.option("--no-vpn", is_flag=True, help="Do not start strongSwan; the VPN gateway is a plain router.")
@click.option(
    "--break",
    "breaks",
    multiple=True,
    metavar="NAME",
    help="Misconfigure the lab the way one site-audit case checks (repeatable; `mipcheck lab breaks` lists them).",
)
def up_cmd(name: str, state_dir: Path | None, nat: bool, no_vpn: bool, breaks: tuple[str, ...]) -> None:
    """Build the lab and start its home agents and VPN gateway (seconds)."""
    from mipcheck.lab import breaks as br
    from mipcheck.lab import control

    br.check_breaks(breaks)  # a usage error before anything is built
    built = control.up(name, state_dir=state_dir, nat=nat, with_vpn=not no_vpn, breaks=breaks)
    doc = built.as_json()
    click.echo(f"lab {name!r} up in {built.up_seconds:.2f} s; state in {doc['state_dir']}")
    _print_nodes(doc)
    if built.vpn_not_started:
        click.echo(f"vpn: not running ({built.vpn_not_started})")
    if built.vpn_host_not_started:
        click.echo(f"audit VPN host: not on the VPN ({built.vpn_host_not_started})")
    for b in doc["breaks"]:
        click.echo(f"BROKEN on purpose: {b['name']} ({b['case']}): {b['summary']}")
    click.echo(f"site profile: {doc['site_profile']}  (mipcheck run --suite site --profile {doc['site_profile']})")


@lab.command("breaks")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
def breaks_cmd(as_json: bool) -> None:
    """The broken lab variants for `up --break`: the site-audit case each makes fail, and what it changes."""
    from mipcheck.lab.breaks import TABLE

    if as_json:
        rows = [
            {
                "name": b.name,
                "case": b.case,
                "rule": b.rule,
                "summary": b.summary,
                "conformant": b.conformant,
                "also": [{"case": e.case, "verdict": e.verdict, "why": e.why} for e in b.also],
            }
            for b in TABLE
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    width = max(len(b.name) for b in TABLE)
    cwidth = max(len(b.case) for b in TABLE)
    for b in TABLE:
        mark = " (conformant: the case passes, reporting it)" if b.conformant else ""
        click.echo(f"{b.name:<{width}}  {b.case:<{cwidth}}  {b.rule}{mark}")
        click.echo(f"{'':<{width}}  {'':<{cwidth}}  {b.summary}")
        for e in b.also:
            click.echo(f"{'':<{width}}  {'':<{cwidth}}  also {e.case} -> {e.verdict}: {e.why}")


@lab.command("down")
@_lab_options
@click.option("--all", "every", is_flag=True, help="Take down every lab on this machine.")
def down_cmd(name: str, state_dir: Path | None, every: bool) -> None:
    """Remove the lab: processes, namespaces (with their veths, bridges and nftables tables), state directory."""
    from mipcheck.lab import control

    reports = control.down_all() if every else [control.down(name, state_dir=state_dir)]
    for r in reports:
        click.echo(
            f"removed {len(r.namespaces)} namespaces, stopped {len(r.killed)} processes"
            + (f", deleted {r.state_dir}" if r.state_dir else "")
        )
        if r.left:
            raise click.ClickException(f"could not delete namespaces: {', '.join(r.left)}")


@lab.command("status")
@_lab_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object (lab.json plus liveness).")
def status_cmd(name: str, state_dir: Path | None, as_json: bool) -> None:
    """What the lab is made of and which pieces are alive. Exit 0 all alive, 1 something is not."""
    from mipcheck.lab import control

    doc = control.status(control.load(name, state_dir=state_dir))
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(f"lab {doc['name']!r} (started {doc['started']}, state in {doc['state_dir']})")
        _print_nodes(doc, alive=True)
        click.echo(f"firewall: table {doc['firewall']['table']} {'loaded' if doc['firewall']['loaded'] else 'MISSING'}")
        click.echo(doc["vpn"]["status"])
        if doc["vpn"].get("audit_host_not_started"):
            click.echo(f"audit VPN host: not on the VPN ({doc['vpn']['audit_host_not_started']})")
        for b in doc.get("breaks", []):
            click.echo(f"BROKEN on purpose: {b['name']} ({b['case']}): {b['summary']}")
        click.echo(f"site profile: {doc['site_profile']}")
        for problem in doc["problems"]:
            click.echo(f"problem: {problem}")
    sys.exit(EXIT_OK if doc["healthy"] else EXIT_FAIL)


def _print_nodes(doc: dict[str, Any], alive: bool = False) -> None:
    hosts = doc["nodes"] + doc.get("vantages", [])
    width = max(len(n["name"]) for n in hosts)
    nsw = max(len(n["namespace"]) for n in hosts)
    for n in hosts:
        pids = ""
        if n["pids"]:
            marks = n.get("alive", {})
            pids = " pids " + ",".join(
                f"{p}" + ("" if not alive else (" (up)" if marks.get(str(p)) else " (DEAD)")) for p in n["pids"]
            )
        ns = n["namespace"] + ("" if not alive or n.get("namespace_exists") else " (GONE)")
        click.echo(f"  {n['name']:<{width}}  {ns:<{nsw}}  {' '.join(n['addresses'])}{pids}")


@lab.command("shell", context_settings={"ignore_unknown_options": True})
@_lab_options
@click.argument("node")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def shell_cmd(name: str, state_dir: Path | None, node: str, command: tuple[str, ...]) -> None:
    """A shell (${SHELL:-bash}) or COMMAND (after --) inside NODE's namespace."""
    from mipcheck.errors import MipcheckError
    from mipcheck.lab import netns
    from mipcheck.lab.topology import build_topology, check_lab_name

    netns.preflight()
    check_lab_name(name)
    topo = build_topology(name)
    ns = topo.switch_namespace if node == "switch" else topo.namespace(node)
    if ns not in netns.namespaces(topo.prefix):
        raise MipcheckError(
            f"lab {name!r} has no namespace {ns}: is it up? (mipcheck lab up --name {name})", exit_code=1
        )
    argv = list(command) or [os.environ.get("SHELL") or "bash"]
    sys.stdout.flush()
    os.execvp("ip", netns.in_ns(ns, argv))
