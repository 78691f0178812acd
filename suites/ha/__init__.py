"""The home-agent suite (``mipcheck run --suite ha``): the tester plays the mobile node.

Case IDs are public interface (reports, CI filters, the requirement
catalogue). ``FAULTS`` maps each case to the built-in home agent's fault
profile(s) under which it must fail, or warn for SHOULD-level cases: the
proof that the case can fail at all (``tests/test_suite_ha_faults.py``).
"""

from __future__ import annotations

from mipcheck.engine.runner import Case

from . import cases_base as base
from . import cases_rfc5265 as trust

SUITE = "ha"

# id -> faults of mipcheck.ha.faults.FAULTS that must make it fail (or warn).
FAULTS: dict[str, tuple[str, ...]] = {
    "HA-UNTRUSTED-DROP": ("answer-untrusted",),
    "HA-SOURCE-NOT-COA": ("trust-by-coa",),
    "HA-TNC-INCLUDED": ("omit-tnc",),
    "HA-TNC-FORMAT": ("bad-tnc-format",),
    "HA-TNC-AUTHENTICATED": ("tnc-after-auth",),
    "HA-TNC-ON-DENIAL": ("no-tnc-on-denial",),
    "HA-TRUST-NONE-DEFAULT": ("trust-all-when-unconfigured",),
    "HA-UNTRUSTED-LOG": ("no-untrusted-log",),
    "HA-NATT-UDP-TUNNEL": ("no-udp-tunnel",),
    "HA-ANY-SOURCE-PORT": ("reply-to-port-434",),
    "MIP-AUTH-MISSING": ("accept-missing-auth",),
    "MIP-AUTH-BAD": ("truncated-auth-compare", "accept-unknown-spi"),
    "MIP-ID-STALE": ("no-replay-check", "bad-reply-identification"),
    "MIP-REPLAY": ("no-replay-check", "bad-reply-identification"),
    "MIP-HA-FIELD": ("ignore-ha-field",),
    "MIP-SKIPPABLE-IGNORED": ("reject-skippable",),
    "MIP-NONSKIPPABLE": ("accept-nonskippable",),
    "MIP-DEREG": ("dereg-nonzero-lifetime",),
    "MIP-LIFETIME": ("grant-longer-lifetime",),
    "MIP-REVERSE-TUNNEL": ("bad-reverse-tunnel-code",),
}


def _case(id: str, title: str, level: str, requirement: str, run, **kw) -> Case:
    return Case(id=id, title=title, level=level, requirement=requirement, run=run, faults=FAULTS[id], **kw)


_I_HA = {"applicable": trust.needs_trusted_networks}

CASES: tuple[Case, ...] = (
    _case("HA-UNTRUSTED-DROP", "A valid request from an untrusted source gets no reply at all", "MUST", "RFC 5265 4.3", trust.untrusted_drop, **_I_HA),
    _case("HA-SOURCE-NOT-COA", "Trust follows the IP source, not a trusted Care-of Address", "MUST", "RFC 5265 4.3", trust.source_not_coa, **_I_HA),
    _case("HA-TNC-INCLUDED", "An accepting reply to a trusted source carries the TNC extension", "MUST", "RFC 5265 4.3", trust.tnc_included, **_I_HA),
    _case("HA-TNC-FORMAT", "TNC is Type 149, Length 2, Sub-Type 0, Reserved 0", "MUST", "RFC 5265 3.4", trust.tnc_format, **_I_HA),
    _case(
        "HA-TNC-AUTHENTICATED",
        "TNC precedes the MN-HA authentication extension, whose authenticator verifies",
        "MUST",
        "RFC 5265 3.4, 6.1; RFC 5944 3.5",
        trust.tnc_authenticated,
        **_I_HA,
    ),
    _case("HA-TNC-ON-DENIAL", "A denial sent to a trusted source carries TNC too (4.3 read literally)", "SHOULD", "RFC 5265 4.3", trust.tnc_on_denial, **_I_HA),
    _case(
        "HA-TRUST-NONE-DEFAULT",
        "With no trusted subnet configured nothing is answered",
        "MUST",
        "RFC 5265 4.3",
        trust.trust_none_default,
        applicable=trust.needs_unconfigured_start,
        exclusive=trust.unconfigured_exclusive,
    ),
    _case("HA-UNTRUSTED-LOG", "Requests dropped as untrusted are logged", "SHOULD", "RFC 5265 4.3", trust.untrusted_log, **_I_HA),
    _case(
        "HA-NATT-UDP-TUNNEL",
        "A UDP Tunnel Request behind a NAT gets a UDP Tunnel Reply; tunnel data flows both ways",
        "SHOULD",
        "RFC 5265 4.3; RFC 3519 3.1-3.3",
        trust.natt_udp_tunnel,
        applicable=trust.needs_nat_traversal,
    ),
    _case("HA-ANY-SOURCE-PORT", "A request from any high source port is answered to that port", "MUST", "RFC 5265 4.2, 4.3; RFC 5944 3.8.3.1", trust.any_source_port),
    _case("MIP-AUTH-MISSING", "A request without authenticator is denied with 131", "MUST", "RFC 5944 3.8.2.1", base.auth_missing),
    _case("MIP-AUTH-BAD", "A wrong authenticator (first, middle, last octet) or unknown SPI is denied with 131", "MUST", "RFC 5944 3.8.2.1", base.auth_bad),
    _case("MIP-ID-STALE", "A stale timestamp is denied with 133 and the prescribed reply identification", "MUST", "RFC 5944 3.8.2.1, 5.7", base.id_stale),
    _case("MIP-REPLAY", "A replayed identification is denied with 133 and the prescribed reply identification", "MUST", "RFC 5944 3.8.2.1, 5.7", base.replay),
    _case("MIP-HA-FIELD", "A Home Agent field that is not the device's address is denied with 136", "MUST", "RFC 5944 3.8.2.1", base.ha_field),
    _case("MIP-SKIPPABLE-IGNORED", "Unknown skippable extensions are ignored and the registration succeeds", "MUST", "RFC 5944 1.9", base.skippable_ignored),
    _case("MIP-NONSKIPPABLE", "A request with an unknown non-skippable extension is silently discarded", "MUST", "RFC 5944 1.9", base.nonskippable),
    _case("MIP-DEREG", "Lifetime 0 deregisters: accepted with lifetime 0", "MUST", "RFC 5944 3.8.2.2", base.dereg),
    _case("MIP-LIFETIME", "The granted lifetime never exceeds the requested one", "MUST", "RFC 5944 3.8.3.2", base.lifetime),
    _case("MIP-REVERSE-TUNNEL", "The 'T' bit is accepted, or denied with 137", "MUST", "RFC 3024 4.3", base.reverse_tunnel),
)

CASES_BY_ID: dict[str, Case] = {c.id: c for c in CASES}

__all__ = ["CASES", "CASES_BY_ID", "FAULTS", "SUITE"]
