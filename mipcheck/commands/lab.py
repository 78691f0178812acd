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


@lab.command("run")
@_lab_options
@click.option(
    "--mode",
    type=click.Choice(["c", "f", "cvc", "fvc"]),
    required=True,
    help="RFC 5265 access mode (only c is built so far; docs/lab.md says what the others need).",
)
@click.option("--up", "bring_up", is_flag=True, help="Bring a lab up for the run and take it down afterwards.")
@click.option("--pings", type=click.IntRange(1, 100), default=3, show_default=True, help="Echo requests to the CN.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the pcaps and report.json go (default STATE_DIR/runs/mode-M-TIME).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object (the report).")
def run_cmd(
    name: str, state_dir: Path | None, mode: str, bring_up: bool, pings: int, out: Path | None, as_json: bool
) -> None:
    """Move the reference MN, wait for detection, ping the CN through the tunnel, capture, measure overhead.

    Exit 0 when the MN detected inside, was registered (with TNC) and every ping came back; 1 otherwise.
    """
    from mipcheck.errors import MipcheckError
    from mipcheck.lab import control
    from mipcheck.lab import run as lab_run

    if mode not in lab_run.IMPLEMENTED:
        raise MipcheckError(f"lab run --mode {mode}: not built yet ({lab_run.MISSING[mode]}; docs/lab.md)")
    if bring_up:
        built = control.up(name, state_dir=state_dir)
        try:
            report = lab_run.run_mode(built, mode, pings=pings, out_dir=out)
        finally:
            control.down(name, state_dir=state_dir)
        if out is None:
            report["note"] = "the lab was taken down with its state directory: give --out to keep the pcaps"
    else:
        report = lab_run.run_mode(control.load(name, state_dir=state_dir), mode, pings=pings, out_dir=out)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_run(report)
    sys.exit(EXIT_OK if report["ok"] else EXIT_FAIL)


def _print_run(r: dict[str, Any]) -> None:
    reg, det, data, oh = r["registration"], r["detection"], r["data"], r["overhead"]
    click.echo(f"lab {r['lab']!r}, access mode {r['mode']}: {'OK' if r['ok'] else 'FAILED'} in {r['seconds']:.2f} s")
    click.echo(
        f"  registration: i-HA accepted {reg['i_ha_accepted']} (TNC {'yes' if reg['i_ha_tnc'] else 'no'}, "
        f"care-of address {reg['i_ha_care_of_address']}, UDP tunnel {'yes' if reg['i_ha_udp_tunnel'] else 'no'}); "
        f"x-HA accepted {reg['x_ha_accepted']}"
    )
    click.echo(f"  detection: {det['result']} after {det['seconds']:.3f} s (data gate {det['data_gate']})")
    rtts = ", ".join("lost" if x is None else f"{x:.2f}" for x in data["rtt_ms"])
    click.echo(
        f"  data: {data['answered']}/{data['pings']} pings answered (RTT ms: {rtts}); the CN saw "
        f"{data['cn_saw_requests_from_home_address']} requests from the home address"
    )
    measured = ", ".join(str(x) for x in oh["measured"]) or "none"
    click.echo(
        f"  overhead on {oh['segment']}: {measured} octets measured over {oh['tunnel_data_packets']} Tunnel Data "
        f"packets; RFC 5265 5.2: {oh['rfc5265_5_2']} (IP-in-IP), {oh['rfc5265_5_2_with_mip_nat_traversal']} with "
        "MIP NAT traversal (UDP tunnelling, what the reference agents use)"
    )
    for seg, p in r["pcaps"].items():
        click.echo(f"  pcap {seg}: {p['file']} ({p['packets']} packets)")
    for problem in r["problems"]:
        click.echo(f"  problem: {problem}")
    if r.get("note"):
        click.echo(f"  note: {r['note']}")


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
