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
