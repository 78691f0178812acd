"""RFC 5265 Figure 1 as data: the lab's networks, nodes, addresses and routes.

Nothing here touches the system; :mod:`mipcheck.lab.control` builds what this
describes. Every node is a network namespace named ``mipcheck-<lab>-<node>``;
every multi-access network is a bridge in one more namespace, the lab's switch
(``mipcheck-<lab>-switch``), so the host's own namespace holds nothing of a lab
and a mobile node changes networks by moving its veth's switch end to another
bridge. Interface names are short (at most 15 characters, the kernel's limit)
and the same in every lab, since each lives in a namespace of its own.

Address plan (private and documentation ranges only; the sim's enterprise,
:mod:`mipcheck.sim.enterprise`, uses the same i-HA, x-HA and VPN-TIA pool):

==========  ================  ===============================================
external    198.51.100.0/24   MN's access (mode cvc), x-FA and NAT uplinks
x-fa-link   203.0.113.0/24    behind the x-FA (mode fvc, later parts)
nat-inside  192.168.100.0/24  behind the NAT (``up --nat`` puts the MN here)
dmz         192.0.2.0/24      x-HA, VPN gateway (outer side)
vpn-inner   10.9.0.0/30     VPN gateway's inner side to the firewall
internal    10.1.0.0/24       i-HA, CN, i-FA uplink (modes c)
i-fa-link   10.2.0.0/24       behind the i-FA (mode f, later parts)
vpn-pool    10.8.0.0/24       VPN tunnel inner addresses (VPN-TIAs)
untrusted   172.16.1.0/24     the HA audit's untrusted sources (on audit-in)
==========  ================  ===============================================

Besides Figure 1's nodes the lab has three hosts of its own for the audits
(``mipcheck run --suite site``, ``mipcheck lab audit-ha``), not used by anything
else: ``audit-out``, a plain host on the external network (198.51.100.20),
``audit-vpn``, a host behind the NAT (192.168.100.20) that ``up`` connects to the
VPN gateway, and ``audit-in``, a host on the internal LAN (10.1.0.20) that also
holds two addresses outside the enterprise (172.16.1.20, 172.16.1.21: the HA
suite's untrusted sources; the firewall, the i-HA's default gateway, routes
172.16.1.0/24 back to it, so a reply the i-HA must not send would arrive). So
the audits' vantage points never disturb the MN or the CN.

The enterprise's internal network (the i-HA's trusted networks, RFC 5265 4.3)
is 10.0.0.0/8: the internal LAN, the i-FA's link and the VPN-TIA pool.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from mipcheck.errors import MipcheckError

PREFIX = "mipcheck-"
SWITCH = "switch"  # the namespace holding the lab's bridges (not a node of Figure 1)
LAB_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,15}$")  # no '-': the prefix of one lab is never another's
DEFAULT_LAB = "lab"
IFNAMSIZ = 15

ROLES = ("mn", "x-fa", "nat", "x-ha", "vpn-gateway", "firewall", "i-fa", "i-ha", "cn")

INTERNAL_NETWORK = ipaddress.IPv4Network("10.0.0.0/8")
VPN_POOL = ipaddress.IPv4Network("10.8.0.0/24")
IHA_ADDRESS = "10.1.0.1"
XHA_ADDRESS = "192.0.2.1"
VPN_GATEWAY_ADDRESS = "192.0.2.2"
CN_ADDRESS = "10.1.0.10"
MN_ADDRESS = "198.51.100.10"
MN_NAT_ADDRESS = "192.168.100.10"
INNER_HOME_ADDRESS = "10.1.0.100"  # i-HoA, on the i-HA's link
OUTER_HOME_ADDRESS = "192.0.2.100"  # x-HoA, on the x-HA's link
MN_NAI = "mn1@lab.example"
MIP_PORT = 434
AUDIT_OUT_ADDRESS = "198.51.100.20"  # the site audit's outside vantage point
AUDIT_VPN_ADDRESS = "192.168.100.20"  # the site audit's VPN host (behind the NAT: IPsec NAT traversal in use)
AUDIT_IN_ADDRESS = "10.1.0.20"  # the HA audit's host on the internal LAN (its trusted source)
UNTRUSTED_NETWORK = ipaddress.IPv4Network("172.16.1.0/24")  # outside 10.0.0.0/8; routed to audit-in by the firewall
AUDIT_UNTRUSTED_ADDRESSES = ("172.16.1.20", "172.16.1.21")  # the HA audit's untrusted sources, on audit-in's eth0
AUDIT_ROLE = "audit"  # role of the audit's hosts (not a node of Figure 1)


@dataclass(frozen=True)
class Network:
    """One link of the lab; ``bridge`` is its bridge in the switch namespace (None: a point-to-point veth)."""

    name: str
    subnet: ipaddress.IPv4Network
    bridge: str | None
    description: str


@dataclass(frozen=True)
class Interface:
    """A node's leg on a network: ``name`` inside the node's namespace, ``port`` its veth peer's name."""

    name: str
    network: str
    address: str  # "a.b.c.d/len"
    port: str  # switch-side name (bridged networks) or the peer node's interface name (point to point)

    @property
    def ip(self) -> str:
        return self.address.split("/")[0]


