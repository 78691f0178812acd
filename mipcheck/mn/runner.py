"""``mipcheck mn run``: the reference mobile node over real UDP sockets, moved through a Unix control socket.

Why a thin shell: everything the MN suite judges is the sans-IO
:class:`~mipcheck.mn.node.ReferenceMobileNode`; this only holds one UDP
socket per binding (exactly (care-of address, port), rebound after every
move), sleeps until the node's next timer, and answers one JSON line per
control connection (``mipcheck mn ctl``: ``move``, ``status``). Time is the
wall clock (Identifications are timestamps, RFC 5944 5.7). Events go to the
terminal (rich, one line each) and optionally to a JSON-lines log; neither
ever holds a key.

A robustness fault (:mod:`mipcheck.mn.robustness`, fuzz targets only) that
goes off in the node is carried out here: ``crash`` ends the process at once
with status 70, ``hang`` stops reading the sockets, the timers and every
move (the control socket still answers ``status``, and refuses ``move``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import json
import os
import signal
import socket
import stat
import struct
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

from mipcheck.errors import MipcheckError

from .control import CONTROL_TIMEOUT, ask, default_socket_path
from .detection_events import (
    ClientEvent,
    DataGated,
    DataResumed,
    DetectionEvent,
    DetectionStarted,
    Inside,
    LinkChanged,
    ModeChanged,
    Outside,
    VpnReleased,
    VpnRequested,
)
from .detection_table import Mode
from .host_vpn import HostVpn
from .node import AgentHeard, DataPlane, Moved, ReferenceMobileNode
from .robustness import CRASH, CRASH_STATUS, RobustnessFailure
from .tun import TunDevice, TunMobileNode, bring_up

Address = tuple[str, int]
MAX_REQUEST = 64 * 1024  # one control line
VPN_RETRY = 5.0  # seconds between attempts to bring the host's VPN client up
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # linux/in.h; not every Python build exports it
ETH_P_IP = 0x0800


# ---------------------------------------------------------------- events for people and for logs


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__name__, **_fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _fields(event: Any) -> dict[str, Any]:
    """The JSON-able fields of an event; octets (replies, packets) are left out."""
    return {
        f.name: _plain(getattr(event, f.name))
        for f in dataclasses.fields(event)
        if not isinstance(getattr(event, f.name), bytes | bytearray)
    }


def event_record(event: DetectionEvent) -> dict[str, Any]:
    return {"event": type(event).__name__, **_fields(event)}


def describe(event: DetectionEvent) -> str:
    """One line for people."""
    e: Any = event
    if isinstance(e, Moved):
        where = f" ({e.care_of_address})" if e.care_of_address else ""
        return f"moved to {e.network}{where}"
    if isinstance(e, LinkChanged):
        return f"link {'up with ' + e.care_of_address if e.care_of_address else 'down'}"
    if isinstance(e, ModeChanged):
        return f"mode {e.old.value} -> {e.new.value} ({e.stimulus.value})"
    if isinstance(e, DetectionStarted):
        return f"detection from {e.local[0]}:{e.local[1]}, asking {', '.join(e.home_agents)}"
    if isinstance(e, ClientEvent):
        inner = e.event
        detail = ", ".join(
            f"{k}={v}" for k, v in _fields(inner).items() if k not in ("interface", "home_agent", "at", "warnings")
        )
        return f"{e.role.value}: {type(inner).__name__} from {inner.home_agent} ({detail})"
    if isinstance(e, Inside):
        return "INSIDE" + (" (late i-HA reply)" if e.late else "")
    if isinstance(e, Outside):
        return f"OUTSIDE: {e.reason}"
    if isinstance(e, VpnRequested):
        return f"VPN asked for, from {e.x_home_address}"
    if isinstance(e, AgentHeard):
        said = "attaching through it" if e.used else f"not used: {e.why_not}"
        return (
            f"agent advertisement from {e.agent} (care-of {', '.join(e.care_of_addresses) or '-'}, {e.flags}): {said}"
        )
    if isinstance(e, DataGated):
        return f"data gated: {e.reason}"
    if isinstance(e, DataResumed):
        return f"data flows ({e.decision.value})"
    if isinstance(e, DataPlane):
        parts = [e.kind, e.path or "", f"id={e.identifier} seq={e.sequence}" if e.identifier is not None else ""]
        return " ".join(p for p in (*parts, e.detail) if p)
    fields = ", ".join(f"{k}={v}" for k, v in _fields(e).items() if k not in ("interface", "at"))
    return f"{type(e).__name__}" + (f": {fields}" if fields else "")


class EventLog:
    """Where events go: rich lines (unless quiet) and JSON lines (``--log-json``); errors always to stderr."""

    def __init__(self, *, quiet: bool = False, json_out: IO[str] | None = None, human_to_stderr: bool = False) -> None:
        from rich.console import Console

        self.quiet = quiet
        self.json_out = json_out
        self.console = Console(stderr=human_to_stderr, highlight=False, soft_wrap=True)
        self.errors = Console(stderr=True, highlight=False, soft_wrap=True)

    def event(self, event: DetectionEvent) -> None:
        if self.json_out is not None:
            self.json_out.write(json.dumps(event_record(event), sort_keys=False) + "\n")
            self.json_out.flush()
        if not self.quiet:
            stamp = time.strftime("%H:%M:%S", time.localtime(event.at)) + f".{int(event.at * 1000) % 1000:03d}"
            style = "bold" if isinstance(event, Inside | Outside | Moved) else None
            self.console.print(f"{stamp} {event.interface} {describe(event)}", style=style, markup=False)

    def error(self, message: str) -> None:
        self.errors.print(f"mipcheck mn run: {message}", style="red", markup=False)


# ---------------------------------------------------------------- the shell


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, runner: NodeRunner, place: Address) -> None:
        self.runner, self.place = runner, place

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.runner.received(data, (addr[0], addr[1]), self.place)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP port unreachable and the like: the node's timers deal with silence


def bind_udp(place: Address, device: str | None = None) -> socket.socket:
    """A UDP socket bound to exactly ``place`` (SO_REUSEADDR, so a quick rebind after a move works).

    ``device``: also bound to that interface (a registration through a foreign agent leaves from the home
    address on the agent's link, past any policy rule that sends the home address's packets elsewhere).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if device is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())
        sock.bind(place)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class NodeRunner:
    """Runs ``node`` until SIGINT/SIGTERM: sockets, timers, the control socket at ``socket_path``."""

    def __init__(
        self,
        node: ReferenceMobileNode,
        socket_path: str,
        log: EventLog,
        clock: Callable[[], float] = time.time,
        tun: TunDevice | None = None,
        host_vpn: HostVpn | None = None,
    ) -> None:
        """``tun`` (``mn run --tun``): the node is a :class:`~mipcheck.mn.tun.TunMobileNode` and its user data
        comes from and goes to this TUN device; None (the default): the echo-only data plane.

        ``host_vpn`` (``mn run --host-vpn``): the node was made with ``host_vpn=True``; this runner brings the
        host's IPsec client up and down as the node asks (:mod:`mipcheck.mn.host_vpn`)."""
        self.node = node
        self.tun = tun
        self.host_vpn = host_vpn
        self._vpn_tasks: dict[str, asyncio.Task[None]] = {}
        self._links: dict[str, socket.socket] = {}  # interface -> raw ICMP socket on its link (foreign agents)
        self._ipip: socket.socket | None = None  # raw IP-in-IP socket (the node's ``ipip``)
        self._delivered: dict[str, socket.socket] = {}  # interface -> AF_PACKET socket: what an agent delivers
        self._tasks: set[asyncio.Task[None]] = set()
        self.socket_path = socket_path
        self.log = log
        self.clock = clock
        self._transports: dict[Address, asyncio.DatagramTransport] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.hung: str | None = None  # why a robustness fault hung the node

    # ---- the node's side
    def received(self, data: bytes, src: Address, local: Address) -> None:
        if self.hung:
            return
        with self._guard(f"datagram from {src[0]}:{src[1]}"):
            self.node.receive_datagram(data, src, local, self.clock())
        self._pump()

    @contextlib.contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """A bug in the node is one error line, not a traceback, and the runner goes on."""
        try:
            yield
        except RobustnessFailure as failure:
            self.carry_out(failure)
        except Exception as exc:
            self.log.error(f"{what}: {type(exc).__name__}: {exc}")

    def carry_out(self, failure: RobustnessFailure) -> None:
        """A planted robustness bug went off: exit at once (crash) or stop reading, sending and moving (hang)."""
        if failure.failure == CRASH:
            self.log.error(f"crash: {failure.reason}; exiting with status {CRASH_STATUS}")
            sys.stderr.flush()
            os._exit(CRASH_STATUS)
        self.hung = failure.reason
        self.log.error(f"hang: {failure.reason}; no longer reading, sending or moving")
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for transport in self._transports.values():
            transport.pause_reading()

    def _pump(self) -> None:
        """Send what the node has, log its events, sleep until its next timer."""
        if self.hung:
            return
        now = self.clock()
        for data, local, dst in self.node.datagrams_to_send(now):
            transport = self._transports.get(local)
            if transport is None or transport.is_closing():
                self.log.error(f"no socket at {local[0]}:{local[1]} for a datagram to {dst[0]}:{dst[1]}")
                continue
            transport.sendto(data, dst)
        if self.tun is not None and isinstance(self.node, TunMobileNode):
            for packet in self.node.packets_for_stack():
                self.tun.write(packet)
        for interface, packet in self.node.link_packets():
            self._send_on_link(interface, packet)
        for inner, source, destination in self.node.ipip_to_send():
            self._send_ipip(inner, source, destination)
        while (ev := self.node.next_event()) is not None:
            self.log.event(ev)
            if self.host_vpn is not None and isinstance(ev, VpnRequested | VpnReleased):
                self._vpn_task(ev.interface, isinstance(ev, VpnRequested))
        self._schedule()

    # ---- the host's VPN client (--host-vpn)
    def _vpn_task(self, interface: str, wanted: bool) -> None:
        if self._loop is None:
            return
        running = self._vpn_tasks.get(interface)
        if running is not None and not running.done():
            running.cancel()
        work = self._vpn_up(interface) if wanted else self._vpn_down(interface)
        self._vpn_tasks[interface] = self._loop.create_task(work)

    async def _vpn_up(self, interface: str) -> None:
        """2.3: bring the host's client up (retrying while the core still waits for it), then report the TIA."""
        assert self.host_vpn is not None
        while not self.hung:
            try:
                address = await self.host_vpn.bring_up()
                place = (address, self.node.port)
                if place not in self._transports:
                    await self._open(place)
            except (MipcheckError, OSError) as exc:
                self.log.error(f"vpn for {interface}: {exc}; trying again in {VPN_RETRY:g} s")
                await asyncio.sleep(VPN_RETRY)
                if self.node.core.interface(interface).mode is not Mode.VPN_SETUP:
                    return
                continue
            with self._guard("vpn established"):
                if not self.node.vpn_established(interface, address, self.clock()):
                    self.log.error(f"vpn for {interface} came up with {address}, but the node no longer wants it")
            self._sync()
            self._pump()
            return

    async def _vpn_down(self, interface: str) -> None:
        assert self.host_vpn is not None
        self._sync()
        try:
            await self.host_vpn.take_down()
        except MipcheckError as exc:
            self.log.error(f"vpn for {interface}: {exc}")

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        at = self.node.get_timer()
        if at is not None and self._loop is not None:
            self._timer = self._loop.call_later(max(0.0, at - self.clock()), self._fire, at)

    def _tun_readable(self) -> None:
        """Packets the stack routed into the TUN device: through the node's data gate and out of the tunnel."""
        if self.tun is None or not isinstance(self.node, TunMobileNode):
            return
        if self.hung:  # stop reading (a readable descriptor left unread would spin the loop)
            if self._loop is not None:
                self._loop.remove_reader(self.tun.fileno())
            return
        for _ in range(64):
            packet = self.tun.read()
            if not packet:  # None: nothing now; b"": the device is gone
                break
            with self._guard("packet from the TUN device"):
                self.node.from_stack(packet, self.clock())
        self._pump()

    def _fire(self, at: float) -> None:
        self._timer = None
        if self.hung:
            return
        with self._guard("timer"):
            self.node.handle_timer(max(self.clock(), at))  # the loop's clock and the wall clock may differ a little
        self._pump()

    async def _open(self, place: Address) -> None:
        assert self._loop is not None
        on_agent_link = self.node.foreign_agent_interfaces()
        device = next((name for name, address in on_agent_link.items() if address == place[0]), None)
        sock = bind_udp(place, device)
        transport, _protocol = await self._loop.create_datagram_endpoint(lambda: _Socket(self, place), sock=sock)
        self._transports[place] = transport

    def _sync(self) -> None:
        on_agent_link = self.node.foreign_agent_interfaces()
        for interface in [i for i in self._delivered if i not in on_agent_link]:
            sock = self._delivered.pop(interface)
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            sock.close()
        wanted = set(self.node.bindings().values())
        for place in [p for p in self._transports if p not in wanted]:
            self._transports.pop(place).close()

    # ---- IP-in-IP (RFC 2003) through a raw socket: the kernel adds and strips nothing but the outer header
    def _open_ipip(self) -> None:
        assert self._loop is not None
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IPIP)
        sock.setblocking(False)
        self._ipip = sock
        self._loop.add_reader(sock.fileno(), self._ipip_readable)

    def _send_ipip(self, inner: bytes, source: str, destination: str) -> None:
        if self._ipip is None:
            self.log.error(f"no IP-in-IP socket for a packet to {destination}")
            return
        # IP_PKTINFO: the outer source is the tunnel's end (the care-of address or the VPN-TIA), not the route's
        info = struct.pack("I4s4s", 0, socket.inet_aton(source), bytes(4))
        try:
            self._ipip.sendmsg([inner], [(socket.IPPROTO_IP, IP_PKTINFO, info)], 0, (destination, 0))
        except OSError as exc:
            self.log.error(f"IP-in-IP to {destination}: {exc.strerror or exc}")

    def _ipip_readable(self) -> None:
        if self._ipip is None or self.hung:
            return
        for _ in range(64):
            try:
                packet = self._ipip.recv(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self.log.error(f"IP-in-IP socket: {exc.strerror or exc}")
                break
            with self._guard("IP-in-IP packet"):
                self.node.receive_ipip(packet, self.clock())
        self._pump()

    # ---- foreign agents' links (RFC 5944 2.4): advertisements in, solicitations out
    def _open_link(self, interface: str) -> None:
        """A raw ICMP socket on ``interface``'s link (root): advertisements in, solicitations out (IP_HDRINCL)."""
        if interface in self._links or self._loop is None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._links[interface] = sock
        self._loop.add_reader(sock.fileno(), self._link_readable, interface)

    def _send_on_link(self, interface: str, packet: bytes) -> None:
        sock = self._links.get(interface)
        if sock is None:
            self.log.error(f"no link socket on {interface} for a {len(packet)}-octet packet")
            return
        try:
            sock.sendto(packet, (socket.inet_ntoa(packet[16:20]), 0))
        except OSError as exc:
            self.log.error(f"send on {interface}: {exc.strerror or exc}")

    def _link_readable(self, interface: str) -> None:
        sock = self._links.get(interface)
        if sock is None or self.hung:
            return
        attached = False
        for _ in range(64):
            try:
                packet = sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self.log.error(f"read on {interface}: {exc.strerror or exc}")
                break
            ihl = (packet[0] & 0x0F) * 4 if packet else 0
            if len(packet) > ihl and packet[ihl] == 9:  # ICMP Router (Agent) Advertisement
                with self._guard(f"advertisement on {interface}"):
                    attached = self.node.agent_advertisement(interface, packet, self.clock()) or attached
        if attached:
            self._spawn(self._open_bindings())
        else:
            self._pump()

    def _open_delivered(self) -> None:
        """On a foreign agent's link, what it delivers to our addresses comes to the node (and its data gate)
        through an AF_PACKET socket; the host must not deliver it itself (docs/lab.md: an nftables rule)."""
        for interface in self.node.foreign_agent_interfaces():
            if interface in self._delivered or self._loop is None:
                continue
            try:
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
                sock.bind((interface, ETH_P_IP))
                sock.setblocking(False)
            except OSError as exc:
                self.log.error(f"cannot read {interface}'s link (root needed): {exc.strerror or exc}")
                continue
            self._delivered[interface] = sock
            self._loop.add_reader(sock.fileno(), self._delivered_readable, interface)

    def _delivered_readable(self, interface: str) -> None:
        sock = self._delivered.get(interface)
        if sock is None or self.hung:
            return
        homes = {self.node.profile.home_address, self.node.profile.x_ha.home_address}
        for _ in range(64):
            try:
                packet, address = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self.log.error(f"read on {interface}: {exc.strerror or exc}")
                break
            if address[2] != socket.PACKET_HOST or len(packet) < 20 or socket.inet_ntoa(packet[16:20]) not in homes:
                continue
            ihl = (packet[0] & 0x0F) * 4
            if packet[9] == 17 and packet[ihl + 2 : ihl + 4] == struct.pack("!H", self.node.port):
                continue  # a registration reply: the node's own UDP socket has it
            with self._guard(f"packet delivered on {interface}"):
                self.node.link_in(interface, packet, self.clock())
        self._pump()

    async def _open_bindings(self) -> None:
        """Sockets for bindings the node gained without a move (an agent heard), then send what waits."""
        self._open_delivered()
        for place in set(self.node.bindings().values()) - set(self._transports):
            try:
                await self._open(place)
            except OSError as exc:
                self.log.error(f"cannot bind {place[0]}:{place[1]}: {exc.strerror or exc}")
        self._sync()
        self._pump()

    def _spawn(self, work: Any) -> None:
        assert self._loop is not None
        task = self._loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def move_to_agent(self, interface: str, network: str, source: str) -> dict[str, Any]:
        """Onto a foreign agent's link: solicit, wait for its advertisement (RFC 5944 2.4), then register."""
        if self.hung:
            return {"ok": False, "error": f"the node hangs ({self.hung})"}
        try:
            self.node.resolve(interface, network, source)
            self._open_link(interface)
        except ValueError as exc:
            return {"ok": False, "error": str(exc)}
        except OSError as exc:
            return {"ok": False, "error": f"cannot listen on {interface}'s link (root needed): {exc.strerror or exc}"}
        try:
            self.node.move_to_agent(interface, network, source, self.clock())
        except Exception as exc:  # a bug, not the user's input (resolve checked that)
            self.log.error(f"move {interface} {network}: {type(exc).__name__}: {exc}")
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        self._sync()
        self._pump()
        return {"ok": True, "interface": interface, "network": network, "foreign_agent": "advertised"}

    # ---- control
    async def move(self, interface: str, network: str, care_of_address: str | None) -> dict[str, Any]:
        if self.hung:
            return {"ok": False, "error": f"the node hangs ({self.hung})"}
        try:
            coa = self.node.resolve(interface, network, care_of_address)
        except ValueError as exc:
            return {"ok": False, "error": str(exc)}
        place = None if coa is None else (coa, self.node.port)
        if place is not None and place not in self._transports:
            try:
                await self._open(place)
            except OSError as exc:
                message = f"cannot bind {place[0]}:{place[1]}: {exc.strerror or exc}"
                self.log.error(f"move {interface} {network}: {message}")
                return {"ok": False, "error": message}
        try:
            self.node.move(interface, network, coa, self.clock())
        except Exception as exc:  # a bug, not the user's input (resolve checked that)
            self.log.error(f"move {interface} {network}: {type(exc).__name__}: {exc}")
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        finally:
            self._sync()
        self._pump()
        return {"ok": True, "interface": interface, "network": network, "care_of_address": coa}

    async def answer(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict):
            return {"ok": False, "error": "expected a JSON object"}
        command = request.get("command")
        if command == "status":
            status = self.node.status(self.clock())
            return {"ok": True, "status": {**status, "hung": self.hung} if self.hung else status}
        if command == "move":
            fields = [request.get(k) for k in ("interface", "network")]
            coa = request.get("care_of_address")
            if not all(isinstance(f, str) for f in fields) or not (coa is None or isinstance(coa, str)):
                return {"ok": False, "error": "move needs interface and network (strings), care_of_address optional"}
            agent = request.get("foreign_agent")
            if agent is not None:
                if agent != "advertised" or not isinstance(coa, str) or not coa:
                    return {
                        "ok": False,
                        "error": 'foreign_agent must be "advertised", with care_of_address = our address on its link',
                    }
                return await self.move_to_agent(fields[0], fields[1], coa)
            return await self.move(fields[0], fields[1], coa or None)
        return {"ok": False, "error": f"unknown command {command!r} (known: move, status)"}

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), CONTROL_TIMEOUT)
            try:
                request = json.loads(line)
            except ValueError:
                answer: dict[str, Any] = {"ok": False, "error": "expected one JSON line"}
            else:
                answer = await self.answer(request)
            writer.write((json.dumps(answer) + "\n").encode())
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError):
            pass  # a client that went away or sent too much: nothing to answer
        finally:
            writer.close()

    async def _listen(self) -> asyncio.AbstractServer:
        path = self.socket_path
        if os.path.lexists(path):
            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                raise MipcheckError(f"{path} exists and is not a socket: give another --socket")
            try:
                ask(path, {"command": "status"}, timeout=1.0)
            except MipcheckError:
                os.unlink(path)  # stale: left by a runner that did not stop cleanly
            else:
                raise MipcheckError(f"a reference mobile node already listens at {path}")
        try:
            server = await asyncio.start_unix_server(self._client, path=path, limit=MAX_REQUEST)
        except OSError as exc:
            raise MipcheckError(f"cannot listen at {path}: {exc.strerror or exc}") from None
        os.chmod(path, 0o600)  # whoever may move the node may also make it leak: the user only
        return server

    async def run(self) -> int:
        self._loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        server = await self._listen()
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._loop.add_signal_handler(sig, stop.set)
            if self.tun is not None:
                self._loop.add_reader(self.tun.fileno(), self._tun_readable)
            if self.node.ipip:
                try:
                    self._open_ipip()
                except OSError as exc:
                    raise MipcheckError(f"--encapsulation ipip: raw IP-in-IP socket: {exc.strerror or exc}") from None
            self._pump()
            await stop.wait()
        finally:
            if self._timer is not None:
                self._timer.cancel()
            for task in [*self._vpn_tasks.values(), *self._tasks]:
                task.cancel()
            for sock in [*self._links.values(), *self._delivered.values(), *([self._ipip] if self._ipip else [])]:
                self._loop.remove_reader(sock.fileno())
                sock.close()
            for transport in self._transports.values():
                transport.close()
            self._transports.clear()
            if self.tun is not None:
                self._loop.remove_reader(self.tun.fileno())
                self.tun.close()
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.socket_path)
        return 0


