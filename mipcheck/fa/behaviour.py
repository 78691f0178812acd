"""What the reference foreign agent does where implementations differ: one frozen record.

Every field is one decision the foreign agent takes while it advertises,
relays or delivers; the defaults are the conformant choice. A fault profile
(:mod:`mipcheck.fa.faults`) is a change of one field, and
:class:`mipcheck.fa.core.ForeignAgent` reads the record and nothing else to
know how to misbehave. Each field's comment lists its values (the conformant
one first) and the fault that picks the other.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from mipcheck.errors import ConfigError

# field -> its values (the conformant one first); fields not listed here are booleans.
CHOICES: dict[str, tuple[Any, ...]] = {
    "request_checks": ("all", "none"),
    "advertised_coa": ("configured", "off-by-one"),
    "lifetime_over_max": ("deny-69", "clamp-in-relay"),
    "lifetime_in_69": ("max", "copied"),
    "fa_extensions": ("remove", "relay"),
    "reply_match": ("low-32-bits", "all-64-bits"),
    "reverse_tunnel": ("tunnel", "native"),
    "sequence_wrap": (256, 0),
    "advertisement_ttl": (1, 64),
}


@dataclass(frozen=True)
class Behaviour:
    """The choices of one foreign agent, in the order it meets them."""

    # ---- advertisements (RFC 5944 2.1, 2.1.1, 2.3.2)
    # Care-of addresses in the Mobility Agent Advertisement: "configured"; "off-by-one", each with its
    # last octet plus one, so none is an address of this agent (wrong-coa-in-advertisement).
    advertised_coa: str = "configured"
    # After 0xffff the Sequence Number goes on at 256 (0-255 mean "rebooted"); 0 (sequence-wraps-to-zero).
    sequence_wrap: int = 256
    # IP TTL of advertisements: 1 (RFC 5944 2.1); 64 (advertisement-ttl-64).
    advertisement_ttl: int = 1

    # ---- Registration Requests (RFC 5944 3.7.2, RFC 3024)
    # "all" the checks of 3.7.2.1 and the policy denials; "none": every request with a fixed part is
    # relayed as it came (relay-without-checks).
    request_checks: str = "all"
    # A request for a Lifetime above max_lifetime: "deny-69" (3.7.2.3); "clamp-in-relay" rewrites the
    # Lifetime field of the relayed request instead, which breaks its MN-HA authenticator (3.7.2.2: the
    # fields up to the authorization-enabling extension must not change) (clamp-relayed-lifetime).
    lifetime_over_max: str = "deny-69"
    # The Lifetime of a 69 denial: "max", the longest this agent accepts (3.7.2.3); "copied" from the
    # request (lifetime-copied-in-69).
    lifetime_in_69: str = "max"
    # Extensions after the authorization-enabling extension (MN-FA authentication, challenges): "remove"
    # before relaying (3.7.2.2, 3.7.3.2); "relay" them on (relay-mn-fa-extensions).
    fa_extensions: str = "remove"

    # ---- Registration Replies (RFC 5944 3.7.3)
    # Matching a reply to a pending request: "low-32-bits" of the Identification (3.7.3.1; a nonce-based
    # home agent changes the high-order bits); "all-64-bits" (match-full-identification).
    reply_match: str = "low-32-bits"
    # False: visitor list entries never expire (no-visitor-expiry).
    visitor_expiry: bool = True

    # ---- data (RFC 3024, RFC 5944 4.2.2)
    # A registered visitor's packet when it registered with 'T': "tunnel" it to the home agent (RFC 3024);
    # "native", forward it to the default router anyway (no-reverse-tunnel).
    reverse_tunnel: str = "tunnel"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            allowed = CHOICES.get(f.name, (True, False))
            if not any(value == a and type(value) is type(a) for a in allowed):
                raise ConfigError(f"behaviour.{f.name}", f"{value!r} is not one of {', '.join(map(repr, allowed))}")

    def changed(self) -> dict[str, Any]:
        """The fields that differ from the conformant default: field -> value."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != getattr(CONFORMANT, f.name)
        }


CONFORMANT = Behaviour()