@dataclass(frozen=True)
class Node:
    """A node of Figure 1: one namespace, its interfaces and its static routes."""

    name: str
    role: str
    short: str  # used in switch port names
    description: str
    interfaces: tuple[Interface, ...]
    routes: tuple[tuple[str, str], ...] = ()  # (destination, gateway); "default" allowed
    router: bool = False  # IP forwarding on
    extra_addresses: tuple[tuple[str, str], ...] = ()  # (interface name, "a.b.c.d/32"): more addresses on a leg

    @property
    def addresses(self) -> list[str]:
        return [i.address for i in self.interfaces] + [address for _dev, address in self.extra_addresses]

    def interface(self, network: str) -> Interface:
        for i in self.interfaces:
            if i.network == network:
                return i
        raise KeyError(f"{self.name} has no interface on {network}")


@dataclass(frozen=True)
class Topology:
    """A lab: its name, networks and nodes, and the names derived from them."""

    name: str
    networks: tuple[Network, ...]
    nodes: tuple[Node, ...]
    nat: bool = False
    links: tuple[tuple[str, str, str], ...] = field(default=())  # point to point: (network, node a, node b)
    vantages: tuple[Node, ...] = field(default=())  # the site audit's own hosts (role "audit"), not Figure 1 nodes

    @property
    def hosts(self) -> tuple[Node, ...]:
        """Figure 1's nodes, then the audit's hosts: everything that is a namespace with interfaces."""
        return self.nodes + self.vantages

    @property
    def prefix(self) -> str:
        return namespace_prefix(self.name)

    @property
    def switch_namespace(self) -> str:
        return self.prefix + SWITCH

    def namespace(self, node: str) -> str:
        return self.prefix + self.node(node).name

    def node(self, name: str) -> Node:
        """A node by name, role or short name; the audit's hosts by name or short name."""
        for n in self.nodes:
            if name in (n.name, n.role, n.short):
                return n
        for n in self.vantages:
            if name in (n.name, n.short):
                return n
        names = ", ".join(n.name for n in self.hosts)
        raise MipcheckError(f"no node {name!r} in the lab (nodes: {names})")

    def network(self, name: str) -> Network:
        for n in self.networks:
            if n.name == name:
                return n
        raise KeyError(name)

    @property
    def namespaces(self) -> list[str]:
        return [self.switch_namespace, *(self.prefix + n.name for n in self.hosts)]


def check_lab_name(name: str) -> str:
    if not LAB_NAME.match(name):
        raise MipcheckError(
            f"lab name {name!r}: use 1-16 of a-z, 0-9 and '_' (no '-'), starting with a letter or digit"
        )
    return name


def namespace_prefix(lab: str) -> str:
    return f"{PREFIX}{lab}-"


_NETWORKS = (
    Network("external", ipaddress.IPv4Network("198.51.100.0/24"), "ext", "the MN's access outside (mode cvc)"),
    Network("x-fa-link", ipaddress.IPv4Network("203.0.113.0/24"), "xfa", "foreign link behind the x-FA (mode fvc)"),
    Network("nat-inside", ipaddress.IPv4Network("192.168.100.0/24"), "nat", "behind the NAT in front of the MN"),
    Network("dmz", ipaddress.IPv4Network("192.0.2.0/24"), "dmz", "x-HA and the VPN gateway's outer side"),
    Network("vpn-inner", ipaddress.IPv4Network("10.9.0.0/30"), None, "VPN gateway's inner side to the firewall"),
    Network("internal", ipaddress.IPv4Network("10.1.0.0/24"), "int", "i-HA, CN, i-FA uplink (mode c)"),
    Network("i-fa-link", ipaddress.IPv4Network("10.2.0.0/24"), "ifa", "foreign link behind the i-FA (mode f)"),
)


def _leg(node_short: str, name: str, network: str, address: str) -> Interface:
    bridge = next(n.bridge for n in _NETWORKS if n.name == network)
    port = f"{node_short}-{bridge}" if bridge else name
    return Interface(name, network, address, port)


