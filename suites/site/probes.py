"""Probes from vantage points: registrations, IP-in-IP, IKE, and watching what arrives or leaves.

Every socket is opened at a vantage point: inside its network namespace
(:func:`mipcheck.lab.netns.call_in`: the socket lives there for good, no
process is started) or on this host for ``local = true``. Probes only ever
address the site's own addresses from the profile; in the lab those are
inside the lab's namespaces.

Sent and received UDP datagrams are recorded in the case's
:class:`~mipcheck.engine.evidence.Capture` (its pcap); what raw sockets see
(IP-in-IP arrivals, a VPN host's outer interface) is kept as raw IPv4 packets
and written as a second pcap by the runner.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from mipcheck.engine.evidence import RECEIVED, SENT, Datagram
from mipcheck.engine.verdicts import TesterError
from mipcheck.lab import netns
from mipcheck.mn.acceptance import ReplyJudgement, judge_reply
from mipcheck.proto import codec
from mipcheck.proto import numbers as n
from mipcheck.proto.identification import low32, timestamp_identification

from . import ike
from .profile import Identity, Vantage

MIP_PORT = n.MIP_PORT
IPPROTO_IPIP = 4
ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
LIFETIME = 60  # seconds: registrations of the audit expire soon after it
DISCARD_PORT = 9  # destination of the audit's plain UDP probes (RFC 863)


# ------------------------------------------------------------------ sockets at a vantage point


def vantage_problem(v: Vantage) -> str | None:
    """Why probes cannot run at ``v`` (None: they can)."""
    if v.namespace is None:
        return None
    if os.geteuid() != 0:
        return f"vantage point {v.name}: {netns.NEEDS} (not running as root)"
    if v.namespace not in netns.namespaces():
        return f"vantage point {v.name}: network namespace {v.namespace} does not exist (is the lab up?)"
    return None


def open_socket(v: Vantage, kind: int = socket.SOCK_DGRAM, proto: int = 0, family: int = socket.AF_INET):
    """A socket living at ``v`` (its namespace, or this host)."""
    try:
        if v.namespace is None:
            return socket.socket(family, kind, proto)
        return netns.call_in(v.namespace, socket.socket, family, kind, proto)
    except PermissionError as exc:
        raise TesterError(f"vantage point {v.name}: cannot open a raw socket: {exc.strerror} (needs root)") from None
    except OSError as exc:
        raise TesterError(f"vantage point {v.name}: cannot open a socket: {exc.strerror or exc}") from None


def source_address(v: Vantage, destination: str) -> str | None:
    """The address ``v`` sends from toward ``destination`` (None: no route)."""
    sock = open_socket(v)
    try:
        sock.connect((destination, MIP_PORT))
        return sock.getsockname()[0]
    except OSError:
        return None
    finally:
        sock.close()


def _udp_socket(v: Vantage, source: str, port: int):
    sock = open_socket(v)
    try:
        sock.bind((source, port))
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):  # taken, or privileged without root
            return None
        raise TesterError(f"vantage point {v.name}: cannot bind {source}:{port}: {exc.strerror or exc}") from None
    return sock


# ------------------------------------------------------------------ registrations


class IdentificationClock:
    """RFC 5944 5.7.1 timestamps, strictly increasing per home address for the whole run."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def next(self, home_address: str) -> int:
        ident = max(timestamp_identification(time.time()), self._last.get(home_address, 0) + 1)
        self._last[home_address] = ident
        return ident


@dataclass
class Registration:
    """One Registration Request in flight from a vantage point, and what came back for it."""

    vantage: Vantage
    identity: Identity
    home_agent: str
    source: tuple[str, int]
    identification: int
    sent: Datagram
    sock: socket.socket | None
    reply: Datagram | None = None
    judgement: ReplyJudgement | None = None
    others: list[Datagram] = field(default_factory=list)  # anything else that reached the socket

    @property
    def answered(self) -> bool:
        return self.reply is not None

    @property
    def accepted(self) -> bool:
        return self.judgement is not None and self.judgement.accepted

    @property
    def tnc(self) -> bool:
        """The reply carries the Trusted Networks Configured extension (RFC 5265 3.4) before its authenticator."""
        rep = self.judgement.reply if self.judgement else None
        if rep is None:
            return False
        types = [e.type for e in rep.extensions]
        if n.EXT_TNC not in types:
            return False
        auth = types.index(n.EXT_MN_HA_AUTH) if n.EXT_MN_HA_AUTH in types else len(types)
        return types.index(n.EXT_TNC) < auth

    def describe(self) -> str:
        if self.reply is None:
            return "no reply"
        j = self.judgement
        rep = j.reply if j else None
        where = f"frame {self.reply.frame} from {self.reply.src[0]}:{self.reply.src[1]}"
        if rep is None:
            return f"{where}: {j.problem if j else 'not a Registration Reply'}"
        text = f"{where}: code {rep.code} ({n.reply_code_name(rep.code)})"
        if j is not None and j.problem:
            text += f", not usable by a mobile node: {j.problem}"
        return text + (", with TNC" if self.tnc else ", without TNC")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def request_bytes(identity: Identity, home_agent: str, care_of: str, identification: int, lifetime: int) -> bytes:
    """A valid Registration Request (RFC 5944 3.3; co-located care-of address, D bit), NAI then MN-HA auth."""
    extensions = codec.nai_extension(identity.nai) if identity.nai else b""
    return codec.build_request(
        n.FLAG_D,
        lifetime,
        identity.home_address,
        home_agent,
        care_of,
        identification,
        extensions,
        auth=(identity.sa.spi, identity.sa.algorithm, identity.sa.key),
    )


