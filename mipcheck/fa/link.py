"""The foreign agent on a real link: ``mipcheck fa serve --config F --link IFACE [--tun NAME]`` (root).

The sans-IO core (:mod:`mipcheck.fa.core`) is unchanged: it already produces
whole IPv4 packets for advertisements, deliveries and reverse tunnels, and
takes IPv4 packets for solicitations, IP-in-IP and a visitor's own packets.
On loopback they travel as UDP payloads to and from stand-ins
(``config.link``, ``config.upstream``); on a link this module says where each
one really goes (:func:`route`), where each arriving packet enters the core
(:func:`from_link`, :func:`from_tunnel`, :func:`from_tun`), and which routes
and policy rules the host needs for the current visitors (:func:`plan`).
Those are sans-IO; :class:`LinkShell` does the IO.

What goes where (RFC 5944 2, 3.7, 4.2.2; RFC 2003; RFC 3024):

* Agent advertisements (ICMP type 9 with the Mobility Agent Advertisement
  extension, TTL 1) go out of IFACE through a raw ``IP_HDRINCL`` socket
  (``SO_BINDTODEVICE``, ``SO_BROADCAST``) as the core built them: every
  ``advertise_interval`` to ``advertisement_destination`` (255.255.255.255 or
  224.0.0.1), and to a soliciting node in answer to an Agent Solicitation
  (ICMP type 10) read on IFACE by a raw ICMP socket. In link mode the core's
  ``config.link`` is the link itself: ``(advertisement_destination, 434)``
  (:func:`link_config`), and ``config.upstream`` is none: the host routes.
* Registration Requests and Replies stay on the UDP socket
  (``config.address``/``config.port``) as on loopback. A datagram to a place
  whose datagrams arrived on IFACE leaves through IFACE (``IP_PKTINFO``), so a
  reply or a denial reaches a mobile node whose home address the host routes
  elsewhere (to its home network).
* IP-in-IP (a raw ``IPPROTO_IPIP`` socket reads the whole outer packet) and
  MIP Tunnel Data (the UDP socket) from a home agent to a care-of address are
  decapsulated by the core; the inner packet is forwarded onto the link to the
  home address: its TTL decremented (RFC 2003 3.1: forwarding after
  decapsulation; an expiring packet is dropped), out of IFACE through the raw
  link socket. The mobile node answers ARP for its home address on its link.
* A visitor registered with 'T' (RFC 3024): with ``--tun NAME`` a policy rule
  per visitor (``from HoA iif IFACE lookup TABLE``, TABLE: ``default dev
  NAME``) makes the host forward its packets into the TUN device instead of
  routing them; the shell hands each to the core (the visitor's own packet)
  and sends the result IP-in-IP to the home agent through the raw IP-in-IP
  socket: the kernel adds the outer header (source the care-of address,
  ``IP_PKTINFO``; TTL 64; Type of Service and DF as the core copied them from
  the inner header). Without 'T' (or without ``--tun``) the host forwards the
  visitor's packets itself.
* Minimal encapsulation (RFC 2004, protocol 55), when the flags offer 'M':
  a raw protocol-55 socket reads what comes to a care-of address (the core
  decapsulates it and it is delivered as above), and a visitor registered with
  'M' and 'T' is reverse-tunnelled with it (RFC 3024: the registered
  encapsulation): the core builds the whole packet (the visitor's header
  modified: source the care-of address, destination the home agent, protocol
  55; the forwarding header with S = 1 and the home address, 12 octets; TTL,
  TOS and DF kept) and the same socket sends it as built (``IP_HDRINCL``).
* Each visitor gets a host route ``HoA/32 dev IFACE proto 210`` while it is
  one: the host's own packets to it (ICMP errors) stay on the link, and a
  strict reverse-path filter accepts its packets.

The host's part, not done here: IP forwarding on (``net.ipv4.ip_forward=1``:
without it neither a visitor's packets without 'T' nor those with 'T' into
the TUN device are forwarded) and no strict reverse-path filter on IFACE for
a mobile node's first request (its home address is routed elsewhere until it
is a visitor); the shell logs a warning line for each at start. Everything the
shell installs (routes, rules, the TUN table's default route) is removed when
the visitor goes and when the server stops, also after an error; rules and
routes of a killed earlier run (same TABLE, IFACE, protocol 210) are removed
at start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import socket
import struct
import subprocess
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from mipcheck.errors import MipcheckError
from mipcheck.proto.agent import solicitation
from mipcheck.proto.ip import PROTO_ICMP, PROTO_IPIP, checksum, parse_ipv4
from mipcheck.proto.minenc import PROTO_MINENC
from mipcheck.tundev import TunDevice, check_interface_name

from .config import FAConfig
from .core import ForeignAgent

Address = tuple[str, int]

LINK_PORT = 434  # the port of the link's stand-in place in link mode (config.link); never sent to
DEFAULT_TABLE = 434  # the routing table (and rule preference) of the reverse-tunnel rules
ROUTE_PROTOCOL = 210  # rtnetlink protocol of the host routes the shell installs: how leftovers are found
ICMP_ROUTER_ADVERTISEMENT = 9
IP_PKTINFO = 8  # <linux/in.h>; the socket module lacks it
IP_MTU_DISCOVER = 10
IP_PMTUDISC_DONT, IP_PMTUDISC_DO = 0, 2
OUTER_TTL = 64  # RFC 2003 3.1
MAX_PACKET = 65535


# --------------------------------------------------------------------------- sans-IO


def link_config(config: FAConfig) -> FAConfig:
    """The configuration the core runs with on a link: ``link`` the link's broadcast itself, no ``upstream``."""
    return dataclasses.replace(config, link=(config.advertisement_destination, LINK_PORT), upstream=None)


