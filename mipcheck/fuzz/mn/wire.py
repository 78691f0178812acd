"""The played i-HA and x-HA on loopback sockets, one case's exchange with the device, and the name of its reaction.

:class:`Wire` binds a UDP socket at each played home agent's exact place
(the profile's ``[i_ha]`` and ``[x_ha]``) with ``IP_RECVERR``, so an ICMP
port unreachable for anything sent to the device (its socket gone: a
crashed device) is seen although the socket is not connected.

:func:`run_case` is one stateful case: move the device inside, wait for its
first registration request to the case's party, then either answer it with
the mutated reply (``reply`` stage) or answer it validly and send the
mutated message after it (``data`` stage), and listen for ``window``
seconds. The detection requests the device sends to both home agents at
once (RFC 5265 3.3) are part of the setup, never of the reaction.

Reactions (:func:`classify`), joined with ``+`` when several:
``silent``; ``refused`` (ICMP unreachable from the device);
``retransmission-iha|xha`` (a request with the Identification just
answered); ``new-request-iha|xha`` (a request with another one);
``dereg-iha|xha`` (Lifetime 0: after an i-HA reply, the device took it for
an inside verdict and leaves the x-HA, RFC 5265 3.3); ``echo-reply`` and
``tunnel-data`` (MIP Tunnel Data from the device); ``type-N`` and
``garbled`` (anything else); ``inside-unsigned`` (the device acted on an
i-HA reply that carried no valid authenticator); and, when the case could
not be sent, ``move-failed`` or ``no-request``.
"""

from __future__ import annotations

import select
import socket
import time
from dataclasses import dataclass, field

from mipcheck.errors import MipcheckError
from mipcheck.mn.dataplane import parse_echo, untunnel
from mipcheck.proto import codec
from mipcheck.proto import numbers as n

from .cases import DATA, MnCase, sent_octets, valid_reply
from .context import IHA, PARTIES, XHA, MnContext
from .target import MoveFailed, Mover

Address = tuple[str, int]
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)  # Linux
MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)
SETTLE = 0.005  # seconds after a valid setup reply for the device's answer to it (its x-HA de-registration)

#: Reaction parts after which the campaign checks the device's health at once.
UNUSUAL = frozenset({"refused", "garbled", "inside-unsigned", "move-failed", "no-request"})


@dataclass(frozen=True)
class Datagram:
    party: str  # whose socket it arrived on
    src: Address
    data: bytes
    at: float


class Wire:
    """The played home agents' sockets; ``refused`` says an ICMP error arrived since it was last cleared."""

    def __init__(self, ctx: MnContext) -> None:
        self.ctx = ctx
        self.socks: dict[str, socket.socket] = {}
        self.refused = False
        try:
            for name in PARTIES:
                self.socks[name] = self._bind(ctx.party(name).place, name)
        except BaseException:
            self.close()
            raise
        self._by_fd = {s.fileno(): name for name, s in self.socks.items()}

    @staticmethod
    def _bind(place: Address, name: str) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_IP, IP_RECVERR, 1)
            sock.bind(place)
        except OSError as exc:
            sock.close()
            section = "i_ha" if name == IHA else "x_ha"
            raise MipcheckError(
                f"cannot play the {section.replace('_', '-')} at {place[0]}:{place[1]} ([{section}] of the profile): "
                f"{exc.strerror or exc}"
            ) from None
        sock.setblocking(False)
        return sock

    def close(self) -> None:
        for sock in self.socks.values():
            sock.close()
        self.socks = {}

    def send(self, party: str, data: bytes, dst: Address) -> None:
        try:
            self.socks[party].sendto(data, dst)
        except ConnectionRefusedError:
            self.refused = True
        except OSError:
            pass  # e.g. EMSGSIZE: not sent; the device stays silent

    def _read(self, name: str, now: float) -> list[Datagram]:
        sock = self.socks[name]
        out: list[Datagram] = []
        while True:
            try:
                while True:  # ICMP errors first: each must be taken off the error queue
                    sock.recvmsg(1, 512, MSG_ERRQUEUE)
                    self.refused = True
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                pass
            try:
                data, src = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return out
            except ConnectionRefusedError:
                self.refused = True
                continue
            except OSError:
                return out
            out.append(Datagram(name, (src[0], src[1]), data, now))

    def receive(self, timeout: float) -> list[Datagram]:
        """What arrives within ``timeout`` (all of it once the first is there); [] when nothing did."""
        socks = list(self.socks.values())
        ready, _w, _x = select.select(socks, [], [], max(0.0, timeout))
        now = time.monotonic()
        out: list[Datagram] = []
        for sock in ready:
            out += self._read(self._by_fd[sock.fileno()], now)
        return out

    def drain(self) -> None:
        """Forget what arrived so far (late answers to earlier cases) and any ICMP error."""
        while self.receive(0):
            pass
        self.refused = False

    def collect(self, until: float) -> list[Datagram]:
        """Everything that arrives until ``until`` (monotonic seconds)."""
        out: list[Datagram] = []
        while (left := until - time.monotonic()) > 0:
            out += self.receive(left)
        out += self.receive(0)
        return out