def build_topology(name: str = DEFAULT_LAB, *, nat: bool = False) -> Topology:
    """Figure 1 of RFC 5265 for lab ``name``; ``nat`` puts the MN behind the NAT instead of on the external net."""
    check_lab_name(name)
    if nat:
        mn_leg = Interface("eth0", "nat-inside", f"{MN_NAT_ADDRESS}/24", "mn-nat")
        mn_routes: tuple[tuple[str, str], ...] = (("default", "192.168.100.1"),)
    else:
        mn_leg = Interface("eth0", "external", f"{MN_ADDRESS}/24", "mn-ext")
        mn_routes = (("default", "198.51.100.254"),)
    nodes = (
        Node("mn", "mn", "mn", "mobile node (reference MN in later parts)", (mn_leg,), mn_routes),
        Node(
            "x-fa",
            "x-fa",
            "xfa",
            "foreign agent outside (router for now)",
            (_leg("xfa", "ext", "external", "198.51.100.2/24"), _leg("xfa", "fa", "x-fa-link", "203.0.113.1/24")),
            (("default", "198.51.100.254"),),
            router=True,
        ),
        Node(
            "nat",
            "nat",
            "nat",
            "NAT (masquerade) in front of the MN",
            (_leg("nat", "ext", "external", "198.51.100.3/24"), _leg("nat", "in", "nat-inside", "192.168.100.1/24")),
            (("default", "198.51.100.254"),),
            router=True,
        ),
        Node(
            "x-ha",
            "x-ha",
            "xha",
            "external home agent (mipcheck ha serve, role x-ha)",
            (_leg("xha", "dmz", "dmz", f"{XHA_ADDRESS}/24"),),
            (("default", "192.0.2.254"),),
        ),
        Node(
            "vpn-gateway",
            "vpn-gateway",
            "vpn",
            "IPsec VPN gateway (strongSwan, kernel-libipsec)",
            (
                _leg("vpn", "dmz", "dmz", f"{VPN_GATEWAY_ADDRESS}/24"),
                Interface("inner", "vpn-inner", "10.9.0.2/30", "vpn"),
            ),
            (("default", "192.0.2.254"), (str(INTERNAL_NETWORK), "10.9.0.1")),
            router=True,
        ),
        Node(
            "firewall",
            "firewall",
            "fw",
            "enterprise firewall (nftables, RFC 5265 3.1)",
            (
                _leg("fw", "ext", "external", "198.51.100.254/24"),
                _leg("fw", "dmz", "dmz", "192.0.2.254/24"),
                _leg("fw", "int", "internal", "10.1.0.254/24"),
                Interface("vpn", "vpn-inner", "10.9.0.1/30", "inner"),
            ),
            (
                ("203.0.113.0/24", "198.51.100.2"),
                ("10.2.0.0/24", "10.1.0.2"),
                (str(VPN_POOL), "10.9.0.2"),
                (str(UNTRUSTED_NETWORK), AUDIT_IN_ADDRESS),  # the HA audit's untrusted sources, on audit-in
            ),
            router=True,
        ),
        Node(
            "i-fa",
            "i-fa",
            "ifa",
            "foreign agent inside (router for now)",
            (_leg("ifa", "int", "internal", "10.1.0.2/24"), _leg("ifa", "fa", "i-fa-link", "10.2.0.1/24")),
            (("default", "10.1.0.254"),),
            router=True,
        ),
        Node(
            "i-ha",
            "i-ha",
            "iha",
            "internal home agent (mipcheck ha serve, role i-ha)",
            (_leg("iha", "int", "internal", f"{IHA_ADDRESS}/24"),),
            (("default", "10.1.0.254"), ("10.2.0.0/24", "10.1.0.2")),
        ),
        Node(
            "cn",
            "cn",
            "cn",
            "correspondent node",
            (_leg("cn", "int", "internal", f"{CN_ADDRESS}/24"),),
            (("default", "10.1.0.254"), ("10.2.0.0/24", "10.1.0.2")),
        ),
    )
    vantages = (
        Node(
            "audit-out",
            AUDIT_ROLE,
            "aout",
            "site audit: a host outside (external network)",
            (_leg("aout", "eth0", "external", f"{AUDIT_OUT_ADDRESS}/24"),),
            (("default", "198.51.100.254"),),
        ),
        Node(
            "audit-vpn",
            AUDIT_ROLE,
            "avpn",
            "site audit: a host on the VPN (behind the NAT, strongSwan client)",
            (_leg("avpn", "eth0", "nat-inside", f"{AUDIT_VPN_ADDRESS}/24"),),
            (("default", "192.168.100.1"),),
        ),
        Node(
            "audit-in",
            AUDIT_ROLE,
            "ain",
            "HA audit: a host on the internal LAN, with two untrusted addresses (172.16.1.0/24)",
            (_leg("ain", "eth0", "internal", f"{AUDIT_IN_ADDRESS}/24"),),
            (("default", "10.1.0.254"), ("10.2.0.0/24", "10.1.0.2")),
            extra_addresses=tuple(("eth0", f"{a}/32") for a in AUDIT_UNTRUSTED_ADDRESSES),
        ),
    )
    topo = Topology(name, _NETWORKS, nodes, nat, links=(("vpn-inner", "vpn-gateway", "firewall"),), vantages=vantages)
    for node in topo.hosts:
        for leg in node.interfaces:
            assert len(leg.name) <= IFNAMSIZ and len(leg.port) <= IFNAMSIZ, leg
    return topo
