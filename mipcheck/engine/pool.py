"""Mobile nodes leased to cases, and one monotonic Identification clock per home address.

Why: a home agent keeps its replay state and bindings per home address and
may reject an Identification that arrives out of order (RFC 5944 5.7
timestamps double as sequence numbers). So concurrent cases never share a
home address (each leases its own from the profile's pool, least recently
used first), and every Identification sent for a home address, by any case
of any run in this process, comes from one strictly increasing clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from mipcheck.proto.identification import timestamp_identification

from .profile import MobileNode


class IdentificationClock:
    """Strictly increasing NTP-format timestamps (RFC 5944 5.7.1) for one home address."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._last = 0
        self._now = now  # wall-clock seconds: the machine's, or a simulation's virtual clock

    @property
    def last(self) -> int:
        return self._last

    def next(self) -> int:
        """A fresh identification: the current time, or just above the last one sent."""
        with self._lock:
            ident = timestamp_identification(self._now())
            if ident <= self._last:
                ident = self._last + 1
            self._last = ident
            return ident


_clocks: dict[tuple[str, int, str], IdentificationClock] = {}
_clocks_lock = threading.Lock()


def clock_for(target: tuple[str, int], home_address: str) -> IdentificationClock:
    """The process-wide clock for a home address at a device (shared by every run)."""
    key = (target[0], target[1], home_address)
    with _clocks_lock:
        clock = _clocks.get(key)
        if clock is None:
            clock = _clocks[key] = IdentificationClock()
        return clock


_leases = threading.Condition()
_leased: set[tuple[str, int, str]] = set()  # (device address, port, home address) in use by some case


class MobileNodePool:
    """Leases mobile nodes so that no two running cases use the same home address at a device.

    The lease is process-wide: two runs against the same device at once (a
    benchmark, a test) still never share a home address, because that could
    reorder its Identifications on the wire.
    """

    def __init__(self, nodes: tuple[MobileNode, ...] | list[MobileNode], target: tuple[str, int] = ("", 0)) -> None:
        if not nodes:
            raise ValueError("the pool needs at least one mobile node")
        self.target = target
        self._order: list[MobileNode] = list(nodes)  # least recently used first
        self.size = len(self._order)

    def _key(self, mn: MobileNode) -> tuple[str, int, str]:
        return (self.target[0], self.target[1], mn.home_address)

    @contextmanager
    def lease(self, count: int = 1, timeout: float | None = None) -> Iterator[list[MobileNode]]:
        """``count`` distinct mobile nodes, waiting while others hold them."""
        if count > self.size:
            raise ValueError(f"a case needs {count} mobile nodes; the profile has {self.size}")

        def free() -> list[MobileNode]:
            return [m for m in self._order if self._key(m) not in _leased]

        with _leases:
            if not _leases.wait_for(lambda: len(free()) >= count, timeout=timeout):
                raise TimeoutError("no free mobile node")
            taken = free()[:count]
            _leased.update(self._key(m) for m in taken)
            for m in taken:  # to the back: most recently used
                self._order.remove(m)
                self._order.append(m)
        try:
            yield taken
        finally:
            with _leases:
                _leased.difference_update(self._key(m) for m in taken)
                _leases.notify_all()
