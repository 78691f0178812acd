"""The home-agent suite (``mipcheck run --suite ha``): the tester plays the mobile node.

Case IDs are public interface (reports, CI filters, the requirement
catalogue). ``FAULTS`` maps each case to the built-in home agent's fault
profile(s) under which it must fail (derived from ``mipcheck.ha.faults.TABLE``), or warn for SHOULD-level cases: the
proof that the case can fail at all (``tests/test_suite_ha_faults.py``).
"""

from __future__ import annotations

from mipcheck.engine.runner import Case
from mipcheck.ha.faults import FAULTS as HA_FAULTS

from . import cases_base as base
from . import cases_rfc5265 as trust
from .preflight import preflight as PREFLIGHT  # noqa: N812 (a suite's hook, named like CASES)

SUITE = "ha"


def _faults_by_case() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for fault in HA_FAULTS.values():
        for case_id in fault.cases:
            out.setdefault(case_id, []).append(fault.name)
    return {case_id: tuple(names) for case_id, names in out.items()}


# id -> faults of mipcheck.ha.faults.FAULTS that must make it fail (or warn): Fault.cases inverted.
FAULTS: dict[str, tuple[str, ...]] = _faults_by_case()

# (case, fault) pairs where the fault is a SHOULD deviation inside a MUST case: the case warns.
# RFC 5944 3.8.2.1: the home agent MUST reject and SHOULD reply 133; dropping silently rejects.
WARN_UNDER: frozenset[tuple[str, str]] = frozenset({("MIP-ID-STALE", "drop-replays"), ("MIP-REPLAY", "drop-replays")})
# (case, fault) pairs where a SHOULD case fails: once a device answers with a UDP Tunnel
# Reply, RFC 3519's MUSTs bind it (HA-NATT-UDP-TUNNEL grades its later checks MUST).
FAIL_UNDER: frozenset[tuple[str, str]] = frozenset({("HA-NATT-UDP-TUNNEL", "tunnel-data-to-port-434")})


def _case(id: str, title: str, level: str, requirement: str, run, **kw) -> Case:
    return Case(id=id, title=title, level=level, requirement=requirement, run=run, faults=FAULTS[id], **kw)


_I_HA = {"applicable": trust.needs_trusted_networks}

