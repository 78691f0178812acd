"""Fault profiles: each makes the reference home agent break exactly one rule.

The conformance suite proves each of its cases can fail by running it against
the home agent with the matching fault. Every fault is a small, explicit
branch in :mod:`mipcheck.ha.core` (grep for its name); nothing else changes.
"""

from __future__ import annotations

from collections.abc import Iterable

from mipcheck.errors import ConfigError

# name -> the one rule it breaks (case ID first, then what the home agent does instead).
FAULTS: dict[str, str] = {
    "answer-untrusted": "HA-UNTRUSTED-DROP: answers a registration request from a source outside the trusted networks instead of dropping it (RFC 5265 4.3)",
    "trust-by-coa": "HA-SOURCE-NOT-COA: decides trust by the Care-of Address field instead of the IP source address (RFC 5265 4.3)",
    "omit-tnc": "HA-TNC-INCLUDED: never includes the Trusted Networks Configured extension (RFC 5265 4.3)",
    "bad-tnc-format": "HA-TNC-FORMAT: sends the TNC extension with Length 4 and Sub-Type 1 (RFC 5265 3.4: Length 2, Sub-Type 0)",
    "tnc-after-auth": "HA-TNC-AUTHENTICATED: puts the TNC extension after the MN-HA authentication extension, outside the authenticator (RFC 5944 3.5.1, RFC 5265 3.4)",
    "no-tnc-on-denial": "HA-TNC-ON-DENIAL: omits the TNC extension from denying replies to trusted sources (RFC 5265 4.3)",
    "trust-all-when-unconfigured": "HA-TRUST-NONE-DEFAULT: trusts every source when no trusted network is configured (RFC 5265 4.3: none by default)",
    "no-untrusted-log": "HA-UNTRUSTED-LOG: drops requests from untrusted sources without logging them (RFC 5265 4.3)",
    "no-udp-tunnel": "HA-NATT-UDP-TUNNEL: ignores the UDP Tunnel Request extension behind a NAT (RFC 3519, RFC 5265 4.3)",
    "reply-to-port-434": "HA-ANY-SOURCE-PORT: sends the reply to UDP port 434 instead of the request's source port (RFC 5944 3.8.3.1)",
    "answer-untrusted-renewal": "HA-UNTRUSTED-DROP: processes and answers a renewal (non-zero Lifetime) of a live binding from an untrusted source instead of dropping it (RFC 5265 4.3)",
    "answer-untrusted-dereg": "HA-UNTRUSTED-DROP: processes and answers a de-registration (Lifetime 0) from an untrusted source, removing the binding, instead of dropping it (RFC 5265 4.3)",
    "auth-before-trust": "HA-UNTRUSTED-DROP: authenticates before the source check, so an untrusted request that fails authentication (bad authenticator, unknown SPI) gets a 131 instead of silence (RFC 5265 4.3)",
    "untrusted-reply-to-coa": "HA-UNTRUSTED-DROP, HA-SOURCE-NOT-COA: processes untrusted requests and sends the reply to the Care-of Address (at the request's source port) instead of dropping them (RFC 5265 4.3)",
    "trust-registered-coa": "HA-SOURCE-NOT-COA: trusts a request whose Care-of Address is that of a live binding of the home address, whatever its IP source (RFC 5265 4.3)",
    "no-tnc-on-renewal": "HA-TNC-INCLUDED: omits the TNC extension when the request renews a live binding (RFC 5265 4.3)",
    "no-tnc-with-udp-tunnel": "HA-TNC-INCLUDED: omits the TNC extension from replies that carry a UDP Tunnel Reply (RFC 5265 4.3)",
    "extra-bad-tnc": "HA-TNC-FORMAT: adds a second TNC extension with Sub-Type 1 after the correct one (RFC 5265 3.4: Sub-Type 0)",
    "tunnel-data-to-port-434": "HA-NATT-UDP-TUNNEL: sends HA->MN tunnel data to UDP port 434 of the tunnel endpoint instead of the registered UDP tunnel endpoint (RFC 3519)",
    "accept-missing-auth": "MIP-AUTH-MISSING: accepts a request without an MN-HA authentication extension (RFC 5944 3.8.2.1)",
    "truncated-auth-compare": "MIP-AUTH-BAD: compares only the first 8 octets of the authenticator (RFC 5944 3.8.2.1)",
    "accept-unknown-spi": "MIP-AUTH-BAD: accepts a request whose SPI names no security association (RFC 5944 3.8.2.1)",
    "no-replay-check": "MIP-ID-STALE, MIP-REPLAY: skips the Identification check (RFC 5944 3.8.2.1, 5.7)",
    "bad-reply-identification": "MIP-ID-STALE, MIP-REPLAY: denies with 133 but copies the request's Identification unchanged (RFC 5944 5.7)",
    "ignore-ha-field": "MIP-HA-FIELD: accepts a Home Agent field that is not one of its addresses instead of denying with 136 (RFC 5944 3.8.2.1)",
    "reject-skippable": "MIP-SKIPPABLE-IGNORED: denies (134) a request carrying an unrecognised skippable extension (RFC 5944 1.9)",
    "accept-nonskippable": "MIP-NONSKIPPABLE: processes a request carrying an unrecognised non-skippable extension instead of discarding it (RFC 5944 1.9)",
    "dereg-nonzero-lifetime": "MIP-DEREG: answers a deregistration as a renewal, keeping the binding and granting a non-zero Lifetime (RFC 5944 3.8.2.2)",
    "grant-longer-lifetime": "MIP-LIFETIME: grants twice the requested Lifetime (RFC 5944 3.8.3.2: never more than requested)",
    "bad-reverse-tunnel-code": "MIP-REVERSE-TUNNEL: denies a request with the 'T' bit with code 128 instead of accepting it or using 137 (RFC 3024)",
    "mangle-reply-identification": "MIP-REPLY-ID: every reply carries an Identification whose low-order 32 bits are not the request's (RFC 5944 5.7)",
    "reply-without-mn-ha-auth": "MIP-REPLY-AUTH: replies carry a Foreign-Home authentication extension where the MN-HA one belongs (RFC 5944 3.5, 3.8.3.1)",
    "replay-first-only": "MIP-REPLAY: compares a timestamp only with the first Identification ever accepted for the home address, so replays of later registrations pass (RFC 5944 5.7)",
    "replay-dereg-unchecked": "MIP-REPLAY: skips the Identification check for de-registrations, so a replayed de-registration is accepted (RFC 5944 3.8.2.1, 5.7)",
    "drop-replays": "MIP-REPLAY, MIP-ID-STALE: drops a request whose Identification fails the check silently instead of replying 133 (RFC 5944 3.8.2.1 SHOULD)",
    "accept-future-identification": "MIP-ID-STALE: accepts timestamps ahead of its clock by any amount; only late ones are refused (RFC 5944 5.7.1)",
    "auth-compare-claimed-length": "MIP-AUTH-BAD: compares only as many authenticator octets as the extension's Length claims, so a shortened or empty authenticator passes (RFC 5944 3.8.2.1)",
    "ha-field-copied-in-136": "MIP-HA-FIELD: a code 136 reply copies the request's wrong Home Agent field instead of carrying the home agent's own address (RFC 5944 3.8.3.1)",
    "nonskippable-after-auth-ignored": "MIP-NONSKIPPABLE: an unrecognised non-skippable extension after the authenticator is ignored instead of discarding the message (RFC 5944 1.9)",
    "lifetime-keeps-longest": "MIP-LIFETIME: a renewal is granted the longer of the requested and the binding's current Lifetime (RFC 5944 3.8.3.2)",
}

# name -> the conformance-suite case IDs that must fail under it.
FAULT_CASES: dict[str, tuple[str, ...]] = {
    name: tuple(c.strip() for c in rule.split(":", 1)[0].split(",")) for name, rule in FAULTS.items()
}

# Behaviours that are conformant but trip a naive case: the named case(s) must PASS under them
# (tests/test_suite_ha_trust_depth.py). Accepted by ``--fault`` like FAULTS; not in FAULT_CASES.
PASSING_FAULTS: dict[str, str] = {
    "log-untrusted-once": "HA-UNTRUSTED-LOG: logs a dropped untrusted request only the first time its source is seen (legitimate deduplication; RFC 5265 4.3 SHOULD log)",
}


def check_faults(names: Iterable[str], *, key: str = "--fault") -> frozenset[str]:
    """Validate fault names; an unknown one is a ConfigError listing the known ones."""
    out = set()
    for name in names:
        if name not in FAULTS and name not in PASSING_FAULTS:
            raise ConfigError(key, f"unknown fault {name!r}; known faults: {', '.join(sorted(FAULTS))}")
        out.add(name)
    return frozenset(out)
