"""Helpers of the RFC 5265 trust/TNC/NAT cases: where a misdirected reply may land, binding state, every TNC.

* :class:`Places` binds the tester's sockets where a sloppy device may send
  what it should not send at all (port 434 of the source, the claimed
  Care-of Address) and names each place, so evidence says where a reply went.
* :func:`binding_state` is the device's view of a home address's bindings
  when the device gives one (the built-in home agent does); None otherwise.
* :func:`tnc_extensions` and friends judge every TNC of a reply, not the first.
* :func:`run_log_baseline` is the device's log as it was before this run's
  first untrusted request, kept once per run (keyed by the control object).
"""

from __future__ import annotations

import socket
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mipcheck.engine.control import DeviceControl
from mipcheck.engine.evidence import RECEIVED, Capture, Datagram
from mipcheck.engine.runner import CaseContext
from mipcheck.engine.transport import Endpoint
from mipcheck.engine.verdicts import Check, TesterError

from . import judge
from .messages import Request

MIP_PORT = 434

# ------------------------------------------------------------------ per-run log baseline

_baselines: weakref.WeakKeyDictionary[DeviceControl, str | None] = weakref.WeakKeyDictionary()
_baselines_lock = threading.Lock()


def run_log_baseline(ctx: CaseContext) -> str | None:
    """The device's log before this run's first untrusted request (the first call in a run reads it).

    Every case that sends from an untrusted source calls this first, so a
    device that logs each source once (legitimate deduplication) still shows
    its line to HA-UNTRUSTED-LOG, whichever case made it.
    """
    with _baselines_lock:
        if ctx.control not in _baselines:
            _baselines[ctx.control] = ctx.control.read_log()
        return _baselines[ctx.control]


# ------------------------------------------------------------------ sockets at the wrong places

# Port 434 of an address may be wanted by several concurrent cases: one shared socket per place,
# whose datagrams go to the case whose home address they carry (each case leases its own).
SHARED_POLL = 0.01  # seconds between looks at a shared socket while a case listens (real UDP only)


def route_key(payload: bytes) -> str | None:
    """The home address a datagram is about: a reply's Home Address, tunnel data's inner destination."""
    if len(payload) >= 8 and payload[0] == 3:  # Registration Reply (RFC 5944 3.4)
        return socket.inet_ntoa(payload[4:8])
    if len(payload) >= 24 and payload[0] == 4 and payload[4] >> 4 == 4:  # RFC 3519 tunnel data, IPv4 inside
        return socket.inet_ntoa(payload[20:24])
    return None


class _SharedPlace:
    """One tester socket at a fixed place, read on behalf of every case listening there."""

    def __init__(self, ep, key: tuple[int, str, int]) -> None:
        self.ep = ep
        self.key = key
        self.lock = threading.Lock()
        self.listeners: list[_PlaceListener] = []

    def poll(self, window: float) -> None:
        with self.lock:
            for d in self.ep.drain(window):
                home = route_key(d.payload)
                for listener in list(self.listeners):
                    if home is None or home in listener.homes:
                        listener.inbox.append(d)


_shared: dict[tuple[int, str, int], _SharedPlace] = {}
_shared_lock = threading.Lock()


class _PlaceListener:
    """A case's view of a shared place: what arrived there for its home addresses, in its own evidence."""

    def __init__(self, ctx: CaseContext, place: _SharedPlace) -> None:
        self.ctx = ctx
        self.place = place
        self.homes = {mn.home_address for mn in ctx.mobile_nodes}
        self.inbox: list[Datagram] = []
        self.local = place.ep.local

    def drain(self, window: float) -> list[Datagram]:
        clock = self.ctx.time
        if not self.ctx.transport.concurrent:
            self.place.poll(window)  # one thread drives the simulated network: just run it
        else:
            deadline = clock.monotonic() + window
            while True:
                self.place.poll(0)
                left = deadline - clock.monotonic()
                if left <= 0:
                    break
                threading.Event().wait(min(SHARED_POLL, left))
        got, self.inbox = self.inbox, []
        return [self.ctx.capture.record(d.src, d.dst, d.payload, RECEIVED, d.note) for d in got]

    def drain_until(self, deadline: float) -> list[Datagram]:
        return self.drain(max(0.0, deadline - self.ctx.time.monotonic()))

    def close(self) -> None:
        with _shared_lock:
            if self in self.place.listeners:
                self.place.listeners.remove(self)
            if not self.place.listeners:
                _shared.pop(self.place.key, None)
                self.place.ep.close()


