"""``mipcheck ha``: run the reference home agent, list its fault profiles."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import signal
import sys
import time
from typing import Any

import click

from mipcheck.errors import ConfigError


@click.group("ha")
def ha() -> None:
    """The reference home agent (RFC 5944, i-HA/x-HA of RFC 5265)."""


@ha.command("serve")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="TOML config (see examples/ha-i.toml).",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="NAME",
    help="Break one rule on purpose, or plant a robustness bug for a fuzz campaign (repeatable); see `mipcheck ha "
    "faults`.",
)
@click.option("--log-json", is_flag=True, help="One JSON object per log line.")
@click.option("--address", default=None, help="Override the config's address.")
@click.option("--port", type=int, default=None, help="Override the config's port (0: any free port).")
@click.option(
    "--tun",
    default=None,
    metavar="NAME",
    help="Data plane: write decapsulated tunnel data (MIP Tunnel Data, IP-in-IP through a raw socket) to TUN device "
    "NAME and tunnel what is routed into it to the bindings, as Tunnel Data (UDP-tunnelled bindings) or IP-in-IP "
    "(the others) (needs root; routes are yours to set, docs/lab.md).",
)
def serve(
    config_path: str, faults: tuple[str, ...], log_json: bool, address: str | None, port: int | None, tun: str | None
) -> None:
    """Serve registrations until SIGINT or SIGTERM; one log line per decision on stdout.

    Under a robustness fault the trigger input ends the process with status 70 (crash) or stops it
    answering (hang), with one line on stderr.
    """
    from mipcheck.ha.config import load_ha_config
    from mipcheck.ha.faults import check_faults

    config = load_ha_config(config_path)
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
    fault_set = check_faults(faults)
    asyncio.run(_serve(config, fault_set, log_json, tun))


async def _serve(config: Any, faults: frozenset[str], log_json: bool, tun: str | None = None) -> None:
    from mipcheck.ha.server import DecisionLog, serve

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
        # The config and start-up objects live as long as the process: keep the collector off them.
        gc.collect()
        gc.freeze()
        log.record(
            {
                "event": "listening",
                "address": address,
                "port": port,
                "role": config.role,
                "mobile_nodes": len(config.mobile_nodes),
                "trusted_networks": ",".join(map(str, config.trusted_networks)) or "none",
                "faults": ",".join(sorted(faults)) or "none",
                **({"tun": tun} if tun is not None else {}),
            },
            time.time(),
        )
        log.flush()

    try:
        core = await serve(config, faults, log=log, stop=stop, on_ready=ready, tun=tun)
        log.record({"event": "stopped", "signal": caught[0] if caught else None, **core.counters}, time.time())
    finally:
        log.flush()
        if logfile is not None:
            logfile.close()


ROBUSTNESS_HEADING = "Robustness (fuzz targets; no conformance case):"


@ha.command("faults")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="A JSON object: name -> {rule, cases}; conformant variants add conformant, robustness faults robustness, "
    "trigger and finding.",
)
def faults_cmd(as_json: bool) -> None:
    """List the fault profiles (each breaks exactly one rule), the conformant behaviour variants, and the
    robustness faults a fuzz campaign must find (each crashes, hangs or goes wrong after one malformed input)."""
    from mipcheck.ha.faults import ALL_FAULTS, FAULTS, ROBUSTNESS

    variants = [f for f in ALL_FAULTS.values() if f.conformant]
    if as_json:
        doc = {f.name: {"rule": f.summary, "cases": list(f.cases)} for f in FAULTS.values()}
        doc |= {f.name: {"rule": f.summary, "cases": [], "conformant": True} for f in variants}
        doc |= {
            f.name: {"rule": f.summary, "cases": [], "robustness": True, "trigger": f.trigger, "finding": f.finding}
            for f in ROBUSTNESS.values()
        }
        click.echo(json.dumps(doc, indent=2))
        return
    width = max(map(len, ALL_FAULTS))
    for f in FAULTS.values():
        click.echo(f"{f.name:<{width}}  {f.summary}")
    click.echo("\nConformant variants (real devices behave so; every case must still pass):")
    for f in variants:
        click.echo(f"{f.name:<{width}}  {f.summary}")
    click.echo(f"\n{ROBUSTNESS_HEADING}")
    for f in ROBUSTNESS.values():
        click.echo(f"{f.name:<{width}}  {f.summary}")
