"""Pipelined sending: many cases in flight, each reply attributed to its case by the socket it arrived on.

Waiting for a reply or a timeout per case caps a fuzzer at a few hundred
cases a second. Here each case goes out on the next of ``slots`` sockets
(each its own source port, connected to the target so the kernel reports
ICMP port unreachable as ECONNREFUSED) and the sender moves on; whatever
arrives on that socket until it is reused belongs to that case. A socket is
reused only after ``window`` seconds, so a case is listened to for at least
that long, and with 256 sockets the window costs nothing below 10,000 cases/s.

The datagrams of a case can be given as a function that makes them: it is
called right before they are sent, inside ``guard`` (the lock of a shared
fresh-Identification clock, :mod:`.fresh`), so that what is stamped first
leaves first.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_SLOTS = 256
DEFAULT_WINDOW = 0.02  # seconds a case is listened to; loopback answers in well under a millisecond


@dataclass
class Flight:
    """One case in flight and what came back for it."""

    token: Any
    sent_at: float
    replies: list[bytes] = field(default_factory=list)
    refused: bool = False
    sent: list[bytes] = field(default_factory=list)  # the datagrams as they went out


class Pipeline:
    def __init__(
        self,
        source: str,
        target: tuple[str, int],
        slots: int = DEFAULT_SLOTS,
        window: float = DEFAULT_WINDOW,
        guard: Any = None,
    ) -> None:
        self.window = window
        self.guard = guard if guard is not None else contextlib.nullcontext()
        self.poller = select.epoll()
        self.socks: list[socket.socket] = []
        self.by_fd: dict[int, int] = {}
        for i in range(slots):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((source, 0))
            s.connect(target)
            s.setblocking(False)
            self.socks.append(s)
            self.by_fd[s.fileno()] = i
            self.poller.register(s.fileno(), select.EPOLLIN | select.EPOLLERR)
        self.flights: list[Flight | None] = [None] * slots
        self.next = 0
        self.in_flight = 0

    def close(self) -> None:
        self.poller.close()
        for s in self.socks:
            s.close()

    def send(self, token: Any, datagrams: list[bytes] | Callable[[], list[bytes]]) -> list[Flight]:
        """Send one case (its datagrams back to back on one socket); returns the cases whose window closed.

        ``datagrams`` may be a function making them, called inside ``guard`` just before they go out.
        """
        i = self.next
        self.next = (i + 1) % len(self.socks)
        done: list[Flight] = []
        old = self.flights[i]
        if old is not None:
            self.harvest_until(old.sent_at + self.window)
            done.append(old)
            self.in_flight -= 1
        sock = self.socks[i]
        with self.guard:
            flight = Flight(token, time.monotonic())
            flight.sent = datagrams() if callable(datagrams) else datagrams
            for data in flight.sent:
                try:
                    sock.send(data)
                except ConnectionRefusedError:
                    flight.refused = True
                except OSError:
                    pass  # e.g. EMSGSIZE: the case is not sent; it stays silent
        self.flights[i] = flight
        self.in_flight += 1
        return done

    def harvest(self, timeout: float = 0.0) -> None:
        """Read what has arrived (waiting up to ``timeout`` for the first of it), crediting each case."""
        for fd, _ev in self.poller.poll(timeout):
            i = self.by_fd[fd]
            sock, flight = self.socks[i], self.flights[i]
            while True:
                try:
                    data = sock.recv(65535)
                except (BlockingIOError, InterruptedError):
                    break
                except ConnectionRefusedError:
                    if flight is not None:
                        flight.refused = True
                    continue
                except OSError:
                    break
                if flight is not None:
                    flight.replies.append(data)

    def harvest_until(self, deadline: float) -> None:
        """Keep reading until ``deadline`` (monotonic seconds), then once more without waiting."""
        while (left := deadline - time.monotonic()) > 0:
            self.harvest(left)
        self.harvest(0)

    def flush(self) -> list[Flight]:
        """Close every window (waiting for the youngest) and return every case in flight, oldest first."""
        done: list[Flight] = []
        order = [(self.next + k) % len(self.socks) for k in range(len(self.socks))]
        for i in order:
            flight = self.flights[i]
            if flight is None:
                continue
            self.harvest_until(flight.sent_at + self.window)
            done.append(flight)
            self.flights[i] = None
        self.in_flight = 0
        return done