# ---------------------------------------------------------------- the control client


def run_node(
    profile_path: str,
    *,
    socket_path: str | None = None,
    faults: tuple[str, ...] = (),
    log_json: str | None = None,
    data_every: float | None = None,
    quiet: bool = False,
    tun: str | None = None,
    host_vpn: HostVpn | None = None,
    encapsulation: str = "udp",
) -> int:
    """Load, run until a signal, clean up; errors are one-line :class:`MipcheckError` (exit 2).

    ``tun``: the name of a TUN device for the node's user data (:mod:`mipcheck.mn.tun`; the home address goes
    on it); None (the default): the node makes and answers ICMP echo itself.

    ``host_vpn``: the host's IPsec client is the VPN (needs ``tun``: the x-HoA goes on the TUN device too).

    ``encapsulation``: ``udp`` (RFC 3519 Tunnel Data, the default) or ``ipip`` (no UDP Tunnel Request: the home
    agents tunnel IP-in-IP, RFC 2003, which the node sends and receives through a raw socket; root), or
    ``minimal`` (through a foreign agent that offers it, 'M': RFC 2004 between the home agent and the agent).

    ``faults``: conformance faults (:mod:`mipcheck.mn.faults`) and robustness faults (:mod:`mipcheck.mn.robustness`).
    """
    from .faults import behaviour_for
    from .profile import load_mobile_node_profile
    from .robustness import is_robustness_fault, robustness_for

    if host_vpn is not None and tun is None:
        raise MipcheckError("--host-vpn needs --tun: the host's VPN client sends from the x-HoA, which lives there")
    planted = [f for f in faults if is_robustness_fault(f)]
    profile = load_mobile_node_profile(profile_path)
    node = (TunMobileNode if tun is not None else ReferenceMobileNode)(
        profile,
        behaviour=behaviour_for([f for f in faults if not is_robustness_fault(f)]),
        data_every=data_every,
        robustness=robustness_for(planted),
        host_vpn=host_vpn is not None,
        ipip=encapsulation == "ipip",
        minimal=encapsulation == "minimal",
    )
    json_file: IO[str] | None = None
    if log_json and log_json != "-":
        try:
            json_file = open(log_json, "w", encoding="utf-8")
        except OSError as exc:
            raise MipcheckError(f"--log-json {log_json}: {exc.strerror or exc}") from None
    to_stdout = log_json == "-"
    log = EventLog(quiet=quiet, json_out=sys.stdout if to_stdout else json_file, human_to_stderr=to_stdout)
    device = None
    try:
        if tun is not None:
            device = TunDevice(tun)
            bring_up(device.name, profile.home_address)
            if host_vpn is not None:
                bring_up(device.name, profile.x_ha.home_address)
        runner = NodeRunner(node, socket_path or default_socket_path(), log, tun=device, host_vpn=host_vpn)
        return asyncio.run(runner.run())
    finally:
        if device is not None:
            device.close()
        if json_file is not None:
            json_file.close()