class UdpOut(NamedTuple):
    """A registration message: the UDP socket sends ``data`` to ``destination`` (through IFACE if learned there)."""

    data: bytes
    destination: Address


class LinkOut(NamedTuple):
    """A whole IPv4 packet for the link: an advertisement, or a decapsulated packet for a visitor."""

    packet: bytes
    destination: str
    what: str  # "advertisement" | "delivery"
    home_address: str | None = None


class TunnelOut(NamedTuple):
    """A reverse-tunnelled packet: ``packet`` (the inner one) IP-in-IP from ``source`` to ``destination``."""

    packet: bytes
    source: str  # the care-of address
    destination: str  # the home agent
    tos: int
    dont_fragment: bool
    home_address: str


class MinencOut(NamedTuple):
    """A reverse-tunnelled packet minimally encapsulated (RFC 2004) by the core: sent as it is (``IP_HDRINCL``)."""

    packet: bytes  # the whole encapsulated datagram
    source: str  # the care-of address
    destination: str  # the home agent
    home_address: str


class Dropped(NamedTuple):
    reason: str
    home_address: str | None = None


def forwarded(packet: bytes) -> bytes | None:
    """``packet`` as a router forwards it: TTL one less, header checksum redone; None when it would reach 0."""
    if len(packet) < 20 or packet[8] <= 1:
        return None
    ihl = (packet[0] & 0x0F) * 4
    header = bytearray(packet[:ihl])
    header[8] -= 1
    header[10:12] = b"\0\0"
    header[10:12] = checksum(bytes(header)).to_bytes(2, "big")
    return bytes(header) + packet[ihl:]


