"""Sans-IO home agent: octets, source and time in; a Decision (with the reply octets) out.

No sockets, no sleeping, no clock: the transport passes ``now``. The checks
run in the order of RFC 5944 3.8.2.1 (authentication, then Identification,
then the Home Agent field), preceded by what must happen before any of them
(the i-HA's source check of RFC 5265 4.3, the extension rules of RFC 5944
1.9) and followed by the policy denials of 3.8.2.3, RFC 3024 and RFC 3519.

Decisions taken here where the RFCs leave room (see also the report):

* A request shorter than its 24-octet fixed part is dropped silently: a
  reply copies Home Address, Home Agent and Identification from the request
  (RFC 5944 3.8.3.2) and there are none to copy.
* A request whose extension area overruns the message (or whose UDP Tunnel
  Request is too short) is denied with 134, poorly formed Request.
* A request from a home address with no security association is denied with
  131 (the authentication of RFC 5944 3.8.2.1 cannot succeed); the reply is
  then unauthenticated because there is no key to compute it with.
* Code 1 (accepted, simultaneous bindings unsupported) answers only requests
  that set 'S'; other accepted requests get code 0.
* Extensions after the MN-HA authentication extension are not covered by it
  and are not acted upon (a UDP Tunnel Request there is ignored), but the
  unrecognised-extension rules of RFC 5944 1.9 apply to every extension.
* Encapsulations: IP-in-IP always (RFC 5944 4.1: MUST); minimal encapsulation
  (RFC 2004, 'M', a MAY) only when ``config.encapsulations`` lists "minimal",
  else 'M' is denied with 139, as 'G' always is. A request with 'M' that also
  gets a UDP tunnel (RFC 3519) is accepted and its data goes as MIP Tunnel
  Data (the UDP Tunnel Request's own encapsulation field rules there).

Robustness faults (Behaviour.on_*, fuzz targets) are planted bugs: the core
never crashes or blocks itself, it reports ``Decision.failure`` ("crash",
"hang") and the transport carries it out (:mod:`mipcheck.ha.server`); the
faults that leave a lasting misbehaviour keep it as state here (``_sick``).

Where home agents differ, the core reads its behaviour record
(:class:`mipcheck.ha.behaviour.Behaviour`, ``self.behaviour``); the defaults are
conformant and a fault profile (:mod:`mipcheck.ha.faults`) changes one setting.
``_registration`` is the sequence of steps above, one short method each, over a
:class:`_Request` that carries what one step leaves for the next.
"""

from __future__ import annotations

import secrets
import socket
from collections import deque
from collections.abc import Callable, Iterable
from hmac import compare_digest
from typing import Any, NamedTuple

from mipcheck.errors import ConfigError
from mipcheck.outcomes import HomeAgentOutcome, Party, Violation
from mipcheck.proto import codec, minenc
from mipcheck.proto import numbers as n
from mipcheck.proto.extensions import (
    AUTHORIZATION_ENABLING_TYPES,
    LONG_FORMAT_TYPES,
    RECOGNISED_BY_HA,
    TNC_EXTENSION,
)
from mipcheck.proto.identification import low32
from mipcheck.proto.numbers import INFINITE_LIFETIME

from .behaviour import CONFORMANT, Behaviour
from .binding import Binding, BindingCache, BindingView
from .config import HAConfig
from .faults import behaviour_for, check_faults
from .replay import (
    ReplayState,
    check_nonce,
    check_timestamp,
    nonce_reply_identification,
    timestamp_denial_identification,
)
from .trust import LogRateLimiter, TrustPolicy
from .tunnel import TunnelError, echo_reply, is_echo_request, parse_ipv4

ACCEPTED, DENIED, DROPPED, IGNORED = HomeAgentOutcome  # str values: "accepted", "denied", ...
# Denial code -> (catalogue rule the request broke, the suite case that probes it): Decision.violation.
DENIAL_RULES: dict[int, tuple[str, str]] = {
    131: ("5944-3.8.2.1-AUTH-FAILED-131", "MIP-AUTH-BAD"),
    133: ("5944-3.8.2.1-ID-MISMATCH-133", "MIP-ID-STALE"),
    136: ("5944-3.8.2.1-UNKNOWN-HA-136", "MIP-HA-FIELD"),
}
REASON_NO_AUTH = "no MN-HA authentication extension"
BAD_TNC_EXTENSION = bytes((n.EXT_TNC, 4, 1, 0, 0, 0))  # tnc_format "length-4-subtype-1" (bad-tnc-format)
EXTRA_BAD_TNC = bytes((n.EXT_TNC, 2, 1, 0))  # tnc_format "extra-subtype-1": a second TNC, Sub-Type 1 (extra-bad-tnc)
MAX_GRANTABLE = 0xFFFE  # one below infinity
MANGLE_LOW_BITS = 0x00A5_A5A5  # reply_identification "mangle-low-bits": flips these low-order Identification bits
NO_TNC = (b"", b"")
REASON_ACCEPTED = "registration accepted"
REASON_ACCEPTED_S = "registration accepted (simultaneous bindings unsupported)"

# The registration path calls these once or twice per datagram (mipcheck.proto.codec has the layouts).
_RRQ_SIZE = codec.RRQ_FIXED.size
_unpack_rrq = codec.RRQ_FIXED.unpack_from
_pack_rrp = codec.RRP_FIXED.pack
_unpack_spi = codec.SPI.unpack_from
_walk_extensions = codec.walk_extensions
_ntoa = socket.inet_ntoa
_new_tuple = tuple.__new__  # builds a NamedTuple from its fields in order, skipping the generated __new__


def _addr(a: tuple[str, int] | None) -> str | None:
    return None if a is None else f"{a[0]}:{a[1]}"


