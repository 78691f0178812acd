"""Asyncio UDP shell around the sans-IO home agent, and a background runner for tests and suites.

The transport only moves octets: it hands each datagram with its source, the
local address and the wall clock to :meth:`HomeAgent.handle`, sends the reply
from the same socket (so the reply's source port is the request's destination
port, RFC 5944 3.8.3.1) and writes one log line per logged decision. Binding
any 127.x address needs no privileges on Linux.

With ``--tun`` (:mod:`mipcheck.ha.tun`) it also moves the data plane: packets the
stack routes into the TUN device go as MIP Tunnel Data from the same UDP
socket, as IP-in-IP through a raw socket, or (``encapsulations`` listing
"minimal", a binding registered with 'M') minimally encapsulated through a raw
protocol-55 socket, and decapsulated Tunnel Data, IP-in-IP and minimal
encapsulation the core accepts are written to the TUN device (what it drops
is logged, one line each, through the core's rate limit).

It also carries out what a robustness fault's Decision asks for (the core
never does): ``failure == "crash"`` ends the process at once with status 70
after one line on stderr (:func:`serve`; a home agent on a thread of the
tester's own process closes its socket instead), ``"hang"`` stops reading the
socket while the process lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from mipcheck.errors import MipcheckError

from .config import HAConfig
from .core import DENIAL_RULES, DENIED, Decision, HomeAgent
from .faults import check_faults
from .tun import (
    IpipSocket,
    IpipTunnelled,
    MinencSocket,
    MinencTunnelled,
    TunDevice,
    from_ipip,
    from_minenc,
    from_stack,
    to_stack,
)
from .tunnel import TunnelError

LOG_FLUSH_PERIOD = 1.0  # at most this long between log flushes (and between looks at the core's timer)
CRASH_STATUS = 70  # EX_SOFTWARE: the exit status of a home agent a robustness fault crashed (Decision.failure)


def _timestamp(now: float) -> str:
    return _dt.datetime.fromtimestamp(now, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _Clock:
    """UTC timestamps with millisecond precision; the date part is formatted once a second,
    the whole stamp once a millisecond (a busy home agent logs many lines per millisecond)."""

    __slots__ = ("_sec", "_ms", "_prefix", "_stamp")

    def __init__(self) -> None:
        self._sec = -1
        self._ms = -1
        self._prefix = ""
        self._stamp = ""

    def __call__(self, now: float) -> str:
        sec = int(now)
        ms = int((now - sec) * 1000)
        if sec != self._sec:
            self._sec = sec
            self._prefix = _dt.datetime.fromtimestamp(sec, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        elif ms == self._ms:
            return self._stamp
        self._ms = ms
        stamp = self._stamp = f"{self._prefix}.{ms:03d}Z"
        return stamp


def format_record(record: dict[str, Any], as_json: bool) -> str:
    """One log line: JSON, or ``time outcome key=value ... reason="..."`` for people."""
    if as_json:
        return json.dumps(record, separators=(",", ":"))
    parts = [record.get("time", "-"), record.get("outcome") or record.get("event", "-")]
    for key, value in record.items():
        if key in ("time", "outcome", "event", "reason", "code_name"):
            continue
        if value is None:
            continue
        parts.append(key if value is True else f"{key}={value}")
    if "reason" in record:
        parts.append(f"reason={json.dumps(record['reason'])}")
    return " ".join(str(p) for p in parts)


_QUOTED: dict[str, str] = {}


def _quoted(reason: str) -> str:
    q = _QUOTED.get(reason)
    if q is None:
        if len(_QUOTED) > 4096:
            _QUOTED.clear()
        q = _QUOTED[reason] = json.dumps(reason)
    return q


def text_line(d: Decision, stamp: str) -> str:
    """``format_record({"time": stamp, **d.as_log()}, False)`` without building the dict (hot path)."""
    return _text_line(d, stamp)[:-1]


def _text_line(d: Decision, stamp: str) -> str:
    """:func:`text_line` with its line break (what the log writes)."""
    (
        outcome,
        code,
        reason,
        _reply,
        reply_to,
        home,
        source,
        _log,
        suppressed,
        lifetime,
        coa,
        tnc,
        udp,
        _inner,
        failure,
    ) = d
    quoted = _QUOTED.get(reason) or _quoted(reason)
    if (
        code is not None
        and home is not None
        and reply_to is not None
        and coa is not None
        and lifetime is not None
        and not suppressed
    ):
        # An accepted registration: every field but two flags present, one f-string.
        return (
            f"{stamp} {outcome} code={code} home_address={home} source={source[0]}:{source[1]} "
            f"reply_to={reply_to[0]}:{reply_to[1]} care_of_address={coa} lifetime={lifetime}"
            f"{' tnc' if tnc else ''}{' udp_tunnel' if udp else ''} reason={quoted}\n"
        )
    line = f"{stamp} {outcome}"
    if code is not None:
        line += f" code={code}"
    if home is not None:
        line += f" home_address={home}"
    line += f" source={source[0]}:{source[1]}"
    if reply_to is not None:
        line += f" reply_to={reply_to[0]}:{reply_to[1]}"
    if coa is not None:
        line += f" care_of_address={coa}"
    if lifetime is not None:
        line += f" lifetime={lifetime}"
    if tnc:
        line += " tnc"
    if udp:
        line += " udp_tunnel"
    if suppressed:
        line += f" suppressed={suppressed}"
    if failure is not None:
        line += f" failure={failure}"
    if code in DENIAL_RULES and outcome == DENIED:  # the rule the request broke (Decision.violation)
        violation = d.violation
        if violation is not None:
            line += f" rule_id={violation.rule_id} party={violation.party}"
    return f"{line} reason={quoted}\n"


class DecisionLog:
    """Writes decision records to streams and hands them to an optional sink (thread-safe list, tests)."""

    def __init__(
        self, streams: Iterable[TextIO], *, as_json: bool = False, sink: Callable[[dict[str, Any]], None] | None = None
    ) -> None:
        self.streams = list(streams)
        self.as_json = as_json
        self.sink = sink
        self._clock = _Clock()

    def _write(self, line: str) -> None:
        for s in self.streams:
            s.write(line)

    def record(self, record: dict[str, Any], now: float) -> None:
        record = {"time": self._clock(now), **record}
        if self.sink is not None:
            self.sink(record)
        if self.streams:
            self._write(format_record(record, self.as_json) + "\n")

    def decision(self, d: Decision, now: float) -> None:
        if self.sink is not None or self.as_json:
            self.record(d.as_log(), now)
        elif self.streams:
            line = _text_line(d, self._clock(now))
            for s in self.streams:
                s.write(line)

    def flush(self) -> None:
        for s in self.streams:
            with contextlib.suppress(Exception):
                s.flush()


class UDPServer:
    """A non-blocking UDP socket on the event loop that drains up to ``BATCH`` datagrams per wake-up.

    asyncio's own datagram transport reads one datagram per loop iteration
    into a fresh 256 KiB buffer; on loopback that costs about twice the work
    of a registration (docs/benchmarks.md, issue 3). Replies are sent straight
    from the same socket; one that cannot be sent at once is counted and
    dropped, as UDP may.
    """

    BATCH = 64
    MAX_DATAGRAM = 65535
    RCVBUF = 1 << 21

    def __init__(
        self,
        core: HomeAgent,
        log: DecisionLog,
        address: str,
        port: int,
        clock: Callable[[], float] = time.time,
        on_failure: Callable[[Decision], None] | None = None,
        tun: TunDevice | None = None,
        ipip: IpipSocket | None = None,
        minenc: MinencSocket | None = None,
    ) -> None:
        self.core = core
        # ``ha serve --tun``: decapsulated tunnel data goes to this TUN device, and what the stack
        # routes into it is tunnelled to the bindings (mipcheck.ha.tun); None: no data plane (the default).
        self.tun = tun
        self.tun_dropped = 0
        # With the TUN device: the raw IP-in-IP socket (RFC 2003 both ways); None: Tunnel Data only.
        self.ipip = ipip
        # With the TUN device and encapsulations listing "minimal": the raw protocol-55 socket (RFC 2004).
        self.minenc = minenc
        self.log = log
        self.clock = clock
        # What to do when a Decision carries a failure (robustness faults); default: stop reading.
        self.on_failure = on_failure or (lambda _d: self.stop_reading())
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.RCVBUF)
            self.sock.bind((address, port))
        except OSError as exc:
            self.sock.close()
            raise MipcheckError(f"cannot bind {address}:{port}: {exc.strerror or exc}") from None
        self.sock.setblocking(False)
        self.local: tuple[str, int] = self.sock.getsockname()[:2]
        self.send_failures = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        loop.add_reader(self.sock.fileno(), self._readable)
        if self.tun is not None:
            loop.add_reader(self.tun.fileno(), self._tun_readable)
        if self.ipip is not None:
            loop.add_reader(self.ipip.fileno(), self._ipip_readable)
        if self.minenc is not None:
            loop.add_reader(self.minenc.fileno(), self._minenc_readable)

    def stop_reading(self) -> None:
        """Leave the socket open and unread: datagrams queue up and nothing answers them (a hang)."""
        if self._loop is not None:
            self._loop.remove_reader(self.sock.fileno())
            if self.tun is not None:
                self._loop.remove_reader(self.tun.fileno())
            if self.ipip is not None:
                self._loop.remove_reader(self.ipip.fileno())
            if self.minenc is not None:
                self._loop.remove_reader(self.minenc.fileno())
            self._loop = None

    def close(self) -> None:
        self.stop_reading()
        self.sock.close()
        if self.tun is not None:
            self.tun.close()
        if self.ipip is not None:
            self.ipip.close()
        if self.minenc is not None:
            self.minenc.close()

    def _tun_readable(self) -> None:
        """Packets the stack routed into the TUN device: tunnel each to its home address's binding."""
        assert self.tun is not None
        for _ in range(self.BATCH):
            packet = self.tun.read()
            if not packet:  # None: nothing now; b"": the device is gone
                return
            out = from_stack(self.core, packet)
            if isinstance(out, TunnelError):
                self.tun_dropped += 1  # no binding (yet): dropped, as a router without a route does
                continue
            if isinstance(out, IpipTunnelled):
                if self.ipip is None or not self.ipip.send(out):
                    self.tun_dropped += 1
                continue
            if isinstance(out, MinencTunnelled):
                if self.minenc is None or not self.minenc.send(out):
                    self.tun_dropped += 1
                continue
            try:
                self.sock.sendto(out.data, out.endpoint)
            except OSError:
                self.send_failures += 1

    def _ipip_readable(self) -> None:
        """IP-in-IP read whole from the raw socket: to the stack when the core accepts it, else logged."""
        assert self.ipip is not None
        self._tunnel_readable(self.ipip, from_ipip)

    def _minenc_readable(self) -> None:
        """Minimal encapsulation read whole from the raw protocol-55 socket: as IP-in-IP."""
        assert self.minenc is not None
        self._tunnel_readable(self.minenc, from_minenc)

    def _tunnel_readable(
        self, sock: IpipSocket | MinencSocket, decide: Callable[[HomeAgent, bytes, float], Decision]
    ) -> None:
        for _ in range(self.BATCH):
            packet = sock.read()
            if packet is None:
                return
            if not packet:
                continue
            now = self.clock()
            d = decide(self.core, packet, now)
            inner = to_stack(d)
            if inner is not None and self.tun is not None:
                self.tun.write(inner)
            if d.log:
                self.log.decision(d, now)

    def _readable(self) -> None:
        recvfrom, sendto, handle, clock, local = (
            self.sock.recvfrom,
            self.sock.sendto,
            self.core.handle,
            self.clock,
            self.local,
        )
        log, size = self.log.decision, self.MAX_DATAGRAM
        for _ in range(self.BATCH):
            try:
                data, src = recvfrom(size)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an ICMP error queued on the socket: nothing to read
            now = clock()
            d = handle(data, src, local, now)
            if d.reply is not None:
                try:
                    sendto(d.reply, d.reply_to)
                except OSError:
                    self.send_failures += 1
            elif d.failure is not None:  # a robustness fault went off: crash or hang, as the core reports
                if d.log:
                    log(d, now)
                self.on_failure(d)
                return
            elif d.inner is not None and self.tun is not None:
                packet = to_stack(d)
                if packet is not None:
                    self.tun.write(packet)
            if d.log:
                log(d, now)