def send_registration(
    ctx,
    v: Vantage,
    identity: Identity,
    home_agent: str,
    *,
    port: int = 0,
    lifetime: int = LIFETIME,
    note: str = "",
) -> Registration | None:
    """Send a valid request from ``v`` (source port ``port``, 0: any) to ``home_agent``:434.

    None when that source port is taken at the vantage point, or privileged
    and mipcheck is not root there (the caller names it); no route from ``v``
    is the tester's problem (``error``).
    """
    source = source_address(v, home_agent)
    if source is None:
        raise TesterError(f"vantage point {v.name} has no route to {home_agent}")
    sock = _udp_socket(v, source, port)
    if sock is None:
        return None
    bound = sock.getsockname()
    ident = ctx.clock.next(identity.home_address)
    data = request_bytes(identity, home_agent, source, ident, lifetime)
    try:
        sock.sendto(data, (home_agent, MIP_PORT))
    except OSError as exc:
        sock.close()
        raise TesterError(f"vantage point {v.name}: cannot send to {home_agent}: {exc.strerror or exc}") from None
    sent = ctx.capture.record(bound, (home_agent, MIP_PORT), data, SENT, note or f"{v.name}: registration")
    return Registration(v, identity, home_agent, bound, ident, sent, sock)


def _take_reply(ctx, reg: Registration) -> None:
    assert reg.sock is not None
    data, src = reg.sock.recvfrom(65535)
    d = ctx.capture.record(src, reg.source, data, RECEIVED, f"{reg.vantage.name}: reply?")
    judgement = judge_reply(
        data,
        home_address=reg.identity.home_address,
        identifications=(low32(reg.identification),),
        spi=reg.identity.sa.spi,
        algorithm=reg.identity.sa.algorithm,
        key=reg.identity.sa.key,
    )
    rep = codec.parse_reply(data)
    if reg.reply is None and rep is not None and rep.home_address == reg.identity.home_address:
        reg.reply, reg.judgement = d, judgement
    else:
        reg.others.append(d)


# ------------------------------------------------------------------ raw observers (what arrives where)


class Observer:
    """A raw socket at a vantage point: every IPv4 packet of ``proto`` arriving there (e.g. at the i-HA)."""

    def __init__(self, v: Vantage, proto: int, what: str) -> None:
        self.vantage = v
        self.what = what
        self.sock = open_socket(v, socket.SOCK_RAW, proto)
        self.packets: list[tuple[float, bytes]] = []

    def take(self) -> None:
        data = self.sock.recv(65535)
        self.packets.append((time.time(), data))

    def saw(self, marker: bytes) -> bool:
        return any(marker in data for _t, data in self.packets)

    def close(self) -> None:
        self.sock.close()


class LinkCapture:
    """Every IPv4 packet leaving (or entering) an interface at a vantage point (``AF_PACKET``, cooked)."""

    def __init__(self, v: Vantage, interface: str) -> None:
        self.vantage = v
        self.interface = interface
        self.sock = open_socket(v, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL), socket.AF_PACKET)
        try:
            self.sock.bind((interface, 0))
        except OSError as exc:
            self.sock.close()
            raise TesterError(f"vantage point {v.name}: cannot capture on {interface}: {exc.strerror or exc}") from None
        self.packets: list[tuple[float, bool, bytes]] = []  # (time, outgoing, IPv4 packet)

    def take(self) -> None:
        data, address = self.sock.recvfrom(65535)
        if address[1] == ETH_P_IP:
            self.packets.append((time.time(), address[2] == PACKET_OUTGOING, data))

    def close(self) -> None:
        self.sock.close()


def wait(
    ctx,
    *,
    registrations: Iterable[Registration] = (),
    watchers: Iterable[Observer | LinkCapture] = (),
    duration: float,
    done: Callable[[], bool] | None = None,
) -> None:
    """Read replies and observed packets for ``duration`` seconds, or until ``done()`` holds."""
    regs = [r for r in registrations if r.sock is not None]
    watched = list(watchers)
    deadline = time.monotonic() + duration
    while (left := deadline - time.monotonic()) > 0:
        if done is not None and done():
            return
        socks = [r.sock for r in regs] + [w.sock for w in watched]
        if not socks:
            time.sleep(left)
            return
        ready, _, _ = select.select(socks, [], [], left)
        for sock in ready:
            for r in regs:
                if r.sock is sock:
                    _take_reply(ctx, r)
            for w in watched:
                if w.sock is sock:
                    w.take()