def listen_shared(ctx: CaseContext, address: str, port: int) -> _PlaceListener:
    """Listen at a fixed place another case may listen at too (raises TesterError if it cannot be bound)."""
    key = (id(ctx.transport), address, port)
    with _shared_lock:
        place = _shared.get(key)
        if place is None:
            place = _shared[key] = _SharedPlace(ctx.transport.endpoint(Capture(ctx.time), address, port), key)
        listener = _PlaceListener(ctx, place)
        place.listeners.append(listener)
        return listener


@dataclass
class Places:
    """Tester sockets where a reply must not go, each with a name for the evidence."""

    ctx: CaseContext
    eps: list[tuple[Any, str]] = field(default_factory=list)

    def add(self, address: str, port: int, name: str) -> Any | None:
        """Listen at ``address:port`` (best effort: a place the tester cannot bind is noted and skipped).

        Port 434 is shared with concurrent cases (routed by home address); any
        other port is this case's own socket.
        """
        if any(ep.local == (address, port) for ep, _ in self.eps):
            return None
        try:
            ep = listen_shared(self.ctx, address, port) if port == MIP_PORT else self.ctx.endpoint(address, port)
        except TesterError as exc:
            self.ctx.note(f"not listening at {address}:{port} ({name}): {exc.reason}")
            return None
        self.eps.append((ep, name))
        return ep

    def add_probe(self, ep: Endpoint, name: str) -> None:
        self.eps.append((ep, name))

    def drain(self, window: float) -> list[tuple[Datagram, str]]:
        """Everything arriving at any place within one shared window."""
        deadline = self.ctx.time.monotonic() + window
        return [(d, name) for ep, name in self.eps for d in ep.drain_until(deadline)]

    def close(self) -> None:
        for ep, _ in self.eps:
            ep.close()
        self.eps.clear()

    def __enter__(self) -> Places:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def paired_endpoints(ctx: CaseContext, source: str, other: str, places: Places, name: str) -> Endpoint:
    """A probe socket at ``source:P`` and a listener at ``other:P`` (the same port on the claimed CoA).

    A device that answers the Care-of Address instead of the source most
    likely keeps the source port; both sockets share it. Falls back to the
    probe socket alone when no common port is free.
    """
    for _ in range(10):
        probe = ctx.endpoint(source)
        if other == source:
            return probe
        if places.add(other, probe.port, name) is not None:
            return probe
        probe.close()
    ctx.note(f"no port free on both {source} and {other}: not listening at the Care-of Address")
    return ctx.endpoint(source)


def where(d: Datagram, name: str) -> str:
    """What arrived and where: ``frame 9: reply code 0 (...), at 127.0.0.99:40211 (the Care-of Address)``."""
    return f"{judge.describe(d)}, at {d.dst[0]}:{d.dst[1]} ({name})"


# ------------------------------------------------------------------ judging silence of many probes at many places


@dataclass
class Probe:
    label: str
    req: Request
    sent: Datagram


def judge_silence(
    probes: Sequence[Probe], heard: Iterable[tuple[Datagram, str]], window: float, expected_where: str
) -> list[Check]:
    """One check per probe (a reply for it anywhere fails it), one for anything else that arrived."""
    heard = list(heard)
    claimed: set[int] = set()
    checks = []
    for p in probes:
        mine = [(d, n) for d, n in heard if judge.is_reply_to(p.req, d)]
        claimed.update(id(d) for d, _ in mine)
        observed = f"nothing within {window:g} s" if not mine else "; ".join(where(d, n) for d, n in mine)
        frames = (p.sent.frame, *(d.frame for d, _ in mine))
        checks.append(
            Check(
                f"reply to {p.label}",
                f"no reply at all (silently dropped) at {expected_where}",
                observed,
                not mine,
                frames,
            )
        )
    rest = [(d, n) for d, n in heard if id(d) not in claimed]
    if rest:
        sent = tuple(p.sent.frame for p in probes)
        observed = "; ".join(where(d, n) for d, n in rest)
        checks.append(
            Check(
                "other datagrams after the untrusted requests",
                f"nothing at {expected_where}",
                observed,
                False,
                sent + tuple(d.frame for d, _ in rest),
            )
        )
    return checks


