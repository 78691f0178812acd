"""``mipcheck lab``: RFC 5265 Figure 1 in network namespaces (up, down, status, shell, breaks, audit-ha). Needs root."""

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
    help="Misconfigure the lab the way one audit case checks (repeatable; `mipcheck lab breaks` lists them).",
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
    _print_ha_profiles(doc, name)


def _print_ha_profiles(doc: dict[str, Any], name: str) -> None:
    for vantage, record in (doc.get("ha_profiles") or {}).items():
        if record["profile"]:
            click.echo(
                f"ha profile {vantage}: {record['profile']}  (mipcheck lab audit-ha --name {name} --from {vantage})"
            )
        else:
            click.echo(f"ha profile {vantage}: not written ({record['not_written']})")


@lab.command("breaks")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
def breaks_cmd(as_json: bool) -> None:
    """The broken lab variants for `up --break`: the case each makes fail (site audit or audit-ha), what it changes."""
    from mipcheck.lab.breaks import TABLE

    if as_json:
        rows = [
            {
                "name": b.name,
                "case": b.case,
                "rule": b.rule,
                "summary": b.summary,
                "suite": b.suite,
                "conformant": b.conformant,
                "also": [{"case": e.case, "verdict": e.verdict, "why": e.why} for e in b.also],
                "ha": [
                    {"case": e.case, "verdict": e.verdict, "vantages": list(e.vantages), "why": e.why} for e in b.ha
                ],
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
        for h in b.ha:
            where = ", ".join(h.vantages)
            why = f": {h.why}" if h.why else ""
            click.echo(f"{'':<{width}}  {'':<{cwidth}}  audit-ha --from {where}: {h.case} -> {h.verdict}{why}")


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
        _print_ha_profiles(doc, doc["name"])
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


def _modes(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    """``c`` or a sequence of moves ``c,cvc,c``."""
    from mipcheck.lab import run as lab_run

    modes = tuple(m.strip() for m in value.split(","))
    for mode in modes:
        if mode not in lab_run.MODES:
            raise click.BadParameter(f"{mode!r} is not one of {', '.join(lab_run.MODES)}", ctx, param)
        if mode not in lab_run.IMPLEMENTED:
            raise click.BadParameter(f"{mode}: not built yet ({lab_run.MISSING[mode]}; docs/lab.md)", ctx, param)
    return modes


@lab.command("run")
@_lab_options
@click.option(
    "--mode",
    "modes",
    required=True,
    callback=_modes,
    metavar="MODE[,MODE...]",
    help="RFC 5265 access mode: c, f, cvc or fvc; several, comma-separated (c,f,cvc,fvc,c), move the MN from "
    "one to the next in one session and check that a TCP connection survives.",
)
@click.option("--up", "bring_up", is_flag=True, help="Bring a lab up for the run and take it down afterwards.")
@click.option("--pings", type=click.IntRange(1, 100), default=3, show_default=True, help="Echo requests to the CN.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the pcaps and report.json go (default STATE_DIR/runs/mode-M-TIME).",
)
@click.option("--encapsulation", type=click.Choice(["udp", "ipip", "minimal"]), default="udp", show_default=True,
              help="The reference MN's tunnels with a co-located care-of address: RFC 3519 Tunnel Data or IP-in-IP "
              "(RFC 2003, raw sockets at both ends); minimal: through a foreign agent (f, fvc), ask for minimal "
              "encapsulation between the home agent and the agent (RFC 2004).")  # fmt: skip
@click.option("--nat", is_flag=True, help="Outside, the MN is behind the lab's NAT (192.168.100.10), not on the "
              "external network: RFC 3519 NAT traversal for x-MIP.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="One JSON object (the report).")
def run_cmd(
    name: str,
    state_dir: Path | None,
    modes: tuple[str, ...],
    bring_up: bool,
    pings: int,
    out: Path | None,
    encapsulation: str,
    nat: bool,
    as_json: bool,
) -> None:
    """Move the reference MN, wait for detection, ping the CN through the tunnels, capture, measure overhead.

    Exit 0 when every move ended in the right detection (c, f: inside; cvc, fvc: outside), the registrations
    the mode needs were accepted (the i-HA's with TNC; f, fvc: through the foreign agent, with its care-of
    address; cvc, fvc: the x-HA's, and the i-HA's with the VPN-TIA as care-of address), every ping came back
    and, for a sequence, the TCP session survived every move; 1 otherwise.
    """
    from mipcheck.lab import control
    from mipcheck.lab import run as lab_run

    if nat and "cvc" not in modes:
        raise click.UsageError(
            "--nat: the NAT is in front of the MN's co-located care-of address outside (mode cvc); c and f are "
            "inside, fvc is behind the x-FA"
        )

    def progress(line: str) -> None:  # live, on stderr; --json keeps stdout one object and says nothing
        if not as_json:
            click.echo(line, err=True)

    if bring_up:
        built = control.up(name, state_dir=state_dir)
        try:
            report = lab_run.run_modes(
                built, modes, pings=pings, out_dir=out, nat=nat, encapsulation=encapsulation, progress=progress
            )
        finally:
            control.down(name, state_dir=state_dir)
        if out is None:
            report["note"] = "the lab was taken down with its state directory: give --out to keep the pcaps"
    else:
        lab = control.load(name, state_dir=state_dir)
        report = lab_run.run_modes(
            lab, modes, pings=pings, out_dir=out, nat=nat, encapsulation=encapsulation, progress=progress
        )
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_run(report)
    sys.exit(EXIT_OK if report["ok"] else EXIT_FAIL)


def _print_step(r: dict[str, Any], indent: str) -> None:
    reg, det, data, oh = r["registration"], r["detection"], r["data"], r["overhead"]
    click.echo(
        f"{indent}registration: i-HA accepted {reg['i_ha_accepted']} (TNC {'yes' if reg['i_ha_tnc'] else 'no'}, "
        f"care-of address {reg['i_ha_care_of_address']}, UDP tunnel {'yes' if reg['i_ha_udp_tunnel'] else 'no'}); "
        f"x-HA accepted {reg['x_ha_accepted']}"
        + (f" (care-of address {reg['x_ha_care_of_address']}" if reg.get("x_ha_care_of_address") else "")
        + (f", from {reg['x_ha_source']})" if reg.get("x_ha_care_of_address") else "")
    )
    vpn = f", VPN-TIA {det['vpn_tia']}" if det.get("vpn_tia") else ""
    click.echo(
        f"{indent}detection: {det['result']} (expected {det['expected']}) after {det['seconds']:.3f} s "
        f"(data gate {det['data_gate']}{vpn})"
    )
    rtts = ", ".join("lost" if x is None else f"{x:.2f}" for x in data["rtt_ms"])
    click.echo(
        f"{indent}data: {data['answered']}/{data['pings']} pings answered (RTT ms: {rtts}); the CN saw "
        f"{data['cn_saw_requests_from_home_address']} requests from the home address"
    )
    if r.get("session"):
        ses = r["session"]
        said = f"ok, the CN's peer {ses['cn_peer']}" if ses.get("ok") else f"FAILED ({ses.get('error')})"
        click.echo(f"{indent}session: {said}")
    measured = ", ".join(str(x) for x in oh["measured"]) or "none"
    if r["mode"] == "f":
        tunnels = [f"IP-in-IP {', '.join(str(x) for x in oh.get('fa_to_ha_ip_in_ip', []))}"]
        if oh.get("fa_to_ha_minimal"):
            tunnels.append(f"minimal encapsulation {', '.join(str(x) for x in oh['fa_to_ha_minimal'])}")
        between = "; ".join(t for t in tunnels if not t.endswith(" ")) or "none"
        click.echo(
            f"{indent}overhead on the MN's link: {measured} octets ({oh['mn_link_echo_requests']} echo requests "
            f"as they are); i-FA <-> i-HA: {between} octets; RFC 5265 5.2: {oh['rfc5265_5_2']}"
        )
    elif r["mode"] == "fvc":
        layers = oh.get("per_packet") or []
        split = (
            f" (i-MIP {layers[0]['i_mip']} + ESP {layers[0]['esp']} for a {layers[0]['user_packet']}-octet packet; "
            f"x-MIP beyond the MN's link, the x-FA's tunnel: {layers[0]['x_mip']})"
            if layers
            else ""
        )
        click.echo(
            f"{indent}overhead on the MN's link: {measured} octets{split}; RFC 5265 5.2: {oh['rfc5265_5_2']}, "
            f"{oh['rfc5265_5_2_with_nat_traversal']} with NAT traversal (its ESP assumptions differ: docs/lab.md)"
        )
    elif r["mode"] == "cvc":
        layers = oh.get("per_packet") or []
        split = (
            f" (i-MIP {layers[0]['i_mip']} + ESP {layers[0]['esp']} + x-MIP {layers[0]['x_mip']} for a "
            f"{layers[0]['user_packet']}-octet packet)"
            if layers
            else ""
        )
        click.echo(
            f"{indent}overhead on the MN's link: {measured} octets{split}; RFC 5265 5.2: {oh['rfc5265_5_2']}, "
            f"{oh['rfc5265_5_2_with_nat_traversal']} with NAT traversal (its ESP assumptions differ: docs/lab.md)"
        )
    elif "IP-in-IP" in oh["segment"]:
        click.echo(
            f"{indent}overhead on {oh['segment']}: {measured} octets measured over {oh['tunnel_data_packets']} "
            f"tunnelled packets; RFC 5265 5.2: {oh['rfc5265_5_2']}"
        )
    else:
        click.echo(
            f"{indent}overhead on {oh['segment']}: {measured} octets measured over {oh['tunnel_data_packets']} "
            f"tunnelled packets; RFC 5265 5.2: {oh['rfc5265_5_2']} (IP-in-IP), "
            f"{oh['rfc5265_5_2_with_mip_nat_traversal']} with MIP NAT traversal (UDP tunnelling, what the "
            "reference agents use)"
        )


def _print_run(r: dict[str, Any]) -> None:
    click.echo(f"lab {r['lab']!r}, access mode {r['mode']}: {'OK' if r['ok'] else 'FAILED'} in {r['seconds']:.2f} s")
    if "steps" in r:
        for number, step in enumerate(r["steps"], 1):
            click.echo(f"  move {number}: mode {step['mode']}: {'ok' if step['ok'] else 'FAILED'}")
            _print_step(step, "    ")
        ses = r["session"]
        click.echo(
            f"  session: {'kept' if ses['ok'] else 'NOT kept'} across {len(r['steps'])} moves "
            f"(the CN's peer: {ses['cn_peer']})"
        )
    else:
        _print_step(r, "  ")
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


@lab.command("audit-ha")
@_lab_options
@click.option(
    "--from",
    "vantages",
    multiple=True,
    type=click.Choice(["inside", "vpn"]),
    help="Where the tester plays the mobile node: inside (audit-in, on the internal LAN) or vpn (audit-vpn, "
    "from its VPN-TIA). Repeatable; default both.",
)
@click.option(
    "--case",
    "case_patterns",
    multiple=True,
    metavar="ID|GLOB",
    help="Run these HA-suite cases instead of the trust cases (repeatable, comma-separated, globs; '*': all).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Evidence and reports go to OUT/inside and OUT/vpn [default: out/lab-ha].",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
def audit_ha_cmd(
    name: str,
    state_dir: Path | None,
    vantages: tuple[str, ...],
    case_patterns: tuple[str, ...],
    out: Path | None,
    quiet: bool,
) -> None:
    """The HA suite's trust cases against the lab's i-HA, run inside the vantage point's namespace.

    Each run is `mipcheck run --suite ha --profile <the lab's ha-suite-VANTAGE.toml>` in that namespace, with its
    verdict table and reports. Exit 0 when no case failed, 1 when one did, 2 for tester errors (the worst of the runs).
    """
    from mipcheck.lab import control, ha_audit

    lab_ = control.load(name, state_dir=state_dir)
    base = out or Path(ha_audit.DEFAULT_OUT)
    patterns = tuple(p for raw in case_patterns for p in raw.split(",") if p.strip())
    ready: list[tuple[str, dict[str, Any]]] = []
    for vantage in dict.fromkeys(vantages or ha_audit.VANTAGES):
        record = (lab_.ha_profiles or {}).get(vantage)
        if not vantages and record and record["profile"] is None:
            # both by default: a lab without the VPN host still audits from inside, and says why not from the VPN
            click.echo(f"audit-ha: not from {vantage}: {record['not_written']}", err=True)
            continue
        ready.append((vantage, ha_audit.check_ready(lab_, vantage)))  # every vantage point usable before any run
    codes = []
    for vantage, record in ready:
        cases = patterns or tuple(record["cases"])
        untrusted = ", ".join(record["untrusted_sources"]) or "none"
        click.echo(
            f"lab {name!r}: HA suite against the i-HA {ha_audit.IHA_ADDRESS} from {vantage} ({record['host']}, "
            f"{record['namespace']}): trusted source {', '.join(record['trusted_sources'])}, untrusted {untrusted}",
            err=True,
        )
        if vantage == ha_audit.INSIDE:
            click.echo(f"  control: the i-HA's namespace reaches {untrusted} (a reply it sent would arrive)", err=True)
        left = record["left_out"]
        if left and not patterns:
            why = next(iter(left.values()))
            click.echo(f"  not run from {vantage}: {', '.join(left)} ({why})", err=True)
        sys.stdout.flush()
        codes.append(ha_audit.run(lab_, vantage, cases, base / vantage, quiet=quiet))
    sys.exit(max(codes, default=2))


@lab.command("suite-mn")
@_lab_options
@click.option(
    "--case",
    "case_patterns",
    multiple=True,
    metavar="ID|GLOB",
    help="Run only these MN-suite cases (repeatable, comma-separated, globs).",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="NAME",
    help="Run the reference MN with this fault (repeatable; `mipcheck mn faults` lists them).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Verdict reports, report.json and pcaps go here [default: out/lab-mn].",
)
@click.option("--via-agents", is_flag=True,
              help="Inside is the i-FA's link and outside the x-FA's: the MN registers through the lab's foreign "
              "agents (access modes f and fvc).")  # fmt: skip
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
def suite_mn_cmd(
    name: str,
    state_dir: Path | None,
    case_patterns: tuple[str, ...],
    faults: tuple[str, ...],
    out: Path | None,
    via_agents: bool,
    quiet: bool,
) -> None:
    """The MN suite (`mipcheck run --suite mn`) against the reference MN in the lab, over real links.

    mipcheck plays the i-HA, the x-HA and the VPN gateway in their namespaces (the lab's own are stopped for the run
    and restarted as they were); the MN's veth moves between the switch's bridges. Exit 0 when no MUST case failed,
    1 when one did, 2 for tester errors.
    """
    from rich.console import Console

    from mipcheck.commands.run import _LiveProgress, _report, _Silent
    from mipcheck.engine.runner import select_cases
    from mipcheck.lab import control
    from mipcheck.mn.faults import check_faults
    from mipcheck.suites.mn import CASES
    from mipcheck.suites.mn.lab import DEFAULT_OUT, run_lab_mn_suite

    cases = select_cases(CASES, case_patterns)
    check_faults(faults)
    lab_ = control.load(name, state_dir=state_dir)
    base = out or Path(DEFAULT_OUT)
    err = Console(stderr=True)
    if not quiet:
        said = f" with fault {', '.join(faults)}" if faults else ""
        said += " through the foreign agents (modes f, fvc)" if via_agents else ""
        where = lab_.topology.namespace("mn")
        click.echo(f"lab {name!r}: MN suite against the reference MN in {where}{said}", err=True)
    progress = _Silent() if quiet else _LiveProgress(len(cases), err)
    with progress:
        result, problems = run_lab_mn_suite(
            lab_, cases, faults=faults, evidence_dir=base, progress=progress, via_agents=via_agents
        )
    code = _report(result, base, None, None, None)
    for problem in problems:
        click.echo(f"suite-mn: not undone: {problem}", err=True)
    sys.exit(max(code, 2) if problems else code)
