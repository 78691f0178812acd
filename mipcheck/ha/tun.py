"""The home agent's data plane into a real IP stack: a TUN device (``mipcheck ha serve --tun NAME``).

Why a TUN device: this kernel has no ipip/gre module, and a home agent's
data plane is two decisions around an IP stack (RFC 5944 4.2.3, RFC 3519,
RFC 2003, RFC 3024):

- tunnel data from a registered mobile node is decapsulated and handed to
  the stack, which forwards it (to a correspondent node on the home network,
  or beyond): MIP Tunnel Data (type 4 from the binding's UDP endpoint, inner
  source = its home address), or IP-in-IP (protocol 4, read whole by a raw
  socket; outer source = a binding's care-of address, inner source = that
  binding's home address, the reverse-tunnel check of RFC 3024);
- a packet the stack routes to a registered home address (the home subnet or
  the home addresses are routed into the TUN device) is tunnelled to the
  home address's newest binding: as MIP Tunnel Data to its (care-of address,
  port) endpoint when it was registered with UDP tunnelling, else IP-in-IP
  (RFC 2003) to its care-of address (an FA care-of address, or a co-located
  one registered without a UDP Tunnel Request).

IP-in-IP goes through a raw ``IPPROTO_IPIP`` socket bound to the home
agent's address (:class:`IpipSocket`): the kernel adds the outer header
(source the home agent, destination the care-of address, protocol 4, TTL
64, a fresh Identification) and fragments it when needed. RFC 2003 3.1:
the inner header is not changed (its TTL was decremented by the stack's
forwarding into the TUN device; a packet the host itself sent is not
forwarded, so not decremented); the outer Type of Service is copied from
the inner header, and so is DF: an inner DF packet goes with outer DF and is
dropped (counted) when it does not fit the path (the ICMP "fragmentation
needed" of RFC 2003 5.1 is not sent), an inner packet without DF goes with
outer DF clear, so the kernel may fragment the outer packet. GRE is not
offered: the core denies 'G' with 139, so no binding ever asks for it.

Minimal encapsulation (RFC 2004, protocol 55) is offered when the config's
``encapsulations`` lists "minimal" (default: IP-in-IP only, and 'M' is denied
with 139). A binding registered with 'M' (and without UDP tunnelling) gets
:class:`MinencTunnelled`: the whole packet as it goes on the wire, built by
:func:`mipcheck.proto.minenc.encapsulate` (the original header modified: source
the home agent, destination the care-of address, protocol 55; the forwarding
header after it with S = 1 and the original source, 12 octets, or S = 0 and 8
octets for the home agent's own packets; TTL, TOS, Identification and DF kept).
:class:`MinencSocket` (a raw protocol-55 socket with ``IP_HDRINCL``, bound to
the home agent's address) sends it as built and reads minimally encapsulated
reverse tunnels, which :func:`from_minenc` hands to the core
(:meth:`HomeAgent.receive_minenc`: the IP-in-IP checks, and the binding must
have been registered with 'M'). A fragment is never encapsulated (RFC 2004 3:
MUST NOT; the host reassembles what it forwards into the TUN device), and a
packet too big for the path is dropped and counted, as with inner DF.

The decisions are sans-IO and made from the core's public operations:
:func:`to_stack` (what the core's ``Decision.inner`` hands the stack, from
:meth:`HomeAgent.handle` for Tunnel Data or :func:`from_ipip` /
:meth:`HomeAgent.receive_ipip` for IP-in-IP) and :func:`from_stack` (which
tunnel a packet from the stack takes). :class:`TunDevice` and
:class:`IpipSocket` are the thin shells: they read and write whole packets,
nothing else. Routing, forwarding and proxy ARP are the host's business (the
lab's ``lab run`` sets them up in the i-HA's namespace; docs/lab.md).
"""

from __future__ import annotations

import errno
import socket
from typing import NamedTuple

from mipcheck.errors import MipcheckError
from mipcheck.proto import minenc
from mipcheck.proto import numbers as n
from mipcheck.tundev import TunDevice

