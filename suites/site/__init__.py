"""The site audit (``mipcheck run --suite site --profile site.toml``): a deployment judged against RFC 5265.

Where the HA suite plays a mobile node against one home agent, this suite
probes a whole site from the vantage points its profile names (outside,
inside, on the VPN, at the i-HA) and judges the firewall (3.1), the VPN
gateway's policy and NAT traversal (4.2, 2.5, 4.1), the home agents'
addresses (3.5) and the i-HA's trust (4.3) from what the probes see.

Case ids are public interface (reports, CI filters, the requirement
catalogue). ``BREAKS`` maps each case to the lab variants
(``mipcheck lab up --break NAME``, :mod:`mipcheck.lab.breaks`) under which it
must fail, or warn for a SHOULD case; a MAY case has a conformant variant
that changes what it reports (``tests/test_suite_site_breaks.py``).
"""

from __future__ import annotations

from mipcheck.lab.breaks import TABLE as BREAK_TABLE

from . import cases as c
from .runner import SUITE, SiteCase


def _breaks_by_case() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for b in BREAK_TABLE:
        if b.suite == "site":  # the others are built for an HA-suite case (mipcheck lab audit-ha)
            out.setdefault(b.case, []).append(b.name)
    return {case: tuple(names) for case, names in out.items()}


#: case id -> lab breaks that must make it fail (warn for SHOULD; for a MAY case: the conformant variant).
BREAKS: dict[str, tuple[str, ...]] = _breaks_by_case()


def _case(id: str, title: str, level: str, requirement: str, run, roles: tuple[str, ...]) -> SiteCase:
    return SiteCase(id, title, level, requirement, run, roles, BREAKS.get(id, ()))


CASES: tuple[SiteCase, ...] = (
    _case(
        "SITE-FW-IHA-UNREACHABLE",
        "From outside, a valid registration to the i-HA gets nothing back, and neither it nor IP-in-IP reaches it",
        "MUST",
        "RFC 5265 3.1",
        c.fw_iha_unreachable,
        ("outside", "inside", "i-ha"),
    ),
    _case(
        "SITE-VPN-UDP434-ANY-PORT",
        "Through the VPN, registrations to the i-HA from any source port (434, low, high) are answered",
        "MUST",
        "RFC 5265 4.2",
        c.vpn_udp434_any_port,
        ("vpn", "inside", "i-ha"),
    ),
    _case(
        "SITE-VPN-IPIP",
        "Through the VPN, IP-in-IP to the i-HA arrives there",
        "SHOULD",
        "RFC 5265 4.2",
        c.vpn_ipip,
        ("vpn", "inside", "i-ha"),
    ),
    _case(
        "SITE-VPN-NATT",
        "The VPN gateway offers IPsec NAT traversal: NAT-D in IKE_SA_INIT, IKE answered on UDP 4500",
        "SHOULD",
        "RFC 5265 2.5, 4.2; RFC 3947, 3948",
        c.vpn_natt,
        ("outside",),
    ),
    _case(
        "SITE-DISTINCT-HA",
        "The i-HA and x-HA addresses differ, in the profile and where the answers come from",
        "MUST",
        "RFC 5265 3.5",
        c.distinct_ha,
        ("inside", "outside"),
    ),
    _case(
        "SITE-VPN-ENCRYPT-ALL",
        "Traffic from a VPN host to the enterprise leaves its outer interface in ESP only",
        "MUST",
        "RFC 5265 4.1",
        c.vpn_encrypt_all,
        ("vpn",),
    ),
    _case(
        "SITE-XHA-INSIDE-DROP",
        "Whether registrations from inside reach the x-HA (blocking them is permitted): reported",
        "MAY",
        "RFC 5265 3.1, 3.7",
        c.xha_inside_drop,
        ("inside", "outside"),
    ),
    _case(
        "SITE-IHA-TRUST",
        "The i-HA accepts with TNC from inside and through the VPN, and does not answer outside",
        "MUST",
        "RFC 5265 4.3",
        c.iha_trust,
        ("inside", "vpn", "outside"),
    ),
)

CASES_BY_ID: dict[str, SiteCase] = {case.id: case for case in CASES}

__all__ = ["BREAKS", "CASES", "CASES_BY_ID", "SUITE", "SiteCase"]
