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

Fault profiles (mipcheck.ha.faults) are the ``self._f_*`` branches below.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable, Iterable
from hmac import compare_digest
from typing import Any, NamedTuple

from mipcheck.proto import codec
from mipcheck.proto import numbers as n
from mipcheck.proto.extensions import AUTHORIZATION_ENABLING_TYPES, RECOGNISED_BY_HA, TNC_EXTENSION
from mipcheck.proto.identification import low32
from mipcheck.proto.numbers import INFINITE_LIFETIME

from .binding import Binding, BindingCache, BindingView
from .config import HAConfig
from .faults import check_faults
from .replay import (
    ReplayState,
    check_nonce,
    check_timestamp,
    nonce_reply_identification,
    timestamp_denial_identification,
)
from .trust import LogRateLimiter, TrustPolicy
from .tunnel import TunnelError, echo_reply, is_echo_request, parse_ipv4

ACCEPTED, DENIED, DROPPED, IGNORED = "accepted", "denied", "dropped", "ignored"
BAD_TNC_EXTENSION = bytes((n.EXT_TNC, 4, 1, 0, 0, 0))  # fault bad-tnc-format: Length 4, Sub-Type 1
EXTRA_BAD_TNC = bytes((n.EXT_TNC, 2, 1, 0))  # fault extra-bad-tnc: a second TNC, Sub-Type 1
MAX_GRANTABLE = 0xFFFE  # one below infinity
MANGLE_LOW_BITS = 0x00A5_A5A5  # fault mangle-reply-identification: flips these low-order Identification bits
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
    log: bool = True  # False: rate-limited, data plane, or the no-untrusted-log fault
    suppressed: int = 0  # log lines held back by the rate limit before this one
    lifetime: int | None = None  # granted (accepted replies)
    care_of_address: str | None = None
    tnc: bool = False  # the reply carries a TNC extension
    udp_tunnel: bool = False  # the reply carries a UDP Tunnel Reply
    inner: bytes | None = None  # tunnel data: the decapsulated packet

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
        return d


