"""Clocks the tester and the simulated network read: the machine's, or a virtual one.

Why: protocol timers (replay windows, lifetimes, T_MONITOR) are tens of
seconds; over the simulated network they must cost nothing, so everything
that reads time on the tester's side reads it from a clock object it was
given, never from :mod:`time` directly. ``time()`` is wall-clock seconds
(Identifications, evidence timestamps), ``monotonic()`` is for deadlines.
"""

from __future__ import annotations

import time as _time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The machine's clocks."""

    time = staticmethod(_time.time)
    monotonic = staticmethod(_time.monotonic)


SYSTEM_CLOCK = SystemClock()


class VirtualClock:
    """Time that moves only when the simulation moves it; wall time starts at ``epoch``."""

    def __init__(self, epoch: float | None = None) -> None:
        self.epoch = _time.time() if epoch is None else epoch
        self.elapsed = 0.0

    def time(self) -> float:
        return self.epoch + self.elapsed

    def monotonic(self) -> float:
        return self.elapsed

    def advance_to(self, monotonic: float) -> None:
        if monotonic > self.elapsed:
            self.elapsed = monotonic