def route(core: ForeignAgent, data: bytes, destination: Address) -> UdpOut | LinkOut | TunnelOut | MinencOut | Dropped:
    """Where one of the core's datagrams really goes on a link (``datagrams_to_send``: ``data`` to ``destination``).

    Registration messages stay UDP; an IPv4 packet to ``config.link`` or to a solicitor's place (port 0, as
    :func:`from_link` names it) is an advertisement for the link; one to a visitor's place is a delivery for
    the link (forwarded: TTL decremented); an IP-in-IP or minimally encapsulated (protocol 55) packet from a
    care-of address to the place it is addressed to is a reverse tunnel. Anything else (a forward to the default
    router, which link mode never configures) is dropped.
    """
    if not data or data[0] >> 4 != 4:
        return UdpOut(data, destination)
    ip = parse_ipv4(data)
    if ip is None:
        return Dropped(f"malformed IPv4 packet for {destination[0]}:{destination[1]}")
    config = core.config
    if destination == config.link or (
        destination[1] == 0
        and ip.protocol == PROTO_ICMP
        and ip.src == config.address
        and ip.payload[:1] == bytes((ICMP_ROUTER_ADVERTISEMENT,))
    ):
        return LinkOut(data, ip.dst, "advertisement")
    for v in core.visitors:
        if v.link == destination and v.home_address == ip.dst:
            packet = forwarded(data)
            if packet is None:
                return Dropped(f"packet for {ip.dst}: TTL expires on forwarding (RFC 2003 3.1)", ip.dst)
            return LinkOut(packet, ip.dst, "delivery", ip.dst)
    if ip.protocol == PROTO_IPIP and ip.src in config.care_of_addresses and ip.dst == destination[0]:
        inner = parse_ipv4(ip.payload)
        return TunnelOut(
            ip.payload, ip.src, ip.dst, ip.tos, bool(ip.flags_fragment & 0x4000), inner.src if inner else "?"
        )
    if ip.protocol == PROTO_MINENC and ip.src in config.care_of_addresses and ip.dst == destination[0]:
        payload = ip.payload
        home = socket.inet_ntoa(payload[8:12]) if len(payload) >= 12 and payload[1] & 0x80 else "?"
        return MinencOut(data[: ip.header_length + len(payload)], ip.src, ip.dst, home)
    return Dropped(f"IPv4 packet from {ip.src} to {destination[0]}:{destination[1]}: nowhere to send it on a link")


def from_link(packet: bytes) -> tuple[bytes, Address] | None:
    """A packet the raw ICMP socket read on IFACE: (packet, place) for the core when it is an Agent Solicitation.

    The place is (IP source, 0); the core answers to it, and :func:`route` puts the answer on the link.
    Everything else ICMP on the link (our own advertisements looped back, echoes) is not the core's.
    """
    ip = parse_ipv4(packet)
    if ip is None or ip.protocol != PROTO_ICMP or not solicitation(ip.payload):
        return None
    return packet, (ip.src, 0)


def from_tunnel(packet: bytes) -> tuple[bytes, Address]:
    """A packet the raw IP-in-IP or protocol-55 socket read (whole): (packet, (its IP source, 0)) for the core."""
    source = socket.inet_ntoa(packet[12:16]) if len(packet) >= 20 else "0.0.0.0"
    return packet, (source, 0)


def from_tun(core: ForeignAgent, packet: bytes) -> tuple[bytes, Address] | None:
    """A packet read from the TUN device (a 'T' visitor's own): (packet, the place the core knows the visitor by).

    The core looks visitors up by their registration place and home address; an IPv4 packet from no such
    visitor keeps (source, 0) and the core drops and logs it. Not IPv4 (the host's own IPv6 chatter on the
    device): None, not the core's.
    """
    if not packet or packet[0] >> 4 != 4:
        return None
    ip = parse_ipv4(packet)
    if ip is not None:
        for v in core.visitors:
            if v.home_address == ip.src and v.reverse_tunnel:
                return packet, v.link
    return packet, (ip.src if ip is not None else "0.0.0.0", 0)


class Plan(NamedTuple):
    """What the host needs for the current visitors: host routes and reverse-tunnel rules, by home address."""

    routes: frozenset[str]
    rules: frozenset[str]