__all__ = ["TunDevice"]  # the shell's TUN device (mipcheck.tundev), imported from here by the server

from .core import ACCEPTED, Decision, HomeAgent
from .tunnel import TunnelError, parse_ipv4

MAX_PACKET = 65535


class Tunnelled(NamedTuple):
    """A packet from the stack for a registered home address: send ``data`` to ``endpoint``."""

    home_address: str
    data: bytes
    endpoint: tuple[str, int]


class IpipTunnelled(NamedTuple):
    """A packet from the stack for a home address bound without UDP tunnelling: IP-in-IP to ``care_of_address``.

    ``packet`` is the inner packet, unchanged; the outer header is the kernel's (:class:`IpipSocket`), with
    ``tos`` and ``dont_fragment`` copied from the inner header (RFC 2003 3.1).
    """

    home_address: str
    packet: bytes
    care_of_address: str
    tos: int
    dont_fragment: bool


class MinencTunnelled(NamedTuple):
    """A packet from the stack for a home address bound with 'M': ``packet`` is the whole minimally encapsulated
    datagram (RFC 2004), sent as it is (``IP_HDRINCL``) to ``care_of_address``."""

    home_address: str
    packet: bytes
    care_of_address: str


def to_stack(decision: Decision) -> bytes | None:
    """The packet to write to the stack for ``decision``: decapsulated tunnel data the core accepted, else None.

    Keepalives (ICMP echo to the home agent itself) are answered by the core and
    never reach the stack; tunnel data the core dropped (unknown endpoint,
    inner source not the registered home address, malformed) never does either.
    The same holds for IP-in-IP (:func:`from_ipip`).
    """
    if decision.outcome != ACCEPTED or decision.inner is None or decision.reply is not None:
        return None
    return decision.inner


def from_ipip(core: HomeAgent, packet: bytes, now: float) -> Decision:
    """An IP-in-IP packet read from the raw socket (outer header included): the core's decision.

    :func:`to_stack` of it is the inner packet when the outer source is a care-of address registered for the
    inner source (RFC 3024) and the binding is not UDP-tunnelled; anything else is dropped and logged.
    """
    return core.receive_ipip(packet, now)


def from_minenc(core: HomeAgent, packet: bytes, now: float) -> Decision:
    """A protocol-55 packet read from the raw socket (whole): the core's decision, as :func:`from_ipip`."""
    return core.receive_minenc(packet, now)


def from_stack(core: HomeAgent, packet: bytes) -> Tunnelled | IpipTunnelled | MinencTunnelled | TunnelError:
    """What to do with a packet read from the TUN device: tunnel it to its home address's newest binding, or why not.

    A UDP-tunnelled binding (RFC 3519) gets MIP Tunnel Data at its endpoint, one registered with 'M' minimal
    encapsulation (RFC 2004) at its care-of address, any other IP-in-IP at its care-of address. With simultaneous
    bindings only the newest one gets the packet, as before for Tunnel Data; RFC 5944 would have a copy tunnelled
    to each care-of address (not done).
    """
    hdr = parse_ipv4(packet)
    if isinstance(hdr, TunnelError):
        return hdr
    packet = packet[: hdr.total_length]
    bindings = core.bindings.get(hdr.dst)
    if not bindings:
        return TunnelError(f"no binding for {hdr.dst}")
    newest = bindings[-1]
    if newest.udp_tunnel:
        out = core.encapsulate(hdr.dst, packet)
        if isinstance(out, TunnelError):
            return out
        data, endpoint = out
        return Tunnelled(hdr.dst, data, endpoint)
    if packet[8] == 0:
        return TunnelError(f"packet for {hdr.dst} with TTL 0: discarded (RFC 2003 3.1)")
    if newest.flags & n.FLAG_M:
        try:
            data = minenc.encapsulate(packet, core.address, newest.care_of_address)
        except ValueError as exc:
            return TunnelError(f"packet for {hdr.dst} not minimally encapsulated: {exc}")
        return MinencTunnelled(hdr.dst, data, newest.care_of_address)
    return IpipTunnelled(hdr.dst, packet, newest.care_of_address, packet[1], bool(packet[6] & 0x40))