async def serve(
    config: HAConfig,
    faults: Iterable[str] = (),
    *,
    log: DecisionLog,
    stop: asyncio.Event,
    on_ready: Callable[[str, int, HomeAgent], None] | None = None,
    clock: Callable[[], float] = time.time,
    own_process: bool = True,
    tun: str | None = None,
) -> HomeAgent:
    """Run the home agent until ``stop`` is set; returns the core (for inspection).

    A Decision whose ``failure`` is "hang" stops reading the socket (the loop goes on, so ``stop`` still ends
    it); "crash" ends the process at once with status :data:`CRASH_STATUS`. Each is told in one line on stderr.
    ``own_process=False`` (a home agent on a thread of another program, :class:`BackgroundHomeAgent`): a crash
    closes the socket and returns instead, and nothing is written to stderr.
    ``tun``: the name of a TUN device for the data plane (:mod:`mipcheck.ha.tun`), with a raw IP-in-IP socket
    bound to ``config.address`` (and a raw protocol-55 socket when ``config.encapsulations`` lists "minimal");
    None (the default): none.
    """
    core = HomeAgent(config, faults)
    device = TunDevice(tun) if tun is not None else None
    ipip = minenc = None
    try:
        ipip = IpipSocket(config.address) if device is not None else None
        if device is not None and "minimal" in config.encapsulations:
            minenc = MinencSocket(config.address)
    except BaseException:
        if device is not None:
            device.close()
        if ipip is not None:
            ipip.close()
        raise

    def carry_out(d: Decision) -> None:
        if d.failure == "crash":
            if not own_process:
                server.close()
                stop.set()
                return
            log.flush()
            sys.stderr.write(f"mipcheck ha: crash: {d.reason}; exiting with status {CRASH_STATUS}\n")
            sys.stderr.flush()
            os._exit(CRASH_STATUS)
        server.stop_reading()
        if own_process:
            where = "{}:{}".format(*server.local)
            sys.stderr.write(f"mipcheck ha: hang: {d.reason}; no longer reading {where}\n")
            sys.stderr.flush()

    try:
        server = UDPServer(
            core, log, config.address, config.port, clock, carry_out, tun=device, ipip=ipip, minenc=minenc
        )
    except BaseException:
        if device is not None:
            device.close()
        if ipip is not None:
            ipip.close()
        if minenc is not None:
            minenc.close()
        raise
    server.start(asyncio.get_running_loop())
    address, port = server.local
    try:
        if on_ready is not None:
            on_ready(address, port, core)
        while not stop.is_set():
            # Sleep until the core's next timer (a binding's expiry), not on a fixed poll; a binding
            # added meanwhile with an earlier expiry is expired lazily by handle() and logged here
            # within LOG_FLUSH_PERIOD.
            due = core.next_expiry()
            wait = LOG_FLUSH_PERIOD if due is None else min(LOG_FLUSH_PERIOD, max(0.0, due - clock()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            now = clock()
            for b in core.expire(now):
                log.record(
                    {"event": "expired", "home_address": b.home_address, "care_of_address": b.care_of_address}, now
                )
            log.flush()
    finally:
        server.close()
        log.flush()
    return core


class BackgroundHomeAgent:
    """A home agent on its own thread and event loop; a context manager.

    ``address``/``port`` are the bound ones (config port 0 picks a free port),
    ``decisions`` lists ``Decision.as_log()`` records of every logged decision
    (each with a ``time``), ``log_path`` is ``config.log_file``.
    """

    def __init__(
        self, config: HAConfig, faults: Iterable[str] = (), *, log_json: bool = False, streams: Iterable[TextIO] = ()
    ) -> None:
        self.config = config
        self.faults = check_faults(faults)
        self.log_json = log_json
        self.log_path = config.log_file
        self.address: str = config.address
        self.port: int = config.port
        self.decisions: list[dict[str, Any]] = []
        self.core: HomeAgent | None = None
        self._streams = list(streams)
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._logfile: TextIO | None = None

    # ---- lifecycle
    def start(self, timeout: float = 10.0) -> BackgroundHomeAgent:
        if self._thread is not None:
            return self
        if self.log_path:
            self._logfile = open(self.log_path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed in stop()
        self._thread = threading.Thread(target=self._run, name=f"mipcheck-ha-{self.config.address}", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise MipcheckError("home agent did not start in time")
        if self._error is not None:
            err = self._error
            self.stop()
            raise err
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
        if self._logfile is not None:
            self._logfile.close()
            self._logfile = None

    def __enter__(self) -> BackgroundHomeAgent:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- views
    def decisions_snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.decisions)

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0) -> dict[str, Any] | None:
        """First logged decision matching ``predicate``, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for rec in self.decisions_snapshot():
                if predicate(rec):
                    return rec
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)

    def call(self, fn: Callable[[HomeAgent], Any], timeout: float = 5.0) -> Any:
        """Run ``fn(core)`` on the home agent's loop (the core is not thread-safe)."""
        if self._loop is None or self.core is None:
            raise MipcheckError("home agent is not running")
        core = self.core

        async def _call() -> Any:
            return fn(core)

        return asyncio.run_coroutine_threadsafe(_call(), self._loop).result(timeout)

    # ---- thread body
    def _sink(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.decisions.append(record)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        streams = list(self._streams)
        if self._logfile is not None:
            streams.append(self._logfile)
        log = DecisionLog(streams, as_json=self.log_json, sink=self._sink)

        def ready(address: str, port: int, core: HomeAgent) -> None:
            self.address, self.port, self.core = address, port, core
            self._ready.set()

        await serve(self.config, self.faults, log=log, stop=self._stop, on_ready=ready, own_process=False)


def run_home_agent(config: HAConfig, faults: Iterable[str] = (), *, log_json: bool = False) -> BackgroundHomeAgent:
    """Start a home agent in a background thread; use as ``with run_home_agent(cfg) as ha:``."""
    return BackgroundHomeAgent(config, faults, log_json=log_json).start()
