"""The endpoints the tester plays from: bound to a chosen source, every datagram recorded.

Two transports give the same endpoint interface (``send``, ``receive``,
``drain``, ``drain_until``, ``close``, ``local``, ``refused``, ``clock``):
:class:`UDPTransport`, real sockets with deadlines, one set per case, so
concurrent cases never share a socket (binding any 127.x address needs no
privileges on Linux, which is how one machine plays both trusted and
untrusted sources); and :class:`SimTransport`, the same over
:class:`mipcheck.sim.network.SimNetwork` in virtual time, where a suite's
cases run one after another and a minute of protocol costs milliseconds.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from mipcheck.clock import SYSTEM_CLOCK, Clock

from .evidence import RECEIVED, SENT, Capture, Datagram
from .pool import IdentificationClock, clock_for
from .verdicts import TesterError

MAX_DATAGRAM = 65535


class Endpoint:
    """One bound UDP socket of the tester."""

    clock: Clock = SYSTEM_CLOCK

    def __init__(self, capture: Capture, address: str, port: int = 0) -> None:
        self.capture = capture
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((address, port))
        except OSError as exc:
            self.sock.close()
            raise TesterError(f"cannot bind tester source {address}:{port}: {exc.strerror or exc}") from exc
        self.address, self.port = self.sock.getsockname()[:2]
        self._pending: list[Datagram] = []
        self.refused = False  # an ICMP port unreachable came back: nothing listens where we sent

    @property
    def local(self) -> tuple[str, int]:
        return (self.address, self.port)

    def send(self, payload: bytes, dst: tuple[str, int], note: str = "") -> Datagram:
        try:
            self.sock.sendto(payload, dst)
        except OSError as exc:
            raise TesterError(
                f"cannot send from {self.address}:{self.port} to {dst[0]}:{dst[1]}: {exc.strerror or exc}"
            ) from exc
        return self.capture.record(self.local, dst, payload, SENT, note)

    def _read(self, timeout: float) -> Datagram | None:
        self.sock.settimeout(max(timeout, 0.0001))
        try:
            data, src = self.sock.recvfrom(MAX_DATAGRAM)
        except TimeoutError:
            return None
        except ConnectionRefusedError:
            # ICMP port unreachable from an earlier send: the device's port is closed.
            self.refused = True
            return None
        return self.capture.record(src, self.local, data, RECEIVED)

    def receive(self, timeout: float, match: Callable[[Datagram], bool] | None = None) -> Datagram | None:
        """The first datagram (matching ``match``) within ``timeout`` seconds; others are kept, not lost."""
        for i, d in enumerate(self._pending):
            if match is None or match(d):
                return self._pending.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            d = self._read(left)
            if d is None:
                continue
            if match is None or match(d):
                return d
            self._pending.append(d)

    def drain(self, window: float) -> list[Datagram]:
        """Everything that arrives within ``window`` seconds (used to judge silence)."""
        got = list(self._pending)
        self._pending.clear()
        deadline = time.monotonic() + window
        while (left := deadline - time.monotonic()) > 0:
            d = self._read(left)
            if d is not None:
                got.append(d)
        got.extend(self._sweep())
        return got

    def drain_until(self, deadline: float) -> list[Datagram]:
        """Like :meth:`drain` but up to a shared ``time.monotonic()`` deadline (several sockets, one window)."""
        return self.drain(max(0.0, deadline - time.monotonic()))

    def _sweep(self) -> list[Datagram]:
        """What is already queued in the socket, without waiting."""
        out = []
        self.sock.setblocking(False)
        try:
            while True:
                try:
                    data, src = self.sock.recvfrom(MAX_DATAGRAM)
                except BlockingIOError:
                    break
                except ConnectionRefusedError:
                    self.refused = True
                    break
                out.append(self.capture.record(src, self.local, data, RECEIVED))
        finally:
            self.sock.setblocking(True)
        return out

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Endpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class UDPTransport:
    """Real UDP sockets and the machine's clock; cases may run concurrently."""

    clock: Clock = SYSTEM_CLOCK
    concurrent = True

    def endpoint(self, capture: Capture, address: str, port: int = 0) -> Endpoint:
        return Endpoint(capture, address, port)

    def identification_clock(self, target: tuple[str, int], home_address: str) -> IdentificationClock:
        """The process-wide clock for a home address at a device (shared by every run)."""
        return clock_for(target, home_address)


UDP = UDPTransport()


class SimEndpoint:
    """A tester socket on the simulated network, with :class:`Endpoint`'s interface."""

    def __init__(self, capture: Capture, network, address: str, port: int = 0) -> None:
        self.capture = capture
        self.network = network
        self.clock = network.clock
        try:
            self.sock = network.socket(address, port)
        except OSError as exc:
            raise TesterError(f"cannot bind tester source {address}:{port}: {exc.strerror or exc}") from exc
        self.address, self.port = self.sock.local
        self._pending: list[Datagram] = []

    @property
    def local(self) -> tuple[str, int]:
        return self.sock.local

    @property
    def refused(self) -> bool:
        return self.sock.refused

    def send(self, payload: bytes, dst: tuple[str, int], note: str = "") -> Datagram:
        self.sock.send(payload, dst)
        return self.capture.record(self.local, dst, payload, SENT, note)

    def _take(self) -> list[Datagram]:
        out = []
        while self.sock.queue:
            _at, src, data = self.sock.queue.popleft()
            out.append(self.capture.record(src, self.local, data, RECEIVED))
        return out

    def receive(self, timeout: float, match: Callable[[Datagram], bool] | None = None) -> Datagram | None:
        """The first datagram (matching ``match``) within ``timeout`` virtual seconds; others are kept."""
        found: list[Datagram] = []

        def arrived() -> bool:
            for d in self._take():
                if not found and (match is None or match(d)):
                    found.append(d)
                else:
                    self._pending.append(d)
            return bool(found)

        for i, d in enumerate(self._pending):
            if match is None or match(d):
                return self._pending.pop(i)
        self.network.run_for(timeout, arrived)
        return found[0] if found else None

    def drain(self, window: float) -> list[Datagram]:
        got = list(self._pending)
        self._pending.clear()
        self.network.run_for(window)
        return got + self._take()

    def drain_until(self, deadline: float) -> list[Datagram]:
        return self.drain(max(0.0, deadline - self.clock.monotonic()))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> SimEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SimTransport:
    """The simulated network: virtual time, one case at a time, its own Identification clocks."""

    concurrent = False

    def __init__(self, network) -> None:
        self.network = network
        self.clock: Clock = network.clock
        self._clocks: dict[tuple[str, int, str], IdentificationClock] = {}

    def endpoint(self, capture: Capture, address: str, port: int = 0) -> SimEndpoint:
        return SimEndpoint(capture, self.network, address, port)

    def identification_clock(self, target: tuple[str, int], home_address: str) -> IdentificationClock:
        key = (target[0], target[1], home_address)
        if key not in self._clocks:
            self._clocks[key] = IdentificationClock(self.clock.time)
        return self._clocks[key]