CASES: tuple[Case, ...] = (
    _case(
        "HA-UNTRUSTED-DROP",
        "A valid request from an untrusted source gets no reply at all",
        "MUST",
        "RFC 5265 4.3",
        trust.untrusted_drop,
        **_I_HA,
    ),
    _case(
        "HA-SOURCE-NOT-COA",
        "Trust follows the IP source, not a trusted Care-of Address",
        "MUST",
        "RFC 5265 4.3",
        trust.source_not_coa,
        **_I_HA,
    ),
    _case(
        "HA-TNC-INCLUDED",
        "An accepting reply to a trusted source carries the TNC extension",
        "MUST",
        "RFC 5265 4.3",
        trust.tnc_included,
        **_I_HA,
    ),
    _case(
        "HA-TNC-FORMAT",
        "TNC is Type 149, Length 2, Sub-Type 0, Reserved 0",
        "MUST",
        "RFC 5265 3.4",
        trust.tnc_format,
        **_I_HA,
    ),
    _case(
        "HA-TNC-AUTHENTICATED",
        "TNC precedes the MN-HA authentication extension, whose authenticator verifies",
        "MUST",
        "RFC 5265 3.4, 6.1; RFC 5944 3.5",
        trust.tnc_authenticated,
        **_I_HA,
    ),
    _case(
        "HA-TNC-ON-DENIAL",
        "A denial sent to a trusted source carries TNC too (4.3 read literally)",
        "SHOULD",
        "RFC 5265 4.3",
        trust.tnc_on_denial,
        **_I_HA,
    ),
    _case(
        "HA-TRUST-NONE-DEFAULT",
        "With no trusted subnet configured nothing is answered",
        "MUST",
        "RFC 5265 4.3",
        trust.trust_none_default,
        applicable=trust.needs_unconfigured_start,
        exclusive=trust.unconfigured_exclusive,
    ),
    _case(
        "HA-UNTRUSTED-LOG",
        "Requests dropped as untrusted are logged",
        "SHOULD",
        "RFC 5265 4.3",
        trust.untrusted_log,
        **_I_HA,
    ),
    _case(
        "HA-NATT-UDP-TUNNEL",
        "A UDP Tunnel Request behind a NAT gets a UDP Tunnel Reply; tunnel data flows both ways",
        "SHOULD",
        "RFC 5265 4.3; RFC 3519 3.1-3.3",
        trust.natt_udp_tunnel,
        applicable=trust.needs_nat_traversal,
    ),
    _case(
        "HA-ANY-SOURCE-PORT",
        "A request from any high source port is answered to that port",
        "MUST",
        "RFC 5265 4.2, 4.3; RFC 5944 3.8.3.1",
        trust.any_source_port,
    ),
    _case(
        "MIP-AUTH-MISSING",
        "A request without authenticator is rejected (MUST), with 131 (SHOULD)",
        "MUST",
        "RFC 5944 3.8.2.1",
        base.auth_missing,
    ),
    _case(
        "MIP-AUTH-BAD",
        "Every wrong, short, empty or zero authenticator and an unknown SPI are rejected (MUST), with 131 (SHOULD)",
        "MUST",
        "RFC 5944 3.8.2.1",
        base.auth_bad,
    ),
    _case(
        "MIP-ID-STALE",
        "Timestamps far behind or ahead of the device's clock are rejected (MUST), with 133 and the 5.7 reply "
        "Identification",
        "MUST",
        "RFC 5944 3.8.2.1, 5.7",
        base.id_stale,
    ),
    _case(
        "MIP-REPLAY",
        "Replays of later and earlier registrations and of a de-registration are rejected (MUST), with 133 (SHOULD)",
        "MUST",
        "RFC 5944 3.8.2.1, 5.7",
        base.replay,
    ),
    _case(
        "MIP-REPLY-ID",
        "Every reply copies the low-order 32 bits of the request's Identification",
        "MUST",
        "RFC 5944 5.7",
        base.reply_identification,
    ),
    _case(
        "MIP-REPLY-AUTH",
        "Replies to authenticated requests carry one valid MN-HA authenticator",
        "MUST",
        "RFC 5944 3.5.2, 3.8.3.1",
        base.reply_authenticator,
    ),
    _case(
        "MIP-HA-FIELD",
        "A Home Agent field that is not the device's address is denied with 136 naming the device",
        "MUST",
        "RFC 5944 3.8.2.1",
        base.ha_field,
    ),
    _case(
        "MIP-SKIPPABLE-IGNORED",
        "Unknown skippable extensions are ignored and the registration succeeds",
        "MUST",
        "RFC 5944 1.9",
        base.skippable_ignored,
    ),
    _case(
        "MIP-NONSKIPPABLE",
        "A request with an unknown non-skippable extension is silently discarded",
        "MUST",
        "RFC 5944 1.9",
        base.nonskippable,
    ),
    _case("MIP-DEREG", "Lifetime 0 deregisters: accepted with lifetime 0", "MUST", "RFC 5944 3.8.2.2", base.dereg),
    _case(
        "MIP-LIFETIME",
        "The granted lifetime never exceeds the requested one",
        "MUST",
        "RFC 5944 3.8.3.2",
        base.lifetime,
    ),
    _case(
        "MIP-REVERSE-TUNNEL", "The 'T' bit is accepted, or denied with 137", "MUST", "RFC 3024 4.3", base.reverse_tunnel
    ),
)

CASES_BY_ID: dict[str, Case] = {c.id: c for c in CASES}

__all__ = ["CASES", "CASES_BY_ID", "FAIL_UNDER", "FAULTS", "PREFLIGHT", "SUITE", "WARN_UNDER"]
