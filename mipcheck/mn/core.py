"""Sans-IO registration client: one (interface, home agent) pair, time passed in.

Builds Registration Requests (RFC 5944 3.3), keeps the Identification
(timestamps or nonces, RFC 5944 5.7, resynchronising from an authenticated
code 133), retransmits with exponential backoff (RFC 5944 3.6.3), checks
replies (RFC 5944 3.6.2.1: authenticator, Identification, home address) and
re-registers before the lifetime runs out.

An actor like every protocol party (aioquic's interface): ``register(now)``
and ``deregister(now)`` start a transaction, ``receive_datagram(data, src,
local, now)`` takes what arrives, ``datagrams_to_send(now)`` gives
``(data, local, dst)`` to send, ``next_event()`` the results one by one,
``get_timer()``/``handle_timer(now)`` the retransmission and re-registration
timers. The states and what moves between them are one table,
:data:`TRANSITIONS`. A composing core can also silence a client:
``stop_retransmitting()``, ``quiesce()`` and ``abandon()`` (RFC 5265 3.3
stops retransmissions on other events than the client's own reply).

RFC 5265 3.3 detection composes two clients per interface (one to the i-HA,
one to the x-HA) and reads ``Registered.tnc``; ``reregister_interval`` is
where T_MONITOR (3.2.4) plugs in.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from mipcheck.outcomes import Party, Violation
from mipcheck.proto import codec
from mipcheck.proto import numbers as n
from mipcheck.proto.identification import (
    NTP_UNIX_OFFSET,
    high32,
    low32,
    nonce_identification,
    timestamp_identification,
)

from . import acceptance
from .acceptance import judge_reply
from .config import MNConfig

# ------------------------------------------------------------------------------ events


@dataclass(frozen=True)
class Event:
    interface: str
    home_agent: str
    at: float


@dataclass(frozen=True)
class Registered(Event):
    code: int
    lifetime: int
    identification: int
    tnc: bool  # an authenticated, well-formed TNC extension was present (RFC 5265 3.2.3)
    tnc_issue: str | None = None  # a TNC extension was present but cannot be relied on
    udp_tunnel: tuple[int, int] | None = None  # (reply code, keepalive interval) of a UDP Tunnel Reply
    warnings: tuple[str, ...] = ()
    reply: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Deregistered(Event):
    code: int
    reply: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Denied(Event):
    code: int
    authenticated: bool  # False only for foreign-agent denials (codes 64-127), which carry no MN-HA authenticator
    tnc: bool = False
    reply: bytes = field(default=b"", repr=False)

    @property
    def reason(self) -> str:
        return n.reply_code_name(self.code)


@dataclass(frozen=True)
class TimedOut(Event):
    attempts: int


@dataclass(frozen=True)
class Resynchronised(Event):
    mode: str  # "timestamp" or "nonce"
    value: float  # clock offset in seconds, or the home agent's nonce


@dataclass(frozen=True)
class Ignored(Event):
    """A datagram that failed the reply checks; silently discarded per RFC 5944 3.6.2.1, reported here."""

    reason: str
    code: int | None = None
    reply: bytes = field(default=b"", repr=False)
    rule: str | None = None  # which reply rule it broke (mipcheck.mn.acceptance), None: not a reply problem

    @property
    def violation(self) -> Violation | None:
        """The catalogue rule the home agent's reply broke, where the catalogue has one."""
        rule_id = REPLY_RULES.get(self.rule) if self.rule else None
        return None if rule_id is None else Violation(rule_id, Party.HOME_AGENT, REPLY_CHECKS[rule_id], self.reason)


# mipcheck.mn.acceptance rule -> the catalogue requirement a reply breaking it breaks, and its suite case.
REPLY_RULES: dict[str, str] = {
    acceptance.IDENTIFICATION: "5944-5.7-REPLY-ID-LOW-ORDER",
    acceptance.AUTHENTICATION: "5944-3.5.2-REPLY-MN-HA-AUTH",
}
REPLY_CHECKS: dict[str, str] = {
    "5944-5.7-REPLY-ID-LOW-ORDER": "MIP-REPLY-ID",
    "5944-3.5.2-REPLY-MN-HA-AUTH": "MIP-REPLY-AUTH",
}

