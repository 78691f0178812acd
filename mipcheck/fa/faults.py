"""Fault profiles of the reference foreign agent: each breaks exactly one rule.

A fault is a change of one setting of :class:`mipcheck.fa.behaviour.Behaviour`;
``TABLE`` is the one table of them, with the rule each breaks. A future FA
conformance suite proves its cases can fail by running them against the
foreign agent with the matching fault; tests/test_fa_faults.py shows each
fault changes what the agent does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from mipcheck.errors import ConfigError

from .behaviour import CONFORMANT, Behaviour


@dataclass(frozen=True)
class Fault:
    """One way to behave differently from the conformant default: a change of one Behaviour setting."""

    name: str
    rule: str  # what the foreign agent does instead, and where the rule it breaks is written
    changes: Mapping[str, Any] = field(default_factory=dict, hash=False)  # Behaviour field -> value

    def __post_init__(self) -> None:
        object.__setattr__(self, "changes", MappingProxyType(dict(self.changes)))
        if len(self.changes) != 1:
            raise ValueError(f"fault {self.name}: changes exactly one Behaviour setting")


TABLE: tuple[Fault, ...] = (
    Fault(
        "relay-without-checks",
        changes={"request_checks": "none"},
        rule="relays every Registration Request with a fixed part, without the validity checks and denials of "
        "RFC 5944 3.7.2 (lifetime 69, encapsulation 72, reverse tunnel 74/75, care-of address 77, ...)",
    ),
    Fault(
        "wrong-coa-in-advertisement",
        changes={"advertised_coa": "off-by-one"},
        rule="advertises care-of addresses that are not its own (last octet plus one) in the Mobility Agent "
        "Advertisement extension (RFC 5944 2.1.1, 3.7.1)",
    ),
    Fault(
        "sequence-wraps-to-zero",
        changes={"sequence_wrap": 0},
        rule="follows advertisement Sequence Number 0xffff with 0 instead of 256, which mobile nodes read as a "
        "reboot (RFC 5944 2.3.2)",
    ),
    Fault(
        "advertisement-ttl-64",
        changes={"advertisement_ttl": 64},
        rule="sends agent advertisements with IP TTL 64 (RFC 5944 2.1: TTL 1)",
    ),
    Fault(
        "clamp-relayed-lifetime",
        changes={"lifetime_over_max": "clamp-in-relay"},
        rule="rewrites a too-long Lifetime in the relayed request instead of denying it with 69, breaking the MN-HA "
        "authenticator (RFC 5944 3.7.2.2, 3.7.2.3)",
    ),
    Fault(
        "lifetime-copied-in-69",
        changes={"lifetime_in_69": "copied"},
        rule="denies a too-long Lifetime with 69 but copies the requested Lifetime into the reply instead of the "
        "longest it accepts (RFC 5944 3.7.2.3)",
    ),
    Fault(
        "relay-mn-fa-extensions",
        changes={"fa_extensions": "relay"},
        rule="relays the extensions after the MN-HA authentication extension (MN-FA authentication) instead of "
        "removing them (RFC 5944 3.7.2.2, 3.7.3.2)",
    ),
    Fault(
        "match-full-identification",
        changes={"reply_match": "all-64-bits"},
        rule="matches replies to pending requests on all 64 Identification bits, dropping a nonce-based home "
        "agent's replies (RFC 5944 3.7.3.1: the low-order 32 bits)",
    ),
    Fault(
        "no-visitor-expiry",
        changes={"visitor_expiry": False},
        rule="keeps visitor list entries after their registration Lifetime ran out (RFC 5944 3.7.1)",
    ),
    Fault(
        "no-reverse-tunnel",
        changes={"reverse_tunnel": "native"},
        rule="accepts 'T' registrations but forwards the visitor's packets natively instead of through the reverse "
        "tunnel to its home agent (RFC 3024)",
    ),
)

FAULTS: Mapping[str, Fault] = MappingProxyType({f.name: f for f in TABLE})


def check_faults(names: Iterable[str]) -> frozenset[str]:
    """The fault names, or a ConfigError naming the unknown one (the ``--fault`` option)."""
    chosen = frozenset(names)
    for name in sorted(chosen):
        if name not in FAULTS:
            raise ConfigError("--fault", f"unknown fault {name!r}; `mipcheck fa faults` lists them")
    return chosen


def behaviour_for(names: Iterable[str]) -> Behaviour:
    """The conformant behaviour with each named fault's change applied; two faults may not change one setting."""
    changes: dict[str, Any] = {}
    for name in sorted(check_faults(names)):
        for key, value in FAULTS[name].changes.items():
            if key in changes:
                raise ConfigError("--fault", f"{name} and another fault both change {key}")
            changes[key] = value
    return dataclasses.replace(CONFORMANT, **changes)
