"""``mipcheck mn``: play the mobile node against a home agent."""

from __future__ import annotations

import json
import sys

import click

from mipcheck.errors import EXIT_FAIL, EXIT_OK, EXIT_USAGE


@click.group("mn")
def mn() -> None:
    """A test mobile node (co-located or foreign-agent care-of address)."""


def _describe(reply: bytes) -> str:
    from mipcheck.layers import MobileIPMessage

    return MobileIPMessage(reply).show(dump=True).rstrip()


@mn.command("register")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="TOML config (see examples/mn.toml).",
)
@click.option("--deregister", is_flag=True, help="Send Lifetime 0 instead.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
def register(config_path: str, deregister: bool, as_json: bool) -> None:
    """One registration; prints the decoded reply. Exit 0 accepted, 1 denied, 2 no reply."""
    from mipcheck.mn.config import load_mn_config
    from mipcheck.mn.core import Denied, Registered
    from mipcheck.mn.transport import register_once

    config = load_mn_config(config_path)
    result = register_once(config, deregister=deregister)
    final = result.final
    unauthenticated = [e for e in result.ignored if e.code is not None]
    if final is None and unauthenticated:
        # RFC 5944 3.6.2.1 discards replies that fail authentication; say what came back anyway.
        last = unauthenticated[-1]
        outcome, code = "denied-unauthenticated", last.code
    else:
        outcome, code = result.outcome, getattr(final, "code", None)
    if as_json:
        rec = {
            "outcome": outcome,
            "code": code,
            "sent": result.sent,
            "local": f"{result.local[0]}:{result.local[1]}" if result.local else None,
        }
        if isinstance(final, Registered):
            rec.update(
                lifetime=final.lifetime,
                tnc=final.tnc,
                tnc_issue=final.tnc_issue,
                udp_tunnel=final.udp_tunnel,
                warnings=list(final.warnings),
            )
        rec["ignored"] = [{"reason": e.reason, "code": e.code} for e in result.ignored]
        click.echo(json.dumps(rec))
    else:
        click.echo(f"{outcome}" + (f" code={code}" if code is not None else "") + f" after {result.sent} request(s)")
        if isinstance(final, Registered):
            click.echo(
                f"lifetime={final.lifetime} tnc={'yes' if final.tnc else 'no'}"
                + (
                    f" udp_tunnel=code {final.udp_tunnel[0]}, keepalive {final.udp_tunnel[1]} s"
                    if final.udp_tunnel
                    else ""
                )
            )
            for w in (*final.warnings, *([final.tnc_issue] if final.tnc_issue else [])):
                click.echo(f"warning: {w}")
        for e in result.ignored:
            click.echo(f"ignored reply: {e.reason}" + (f" (code {e.code})" if e.code is not None else ""))
        reply = getattr(final, "reply", b"") or (
            unauthenticated[-1].reply if unauthenticated and final is None else b""
        )
        if reply:
            click.echo(_describe(reply))
    if isinstance(final, Registered) or outcome == "deregistered":
        sys.exit(EXIT_OK)
    if isinstance(final, Denied) or outcome == "denied-unauthenticated":
        sys.exit(EXIT_FAIL)
    sys.exit(EXIT_USAGE)


# ---------------------------------------------------------------- the reference mobile node (issue 10)


@mn.command("run")
@click.option("--profile", "profile_path", required=True, type=click.Path(dir_okay=False), help="MN profile (TOML).")
@click.option(
    "--socket", "socket_path", default=None, help="Control socket (default: $XDG_RUNTIME_DIR/mipcheck-mn.sock)."
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="NAME",
    help="Break one RFC 5265 rule, or plant a robustness bug for a fuzz campaign (mipcheck mn faults).",
)
@click.option("--log-json", default=None, metavar="FILE|-", help="One JSON object per event (never a key).")
@click.option("--data-every", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
              help="Also send an echo request to the correspondent every SECONDS.")  # fmt: skip
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("--tun", default=None, metavar="NAME",
              help="User data from and to TUN device NAME (the home address goes on it; needs root) instead of "
              "answering echo itself.")  # fmt: skip
@click.option("--host-vpn", default=None, metavar="IFACE",
              help="The VPN is this host's IPsec client (e.g. strongSwan), not the profile's static SAs: the "
              "VPN-TIA is IFACE's address; the client must send from the x-HoA (put on the --tun device too). "
              "Needs --tun.")  # fmt: skip
@click.option("--vpn-up", default=None, metavar="COMMAND",
              help="With --host-vpn: shell command that brings the VPN up when the node goes outside "
              "(RFC 5265 2.3).")  # fmt: skip
@click.option("--encapsulation", type=click.Choice(["udp", "ipip", "minimal"]), default="udp", show_default=True,
              help="Tunnels: udp = RFC 3519 Tunnel Data (a UDP Tunnel Request in every registration); ipip = "
              "IP-in-IP (RFC 2003) through a raw socket (root); minimal = through a foreign agent that offers "
              "it, ask for minimal encapsulation ('M', RFC 2004) between the home agent and the agent.")  # fmt: skip
@click.option("--vpn-down", default=None, metavar="COMMAND",
              help="With --host-vpn: shell command that takes it down when the node is inside again.")  # fmt: skip
def run_cmd(
    profile_path: str,
    socket_path: str | None,
    faults: tuple[str, ...],
    log_json: str | None,
    data_every: float | None,
    quiet: bool,
    tun: str | None,
    host_vpn: str | None,
    vpn_up: str | None,
    encapsulation: str,
    vpn_down: str | None,
) -> None:
    """Run the reference mobile node until SIGINT/SIGTERM; move it with `mipcheck mn ctl`."""
    from mipcheck.mn.host_vpn import HostVpn
    from mipcheck.mn.runner import run_node

    if host_vpn is None and (vpn_up or vpn_down):
        raise click.UsageError("--vpn-up and --vpn-down need --host-vpn")

    sys.exit(
        run_node(
            profile_path,
            socket_path=socket_path,
            faults=faults,
            log_json=log_json,
            data_every=data_every,
            quiet=quiet,
            tun=tun,
            host_vpn=HostVpn(host_vpn, vpn_up, vpn_down) if host_vpn else None,
            encapsulation=encapsulation,
        )
    )


@mn.group("ctl")
@click.option("--socket", "socket_path", default=None, help="Control socket of `mipcheck mn run`.")
@click.pass_context
def ctl(ctx: click.Context, socket_path: str | None) -> None:
    """Control a running reference mobile node. Exit 0 ok, 2 no node there or refused."""
    from mipcheck.mn.control import default_socket_path

    ctx.obj = socket_path or default_socket_path()


def _ask(path: str, request: dict) -> dict:
    from mipcheck.errors import MipcheckError
    from mipcheck.mn.control import ask

    answer = ask(path, request)
    if not answer.get("ok"):
        raise MipcheckError(str(answer.get("error") or "refused"))
    return answer


@ctl.command("move")
@click.argument("interface")
@click.argument("network", type=click.Choice(["inside", "outside", "down"]))
@click.argument("care_of_address", required=False, default=None)
@click.option("--foreign-agent", "via_agent", is_flag=True,
              help="The new link has a foreign agent: register through the one whose advertisement is heard "
              "(RFC 5944 2.4; root). CARE_OF_ADDRESS is then our address on that link (e.g. the home "
              "address).")  # fmt: skip
@click.pass_obj
def ctl_move(path: str, interface: str, network: str, care_of_address: str | None, via_agent: bool) -> None:
    """Move INTERFACE to NETWORK (a connection status change, RFC 5265 3.2.2)."""
    request = {"command": "move", "interface": interface, "network": network, "care_of_address": care_of_address}
    if via_agent:
        if not care_of_address:
            raise click.UsageError("--foreign-agent needs CARE_OF_ADDRESS: our address on the agent's link")
        request["foreign_agent"] = "advertised"
    answer = _ask(path, request)
    if via_agent:
        click.echo(f"{interface}: {network}, waiting for a foreign agent's advertisement (from {care_of_address})")
        return
    coa = answer.get("care_of_address")
    click.echo(f"{interface}: {network}" + (f", care-of address {coa}" if coa else ""))


@ctl.command("status")
@click.option("--json", "as_json", is_flag=True, help="The node's state as one JSON object.")
@click.pass_obj
def ctl_status(path: str, as_json: bool) -> None:
    """What the node believes now, per interface."""
    status = _ask(path, {"command": "status"})["status"]
    if as_json:
        click.echo(json.dumps(status))
        return
    faults = ", ".join(status.get("faults") or []) or "none"
    click.echo(f"home address {status['home_address']}, port {status['port']}, faults: {faults}")
    for name, i in status["interfaces"].items():
        counters = " ".join(f"{k}={v}" for k, v in i["counters"].items())
        click.echo(
            f"{name}: {i['network']} {i['care_of_address'] or '-'} mode={i['mode']} data={i['data']}"
            f" vpn-tia={i['vpn_tia'] or '-'}" + (f" {counters}" if counters else "")
        )


@mn.command("faults")
@click.option("--json", "as_json", is_flag=True, help="One JSON list instead of text.")
def faults_cmd(as_json: bool) -> None:
    """The reference mobile node's faults: name, the rule it breaks, what it does; then the robustness faults a
    fuzz campaign must find (each crashes or hangs the node after one malformed input)."""
    from mipcheck.mn.faults import TABLE
    from mipcheck.mn.robustness import TABLE as ROBUSTNESS

    if as_json:
        click.echo(json.dumps([f.as_dict() for f in TABLE] + [f.as_dict() for f in ROBUSTNESS]))
        return
    width = max(len(f.name) for f in (*TABLE, *ROBUSTNESS))
    rule_width = max(len(f.rule) for f in TABLE)
    for f in TABLE:
        click.echo(f"{f.name:<{width}}  {f.rule:<{rule_width}}  {f.summary}")
    click.echo(f"\n{ROBUSTNESS_HEADING}")
    for f in ROBUSTNESS:
        click.echo(f"{f.name:<{width}}  {f.summary}")


ROBUSTNESS_HEADING = "Robustness (fuzz targets for mipcheck fuzz run --device mn; no MN suite case):"
