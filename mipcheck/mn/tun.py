"""The reference mobile node's data plane into a real IP stack: a TUN device (``mipcheck mn run --tun NAME``).

Why: without a TUN device the node's only user data is ICMP echo it makes and
answers itself (docs/design/mn-loopback.md). With one, the node's home
address lives on the TUN interface and the host's own applications are the
user data (RFC 5265 3.2.2, 3.2.4, 2.3: the data gate decides, as for echo):

- a packet the stack writes into the TUN (source = the home address) goes
  through the detection core's data gate (``send_user_data``) and out of the
  current tunnel: MIP Tunnel Data to the i-HA from (care-of address, port), or
  through the VPN when the node is outside;
- user data that arrives through a tunnel for the home address and that the
  gate lets through (``receive_user_data``, or released later from the queue)
  is written to the TUN; the node no longer answers echo requests itself;
- with ``host_vpn`` (the VPN is the host's IPsec client, ``mn run --host-vpn``)
  the x-HoA lives on the TUN too: what the host sends from it (its VPN
  client's IKE and ESP, 2.3) goes in MIP Tunnel Data to the x-HA while the
  x-HA binding stands, and what the x-HA tunnels to the x-HoA is written to
  the TUN for the host's client.

:class:`TunMobileNode` stays sans-IO (``from_stack`` in, ``packets_for_stack``
out); :class:`TunDevice` is the shell's thin wrapper around ``/dev/net/tun``
(the same few lines as :mod:`mipcheck.ha.tun`'s: the home agent and the
mobile node never import each other).
"""

from __future__ import annotations

from mipcheck.errors import MipcheckError
from mipcheck.proto.ip import parse_ipv4
from mipcheck.tundev import TunDevice

__all__ = ["TunDevice", "TunMobileNode", "bring_up"]

from . import dataplane as dp
from .detection_events import DataDecision
from .node import PLAINTEXT, VIA_VPN, X_MIP, X_MIP_MODES, ReferenceMobileNode

MAX_PACKET = 65535
MAX_FOR_STACK = 4096  # packets held for the shell before the oldest are dropped


class TunMobileNode(ReferenceMobileNode):
    """The reference mobile node whose user data comes from and goes to an IP stack (a TUN device)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._to_stack: list[bytes] = []

    # ---------------------------------------------------------------- what the shell does

    def from_stack(self, packet: bytes, now: float) -> DataDecision | None:
        """A packet the stack routed into the TUN device: through the data gate and out of the tunnel.

        Returns the gate's decision, or None when the packet was not user data of this node
        (not IPv4, not from the home address, or no interface has a care-of address).
        """
        self._catch_up(now)
        ip = parse_ipv4(packet)
        if self.host_vpn and ip is not None and ip.src == self.profile.x_ha.home_address:
            self._x_home_address_out(packet[: ip.header_length + len(ip.payload)], now)
            self._react(now)
            return None
        interface = self._interface_for_data(now)
        if ip is None or ip.src != self.profile.home_address or interface is None:
            where = interface or next(iter(self.profile.interfaces))
            why = (
                "not an IPv4 packet"
                if ip is None
                else f"source {ip.src} is not the home address"
                if ip.src != self.profile.home_address
                else "no interface has a care-of address"
            )
            self._record(where, now, "dropped", detail=f"from the stack: {why}")
            self._react(now)
            return None
        packet = packet[: ip.header_length + len(ip.payload)]  # no octets after Total Length
        decision = self.core.send_user_data(interface, packet, now)
        self._transmit(interface, packet, decision, now)
        self._react(now)
        return decision

    def _x_home_address_out(self, packet: bytes, now: float) -> None:
        """2.3: the host VPN's packets from the x-HoA go in x-MIP Tunnel Data from the care-of address."""
        for name, det in self.core.interfaces.items():
            if det.mode in X_MIP_MODES and det.care_of_address is not None:
                if det.foreign_agent is not None:  # the x-FA tunnels it (RFC 5944 3.7): on its link as it is
                    self._link_out.append((name, packet))
                else:
                    self._tunnel_out(packet, det.care_of_address, self.profile.x_ha.place)
                self._record(name, now, "x-hoa-out", X_MIP)
                return
        where = next(iter(self.profile.interfaces))
        self._record(where, now, "dropped", X_MIP, detail="from the x-HoA while no x-HA binding carries it")

    def _x_home_address_in(self, interface: str, packet: bytes, now: float) -> None:
        ip = parse_ipv4(packet)
        if ip is None or ip.dst != self.profile.x_ha.home_address:
            self._record(interface, now, "dropped", X_MIP, detail="x-MIP Tunnel Data not for the x-HoA")
            return
        self._push(packet)
        self._record(interface, now, "x-hoa-in", X_MIP)

    def _push(self, packet: bytes) -> None:
        if len(self._to_stack) >= MAX_FOR_STACK:
            del self._to_stack[0]
        self._to_stack.append(packet)

    def packets_for_stack(self) -> list[bytes]:
        """User data the gate let through since the last call, for the shell to write to the TUN device."""
        out, self._to_stack = self._to_stack, []
        return out

    # ---------------------------------------------------------------- overrides of the echo-only data plane

    def _interface_for_data(self, now: float) -> str | None:
        """The interface user data leaves by: the first whose gate is open, else the first with a care-of address."""
        up = [name for name, det in self.core.interfaces.items() if det.care_of_address is not None]
        for name in up:
            if self.core.interface(name).gate(now) is not None:
                return name
        return up[0] if up else None

    def _user_data_in(self, interface: str, packet: bytes, now: float, *, via_vpn: bool) -> None:
        path = VIA_VPN if via_vpn else PLAINTEXT
        ip = parse_ipv4(packet)
        if ip is None or ip.dst != self.profile.home_address:
            self._record(interface, now, "dropped", path, detail="not an IPv4 packet for the home address")
            return
        echo = dp.parse_echo(packet)
        if echo is not None:
            kind = "echo-request-in" if echo.request else "echo-reply-in"
            self._record(interface, now, kind, path, identifier=echo.identifier, sequence=echo.sequence)
        else:
            self._record(interface, now, "data-in", path, detail=f"protocol {ip.protocol} from {ip.src}")
        # 3.2.4, 4.1: the gate decides whether it may be delivered at all.
        decision = self.core.receive_user_data(interface, packet, now, via_vpn=via_vpn)
        self._deliver(interface, packet, decision, now)

    def _deliver(self, interface: str, packet: bytes, decision: DataDecision, now: float) -> None:
        if decision is DataDecision.QUEUED or decision is DataDecision.DROPPED:
            kind = "queued" if decision is DataDecision.QUEUED else "dropped"
            self._record(interface, now, kind, detail="received while the data gate is shut")
            return
        self._push(packet)
        self._record(interface, now, "to-stack", decision.value)


def bring_up(name: str, home_address: str) -> None:
    """The home address (/32) on the TUN interface, and the interface up (``ip``; needs root)."""
    import subprocess

    for argv in (
        ["ip", "address", "replace", f"{home_address}/32", "dev", name],
        ["ip", "link", "set", name, "up"],
    ):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MipcheckError(f"--tun {name}: {' '.join(argv)}: {exc}") from None
        if done.returncode != 0:
            raise MipcheckError(f"--tun {name}: {' '.join(argv)}: {done.stderr.strip() or done.returncode}")