TERMINAL = (Registered, Deregistered, Denied, TimedOut)


class State(Enum):
    IDLE = "idle"
    REGISTERING = "registering"
    REGISTERED = "registered"
    DEREGISTERING = "deregistering"
    DEREGISTERED = "deregistered"
    DENIED = "denied"
    TIMED_OUT = "timed-out"
    ABANDONED = "abandoned"  # abandon(): replies to what was sent are ignored, no timers


class Trigger(Enum):
    REGISTER = "register"  # register(), or the re-registration timer
    DEREGISTER = "deregister"
    ACCEPTED = "accepted"  # an acceptable reply accepting a registration
    DEREGISTERED = "deregistered"  # an acceptable reply accepting a de-registration
    DENIED = "denied"  # an acceptable denial (or too many 133s)
    GAVE_UP = "gave-up"  # the last retransmission timed out
    ABANDON = "abandon"  # abandon(): whatever was going on no longer matters


_WAITING = (State.REGISTERING, State.DEREGISTERING)
_RESTING = (State.IDLE, State.REGISTERED, State.DEREGISTERED, State.DENIED, State.TIMED_OUT, State.ABANDONED)

#: (state, trigger) -> next state; anything else is a bug of the caller or of this client.
TRANSITIONS: dict[tuple[State, Trigger], State] = {
    **{(s, Trigger.REGISTER): State.REGISTERING for s in (*_RESTING, *_WAITING)},
    **{(s, Trigger.DEREGISTER): State.DEREGISTERING for s in (*_RESTING, *_WAITING)},
    (State.REGISTERING, Trigger.ACCEPTED): State.REGISTERED,
    (State.DEREGISTERING, Trigger.DEREGISTERED): State.DEREGISTERED,
    **{(s, Trigger.DENIED): State.DENIED for s in _WAITING},
    **{(s, Trigger.GAVE_UP): State.TIMED_OUT for s in _WAITING},
    # RFC 5265 3.2.2, 3.3: a status change or a detection verdict makes any transaction moot.
    **{(s, Trigger.ABANDON): State.ABANDONED for s in (*_RESTING, *_WAITING)},
}


# ------------------------------------------------------------------------------ client


