"""The built-in i-HA as a fuzz target: ``python -m mipcheck.fuzz.lab`` serves it on loopback in its own process.

The same home agent, keys and profile as :class:`mipcheck.builtin.BuiltinLab`
with two differences the fuzzer needs:

* its own process, so the home agent does not share the fuzzer's GIL (about
  twice the cases per second) and a crash of the home agent is a crash of a
  process, found and restarted like any ``--target-cmd``;
* its replay window opened (any timestamp, in any order): cases carry
  identifications derived from (seed, index), not from the clock, and must
  still reach the checks behind the Identification check.

It prints ``READY <address> <port>`` on stdout once bound and serves until
SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import sys

from mipcheck.builtin import builtin_profile, ha_config, mobile_nodes

OPEN_REPLAY_SKEW = float(1 << 33)  # seconds: every 64-bit NTP timestamp is "fresh"


def profile_for(address: str, port: int, reply_timeout: float = 1.0):
    """The test profile of a lab home agent at ``address:port``."""
    return builtin_profile(address, port, mobile_nodes(), reply_timeout=reply_timeout)


def config(port: int = 0):
    cfg = ha_config(mobile_nodes(), replay_strict=False, port=port)
    return dataclasses.replace(cfg, replay_skew=OPEN_REPLAY_SKEW, log_rate=0.001, log_burst=1)


async def _serve(port: int) -> None:
    from mipcheck.ha.server import DecisionLog, serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def ready(address: str, bound: int, _core) -> None:
        print(f"READY {address} {bound}", flush=True)

    await serve(config(port), (), log=DecisionLog([]), stop=stop, on_ready=ready)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    asyncio.run(_serve(int(args[0]) if args else 0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
