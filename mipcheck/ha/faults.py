"""Fault profiles: each makes the reference home agent break exactly one rule.

The conformance suite proves each of its cases can fail by running it against
the home agent with the matching fault. A fault is a change of one setting of
the home agent's behaviour record (:class:`mipcheck.ha.behaviour.Behaviour`);
the core reads that record and nothing else. ``TABLE`` below is the one table:
what each fault changes, the rule it breaks, and the suite cases that must
fail (or warn) under it. ``FAULT_CASES``, ``PASSING_FAULTS`` and the HA suite's
case -> faults map (``mipcheck.suites.ha.FAULTS``) are derived from it.

Three kinds of entries: faults that break a conformance rule (``kind``
"conformance", each with the suite cases that catch it), conformant variants
(``conformant=True``, with the cases they must still pass), and robustness
faults (``kind`` "robustness"): a crash, hang or lasting misbehaviour after
one specific malformed input, which no conformance case sends; a fuzz campaign
(``mipcheck fuzz run --fault NAME``) must find each one
(tests/test_fuzz_robustness_faults.py). ``ROBUSTNESS`` lists them; ``FAULTS``,
``FAULT_CASES`` and the suite leave them out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from mipcheck.errors import ConfigError

from .behaviour import CONFORMANT, Behaviour

CONFORMANCE, ROBUSTNESS_KIND = "conformance", "robustness"
# What a fuzz campaign reports for a robustness fault (the pinned finding kinds of `mipcheck fuzz`).
FINDING_KINDS = ("crash", "hang", "no-reply", "wrong-reply")


@dataclass(frozen=True)
class Fault:
    """One way to behave differently from the conformant default: a change of one Behaviour setting."""

    name: str
    rule: str  # what the home agent does instead, and where the rule it breaks is written
    cases: tuple[str, ...] = ()  # HA suite case ids that must fail (or warn) under it
    changes: Mapping[str, Any] = field(default_factory=dict, hash=False)  # Behaviour field -> value
    conformant: bool = False  # a legitimate variant real devices have: every case must still pass
    passes: tuple[str, ...] = ()  # conformant variants: the case(s) it could trip if naively written
    kind: str = CONFORMANCE  # "robustness": a fuzz target, no conformance case (cases=() allowed only here)
    trigger: str = ""  # robustness: the input that sets it off
    finding: str = ""  # robustness: what a campaign against the lab HA reports (FINDING_KINDS)

    def __post_init__(self) -> None:
        object.__setattr__(self, "changes", MappingProxyType(dict(self.changes)))
        if self.kind == ROBUSTNESS_KIND:
            if self.cases or self.passes or self.conformant or not self.trigger or self.finding not in FINDING_KINDS:
                raise ValueError(f"robustness fault {self.name}: no cases, a trigger and a finding kind")
        elif self.kind != CONFORMANCE or self.trigger or self.finding:
            raise ValueError(f"fault {self.name}: kind {self.kind!r}; trigger and finding are for robustness faults")
        elif not (self.cases or (self.conformant and self.passes)):
            raise ValueError(f"fault {self.name}: a fault names the suite cases that catch it")

    @property
    def robustness(self) -> bool:
        return self.kind == ROBUSTNESS_KIND

    @property
    def summary(self) -> str:
        """The one-line description (``mipcheck ha faults``): case ids, then the rule; for a robustness fault the
        finding a campaign reports and its trigger, then the rule."""
        if self.robustness:
            return f"{self.finding} after {self.trigger}: {self.rule}"
        return f"{', '.join(self.cases or self.passes)}: {self.rule}"


# Every fault profile, conformant variant and robustness fault, in the order `mipcheck ha faults` lists them.
TABLE: tuple[Fault, ...] = (
    Fault(
        "answer-untrusted",
        cases=("HA-UNTRUSTED-DROP",),
        changes={"untrusted_requests": "answer"},
        rule="answers a registration request from a source outside the trusted networks instead of dropping it (RFC "
        "5265 4.3)",
    ),
    Fault(
        "trust-by-coa",
        cases=("HA-SOURCE-NOT-COA",),
        changes={"trust_by": "care-of-address"},
        rule="decides trust by the Care-of Address field instead of the IP source address (RFC 5265 4.3)",
    ),
    Fault(
        "omit-tnc",
        cases=("HA-TNC-INCLUDED",),
        changes={"tnc_position": "omitted"},
        rule="never includes the Trusted Networks Configured extension (RFC 5265 4.3)",
    ),
    Fault(
        "bad-tnc-format",
        cases=("HA-TNC-FORMAT",),
        changes={"tnc_format": "length-4-subtype-1"},
        rule="sends the TNC extension with Length 4 and Sub-Type 1 (RFC 5265 3.4: Length 2, Sub-Type 0)",
    ),
    Fault(
        "tnc-after-auth",
        cases=("HA-TNC-AUTHENTICATED",),
        changes={"tnc_position": "after-auth"},
        rule="puts the TNC extension after the MN-HA authentication extension, outside the authenticator (RFC 5944 "
        "3.5.1, RFC 5265 3.4)",
    ),
    Fault(
        "no-tnc-on-denial",
        cases=("HA-TNC-ON-DENIAL",),
        changes={"tnc_on_denial": False},
        rule="omits the TNC extension from denying replies to trusted sources (RFC 5265 4.3)",
    ),
    Fault(
        "trust-all-when-unconfigured",
        cases=("HA-TRUST-NONE-DEFAULT",),
        changes={"trust_when_unconfigured": "all"},
        rule="trusts every source when no trusted network is configured (RFC 5265 4.3: none by default)",
    ),
    Fault(
        "no-untrusted-log",
        cases=("HA-UNTRUSTED-LOG",),
        changes={"log_untrusted": "never"},
        rule="drops requests from untrusted sources without logging them (RFC 5265 4.3)",
    ),
    Fault(
        "no-udp-tunnel",
        cases=("HA-NATT-UDP-TUNNEL",),
        changes={"honour_udp_tunnel_request": False},
        rule="ignores the UDP Tunnel Request extension behind a NAT (RFC 3519, RFC 5265 4.3)",
    ),
    Fault(
        "reply-to-port-434",
        cases=("HA-ANY-SOURCE-PORT",),
        changes={"reply_port": 434},
        rule="sends the reply to UDP port 434 instead of the request's source port (RFC 5944 3.8.3.1)",
    ),
    Fault(
        "answer-untrusted-renewal",
        cases=("HA-UNTRUSTED-DROP",),
        changes={"untrusted_requests": "answer-renewals"},
        rule="processes and answers a renewal (non-zero Lifetime) of a live binding from an untrusted source instead "
        "of dropping it (RFC 5265 4.3)",
    ),
    Fault(
        "answer-untrusted-dereg",
        cases=("HA-UNTRUSTED-DROP",),
        changes={"untrusted_requests": "answer-deregistrations"},
        rule="processes and answers a de-registration (Lifetime 0) from an untrusted source, removing the binding, "
        "instead of dropping it (RFC 5265 4.3)",
    ),
    Fault(
        "auth-before-trust",
        cases=("HA-UNTRUSTED-DROP",),
        changes={"untrusted_requests": "drop-after-auth"},
        rule="authenticates before the source check, so an untrusted request that fails authentication (bad "
        "authenticator, unknown SPI) gets a 131 instead of silence (RFC 5265 4.3)",
    ),
    Fault(
        "untrusted-reply-to-coa",
        cases=("HA-UNTRUSTED-DROP", "HA-SOURCE-NOT-COA"),
        changes={"untrusted_requests": "answer-at-care-of-address"},
        rule="processes untrusted requests and sends the reply to the Care-of Address (at the request's source port) "
        "instead of dropping them (RFC 5265 4.3)",
    ),
    Fault(
        "trust-registered-coa",
        cases=("HA-SOURCE-NOT-COA",),
        changes={"untrusted_requests": "answer-registered-coa"},
        rule="trusts a request whose Care-of Address is that of a live binding of the home address, whatever its IP "
        "source (RFC 5265 4.3)",
    ),
    Fault(
        "no-tnc-on-renewal",
        cases=("HA-TNC-INCLUDED",),
        changes={"tnc_on_accept": "except-renewals"},
        rule="omits the TNC extension when the request renews a live binding (RFC 5265 4.3)",
    ),
    Fault(
        "no-tnc-with-udp-tunnel",
        cases=("HA-TNC-INCLUDED",),
        changes={"tnc_on_accept": "except-udp-tunnel"},
        rule="omits the TNC extension from replies that carry a UDP Tunnel Reply (RFC 5265 4.3)",
    ),
    Fault(
        "extra-bad-tnc",
        cases=("HA-TNC-FORMAT",),
        changes={"tnc_format": "extra-subtype-1"},
        rule="adds a second TNC extension with Sub-Type 1 after the correct one (RFC 5265 3.4: Sub-Type 0)",
    ),
    Fault(
        "tunnel-data-to-port-434",
        cases=("HA-NATT-UDP-TUNNEL",),
        changes={"tunnel_data_port": 434},
        rule="sends HA->MN tunnel data to UDP port 434 of the tunnel endpoint instead of the registered UDP tunnel "
        "endpoint (RFC 3519)",
    ),
    Fault(
        "accept-missing-auth",
        cases=("MIP-AUTH-MISSING",),
        changes={"require_authentication": False},
        rule="accepts a request without an MN-HA authentication extension (RFC 5944 3.8.2.1)",
    ),
    Fault(
        "truncated-auth-compare",
        cases=("MIP-AUTH-BAD",),
        changes={"auth_compare_octets": 8},
        rule="compares only the first 8 octets of the authenticator (RFC 5944 3.8.2.1)",
    ),
    Fault(
        "accept-unknown-spi",
        cases=("MIP-AUTH-BAD",),
        changes={"accept_unknown_spi": True},
        rule="accepts a request whose SPI names no security association (RFC 5944 3.8.2.1)",
    ),
    Fault(
        "no-replay-check",
        cases=("MIP-ID-STALE", "MIP-REPLAY"),
        changes={"replay_check": "none"},
        rule="skips the Identification check (RFC 5944 3.8.2.1, 5.7)",
    ),
    Fault(
        "bad-reply-identification",
        cases=("MIP-ID-STALE", "MIP-REPLAY"),
        changes={"reply_identification": "copy-request"},
        rule="denies with 133 but copies the request's Identification unchanged (RFC 5944 5.7)",
    ),
    Fault(
        "ignore-ha-field",
        cases=("MIP-HA-FIELD",),
        changes={"ha_field_check": False},
        rule="accepts a Home Agent field that is not one of its addresses instead of denying with 136 (RFC 5944 "
        "3.8.2.1)",
    ),
    Fault(
        "reject-skippable",
        cases=("MIP-SKIPPABLE-IGNORED",),
        changes={"skippable": "deny-134"},
        rule="denies (134) a request carrying an unrecognised skippable extension (RFC 5944 1.9)",
    ),
    Fault(
        "accept-nonskippable",
        cases=("MIP-NONSKIPPABLE",),
        changes={"nonskippable": "accept"},
        rule="processes a request carrying an unrecognised non-skippable extension instead of discarding it (RFC 5944 "
        "1.9)",
    ),
    Fault(
        "dereg-nonzero-lifetime",
        cases=("MIP-DEREG",),
        changes={"dereg_grants_lifetime": True},
        rule="answers a deregistration as a renewal, keeping the binding and granting a non-zero Lifetime (RFC 5944 "
        "3.8.2.2)",
    ),
    Fault(
        "grant-longer-lifetime",
        cases=("MIP-LIFETIME",),
        changes={"lifetime_grant": "double"},
        rule="grants twice the requested Lifetime (RFC 5944 3.8.3.2: never more than requested)",
    ),
    Fault(
        "bad-reverse-tunnel-code",
        cases=("MIP-REVERSE-TUNNEL",),
        changes={"reverse_tunnel_denial_code": 128},
        rule="denies a request with the 'T' bit with code 128 instead of accepting it or using 137 (RFC 3024)",
    ),
    Fault(
        "mangle-reply-identification",
        cases=("MIP-REPLY-ID",),
        changes={"reply_identification": "mangle-low-bits"},
        rule="every reply carries an Identification whose low-order 32 bits are not the request's (RFC 5944 5.7)",
    ),
    Fault(
        "reply-without-mn-ha-auth",
        cases=("MIP-REPLY-AUTH",),
        changes={"reply_auth_type": "fa-ha"},
        rule="replies carry a Foreign-Home authentication extension where the MN-HA one belongs (RFC 5944 3.5, "
        "3.8.3.1)",
    ),
    Fault(
        "replay-first-only",
        cases=("MIP-REPLAY",),
        changes={"replay_check": "first-only"},
        rule="compares a timestamp only with the first Identification ever accepted for the home address, so replays "
        "of later registrations pass (RFC 5944 5.7)",
    ),
    Fault(
        "replay-dereg-unchecked",
        cases=("MIP-REPLAY",),
        changes={"replay_check": "registrations-only"},
        rule="skips the Identification check for de-registrations, so a replayed de-registration is accepted (RFC 5944 "
        "3.8.2.1, 5.7)",
    ),
    Fault(
        "drop-replays",
        cases=("MIP-REPLAY", "MIP-ID-STALE"),
        changes={"replay_denial": "drop"},
        rule="drops a request whose Identification fails the check silently instead of replying 133 (RFC 5944 3.8.2.1 "
        "SHOULD)",
    ),
    Fault(
        "accept-future-identification",
        cases=("MIP-ID-STALE",),
        changes={"reject_future_timestamps": False},
        rule="accepts timestamps ahead of its clock by any amount; only late ones are refused (RFC 5944 5.7.1)",
    ),
    Fault(
        "auth-compare-claimed-length",
        cases=("MIP-AUTH-BAD",),
        changes={"auth_compare_claimed_length": True},
        rule="compares only as many authenticator octets as the extension's Length claims, so a shortened or empty "
        "authenticator passes (RFC 5944 3.8.2.1)",
    ),
    Fault(
        "ha-field-copied-in-136",
        cases=("MIP-HA-FIELD",),
        changes={"ha_field_in_136": "copied"},
        rule="a code 136 reply copies the request's wrong Home Agent field instead of carrying the home agent's own "
        "address (RFC 5944 3.8.3.1)",
    ),
    Fault(
        "nonskippable-after-auth-ignored",
        cases=("MIP-NONSKIPPABLE",),
        changes={"nonskippable": "ignore-after-auth"},
        rule="an unrecognised non-skippable extension after the authenticator is ignored instead of discarding the "
        "message (RFC 5944 1.9)",
    ),
    Fault(
        "lifetime-keeps-longest",
        cases=("MIP-LIFETIME",),
        changes={"lifetime_grant": "keep-longest"},
        rule="a renewal is granted the longer of the requested and the binding's current Lifetime (RFC 5944 3.8.3.2)",
    ),
    Fault(
        "log-untrusted-once",
        passes=("HA-UNTRUSTED-LOG",),
        changes={"log_untrusted": "once-per-source"},
        conformant=True,
        rule="logs a dropped untrusted request only the first time its source is seen (legitimate deduplication; RFC "
        "5265 4.3 SHOULD log)",
    ),
    # ---- robustness: fuzz targets, no conformance case (`mipcheck fuzz run --fault NAME` must find each)
    Fault(
        "crash-unknown-nonskippable-first",
        kind=ROBUSTNESS_KIND,
        finding="crash",
        changes={"on_nonskippable_first": "crash"},
        trigger="a Registration Request whose first extension is an unrecognised non-skippable type (0-127), "
        "authentic or not",
        rule="the server process exits (status 70) instead of discarding the request silently (RFC 5944 1.9)",
    ),
    Fault(
        "crash-long-length-overrun",
        kind=ROBUSTNESS_KIND,
        finding="crash",
        changes={"on_long_length_overrun": "crash"},
        trigger="a Registration Request with a 16-bit-Length extension (type 36 or 38) whose Length runs past the "
        "end of the message",
        rule="the server process exits (status 70) instead of denying the poorly formed request with 134 (RFC 3012 "
        "5, RFC 3115)",
    ),
    Fault(
        "hang-tnc-length-zero",
        kind=ROBUSTNESS_KIND,
        finding="hang",
        changes={"on_tnc_length_zero": "hang"},
        trigger="a Registration Request carrying a TNC extension (149) with Length 0",
        rule="the server stops reading; nothing more is answered while the process lives (RFC 5265 3.4)",
    ),
    Fault(
        "hang-two-mn-ha-auth",
        kind=ROBUSTNESS_KIND,
        finding="hang",
        changes={"on_two_mn_ha_auth": "hang"},
        trigger="a Registration Request with two MN-HA authentication extensions",
        rule="the server stops reading instead of denying the request with 131 (RFC 5944 3.8.2.1)",
    ),
    Fault(
        "wrong-reply-after-bad-tunnel-data",
        kind=ROBUSTNESS_KIND,
        finding="wrong-reply",
        changes={"on_bad_tunnel_data": "deny-128-after"},
        trigger="a malformed MIP Tunnel Data message (type 4: shorter than its header, or an inner packet that is "
        "no valid IPv4 header)",
        rule="from then on every registration, valid or not, is denied with code 128 instead of dropping only that "
        "message (RFC 3519 3.3)",
    ),
    Fault(
        "silent-after-revocation",
        kind=ROBUSTNESS_KIND,
        finding="hang",
        changes={"on_revocation": "silent-after"},
        trigger="a Registration Revocation message (type 7, RFC 3543), well formed or not",
        rule="from then on every registration is dropped silently while the process lives (RFC 3543 3.1: a "
        "revocation ends at most the bindings it names)",
    ),
)

ALL_FAULTS: dict[str, Fault] = {f.name: f for f in TABLE}
# name -> the rule it breaks, case ids first (the faults that break a rule; conformant variants and
# robustness faults apart).
FAULTS: dict[str, Fault] = {f.name: f for f in TABLE if not f.conformant and not f.robustness}
# Robustness faults: fuzz targets with no conformance case. Accepted by ``--fault`` (``mipcheck ha serve``,
# ``mipcheck fuzz run``); not in FAULT_CASES nor in the suite's case -> faults map.
ROBUSTNESS: dict[str, Fault] = {f.name: f for f in TABLE if f.robustness}
# name -> the conformance-suite case IDs that must fail under it.
FAULT_CASES: dict[str, tuple[str, ...]] = {name: f.cases for name, f in FAULTS.items()}
# Behaviours that are conformant but trip a naive case: the named case(s) must PASS under them
# (tests/test_suite_ha_trust_depth.py). Accepted by ``--fault`` like FAULTS; not in FAULT_CASES.
PASSING_FAULTS: dict[str, str] = {f.name: f.summary for f in TABLE if f.conformant}


def check_faults(names: Iterable[str], *, key: str = "--fault") -> frozenset[str]:
    """Validate fault names; an unknown one is a ConfigError listing the known ones."""
    out = set()
    for name in names:
        if name not in ALL_FAULTS:
            known = ", ".join(sorted(FAULTS) + sorted(ROBUSTNESS))
            raise ConfigError(key, f"unknown fault {name!r}; known faults: {known}")
        out.add(name)
    return frozenset(out)


def behaviour_for(names: Iterable[str], *, key: str = "--fault") -> Behaviour:
    """The conformant behaviour with the named faults applied; two faults setting one field is an error."""
    changes: dict[str, Any] = {}
    by: dict[str, str] = {}
    for name in sorted(check_faults(names, key=key)):
        for setting, value in ALL_FAULTS[name].changes.items():
            if setting in by:
                raise ConfigError(
                    key, f"faults {by[setting]!r} and {name!r} both set behaviour.{setting}; use one of them"
                )
            by[setting] = name
            changes[setting] = value
    return dataclasses.replace(CONFORMANT, **changes) if changes else CONFORMANT
