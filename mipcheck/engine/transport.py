"""UDP endpoints the tester plays from: bound to a chosen source, every datagram recorded.

Blocking sockets with deadlines, one set per case: concurrent cases never
share a socket, so a reply can only reach the case that caused it. Binding
any 127.x address needs no privileges on Linux, which is how one machine
plays both trusted and untrusted sources.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from .evidence import RECEIVED, SENT, Capture, Datagram
from .verdicts import TesterError

MAX_DATAGRAM = 65535


class Endpoint:
    """One bound UDP socket of the tester."""

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
            raise TesterError(f"cannot send from {self.address}:{self.port} to {dst[0]}:{dst[1]}: {exc.strerror or exc}") from exc
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
