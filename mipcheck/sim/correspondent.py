"""A correspondent node for user data on the simulated network: it echoes every datagram back.

Why: RFC 5265's rules are about where user data may go (plaintext only when
inside, 3.2.3-3.2.4; through the VPN when outside, 2.3). A mobile node's
data needs somewhere to go and something to come back, so both directions
of the data gate show on the network log.
"""

from __future__ import annotations

from dataclasses import dataclass

from .network import Address, QueueActor

ECHO_PORT = 7  # RFC 862


@dataclass(frozen=True)
class Received:
    at: float
    src: Address
    data: bytes


class EchoCorrespondent(QueueActor):
    """An actor that answers each datagram with the same bytes, from where it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[Received] = []

    def receive_datagram(self, data: bytes, src: Address, local: Address, now: float) -> None:
        self.received.append(Received(now, src, data))
        self._out.append((data, local, src))
