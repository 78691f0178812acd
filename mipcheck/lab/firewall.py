"""The lab's nftables rulesets: the enterprise firewall of RFC 5265 3.1 and the NAT in front of the MN.

The firewall namespace has four legs: ``ext`` (external network), ``dmz``,
``int`` (internal network) and ``vpn`` (the VPN gateway's inner side). Its
forward chain drops by default and:

1. drops, before anything else and counted, UDP 434 and IP-in-IP (protocol 4)
   from outside (``ext``, ``dmz``) to the i-HA: 3.1 "block traffic
   originating from external networks going to the i-HA" — not even a reply
   to a flow the i-HA opened gets through;
2. lets replies of allowed flows back (``ct state established,related``);
3. lets the internal network out, to the DMZ (the x-HA) and beyond: 3.1's
   "would typically allow" internal hosts to reach the x-HA, stateful;
4. lets the VPN gateway's inner side forward decrypted traffic from VPN-TIAs
   into the internal network (4.2: UDP 434 from any port and IP-in-IP to the
   i-HA included);
5. lets the outside reach the DMZ's public services only: the x-HA (UDP 434,
   IP-in-IP, ping) and the VPN gateway (IKE UDP 500, NAT-T UDP 4500, ESP, ping);
6. lets the DMZ reach the outside (the x-HA tunnels to care-of addresses);
7. counts and drops everything else — internal hosts are never reachable from
   outside.

Every rule carries a comment naming what it is for; tests look rules up by it.
Rulesets are text, loaded with ``nft -f -`` inside the namespace.
"""

from __future__ import annotations

import json

from . import netns
from .topology import IHA_ADDRESS, INTERNAL_NETWORK, VPN_GATEWAY_ADDRESS, VPN_POOL, XHA_ADDRESS

TABLE_FAMILY = "inet"
TABLE = "mipcheck"

# comments of the rules that carry RFC 5265's requirements
IHA_UDP_DROP = "3.1 outside to i-HA UDP 434 dropped"
IHA_IPIP_DROP = "3.1 outside to i-HA IP-in-IP dropped"
INTERNAL_OUT = "3.1 internal network reaches the x-HA and outside (stateful)"
VPN_INNER = "4.2 VPN gateway inner side to the internal network"
VPN_IKE = "VPN gateway IKE and NAT-T"
DEFAULT_DROP = "3.1 nothing else from outside reaches the internal network"


def firewall_ruleset() -> str:
    """The enterprise firewall (RFC 5265 3.1), as ``nft -f`` text."""
    return f"""\
table {TABLE_FAMILY} {TABLE} {{
    chain forward {{
        type filter hook forward priority filter; policy drop;
        iifname {{ "ext", "dmz" }} ip daddr {IHA_ADDRESS} udp dport 434 counter drop comment "{IHA_UDP_DROP}"
        iifname {{ "ext", "dmz" }} ip daddr {IHA_ADDRESS} ip protocol 4 counter drop comment "{IHA_IPIP_DROP}"
        ct state established,related counter accept comment "replies of allowed flows"
        ct state invalid counter drop comment "invalid"
        iifname "int" counter accept comment "{INTERNAL_OUT}"
        iifname "vpn" oifname "int" ip saddr {VPN_POOL} ip daddr {INTERNAL_NETWORK} counter accept comment "{VPN_INNER}"
        iifname "ext" oifname "dmz" ip daddr {XHA_ADDRESS} udp dport 434 counter accept comment "x-HA registrations"
        iifname "ext" oifname "dmz" ip daddr {XHA_ADDRESS} ip protocol 4 counter accept comment "x-HA IP-in-IP"
        iifname "ext" oifname "dmz" ip daddr {VPN_GATEWAY_ADDRESS} udp dport {{ 500, 4500 }} \
counter accept comment "{VPN_IKE}"
        iifname "ext" oifname "dmz" ip daddr {VPN_GATEWAY_ADDRESS} ip protocol esp \
counter accept comment "VPN gateway ESP"
        iifname "ext" oifname "dmz" icmp type echo-request counter accept comment "ping into the DMZ"
        iifname "dmz" oifname "ext" counter accept comment "DMZ reaches outside"
        counter drop comment "{DEFAULT_DROP}"
    }}
}}
"""


def nat_ruleset(outside: str = "ext", inside: str = "in") -> str:
    """A home router's NAT: masquerade what leaves ``outside``, let only replies in."""
    return f"""\
table {TABLE_FAMILY} {TABLE} {{
    chain forward {{
        type filter hook forward priority filter; policy drop;
        ct state established,related accept comment "replies"
        iifname "{inside}" oifname "{outside}" accept comment "inside out"
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "{outside}" masquerade comment "masquerade"
    }}
}}
"""


def load(ns: str, ruleset: str) -> None:
    """Replace the lab's table in namespace ``ns`` with ``ruleset`` (atomic, ``nft -f -``)."""
    flush = f"table {TABLE_FAMILY} {TABLE}\ndelete table {TABLE_FAMILY} {TABLE}\n"
    netns.run(netns.in_ns(ns, ["nft", "-f", "-"]), input=flush + ruleset)


def tables(ns: str | None = None) -> list[str]:
    """``family name`` of every nftables table in ``ns`` (None: the host's namespace)."""
    argv = ["nft", "list", "tables"]
    out = netns.run(netns.in_ns(ns, argv) if ns else argv, check=False)
    return [line.removeprefix("table ").strip() for line in out.splitlines() if line.startswith("table ")]


def rules(ns: str) -> dict[str, int]:
    """The lab table's rules in ``ns``: comment -> packets counted (0 for rules without a counter)."""
    out = netns.run(netns.in_ns(ns, ["nft", "-j", "list", "table", TABLE_FAMILY, TABLE]))
    found: dict[str, int] = {}
    for item in json.loads(out).get("nftables", []):
        rule = item.get("rule")
        if not rule or "comment" not in rule:
            continue
        packets = sum(e["counter"]["packets"] for e in rule.get("expr", []) if isinstance(e, dict) and "counter" in e)
        found[rule["comment"]] = packets
    return found
