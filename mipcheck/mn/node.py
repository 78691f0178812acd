"""The reference mobile node of issue 10: RFC 5265 detection with the loopback data plane, sans-IO.

Why one actor: the MN suite meets the reference node only on the wire
(docs/design/mn-loopback.md), whether the node runs over real sockets
(``mipcheck mn run``, :mod:`mipcheck.mn.runner`) or on the simulated
network (:mod:`mipcheck.sim.reference_node`); both shells hold the UDP
sockets :meth:`ReferenceMobileNode.bindings` names and pass datagrams and
time in. The node hosts :class:`~mipcheck.mn.detection.MobileNodeDetection`
and adds what the core leaves to its host:

- the VPN (2.3): static ESP SAs, "up" as soon as the core asks for it; what
  the core sends through the VPN goes IPv4(VPN-TIA -> i-HA)/UDP/msg, sealed
  in ESP from the x-HoA, in MIP Tunnel Data from the care-of address to the
  x-HA; the reverse path is unwrapped the same way. With ``host_vpn`` the
  VPN is the host's IPsec client instead (IKE, e.g. strongSwan, in the lab):
  the node asks for it with :class:`VpnRequested`, the shell brings it up and
  reports the VPN-TIA (:meth:`ReferenceMobileNode.vpn_established`), and what
  goes through the VPN is a plain datagram from the VPN-TIA for the host to
  encrypt; the host's ESP leaves from the x-HoA, which the node carries in
  x-MIP Tunnel Data (:class:`~mipcheck.mn.tun.TunMobileNode`);
- user data: ICMP echo requests for the home address that arrive tunnelled
  (plaintext from the i-HA, or through x-HA, ESP and the inner tunnel) are
  answered as the core's data gate says (3.2.2, 3.2.4, 4.1).

The node never decides by the name of the network it was moved to: it
detects (3.2.3); the name is only logged.
"""

from __future__ import annotations

import ipaddress
from collections import Counter, deque
from dataclasses import dataclass

from mipcheck.errors import ConfigError
from mipcheck.proto import numbers as n
from mipcheck.proto.agent import build_solicitation, parse_advertisement_packet
from mipcheck.proto.ip import PROTO_IPIP, build_ipv4, parse_ipv4

from . import dataplane as dp
from .config import MNConfig
from .core import Denied, Deregistered, Registered
from .detection import MobileNodeDetection
from .detection_behaviour import DetectionBehaviour
from .detection_config import DetectionConfig, ForeignAgentLink, InterfaceConfig
from .detection_events import ClientEvent, DataDecision, DataReleased, DetectionEvent, Direction, VpnRequested
from .detection_table import Mode
from .esp import EspTunnel
from .faults import TABLE as FAULT_TABLE
from .profile import DOWN, NETWORKS, HomeAgentPeer, MobileNodeProfile
from .robustness import TABLE as ROBUSTNESS_TABLE
from .robustness import Robustness, check_accepted_reply, check_tunnel_data

Address = tuple[str, int]
#: First retransmission timeout of every registration: loopback answers in well under a millisecond,
#: and RFC 5944 3.6.3 doubles it each time (0.5, 1, 2, 4 s: a request is given up after 7.5 s).
FIRST_RETRANSMISSION = 0.5
MAX_EVENTS = 10_000  # events kept for next_event() when nobody reads them
PLAINTEXT, VIA_VPN = DataDecision.PLAINTEXT.value, DataDecision.VIA_VPN.value
X_MIP = "x-mip"  # path of the x-HoA's own packets (the host VPN's IKE and ESP) in x-MIP Tunnel Data
#: 2.3: the modes in which the x-HA binding carries the x-HoA's packets (the VPN is set up or up).
X_MIP_MODES = frozenset({Mode.VPN_SETUP, Mode.INNER_REGISTERING, Mode.OUTSIDE})


@dataclass(frozen=True)
class Moved(DetectionEvent):
    """The shell moved an interface; ``network`` is a name for logs only (the node detects, 3.2.3)."""

    network: str
    care_of_address: str | None


@dataclass(frozen=True)
class AgentHeard(DetectionEvent):
    """RFC 5944 2.4: an Agent Advertisement on ``interface``; ``used``: the interface attached through it."""

    agent: str
    care_of_addresses: tuple[str, ...]
    flags: str
    used: bool
    why_not: str = ""