IP_MTU_DISCOVER = 10  # <linux/in.h>
IP_PMTUDISC_DONT = 0  # outer DF clear: the kernel may fragment the outer packet
IP_PMTUDISC_DO = 2  # outer DF set: EMSGSIZE when it does not fit
OUTER_TTL = 64  # RFC 2003 3.1: enough to reach the tunnel exit point


class _RawTunnelSocket:
    """A raw socket of one tunnel protocol bound to the home agent's address, non-blocking (root: CAP_NET_RAW).

    Reading gives whole outer packets addressed to that address (without a kernel module for the protocol
    nothing else takes it); sending counts what the kernel refused as too big (EMSGSIZE) apart.
    """

    MAX_PACKET = 65535

    def __init__(self, address: str, protocol: int, what: str, options: tuple[tuple[int, int], ...]) -> None:
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, protocol)
        except OSError as exc:
            raise MipcheckError(f"--tun: cannot open a raw {what} socket: {exc.strerror or exc}") from None
        try:
            sock.bind((address, 0))
            for option, value in options:
                sock.setsockopt(socket.IPPROTO_IP, option, value)
        except OSError as exc:
            sock.close()
            why = exc.strerror or exc
            raise MipcheckError(f"--tun: cannot bind a raw {what} socket to {address}: {why}") from None
        sock.setblocking(False)
        self.sock = sock
        self.read_count = self.sent = self.too_big = self.send_failures = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> bytes | None:
        """One packet, or None when there is none now (b"" for an ICMP error queued on the socket)."""
        try:
            packet = self.sock.recv(self.MAX_PACKET)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return b""
        self.read_count += 1
        return packet

    def _failed(self, exc: OSError) -> bool:
        if exc.errno == errno.EMSGSIZE:
            self.too_big += 1  # DF and too big for the path: dropped
        else:
            self.send_failures += 1
        return False

    def _sendto(self, packet: bytes, care_of_address: str) -> bool:
        try:
            self.sock.sendto(packet, (care_of_address, 0))
        except OSError as exc:
            return self._failed(exc)
        self.sent += 1
        return True

    def close(self) -> None:
        self.sock.close()


class IpipSocket(_RawTunnelSocket):
    """``IPPROTO_IPIP``: sending gives the kernel the inner packet and lets it add the outer header
    (:class:`IpipTunnelled`: TOS and DF copied, TTL :data:`OUTER_TTL`)."""

    def __init__(self, address: str) -> None:
        super().__init__(address, socket.IPPROTO_IPIP, "IP-in-IP", ((socket.IP_TTL, OUTER_TTL),))
        self._tos = -1
        self._df: bool | None = None

    def send(self, out: IpipTunnelled) -> bool:
        try:
            if out.tos != self._tos:
                self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, out.tos)
                self._tos = out.tos
            if out.dont_fragment is not self._df:
                how = IP_PMTUDISC_DO if out.dont_fragment else IP_PMTUDISC_DONT
                self.sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, how)
                self._df = out.dont_fragment
        except OSError as exc:
            return self._failed(exc)
        return self._sendto(out.packet, out.care_of_address)


class MinencSocket(_RawTunnelSocket):
    """Protocol 55 with ``IP_HDRINCL``: sending gives the kernel :class:`MinencTunnelled` packets as built (it
    fills in nothing but what ``IP_HDRINCL`` always fills; a packet longer than the path's MTU is refused)."""

    def __init__(self, address: str) -> None:
        super().__init__(address, minenc.PROTO_MINENC, "minimal encapsulation", ((socket.IP_HDRINCL, 1),))

    def send(self, out: MinencTunnelled) -> bool:
        return self._sendto(out.packet, out.care_of_address)
