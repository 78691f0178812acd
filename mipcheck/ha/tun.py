"""The home agent's data plane into a real IP stack: a TUN device (``mipcheck ha serve --tun NAME``).

Why a TUN device: this kernel has no ipip/gre module, and a home agent's
data plane is two decisions around an IP stack (RFC 5944 4.2.3, RFC 3519):

- tunnel data from a registered mobile node (type 4 from its bound endpoint,
  inner source = its home address) is decapsulated and handed to the stack,
  which forwards it (to a correspondent node on the home network, or beyond);
- a packet the stack routes to a registered home address (the home subnet or
  the home addresses are routed into the TUN device) is tunnelled as MIP
  Tunnel Data to the binding's (care-of address, port) endpoint.

Both decisions are sans-IO and made from the core's public operations
(:meth:`HomeAgent.handle` already decapsulates and checks tunnel data into
``Decision.inner``; :meth:`HomeAgent.encapsulate` finds the endpoint):
:func:`to_stack` and :func:`from_stack`. :class:`TunDevice` is the thin shell:
it opens ``/dev/net/tun``, reads and writes whole IPv4 packets, nothing else.
Routing, forwarding and proxy ARP are the host's business (the lab's
``lab run`` sets them up in the i-HA's namespace; docs/lab.md).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
from typing import NamedTuple

from mipcheck.errors import MipcheckError

from .core import ACCEPTED, Decision, HomeAgent
from .tunnel import TunnelError, parse_ipv4

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFNAMSIZ = 16
MAX_PACKET = 65535


class Tunnelled(NamedTuple):
    """A packet from the stack for a registered home address: send ``data`` to ``endpoint``."""

    home_address: str
    data: bytes
    endpoint: tuple[str, int]


def to_stack(decision: Decision) -> bytes | None:
    """The packet to write to the stack for ``decision``: decapsulated tunnel data the core accepted, else None.

    Keepalives (ICMP echo to the home agent itself) are answered by the core and
    never reach the stack; tunnel data the core dropped (unknown endpoint,
    inner source not the registered home address, malformed) never does either.
    """
    if decision.outcome != ACCEPTED or decision.inner is None or decision.reply is not None:
        return None
    return decision.inner


def from_stack(core: HomeAgent, packet: bytes) -> Tunnelled | TunnelError:
    """What to do with a packet read from the TUN device: tunnel it to its home address's binding, or why not."""
    hdr = parse_ipv4(packet)
    if isinstance(hdr, TunnelError):
        return hdr
    out = core.encapsulate(hdr.dst, packet[: hdr.total_length])
    if isinstance(out, TunnelError):
        return out
    data, endpoint = out
    return Tunnelled(hdr.dst, data, endpoint)


class TunDevice:
    """A TUN interface (IFF_TUN | IFF_NO_PI: each read and write is one IP packet), non-blocking.

    Opening a name that does not exist creates the interface (it goes away with
    the file descriptor unless it was made persistent, e.g. ``ip tuntap add``).
    Addresses, link state and routes are set with ``ip`` by whoever runs this.
    """

    def __init__(self, name: str) -> None:
        if not name or len(name) >= IFNAMSIZ or "/" in name or " " in name:
            raise MipcheckError(f"--tun {name!r}: an interface name of 1-15 characters")
        try:
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        except OSError as exc:
            raise MipcheckError(f"--tun {name}: cannot open /dev/net/tun: {exc.strerror or exc}") from None
        try:
            ifr = struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI)
            answer = fcntl.ioctl(fd, TUNSETIFF, ifr)
        except OSError as exc:
            os.close(fd)
            raise MipcheckError(f"--tun {name}: TUNSETIFF failed: {exc.strerror or exc}") from None
        self.fd = fd
        self.name = answer[:16].rstrip(b"\x00").decode()
        self.read_count = self.write_count = self.write_failures = 0

    def fileno(self) -> int:
        return self.fd

    def read(self) -> bytes | None:
        """One packet, or None when there is none now."""
        try:
            packet = os.read(self.fd, MAX_PACKET)
        except (BlockingIOError, InterruptedError):
            return None
        self.read_count += 1
        return packet

    def write(self, packet: bytes) -> bool:
        try:
            os.write(self.fd, packet)
        except OSError:
            self.write_failures += 1  # the interface is down, or the queue is full: dropped, as IP may
            return False
        self.write_count += 1
        return True

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