class RegistrationClient:
    """Registration state of one mobile node interface towards one home agent."""

    def __init__(
        self,
        config: MNConfig,
        *,
        interface: str = "default",
        initial_timeout: float | None = None,
        max_timeout: float = 32.0,
        max_attempts: int | None = None,
        reregister_fraction: float = 0.8,
        reregister_interval: float | None = None,
        max_resyncs: int = 2,
        rng: Callable[[], int] | None = None,
    ) -> None:
        self.config = config
        self.interface = interface
        self.initial_timeout = config.timeout if initial_timeout is None else initial_timeout
        self.max_timeout = max_timeout
        self.max_attempts = config.attempts if max_attempts is None else max_attempts
        self.reregister_fraction = reregister_fraction
        self.reregister_interval = reregister_interval  # RFC 5265 3.2.4: T_MONITOR - N when inside
        self.max_resyncs = max_resyncs
        self._rng = rng or (lambda: secrets.randbits(32))
        self._key = config.secret.reveal()
        self.state = State.IDLE
        self.local: tuple[str, int] | None = None  # the socket it sends from, when the transport knows it
        self.clock_offset = 0.0  # learnt from code 133 (timestamps)
        self.ha_nonce: int | None = None  # learnt from replies (nonces)
        self.registered_until: float | None = None
        self.last_registered: Registered | None = None
        self._last_ident = 0
        self._lifetime = config.lifetime
        self._outstanding: set[int] = set()  # low-order 32 bits of requests of this transaction
        self._attempts = 0
        self._resyncs = 0
        self._timeout = self.initial_timeout
        self._retransmit_at: float | None = None
        self._reregister_at: float | None = None
        self._dereg_all = False
        self._outbox: list[bytes] = []
        self._events: list[Event] = []

    def _move(self, trigger: Trigger) -> None:
        try:
            self.state = TRANSITIONS[(self.state, trigger)]
        except KeyError:
            raise RuntimeError(f"registration client: {trigger.value} in state {self.state.value}") from None

    @property
    def waiting(self) -> bool:
        """A request is outstanding (a reply is expected)."""
        return self.state in _WAITING

    # ---- requests
    def _identification(self, now: float) -> int:
        if self.config.replay == "timestamp":
            ident = timestamp_identification(now + self.clock_offset)
            ident = max(ident, self._last_ident + 1)  # a home agent may reject out-of-order ones
        else:
            mn = self._rng() & 0xFFFFFFFF
            while mn == low32(self._last_ident):
                mn = self._rng() & 0xFFFFFFFF
            ident = nonce_identification(self.ha_nonce or 0, mn)
        self._last_ident = ident
        return ident

    def build_request(self, now: float, lifetime: int | None = None) -> bytes:
        """One Registration Request with a fresh Identification (not sent: the caller sends it)."""
        c = self.config
        lifetime = self._lifetime if lifetime is None else lifetime
        flags = (
            (n.FLAG_S if c.simultaneous else 0)
            | (n.FLAG_D if c.colocated else 0)
            | (n.FLAG_T if c.reverse_tunnel else 0)
            | (n.FLAG_M if c.minimal_encapsulation else 0)
        )
        exts = b""
        if c.nai:
            exts += codec.nai_extension(c.nai)  # RFC 2794: before the MN-HA authentication extension
        if c.udp_tunnel and lifetime != 0:
            exts += codec.udp_tunnel_request(force=c.force_udp)  # RFC 3519 3.1: covered by the authenticator
        ident = self._identification(now)
        self._outstanding.add(low32(ident))
        coa = c.home_address if lifetime == 0 and self._dereg_all else c.coa
        return codec.build_request(
            flags, lifetime, c.home_address, c.home_agent, coa, ident, exts, auth=(c.spi, c.algorithm, self._key)
        )

    def _start(self, now: float, lifetime: int, trigger: Trigger) -> None:
        self._move(trigger)
        self._lifetime = lifetime
        self._outstanding.clear()
        self._attempts = 1
        self._resyncs = 0
        self._timeout = self.initial_timeout
        self._retransmit_at = now + self._timeout
        self._reregister_at = None
        self._outbox.append(self.build_request(now, lifetime))

    def register(self, now: float, lifetime: int | None = None) -> None:
        """Start a registration (or renewal); the request waits in :meth:`datagrams_to_send`."""
        lifetime = self.config.lifetime if lifetime is None else lifetime
        # RFC 5944 3.8.2.2: Lifetime 0 is a de-registration whatever asked for it.
        self._start(now, lifetime, Trigger.DEREGISTER if lifetime == 0 else Trigger.REGISTER)

    def deregister(self, now: float, *, all_bindings: bool = False) -> None:
        """Start a deregistration: Lifetime 0; Care-of Address = home address for all bindings (RFC 5944 3.8.2.2)."""
        self._dereg_all = all_bindings
        self._start(now, 0, Trigger.DEREGISTER)

    # ---- silencing (for a core that composes clients, e.g. RFC 5265 detection)
    def stop_retransmitting(self) -> None:
        """No more retransmissions; a reply to what was already sent is still accepted.

        RFC 5265 3.3: the x-HA's reply ends the detection period's clock, not the
        i-HA transaction, and a late i-HA reply must still count (3.3, 3.5). The
        state does not change: the client still waits, but never times out.
        """
        self._retransmit_at = None

    def quiesce(self) -> None:
        """No more retransmissions nor lifetime-based renewals; the state does not change.

        RFC 5265 3.2.3, 4.1: an i-HA that answered without TNC is not used, so its
        binding is not renewed in plaintext either.
        """
        self._retransmit_at = None
        self._reregister_at = None

    def abandon(self) -> None:
        """Quiesce and ignore any reply to what was sent (a move to ABANDONED).

        RFC 5265 3.2.2, 3.2.3: after a connection status change a reply to an
        earlier request proves nothing about the new attachment. Learnt
        synchronisation (``clock_offset``, ``ha_nonce``) and ``registered_until``
        are kept; ``register``/``deregister`` start afresh.
        """
        self._move(Trigger.ABANDON)
        self.quiesce()
        self._outstanding.clear()

    # ---- the actor interface
    def get_timer(self) -> float | None:
        times = [t for t in (self._retransmit_at, self._reregister_at) if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        if self._retransmit_at is not None and now >= self._retransmit_at:
            if self._attempts >= self.max_attempts:
                self._retransmit_at = None
                self._outstanding.clear()
                self._move(Trigger.GAVE_UP)
                self._events.append(TimedOut(self.interface, self.config.home_agent, now, self._attempts))
            else:
                # RFC 5944 3.6.3: each retransmission timeout at least twice the previous one.
                self._attempts += 1
                self._timeout = min(self._timeout * 2, self.max_timeout)
                self._retransmit_at = now + self._timeout
                self._outbox.append(self.build_request(now))
        if self._reregister_at is not None and now >= self._reregister_at:
            self.register(now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, tuple[str, int] | None, tuple[str, int]]]:
        """``(data, local, destination)``: every request goes to the home agent's port (or the foreign agent's)."""
        c = self.config
        dst = (c.foreign_agent, c.fa_port) if c.foreign_agent else (c.home_agent, c.ha_port)
        out, self._outbox = self._outbox, []
        return [(data, self.local, dst) for data in out]

    def next_event(self) -> Event | None:
        return self._events.pop(0) if self._events else None

    def receive_datagram(self, data: bytes, src: tuple[str, int], local: tuple[str, int] | None, now: float) -> None:
        """Process a datagram that arrived from ``src``; results come out of :meth:`next_event`."""
        self._events.extend(self._receive(data, src[0], now))

    def _ignore(
        self, now: float, reason: str, code: int | None = None, data: bytes = b"", rule: str | None = None
    ) -> list[Event]:
        return [Ignored(self.interface, self.config.home_agent, now, reason, code, data, rule)]

    def _receive(self, data: bytes, source: str, now: float) -> list[Event]:
        # Only the home agent answers a direct registration (RFC 5944 3.6.2), only the foreign agent one
        # through it (3.7.3.2: it relays the reply, or denies itself); only a waiting client expects a reply.
        c = self.config
        if c.foreign_agent is not None and source != c.foreign_agent:
            return self._ignore(now, f"reply from {source}, not the foreign agent {c.foreign_agent}", data=data)
        if c.foreign_agent is None and source != c.home_agent:
            return self._ignore(now, f"reply from {source}, not the home agent {c.home_agent}", data=data)
        if not self.waiting:
            return self._ignore(now, f"no request outstanding (state {self.state.value})", data=data)
        # RFC 5944 3.6.2.1, 1.9, 3.5: the judgement the HA suite shares (mipcheck.mn.acceptance).
        verdict = judge_reply(
            data,
            home_address=c.home_address,
            identifications=self._outstanding,
            spi=c.spi,
            algorithm=c.algorithm,
            key=self._key,
        )
        rep = verdict.reply
        if verdict.problem is not None:
            return self._ignore(now, verdict.problem, verdict.code, data, verdict.rule)
        assert rep is not None
        if verdict.foreign_agent_denial:
            return self._finish(Denied(self.interface, c.home_agent, now, rep.code, False, False, data), Trigger.DENIED)
        auths = [e for e in rep.extensions if e.type == n.EXT_MN_HA_AUTH]
        auth_at = auths[0].offset
        tnc, tnc_issue = False, None
        tnc_exts = [e for e in rep.extensions if e.type == n.EXT_TNC]
        if tnc_exts:
            e = tnc_exts[0]
            if e.offset > auth_at:
                tnc_issue = "TNC extension after the MN-HA authenticator: not authenticated, ignored"
            elif e.length != 2 or data[e.body] != 0:
                tnc_issue = (
                    f"malformed TNC extension (Length {e.length}, Sub-Type {data[e.body] if e.length else None})"
                )
            else:
                tnc = True  # RFC 5265 3.4: Reserved is ignored on receipt
        if rep.code == 133:
            return self._resync(rep, now, data)
        if self.config.replay == "nonce":
            self.ha_nonce = high32(rep.identification)  # RFC 5944 5.7.2: the nonce for the next request
        if not n.reply_accepted(rep.code):
            return self._finish(Denied(self.interface, c.home_agent, now, rep.code, True, tnc, data), Trigger.DENIED)
        if self.state is State.DEREGISTERING:
            self.registered_until = None
            return self._finish(Deregistered(self.interface, c.home_agent, now, rep.code, data), Trigger.DEREGISTERED)
        warnings = []
        lifetime = rep.lifetime
        if lifetime > self._lifetime:
            warnings.append(f"home agent granted Lifetime {lifetime} > requested {self._lifetime} (RFC 5944 3.8.3.2)")
            lifetime = self._lifetime
        udp = None
        for e in rep.extensions:
            if e.type == n.EXT_UDP_TUNNEL_REPLY and e.offset < auth_at:
                parsed = codec.parse_udp_tunnel_reply(data, e)
                if parsed is not None:
                    udp = (parsed[0], parsed[2])
        if c.udp_tunnel and udp is None:
            warnings.append("no UDP Tunnel Reply (RFC 3519): the home agent will tunnel IP-in-IP")
        ev = Registered(
            self.interface,
            c.home_agent,
            now,
            rep.code,
            lifetime,
            rep.identification,
            tnc,
            tnc_issue,
            udp,
            tuple(warnings),
            data,
        )
        self.last_registered = ev
        events = self._finish(ev, Trigger.ACCEPTED)
        if lifetime == n.INFINITE_LIFETIME:
            self.registered_until = None
        else:
            self.registered_until = now + lifetime
            delay = lifetime * self.reregister_fraction
            if self.reregister_interval is not None:
                delay = min(delay, self.reregister_interval)
            self._reregister_at = now + delay
        return events

    def _finish(self, ev: Event, trigger: Trigger) -> list[Event]:
        self._retransmit_at = None
        self._outstanding.clear()
        self._move(trigger)
        return [ev]

    def _resync(self, rep: codec.Reply, now: float, data: bytes) -> list[Event]:
        """RFC 5944 5.7: an authenticated 133 tells the home agent's time or its next nonce."""
        c = self.config
        if self._resyncs >= self.max_resyncs:
            return self._finish(Denied(self.interface, c.home_agent, now, 133, True, False, data), Trigger.DENIED)
        self._resyncs += 1
        if c.replay == "timestamp":
            ha_time = high32(rep.identification) - NTP_UNIX_OFFSET + 0.5  # whole seconds only: aim mid-second
            self.clock_offset = ha_time - now
            ev = Resynchronised(self.interface, c.home_agent, now, "timestamp", self.clock_offset)
        else:
            self.ha_nonce = high32(rep.identification)
            ev = Resynchronised(self.interface, c.home_agent, now, "nonce", float(self.ha_nonce))
        self._timeout = self.initial_timeout
        self._retransmit_at = now + self._timeout
        self._outbox.append(self.build_request(now))
        return [ev]