def plan(core: ForeignAgent, tun: bool) -> Plan:
    """A host route for every visitor; a policy rule into the TUN device for every one the core reverse-tunnels."""
    visitors = [v for v in core.visitors if v.home_address != "0.0.0.0"]
    routes = frozenset(v.home_address for v in visitors)
    tunnels = tun and core.behaviour.reverse_tunnel == "tunnel"
    rules = frozenset(v.home_address for v in visitors if v.reverse_tunnel) if tunnels else frozenset()
    return Plan(routes, rules)


# --------------------------------------------------------------------------- the host's routes and rules


def run_ip(argv: Sequence[str]) -> tuple[int, str]:
    """Run ``ip ARGV``: (exit status, what it printed on stdout, or its first error line)."""
    try:
        proc = subprocess.run(["ip", *argv], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return 127, "ip: command not found (iproute2)"
    except subprocess.TimeoutExpired:
        return 124, f"ip {' '.join(argv)}: no answer after 10 s"
    if proc.returncode:
        return proc.returncode, (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[0]
    return 0, proc.stdout


class Plumbing:
    """The routes and rules the shell installs, and nothing else: what it added it removes (``run`` is ``ip``)."""

    def __init__(
        self,
        iface: str,
        tun: str | None = None,
        table: int = DEFAULT_TABLE,
        run: Callable[[Sequence[str]], tuple[int, str]] = run_ip,
    ) -> None:
        self.iface, self.tun, self.table, self.run = iface, tun, table, run
        self.routes: set[str] = set()
        self.rules: set[str] = set()
        self.table_route = False

    def _route(self, hoa: str) -> list[str]:
        return [f"{hoa}/32", "dev", self.iface, "proto", str(ROUTE_PROTOCOL)]

    def _rule(self, hoa: str) -> list[str]:
        t = str(self.table)
        return ["pref", t, "from", f"{hoa}/32", "iif", self.iface, "lookup", t]

    def start(self) -> list[dict[str, Any]]:
        """Remove a killed earlier run's leftovers; with a TUN device, its table's default route. Records to log."""
        records: list[dict[str, Any]] = []
        status, out = self.run(["-j", "rule", "list"])
        if status == 0:
            with contextlib.suppress(ValueError):
                for rule in json.loads(out or "[]"):
                    if (
                        rule.get("priority") == self.table
                        and str(rule.get("table")) == str(self.table)
                        and rule.get("iif") == self.iface
                        and rule.get("src")
                    ):
                        self.run(["rule", "del", *self._rule(rule["src"])])
                        records.append({"event": "leftover-removed", "rule": f"from {rule['src']} iif {self.iface}"})
        self.run(["route", "flush", "dev", self.iface, "proto", str(ROUTE_PROTOCOL)])
        if self.tun is not None:
            for argv in (
                ["link", "set", self.tun, "up"],
                ["route", "replace", "default", "dev", self.tun, "table", str(self.table)],
            ):
                status, out = self.run(argv)
                if status:
                    raise MipcheckError(f"--tun {self.tun}: ip {' '.join(argv)}: {out}")
            self.table_route = True
            records.append({"event": "installed", "route": f"default dev {self.tun} table {self.table}"})
        return records

    def sync(self, want: Plan) -> list[dict[str, Any]]:
        """Make the installed routes and rules what ``want`` says; one record per change."""
        records: list[dict[str, Any]] = []
        for hoa in sorted(self.rules - want.rules):
            self.run(["rule", "del", *self._rule(hoa)])
            self.rules.discard(hoa)
            records.append({"event": "removed", "home_address": hoa, "rule": f"iif {self.iface} lookup {self.table}"})
        for hoa in sorted(self.routes - want.routes):
            self.run(["route", "del", *self._route(hoa)])
            self.routes.discard(hoa)
            records.append({"event": "removed", "home_address": hoa, "route": f"dev {self.iface}"})
        for hoa in sorted(want.routes - self.routes):
            status, out = self.run(["route", "add", *self._route(hoa)])
            if status:
                records.append({"event": "warning", "home_address": hoa, "reason": f"host route not added: {out}"})
            else:
                records.append({"event": "installed", "home_address": hoa, "route": f"dev {self.iface}"})
            self.routes.add(hoa)  # tried once per visitor, not once per datagram; removal ignores a failure
        for hoa in sorted(want.rules - self.rules):
            status, out = self.run(["rule", "add", *self._rule(hoa)])
            if status:
                records.append({"event": "warning", "home_address": hoa, "reason": f"rule not added: {out}"})
            else:
                rule = f"iif {self.iface} lookup {self.table}"
                records.append({"event": "installed", "home_address": hoa, "rule": rule})
            self.rules.add(hoa)
        return records

    def close(self) -> list[dict[str, Any]]:
        """Remove everything installed (errors ignored: the TUN device may be gone, and its routes with it)."""
        records = self.sync(Plan(frozenset(), frozenset()))
        if self.table_route and self.tun is not None:
            self.run(["route", "del", "default", "dev", self.tun, "table", str(self.table)])
            self.table_route = False
            records.append({"event": "removed", "route": f"default dev {self.tun} table {self.table}"})
        return records


def host_warnings(iface: str, read: Callable[[str], str | None] | None = None) -> list[str]:
    """What the host must do that the shell does not (forwarding, reverse-path filter), as warning reasons."""

    def _read(path: str) -> str | None:
        try:
            with open(path, encoding="ascii") as f:
                return f.read().strip()
        except OSError:
            return None

    read = read or _read
    out = []
    if read("/proc/sys/net/ipv4/ip_forward") != "1":
        out.append("net.ipv4.ip_forward is not 1: the host will not forward visitors' packets (nor into the TUN)")
    values = [read(f"/proc/sys/net/ipv4/conf/{name}/rp_filter") for name in ("all", iface)]
    if "1" in values:
        out.append(
            f"strict reverse-path filter (rp_filter 1) on {iface} or all: a mobile node's first request "
            "(from a home address routed elsewhere) is dropped by the host"
        )
    return out


# --------------------------------------------------------------------------- IO


def _raw(proto: int, option: str) -> socket.socket:
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
    except OSError as exc:
        raise MipcheckError(f"{option}: cannot open a raw socket (protocol {proto}): {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


class LinkShell:
    """The sockets, TUN device and plumbing of link mode; :class:`mipcheck.fa.server.ForeignAgentServer` drives it."""

    ON_LINK_MEMORY = 4096  # registration places learned on IFACE, least recently seen forgotten first

    def __init__(self, iface: str, tun: str | None = None, table: int = DEFAULT_TABLE, minimal: bool = False) -> None:
        check_interface_name("--link", iface)
        try:
            self.ifindex = socket.if_nametoindex(iface)
        except OSError:
            raise MipcheckError(f"--link {iface}: no such interface") from None
        self.iface = iface
        self._closers: list[Callable[[], Any]] = []
        try:
            self.out = self._keep(_raw(socket.IPPROTO_RAW, "--link"))  # IP_HDRINCL: the core's packets as they are
            self.out.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
            self.out.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            self.icmp = self._keep(_raw(socket.IPPROTO_ICMP, "--link"))  # solicitations on IFACE
            self.icmp.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
            self.ipip = self._keep(_raw(socket.IPPROTO_IPIP, "--link"))  # IP-in-IP both ways
            self.ipip.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, OUTER_TTL)
            self.minenc: socket.socket | None = None
            if minimal:  # RFC 2004 both ways: reads protocol 55, sends the core's packets as built
                self.minenc = self._keep(_raw(PROTO_MINENC, "--link"))
                self.minenc.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
            self.tun = self._keep(TunDevice(tun)) if tun is not None else None
        except OSError as exc:
            self.close()
            raise MipcheckError(f"--link {iface}: {exc.strerror or exc}") from None
        except BaseException:
            self.close()
            raise
        self.plumbing = Plumbing(iface, self.tun.name if self.tun is not None else None, table)
        self._on_link: OrderedDict[Address, None] = OrderedDict()
        self._tos = -1
        self._df: bool | None = None
        self.counters = {"advertised": 0, "delivered": 0, "tunnelled": 0, "too_big": 0, "send_failures": 0}

    def _keep(self, thing: Any) -> Any:
        self._closers.append(thing.close)
        return thing

    # ---- places learned on the link
    def learned(self, place: Address, ifindex: int) -> None:
        if ifindex == self.ifindex:
            self._on_link[place] = None
            self._on_link.move_to_end(place)
            while len(self._on_link) > self.ON_LINK_MEMORY:
                self._on_link.popitem(last=False)

    def on_link(self, place: Address) -> bool:
        return place in self._on_link

    # ---- sending
    def send_link(self, out: LinkOut) -> bool:
        try:
            self.out.sendto(out.packet, (out.destination, 0))
        except OSError:
            self.counters["send_failures"] += 1
            return False
        self.counters["advertised" if out.what == "advertisement" else "delivered"] += 1
        return True

    def send_tunnel(self, out: TunnelOut) -> bool:
        try:
            if out.tos != self._tos:
                self.ipip.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, out.tos)
                self._tos = out.tos
            if out.dont_fragment is not self._df:
                how = IP_PMTUDISC_DO if out.dont_fragment else IP_PMTUDISC_DONT
                self.ipip.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, how)
                self._df = out.dont_fragment
            source = struct.pack("@I4s4s", 0, socket.inet_aton(out.source), bytes(4))
            self.ipip.sendmsg([out.packet], [(socket.IPPROTO_IP, IP_PKTINFO, source)], 0, (out.destination, 0))
        except OSError as exc:
            self.counters["too_big" if exc.errno == errno.EMSGSIZE else "send_failures"] += 1
            return False
        self.counters["tunnelled"] += 1
        return True

    def send_minenc(self, out: MinencOut) -> bool:
        if self.minenc is None:
            self.counters["send_failures"] += 1
            return False
        try:
            self.minenc.sendto(out.packet, (out.destination, 0))
        except OSError as exc:
            self.counters["too_big" if exc.errno == errno.EMSGSIZE else "send_failures"] += 1
            return False
        self.counters["tunnelled"] += 1
        return True

    def pktinfo(self) -> list[tuple[int, int, bytes]]:
        """Ancillary data that sends a UDP datagram out of IFACE whatever the routes say."""
        return [(socket.IPPROTO_IP, IP_PKTINFO, struct.pack("@I4s4s", self.ifindex, bytes(4), bytes(4)))]

    # ---- reading
    @staticmethod
    def read(sock: socket.socket) -> bytes | None:
        try:
            return sock.recv(MAX_PACKET)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return b""  # an ICMP error queued on the socket

    def readers(self) -> list[tuple[int, str]]:
        """(file descriptor, what it carries) to watch."""
        out = [(self.icmp.fileno(), "link"), (self.ipip.fileno(), "tunnel")]
        if self.minenc is not None:
            out.append((self.minenc.fileno(), "minenc"))
        if self.tun is not None:
            out.append((self.tun.fileno(), "tun"))
        return out

    def close(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        plumbing = getattr(self, "plumbing", None)
        if plumbing is not None:
            records = plumbing.close()
        for close in reversed(self._closers):
            with contextlib.suppress(OSError):
                close()
        self._closers.clear()
        return records


__all__ = [
    "DEFAULT_TABLE",
    "Dropped",
    "LinkOut",
    "LinkShell",
    "MinencOut",
    "Plan",
    "Plumbing",
    "TunnelOut",
    "UdpOut",
    "forwarded",
    "from_link",
    "from_tun",
    "from_tunnel",
    "host_warnings",
    "link_config",
    "plan",
    "route",
]
