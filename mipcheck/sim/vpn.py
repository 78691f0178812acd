"""The enterprise VPN gateway of RFC 5265 as an actor on the simulated network (section 2.3, Appendix A).

Why: in access mode cvc the inner registration and all enterprise traffic of
an outside mobile node must travel inside the VPN (2.3: the VPN layer is
never skipped). The simulation models the VPN transparently: no IKE, no
ESP bytes. A tunnelled datagram is the inner IPv4/UDP packet (packet {2c}
of Appendix A: VPN-TIA -> i-HA, UDP to 434) carried in a UDP datagram
between the mobile node's x-HoA and the gateway's tunnel port (where {2b}
has ESP); the x-MIP encapsulation under it ({2a}) is not modelled.

So the network log itself says what was inside the VPN: exactly the
datagrams to or from :attr:`VpnGateway.place` (:meth:`VpnGateway.in_vpn`),
and :func:`decapsulate` shows what they carried. The gateway forwards only
for a tunnel that is up (:meth:`connect`, the answer to the mobile node's
``VpnRequested``), only packets whose inner source is that tunnel's VPN-TIA
(2.3: "IPsec selectors ... restrict the client address to be VPN-TIA"), and
sends them into the enterprise from the VPN-TIA; replies to a VPN-TIA go
back through the tunnel. Everything it decides is in :attr:`carried`.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from .network import Address, QueueActor, SimNetwork, Transmission

TUNNEL_PORT = 4500  # RFC 3948: UDP-encapsulated ESP; here the transparent tunnel
_IP = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")
_UDP_PROTOCOL = 17


# ---------------------------------------------------------------- the tunnel's payload


@dataclass(frozen=True)
class InnerPacket:
    """The packet inside the tunnel: an IPv4/UDP datagram from ``src`` to ``dst``."""

    src: Address
    dst: Address
    payload: bytes


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def encapsulate(src: Address, dst: Address, payload: bytes) -> bytes:
    """IPv4 + UDP headers + payload: what ESP would protect (UDP checksum 0, allowed over IPv4)."""
    length = _IP.size + _UDP.size + len(payload)
    s, d = ipaddress.IPv4Address(src[0]).packed, ipaddress.IPv4Address(dst[0]).packed
    header = _IP.pack(0x45, 0, length, 0, 0, 64, _UDP_PROTOCOL, 0, s, d)
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + _UDP.pack(src[1], dst[1], _UDP.size + len(payload), 0) + payload


def decapsulate(data: bytes) -> InnerPacket | None:
    """The inner packet of a tunnelled datagram, or None when it is not one."""
    if len(data) < _IP.size + _UDP.size:
        return None
    vihl, _tos, length, _id, _frag, _ttl, proto, _sum, s, d = _IP.unpack_from(data)
    if vihl != 0x45 or proto != _UDP_PROTOCOL or length != len(data) or _checksum(data[: _IP.size]) != 0:
        return None
    sport, dport, _ulen, _usum = _UDP.unpack_from(data, _IP.size)
    src = (str(ipaddress.IPv4Address(s)), sport)
    dst = (str(ipaddress.IPv4Address(d)), dport)
    return InnerPacket(src, dst, data[_IP.size + _UDP.size :])


# ---------------------------------------------------------------- the gateway


@dataclass(frozen=True)
class Carried:
    """One decision of the gateway: ``inbound`` is from a mobile node into the enterprise."""

    at: float
    outer: str  # the mobile node's tunnel address (its x-HoA)
    inbound: bool
    packet: InnerPacket
    fate: str  # "forwarded" or "dropped: why"


@dataclass
class Tunnel:
    outer: str  # x-HoA: where IKE came from (2.3)
    inner: str  # VPN-TIA
    since: float


class VpnGateway(QueueActor):
    """The VPN gateway in the DMZ: tunnels by x-HoA, VPN-TIAs from ``pool``, attached at ``address``."""

    def __init__(self, network: SimNetwork, address: str, pool: str, *, port: int = TUNNEL_PORT) -> None:
        super().__init__()
        self.network = network
        self.pool = ipaddress.IPv4Network(pool)
        self.place = network.attach(self, address, port)
        self.tunnels: dict[str, Tunnel] = {}  # by outer address
        self.carried: list[Carried] = []
        self._by_inner: dict[str, Tunnel] = {}
        self._held: dict[str, set[Address]] = {}  # VPN-TIA -> places held for replies

    # ---- the VPN's life (IKE is not simulated: up at once)
    def connect(self, outer: str, now: float) -> str:
        """Set the VPN up for a mobile node at ``outer`` (its x-HoA); returns its VPN-TIA."""
        tunnel = self.tunnels.get(outer)
        if tunnel is None:
            inner = next((str(h) for h in self.pool.hosts() if str(h) not in self._by_inner), None)
            if inner is None:
                raise OSError(f"VPN address pool {self.pool} exhausted")
            tunnel = self.tunnels[outer] = self._by_inner[inner] = Tunnel(outer, inner, now)
        return tunnel.inner

    def disconnect(self, outer: str) -> None:
        tunnel = self.tunnels.pop(outer, None)
        if tunnel is None:
            return
        del self._by_inner[tunnel.inner]
        for place in self._held.pop(tunnel.inner, set()):
            self.network.release(place)

    def is_up(self, outer: str) -> bool:
        return outer in self.tunnels

    # ---- reading the network log
    def in_vpn(self, t: Transmission) -> bool:
        """Whether a datagram on the network log travelled inside the VPN (to or from the tunnel port)."""
        return self.place in (t.src, t.dst)

    # ---- the actor interface
    def receive_datagram(self, data: bytes, src: Address, local: Address, now: float) -> None:
        if local == self.place:
            self._from_tunnel(data, src, now)
        else:
            self._from_enterprise(data, src, local, now)

    def _from_tunnel(self, data: bytes, src: Address, now: float) -> None:
        packet = decapsulate(data)
        if packet is None:
            return  # not a tunnelled datagram: nothing a VPN gateway would take
        tunnel = self.tunnels.get(src[0])
        if tunnel is None:
            self.carried.append(Carried(now, src[0], True, packet, "dropped: no VPN from this address"))
            return
        if packet.src[0] != tunnel.inner:
            self.carried.append(
                Carried(now, src[0], True, packet, f"dropped: inner source is not the VPN-TIA {tunnel.inner}")
            )
            return
        held = self._held.setdefault(tunnel.inner, set())
        if packet.src not in held:
            self.network.attach(self, *packet.src)  # the VPN-TIA side, where the enterprise answers
            held.add(packet.src)
        self.carried.append(Carried(now, src[0], True, packet, "forwarded"))
        self._out.append((packet.payload, packet.src, packet.dst))  # {2c}: from the VPN-TIA

    def _from_enterprise(self, data: bytes, src: Address, local: Address, now: float) -> None:
        tunnel = self._by_inner.get(local[0])
        packet = InnerPacket(src, local, data)
        if tunnel is None:
            self.carried.append(Carried(now, "", False, packet, "dropped: the VPN is down"))
            return
        self.carried.append(Carried(now, tunnel.outer, False, packet, "forwarded"))
        self._out.append((encapsulate(src, local, data), self.place, (tunnel.outer, TUNNEL_PORT)))