def ask(ctx, registrations: list[Registration]) -> None:
    """Wait until every registration is answered (or the reply timeout passes), then close their sockets."""
    try:
        wait(
            ctx,
            registrations=registrations,
            duration=ctx.profile.reply_timeout,
            done=lambda: all(r.answered for r in registrations),
        )
    finally:
        for r in registrations:
            r.close()


# ------------------------------------------------------------------ IP-in-IP and plain UDP


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def inner_packet(src: str, dst: str, payload: bytes) -> bytes:
    """An IPv4/UDP packet to the discard port: the inner packet of the audit's IP-in-IP probes."""
    udp = struct.pack("!HHHH", 40000, DISCARD_PORT, 8 + len(payload), 0) + payload
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst)
    )
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + udp


def marker(tag: str) -> bytes:
    return f"mipcheck-site {tag} ".encode() + os.urandom(8).hex().encode()


def send_ipip(ctx, v: Vantage, dst: str, *, inner_src: str | None, inner_dst: str, mark: bytes) -> str:
    """One IP-in-IP packet from ``v`` to ``dst``; returns the outer source address (noted in the evidence)."""
    source = source_address(v, dst)
    if source is None:
        raise TesterError(f"vantage point {v.name} has no route to {dst}")
    sock = open_socket(v, socket.SOCK_RAW, IPPROTO_IPIP)
    try:
        sock.sendto(inner_packet(inner_src or source, inner_dst, mark), (dst, 0))
    except OSError as exc:
        raise TesterError(f"vantage point {v.name}: cannot send IP-in-IP to {dst}: {exc.strerror or exc}") from None
    finally:
        sock.close()
    ctx.note(f"{v.name}: IP-in-IP {source} -> {dst} (inner {inner_src or source} -> {inner_dst}) sent")
    return source


def send_udp(v: Vantage, dst: str, port: int, payload: bytes) -> str | None:
    """One plain UDP datagram from ``v`` (the sender's own routing and IPsec policy decide its way)."""
    sock = open_socket(v)
    try:
        sock.sendto(payload, (dst, port))
        return sock.getsockname()[0]
    except OSError:
        return None
    finally:
        sock.close()


# ------------------------------------------------------------------ IKE


@dataclass
class IkeAnswer:
    port: int
    response: ike.InitResponse | None  # None: nothing came back
    tries: int


def ike_sa_init(ctx, v: Vantage, gateway: str, port: int) -> IkeAnswer:
    """IKE_SA_INIT with NAT-D to ``gateway``:``port`` (4500: behind the non-ESP marker); retries as asked.

    A responder may ask for another Diffie-Hellman group (INVALID_KE_PAYLOAD)
    or a cookie (COOKIE): the request is sent again as RFC 7296 2.6 and 1.2 say.
    """
    source = source_address(v, gateway)
    if source is None:
        raise TesterError(f"vantage point {v.name} has no route to {gateway}")
    sock = open_socket(v)
    try:
        sock.bind((source, 0))
        local = sock.getsockname()
        prefix = ike.NON_ESP_MARKER if port == ike.NAT_T_PORT else b""
        group, cookie, response = ike.GROUPS[0], None, None
        for attempt in range(1, 4):
            req = ike.sa_init_request(local, (gateway, port), group=group, cookie=cookie)
            sock.sendto(prefix + req.data, (gateway, port))
            ctx.capture.record(local, (gateway, port), prefix + req.data, SENT, f"{v.name}: IKE_SA_INIT")
            response = None
            deadline = time.monotonic() + ctx.profile.reply_timeout
            while (left := deadline - time.monotonic()) > 0:
                ready, _, _ = select.select([sock], [], [], left)
                if not ready:
                    break
                with contextlib.suppress(ConnectionRefusedError):
                    data, src = sock.recvfrom(65535)
                    ctx.capture.record(src, local, data, RECEIVED, f"{v.name}: IKE")
                    if prefix and data.startswith(prefix):
                        data = data[len(prefix) :]
                    got = ike.parse_response(data, req)
                    if got.problem is None:
                        response = got
                        break
                    ctx.note(f"{v.name}: ignored from {src[0]}:{src[1]}: {got.problem}")
            if response is None:
                return IkeAnswer(port, None, attempt)
            if response.wanted_group in ike.GROUPS and response.wanted_group != group and not response.accepted:
                group = response.wanted_group
                continue
            if ike.COOKIE in response.notifies and cookie is None and not response.accepted:
                cookie = response.notifies[ike.COOKIE]
                continue
            return IkeAnswer(port, response, attempt)
        return IkeAnswer(port, response, 3)
    except OSError as exc:
        raise TesterError(f"vantage point {v.name}: IKE to {gateway}:{port}: {exc.strerror or exc}") from None
    finally:
        sock.close()
