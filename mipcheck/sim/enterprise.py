"""A ready RFC 5265 Figure 1 enterprise on one simulated network: i-HA, x-HA, VPN gateway, firewall, mobile nodes.

Why: every MN scenario (tests, the MN suite, ``mipcheck mn run``) needs the
same topology, and its rules matter: the i-HA trusts only the internal
network (4.3) and the firewall keeps everyone else away from it (3.1), so a
mobile node can be inside only where it really is. Building it once keeps
the scenarios about the mobile node.

Address plan (all on the :class:`~mipcheck.sim.network.SimNetwork`, nothing real):

=====================  ==================  ==========================================
internal network       10.0.0.0/8          the i-HA's trusted networks (4.3)
i-HA                   10.1.0.1:434        i-HoAs from 10.1.9.0/24
internal access        10.2.0.0/24         care-of addresses inside (mode c)
correspondent          10.3.0.10:7         echoes user data
VPN-TIA pool           10.8.0.0/24         assigned by the VPN gateway (2.3)
DMZ, VPN gateway       172.16.0.1:4500     the tunnel endpoint (Appendix A {2b})
x-HA                   192.0.2.1:434       x-HoAs from 192.0.2.100
external access        198.51.100.0/24     care-of addresses outside (mode cvc)
=====================  ==================  ==========================================

Firewall (3.1), first match wins: the internal network reaches itself (the
VPN gateway forwards from VPN-TIAs, which are internal); the x-HA's replies
come back in, as through a stateful firewall ("would typically allow"), or,
with ``xha_from_inside=False`` (3.1 MAY), the internal network does not
reach the x-HA at all; nothing else reaches the internal network, the i-HA
included. The x-HA and the VPN gateway are reachable from everywhere.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from mipcheck.clock import VirtualClock
from mipcheck.ha.config import HAConfig, MobileNodeConfig
from mipcheck.ha.core import HomeAgent
from mipcheck.mn.config import MNConfig
from mipcheck.mn.detection import MobileNodeDetection
from mipcheck.mn.detection_behaviour import DetectionBehaviour
from mipcheck.mn.detection_config import DetectionConfig, InterfaceConfig
from mipcheck.proto.secret import Secret

from .correspondent import ECHO_PORT, EchoCorrespondent
from .home_agent import MIP_PORT, HomeAgentActor
from .mobile_node import DOWN, SimMobileNode
from .network import Address, SimNetwork
from .vpn import VpnGateway

INTERNAL_NETWORK = ipaddress.IPv4Network("10.0.0.0/8")
IHA_ADDRESS = "10.1.0.1"
INNER_HOMES = ipaddress.IPv4Network("10.1.9.0/24")
INTERNAL_ACCESS = ipaddress.IPv4Network("10.2.0.0/24")
CORRESPONDENT_ADDRESS = "10.3.0.10"
VPN_POOL = ipaddress.IPv4Network("10.8.0.0/24")
VPN_GATEWAY_ADDRESS = "172.16.0.1"
XHA_ADDRESS = "192.0.2.1"
OUTER_HOMES = ipaddress.IPv4Network("192.0.2.0/24")
EXTERNAL_ACCESS = ipaddress.IPv4Network("198.51.100.0/24")
INTERNAL, EXTERNAL = "internal", "external"  # the network names :meth:`Enterprise.move` knows
MN_PORT = 49434
_INNER_SPI, _OUTER_SPI = 0x52650000, 0x52660000


@dataclass(frozen=True)
class Identity:
    """One mobile node's two registrations: with the i-HA (``inner``) and the x-HA (``outer``)."""

    index: int
    inner: MobileNodeConfig
    outer: MobileNodeConfig


def _identity(i: int) -> Identity:
    # Simulation-only keys: public by design.
    inner = MobileNodeConfig(str(INNER_HOMES[10 + i]), _INNER_SPI + i, Secret(f"mipcheck-sim-inner-{i:02d}"))
    outer = MobileNodeConfig(str(OUTER_HOMES[100 + i]), _OUTER_SPI + i, Secret(f"mipcheck-sim-outer-{i:02d}"))
    return Identity(i, inner, outer)