class Decision(NamedTuple):
    """What the home agent did with one datagram, and why (who broke which rule).

    Immutable, compared and printed field by field like the frozen dataclass it
    was; a NamedTuple because the home agent makes one per datagram and a
    frozen dataclass of 14 fields costs ten times as much to build.
    """

    outcome: str  # accepted | denied | dropped | ignored
    code: int | None
    reason: str
    reply: bytes | None
    reply_to: tuple[str, int] | None
    home_address: str | None
    source: tuple[str, int]
    log: bool = True  # False: rate-limited, data plane, or Behaviour.log_untrusted
    suppressed: int = 0  # log lines held back by the rate limit before this one
    lifetime: int | None = None  # granted (accepted replies)
    care_of_address: str | None = None
    tnc: bool = False  # the reply carries a TNC extension
    udp_tunnel: bool = False  # the reply carries a UDP Tunnel Reply
    inner: bytes | None = None  # tunnel data: the decapsulated packet
    # A robustness fault went off (Behaviour.on_*): what the transport must do to its process, "crash" (end it
    # at once) or "hang" (stop reading); None always for a conformant home agent.
    failure: str | None = None

    def as_log(self) -> dict[str, Any]:
        """One log record; carries no secret (replies are not included)."""
        d: dict[str, Any] = {
            "outcome": self.outcome,
            "code": self.code,
            "reason": self.reason,
            "home_address": self.home_address,
            "source": _addr(self.source),
        }
        if self.code is not None:
            d["code_name"] = n.reply_code_name(self.code)
        if self.reply_to is not None:
            d["reply_to"] = _addr(self.reply_to)
        if self.care_of_address is not None:
            d["care_of_address"] = self.care_of_address
        if self.lifetime is not None:
            d["lifetime"] = self.lifetime
        if self.tnc:
            d["tnc"] = True
        if self.udp_tunnel:
            d["udp_tunnel"] = True
        if self.suppressed:
            d["suppressed"] = self.suppressed
        if self.failure is not None:
            d["failure"] = self.failure
        violation = self.violation
        if violation is not None:
            d["rule_id"], d["party"] = violation.rule_id, str(violation.party)
        return d

    @property
    def violation(self) -> Violation | None:
        """The catalogue rule the request broke, for the denials that name one (computed, not on the hot path)."""
        if self.outcome != DENIED or self.code not in DENIAL_RULES:
            return None
        rule_id, check = DENIAL_RULES[self.code]
        if self.code == 131 and self.reason == REASON_NO_AUTH:
            rule_id, check = "5944-3.8.2.1-AUTH-REQUIRED", "MIP-AUTH-MISSING"
        return Violation(rule_id, Party.MOBILE_NODE, check, self.reason)


class _Request:
    """One Registration Request on its way through the steps of ``HomeAgent._registration``.

    A step reads what earlier steps left here and adds its own, each field set once (no
    ``__init__``: this is built per datagram); ``_deny`` takes the fields every denial copies
    (RFC 5944 3.8.2.3, 3.8.3.2) from it.
    """

    __slots__ = (
        "data",
        "src",
        "local",
        "now",
        "trusted",  # as received; trusted: RFC 5265 4.3
        "flags",
        "lifetime",
        "hoa_octets",
        "ha_octets",
        "coa_octets",
        "ident",
        "hoa",
        "coa",  # fixed part
        "sa",
        "reply_auth",  # the home address's security association; (SPI, algorithm, key, MAC) for replies
        "auth_exts",
        "tunnel_req",
        "cvse",  # extensions
        "state",
        "reply_id",  # Identification
        "code",
        "udp",
        "tunnel_ext",
        "keep_others",  # policy
        "renewal",
        "granted",
        "reason",  # bindings
    )