@dataclass(frozen=True)
class DataPlane(DetectionEvent):
    """One thing the data plane did with a packet, for logs and counters.

    ``kind``: echo-request-in, echo-reply-in, echo-reply-out, echo-request-out, queued, dropped, ignored;
    ``path``: plaintext or via-vpn where one applies.
    """

    kind: str
    path: str | None = None
    detail: str = ""
    identifier: int | None = None
    sequence: int | None = None


def _registration_config(peer: HomeAgentPeer, lifetime: int, *, udp: bool = True) -> MNConfig:
    """Every request: 'D' (co-located), UDP Tunnel Request with 'F' before the authenticator (RFC 3519 3.1).

    ``udp=False`` (``mn run --encapsulation ipip``): no UDP Tunnel Request: the home agent tunnels IP-in-IP.
    """
    return MNConfig(
        home_address=peer.home_address,
        home_agent=peer.address,
        ha_port=peer.port,
        spi=peer.sa.spi,
        secret=peer.sa.secret,
        algorithm=peer.sa.algorithm,
        udp_tunnel=udp,
        force_udp=udp,
        lifetime=lifetime,
        timeout=FIRST_RETRANSMISSION,
    )


class ReferenceMobileNode:
    """A sans-IO mobile node: ``move`` it, give it datagrams and time, send what it returns."""

    def __init__(
        self,
        profile: MobileNodeProfile,
        *,
        behaviour: DetectionBehaviour | None = None,
        data_every: float | None = None,
        robustness: Robustness | None = None,
        host_vpn: bool = False,
        ipip: bool = False,
        minimal: bool = False,
    ) -> None:
        """``robustness``: planted bugs for fuzz campaigns (:mod:`mipcheck.mn.robustness`); a trigger raises
        :class:`~mipcheck.mn.robustness.RobustnessFailure` out of the call that received it.

        ``host_vpn``: the VPN is the host's IPsec client, not the profile's static SAs (see the module text);
        the shell acts on :class:`VpnRequested` and calls :meth:`vpn_established`.

        ``ipip``: register co-located without a UDP Tunnel Request, so the home agents tunnel IP-in-IP (RFC 2003);
        the node's tunnels are IP-in-IP too: :meth:`ipip_to_send` out, :meth:`receive_ipip` in (a raw socket).
        ``minimal``: through a foreign agent that offers it, ask for minimal encapsulation ('M', RFC 2004)
        between the home agent and the agent (the node's own tunnels are unchanged)."""
        if data_every is not None and not data_every > 0:
            raise ConfigError("data_every", f"expected seconds > 0, got {data_every!r}")
        self.profile = profile
        self.behaviour = behaviour or DetectionBehaviour()
        self.robustness = robustness or Robustness()
        self.port = profile.port
        interfaces = [
            InterfaceConfig(
                name,
                _registration_config(profile.i_ha, profile.lifetime, udp=not ipip),
                _registration_config(profile.x_ha, profile.lifetime, udp=not ipip),
                port=profile.port,
            )
            for name in profile.interfaces
        ]
        settings = DetectionConfig(
            t_monitor=profile.t_monitor,
            rereg_grace=profile.rereg_grace,
            detection_period=profile.detection_period,
            when_gated=profile.when_gated,
        )
        self.core = MobileNodeDetection(interfaces, settings, self.behaviour)
        # 2.3: the VPN runs from the x-HoA; static SAs (no IKE on loopback).
        self.esp = EspTunnel(profile.vpn, profile.x_ha.home_address)
        self.host_vpn = host_vpn
        self.ipip = ipip
        self.minimal = minimal
        self._ipip_out: list[tuple[bytes, str, str]] = []  # (inner packet, outer source, outer destination)
        self.data_every = data_every
        self._data_at: float | None = None
        self._echo_sequence = 0
        self._out: list[tuple[bytes, Address, Address]] = []
        self._events: deque[DetectionEvent] = deque(maxlen=MAX_EVENTS)
        self._networks: dict[str, str] = dict.fromkeys(profile.interfaces, DOWN)
        self._counters: dict[str, Counter[str]] = {name: Counter() for name in profile.interfaces}
        #: interface -> (network, our source address on the link): moved onto a foreign agent's link, waiting for
        #: its advertisement (RFC 5944 2.4); the agent's care-of address becomes the interface's
        self._awaiting_agent: dict[str, tuple[str, str, bool]] = {}
        self._link_out: list[tuple[str, bytes]] = []  # (interface, IPv4 packet) for the shell to send on the link

    # ---------------------------------------------------------------- what a shell does

    def resolve(self, interface: str, network: str, care_of_address: str | None = None) -> str | None:
        """The care-of address a move would give ``interface`` (None for down); ValueError on bad input."""
        if interface not in self.profile.interfaces:
            raise ValueError(f"no interface {interface!r} (the profile has {', '.join(self.profile.interfaces)})")
        if network not in (*NETWORKS, DOWN):
            raise ValueError(f"network {network!r} is not one of {', '.join((*NETWORKS, DOWN))}")
        if network == DOWN:
            if care_of_address:
                raise ValueError("an interface that goes down has no care-of address")
            return None
        if care_of_address:
            try:
                coa = str(ipaddress.IPv4Address(care_of_address))
            except (ipaddress.AddressValueError, ValueError):
                raise ValueError(f"care-of address {care_of_address!r} is not an IPv4 address") from None
        else:
            try:
                coa = self.profile.care_of_address(interface, network)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
            assert coa is not None
        for name, det in self.core.interfaces.items():
            if name != interface and det.care_of_address == coa:
                raise ValueError(f"{coa} is already the care-of address of {name}")
        return coa

    def move(
        self,
        interface: str,
        network: str,
        care_of_address: str | None,
        now: float,
        foreign_agent: ForeignAgentLink | None = None,
    ) -> None:
        """3.2.2: a connection status change on ``interface``; the default care-of address comes from the profile.

        ``foreign_agent``: the new link is a foreign agent's and ``care_of_address`` the agent's (RFC 5944 3.7).
        """
        coa = self.resolve(interface, network, care_of_address)
        self._awaiting_agent.pop(interface, None)
        self._networks[interface] = network
        self._emit(Moved(interface, now, network, coa))
        self.core.link_change(interface, DOWN if coa is None else "up", coa, now, foreign_agent)
        if self.data_every is not None and self._data_at is None:
            self._data_at = now + self.data_every
        self._react(now)

    def move_to_agent(
        self, interface: str, network: str, source: str, now: float, *, reverse_tunnel: bool = True
    ) -> None:
        """3.2.2: ``interface`` is now on a link where a foreign agent is expected; ``source`` is our address there.

        Nothing is registered until the agent's advertisement arrives (:meth:`agent_advertisement`, RFC 5944
        2.4); an Agent Solicitation goes out at once (:meth:`link_packets`). ``reverse_tunnel``: ask for 'T'
        (RFC 3024) when the agent offers it.
        """
        self.resolve(interface, network, source)  # checks the names and the address
        if self.core.interface(interface).mode is not Mode.DOWN:
            self.move(interface, DOWN, None, now)  # 3.2.2: the old attachment is gone: stop relaying at once
        self._networks[interface] = network
        self._awaiting_agent[interface] = (network, source, reverse_tunnel)
        self._link_out.append((interface, build_solicitation(source)))

    def agent_advertisement(self, interface: str, packet: bytes, now: float) -> bool:
        """An IPv4 packet heard on ``interface``: an Agent Advertisement attaches a waiting interface through it.

        Returns whether the interface attached. Not used (an event says why): anything that is no advertisement
        with a Mobility Agent Advertisement extension of a foreign agent ('F') with a care-of address, a busy
        agent ('B'), an interface that waits for no agent.
        """
        self._catch_up(now)
        parsed = parse_advertisement_packet(packet)
        if parsed is None or interface not in self.profile.interfaces:
            return False
        source, _dst, _ttl, adv = parsed
        mob = adv.mobility
        flags = "".join(f for f in "RBHFMGrTUXI" if mob is not None and mob.has(f))
        coas = mob.care_of_addresses if mob is not None else ()
        waiting = self._awaiting_agent.get(interface)
        why = (
            "no Mobility Agent Advertisement extension"
            if mob is None
            else "not a foreign agent (no 'F')"
            if not mob.has("F")
            else "no care-of address"
            if not coas
            else "busy ('B')"
            if mob.has("B")
            else "the interface waits for no agent"
            if waiting is None
            else ""
        )
        self._emit(AgentHeard(interface, now, source, coas, flags, not why, why))
        if why or waiting is None or mob is None:
            return False
        network, ours, reverse = waiting
        link = ForeignAgentLink(
            source, ours, reverse_tunnel=reverse and mob.has("T"), minimal=self.minimal and mob.has("M")
        )
        self.move(interface, network, coas[0], now, link)  # 2.1.1: the first advertised care-of address
        return True

    def link_in(self, interface: str, packet: bytes, now: float) -> None:
        """An IPv4 packet for a home address that arrived on ``interface``'s link: a foreign agent delivered it.

        User data for the home address passes the data gate first (3.2.4, as through any tunnel); the shell
        must keep the host from delivering such packets itself (docs/lab.md).
        """
        self._catch_up(now)
        det = self.core.interfaces.get(interface)
        ip = parse_ipv4(packet)
        if det is None or ip is None:
            return
        if det.foreign_agent is None:
            self._record(interface, now, "dropped", detail="from the link, and no foreign agent delivers here")
        elif ip.dst == self.profile.home_address:
            self._user_data_in(interface, packet, now, via_vpn=False)
        elif ip.dst == self.profile.x_ha.home_address and self.host_vpn:
            self._x_home_address_in(interface, packet, now)  # the host VPN's IKE and ESP: not user data
        elif ip.dst == self.profile.x_ha.home_address:
            opened = self.esp.open(packet)  # the static VPN's ESP, delivered by the x-FA (fvc)
            if opened is not None:
                self._from_vpn(interface, opened, now)
            else:
                self._record(interface, now, "dropped", detail="for the x-HoA on the link, and not ESP for us")
        self._react(now)

    def foreign_agent_interfaces(self) -> dict[str, str]:
        """interface -> our address on its link, for every interface attached through a foreign agent now."""
        return {
            name: det.local_address
            for name, det in self.core.interfaces.items()
            if det.foreign_agent and det.local_address
        }

    def link_packets(self) -> list[tuple[str, bytes]]:
        """(interface, IPv4 packet) to send on an interface's link (Agent Solicitations, user data through a
        foreign agent), since the last call."""
        out, self._link_out = self._link_out, []
        return out

    def awaiting_agent(self) -> tuple[str, ...]:
        """The interfaces that wait for a foreign agent's advertisement."""
        return tuple(self._awaiting_agent)

    def bindings(self) -> dict[str, Address]:
        """interface -> (care-of address, port): the UDP sockets a shell must hold now.

        With ``host_vpn`` also ``"<interface>/vpn"`` -> (VPN-TIA, port) once the VPN is up: the i-MIP socket,
        whose datagrams the host's IPsec client encrypts.
        """
        places = {
            name: (det.local_address, self.port)
            for name, det in self.core.interfaces.items()
            if det.local_address is not None
        }
        if self.host_vpn:
            for name, det in self.core.interfaces.items():
                if det.care_of_address is not None and det.tunnel_inner_address is not None:
                    places[f"{name}/vpn"] = (det.tunnel_inner_address, self.port)
        return places

    def vpn_established(self, interface: str, inner_address: str, now: float) -> bool:
        """``host_vpn``: the host's IPsec client is up with ``inner_address`` (the VPN-TIA) for ``interface``.

        False when the core no longer waits for a VPN there (it moved on); the shell then leaves it alone.
        """
        self._catch_up(now)
        ok = self.core.vpn_up(interface, inner_address, now)
        self._react(now)
        return ok

    def vpn_lost(self, interface: str, now: float) -> bool:
        """``host_vpn``: the host's IPsec client went down; the core asks for it again (:class:`VpnRequested`)."""
        self._catch_up(now)
        ok = self.core.vpn_down(interface, now)
        self._react(now)
        return ok

    def status(self, now: float) -> dict[str, object]:
        """JSON-able live state (never a key)."""
        t_monitor = self.profile.t_monitor
        interfaces = {}
        for name, det in self.core.interfaces.items():
            gate = det.gate(now)
            interfaces[name] = {
                "network": self._networks[name],
                "care_of_address": det.care_of_address,
                "foreign_agent": det.foreign_agent.address if det.foreign_agent is not None else None,
                "awaiting_agent": name in self._awaiting_agent,
                "mode": det.mode.value,
                "data": gate.value if gate is not None else "gated",
                "vpn_tia": det.tunnel_inner_address,
                "trusted_until": None if det.last_trusted_at is None else det.last_trusted_at + t_monitor,
                "counters": dict(sorted(self._counters[name].items())),
            }
        settings = set(self.behaviour.broken)
        planted = set(self.robustness.planted)
        return {
            "at": now,
            "home_address": self.profile.home_address,
            "port": self.port,
            "t_monitor": t_monitor,
            "faults": [f.name for f in FAULT_TABLE if f.setting in settings]
            + [f.name for f in ROBUSTNESS_TABLE if f.setting in planted],
            "interfaces": interfaces,
            "esp": {"sealed": self.esp.sealed, "opened": self.esp.opened, "rejected": self.esp.rejected},
        }

    # ---------------------------------------------------------------- the actor interface

    def receive_datagram(self, data: bytes, src: Address, local: Address, now: float) -> None:
        self._catch_up(now)
        interface = next((name for name, place in self.bindings().items() if place == tuple(local)), None)
        if interface is None:
            return
        src = (src[0], int(src[1]))
        if interface.endswith("/vpn"):
            self._vpn_datagram(interface.removesuffix("/vpn"), src, (local[0], int(local[1])), data, now)
        elif data[:1] == bytes((n.MSG_RRP,)):
            self.core.receive_datagram(data, src, local, now)
        elif data[:1] == bytes((n.MSG_TUNNEL_DATA,)):
            check_tunnel_data(self.robustness, data)
            self._tunnelled(interface, data, src, now)
        else:
            self._record(interface, now, "ignored", detail=f"message type {data[:1].hex() or 'none'} from {src}")
        self._react(now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address, Address]]:
        """``(data, local, dst)``; ``local`` is always one of :meth:`bindings`."""
        out, self._out = self._out, []
        for det in self.core.interfaces.values():
            coa = det.care_of_address
            out += [(d, lo, dst) for d, lo, dst in det.datagrams(now, via_vpn=False) if lo is not None]
            for data, local, dst in det.datagrams(now, via_vpn=True):
                if coa is not None and local is not None:
                    if self.host_vpn:
                        out.append((data, local, dst))
                    else:
                        self._through_vpn(coa, local, dst, data)
        out, self._out = out + self._out, []
        return out

    def ipip_to_send(self) -> list[tuple[bytes, str, str]]:
        """``ipip``: (inner packet, outer source, outer destination) for the shell's raw IP-in-IP socket."""
        out, self._ipip_out = self._ipip_out, []
        return out

    def receive_ipip(self, packet: bytes, now: float) -> None:
        """``ipip``: an IP-in-IP packet (outer header included) that arrived for one of our addresses."""
        self._catch_up(now)
        outer = parse_ipv4(packet)
        if outer is None or outer.protocol != PROTO_IPIP or parse_ipv4(outer.payload) is None:
            return
        for name, det in self.core.interfaces.items():
            if outer.dst == det.tunnel_inner_address and outer.src == self.profile.i_ha.address:
                self._user_data_in(name, outer.payload, now, via_vpn=True)  # i-MIP through the host's VPN
                break
            if outer.dst == det.care_of_address and det.foreign_agent is None:
                ha = self.profile.i_ha.place if outer.src == self.profile.i_ha.address else None
                ha = self.profile.x_ha.place if outer.src == self.profile.x_ha.address else ha
                self._tunnelled_packet(name, outer.payload, ha or (outer.src, 0), now)
                break
        self._react(now)

    def _tunnel_out(self, packet: bytes, source: str, home_agent: Address) -> None:
        """MIP tunnel from ``source`` to a home agent: Tunnel Data (RFC 3519), or IP-in-IP with ``ipip``."""
        if self.ipip:
            self._ipip_out.append((packet, source, home_agent[0]))
        else:
            self._out.append((dp.tunnel(packet), (source, self.port), home_agent))

    def next_event(self) -> DetectionEvent | None:
        """Detection events and data-plane records (:class:`Moved`, :class:`DataPlane`), oldest first."""
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        times = [t for t in (self.core.get_timer(), self._data_at) if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        self._catch_up(now)
        if self._data_at is not None and self._data_at <= now and self.data_every is not None:
            self._data_at = now + self.data_every
            for name, det in self.core.interfaces.items():
                if det.care_of_address is not None:
                    self._originate(name, now)
        self._react(now)

    # ---------------------------------------------------------------- plumbing

    def _emit(self, event: DetectionEvent) -> None:
        self._events.append(event)

    def _record(self, interface: str, now: float, kind: str, path: str | None = None, **more: object) -> None:
        self._counters[interface][f"{kind}/{path}" if path else kind] += 1
        self._emit(DataPlane(interface, now, kind, path, **more))  # type: ignore[arg-type]

    def _catch_up(self, now: float) -> None:
        at = self.core.get_timer()
        if at is not None and at <= now:
            self.core.handle_timer(now)

    def _react(self, now: float) -> None:
        """Act on the core's events: the VPN it asks for, the data its gate releases."""
        while (ev := self.core.next_event()) is not None:
            self._emit(ev)
            if isinstance(ev, ClientEvent) and self.robustness.planted:
                self._accepted_reply(ev)
            if isinstance(ev, VpnRequested) and not self.host_vpn:
                # 2.3: IKE from the x-HoA; static SAs, so the VPN is up at once with the profile's VPN-TIA.
                # (host_vpn: the shell brings the host's client up and calls vpn_established.)
                self.core.vpn_up(ev.interface, self.profile.vpn.inner_address, now)
            elif isinstance(ev, DataReleased):
                if ev.direction is Direction.RECEIVE:
                    self._deliver(ev.interface, ev.packet, ev.decision, now)
                else:
                    self._transmit(ev.interface, ev.packet, ev.decision, now)

    def _accepted_reply(self, ev: ClientEvent) -> None:
        """A reply a registration client acted on (authentic: past the MN-HA and Identification checks)."""
        inner = ev.event
        if isinstance(inner, Registered | Deregistered) or (isinstance(inner, Denied) and inner.authenticated):
            check_accepted_reply(self.robustness, inner.reply)

    def _through_vpn(self, coa: str, inner_src: Address, inner_dst: Address, payload: bytes) -> None:
        """x-MIP(ESP(i-MIP)): IPv4(TIA -> i-HA)/UDP/payload, sealed, tunnelled from the CoA to the x-HA."""
        self._seal_out(coa, dp.udp_packet(inner_src, inner_dst, payload))

    def _seal_out(self, coa: str, inner: bytes) -> None:
        sealed = self.esp.seal(inner)
        for name, det in self.core.interfaces.items():
            if det.care_of_address == coa and det.foreign_agent is not None:
                self._link_out.append((name, sealed))  # through the x-FA (fvc): from the x-HoA on its link
                return
        self._tunnel_out(sealed, coa, self.profile.x_ha.place)

    def _tunnelled(self, interface: str, data: bytes, src: Address, now: float) -> None:
        inner = dp.untunnel(data)
        if inner is None:
            self._record(interface, now, "ignored", detail="Tunnel Data without an IPv4 packet")
            return
        self._tunnelled_packet(interface, inner, src, now)

    def _tunnelled_packet(self, interface: str, inner: bytes, src: Address, now: float) -> None:
        """What a home agent tunnelled to the care-of address (Tunnel Data or IP-in-IP), by who sent it."""
        if src == self.profile.x_ha.place:
            if self.host_vpn:
                self._x_home_address_in(interface, inner, now)
                return
            opened = self.esp.open(inner)
            if opened is not None:
                self._from_vpn(interface, opened, now)
                return
        if src == self.profile.i_ha.place:
            self._user_data_in(interface, inner, now, via_vpn=False)
        else:
            self._record(interface, now, "dropped", detail=f"tunnelled from {src[0]}:{src[1]}: not ESP for us")

    def _x_home_address_in(self, interface: str, packet: bytes, now: float) -> None:
        """``host_vpn``: a packet the x-HA tunnelled to the x-HoA (the host VPN's IKE or ESP); no stack here."""
        self._record(interface, now, "dropped", X_MIP, detail="a packet for the x-HoA, and no IP stack to give it to")

    def _from_vpn(self, interface: str, packet: bytes, now: float) -> None:
        """What came out of ESP: i-MIP from the i-HA to the VPN-TIA (2.3): UDP, or IP-in-IP with ``ipip``."""
        ip = parse_ipv4(packet)
        tia = self.core.interface(interface).tunnel_inner_address
        if self.ipip and ip is not None and ip.protocol == PROTO_IPIP:
            if ip.src == self.profile.i_ha.address and ip.dst == tia:
                self._user_data_in(interface, ip.payload, now, via_vpn=True)
            else:
                self._record(interface, now, "dropped", VIA_VPN, detail="IP-in-IP not from the i-HA to the VPN-TIA")
            return
        parsed = dp.parse_udp_packet(packet)
        if parsed is None:
            self._record(interface, now, "dropped", VIA_VPN, detail="not i-MIP from the i-HA to the VPN-TIA")
            return
        self._vpn_datagram(interface, *parsed, now)

    def _vpn_datagram(self, interface: str, src: Address, local: Address, payload: bytes, now: float) -> None:
        """i-MIP that came through the VPN (our ESP, or the host's client to the VPN-TIA socket)."""
        det = self.core.interface(interface)
        tia = det.tunnel_inner_address
        if tia is None or tuple(local) != (tia, self.port) or tuple(src) != self.profile.i_ha.place:
            self._record(interface, now, "dropped", VIA_VPN, detail="not i-MIP from the i-HA to the VPN-TIA")
            return
        if payload[:1] == bytes((n.MSG_RRP,)):
            det.receive(payload, src, local, now, via_vpn=True)
            return
        inner = dp.untunnel(payload)
        if inner is None:
            self._record(interface, now, "ignored", VIA_VPN, detail="i-MIP payload is no reply and no Tunnel Data")
            return
        self._user_data_in(interface, inner, now, via_vpn=True)

    def _user_data_in(self, interface: str, packet: bytes, now: float, *, via_vpn: bool) -> None:
        path = VIA_VPN if via_vpn else PLAINTEXT
        echo = dp.parse_echo(packet)
        if echo is None or echo.dst != self.profile.home_address:
            self._record(interface, now, "dropped", path, detail="not an ICMP echo for the home address")
            return
        kind = "echo-request-in" if echo.request else "echo-reply-in"
        self._record(interface, now, kind, path, identifier=echo.identifier, sequence=echo.sequence)
        # 3.2.4, 4.1: the gate decides whether it may be delivered at all.
        decision = self.core.receive_user_data(interface, packet, now, via_vpn=via_vpn)
        self._deliver(interface, packet, decision, now)

    def _deliver(self, interface: str, packet: bytes, decision: DataDecision, now: float) -> None:
        echo = dp.parse_echo(packet)
        if echo is None:
            return
        if decision is DataDecision.QUEUED or decision is DataDecision.DROPPED:
            kind = "queued" if decision is DataDecision.QUEUED else "dropped"
            self._record(interface, now, kind, detail="received while the data gate is shut")
            return
        if echo.request:
            reply = dp.echo_reply(echo)
            self._transmit(interface, reply, self.core.send_user_data(interface, reply, now), now)

    def _originate(self, interface: str, now: float) -> None:
        self._echo_sequence = (self._echo_sequence + 1) & 0xFFFF
        request = dp.echo_request(
            self.profile.home_address, self.profile.correspondent, 0x5265, self._echo_sequence, b"mipcheck mn"
        )
        self._transmit(interface, request, self.core.send_user_data(interface, request, now), now)

    def _transmit(self, interface: str, packet: bytes, decision: DataDecision, now: float) -> None:
        """Send user data the way the gate said: TD to the i-HA, or through the VPN (or not at all)."""
        det = self.core.interface(interface)
        echo = dp.parse_echo(packet)
        kind = "echo-request-out" if echo is not None and echo.request else "echo-reply-out"
        ids = {"identifier": echo.identifier, "sequence": echo.sequence} if echo is not None else {}
        coa, tia = det.care_of_address, det.tunnel_inner_address
        if decision is DataDecision.PLAINTEXT and det.foreign_agent is not None:
            # the foreign agent is the tunnel's end (RFC 5944 3.7): user data goes on its link as it is
            self._link_out.append((interface, packet))
            self._record(interface, now, kind, PLAINTEXT, **ids)
        elif decision is DataDecision.PLAINTEXT and coa is not None:
            self._tunnel_out(packet, coa, self.profile.i_ha.place)
            self._record(interface, now, kind, PLAINTEXT, **ids)
        elif decision is DataDecision.VIA_VPN and coa is not None and tia is not None:
            if self.host_vpn:  # from the VPN-TIA: the host's IPsec client encrypts it
                self._tunnel_out(packet, tia, self.profile.i_ha.place)
            elif self.ipip:
                self._seal_out(coa, build_ipv4(tia, self.profile.i_ha.address, PROTO_IPIP, packet))
            else:
                self._through_vpn(coa, (tia, self.port), self.profile.i_ha.place, dp.tunnel(packet))
            self._record(interface, now, kind, VIA_VPN, **ids)
        elif decision is DataDecision.QUEUED:
            self._record(interface, now, "queued", detail=f"{kind} waits for the data gate")
        else:
            self._record(interface, now, "dropped", detail=f"{kind}: the data gate is shut")
