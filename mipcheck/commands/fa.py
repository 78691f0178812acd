"""``mipcheck fa``: run the reference foreign agent, list its fault profiles."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import sys
import time
from typing import Any

import click

from mipcheck.errors import ConfigError


@click.group("fa")
def fa() -> None:
    """The reference foreign agent (RFC 5944 2 and 3.7, RFC 3024)."""


@fa.command("serve")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="TOML config.")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="NAME",
    help="Break one rule on purpose (repeatable); see `mipcheck fa faults`.",
)
@click.option("--log-json", is_flag=True, help="One JSON object per log line.")
@click.option("--address", default=None, help="Override the config's address.")
@click.option("--port", type=int, default=None, help="Override the config's port (0: any free port).")
def serve(config_path: str, faults: tuple[str, ...], log_json: bool, address: str | None, port: int | None) -> None:
    """Advertise, relay registrations and deliver tunnelled data until SIGINT or SIGTERM; one log line per decision.

    Advertisements go as UDP payloads (the whole IPv4/ICMP packet) to the config's `link`, a loopback stand-in
    for the link's broadcast: ICMP broadcast needs raw sockets.
    """
    from mipcheck.fa.config import load_fa_config
    from mipcheck.fa.faults import check_faults

    config = load_fa_config(config_path)
    overrides: dict[str, Any] = {}
    if address is not None:
        overrides["address"] = address
    if port is not None:
        overrides["port"] = port
    if overrides:
        try:
            config = dataclasses.replace(config, **overrides)
        except ConfigError as exc:
            raise ConfigError(f"--{exc.key}", exc.problem) from None
    asyncio.run(_serve(config, check_faults(faults), log_json))


async def _serve(config: Any, faults: frozenset[str], log_json: bool) -> None:
    from mipcheck.fa.server import DecisionLog, serve

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    caught: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        caught.append(sig.name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    streams = [sys.stdout]
    logfile = None
    if config.log_file:
        try:
            logfile = open(config.log_file, "a", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise ConfigError("log_file", f"cannot open {config.log_file}: {exc.strerror or exc}") from None
        streams.append(logfile)
    log = DecisionLog(streams, as_json=log_json)

    def ready(address: str, port: int, core: Any) -> None:
        log.record(
            {
                "event": "listening",
                "address": address,
                "port": port,
                "care_of_addresses": ",".join(config.care_of_addresses),
                "link": "{}:{}".format(*config.link) if config.link else "none",
                "flags": config.flags,
                "faults": ",".join(sorted(faults)) or "none",
            },
            time.time(),
        )
        log.flush()

    try:
        core = await serve(config, faults, log=log, stop=stop, on_ready=ready)
        log.record({"event": "stopped", "signal": caught[0] if caught else None, **core.counters}, time.time())
    finally:
        log.flush()
        if logfile is not None:
            logfile.close()


@fa.command("faults")
@click.option("--json", "as_json", is_flag=True, help="A JSON object: name -> {rule, changes}.")
def faults_cmd(as_json: bool) -> None:
    """List the fault profiles of the reference foreign agent (each breaks exactly one rule)."""
    from mipcheck.fa.faults import TABLE

    if as_json:
        click.echo(json.dumps({f.name: {"rule": f.rule, "changes": dict(f.changes)} for f in TABLE}, indent=2))
        return
    width = max(len(f.name) for f in TABLE)
    for f in TABLE:
        click.echo(f"{f.name:<{width}}  {f.rule}")
