"""What the reference home agent does where implementations differ: one frozen record.

Every field is one decision a home agent takes while it handles a
Registration Request (or tunnel data, or another message); the defaults are the conformant
choice. A fault profile (:mod:`mipcheck.ha.faults`) is a change of one field;
:class:`mipcheck.ha.core.HomeAgent` reads the record and nothing else to know
how to behave. Each field's comment lists its values and what they do, the
conformant one first.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from mipcheck.errors import ConfigError

# field -> its values (the conformant one first); fields not listed here are booleans.
CHOICES: dict[str, tuple[Any, ...]] = {
    "trust_by": ("source", "care-of-address"),
    "trust_when_unconfigured": ("none", "all"),
    "untrusted_requests": (
        "drop",
        "answer",
        "answer-at-care-of-address",
        "answer-renewals",
        "answer-deregistrations",
        "answer-registered-coa",
        "drop-after-auth",
    ),
    "log_untrusted": ("every", "never", "once-per-source"),
    "nonskippable": ("discard", "accept", "ignore-after-auth"),
    "skippable": ("ignore", "deny-134"),
    "auth_compare_octets": tuple(range(16, 0, -1)),
    "replay_check": ("all", "none", "first-only", "registrations-only"),
    "replay_denial": ("reply-133", "drop"),
    "reply_identification": ("rfc", "copy-request", "mangle-low-bits"),
    "ha_field_in_136": ("own-address", "copied"),
    "reverse_tunnel_denial_code": (None, *range(128, 256)),
    "tnc_position": ("before-auth", "after-auth", "omitted"),
    "tnc_format": ("rfc", "length-4-subtype-1", "extra-subtype-1"),
    "tnc_on_accept": ("always", "except-renewals", "except-udp-tunnel"),
    "lifetime_grant": ("min", "double", "keep-longest"),
    "reply_auth_type": ("mn-ha", "fa-ha"),
    "reply_port": ("source", 434),
    "tunnel_data_port": ("endpoint", 434),
    # robustness (fuzz targets): "survive" first, then the one way each breaks.
    "on_nonskippable_first": ("survive", "crash"),
    "on_long_length_overrun": ("survive", "crash"),
    "on_tnc_length_zero": ("survive", "hang"),
    "on_two_mn_ha_auth": ("survive", "hang"),
    "on_bad_tunnel_data": ("survive", "deny-128-after"),
    "on_revocation": ("survive", "silent-after"),
}


@dataclass(frozen=True)
class Behaviour:
    """The choices of one home agent, in the order it meets them (RFC 5944 3.8.2.1, RFC 5265 4.3)."""

    # ---- source check (RFC 5265 4.3; i-HA only)
    # Whose address decides trust: "source" the request's IP source address; "care-of-address" the
    # Care-of Address field (fault trust-by-coa).
    trust_by: str = "source"
    # With no trusted network configured: "none" trusts no source; "all" trusts every source
    # (fault trust-all-when-unconfigured).
    trust_when_unconfigured: str = "none"
    # A request from an untrusted source: "drop" silently, before anything else. Faults process it
    # instead (the reply carries no TNC: the source is still untrusted): "answer" every one
    # (answer-untrusted); "answer-at-care-of-address" every one, replying to the Care-of Address at the
    # request's source port (untrusted-reply-to-coa); "answer-renewals" a renewal (non-zero Lifetime) of
    # a live binding (answer-untrusted-renewal); "answer-deregistrations" a Lifetime 0 request
    # (answer-untrusted-dereg); "answer-registered-coa" one whose Care-of Address is that of a live
    # binding of its home address (trust-registered-coa); "drop-after-auth" drops it only after the
    # extension and authentication checks, which deny it first if it fails them (auth-before-trust).
    untrusted_requests: str = "drop"
    # Logging the drops: "every" one, through the rate limiter; "never" (fault no-untrusted-log);
    # "once-per-source", the first drop of each source only (conformant variant log-untrusted-once).
    log_untrusted: str = "every"

    # ---- extensions (RFC 5944 1.9)
    # An unrecognised extension 0-127: "discard" the message silently; "accept" ignores it and goes on
    # (accept-nonskippable); "ignore-after-auth" discards only when it precedes the authenticator
    # (nonskippable-after-auth-ignored).
    nonskippable: str = "discard"
    # An unrecognised extension 128-255: "ignore" it; "deny-134" the request (reject-skippable).
    skippable: str = "ignore"

    # ---- authentication (RFC 5944 3.8.2.1 (a), 3.5)
    # False: a request without an authorization-enabling extension is processed (accept-missing-auth).
    require_authentication: bool = True
    # True: an SPI that names no security association of the home address passes (accept-unknown-spi).
    accept_unknown_spi: bool = False
    # How many leading octets of the authenticator are compared: 16 all (HMAC-MD5, keyed MD5);
    # fewer for the fault truncated-auth-compare (8).
    auth_compare_octets: int = 16
    # True: compare only as many octets as the extension's Length claims, so a shortened or empty
    # authenticator passes (auth-compare-claimed-length). Checked before auth_compare_octets.
    auth_compare_claimed_length: bool = False

    # ---- Identification (RFC 5944 3.8.2.1 (b), 5.7)
    # Which requests are checked: "all"; "none" (no-replay-check, timestamps and nonces);
    # "first-only" compares a timestamp with the first Identification ever accepted for the home
    # address, not the last (replay-first-only); "registrations-only" skips the timestamp check of
    # Lifetime 0 requests (replay-dereg-unchecked).
    replay_check: str = "all"
    # A timestamp that fails the check: "reply-133" denies it; "drop" drops it silently (drop-replays).
    replay_denial: str = "reply-133"
    # False: a timestamp ahead of the clock by any amount passes; only late ones are refused
    # (accept-future-identification).
    reject_future_timestamps: bool = True
    # The reply's Identification: "rfc" as 5.7 says (a 133 denial carries the home agent's time or a
    # fresh nonce in the high-order bits); "copy-request" copies the request's unchanged into a 133
    # denial (bad-reply-identification); "mangle-low-bits" flips low-order bits of every reply's
    # (mangle-reply-identification).
    reply_identification: str = "rfc"

    # ---- Home Agent field (RFC 5944 3.8.2.1, 3.8.3.1)
    # False: any Home Agent field is accepted (ignore-ha-field); True: one that is not this home agent's
    # address is denied with 136.
    ha_field_check: bool = True
    # The Home Agent field of a 136 denial: "own-address" of this home agent; "copied" from the request
    # (ha-field-copied-in-136).
    ha_field_in_136: str = "own-address"

    # ---- policy denials (RFC 5944 3.8.2.3, RFC 3024, RFC 3519)
    # None: a request with 'T' is accepted, or denied with 137 when reverse tunnelling is off (RFC 3024);
    # a code: every request with 'T' is denied with it (bad-reverse-tunnel-code: 128).
    reverse_tunnel_denial_code: int | None = None
    # False: the UDP Tunnel Request extension is ignored, no UDP tunnel is set up (no-udp-tunnel).
    honour_udp_tunnel_request: bool = True

    # ---- bindings (RFC 5944 3.8.2.2, 3.8.3.2)
    # Lifetime granted to a registration: "min" of the requested and max_lifetime; "double" twice the
    # requested (grant-longer-lifetime); "keep-longest" the longer of "min" and the binding's current
    # one (lifetime-keeps-longest).
    lifetime_grant: str = "min"
    # True: a deregistration is answered as a renewal: binding kept, max_lifetime granted
    # (dereg-nonzero-lifetime).
    dereg_grants_lifetime: bool = False

    # ---- reply (RFC 5944 3.8.3, 3.5; RFC 5265 3.4, 4.3)
    # Where the TNC extension of a reply to a trusted source goes: "before-auth", covered by the
    # MN-HA authenticator; "after-auth", outside it (tnc-after-auth); "omitted" never sent (omit-tnc).
    tnc_position: str = "before-auth"
    # Its octets: "rfc" Type 149, Length 2, Sub-Type 0; "length-4-subtype-1" (bad-tnc-format);
    # "extra-subtype-1" the right one then a second with Sub-Type 1, accepting replies only (extra-bad-tnc).
    tnc_format: str = "rfc"
    # False: denying replies carry no TNC (no-tnc-on-denial).
    tnc_on_denial: bool = True
    # Accepting replies carry TNC: "always"; "except-renewals" of a live binding (no-tnc-on-renewal);
    # "except-udp-tunnel", when the reply carries a UDP Tunnel Reply (no-tnc-with-udp-tunnel).
    tnc_on_accept: str = "always"
    # The authentication extension of a reply: "mn-ha" (32); "fa-ha" (34) in its place, same
    # authenticator (reply-without-mn-ha-auth).
    reply_auth_type: str = "mn-ha"
    # Destination port of a reply: "source", the request's source port (3.8.3.1); 434 (reply-to-port-434).
    reply_port: str | int = "source"
    # Destination port of HA->MN tunnel data (RFC 3519): "endpoint", the registered UDP tunnel
    # endpoint's; 434 (tunnel-data-to-port-434).
    tunnel_data_port: str | int = "endpoint"

    # ---- robustness (fuzz targets; no conformance case: mipcheck.fuzz must find them)
    # How the home agent survives one specific malformed input. "survive": it is handled as the
    # settings above say. The other value is a planted bug; the core only reports it (Decision.failure
    # "crash" or "hang", or a state it keeps) and the server carries it out (mipcheck.ha.server).
    # A Registration Request whose first extension is an unrecognised non-skippable type (0-127),
    # authentic or not: "crash" ends the server process (crash-unknown-nonskippable-first).
    on_nonskippable_first: str = "survive"
    # A Registration Request with a 16-bit-Length extension (types 36, 38: RFC 3012 5, RFC 3115) whose
    # Length runs past the end of the message: "crash" (crash-long-length-overrun).
    on_long_length_overrun: str = "survive"
    # A Registration Request carrying a TNC extension (149) with Length 0: "hang", the server stops
    # reading; its process lives (hang-tnc-length-zero).
    on_tnc_length_zero: str = "survive"
    # A Registration Request with two (or more) MN-HA authentication extensions: "hang" (hang-two-mn-ha-auth).
    on_two_mn_ha_auth: str = "survive"
    # A malformed MIP Tunnel Data message (RFC 3519 3.3: shorter than its 4-octet header, or an inner
    # packet that is no valid IPv4 header): "deny-128-after" denies every later registration with 128
    # (wrong-reply-after-bad-tunnel-data).
    on_bad_tunnel_data: str = "survive"
    # A Registration Revocation (RFC 3543 3.1, type 7), well formed or not: "silent-after" drops every later
    # registration silently (silent-after-revocation).
    on_revocation: str = "survive"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            allowed = CHOICES.get(f.name, (True, False))
            # bool is an int: 1 and True must not stand for each other.
            if not any(value == a and type(value) is type(a) for a in allowed):
                shown = ", ".join(map(repr, allowed[:8])) + (", ..." if len(allowed) > 8 else "")
                raise ConfigError(f"behaviour.{f.name}", f"{value!r} is not one of {shown}")

    def changed(self) -> dict[str, Any]:
        """The fields that differ from the conformant default: field -> value."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != getattr(CONFORMANT, f.name)
        }


CONFORMANT = Behaviour()
