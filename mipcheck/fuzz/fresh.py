"""``--identification fresh``: re-stamp registration requests at send time for devices with strict replay protection.

A case is a pure function of (seed, index), Identification included, so a
home agent that checks timestamps (RFC 5944 5.7.1: within its window of the
current time, and with a strict window greater than the last one accepted for
that home address) denies every signed case with 133 at the Identification
check and the campaign never reaches the code behind it. In ``fresh`` mode the
sender replaces the Identification of each registration request just before
sending it with a fresh NTP timestamp and renders the case again, so a signed
case gets a valid MN-HA authenticator over the new octets. The case itself
(what ``show`` prints, ``case_hex`` in ``findings.json``) does not change;
only what goes on the wire does (``sent_hex``, ``cases.sent_ident``).

Freshness: one :class:`FreshClock` per target hands out every Identification
sent to it, to cases, to the valid steps around a stateful case and to health
checks alike, each greater than the one before: strictly increasing over
everything sent to that target, hence per home address. With ``--jobs N``
against one ``--target`` the workers share one clock in shared memory, and
stamping, signing and sending a case happen under its lock, so the
Identifications also leave in increasing order. (Shards on other machines
cannot share it: give them profiles with different mobile nodes.) In
``case`` mode only the health checks use the clock, shared all the same.

A case that breaks the Identification field itself says so
(:attr:`~mipcheck.fuzz.case.Case.keeps_identification`, e.g. the
Identification edges of ``field-boundaries``) and its request is sent as
generated. Mutations that only touch part of the field (``byte-flips``) still
apply, on top of the fresh value. When a sent request carries an
Identification ahead of the clock but within :data:`FRESH_AHEAD` seconds of
now, a device may have accepted it as its newest, so the clock moves up to it
and the next fresh value is greater still.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from typing import Any

from mipcheck.proto import numbers as n
from mipcheck.proto.identification import timestamp_identification

from .case import Case, Draft

CASE, FRESH = "case", "fresh"
MODES = (CASE, FRESH)
FRESH_AHEAD = 7.0  # seconds: RFC 5944 5.7's default replay window; an accepted Identification is at most this ahead
IDENT_AT = slice(16, 24)  # RFC 5944 3.3: Identification, octets 16-23 of a Registration Request


def is_request(draft: Draft) -> bool:
    """A Registration Request draft: its fixed part (before any mutation) is type 1 with an Identification."""
    return len(draft.fixed) >= IDENT_AT.stop and draft.fixed[0] == n.MSG_RRQ


def restamp(draft: Draft, identification: int) -> Draft:
    """``draft`` with ``identification`` in its fixed part; its mutations and signer still apply when rendered."""
    fixed = draft.fixed
    return replace(draft, fixed=fixed[: IDENT_AT.start] + identification.to_bytes(8, "big") + fixed[IDENT_AT.stop :])


def sent_identification(data: bytes) -> int | None:
    """The Identification of a sent Registration Request, None for anything else (or one cut before it)."""
    if len(data) < IDENT_AT.stop or data[0] != n.MSG_RRQ:
        return None
    return int.from_bytes(data[IDENT_AT], "big")


class FreshClock:
    """Strictly increasing timestamp Identifications (RFC 5944 5.7) for one target.

    ``shared``: a ``multiprocessing`` ``Value("Q")`` that worker processes
    fuzzing the same target share (see :func:`shared_clock`); None for a
    clock of this process only. Call :meth:`next` and :meth:`observe` inside
    ``with clock.guard:`` and send before leaving it, so that what is sent
    leaves in the order it was stamped.
    """

    def __init__(self, shared: Any = None) -> None:
        self._shared = shared
        self._last = 0
        self.guard = shared.get_lock() if shared is not None else contextlib.nullcontext()

    @property
    def last(self) -> int:
        return self._shared.value if self._shared is not None else self._last

    def _set(self, value: int) -> None:
        if self._shared is not None:
            self._shared.value = value
        else:
            self._last = value

    def next(self) -> int:
        """A fresh Identification: now, or one more than the last one handed out or seen, whichever is greater."""
        value = max(timestamp_identification(time.time()), self.last + 1)
        self._set(value)
        return value

    def observe(self, identification: int) -> None:
        """A request went out with ``identification`` (mutated, or kept by its case): never hand out less."""
        if self.last < identification <= timestamp_identification(time.time() + FRESH_AHEAD):
            self._set(identification)

    def resync(self, identification: int) -> None:
        """An authenticated 133 carried the device's own time in the high-order 32 bits (RFC 5944 5.7.1): hand out
        later values from now on, as a mobile node resynchronises."""
        floor = identification & ~0xFFFFFFFF
        if floor > self.last:
            self._set(floor)


def shared_clock(mp_context) -> Any:
    """A clock value in shared memory for worker processes started from ``mp_context`` (passed at their start)."""
    return mp_context.Value("Q", 0)


class Stamper:
    """What is actually sent for a case: its own octets (``case`` mode) or re-stamped ones (``fresh`` mode)."""

    def __init__(self, mode: str = CASE, clock: FreshClock | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"identification mode {mode!r}, not one of {MODES}")
        self.mode = mode
        self.fresh = mode == FRESH
        self.clock = clock if clock is not None else FreshClock()
        self.guard = self.clock.guard if self.fresh else contextlib.nullcontext()  # around stamping and sending cases
        self.health_guard = self.clock.guard  # around stamping and sending a health check, in either mode

    def datagrams(self, case: Case) -> list[bytes]:
        """Every datagram of ``case`` as it goes out now, in sending order (inside ``with self.guard:``)."""
        if not self.fresh:
            return case.steps()
        return [self.render(draft, keep) for draft, keep in case.parts()]

    def render(self, draft: Draft, keep: bool = False) -> bytes:
        """One message as it goes out now (inside ``with self.guard:``); ``keep``: its Identification as generated."""
        if not self.fresh or not is_request(draft):
            return draft.render()
        if not keep:
            draft = restamp(draft, self.clock.next())
        data = draft.render()
        ident = sent_identification(data)
        if ident is not None:
            self.clock.observe(ident)
        return data

    def identification(self) -> int:
        """The Identification of a health check (inside ``with self.health_guard:``).

        From the clock the cases are stamped from in ``fresh`` mode; in ``case`` mode the cases do not use it,
        so it is the health checks' own (still shared by the workers on one target).
        """
        return self.clock.next()
