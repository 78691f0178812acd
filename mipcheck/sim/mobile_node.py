"""The reference mobile node (RFC 5265 detection core) as a party on the simulated network.

Why: the detection core is sans-IO; something has to put it at its care-of
addresses, move it between networks, answer its ``VpnRequested`` with a VPN
and carry what must go through that VPN, and send its user data where the
core's gate says. Tests, the MN suite and the ``mipcheck mn run`` runner all
need the same plumbing, so it lives here once.

Per interface the node holds, on the :class:`~mipcheck.sim.network.SimNetwork`:
``(care-of address, InterfaceConfig.port)`` for its plaintext registrations
(3.3) and ``(care-of address, data_port)`` for user data; while a VPN is up,
``(x-HoA, TUNNEL_PORT)`` for the tunnel to the :class:`~mipcheck.sim.vpn.VpnGateway`
(2.3, Appendix A {2b}, modelled transparently). What both
``datagrams_to_send`` and ``vpn_datagrams_to_send`` of the core return is
sent (the latter encapsulated to the gateway), and what arrives is fed back
(``receive_datagram``, ``receive_vpn_datagram``, ``receive_user_data``).

User data is a UDP datagram to a correspondent (the Mobile IP data tunnels
are not modelled): in plaintext from the care-of address, or from the
VPN-TIA inside the VPN, as the core decides (:meth:`send`, :meth:`traffic`).
Every event goes to :attr:`events` and to an independent
:class:`~mipcheck.mn.detection_safety.PlaintextSafetyChecker`; every data
decision to :attr:`data`; every move to :attr:`moves` (the ground truth a
judgement from the network log can be compared with).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mipcheck.mn.detection import MobileNodeDetection
from mipcheck.mn.detection_events import (
    DataDecision,
    DataReleased,
    DetectionEvent,
    Direction,
    VpnReleased,
    VpnRequested,
)
from mipcheck.mn.detection_safety import PlaintextSafetyChecker
from mipcheck.mn.detection_table import Mode

from .network import Address, SimNetwork
from .vpn import TUNNEL_PORT, VpnGateway, decapsulate, encapsulate

DATA_PORT = 50000  # where the node's user data leaves from (care-of address or VPN-TIA)
DOWN = "down"
_MIP, _DATA, _TUNNEL = "mip", "data", "tunnel"


@dataclass(frozen=True)
class Move:
    """Where an interface was put (``network`` is the caller's name for it, or ``"down"``)."""

    at: float
    interface: str
    network: str
    care_of_address: str | None


@dataclass(frozen=True)
class DataRecord:
    """One decision of the core's data gate on a user packet (``released``: it left the queue)."""

    at: float
    interface: str
    direction: Direction
    decision: DataDecision
    packet: bytes = field(repr=False)
    released: bool = False


class SimMobileNode:
    """A :class:`MobileNodeDetection` attached to ``network``, with its VPN side and its user data."""

    def __init__(
        self,
        network: SimNetwork,
        core: MobileNodeDetection,
        *,
        vpn: VpnGateway | None = None,
        correspondent: Address | None = None,
        data_port: int = DATA_PORT,
        name: str = "mn",
    ) -> None:
        for det in core.interfaces.values():
            if det.config.port in (data_port, TUNNEL_PORT):
                raise ValueError(f"interface {det.name}: port {det.config.port} is also the data or tunnel port")
        self.network = network
        self.core = core
        self.vpn = vpn
        self.correspondent = correspondent
        self.data_port = data_port
        self.name = name
        self.checker = PlaintextSafetyChecker(core.config.t_monitor)
        self.events: list[DetectionEvent] = []
        self.data: list[DataRecord] = []
        self.moves: list[Move] = []
        self._places: dict[Address, tuple[str, str]] = {}  # place -> (interface, kind)
        self._held: dict[str, list[Address]] = {}  # interface -> its places at the care-of address
        self._tunnels: dict[str, tuple[str, str]] = {}  # interface -> (x-HoA, VPN-TIA) while the VPN is up
        self._out: list[tuple[bytes, Address, Address]] = []
        self._traffic_every: float | None = None
        self._traffic_at: float | None = None
        self._traffic: tuple[tuple[str, ...], bytes] = ((), b"")

    # ---------------------------------------------------------------- what a scenario does

    def _now(self) -> float:
        return self.network.clock.time()

    def move(self, interface: str, network: str, care_of_address: str | None = None) -> None:
        """3.2.2: a connection status change: ``network`` is a name, or ``"down"``; re-attach and re-detect."""
        det = self.core.interface(interface)
        if network != DOWN and not care_of_address:
            raise ValueError(f"moving {interface} to {network!r} needs a care-of address")
        now = self._now()
        for place in self._held.pop(interface, []):
            self.network.release(place)
            del self._places[place]
        if network == DOWN:
            self.core.link_change(interface, DOWN, None, now)
        else:
            assert care_of_address is not None
            held = [
                self._attach((care_of_address, det.config.port), interface, _MIP),
                self._attach((care_of_address, self.data_port), interface, _DATA),
            ]
            self._held[interface] = held
            self.core.link_change(interface, "up", care_of_address, now)
        self.moves.append(Move(now, interface, network, care_of_address))
        self._react(now)
        self.network.wake(self)

    def send(self, interface: str, packet: bytes = b"user data", dst: Address | None = None) -> DataDecision:
        """Offer one user packet to the core's gate; send it as decided (queued ones go when released)."""
        now = self._now()
        decision = self._send(interface, packet, dst, now)
        self._react(now)
        self.network.wake(self)
        return decision

    def traffic(
        self, every: float | None, interfaces: Iterable[str] | None = None, packet: bytes = b"user data"
    ) -> None:
        """Send ``packet`` to the correspondent on each interface every ``every`` seconds (None: stop)."""
        if every is not None and every <= 0:
            raise ValueError("traffic interval must be > 0")
        if every is not None and self.correspondent is None:
            raise ValueError("traffic needs a correspondent")
        self._traffic_every = every
        self._traffic_at = None if every is None else self._now() + every
        self._traffic = (tuple(interfaces or self.core.interfaces), packet)

    # ---------------------------------------------------------------- what a judgement reads

    def mode(self, interface: str) -> Mode:
        return self.core.mode(interface)

    def location(self, interface: str) -> str:
        """The network the interface was last moved to, or ``"down"``."""
        moves = [m for m in self.moves if m.interface == interface]
        return moves[-1].network if moves else DOWN

    def tunnel_inner_address(self, interface: str) -> str | None:
        tunnel = self._tunnels.get(interface)
        return None if tunnel is None else tunnel[1]

    def decisions(self, direction: Direction = Direction.SEND) -> list[DataRecord]:
        return [r for r in self.data if r.direction is direction]

    # ---------------------------------------------------------------- plumbing

    def _attach(self, place: Address, interface: str, kind: str) -> Address:
        self.network.attach(self, *place)
        self._places[place] = (interface, kind)
        return place

    def _record(self, now: float, interface: str, direction: Direction, decision: DataDecision, packet: bytes) -> None:
        self.data.append(DataRecord(now, interface, direction, decision, packet))
        self.checker.data(interface, decision, now, what=f"user data ({direction.value})")

    def _send(self, interface: str, packet: bytes, dst: Address | None, now: float) -> DataDecision:
        dst = dst or self.correspondent
        if dst is None:
            raise ValueError("no destination and no correspondent for user data")
        decision = self.core.send_user_data(interface, packet, now)
        self._record(now, interface, Direction.SEND, decision, packet)
        self._transmit(interface, packet, dst, decision)
        return decision

    def _transmit(self, interface: str, packet: bytes, dst: Address, decision: DataDecision) -> None:
        if decision is DataDecision.PLAINTEXT:
            coa = self.core.interface(interface).care_of_address
            if coa is not None:
                self._out.append((packet, (coa, self.data_port), dst))
        elif decision is DataDecision.VIA_VPN:
            tunnel = self._tunnels.get(interface)
            if tunnel is not None and self.vpn is not None:
                outer, inner = tunnel
                self._out.append(
                    (encapsulate((inner, self.data_port), dst, packet), (outer, TUNNEL_PORT), self.vpn.place)
                )

    def _react(self, now: float) -> None:
        """Act on the core's events: answer VpnRequested, tear the VPN down, send released data."""
        while (ev := self.core.next_event()) is not None:
            self.events.append(ev)
            self.checker.observe(ev)
            if isinstance(ev, VpnRequested):
                self._vpn_up(ev, now)
            elif isinstance(ev, VpnReleased):
                self._vpn_down(ev.interface)
            elif isinstance(ev, DataReleased):
                self.data.append(DataRecord(ev.at, ev.interface, ev.direction, ev.decision, ev.packet, released=True))
                if ev.direction is Direction.SEND and self.correspondent is not None:
                    self._transmit(ev.interface, ev.packet, self.correspondent, ev.decision)

    def _vpn_up(self, ev: VpnRequested, now: float) -> None:
        """2.3: IKE from the x-HoA (instant here); the gateway hands out the VPN-TIA."""
        if self.vpn is None:
            return
        outer = ev.x_home_address
        inner = self.vpn.connect(outer, now)
        place = (outer, TUNNEL_PORT)
        if place not in self._places:
            self._attach(place, ev.interface, _TUNNEL)
        self._tunnels[ev.interface] = (outer, inner)
        self.core.vpn_up(ev.interface, inner, now)

    def _vpn_down(self, interface: str) -> None:
        tunnel = self._tunnels.pop(interface, None)
        if tunnel is None or self.vpn is None:
            return
        outer = tunnel[0]
        if all(o != outer for o, _i in self._tunnels.values()):
            self.vpn.disconnect(outer)
            self.network.release((outer, TUNNEL_PORT))
            del self._places[(outer, TUNNEL_PORT)]

    def _from_tunnel(self, data: bytes, src: Address, now: float) -> None:
        if self.vpn is None or src != self.vpn.place:
            return
        packet = decapsulate(data)
        if packet is None:
            return
        interface = next((i for i, (_o, inner) in self._tunnels.items() if inner == packet.dst[0]), None)
        if interface is None:
            return
        if packet.dst[1] == self.data_port:
            decision = self.core.receive_user_data(interface, packet.payload, now, via_vpn=True)
            self._record(now, interface, Direction.RECEIVE, decision, packet.payload)
        else:
            self.core.receive_vpn_datagram(packet.payload, packet.src, packet.dst, now)

    # ---------------------------------------------------------------- the actor interface

    def receive_datagram(self, data: bytes, src: Address, local: Address, now: float) -> None:
        interface, kind = self._places.get(local, ("", ""))
        if kind == _MIP:
            self.core.receive_datagram(data, src, local, now)
        elif kind == _DATA:
            decision = self.core.receive_user_data(interface, data, now)
            self._record(now, interface, Direction.RECEIVE, decision, data)
        elif kind == _TUNNEL:
            self._from_tunnel(data, src, now)
        self._react(now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address, Address]]:
        out, self._out = self._out, []
        out += [(d, lo, dst) for d, lo, dst in self.core.datagrams_to_send(now) if lo is not None]
        for data, local, dst in self.core.vpn_datagrams_to_send(now):
            outer = next((o for o, inner in self._tunnels.values() if local is not None and inner == local[0]), None)
            if outer is not None and local is not None and self.vpn is not None:
                out.append((encapsulate(local, dst, data), (outer, TUNNEL_PORT), self.vpn.place))
        return out

    def get_timer(self) -> float | None:
        times = [t for t in (self.core.get_timer(), self._traffic_at) if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        at = self.core.get_timer()
        if at is not None and at <= now:
            self.core.handle_timer(now)
        if self._traffic_at is not None and self._traffic_at <= now and self._traffic_every is not None:
            self._traffic_at = now + self._traffic_every
            interfaces, packet = self._traffic
            for interface in interfaces:
                self._send(interface, packet, None, now)
        self._react(now)
