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

The VPN gateway's namespace holds the VPN's own security policy
(:func:`vpn_policy_ruleset`, RFC 5265 4.2): what a VPN client may send
into the enterprise once its ESP is decrypted (the TUN device ``ipsec0``).
A broken lab (:mod:`.breaks`) changes the rule a site-audit case looks at and
says so in the rule's comment (``BREAK <name>: ...``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from . import breaks as br
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
XHA_INSIDE_DROP = "3.1 MAY internal network to the x-HA UDP 434 dropped"
VPN_POLICY_UDP = "4.2 VPN clients to the i-HA UDP 434, any source port"
VPN_POLICY_IPIP = "4.2 VPN clients to the i-HA IP-in-IP"
VPN_POLICY_INTERNAL = "VPN clients to the internal network"
VPN_POLICY_DROP = "nothing else from VPN clients"


def _break_comment(name: str, what: str) -> str:
    return f"BREAK {name}: {what}"


def firewall_ruleset(breaks: Iterable[str] = ()) -> str:
    """The enterprise firewall (RFC 5265 3.1), as ``nft -f`` text; ``breaks`` (see :mod:`.breaks`) misconfigure it."""
    chosen = br.check_breaks(breaks)
    outside = '{ "ext", "dmz" }'
    if br.FW_OPEN_434 in chosen:
        udp = (
            f"iifname {outside} ip daddr {IHA_ADDRESS} udp dport 434 counter accept "
            f'comment "{_break_comment(br.FW_OPEN_434, "outside to i-HA UDP 434 accepted")}"'
        )
    else:
        udp = f'iifname {outside} ip daddr {IHA_ADDRESS} udp dport 434 counter drop comment "{IHA_UDP_DROP}"'
    if br.FW_OPEN_IPIP in chosen:
        ipip = (
            f"iifname {outside} ip daddr {IHA_ADDRESS} ip protocol 4 counter accept "
            f'comment "{_break_comment(br.FW_OPEN_IPIP, "outside to i-HA IP-in-IP accepted")}"'
        )
    else:
        ipip = f'iifname {outside} ip daddr {IHA_ADDRESS} ip protocol 4 counter drop comment "{IHA_IPIP_DROP}"'
    xha_inside = ""
    if br.XHA_INSIDE_DROP in chosen:
        xha_inside = (
            f'        iifname "int" ip daddr {XHA_ADDRESS} udp dport 434 counter drop '
            f'comment "{_break_comment(br.XHA_INSIDE_DROP, XHA_INSIDE_DROP)}"\n'
        )
    prerouting = ""
    if br.SAME_HA_ADDRESS in chosen:
        what = _break_comment(br.SAME_HA_ADDRESS, "outside to the i-HA address reaches the x-HA")
        prerouting = f"""\
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        iifname "ext" ip daddr {IHA_ADDRESS} udp dport 434 counter dnat ip to {XHA_ADDRESS} comment "{what}, UDP 434"
        iifname "ext" ip daddr {IHA_ADDRESS} ip protocol 4 counter dnat ip to {XHA_ADDRESS} comment "{what}, IP-in-IP"
    }}
"""
    return f"""\
table {TABLE_FAMILY} {TABLE} {{
{prerouting}    chain forward {{
        type filter hook forward priority filter; policy drop;
        {udp}
        {ipip}
        ct state established,related counter accept comment "replies of allowed flows"
        ct state invalid counter drop comment "invalid"
{xha_inside}        iifname "int" counter accept comment "{INTERNAL_OUT}"
        iifname "vpn" oifname "int" ip saddr {VPN_POOL} ip daddr {INTERNAL_NETWORK} counter accept comment "{VPN_INNER}"
        iifname "ext" oifname "dmz" ip daddr {XHA_ADDRESS} udp dport 434 counter accept comment "x-HA registrations"
        iifname "ext" oifname "dmz" ip daddr {XHA_ADDRESS} ip protocol 4 counter accept comment "x-HA IP-in-IP"
        iifname "ext" oifname "dmz" ip daddr {XHA_ADDRESS} ip protocol 55 counter accept \
comment "x-HA minimal encapsulation"
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


def vpn_policy_ruleset(breaks: Iterable[str] = ()) -> str:
    """The VPN gateway's security policy (RFC 5265 4.2) for decrypted traffic from clients (``ipsec0``).

    Conformant: VPN-TIAs reach the i-HA with UDP to port 434 from any source
    port and with IP-in-IP, and the rest of the internal network. Breaks:
    ``vpn-434-fixed-port`` (only source port 434), ``vpn-no-ipip``.
    """
    chosen = br.check_breaks(breaks)
    tia = f'iifname "ipsec0" ip saddr {VPN_POOL}'
    if br.VPN_434_FIXED_PORT in chosen:
        what = _break_comment(br.VPN_434_FIXED_PORT, "UDP to the i-HA port 434")
        udp = (
            f'{tia} ip daddr {IHA_ADDRESS} udp dport 434 udp sport 434 counter accept comment "{what} from 434"\n'
            f'        {tia} ip daddr {IHA_ADDRESS} udp dport 434 counter drop comment "{what} from other ports dropped"'
        )
    else:
        udp = f'{tia} ip daddr {IHA_ADDRESS} udp dport 434 counter accept comment "{VPN_POLICY_UDP}"'
    if br.VPN_NO_IPIP in chosen:
        what = _break_comment(br.VPN_NO_IPIP, "IP-in-IP from VPN clients dropped")
        ipip = f'iifname "ipsec0" ip protocol 4 counter drop comment "{what}"'
    else:
        ipip = f'{tia} ip daddr {IHA_ADDRESS} ip protocol 4 counter accept comment "{VPN_POLICY_IPIP}"'
    return f"""\
table {TABLE_FAMILY} {TABLE} {{
    chain forward {{
        type filter hook forward priority filter; policy accept;
        {udp}
        {ipip}
        {tia} ip daddr {INTERNAL_NETWORK} counter accept comment "{VPN_POLICY_INTERNAL}"
        iifname "ipsec0" counter drop comment "{VPN_POLICY_DROP}"
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
