"""Outcomes as values: who broke which catalogue rule, and what the home agent decided.

Why: a verdict, a passive finding or a home-agent decision used to say who was
at fault only in prose (``reason``). A :class:`Violation` names the rule by its
stable catalogue id (``mipcheck.catalogue``) and the party by a
:class:`Party`, so reports, logs and tests can filter and count them.

Bottom floor: standard library only, imported by every floor above (see
docs/design/contracts.md, "Import floors"). Rule ids are not checked here
(that would load the catalogue on hot paths); tests check them against the
catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["HomeAgentOutcome", "Party", "Violation"]


class Party(StrEnum):
    """Who broke a rule: the device under test, the tester itself, or a peer role on the wire."""

    DEVICE = "device"  # the device under test (whatever its role) in a conformance run
    TESTER = "tester"  # mipcheck itself: it could not do its job (an ``error`` verdict)
    HOME_AGENT = "home-agent"  # i-HA or x-HA (RFC 5265 roles i-ha, x-ha, ha)
    MOBILE_NODE = "mobile-node"
    FOREIGN_AGENT = "foreign-agent"
    VPN_GATEWAY = "vpn-gateway"
    FIREWALL = "firewall"  # the enterprise firewall of RFC 5265 3.1


class HomeAgentOutcome(StrEnum):
    """What a home agent did with one datagram (``Decision.outcome`` of ``mipcheck.ha.core``)."""

    ACCEPTED = "accepted"  # answered with code 0 or 1, or tunnel data taken
    DENIED = "denied"  # answered with a denial code
    DROPPED = "dropped"  # discarded silently (untrusted source, malformed, non-skippable extension, ...)
    IGNORED = "ignored"  # not a message the home agent handles


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: which (``rule_id``), by whom (``party``), found by what (``code``), and how.

    ``rule_id`` is a requirement id of the catalogue (``5265-4.3-DROP-UNTRUSTED``),
    or None when the party broke no RFC rule (a tester-side failure). ``code`` is
    the stable id of the check that found it: a conformance case or passive-check
    id as the catalogue's ``cases`` list them (``HA-TNC-FORMAT``,
    ``PASSIVE-TNC-TO-UNTRUSTED``); it is not a Registration Reply code, which
    stays ``Decision.code``. ``detail`` is the one-line explanation for humans.
    """

    rule_id: str | None
    party: Party
    code: str
    detail: str

    def as_dict(self) -> dict[str, str | None]:
        return {"rule_id": self.rule_id, "party": str(self.party), "code": self.code, "detail": self.detail}
