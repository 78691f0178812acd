"""The built-in i-HA as a fuzz target: ``python -m mipcheck.fuzz.lab`` serves it on loopback in its own process.

The same home agent, keys and profile as :class:`mipcheck.builtin.BuiltinLab`
with two differences the fuzzer needs:

* its own process, so the home agent does not share the fuzzer's GIL (about
  twice the cases per second) and a crash of the home agent is a crash of a
  process, found and restarted like any ``--target-cmd``;
* its replay window opened (any timestamp, in any order): cases carry
  identifications derived from (seed, index), not from the clock, and must
  still reach the checks behind the Identification check. ``--strict-replay``
  keeps the reference home agent's own window instead (RFC 5944 5.7: within
  7 s of its clock and greater than the last one accepted per home address),
  as a real device has it: the target of ``--identification fresh``.

It prints ``READY <address> <port>`` on stdout once bound and serves until
SIGTERM or SIGINT. ``python -m mipcheck.fuzz.lab [PORT] [--fault NAME]...
[--strict-replay]`` serves it with fault profiles (``mipcheck ha faults``);
the robustness ones crash it (exit status 70), hang it or make it answer
wrongly after one specific malformed input, so that a campaign has something
to find (``mipcheck fuzz run --fault NAME``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import sys
from collections.abc import Iterable

from mipcheck.builtin import builtin_profile, ha_config, mobile_nodes

OPEN_REPLAY_SKEW = float(1 << 33)  # seconds: every 64-bit NTP timestamp is "fresh"


def profile_for(address: str, port: int, reply_timeout: float = 1.0):
    """The test profile of a lab home agent at ``address:port``."""
    return builtin_profile(address, port, mobile_nodes(), reply_timeout=reply_timeout)


def config(port: int = 0, *, strict_replay: bool = False):
    """The lab home agent's configuration; ``strict_replay``: the default replay window, not an open one."""
    if strict_replay:
        return dataclasses.replace(ha_config(mobile_nodes(), port=port), log_rate=0.001, log_burst=1)
    cfg = ha_config(mobile_nodes(), replay_strict=False, port=port)
    return dataclasses.replace(cfg, replay_skew=OPEN_REPLAY_SKEW, log_rate=0.001, log_burst=1)


async def _serve(port: int, faults: Iterable[str] = (), strict_replay: bool = False) -> None:
    from mipcheck.ha.server import DecisionLog, serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def ready(address: str, bound: int, _core) -> None:
        print(f"READY {address} {bound}", flush=True)

    await serve(config(port, strict_replay=strict_replay), faults, log=DecisionLog([]), stop=stop, on_ready=ready)


def main(argv: list[str] | None = None) -> int:
    from mipcheck.errors import ConfigError
    from mipcheck.ha.faults import check_faults

    parser = argparse.ArgumentParser(prog="python -m mipcheck.fuzz.lab", description=__doc__.splitlines()[0])
    parser.add_argument("port", nargs="?", type=int, default=0, help="UDP port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--fault", action="append", default=[], metavar="NAME", help="see `mipcheck ha faults`")
    parser.add_argument(
        "--strict-replay",
        action="store_true",
        help="keep the default replay window (7 s, strictly increasing) instead of opening it",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        faults = check_faults(args.fault)
    except ConfigError as exc:
        print(f"mipcheck: error: {exc}", file=sys.stderr)
        return 2
    asyncio.run(_serve(args.port, faults, args.strict_replay))
    return 0


if __name__ == "__main__":
    sys.exit(main())
