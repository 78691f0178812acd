"""Asyncio UDP shell around the sans-IO foreign agent.

The shell only moves octets and keeps time: it hands each datagram with its
source, the local address and the wall clock to
:meth:`ForeignAgent.receive_datagram`, sends what
:meth:`~ForeignAgent.datagrams_to_send` returns from the same socket (so a
relayed reply leaves from the port the request arrived on, RFC 5944 3.7.3.2,
and a relayed request's replies come back to it), sleeps until
:meth:`~ForeignAgent.get_timer` and writes one log line per decision.

One socket on ``config.address``/``config.port`` carries everything, the
"link" included. Agent advertisements are ICMP (RFC 5944 2.1) and a real
link's broadcast needs a raw socket and privileges; here each advertisement
(the whole IPv4 packet, TTL 1, addressed to 255.255.255.255 or 224.0.0.1)
is the payload of a UDP datagram to ``config.link``, a loopback address and
port where a tester or a mobile node listens. Solicitations, IP-in-IP
packets for a care-of address and a visitor's own packets arrive the same
way: an IPv4 packet as a UDP payload. Binding any 127.x address needs no
privileges on Linux; port 434 does, so labs use another (or 0: any free port).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import json
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from mipcheck.errors import MipcheckError

from .config import FAConfig
from .core import Decision, ForeignAgent

LOG_FLUSH_PERIOD = 1.0  # at most this long between log flushes


def format_record(record: dict[str, Any], as_json: bool) -> str:
    """One log line: JSON, or ``time outcome key=value ... reason="..."`` for people."""
    if as_json:
        return json.dumps(record, separators=(",", ":"))
    parts = [str(record.get("time", "-")), str(record.get("outcome") or record.get("event", "-"))]
    for key, value in record.items():
        if key in ("time", "outcome", "event", "reason", "code_name") or value is None:
            continue
        parts.append(key if value is True else f"{key}={value}")
    if "reason" in record:
        parts.append(f"reason={json.dumps(record['reason'])}")
    return " ".join(parts)


class DecisionLog:
    """Writes records to streams (text or JSON lines); each gets a UTC timestamp."""

    def __init__(self, streams: Iterable[TextIO], *, as_json: bool = False) -> None:
        self.streams = list(streams)
        self.as_json = as_json

    def record(self, record: dict[str, Any], now: float) -> None:
        stamp = _dt.datetime.fromtimestamp(now, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        line = format_record({"time": stamp, **record}, self.as_json) + "\n"
        for s in self.streams:
            s.write(line)

    def decision(self, d: Decision, now: float) -> None:
        self.record(d.as_log(), now)

    def flush(self) -> None:
        for s in self.streams:
            with contextlib.suppress(Exception):
                s.flush()


class ForeignAgentServer:
    """The foreign agent's UDP socket on the event loop."""

    BATCH = 64
    MAX_DATAGRAM = 65535

    def __init__(
        self, core: ForeignAgent, log: DecisionLog, address: str, port: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.core = core
        self.log = log
        self.clock = clock
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((address, port))
        except OSError as exc:
            self.sock.close()
            raise MipcheckError(f"cannot bind {address}:{port}: {exc.strerror or exc}") from None
        self.sock.setblocking(False)
        self.local: tuple[str, int] = self.sock.getsockname()[:2]
        core.local = self.local
        self.send_failures = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        loop.add_reader(self.sock.fileno(), self._readable)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.sock.fileno())
            self._loop = None
        self.sock.close()

    def _readable(self) -> None:
        for _ in range(self.BATCH):
            try:
                data, src = self.sock.recvfrom(self.MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue  # an ICMP error queued on the socket: nothing to read
            now = self.clock()
            self.core.receive_datagram(data, src, self.local, now)
            self.pump(now)

    def pump(self, now: float) -> None:
        """Send what the core queued and log what it decided."""
        for data, _local, dst in self.core.datagrams_to_send(now):
            try:
                self.sock.sendto(data, dst)
            except OSError:
                self.send_failures += 1
        while (d := self.core.next_event()) is not None:
            self.log.decision(d, now)


async def serve(
    config: FAConfig,
    faults: Iterable[str] = (),
    *,
    log: DecisionLog,
    stop: asyncio.Event,
    on_ready: Callable[[str, int, ForeignAgent], None] | None = None,
    clock: Callable[[], float] = time.time,
) -> ForeignAgent:
    """Run the foreign agent until ``stop`` is set; returns the core (for inspection)."""
    core = ForeignAgent(config, faults, start=clock())
    server = ForeignAgentServer(core, log, config.address, config.port, clock)
    server.start(asyncio.get_running_loop())
    try:
        if on_ready is not None:
            on_ready(*server.local, core)
        while not stop.is_set():
            due = core.get_timer()
            wait = LOG_FLUSH_PERIOD if due is None else min(LOG_FLUSH_PERIOD, max(0.0, due - clock()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            now = clock()
            due = core.get_timer()
            if due is not None and due <= now:
                core.handle_timer(now)
            server.pump(now)
            log.flush()
    finally:
        server.close()
        log.flush()
    return core
