"""A correspondent node for user data on the simulated network: it echoes every datagram back.

Why: RFC 5265's rules are about where user data may go (plaintext only when
inside, 3.2.3-3.2.4; through the VPN when outside, 2.3). A mobile node's
data needs somewhere to go and something to come back, so both directions
of the data gate show on the network log.
"""

from __future__ import annotations

from dataclasses import dataclass

from .network import Address

ECHO_PORT = 7  # RFC 862


@dataclass(frozen=True)
class Received:
    at: float
    src: Address
    data: bytes


class EchoCorrespondent:
    """An actor that answers each datagram with the same bytes, from where it was asked."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._out: list[tuple[bytes, Address, Address]] = []

    def receive_datagram(self, data: bytes, src: Address, local: Address, now: float) -> None:
        self.received.append(Received(now, src, data))
        self._out.append((data, local, src))

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address, Address]]:
        out, self._out = self._out, []
        return out

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        return None
