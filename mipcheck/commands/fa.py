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
@click.option(
    "--link",
    "link",
    default=None,
    metavar="IFACE",
    help="Serve a real link (root): advertisements broadcast on IFACE, solicitations read there, IP-in-IP through "
    "raw sockets, deliveries out of IFACE with a host route per visitor (the config's link and upstream are not used).",
)
@click.option(
    "--tun",
    default=None,
    metavar="NAME",
    help="With --link: reverse tunnelling (RFC 3024): a policy rule per 'T' visitor routes its packets from IFACE into "
    "TUN device NAME, and they go IP-in-IP to its home agent.",
)
@click.option(
    "--table",
    type=click.IntRange(1, 32765),
    default=434,
    show_default=True,
    help="With --tun: the routing table (default dev NAME) and the preference of the reverse-tunnel rules "
    "(not 253-255: the kernel's default, main and local tables).",
)
def serve(
    config_path: str,
    faults: tuple[str, ...],
    log_json: bool,
    address: str | None,
    port: int | None,
    link: str | None,
    tun: str | None,
    table: int,
) -> None:
    """Advertise, relay registrations and deliver tunnelled data until SIGINT or SIGTERM; one log line per decision.

    Without --link everything stays on loopback: advertisements go as UDP payloads (the whole IPv4/ICMP packet)
    to the config's `link`, a stand-in for the link's broadcast, since ICMP broadcast needs raw sockets. With
    --link IFACE they are broadcast on IFACE (root); the host's IP forwarding stays the host's job (a warning
    line says when it is off). What the shell installs (host routes, rules, the table's default route) is
    removed when the visitor goes and when the server stops.
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
    if tun is not None and link is None:
        raise ConfigError("--tun", "needs --link IFACE: reverse tunnelling from a TUN device is link mode")
    if table in (253, 254, 255):
        raise ConfigError("--table", f"{table} is one of the kernel's own tables (default, main, local)")
    asyncio.run(_serve(config, check_faults(faults), log_json, link=link, tun=tun, table=table))


async def _serve(
    config: Any,
    faults: frozenset[str],
    log_json: bool,
    *,
    link: str | None = None,
    tun: str | None = None,
    table: int = 434,
) -> None:
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
                "link": link if link is not None else "{}:{}".format(*config.link) if config.link else "none",
                **({"tun": tun, "table": table} if tun is not None else {}),
                "flags": config.flags,
                "faults": ",".join(sorted(faults)) or "none",
            },
            time.time(),
        )
        log.flush()

    try:
        core = await serve(config, faults, log=log, stop=stop, on_ready=ready, link=link, tun=tun, table=table)
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