class HomeAgent:
    """The registration logic of a home agent (RFC 5944 3.8) with the i-HA/x-HA roles of RFC 5265."""

    def __init__(
        self,
        config: HAConfig,
        faults: Iterable[str] = frozenset(),
        behaviour: Behaviour | None = None,
        *,
        nonce_source: Callable[[], int] | None = None,
    ) -> None:
        self.config = config
        # Fault names are changes of the behaviour record (mipcheck.ha.faults.TABLE); or pass the record.
        self.faults = check_faults(faults)
        if behaviour is None:
            behaviour = behaviour_for(self.faults)
        elif self.faults:
            raise ConfigError("--fault", "give fault names or a behaviour record, not both")
        self.behaviour = b = behaviour

        self.address = config.address
        # RFC 2004 minimal encapsulation offered ('M' accepted): config.encapsulations; IP-in-IP always (5944 4.1).
        self._minimal = "minimal" in config.encapsulations
        self._address_octets = socket.inet_aton(config.address)
        self.inside = config.role == "i-ha"
        # RFC 5265 4.3: no subnet is trusted by default.
        trust_all = b.trust_when_unconfigured == "all" and not config.trusted_networks
        self._trust = TrustPolicy(config.trusted_networks, trust_all=trust_all)
        self._limiter = LogRateLimiter(config.log_rate, config.log_burst)
        self._untrusted_logged: set[str] = set()  # log_untrusted "once-per-source"
        # Precomputed from the record, read once per accepted registration (see _reply, _accept_conformant).
        self._fast = b == CONFORMANT
        self._reply_elsewhere = b.reply_port != "source" or b.untrusted_requests == "answer-at-care-of-address"
        reply_auth_type = n.EXT_FA_HA_AUTH if b.reply_auth_type == "fa-ha" else n.EXT_MN_HA_AUTH
        # home address -> (SPI, algorithm, key, keyed MAC, replay mode, authentication extension header of
        # the reply up to its SPI): one security association each.
        self._sa: dict[str, tuple[int, str, bytes, Callable[[bytes], bytes], str, bytes]] = {
            mn.home_address: (
                mn.spi,
                mn.algorithm,
                mn.secret.reveal(),
                codec.keyed(mn.algorithm, mn.secret.reveal()),
                mn.replay,
                codec.AUTH_HDR.pack(reply_auth_type, 4 + codec.DIGEST_SIZE, mn.spi),
            )
            for mn in config.mobile_nodes
        }
        self._cache = BindingCache()
        self._replay: dict[str, ReplayState] = {}
        self._new_nonce = nonce_source or (lambda: secrets.randbits(32))
        self.counters: dict[str, int] = {ACCEPTED: 0, DENIED: 0, DROPPED: 0, IGNORED: 0}
        self._outbox: list[tuple[bytes, tuple[str, int], tuple[str, int]]] = []  # the actor interface's queues
        self._events: deque[Decision] = deque()
        self._tnc_accepted = self._tnc(True, accepted=True)  # what an accepted reply to a trusted source carries
        # Robustness faults (fuzz targets): a request trigger is looked for only when one is set; _sick is the
        # lasting state after a tunnel data or revocation trigger: (Behaviour value, what set it off).
        self._fragile = (
            b.on_nonskippable_first != "survive"
            or b.on_long_length_overrun != "survive"
            or b.on_tnc_length_zero != "survive"
            or b.on_two_mn_ha_auth != "survive"
        )
        self._sick: tuple[str, str] | None = None

    # ------------------------------------------------------------------ queries

    @property
    def bindings(self) -> BindingView:
        """Read-only: home address -> tuple of its current bindings."""
        return self._cache.view

    def binding_count(self) -> int:
        return len(self._cache)

    def replay_state(self, home_address: str) -> ReplayState | None:
        return self._replay.get(home_address)

    def next_expiry(self) -> float | None:
        return self._cache.next_expiry()

    def expire(self, now: float) -> list[Binding]:
        """Remove bindings whose lifetime ran out by ``now`` (RFC 5944 3.8.1); returns them."""
        return self._cache.expire(now)

    def check_invariants(self) -> None:
        self._cache.check()

    # ------------------------------------------------------------------ the actor interface

    # Every protocol party speaks it (docs/design/contracts.md): the simulated network and the
    # fuzzer's oracle drive the home agent through these; the UDP server calls handle() directly
    # on its hot path, which is the same decision without the queues.

    def receive_datagram(self, data: bytes, src: tuple[str, int], local: tuple[str, int], now: float) -> None:
        """:meth:`handle`, its reply queued for :meth:`datagrams_to_send`, its Decision for :meth:`next_event`."""
        d = self.handle(data, src, local, now)
        self._events.append(d)
        if d.reply is not None and d.reply_to is not None:
            self._outbox.append((d.reply, local, d.reply_to))

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, tuple[str, int], tuple[str, int]]]:
        out, self._outbox = self._outbox, []
        return out

    def next_event(self) -> Decision | None:
        """The decisions taken, one at a time, oldest first."""
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """When the next binding expires (RFC 5944 3.8.1)."""
        return self._cache.next_expiry()

    def handle_timer(self, now: float) -> None:
        self._cache.expire(now)

    # ------------------------------------------------------------------ entry point

    def handle(self, data: bytes, src: tuple[str, int], local: tuple[str, int], now: float) -> Decision:
        """Process one UDP payload received from ``src`` on ``local`` at time ``now``."""
        cache = self._cache
        nxt = cache.next_expiry()
        if nxt is not None and nxt <= now:
            cache.expire(now)
        if not data:
            d = self._quiet(DROPPED, None, "empty datagram", src, now)
        elif data[0] == n.MSG_RRQ:
            d = self._registration(data, src, local, now)
        elif data[0] == n.MSG_TUNNEL_DATA:
            d = self._tunnel(data, src, local, now)
        else:
            if data[0] == n.MSG_REVOCATION and self.behaviour.on_revocation == "silent-after" and self._sick is None:
                self._sick = ("silent-after", f"a Registration Revocation from {src[0]}:{src[1]}")
            d = self._quiet(IGNORED, None, f"message type {data[0]} is not a Registration Request", src, now)
        self.counters[d.outcome] += 1
        return d

    # ------------------------------------------------------------------ registration

    def _registration(self, data: bytes, src: tuple[str, int], local: tuple[str, int], now: float) -> Decision:
        # The steps in the order of the module docstring, over one pass of the octets (codec.parse_request
        # is the same layout). A step returns a Decision to end there, None to go on.
        if self._fast:
            d = self._accept_conformant(data, src, local, now)
            if d is not None:
                return d
        rq = _Request()
        rq.data = data
        rq.src = src
        rq.local = local
        rq.now = now
        return (
            self._source_check(rq)  # RFC 5265 4.3
            or self._fixed_part(rq)  # RFC 5944 3.3
            or (self._sick is not None and self._aftermath(rq))  # robustness faults: after their trigger
            or self._extensions(rq)  # RFC 5944 1.9
            or self._authentication(rq)  # RFC 5944 3.8.2.1 (a), 3.5
            or self._identification(rq)  # RFC 5944 3.8.2.1 (b), 5.7
            or self._home_agent_field(rq)  # RFC 5944 3.8.2.1
            or self._policy(rq)  # RFC 5944 3.8.2.3, RFC 3024, RFC 3519
            or self._bindings(rq)  # RFC 5944 3.8.2.2
            or self._reply(rq)  # RFC 5944 3.8.3
        )

    def _accept_conformant(
        self, data: bytes, src: tuple[str, int], local: tuple[str, int], now: float
    ) -> Decision | None:
        """The steps below, fused, for a conformant home agent and a request that passes every one of them.

        The hot path (bench/bench_ha.py): the steps' context object and nine calls cost about a
        sixth of a registration's CPU time, so a plain registration or renewal is accepted here in one
        method over locals. Anything else (a denial, a drop, a deregistration, 'S', a UDP tunnel, a nonce,
        an unrecognised extension) returns None before anything changed, and the steps take it from the
        start. tests/test_ha_core.py holds this path to the steps' Decision and bindings.
        """
        trusted = False
        if self.inside:  # RFC 5265 4.3
            trusted = self._trust.is_trusted(src[0])
            if not trusted:
                return None
        if len(data) < _RRQ_SIZE:  # RFC 5944 3.3
            return None
        _type, flags, lifetime, hoa_octets, ha_octets, coa_octets, ident = _unpack_rrq(data)
        if not lifetime or flags & (n.FLAG_S | n.FLAG_M | n.FLAG_G):
            return None
        config = self.config
        if (not config.reverse_tunneling) if flags & n.FLAG_T else config.reverse_tunnel_required:
            return None
        hoa = _ntoa(hoa_octets)
        sa = self._sa.get(hoa)
        if sa is None or sa[4] != "timestamp":
            return None
        # RFC 5944 1.9: only extensions this home agent models, none it would act upon.
        exts, error = _walk_extensions(data, _RRQ_SIZE)
        if error:
            return None
        auth = None
        for ext in exts:
            t = ext[0]
            if t in AUTHORIZATION_ENABLING_TYPES:
                if auth is not None:
                    return None
                auth = ext
            elif t not in RECOGNISED_BY_HA or (auth is None and (t == n.EXT_UDP_TUNNEL_REQUEST or t == n.EXT_CVSE)):
                return None
        # RFC 5944 3.8.2.1 (a), 3.5: the MN-HA authenticator covers everything up to and including the SPI.
        if auth is None or auth[0] != n.EXT_MN_HA_AUTH:
            return None
        _t, ext_offset, ext_header, ext_length = auth
        spi_at = ext_offset + ext_header
        mac = sa[3]
        if (
            ext_length < 4
            or _unpack_spi(data, spi_at)[0] != sa[0]
            or not compare_digest(data[spi_at + 4 : spi_at + ext_length], mac(data[: spi_at + 4]))
        ):
            return None
        # RFC 5944 5.7.1: Identification.
        state = self._replay.get(hoa)
        if state is None:
            state = self._replay[hoa] = ReplayState()
        if check_timestamp(ident, now, config.replay_skew, state.last_accepted, config.replay_strict) is not None:
            return None
        # RFC 5944 3.8.2.1: Home Agent field (config.address is canonical, so octets compare as strings).
        if ha_octets != self._address_octets and _ntoa(ha_octets) != local[0]:
            return None
        # RFC 5944 3.8.2.2, 3.8.3.2: bindings, the Lifetime granted (never more than requested).
        coa = _ntoa(coa_octets)
        cache = self._cache
        granted = min(lifetime, config.max_lifetime)
        prev = cache.find(hoa, coa)
        if prev is not None and prev.identification == ident and prev.lifetime != INFINITE_LIFETIME:
            granted = max(0, min(granted, int(prev.expires - now)))  # a duplicate must not extend it
        cache.add(
            _new_tuple(Binding, (hoa, coa, granted, now, ident, flags, src, False, None, None)), keep_others=False
        )
        if state.last_accepted is None or ident > state.last_accepted:
            state.last_accepted = ident
            if state.first_accepted is None:
                state.first_accepted = ident
        # RFC 5944 3.8.3: the reply, TNC before the authenticator (RFC 5265 3.4).
        tnc = self._tnc_accepted[0] if trusted else b""
        msg = _pack_rrp(n.MSG_RRP, 0, granted, hoa_octets, ha_octets, ident) + tnc + sa[5]
        # Decision(ACCEPTED, 0, REASON_ACCEPTED, reply, src, hoa, src, lifetime=granted, care_of_address=coa, tnc=...):
        return _new_tuple(
            Decision,
            (
                ACCEPTED,
                0,
                REASON_ACCEPTED,
                msg + mac(msg),
                src,
                hoa,
                src,
                True,
                0,
                granted,
                coa,
                bool(tnc),
                False,
                None,
                None,
            ),
        )

    def _source_check(self, rq: _Request) -> Decision | None:
        """RFC 5265 4.3: an i-HA trusts by the request's IP source address and drops untrusted requests silently."""
        if not self.inside:
            rq.trusted = False
            return None
        data = rq.data
        if self.behaviour.trust_by == "source":
            who = rq.src[0]
        else:  # "care-of-address"
            who = _ntoa(data[12:16]) if len(data) >= 16 else "0.0.0.0"
        trusted = rq.trusted = self._trust.is_trusted(who)
        if trusted or self._untrusted_passes(data):
            return None
        return self._drop_untrusted(rq.src, rq.now)

    def _untrusted_passes(self, data: bytes) -> bool:
        """Behaviour.untrusted_requests: which requests from an untrusted source get past the source check."""
        how = self.behaviour.untrusted_requests
        if how == "drop":
            return False
        if how in ("answer", "answer-at-care-of-address", "drop-after-auth"):
            return True  # (drop-after-auth drops it in _authentication)
        if len(data) < _RRQ_SIZE:
            return False
        live = self._cache.get(_ntoa(data[4:8]))
        if how == "answer-registered-coa":
            return any(b.care_of_address == _ntoa(data[12:16]) for b in live)
        registering = data[2:4] != b"\x00\x00"
        if how == "answer-deregistrations":
            return not registering
        return registering and bool(live)  # "answer-renewals"

    def _fixed_part(self, rq: _Request) -> Decision | None:
        """RFC 5944 3.3: the 24-octet fixed part; a reply copies from it, so without it there is none."""
        data = rq.data
        if len(data) < _RRQ_SIZE:
            rq.reply_auth = None
            return self._quiet(
                DROPPED,
                None,
                f"truncated Registration Request: {len(data)} octets, the fixed part is 24 (RFC 5944 3.3)",
                rq.src,
                rq.now,
            )
        _type, rq.flags, rq.lifetime, rq.hoa_octets, rq.ha_octets, rq.coa_octets, rq.ident = _unpack_rrq(data)
        hoa = rq.hoa = _ntoa(rq.hoa_octets)
        sa = rq.sa = self._sa.get(hoa)
        rq.reply_auth = None if sa is None else sa[:4]
        return None

    def _aftermath(self, rq: _Request) -> Decision:
        """Behaviour.on_bad_tunnel_data, on_revocation: what every registration gets once their trigger was seen."""
        how, why = self._sick
        if how == "silent-after":
            return self._quiet(DROPPED, None, f"registration dropped: silent since {why}", rq.src, rq.now, rq.hoa)
        return self._deny(rq, 128, f"denied: broken since {why}", authenticated=False)  # "deny-128-after"

    def _malformed(self, rq: _Request, exts: list[codec.Ext], error: str | None) -> Decision | None:
        """Behaviour.on_*: the request triggers of the robustness faults, authentic or not (fuzz targets)."""
        b, data = self.behaviour, rq.data
        if b.on_nonskippable_first == "crash" and len(data) > _RRQ_SIZE:
            t = data[_RRQ_SIZE]
            if t < 128 and t not in RECOGNISED_BY_HA:
                return self._failure(rq, "crash", f"unrecognised non-skippable extension {t} first")
        if b.on_long_length_overrun == "crash" and error:
            whole, _error = _walk_extensions(data, _RRQ_SIZE, include_overrun=True)
            if len(whole) > len(exts) and whole[-1][0] in LONG_FORMAT_TYPES:
                t, off, _hdr, length = whole[-1]
                return self._failure(
                    rq, "crash", f"extension {t} at offset {off}: 16-bit Length {length} runs past the end"
                )
        if b.on_tnc_length_zero == "hang" and any(e[0] == n.EXT_TNC and e[3] == 0 for e in exts):
            return self._failure(rq, "hang", "TNC extension with Length 0")
        if b.on_two_mn_ha_auth == "hang" and sum(e[0] == n.EXT_MN_HA_AUTH for e in exts) >= 2:
            return self._failure(rq, "hang", "two MN-HA authentication extensions")
        return None

    def _failure(self, rq: _Request, failure: str, what: str) -> Decision:
        verb = "crashes" if failure == "crash" else "hangs"
        reason = f"{what}: the home agent {verb} (robustness fault)"
        return Decision(DROPPED, None, reason, None, None, rq.hoa, rq.src, failure=failure)

    def _extensions(self, rq: _Request) -> Decision | None:
        """RFC 5944 1.9: unrecognised extensions 0-127 discard the message, 128-255 are skipped."""
        exts, error = _walk_extensions(rq.data, _RRQ_SIZE)
        if self._fragile:
            d = self._malformed(rq, exts, error)
            if d is not None:
                return d
        auth_exts: list[codec.Ext] = []
        tunnel_req: codec.Ext | None = None
        cvse = False
        skipped: int | None = None
        for ext in exts:
            t = ext[0]
            if t in AUTHORIZATION_ENABLING_TYPES:  # RFC 5944 3.5, RFC 3012
                auth_exts.append(ext)
            elif t in RECOGNISED_BY_HA:  # every extension mipcheck.proto.extensions models
                if not auth_exts:  # only extensions covered by the authenticator are acted upon
                    if t == n.EXT_UDP_TUNNEL_REQUEST:
                        tunnel_req = ext
                    elif t == n.EXT_CVSE:
                        cvse = True
            elif t < 128:
                how = self.behaviour.nonskippable
                if how == "accept" or (how == "ignore-after-auth" and auth_exts):
                    continue
                return self._quiet(
                    DROPPED,
                    None,
                    f"unrecognised non-skippable extension {t}: message silently discarded (RFC 5944 1.9)",
                    rq.src,
                    rq.now,
                    rq.hoa,
                )
            elif skipped is None:
                skipped = t
        if error:
            return self._deny(rq, 134, f"poorly formed Request: {error}", authenticated=False)
        if skipped is not None and self.behaviour.skippable == "deny-134":
            return self._deny(rq, 134, f"unrecognised skippable extension {skipped} rejected", authenticated=False)
        rq.auth_exts = auth_exts
        rq.tunnel_req = tunnel_req
        rq.cvse = cvse
        return None

    def _authentication(self, rq: _Request) -> Decision | None:
        """RFC 5944 3.8.2.1 (a): exactly one authorization-enabling extension, and it must verify (3.5)."""
        sa = rq.sa
        if sa is None:
            return self._deny(
                rq, 131, f"no mobility security association for home address {rq.hoa}", authenticated=False
            )
        b = self.behaviour
        auth_exts = rq.auth_exts
        if not auth_exts:
            if b.require_authentication:
                return self._deny(rq, 131, REASON_NO_AUTH, authenticated=False)
        elif len(auth_exts) > 1:
            return self._deny(
                rq, 131, f"{len(auth_exts)} authorization-enabling extensions, exactly one allowed", authenticated=False
            )
        else:
            ext = auth_exts[0]
            ext_type, ext_offset, ext_header, ext_length = ext
            if ext_type != n.EXT_MN_HA_AUTH:
                return self._deny(
                    rq,
                    131,
                    f"authorization-enabling extension type {ext_type} is not supported here",
                    authenticated=False,
                )
            data = rq.data
            spi_at = ext_offset + ext_header
            got_spi = _unpack_spi(data, spi_at)[0] if ext_length >= 4 else None  # codec.spi_of
            if got_spi != sa[0]:
                if not b.accept_unknown_spi:
                    what = (
                        "too short to hold an SPI"
                        if got_spi is None
                        else f"SPI {got_spi:#x} names no security association for {rq.hoa}"
                    )
                    return self._deny(rq, 131, f"MN-HA authentication extension {what}", authenticated=False)
            # codec.check_authenticator: the authenticator covers everything up to and including the SPI.
            elif b.auth_compare_claimed_length:  # as many octets as the Length claims
                width = ext_length - 4
                if width < 0 or not compare_digest(
                    data[spi_at + 4 : spi_at + ext_length], sa[3](data[: spi_at + 4])[:width]
                ):
                    return self._deny(rq, 131, "MN-HA authenticator does not verify", authenticated=False)
            elif b.auth_compare_octets != codec.DIGEST_SIZE:
                if not codec.check_authenticator(data, ext, sa[1], sa[2], b.auth_compare_octets, mac=sa[3]):
                    return self._deny(rq, 131, "MN-HA authenticator does not verify", authenticated=False)
            elif not compare_digest(data[spi_at + 4 : spi_at + ext_length], sa[3](data[: spi_at + 4])):
                return self._deny(rq, 131, "MN-HA authenticator does not verify", authenticated=False)
        if b.untrusted_requests == "drop-after-auth" and self.inside and not rq.trusted:
            return self._drop_untrusted(rq.src, rq.now)  # the RFC 5265 4.3 source check, only now
        return None

    def _identification(self, rq: _Request) -> Decision | None:
        """RFC 5944 3.8.2.1 (b), 5.7: a timestamp within the window and newer, or the nonce this home agent sent."""
        b = self.behaviour
        hoa, ident = rq.hoa, rq.ident
        state = self._replay.get(hoa)
        if state is None:
            state = self._replay[hoa] = ReplayState()
        rq.state = state
        check = b.replay_check
        if rq.sa[4] == "timestamp":
            rq.reply_id = ident
            if check == "none" or (check == "registrations-only" and rq.lifetime == 0):
                return None
            last = state.first_accepted if check == "first-only" else state.last_accepted
            why = check_timestamp(ident, rq.now, self.config.replay_skew, last, self.config.replay_strict)
            if why is None or (not b.reject_future_timestamps and why.startswith("timestamp +")):
                return None
            if b.replay_denial == "drop":
                return self._quiet(DROPPED, None, f"Identification mismatch: {why}; dropped", rq.src, rq.now, hoa)
            rid = ident if b.reply_identification == "copy-request" else timestamp_denial_identification(ident, rq.now)
            return self._deny(rq, 133, f"Identification mismatch: {why} (RFC 5944 5.7)", identification=rid)
        why = None if check == "none" else check_nonce(ident, state)
        nonce = self._new_nonce() & 0xFFFFFFFF
        state.ha_nonce = nonce
        reply_id = rq.reply_id = nonce_reply_identification(ident, nonce)
        if why is not None:
            rid = ident if b.reply_identification == "copy-request" else reply_id
            return self._deny(rq, 133, f"Identification mismatch: {why} (RFC 5944 5.7)", identification=rid)
        state.last_mn_nonce = low32(ident)
        return None

    def _home_agent_field(self, rq: _Request) -> Decision | None:
        """RFC 5944 3.8.2.1: the Home Agent field must be one of this agent's addresses; 136 names ours (3.8.3.1)."""
        # config.address is a canonical dotted quad, so comparing its octets compares the strings.
        ha_octets = rq.ha_octets
        if ha_octets == self._address_octets or not self.behaviour.ha_field_check or _ntoa(ha_octets) == rq.local[0]:
            return None
        own = self.address if self.behaviour.ha_field_in_136 == "own-address" else None
        return self._deny(
            rq,
            136,
            f"Home Agent field {_ntoa(ha_octets)} is not an address of this home agent",
            identification=rq.reply_id,
            home_agent=own,
        )

    def _policy(self, rq: _Request) -> Decision | None:
        """RFC 5944 3.8.2.3, RFC 3024, RFC 3519: what this home agent can offer a registration, or the denial."""
        rq.code = 0
        rq.udp = False
        rq.tunnel_ext = b""
        rq.keep_others = False
        if rq.lifetime == 0:
            return None
        flags, config = rq.flags, self.config
        if flags & n.FLAG_T:
            code = self.behaviour.reverse_tunnel_denial_code
            if code is not None:
                return self._deny(rq, code, "reverse tunnel requested", identification=rq.reply_id)
            if not config.reverse_tunneling:
                return self._deny(
                    rq, 137, "requested reverse tunnel unavailable (RFC 3024)", identification=rq.reply_id
                )
        elif config.reverse_tunnel_required:
            return self._deny(
                rq, 138, "reverse tunnel is mandatory and 'T' bit not set (RFC 3024)", identification=rq.reply_id
            )
        if flags & n.FLAG_G or (flags & n.FLAG_M and not self._minimal):
            offered = "IP-in-IP and minimal encapsulation" if self._minimal else "IP-in-IP"
            return self._deny(
                rq,
                139,
                f"requested encapsulation unavailable: this home agent tunnels {offered} only (RFC 5944 3.8.2.3)",
                identification=rq.reply_id,
            )
        if rq.cvse:
            return self._deny(rq, 140, "unable to interpret CVSE sent by the mobile node", identification=rq.reply_id)
        if rq.tunnel_req is not None and self.behaviour.honour_udp_tunnel_request:
            d = self._udp_tunnel(rq)
            if d is not None:
                return d
        if flags & n.FLAG_S:
            if config.simultaneous_bindings:
                current = self._cache.get(rq.hoa)
                if (
                    len(current) >= config.max_simultaneous_bindings
                    and self._cache.find(rq.hoa, _ntoa(rq.coa_octets)) is None
                ):
                    return self._deny(
                        rq, 135, f"too many simultaneous mobility bindings ({len(current)})", identification=rq.reply_id
                    )
                rq.keep_others = True
            else:
                rq.code = 1  # RFC 5944 3.4, 3.8.3.2: accepted, simultaneous bindings unsupported
        return None

    def _udp_tunnel(self, rq: _Request) -> Decision | None:
        """RFC 3519 3.1 (home agent considerations): a UDP tunnel behind a NAT, or when 'F' forces it."""
        parsed = codec.parse_udp_tunnel_request(rq.data, rq.tunnel_req)
        if parsed is None:
            return self._deny(
                rq,
                134,
                "poorly formed Request: UDP Tunnel Request shorter than 6 octets (RFC 3519 3.1)",
                identification=rq.reply_id,
            )
        force, _fa_required, encapsulation = parsed
        # A NAT shows as an IP source that differs from the Care-of Address.
        if rq.src[0] != _ntoa(rq.coa_octets) or force:
            if not self.config.udp_tunneling:
                return self._deny(rq, 142, "UDP encapsulation unavailable (RFC 3519)", identification=rq.reply_id)
            if encapsulation != n.IPPROTO_IPIP:
                return self._deny(
                    rq,
                    139,
                    f"UDP tunnel encapsulation {encapsulation} unavailable: IP-in-IP only",
                    identification=rq.reply_id,
                )
            rq.udp = True
            rq.tunnel_ext = codec.udp_tunnel_reply(0, self.config.keepalive_interval)
        return None

    def _bindings(self, rq: _Request) -> None:
        """RFC 5944 3.8.2.2: update the mobility binding list; 3.8.3.2: the Lifetime granted."""
        b = self.behaviour
        cache, hoa, lifetime, now = self._cache, rq.hoa, rq.lifetime, rq.now
        coa = rq.coa = _ntoa(rq.coa_octets)
        # tnc_on_accept "except-renewals": a live binding before this request.
        rq.renewal = bool(lifetime and b.tnc_on_accept == "except-renewals" and cache.get(hoa))
        if lifetime == 0 and not b.dereg_grants_lifetime:
            if coa == hoa:
                removed = len(cache.remove_all(hoa))
            else:
                removed = 1 if cache.remove(hoa, coa) else 0
            rq.granted = 0
            rq.reason = f"deregistered {removed} binding(s) (RFC 5944 3.8.2.2)"
        elif lifetime == 0:  # dereg_grants_lifetime: answered as a renewal, binding kept
            rq.granted = self.config.max_lifetime
            rq.reason = "deregistration answered as a renewal"
        else:
            grant = b.lifetime_grant
            if grant == "double":
                granted = min(2 * lifetime, MAX_GRANTABLE)
            else:
                # RFC 5944 3.8.3.2: never more than requested; the home agent may grant less.
                granted = min(lifetime, self.config.max_lifetime)
            prev = cache.find(hoa, coa)
            if prev is not None:
                if grant == "keep-longest":
                    granted = max(granted, prev.lifetime)
                if prev.identification == rq.ident and prev.lifetime != INFINITE_LIFETIME:
                    # RFC 5944 3.8.2.2: a duplicate of an accepted request must not extend the lifetime.
                    granted = max(0, min(granted, int(prev.expires - now)))
            udp, src = rq.udp, rq.src
            binding = _new_tuple(
                Binding,
                (  # Binding(...), without the keyword-handling __new__
                    hoa,
                    coa,
                    granted,
                    now,
                    rq.ident,
                    rq.flags,
                    src,
                    udp,
                    src if udp else None,
                    self.config.keepalive_interval if udp else None,
                ),
            )
            cache.add(binding, keep_others=rq.keep_others)
            rq.granted = granted
            rq.reason = REASON_ACCEPTED if rq.code == 0 else REASON_ACCEPTED_S
        if rq.sa[4] == "timestamp":
            state, ident = rq.state, rq.ident
            if state.last_accepted is None or ident > state.last_accepted:
                state.last_accepted = ident
                if state.first_accepted is None:
                    state.first_accepted = ident

    def _reply(self, rq: _Request) -> Decision:
        """RFC 5944 3.8.3: the accepting reply. 3.8.3.2: Home Address and Home Agent copied; 3.5.2: the
        authentication extension last but for what Behaviour.tnc_position appends (codec.build_reply, same octets)."""
        b = self.behaviour
        tnc_before, tnc_after = self._tnc_accepted if rq.trusted else NO_TNC
        if rq.renewal or (rq.udp and b.tnc_on_accept == "except-udp-tunnel"):
            tnc_before, tnc_after = NO_TNC
        reply_id = rq.reply_id
        if b.reply_identification == "mangle-low-bits":
            reply_id ^= MANGLE_LOW_BITS
        sa, src, granted = rq.sa, rq.src, rq.granted
        msg = (
            _pack_rrp(n.MSG_RRP, rq.code, granted, rq.hoa_octets, rq.ha_octets, reply_id)
            + rq.tunnel_ext
            + tnc_before
            + sa[5]
        )
        reply = msg + sa[3](msg) + tnc_after
        # Decision(ACCEPTED, code, reason, reply, reply_to, hoa, src, lifetime=granted,
        # care_of_address=coa, tnc=..., udp_tunnel=udp), every field in order:
        return _new_tuple(
            Decision,
            (
                ACCEPTED,
                rq.code,
                rq.reason,
                reply,
                self._accepted_reply_to(src, rq.coa, rq.trusted) if self._reply_elsewhere else src,
                rq.hoa,
                src,
                True,
                0,
                granted,
                rq.coa,
                bool(tnc_before or tnc_after),
                rq.udp,
                None,
                None,
            ),
        )

    # ------------------------------------------------------------------ what every reply or drop shares

    def _tnc(self, trusted: bool, accepted: bool) -> tuple[bytes, bytes]:
        """RFC 5265 4.3: replies to trusted sources carry TNC, before the MN-HA authenticator (3.4, RFC 5944 3.5.1)."""
        b = self.behaviour
        if not (self.inside and trusted) or b.tnc_position == "omitted":
            return NO_TNC
        if not accepted and not b.tnc_on_denial:
            return NO_TNC
        ext = BAD_TNC_EXTENSION if b.tnc_format == "length-4-subtype-1" else TNC_EXTENSION
        if accepted and b.tnc_format == "extra-subtype-1":
            ext += EXTRA_BAD_TNC
        if b.tnc_position == "after-auth":
            return b"", ext
        return ext, b""

    def _accepted_reply_to(self, src: tuple[str, int], coa: str, trusted: bool) -> tuple[str, int]:
        """:meth:`_reply_to`, or the Care-of Address (Behaviour.untrusted_requests "answer-at-care-of-address")."""
        if self.inside and not trusted and self.behaviour.untrusted_requests == "answer-at-care-of-address":
            return (coa, src[1])
        return self._reply_to(src)

    def _reply_to(self, src: tuple[str, int]) -> tuple[str, int]:
        # RFC 5944 3.8.3.1: destination port copied from the request's source port (Behaviour.reply_port).
        port = self.behaviour.reply_port
        return src if port == "source" else (src[0], port)

    def _drop_untrusted(self, src: tuple[str, int], now: float) -> Decision:
        # RFC 5265 4.3: MUST drop silently; SHOULD log (rate-limited, with the source): Behaviour.log_untrusted.
        reason = f"registration request from untrusted source {src[0]} dropped (RFC 5265 4.3)"
        how = self.behaviour.log_untrusted
        if how == "never":
            return Decision(DROPPED, None, reason, None, None, None, src, log=False)
        if how == "once-per-source":
            if src[0] in self._untrusted_logged:
                return Decision(DROPPED, None, reason, None, None, None, src, log=False)
            self._untrusted_logged.add(src[0])
        return self._quiet(DROPPED, None, reason, src, now)

    def _deny(
        self,
        rq: _Request,
        code: int,
        reason: str,
        *,
        identification: int | None = None,
        home_agent: str | None = None,
        authenticated: bool = True,
    ) -> Decision:
        """A denying reply (RFC 5944 3.8.2.3): fields copied from the request, Lifetime 0."""
        b = self.behaviour
        tnc_before, tnc_after = self._tnc(rq.trusted, accepted=False)
        ident = rq.ident if identification is None else identification
        if b.reply_identification == "mangle-low-bits":
            ident ^= MANGLE_LOW_BITS
        auth = rq.reply_auth
        reply = codec.build_reply(
            code,
            0,
            rq.hoa_octets,
            home_agent or rq.ha_octets,
            ident,
            tnc_before,
            auth=auth,
            trailing=tnc_after,
        )
        if auth is not None and b.reply_auth_type == "fa-ha":  # FA-HA in place of MN-HA, same authenticator
            at = len(reply) - len(tnc_after) - 4 - codec.DIGEST_SIZE - 2
            reply = reply[:at] + bytes((n.EXT_FA_HA_AUTH,)) + reply[at + 1 :]
        log, held = (True, 0) if authenticated else self._limiter.allow(rq.now)
        coa = _ntoa(rq.coa_octets)
        return Decision(
            DENIED,
            code,
            reason,
            reply,
            self._accepted_reply_to(rq.src, coa, rq.trusted),
            rq.hoa,
            rq.src,
            log=log,
            suppressed=held,
            care_of_address=coa,
            tnc=bool(tnc_before or tnc_after),
        )

    def _quiet(
        self, outcome: str, code: int | None, reason: str, src: tuple[str, int], now: float, home: str | None = None
    ) -> Decision:
        """A decision without a reply, logged through the rate limiter."""
        log, held = self._limiter.allow(now)
        return Decision(outcome, code, reason, None, None, home, src, log=log, suppressed=held)

    # ------------------------------------------------------------------ RFC 3519 tunnel data

    def decapsulate(self, data: bytes, src: tuple[str, int]) -> bytes | TunnelError:
        """Inner packet of a MIP Tunnel Data message from a registered UDP tunnel endpoint."""
        if len(data) < codec.TUNNEL_DATA_HEADER or data[0] != n.MSG_TUNNEL_DATA:
            return TunnelError("not a MIP Tunnel Data message")
        b = self._cache.by_endpoint(src)
        if b is None:
            # Only an authenticated registration moves the endpoint (RFC 3519 6.1: bogus keepalives).
            return TunnelError(f"tunnel data from {src[0]}:{src[1]}, which is no registered UDP tunnel endpoint")
        if data[1] != n.IPPROTO_IPIP:
            return TunnelError(f"tunnel data with Next Header {data[1]}: only IP-in-IP (4) is in use")
        inner = data[codec.TUNNEL_DATA_HEADER :]
        hdr = parse_ipv4(inner)
        if isinstance(hdr, TunnelError):
            return hdr
        if hdr.src != b.home_address:
            return TunnelError(
                f"inner source {hdr.src} is not the home address {b.home_address} registered for this endpoint"
            )
        return inner

    def encapsulate(self, home_address: str, ip_packet: bytes) -> tuple[bytes, tuple[str, int]] | TunnelError:
        """MIP Tunnel Data towards the UDP tunnel endpoint of ``home_address`` (newest binding)."""
        for b in reversed(self._cache.get(home_address)):
            if b.udp_tunnel and b.tunnel_endpoint is not None:
                return codec.tunnel_data(ip_packet), b.tunnel_endpoint
        return TunnelError(f"no UDP-tunnelled binding for {home_address}")

    # ------------------------------------------------------------------ RFC 2003 IP-in-IP, RFC 3024 reverse tunnels

    def decapsulate_ipip(self, packet: bytes) -> tuple[bytes, Binding] | TunnelError:
        """The inner packet of an IP-in-IP packet (the whole outer IPv4 packet, as a raw socket reads it).

        Accepted only when it is addressed to this home agent, its outer source is the care-of address of
        a binding whose home address is the inner source (the reverse-tunnel check of RFC 3024's home agent
        considerations) and that binding is not UDP-tunnelled (RFC 3519: its data comes as MIP Tunnel Data).
        'T' is not required: a mobile node with a co-located care-of address may tunnel to its home agent
        itself. An inner TTL of 0 is discarded (RFC 2003 3.1).
        """
        outer = parse_ipv4(packet)
        if isinstance(outer, TunnelError):
            return TunnelError("IP-in-IP packet with a malformed outer IPv4 header")
        if outer.protocol != n.IPPROTO_IPIP:
            return TunnelError(f"IP protocol {outer.protocol} is not IP-in-IP (4)")
        if outer.dst != self.address and self.address != "0.0.0.0":
            return TunnelError(f"IP-in-IP to {outer.dst}, not to this home agent ({self.address})")
        inner = packet[outer.ihl : outer.total_length]
        hdr = parse_ipv4(inner)
        if isinstance(hdr, TunnelError):
            return TunnelError(f"IP-in-IP from {outer.src}: {hdr.reason}")
        inner = inner[: hdr.total_length]
        b = self._reverse_tunnel_binding("IP-in-IP", outer.src, hdr.src)
        if isinstance(b, TunnelError):
            return b
        if inner[8] == 0:
            return TunnelError(f"IP-in-IP from {outer.src} dropped: inner TTL 0 (RFC 2003 3.1)")
        return inner, b

    def _reverse_tunnel_binding(self, what: str, tunnel_source: str, inner_source: str) -> Binding | TunnelError:
        """RFC 3024: the binding whose care-of address is the tunnel's source and home address the inner source."""
        bindings = self._cache.get(inner_source)
        b = next((b for b in reversed(bindings) if b.care_of_address == tunnel_source), None)
        if b is None:
            if not bindings:
                why = f"inner source {inner_source} has no binding"
            else:
                coas = ", ".join(x.care_of_address for x in bindings)
                why = f"outer source {tunnel_source} is not the care-of address registered for {inner_source} ({coas})"
            return TunnelError(f"{what} from {tunnel_source} dropped: {why} (RFC 3024)")
        if b.udp_tunnel:
            return TunnelError(
                f"{what} from {tunnel_source} dropped: the binding of {inner_source} is UDP-tunnelled (RFC 3519), "
                "its data comes as MIP Tunnel Data"
            )
        return b

    # ------------------------------------------------------------------ RFC 2004 minimal encapsulation

    def decapsulate_minenc(self, packet: bytes) -> tuple[bytes, Binding] | TunnelError:
        """The original datagram of a minimally encapsulated packet (RFC 2004; whole, as a raw socket reads it).

        The same checks as :meth:`decapsulate_ipip` (addressed to this home agent; the encapsulator, the packet's
        IP source, is the care-of address of a binding whose home address is the restored source, RFC 3024; not
        UDP-tunnelled; TTL not 0), plus: the forwarding header is whole and its checksum right, and the binding
        was registered with 'M' (RFC 3024: a reverse tunnel uses the encapsulation registered for the binding).
        """
        if not self._minimal:
            return TunnelError("minimal encapsulation is not offered (encapsulations)")
        out = minenc.decapsulate(packet)
        src = _ntoa(packet[12:16]) if len(packet) >= 20 else "0.0.0.0"
        if not out:
            return TunnelError(f"minimal encapsulation from {src} dropped: {out.reason}")
        if out.tunnel_destination != self.address:
            return TunnelError(f"minimal encapsulation to {out.tunnel_destination}, not to this home agent")
        inner = out.packet
        b = self._reverse_tunnel_binding("minimal encapsulation", out.tunnel_source, _ntoa(inner[12:16]))
        if isinstance(b, TunnelError):
            return b
        if not b.flags & n.FLAG_M:
            return TunnelError(
                f"minimal encapsulation from {out.tunnel_source} dropped: the binding of {b.home_address} was "
                "registered without 'M' (RFC 3024: the registered encapsulation)"
            )
        if inner[8] == 0:
            return TunnelError(f"minimal encapsulation from {out.tunnel_source} dropped: TTL 0")
        return inner, b

    def receive_minenc(self, packet: bytes, now: float) -> Decision:
        """One protocol-55 packet read from a raw socket: as :meth:`receive_ipip`, for minimal encapsulation."""
        return self._receive_tunnelled(packet, now, self.decapsulate_minenc, "minimal encapsulation reverse tunnel")

    def receive_ipip(self, packet: bytes, now: float) -> Decision:
        """One IP-in-IP packet read from a raw socket: ``inner`` set when it may go to the stack, else dropped.

        Drops are logged through the rate limiter, as tunnel data is; ``source`` is (outer source, 0).
        """
        return self._receive_tunnelled(packet, now, self.decapsulate_ipip, "IP-in-IP reverse tunnel")

    def _receive_tunnelled(
        self,
        packet: bytes,
        now: float,
        decapsulate: Callable[[bytes], tuple[bytes, Binding] | TunnelError],
        what: str,
    ) -> Decision:
        cache = self._cache
        nxt = cache.next_expiry()
        if nxt is not None and nxt <= now:
            cache.expire(now)
        src = (_ntoa(packet[12:16]) if len(packet) >= 20 else "0.0.0.0", 0)
        out = decapsulate(packet)
        if isinstance(out, TunnelError):
            d = self._quiet(DROPPED, None, out.reason, src, now)
        else:
            inner, b = out
            d = Decision(
                ACCEPTED,
                None,
                what,
                None,
                None,
                b.home_address,
                src,
                log=False,
                care_of_address=b.care_of_address,
                inner=inner,
            )
        self.counters[d.outcome] += 1
        return d

    def _tunnel(self, data: bytes, src: tuple[str, int], local: tuple[str, int], now: float) -> Decision:
        how = self.behaviour.on_bad_tunnel_data
        if how != "survive" and self._sick is None:
            header = codec.TUNNEL_DATA_HEADER
            if len(data) < header or isinstance(parse_ipv4(data[header:]), TunnelError):
                self._sick = (how, f"a malformed MIP Tunnel Data message from {src[0]}:{src[1]}")
        inner = self.decapsulate(data, src)
        if isinstance(inner, TunnelError):
            return self._quiet(DROPPED, None, inner.reason, src, now)
        b = self._cache.by_endpoint(src)
        home = b.home_address if b else None
        hdr = parse_ipv4(inner)
        if not isinstance(hdr, TunnelError) and is_echo_request(inner, hdr) and hdr.dst in (self.address, local[0]):
            # RFC 3519 keepalive: answered inside the tunnel, to the endpoint it came from.
            port = self.behaviour.tunnel_data_port
            to = src if port == "endpoint" else (src[0], port)
            return Decision(
                ACCEPTED,
                None,
                "keepalive answered",
                codec.tunnel_data(echo_reply(inner, hdr)),
                to,
                home,
                src,
                log=False,
            )
        return Decision(ACCEPTED, None, "tunnel data", None, None, home, src, log=False, inner=inner)