class HomeAgent:
    """The registration logic of a home agent (RFC 5944 3.8) with the i-HA/x-HA roles of RFC 5265."""

    def __init__(
        self,
        config: HAConfig,
        faults: Iterable[str] = frozenset(),
        *,
        nonce_source: Callable[[], int] | None = None,
    ) -> None:
        self.config = config
        self.faults = check_faults(faults)
        f = self.faults
        self._f_answer_untrusted = "answer-untrusted" in f
        self._f_trust_by_coa = "trust-by-coa" in f
        self._f_omit_tnc = "omit-tnc" in f
        self._f_bad_tnc_format = "bad-tnc-format" in f
        self._f_tnc_after_auth = "tnc-after-auth" in f
        self._f_no_tnc_on_denial = "no-tnc-on-denial" in f
        self._f_no_untrusted_log = "no-untrusted-log" in f
        self._f_no_udp_tunnel = "no-udp-tunnel" in f
        self._f_reply_to_434 = "reply-to-port-434" in f
        # RFC 5265 trust/TNC/NAT branches (suites/ha/cases_rfc5265.py probes each one).
        self._f_untrusted_renewal = "answer-untrusted-renewal" in f
        self._f_untrusted_dereg = "answer-untrusted-dereg" in f
        self._f_auth_before_trust = "auth-before-trust" in f
        self._f_untrusted_reply_to_coa = "untrusted-reply-to-coa" in f
        self._f_trust_registered_coa = "trust-registered-coa" in f
        self._f_untrusted_leaks = any((
            self._f_untrusted_renewal, self._f_untrusted_dereg, self._f_auth_before_trust,
            self._f_untrusted_reply_to_coa, self._f_trust_registered_coa,
        ))
        self._f_no_tnc_on_renewal = "no-tnc-on-renewal" in f
        self._f_no_tnc_with_udp = "no-tnc-with-udp-tunnel" in f
        self._f_extra_bad_tnc = "extra-bad-tnc" in f
        self._f_tunnel_data_to_434 = "tunnel-data-to-port-434" in f
        self._f_log_untrusted_once = "log-untrusted-once" in f  # a conformant variant (faults.PASSING_FAULTS)
        self._untrusted_logged: set[str] = set()
        self._f_reply_elsewhere = self._f_reply_to_434 or self._f_untrusted_reply_to_coa
        self._f_accept_missing_auth = "accept-missing-auth" in f
        self._f_truncated_auth = "truncated-auth-compare" in f
        self._f_accept_unknown_spi = "accept-unknown-spi" in f
        self._f_no_replay_check = "no-replay-check" in f
        self._f_bad_reply_id = "bad-reply-identification" in f
        self._f_ignore_ha_field = "ignore-ha-field" in f
        self._f_reject_skippable = "reject-skippable" in f
        self._f_accept_nonskippable = "accept-nonskippable" in f
        self._f_dereg_nonzero = "dereg-nonzero-lifetime" in f
        self._f_grant_longer = "grant-longer-lifetime" in f
        self._f_bad_rt_code = "bad-reverse-tunnel-code" in f
        self._f_mangle_reply_id = "mangle-reply-identification" in f
        self._f_reply_fa_ha_auth = "reply-without-mn-ha-auth" in f
        self._f_replay_first_only = "replay-first-only" in f
        self._f_drop_replays = "drop-replays" in f
        self._f_dereg_unchecked = "replay-dereg-unchecked" in f
        self._f_accept_future_id = "accept-future-identification" in f
        self._f_auth_claimed_length = "auth-compare-claimed-length" in f
        self._f_ha_field_copied = "ha-field-copied-in-136" in f
        self._f_nonskippable_after_auth = "nonskippable-after-auth-ignored" in f
        self._f_lifetime_keeps_longest = "lifetime-keeps-longest" in f

        self.address = config.address
        self._address_octets = socket.inet_aton(config.address)
        self.inside = config.role == "i-ha"
        # RFC 5265 4.3: no subnet is trusted by default.
        trust_all = "trust-all-when-unconfigured" in f and not config.trusted_networks  # FAULT trust-all-when-unconfigured
        self._trust = TrustPolicy(config.trusted_networks, trust_all=trust_all)
        self._limiter = LogRateLimiter(config.log_rate, config.log_burst)
        # home address -> (SPI, algorithm, key, keyed MAC, replay mode, MN-HA extension header of
        # the reply up to its SPI): one security association each.
        self._sa: dict[str, tuple[int, str, bytes, Callable[[bytes], bytes], str, bytes]] = {
            mn.home_address: (
                mn.spi, mn.algorithm, mn.secret.reveal(), codec.keyed(mn.algorithm, mn.secret.reveal()), mn.replay,
                codec.AUTH_HDR.pack(n.EXT_MN_HA_AUTH, 4 + codec.DIGEST_SIZE, mn.spi),
            )
            for mn in config.mobile_nodes
        }
        self._cache = BindingCache()
        self._replay: dict[str, ReplayState] = {}
        self._new_nonce = nonce_source or (lambda: secrets.randbits(32))
        self.counters: dict[str, int] = {ACCEPTED: 0, DENIED: 0, DROPPED: 0, IGNORED: 0}
        self._tnc_accepted = self._tnc(True, accepted=True)  # what an accepted reply to a trusted source carries

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
            d = self._quiet(IGNORED, None, f"message type {data[0]} is not a Registration Request", src, now)
        self.counters[d.outcome] += 1
        return d

    # ------------------------------------------------------------------ registration

    def _registration(self, data: bytes, src: tuple[str, int], local: tuple[str, int], now: float) -> Decision:
        # One pass over the octets (codec.parse_request is the same layout; a denial re-parses
        # them into a codec.Request, see _deny), every check in the order of the module docstring.
        trusted = False
        if self.inside:
            # RFC 5265 4.3: trust is a property of the request's IP source address.
            who = src[0]
            if self._f_trust_by_coa:  # FAULT trust-by-coa: use the Care-of Address field instead
                who = socket.inet_ntoa(data[12:16]) if len(data) >= 16 else "0.0.0.0"
            trusted = self._trust.is_trusted(who)
            if not trusted and not self._f_answer_untrusted:  # FAULT answer-untrusted skips this
                if not (self._f_untrusted_leaks and self._untrusted_leak(data)):
                    return self._drop_untrusted(src, now)

        if len(data) < _RRQ_SIZE:
            return self._quiet(DROPPED, None, f"truncated Registration Request: {len(data)} octets, the fixed part is 24 (RFC 5944 3.3)", src, now)
        _type, flags, lifetime, hoa_octets, ha_octets, coa_octets, ident = _unpack_rrq(data)
        hoa = _ntoa(hoa_octets)
        sa = self._sa.get(hoa)
        reply_auth = sa[:4] if sa is not None else None

        # RFC 5944 1.9: unrecognised extensions 0-127 discard the message, 128-255 are skipped.
        exts, error = _walk_extensions(data, _RRQ_SIZE)
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
                if auth_exts and self._f_nonskippable_after_auth:  # FAULT nonskippable-after-auth-ignored
                    continue
                if not self._f_accept_nonskippable:  # FAULT accept-nonskippable skips this
                    return self._quiet(DROPPED, None, f"unrecognised non-skippable extension {t}: message silently discarded (RFC 5944 1.9)", src, now, hoa)
            elif skipped is None:
                skipped = t
        if error:
            return self._deny(data, 134, f"poorly formed Request: {error}", src, now, trusted, reply_auth, authenticated=False)
        if skipped is not None and self._f_reject_skippable:  # FAULT reject-skippable
            return self._deny(data, 134, f"unrecognised skippable extension {skipped} rejected", src, now, trusted, reply_auth, authenticated=False)

        # RFC 5944 3.8.2.1 (a): exactly one authorization-enabling extension, and it must verify.
        if sa is None:
            return self._deny(data, 131, f"no mobility security association for home address {hoa}", src, now, trusted, None, authenticated=False)
        spi, algorithm, key, mac, replay_mode, reply_auth_header = sa
        if not auth_exts:
            if not self._f_accept_missing_auth:  # FAULT accept-missing-auth skips this
                return self._deny(data, 131, "no MN-HA authentication extension", src, now, trusted, reply_auth, authenticated=False)
        elif len(auth_exts) > 1:
            return self._deny(data, 131, f"{len(auth_exts)} authorization-enabling extensions, exactly one allowed", src, now, trusted, reply_auth, authenticated=False)
        else:
            ext = auth_exts[0]
            ext_type, ext_offset, ext_header, ext_length = ext
            if ext_type != n.EXT_MN_HA_AUTH:
                return self._deny(data, 131, f"authorization-enabling extension type {ext_type} is not supported here", src, now, trusted, reply_auth, authenticated=False)
            spi_at = ext_offset + ext_header
            got_spi = _unpack_spi(data, spi_at)[0] if ext_length >= 4 else None  # codec.spi_of
            if got_spi != spi:
                if not self._f_accept_unknown_spi:  # FAULT accept-unknown-spi skips this
                    what = "too short to hold an SPI" if got_spi is None else f"SPI {got_spi:#x} names no security association for {hoa}"
                    return self._deny(data, 131, f"MN-HA authentication extension {what}", src, now, trusted, reply_auth, authenticated=False)
            elif self._f_auth_claimed_length:  # FAULT auth-compare-claimed-length: as many octets as the Length claims
                width = ext_length - 4
                if width < 0 or not compare_digest(data[spi_at + 4 : spi_at + ext_length], mac(data[: spi_at + 4])[:width]):
                    return self._deny(data, 131, "MN-HA authenticator does not verify", src, now, trusted, reply_auth, authenticated=False)
            elif self._f_truncated_auth:  # FAULT truncated-auth-compare
                if not codec.check_authenticator(data, ext, algorithm, key, 8, mac=mac):
                    return self._deny(data, 131, "MN-HA authenticator does not verify", src, now, trusted, reply_auth, authenticated=False)
            # codec.check_authenticator: the authenticator covers everything up to and including the SPI.
            elif not compare_digest(data[spi_at + 4 : spi_at + ext_length], mac(data[: spi_at + 4])):
                return self._deny(data, 131, "MN-HA authenticator does not verify", src, now, trusted, reply_auth, authenticated=False)
        if self._f_auth_before_trust and self.inside and not trusted:  # FAULT auth-before-trust: the source check comes only now
            return self._drop_untrusted(src, now)

        # RFC 5944 3.8.2.1 (b) and 5.7: Identification.
        state = self._replay.get(hoa)
        if state is None:
            state = self._replay[hoa] = ReplayState()
        if replay_mode == "timestamp":
            reply_id = ident
            skip = self._f_no_replay_check  # FAULT no-replay-check skips this
            if self._f_dereg_unchecked and lifetime == 0:  # FAULT replay-dereg-unchecked
                skip = True
            if not skip:
                last = state.first_accepted if self._f_replay_first_only else state.last_accepted  # FAULT replay-first-only
                why = check_timestamp(ident, now, self.config.replay_skew, last, self.config.replay_strict)
                if why is not None and self._f_accept_future_id and why.startswith("timestamp +"):  # FAULT accept-future-identification
                    why = None
                if why is not None and self._f_drop_replays:  # FAULT drop-replays: silence instead of 133
                    return self._quiet(DROPPED, None, f"Identification mismatch: {why}; dropped", src, now, hoa)
                if why is not None:
                    rid = ident if self._f_bad_reply_id else timestamp_denial_identification(ident, now)  # FAULT bad-reply-identification
                    return self._deny(data, 133, f"Identification mismatch: {why} (RFC 5944 5.7)", src, now, trusted, reply_auth, identification=rid)
        else:
            why = None if self._f_no_replay_check else check_nonce(ident, state)  # FAULT no-replay-check
            nonce = self._new_nonce() & 0xFFFFFFFF
            state.ha_nonce = nonce
            reply_id = nonce_reply_identification(ident, nonce)
            if why is not None:
                rid = ident if self._f_bad_reply_id else reply_id  # FAULT bad-reply-identification
                return self._deny(data, 133, f"Identification mismatch: {why} (RFC 5944 5.7)", src, now, trusted, reply_auth, identification=rid)
            state.last_mn_nonce = low32(ident)

        # RFC 5944 3.8.2.1: the Home Agent field must be one of this home agent's addresses
        # (config.address is a canonical dotted quad, so comparing its octets compares the strings).
        if ha_octets != self._address_octets and _ntoa(ha_octets) != local[0] and not self._f_ignore_ha_field:  # FAULT ignore-ha-field
            own = None if self._f_ha_field_copied else self.address  # FAULT ha-field-copied-in-136
            return self._deny(data, 136, f"Home Agent field {_ntoa(ha_octets)} is not an address of this home agent", src, now, trusted, reply_auth, identification=reply_id, home_agent=own)

        coa = _ntoa(coa_octets)
        registering = lifetime != 0
        udp = False
        tunnel_ext = b""
        code = 0
        keep_others = False
        cache = self._cache
        if registering:
            if flags & n.FLAG_T:
                if self._f_bad_rt_code:  # FAULT bad-reverse-tunnel-code
                    return self._deny(data, 128, "reverse tunnel requested", src, now, trusted, reply_auth, identification=reply_id)
                if not self.config.reverse_tunneling:
                    return self._deny(data, 137, "requested reverse tunnel unavailable (RFC 3024)", src, now, trusted, reply_auth, identification=reply_id)
            elif self.config.reverse_tunnel_required:
                return self._deny(data, 138, "reverse tunnel is mandatory and 'T' bit not set (RFC 3024)", src, now, trusted, reply_auth, identification=reply_id)
            if flags & (n.FLAG_M | n.FLAG_G):
                return self._deny(data, 139, "requested encapsulation unavailable: this home agent tunnels IP-in-IP only (RFC 5944 3.8.2.3)", src, now, trusted, reply_auth, identification=reply_id)
            if cvse:
                return self._deny(data, 140, "unable to interpret CVSE sent by the mobile node", src, now, trusted, reply_auth, identification=reply_id)
            if tunnel_req is not None and not self._f_no_udp_tunnel:  # FAULT no-udp-tunnel ignores the request
                parsed = codec.parse_udp_tunnel_request(data, tunnel_req)
                if parsed is None:
                    return self._deny(data, 134, "poorly formed Request: UDP Tunnel Request shorter than 6 octets (RFC 3519 3.1)", src, now, trusted, reply_auth, identification=reply_id)
                force, _fa_required, encapsulation = parsed
                # RFC 3519 (home agent considerations): a NAT shows as an IP source that differs
                # from the Care-of Address; 'F' asks for UDP tunnelling without one.
                if src[0] != coa or force:
                    if not self.config.udp_tunneling:
                        return self._deny(data, 142, "UDP encapsulation unavailable (RFC 3519)", src, now, trusted, reply_auth, identification=reply_id)
                    if encapsulation != n.IPPROTO_IPIP:
                        return self._deny(data, 139, f"UDP tunnel encapsulation {encapsulation} unavailable: IP-in-IP only", src, now, trusted, reply_auth, identification=reply_id)
                    udp = True
                    tunnel_ext = codec.udp_tunnel_reply(0, self.config.keepalive_interval)
            if flags & n.FLAG_S:
                if self.config.simultaneous_bindings:
                    current = cache.get(hoa)
                    if len(current) >= self.config.max_simultaneous_bindings and cache.find(hoa, coa) is None:
                        return self._deny(data, 135, f"too many simultaneous mobility bindings ({len(current)})", src, now, trusted, reply_auth, identification=reply_id)
                    keep_others = True
                else:
                    code = 1  # RFC 5944 3.4, 3.8.3.2: accepted, simultaneous bindings unsupported

        renewal = self._f_no_tnc_on_renewal and registering and bool(cache.get(hoa))  # FAULT no-tnc-on-renewal: a live binding before
        # RFC 5944 3.8.2.2: update the mobility binding list.
        if not registering and not self._f_dereg_nonzero:
            if coa == hoa:
                removed = len(cache.remove_all(hoa))
            else:
                removed = 1 if cache.remove(hoa, coa) else 0
            granted = 0
            reason = f"deregistered {removed} binding(s) (RFC 5944 3.8.2.2)"
        elif not registering:  # FAULT dereg-nonzero-lifetime: answered as a renewal, binding kept
            granted = self.config.max_lifetime
            reason = "deregistration answered as a renewal"
        else:
            if self._f_grant_longer:  # FAULT grant-longer-lifetime
                granted = min(2 * lifetime, MAX_GRANTABLE)
            else:
                # RFC 5944 3.8.3.2: never more than requested; the home agent may grant less.
                granted = min(lifetime, self.config.max_lifetime)
            prev = cache.find(hoa, coa)
            if prev is not None and self._f_lifetime_keeps_longest:  # FAULT lifetime-keeps-longest
                granted = max(granted, prev.lifetime)
            if prev is not None and prev.identification == ident and prev.lifetime != INFINITE_LIFETIME:
                # RFC 5944 3.8.2.2: a duplicate of an accepted request must not extend the lifetime.
                granted = max(0, min(granted, int(prev.expires - now)))
            binding = _new_tuple(Binding, (  # Binding(...), without the keyword-handling __new__
                hoa, coa, granted, now, ident, flags, src,
                udp, src if udp else None, self.config.keepalive_interval if udp else None,
            ))
            cache.add(binding, keep_others=keep_others)
            reason = REASON_ACCEPTED if code == 0 else REASON_ACCEPTED_S
        if replay_mode == "timestamp" and (state.last_accepted is None or ident > state.last_accepted):
            state.last_accepted = ident
            if state.first_accepted is None:
                state.first_accepted = ident

        # RFC 5944 3.8.3.2: Home Address and Home Agent copied; 3.5.2: the MN-HA authentication
        # extension last but for what a fault profile appends (codec.build_reply, same octets).
        tnc_before, tnc_after = self._tnc_accepted if trusted else NO_TNC
        if renewal or (udp and self._f_no_tnc_with_udp):  # FAULT no-tnc-with-udp-tunnel (and no-tnc-on-renewal)
            tnc_before, tnc_after = NO_TNC
        if self._f_mangle_reply_id:  # FAULT mangle-reply-identification
            reply_id ^= MANGLE_LOW_BITS
        if self._f_reply_fa_ha_auth:  # FAULT reply-without-mn-ha-auth: FA-HA in place of MN-HA
            reply_auth_header = bytes((n.EXT_FA_HA_AUTH,)) + reply_auth_header[1:]
        msg = _pack_rrp(n.MSG_RRP, code, granted, hoa_octets, ha_octets, reply_id) + tunnel_ext + tnc_before + reply_auth_header
        reply = msg + mac(msg) + tnc_after
        # Decision(ACCEPTED, code, reason, reply, reply_to, hoa, src, lifetime=granted,
        # care_of_address=coa, tnc=..., udp_tunnel=udp), every field in order:
        return _new_tuple(Decision, (
            ACCEPTED, code, reason, reply, self._accepted_reply_to(src, coa, trusted) if self._f_reply_elsewhere else src, hoa, src,
            True, 0, granted, coa, bool(tnc_before or tnc_after), udp, None,
        ))

    def _tnc(self, trusted: bool, accepted: bool) -> tuple[bytes, bytes]:
        """RFC 5265 4.3: replies to trusted sources carry TNC, before the MN-HA authenticator (3.4, RFC 5944 3.5.1)."""
        if not (self.inside and trusted) or self._f_omit_tnc:  # FAULT omit-tnc
            return b"", b""
        if not accepted and self._f_no_tnc_on_denial:  # FAULT no-tnc-on-denial
            return b"", b""
        ext = BAD_TNC_EXTENSION if self._f_bad_tnc_format else TNC_EXTENSION  # FAULT bad-tnc-format
        if accepted and self._f_extra_bad_tnc:  # FAULT extra-bad-tnc: a second TNC with Sub-Type 1
            ext += EXTRA_BAD_TNC
        if self._f_tnc_after_auth:  # FAULT tnc-after-auth
            return b"", ext
        return ext, b""

    def _accepted_reply_to(self, src: tuple[str, int], coa: str, trusted: bool) -> tuple[str, int]:
        """:meth:`_reply_to`, and the fault that answers untrusted requests at their Care-of Address."""
        if self._f_untrusted_reply_to_coa and self.inside and not trusted:  # FAULT untrusted-reply-to-coa
            return (coa, src[1])
        return self._reply_to(src)

    def _untrusted_leak(self, data: bytes) -> bool:
        """Fault branches that let a request from an untrusted source past the RFC 5265 4.3 check."""
        if self._f_auth_before_trust or self._f_untrusted_reply_to_coa:  # FAULTS auth-before-trust, untrusted-reply-to-coa
            return True  # (auth-before-trust drops it after authentication)
        if len(data) < _RRQ_SIZE:
            return False
        lifetime = int.from_bytes(data[2:4], "big")
        live = self._cache.get(_ntoa(data[4:8]))
        if self._f_trust_registered_coa and any(b.care_of_address == _ntoa(data[12:16]) for b in live):  # FAULT trust-registered-coa
            return True
        if lifetime == 0:
            return self._f_untrusted_dereg  # FAULT answer-untrusted-dereg
        return self._f_untrusted_renewal and bool(live)  # FAULT answer-untrusted-renewal

    def _drop_untrusted(self, src: tuple[str, int], now: float) -> Decision:
        # RFC 5265 4.3: MUST drop silently; SHOULD log (rate-limited, with the source).
        reason = f"registration request from untrusted source {src[0]} dropped (RFC 5265 4.3)"
        if self._f_no_untrusted_log:  # FAULT no-untrusted-log
            return Decision(DROPPED, None, reason, None, None, None, src, log=False)
        if self._f_log_untrusted_once:  # FAULT log-untrusted-once (conformant): one line per source
            if src[0] in self._untrusted_logged:
                return Decision(DROPPED, None, reason, None, None, None, src, log=False)
            self._untrusted_logged.add(src[0])
        return self._quiet(DROPPED, None, reason, src, now)

    def _reply_to(self, src: tuple[str, int]) -> tuple[str, int]:
        # RFC 5944 3.8.3.1: destination port copied from the request's source port.
        if self._f_reply_to_434:  # FAULT reply-to-port-434
            return (src[0], n.MIP_PORT)
        return src

    def _deny(
        self,
        data: bytes,
        code: int,
        reason: str,
        src: tuple[str, int],
        now: float,
        trusted: bool,
        auth: tuple[int, str, bytes, Callable[[bytes], bytes]] | None,
        *,
        identification: int | None = None,
        home_agent: str | None = None,
        authenticated: bool = True,
    ) -> Decision:
        """A denying reply (RFC 5944 3.8.2.3): fields copied from the request, Lifetime 0."""
        req = codec.parse_request(data)
        assert req is not None  # _registration checked the type and the 24 octets
        tnc_before, tnc_after = self._tnc(trusted, accepted=False)
        ident = req.identification if identification is None else identification
        if self._f_mangle_reply_id:  # FAULT mangle-reply-identification
            ident ^= MANGLE_LOW_BITS
        reply = codec.build_reply(
            code, 0, req.data[4:8], home_agent or req.data[8:12], ident, tnc_before,
            auth=auth, trailing=tnc_after,
        )
        if auth is not None and self._f_reply_fa_ha_auth:  # FAULT reply-without-mn-ha-auth
            at = len(reply) - len(tnc_after) - 4 - codec.DIGEST_SIZE - 2
            reply = reply[:at] + bytes((n.EXT_FA_HA_AUTH,)) + reply[at + 1 :]
        log, held = (True, 0) if authenticated else self._limiter.allow(now)
        return Decision(
            DENIED, code, reason, reply, self._accepted_reply_to(src, req.care_of_address, trusted), req.home_address, src,
            log=log, suppressed=held, care_of_address=req.care_of_address, tnc=bool(tnc_before or tnc_after),
        )

    def _quiet(self, outcome: str, code: int | None, reason: str, src: tuple[str, int], now: float, home: str | None = None) -> Decision:
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
            return TunnelError(f"inner source {hdr.src} is not the home address {b.home_address} registered for this endpoint")
        return inner

    def encapsulate(self, home_address: str, ip_packet: bytes) -> tuple[bytes, tuple[str, int]] | TunnelError:
        """MIP Tunnel Data towards the UDP tunnel endpoint of ``home_address`` (newest binding)."""
        for b in reversed(self._cache.get(home_address)):
            if b.udp_tunnel and b.tunnel_endpoint is not None:
                return codec.tunnel_data(ip_packet), b.tunnel_endpoint
        return TunnelError(f"no UDP-tunnelled binding for {home_address}")

    def _tunnel(self, data: bytes, src: tuple[str, int], local: tuple[str, int], now: float) -> Decision:
        inner = self.decapsulate(data, src)
        if isinstance(inner, TunnelError):
            return self._quiet(DROPPED, None, inner.reason, src, now)
        b = self._cache.by_endpoint(src)
        home = b.home_address if b else None
        hdr = parse_ipv4(inner)
        if not isinstance(hdr, TunnelError) and is_echo_request(inner, hdr) and hdr.dst in (self.address, local[0]):
            # RFC 3519 keepalive: answered inside the tunnel, to the endpoint it came from.
            to = (src[0], n.MIP_PORT) if self._f_tunnel_data_to_434 else src  # FAULT tunnel-data-to-port-434
            return Decision(ACCEPTED, None, "keepalive answered", codec.tunnel_data(echo_reply(inner, hdr)), to, home, src, log=False)
        return Decision(ACCEPTED, None, "tunnel data", None, None, home, src, log=False, inner=inner)
