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

On a real link (``serve(..., link=IFACE, tun=NAME)``, ``mipcheck fa serve
--link IFACE [--tun NAME]``, root) the same core runs with
:func:`mipcheck.fa.link.link_config`, and :class:`mipcheck.fa.link.LinkShell`
carries its packets instead: advertisements broadcast on IFACE, solicitations
read there, IP-in-IP through a raw socket, deliveries out of IFACE, a 'T'
visitor's packets read from the TUN device; :func:`mipcheck.fa.link.route`
says which way each datagram goes, :func:`mipcheck.fa.link.plan` which host
routes and policy rules the visitors need (installed before the datagrams of
the same step leave, removed when the visitor goes and when the server stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import json
import socket
import struct
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from mipcheck.errors import MipcheckError

from .config import FAConfig
from .core import Decision, ForeignAgent
from .link import (
    DEFAULT_TABLE,
    IP_PKTINFO,
    Dropped,
    LinkOut,
    LinkShell,
    MinencOut,
    TunnelOut,
    from_link,
    from_tun,
    from_tunnel,
    host_warnings,
    link_config,
    plan,
    route,
)

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
        self,
        core: ForeignAgent,
        log: DecisionLog,
        address: str,
        port: int,
        clock: Callable[[], float] = time.time,
        link: LinkShell | None = None,
    ) -> None:
        self.core = core
        self.log = log
        self.clock = clock
        self.link = link  # link mode (mipcheck.fa.link); None: everything over the UDP socket (loopback)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((address, port))
            if link is not None:  # the arrival interface of each datagram: replies to the link leave through it
                self.sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
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
        if self.link is not None:
            for fd, what in self.link.readers():
                loop.add_reader(fd, self._link_readable, what)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.sock.fileno())
            if self.link is not None:
                for fd, _what in self.link.readers():
                    self._loop.remove_reader(fd)
            self._loop = None
        self.sock.close()

    def _receive(self) -> tuple[bytes, tuple[str, int]]:
        if self.link is None:
            data, src = self.sock.recvfrom(self.MAX_DATAGRAM)
            return data, src
        data, ancillary, _flags, src = self.sock.recvmsg(self.MAX_DATAGRAM, socket.CMSG_SPACE(12))
        for level, kind, value in ancillary:
            if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(value) >= 4:
                self.link.learned(src, struct.unpack_from("@i", value)[0])  # struct in_pktinfo: ipi_ifindex first
        return data, src

    def _readable(self) -> None:
        for _ in range(self.BATCH):
            try:
                data, src = self._receive()
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue  # an ICMP error queued on the socket: nothing to read
            now = self.clock()
            self.core.receive_datagram(data, src, self.local, now)
            self.pump(now)

    def _link_readable(self, what: str) -> None:
        """Link mode: a solicitation on IFACE, IP-in-IP for a care-of address, or a 'T' visitor's own packet."""
        link = self.link
        assert link is not None
        for _ in range(self.BATCH):
            if what == "tun":
                assert link.tun is not None
                packet = link.tun.read()
            else:
                sock = {"link": link.icmp, "tunnel": link.ipip, "minenc": link.minenc}[what]
                assert sock is not None
                packet = link.read(sock)
            if packet is None:
                return
            if not packet:
                continue
            if what == "link":
                found = from_link(packet)
                if found is None:
                    continue  # other ICMP on the link (our own advertisements looped back): not the core's
            elif what in ("tunnel", "minenc"):
                found = from_tunnel(packet)
            else:
                found = from_tun(self.core, packet)
                if found is None:
                    continue  # not IPv4: the host's own IPv6 chatter on the device
            now = self.clock()
            self.core.receive_datagram(found[0], found[1], self.local, now)
            self.pump(now)

    def pump(self, now: float) -> None:
        """Send what the core queued and log what it decided (link mode: routes and rules first)."""
        out = self.core.datagrams_to_send(now)
        while (d := self.core.next_event()) is not None:
            self.log.decision(d, now)
        if self.link is not None:
            for record in self.link.plumbing.sync(plan(self.core, self.link.tun is not None)):
                self.log.record(record, now)
        for data, _local, dst in out:
            if self.link is None:
                self._send_udp(data, dst, on_link=False)
                continue
            where = route(self.core, data, dst)
            if isinstance(where, LinkOut):
                self.link.send_link(where)
            elif isinstance(where, TunnelOut):
                self.link.send_tunnel(where)
            elif isinstance(where, MinencOut):
                self.link.send_minenc(where)
            elif isinstance(where, Dropped):
                record = {"outcome": "dropped", "kind": "link", "home_address": where.home_address}
                self.log.record({**record, "reason": where.reason}, now)
            else:
                self._send_udp(where.data, where.destination, on_link=self.link.on_link(where.destination))

    def _send_udp(self, data: bytes, dst: tuple[str, int], *, on_link: bool) -> None:
        try:
            if on_link and self.link is not None:
                self.sock.sendmsg([data], self.link.pktinfo(), 0, dst)
            else:
                self.sock.sendto(data, dst)
        except OSError:
            self.send_failures += 1


async def serve(
    config: FAConfig,
    faults: Iterable[str] = (),
    *,
    log: DecisionLog,
    stop: asyncio.Event,
    on_ready: Callable[[str, int, ForeignAgent], None] | None = None,
    clock: Callable[[], float] = time.time,
    link: str | None = None,
    tun: str | None = None,
    table: int = DEFAULT_TABLE,
) -> ForeignAgent:
    """Run the foreign agent until ``stop`` is set; returns the core (for inspection).

    ``link``: the interface of the link (link mode, :mod:`mipcheck.fa.link`; root); ``tun``: with it, the TUN
    device 'T' visitors' packets are routed into by policy rules in routing table ``table``. Whatever the
    shell installed is removed before this returns, also after an error.
    """
    if tun is not None and link is None:
        raise MipcheckError("--tun needs --link: reverse tunnelling from a TUN device is link mode")
    shell = LinkShell(link, tun, table, minimal="M" in config.flags) if link is not None else None
    try:
        if shell is not None:
            config = link_config(config)
        core = ForeignAgent(config, faults, start=clock())
        server = ForeignAgentServer(core, log, config.address, config.port, clock, link=shell)
    except BaseException:
        if shell is not None:
            shell.close()
        raise
    try:
        if shell is not None:
            now = clock()
            for reason in host_warnings(shell.iface):
                log.record({"event": "warning", "reason": reason}, now)
            for record in shell.plumbing.start():
                log.record(record, now)
        server.start(asyncio.get_running_loop())
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
        if shell is not None:
            for record in shell.close():
                log.record(record, clock())
        log.flush()
    return core
