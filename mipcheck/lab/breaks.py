"""Broken lab variants (``mipcheck lab up --break NAME``): each breaks what one audit case checks.

The site audit (``mipcheck run --suite site``) and the HA suite run against
the lab's i-HA (``mipcheck lab audit-ha``) judge only from what their probes
see, so the proof that a case can fail at all is a lab that really is
misconfigured in the way the case looks for. Each :class:`Break` names the
case it is built to make fail (or warn, for a SHOULD case): a site case
(``SITE-...``) or an HA-suite case (``HA-...``), the RFC 5265 rule it breaks
and what the lab does differently. ``also`` lists, with the reason, every
other site case whose verdict honestly changes too; ``ha`` every HA-suite
verdict of ``audit-ha`` (its default cases) that differs from the lab as
built, and from which vantage point (the tests hold the suites to exactly
that). A ``conformant`` variant is one the RFC permits: its case must still
pass, with another observation (a MAY).

Case ids are plain strings here: the lab sits below the suites
(docs/design/contracts.md, "Import floors"); ``tests/test_suite_site.py`` and
``tests/test_lab_ha_audit.py`` check them against the suites' cases.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mipcheck.errors import ConfigError

# What each break changes (read by firewall, vpn and control when they build the lab).
FW_OPEN_434 = "fw-open-434"
FW_OPEN_IPIP = "fw-open-ipip"
VPN_434_FIXED_PORT = "vpn-434-fixed-port"
VPN_NO_IPIP = "vpn-no-ipip"
VPN_NO_NATT = "vpn-no-natt"
SAME_HA_ADDRESS = "same-ha-address"
VPN_PLAINTEXT = "vpn-plaintext"
XHA_INSIDE_DROP = "xha-inside-drop"
IHA_OMIT_TNC = "iha-omit-tnc"
IHA_TRUST_ALL = "iha-trust-all"


@dataclass(frozen=True)
class SideEffect:
    """Another case whose verdict a break changes, to what, and why that is right."""

    case: str
    verdict: str
    why: str


@dataclass(frozen=True)
class HAEffect:
    """An HA-suite verdict of ``mipcheck lab audit-ha`` that a break changes, from which vantage points, and why."""

    case: str
    verdict: str
    vantages: tuple[str, ...]  # "inside", "vpn"
    why: str = ""


@dataclass(frozen=True)
class Break:
    name: str
    case: str  # the case (SITE-... or HA-...) that must fail (MUST) or warn (SHOULD); pass for a conformant variant
    rule: str  # the RFC 5265 requirement it breaks
    summary: str  # what the lab does differently
    also: tuple[SideEffect, ...] = ()
    conformant: bool = False  # permitted by the RFC (a MAY): the case passes with another observation
    vpn_host: bool = True  # whether the audit's VPN host can still connect under it
    ha: tuple[HAEffect, ...] = ()  # every HA-suite verdict (audit-ha's default cases) that differs from the clean lab

    @property
    def suite(self) -> str:
        """The suite of ``case``: "site" (``mipcheck run --suite site``) or "ha" (``mipcheck lab audit-ha``)."""
        return "site" if self.case.startswith("SITE-") else "ha"


_NO_VPN_HOST = (
    "the audit's VPN host cannot connect (its IKE_AUTH goes to UDP 4500), so the case has no vantage point on the VPN"
)

_NO_TNC = "no reply carries a TNC extension to judge (HA-TNC-INCLUDED's finding)"

TABLE: tuple[Break, ...] = (
    Break(
        FW_OPEN_434,
        "SITE-FW-IHA-UNREACHABLE",
        "RFC 5265 3.1: the firewall MUST block traffic from external networks to the i-HA",
        "the firewall accepts UDP 434 from outside (external network, DMZ) to the i-HA instead of dropping it "
        "(the i-HA still drops the untrusted requests itself, so nothing answers: only the arrival shows it)",
    ),
    Break(
        FW_OPEN_IPIP,
        "SITE-FW-IHA-UNREACHABLE",
        "RFC 5265 3.1: the firewall MUST block traffic from external networks to the i-HA",
        "the firewall accepts IP-in-IP (protocol 4) from outside to the i-HA instead of dropping it",
    ),
    Break(
        VPN_434_FIXED_PORT,
        "SITE-VPN-UDP434-ANY-PORT",
        "RFC 5265 4.2: the VPN policy MUST allow UDP to the i-HA port 434 from any remote port",
        "the VPN gateway's policy lets UDP to the i-HA's port 434 in only from source port 434",
    ),
    Break(
        VPN_NO_IPIP,
        "SITE-VPN-IPIP",
        "RFC 5265 4.2: the VPN policy SHOULD allow IP-in-IP to the i-HA",
        "the VPN gateway's policy drops IP-in-IP (protocol 4) from VPN clients",
    ),
    Break(
        VPN_NO_NATT,
        "SITE-VPN-NATT",
        "RFC 5265 2.5, 4.2: the VPN gateway SHOULD implement IPsec NAT traversal (RFC 3947, 3948)",
        "charon's NAT-T port is moved off UDP 4500 (charon.port_nat_t = 4501): nothing answers IKE on 4500. "
        "strongSwan cannot switch NAT traversal off, so its IKE_SA_INIT still carries NAT-D payloads",
        also=(
            SideEffect("SITE-VPN-UDP434-ANY-PORT", "inconclusive", _NO_VPN_HOST),
            SideEffect("SITE-VPN-IPIP", "inconclusive", _NO_VPN_HOST),
            SideEffect("SITE-VPN-ENCRYPT-ALL", "inconclusive", _NO_VPN_HOST),
        ),
        vpn_host=False,
    ),
    Break(
        SAME_HA_ADDRESS,
        "SITE-DISTINCT-HA",
        "RFC 5265 3.5: the x-HA and i-HA addresses MUST be different",
        "the firewall DNATs UDP 434 and IP-in-IP from the external network addressed to the i-HA's address "
        "(10.1.0.1) to the x-HA, and the site profile names 10.1.0.1 as the x-HA: from outside the x-HA answers "
        "at the i-HA's address, from inside the i-HA does",
        also=(
            SideEffect(
                "SITE-FW-IHA-UNREACHABLE",
                "fail",
                "a registration to the i-HA's address from outside is answered (by the x-HA behind the DNAT): "
                "3.1's outside-to-i-HA path is open as far as a mobile node can tell",
            ),
        ),
    ),
    Break(
        VPN_PLAINTEXT,
        "SITE-VPN-ENCRYPT-ALL",
        "RFC 5265 4.1: IPsec policies MUST encrypt all traffic to and from the enterprise network",
        "the audit's VPN host tunnels only the i-HA (policy routing rules send the rest of 10.0.0.0/8 past "
        "ipsec0, a split tunnel): everything else it sends to the enterprise leaves it in plaintext",
    ),
    Break(
        XHA_INSIDE_DROP,
        "SITE-XHA-INSIDE-DROP",
        "RFC 5265 3.1 (MAY), 3.7: the firewall may block registrations from inside to the x-HA",
        "the firewall drops UDP 434 from the internal network to the x-HA (permitted: the case passes, "
        "reporting that the x-HA is unreachable from inside)",
        conformant=True,
    ),
    Break(
        IHA_OMIT_TNC,
        "SITE-IHA-TRUST",
        "RFC 5265 4.3: the i-HA MUST include the TNC extension in replies to trusted sources",
        "the i-HA runs with the reference home agent's fault omit-tnc: it accepts without the TNC extension",
        ha=(
            HAEffect("HA-TNC-INCLUDED", "fail", ("inside", "vpn"), "no reply to a trusted source carries TNC"),
            HAEffect("HA-TNC-FORMAT", "inconclusive", ("inside", "vpn"), _NO_TNC),
            HAEffect("HA-TNC-AUTHENTICATED", "inconclusive", ("inside", "vpn"), _NO_TNC),
            HAEffect(
                "HA-TNC-ON-DENIAL", "warn", ("inside", "vpn"), "the denial to a trusted source carries no TNC either"
            ),
        ),
    ),
    Break(
        IHA_TRUST_ALL,
        "HA-UNTRUSTED-DROP",
        "RFC 5265 4.3: the i-HA's trusted subnets MUST hold only internal addresses, and it MUST drop requests "
        "from any other source silently",
        "the i-HA's trusted networks are 0.0.0.0/0 (i-ha.toml) instead of 10.0.0.0/8: it answers every source. "
        "The firewall still keeps the outside away from it, so every site case passes: only the HA suite from "
        "inside, whose untrusted sources are on the internal LAN, sees it",
        ha=(
            HAEffect("HA-UNTRUSTED-DROP", "fail", ("inside",), "the untrusted requests are answered"),
            HAEffect(
                "HA-SOURCE-NOT-COA",
                "fail",
                ("inside",),
                "a request from an untrusted source is answered (trusted CoA or not)",
            ),
            HAEffect(
                "HA-UNTRUSTED-LOG",
                "inconclusive",
                ("inside",),
                "the untrusted request is answered, so nothing is dropped to log (HA-UNTRUSTED-DROP's finding)",
            ),
        ),
    ),
)

BREAKS: dict[str, Break] = {b.name: b for b in TABLE}


def check_breaks(names: Iterable[str]) -> frozenset[str]:
    """The names, validated: an unknown one is a usage error naming the known ones."""
    chosen = frozenset(names)
    for name in sorted(chosen):
        if name not in BREAKS:
            raise ConfigError("--break", f"{name!r} is not a lab break (mipcheck lab breaks: {', '.join(BREAKS)})")
    return chosen


def vpn_host_allowed(names: Iterable[str]) -> bool:
    return all(BREAKS[n].vpn_host for n in names)