def is_registration(d: Datagram) -> bool:
    """A Registration Request with a non-zero lifetime (not a de-registration)."""
    return len(d.data) >= codec.RRQ_FIXED.size and d.data[0] == n.MSG_RRQ and d.data[2:4] != b"\0\0"


def wait_request(wire: Wire, party: str, until: float, seen: list[Datagram]) -> Datagram | None:
    """The first registration request (lifetime > 0) to ``party`` arriving until ``until``; the rest in ``seen``."""
    while True:
        for d in seen:
            if d.party == party and is_registration(d):
                seen.remove(d)
                return d
        left = until - time.monotonic()
        if left <= 0:
            return None
        seen += wire.receive(left)


@dataclass
class Exchange:
    """One case as it went: what mipcheck sent, to what, and what the device sent in the window after it."""

    sent: list[bytes] = field(default_factory=list)  # setup reply (data stage), then the case's octets
    main: bytes | None = None  # the case's octets as sent; None: not sent (``problem`` says why)
    request: Datagram | None = None  # the device's request the case (or its setup) answered
    replies: list[Datagram] = field(default_factory=list)
    refused: bool = False
    problem: str | None = None  # move-failed | no-request
    detail: str = ""
    detection: frozenset[str] = frozenset()  # parties whose detection request arrived before the case was sent

    @property
    def device(self) -> Address | None:
        return self.request.src if self.request is not None else None


def run_case(ctx: MnContext, wire: Wire, mover: Mover, case: MnCase, window: float, request_timeout: float) -> Exchange:
    ex = Exchange()
    wire.drain()
    try:
        mover.move("inside")
    except MoveFailed as exc:
        ex.problem, ex.detail = "move-failed", str(exc)
        return ex
    party = IHA if case.stage == DATA else case.party
    seen: list[Datagram] = []
    req = wait_request(wire, party, time.monotonic() + request_timeout, seen)
    if req is None:
        ex.problem = "no-request"
        ex.detail = f"no registration request reached the {party} within {request_timeout:g} s of the move"
        ex.refused = wire.refused
        return ex
    ex.request = req
    parsed = codec.parse_request(req.data)
    ident = parsed.identification if parsed is not None else None
    if case.stage == DATA:
        if parsed is None:
            ex.problem, ex.detail = "no-request", "the device's request to the i-HA does not parse"
            return ex
        setup = valid_reply(ctx, ctx.iha, parsed)
        wire.send(IHA, setup, req.src)
        ex.sent.append(setup)
        seen += wire.collect(time.monotonic() + SETTLE)  # its x-HA de-registration, if it sends one at once
        main = case.payload
    else:
        main = sent_octets(case, ident)
    ex.detection = frozenset(d.party for d in seen if is_registration(d)) | {party}
    wire.refused = False
    wire.send(party, main, req.src)
    ex.sent.append(main)
    ex.main = main
    ex.replies = wire.collect(time.monotonic() + window)
    ex.refused = wire.refused
    return ex


def classify(ex: Exchange, case: MnCase) -> str:
    """The device's reaction to the case, in a few words (the coverage key's second half)."""
    if ex.problem is not None:
        return ex.problem
    parts: set[str] = set()
    if ex.refused:
        parts.add("refused")
    answered = ex.request.data[16:24] if ex.request is not None else b""
    first_seen = set(ex.detection)
    for d in ex.replies:
        data = d.data
        if not data:
            parts.add("garbled")
        elif data[0] == n.MSG_RRQ:
            req = codec.parse_request(data)
            if req is None or req.error:
                parts.add("garbled")
            elif req.lifetime == 0:
                parts.add(f"dereg-{d.party}")
            elif d.party not in first_seen:
                first_seen.add(d.party)  # the other party's detection request, late: setup, not a reaction
            elif d.party == (XHA if case.party == XHA and case.stage != DATA else IHA) and data[16:24] == answered:
                parts.add(f"retransmission-{d.party}")
            else:
                parts.add(f"new-request-{d.party}")
        elif data[0] == n.MSG_TUNNEL_DATA:
            inner = untunnel(data)
            echo = parse_echo(inner) if inner is not None else None
            parts.add("echo-reply" if echo is not None and not echo.request else "tunnel-data")
        else:
            parts.add(f"type-{data[0]}")
    if not case.signed and case.stage != DATA and case.party == IHA and "dereg-xha" in parts:
        parts.add("inside-unsigned")  # an unauthenticated i-HA reply taken for an inside verdict (RFC 5265 4.1)
    return "+".join(sorted(parts)) or "silent"


def unusual(reaction: str) -> bool:
    return any(p in UNUSUAL or p.startswith("type-") for p in reaction.split("+"))