class Enterprise:
    """Figure 1 of RFC 5265 on a fresh :class:`SimNetwork`; add mobile nodes and move them around."""

    def __init__(
        self,
        *,
        iha_faults: Iterable[str] = (),
        xha_faults: Iterable[str] = (),
        xha_from_inside: bool = True,
        capacity: int = 8,
        epoch: float | None = None,
    ) -> None:
        self.network = SimNetwork(VirtualClock(epoch))
        self.identities = tuple(_identity(i) for i in range(capacity))
        # 4.3: trusted subnets contain only internal addresses; the VPN-TIA pool is one of them.
        self.iha = HomeAgent(
            HAConfig(
                address=IHA_ADDRESS,
                role="i-ha",
                trusted_networks=(INTERNAL_NETWORK,),
                mobile_nodes=tuple(i.inner for i in self.identities),
            ),
            iha_faults,
        )
        self.xha = HomeAgent(
            HAConfig(
                address=XHA_ADDRESS,
                role="x-ha",
                mobile_nodes=tuple(i.outer for i in self.identities),
            ),
            xha_faults,
        )
        self.iha_actor, self.xha_actor = HomeAgentActor(self.iha), HomeAgentActor(self.xha)
        self.iha_place = self.network.attach(self.iha_actor, IHA_ADDRESS, MIP_PORT)
        self.xha_place = self.network.attach(self.xha_actor, XHA_ADDRESS, MIP_PORT)
        self.vpn = VpnGateway(self.network, VPN_GATEWAY_ADDRESS, str(VPN_POOL))
        self.correspondent = EchoCorrespondent()
        self.correspondent_place: Address = self.network.attach(self.correspondent, CORRESPONDENT_ADDRESS, ECHO_PORT)
        self._firewall(xha_from_inside)
        self.networks = {INTERNAL: INTERNAL_ACCESS, EXTERNAL: EXTERNAL_ACCESS}
        self._next_host = {name: 10 for name in self.networks}
        self.mobile_nodes: list[SimMobileNode] = []

    def _firewall(self, xha_from_inside: bool) -> None:
        """3.1: the i-HA (and the whole internal network) only from inside; the x-HA optionally not from inside."""
        internal, xha = str(INTERNAL_NETWORK), f"{XHA_ADDRESS}/32"
        self.network.allow(internal, internal)
        if xha_from_inside:
            self.network.allow(xha, internal)  # a stateful firewall lets the x-HA's replies back in (3.1)
        else:
            self.network.block(internal, xha)
        self.network.block("0.0.0.0/0", internal)

    # ---- mobile nodes
    def interface_config(
        self, identity: Identity, name: str, *, port: int = MN_PORT, lifetime: int = 1800
    ) -> InterfaceConfig:
        inner, outer = identity.inner, identity.outer
        return InterfaceConfig(
            name,
            MNConfig(
                home_address=inner.home_address,
                home_agent=IHA_ADDRESS,
                spi=inner.spi,
                secret=inner.secret,
                lifetime=lifetime,
            ),
            MNConfig(
                home_address=outer.home_address,
                home_agent=XHA_ADDRESS,
                spi=outer.spi,
                secret=outer.secret,
                lifetime=lifetime,
            ),
            port=port,
        )

    def mobile_node(
        self,
        *,
        interfaces: Iterable[str] = ("eth0",),
        behaviour: DetectionBehaviour | Iterable[str] = (),
        config: DetectionConfig | None = None,
        name: str | None = None,
    ) -> SimMobileNode:
        """A new mobile node with the next identity; ``behaviour`` a record or the names of settings to break."""
        index = len(self.mobile_nodes)
        if index >= len(self.identities):
            raise ValueError(f"the enterprise was built for {len(self.identities)} mobile nodes (capacity)")
        if not isinstance(behaviour, DetectionBehaviour):
            behaviour = DetectionBehaviour.breaking(*behaviour)
        identity = self.identities[index]
        core = MobileNodeDetection([self.interface_config(identity, i) for i in interfaces], config, behaviour)
        mn = SimMobileNode(
            self.network, core, vpn=self.vpn, correspondent=self.correspondent_place, name=name or f"mn{index}"
        )
        self.mobile_nodes.append(mn)
        return mn

    def care_of_address(self, network: str) -> str:
        """The next free address on ``network`` ("internal" or "external"), as DHCP would give it."""
        try:
            subnet = self.networks[network]
        except KeyError:
            raise KeyError(f"no network {network!r}; known: {', '.join(self.networks)}") from None
        host = self._next_host[network]
        if host >= subnet.num_addresses - 1:
            raise OSError(f"no free address left on {network} ({subnet})")
        self._next_host[network] = host + 1
        return str(subnet[host])

    def move(self, mn: SimMobileNode, interface: str, network: str) -> str | None:
        """Put ``interface`` on ``network`` with a fresh care-of address (or take it down); returns the address."""
        coa = None if network == DOWN else self.care_of_address(network)
        mn.move(interface, network, coa)
        return coa

    # ---- time
    @property
    def now(self) -> float:
        return self.network.clock.time()

    def run_for(self, seconds: float) -> None:
        self.network.run_for(seconds)

    # ---- the address plan, for judgements from the network log
    @staticmethod
    def in_enterprise(address: str) -> bool:
        return ipaddress.IPv4Address(address) in INTERNAL_NETWORK

    @staticmethod
    def on_external_access(address: str) -> bool:
        return ipaddress.IPv4Address(address) in EXTERNAL_ACCESS
