"""SimNetwork: UDP between sans-IO actors and tester sockets, in virtual time, every datagram recorded.

Why: the protocol's timers (replay windows, lifetimes, RFC 5265's T_MONITOR
of 60 s) make real-time tests slow; the parties are sans-IO cores anyway, so
a loop that hands them datagrams and fires their timers in a virtual clock
runs a minute of protocol in milliseconds, deterministically.

Every party is an *actor* with one interface (aioquic's):
``receive_datagram(data, src, local, now)``, ``datagrams_to_send(now)``
(``(data, local, dst)`` triples), ``get_timer()`` (the wall-clock time of its
next timer, or None) and ``handle_timer(now)``. ``now`` is wall-clock seconds
of the virtual clock. Tester sockets (:class:`SimSocket`) queue what reaches
them. Reachability rules play the firewall of RFC 5265 3.1; a datagram to an
address and port nobody holds marks the sender's socket ``refused``, as an
ICMP port unreachable would.

Not thread-safe by design: one thread drives it (the suite runs its cases
one after another over it; each costs no real time).
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from mipcheck.clock import VirtualClock

Address = tuple[str, int]
EPHEMERAL_PORTS = range(49152, 65536)
DELIVERED, BLOCKED, UNREACHABLE = "delivered", "blocked", "unreachable"


class Actor(Protocol):
    """A sans-IO protocol party (home agent, mobile node, VPN gateway, foreign agent)."""

    def receive_datagram(self, data: bytes, src: Address, local: Address, now: float) -> None: ...

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address, Address]]: ...

    def get_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...


class QueueActor:
    """The plumbing of an actor that only answers what it receives: an outbox and no timer."""

    def __init__(self) -> None:
        self._out: list[tuple[bytes, Address, Address]] = []

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address, Address]]:
        out, self._out = self._out, []
        return out

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        return None


@dataclass(frozen=True)
class Transmission:
    """One datagram on the simulated wire and what became of it (the network's own evidence)."""

    time: float  # virtual wall-clock time it was sent
    src: Address
    dst: Address
    data: bytes
    fate: str  # delivered | blocked | unreachable


@dataclass
class SimSocket:
    """A tester-side UDP socket on the simulated network."""

    network: SimNetwork
    address: str
    port: int
    queue: deque[tuple[float, Address, bytes]] = field(default_factory=deque)
    refused: bool = False
    closed: bool = False

    @property
    def local(self) -> Address:
        return (self.address, self.port)

    def send(self, data: bytes, dst: Address) -> None:
        self.network.send(self.local, dst, data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.network.release(self.local)


@dataclass(frozen=True)
class Rule:
    """Datagrams from ``src`` to ``dst`` (networks) are ``allowed`` or dropped; first match wins."""

    src: ipaddress.IPv4Network
    dst: ipaddress.IPv4Network
    allowed: bool


class SimNetwork:
    """Actors and sockets by (address, port); a heap of deliveries in virtual time."""

    def __init__(self, clock: VirtualClock | None = None, *, latency: float = 0.0002) -> None:
        self.clock = clock or VirtualClock()
        self.latency = latency
        self.log: list[Transmission] = []
        self.rules: list[Rule] = []
        self._actors: dict[Address, Actor] = {}
        self._sockets: dict[Address, SimSocket] = {}
        self._events: list[tuple[float, int, Address, Address, bytes]] = []
        self._seq = itertools.count()

    # ---- topology
    def attach(self, actor: Actor, address: str, port: int = 0) -> Address:
        """Give ``actor`` an address and port (0: a free one); returns it."""
        place = (address, port or self._free_port(address))
        self._claim(place)
        self._actors[place] = actor
        return place

    def socket(self, address: str, port: int = 0) -> SimSocket:
        place = (address, port or self._free_port(address))
        self._claim(place)
        sock = SimSocket(self, *place)
        self._sockets[place] = sock
        return sock

    def release(self, place: Address) -> None:
        self._actors.pop(place, None)
        self._sockets.pop(place, None)

    def _claim(self, place: Address) -> None:
        ipaddress.IPv4Address(place[0])  # a bad address is the caller's bug
        if place in self._actors or place in self._sockets:
            raise OSError(98, f"address {place[0]}:{place[1]} already in use on the simulated network")

    def _free_port(self, address: str) -> int:
        for port in EPHEMERAL_PORTS:
            if (address, port) not in self._actors and (address, port) not in self._sockets:
                return port
        raise OSError(98, f"no free port on {address}")

    def allow(self, src: str, dst: str) -> None:
        self.rules.append(Rule(ipaddress.IPv4Network(src), ipaddress.IPv4Network(dst), True))

    def block(self, src: str, dst: str) -> None:
        """Drop datagrams from ``src`` to ``dst`` (networks), e.g. the firewall of RFC 5265 3.1."""
        self.rules.append(Rule(ipaddress.IPv4Network(src), ipaddress.IPv4Network(dst), False))

    def reachable(self, src: str, dst: str) -> bool:
        s, d = ipaddress.IPv4Address(src), ipaddress.IPv4Address(dst)
        for rule in self.rules:
            if s in rule.src and d in rule.dst:
                return rule.allowed
        return True

    # ---- traffic
    def send(self, src: Address, dst: Address, data: bytes) -> None:
        now = self.clock.monotonic()
        heapq.heappush(self._events, (now + self.latency, next(self._seq), src, (dst[0], int(dst[1])), bytes(data)))

    def _deliver(self, src: Address, dst: Address, data: bytes) -> None:
        now = self.clock.time()
        if not self.reachable(src[0], dst[0]):
            self.log.append(Transmission(now, src, dst, data, BLOCKED))
            return
        actor = self._actors.get(dst)
        sock = self._sockets.get(dst)
        if actor is None and sock is None:
            self.log.append(Transmission(now, src, dst, data, UNREACHABLE))
            sender = self._sockets.get(src)
            if sender is not None:
                sender.refused = True  # ICMP port unreachable
            return
        self.log.append(Transmission(now, src, dst, data, DELIVERED))
        if sock is not None:
            sock.queue.append((now, src, data))
            return
        assert actor is not None
        actor.receive_datagram(data, src, dst, now)
        self._flush(actor)

    def wake(self, actor: Actor) -> None:
        """Send what ``actor`` has queued after an outside stimulus (e.g. a mobile node told to register)."""
        self._flush(actor)

    def _flush(self, actor: Actor) -> None:
        for data, local, dst in actor.datagrams_to_send(self.clock.time()):
            self.send(local, dst, data)

    def _next_timer(self) -> tuple[float, Actor] | None:
        best: tuple[float, Actor] | None = None
        for actor in list(self._actors.values()):
            at = actor.get_timer()
            if at is not None and (best is None or at < best[0]):
                best = (at, actor)
        return best

    def run_until(self, deadline: float, stop: Callable[[], bool] | None = None) -> None:
        """Process deliveries and timers in time order until ``deadline`` (monotonic) or ``stop()``."""
        while True:
            if stop is not None and stop():
                return
            timer = self._next_timer()
            timer_at = None if timer is None else max(timer[0] - self.clock.epoch, self.clock.monotonic())
            event_at = self._events[0][0] if self._events else None
            candidates = [t for t in (timer_at, event_at) if t is not None]
            if not candidates or min(candidates) > deadline:
                self.clock.advance_to(deadline)
                return
            if event_at is not None and (timer_at is None or event_at <= timer_at):
                at, _seq, src, dst, data = heapq.heappop(self._events)
                self.clock.advance_to(at)
                self._deliver(src, dst, data)
            else:
                assert timer is not None and timer_at is not None
                self.clock.advance_to(timer_at)
                timer[1].handle_timer(self.clock.time())
                self._flush(timer[1])
                if timer[1].get_timer() == timer[0]:
                    raise RuntimeError(
                        f"{type(timer[1]).__name__}.handle_timer left its timer at {timer[0]}: it would fire forever"
                    )

    def run_for(self, seconds: float, stop: Callable[[], bool] | None = None) -> None:
        self.run_until(self.clock.monotonic() + seconds, stop)