# ------------------------------------------------------------------ the device's binding state


def binding_state(ctx: CaseContext, home_address: str) -> tuple[tuple[str, str], ...] | None:
    """(care-of address, registering source address) of each binding of ``home_address``; None: cannot see.

    Asked through the device's side channel (``DeviceControl.bindings_of``),
    never by reaching into a reference device.
    """
    got = ctx.control.bindings_of(home_address)
    return None if got is None else tuple(got)


def describe_bindings(state: tuple[tuple[str, str], ...]) -> str:
    if not state:
        return "no binding"
    return ", ".join(f"CoA {coa} (registered from {src})" for coa, src in state)


def check_binding_kept(
    ctx: CaseContext, home: str, before: tuple[tuple[str, str], ...] | None, after_what: str, frames: tuple[int, ...]
) -> Check | None:
    """The live binding is as it was before the untrusted requests (None when the device cannot be asked)."""
    if before is None:
        return None
    after = binding_state(ctx, home)
    if after is None:
        return None
    return Check(
        f"binding of {home} after {after_what}",
        f"unchanged: {describe_bindings(before)}",
        describe_bindings(after),
        after == before,
        frames,
    )


# ------------------------------------------------------------------ every TNC of a reply (RFC 5265 3.4)


def tnc_extensions(data: bytes) -> list[judge.Ext]:
    return [e for e in judge.extensions(data) if e.type == judge.TNC_TYPE]


def check_tnc_each_format(label: str, reply: Datagram) -> list[Check]:
    """Exactly one TNC, and every TNC is Length 2, Sub-Type 0, Reserved 0."""
    tncs = tnc_extensions(reply.payload)
    f = (reply.frame,)
    checks = [Check(f"number of TNC extensions in {label}", "exactly one", str(len(tncs)), len(tncs) == 1, f)]
    for i, tnc in enumerate(tncs, 1):
        sub = tnc.body[0] if len(tnc.body) > 0 else None
        res = tnc.body[1] if len(tnc.body) > 1 else None
        at = f"TNC #{i} (octet {tnc.offset}) in {label}"
        checks += [
            Check(f"{at}: Length", str(judge.TNC_LENGTH), str(tnc.length), tnc.length == judge.TNC_LENGTH, f),
            Check(
                f"{at}: Sub-Type",
                str(judge.TNC_SUBTYPE),
                "absent" if sub is None else str(sub),
                sub == judge.TNC_SUBTYPE,
                f,
            ),
            Check(f"{at}: Reserved", "0 (set to 0 when sending)", "absent" if res is None else str(res), res == 0, f),
        ]
    return checks


def check_tnc_each_before_auth(label: str, reply: Datagram) -> list[Check]:
    """Every TNC precedes the MN-HA authentication extension (so the authenticator covers it)."""
    auth = judge.mn_ha_auth(reply.payload)
    f = (reply.frame,)
    if auth is None:
        return [
            Check(
                f"TNC position in {label}",
                "TNC before the MN-HA authentication extension",
                "no MN-HA authentication extension",
                False,
                f,
            )
        ]
    return [
        Check(
            f"TNC #{i} position in {label}",
            "before the MN-HA authentication extension (covered by it)",
            f"TNC at octet {tnc.offset}, MN-HA authentication at octet {auth.offset}",
            tnc.offset < auth.offset,
            f,
        )
        for i, tnc in enumerate(tnc_extensions(reply.payload), 1)
    ]
