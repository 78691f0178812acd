"""The reference mobile node (:class:`~mipcheck.mn.node.ReferenceMobileNode`) as an actor on the simulated network.

Why: the MN suite drives a mobile node only through ``move`` and the wire;
over the :class:`~mipcheck.sim.network.SimNetwork` (virtual time, T_MONITOR
of 60 s in milliseconds) the reference node needs a shell that holds the
places its :meth:`~mipcheck.mn.node.ReferenceMobileNode.bindings` name, as
``mipcheck mn run`` holds UDP sockets. Everything else is the node's.
"""

from __future__ import annotations

from mipcheck.mn.detection_events import DetectionEvent
from mipcheck.mn.node import ReferenceMobileNode

from .network import Address, SimNetwork


class SimReferenceNode:
    """Attach ``node`` to ``network`` at its bindings; ``move`` it in the network's virtual time."""

    def __init__(self, network: SimNetwork, node: ReferenceMobileNode) -> None:
        self.network = network
        self.node = node
        self.events: list[DetectionEvent] = []  # every event of the node, in order
        self._held: set[Address] = set()

    def _now(self) -> float:
        return self.network.clock.time()

    def move(self, interface: str, network: str, coa: str | None = None) -> str | None:
        """A connection status change now; returns the care-of address (None for down).

        ValueError for a bad interface, network or address; OSError when the
        address and port are taken on the network (the node is then not moved).
        """
        new = self.node.resolve(interface, network, coa)
        claimed: Address | None = None
        if new is not None and (new, self.node.port) not in self._held:
            claimed = (new, self.node.port)
            self.network.attach(self, *claimed)  # first, so that a taken place leaves the node where it was
            self._held.add(claimed)
        try:
            self.node.move(interface, network, new, self._now())
        except BaseException:
            if claimed is not None:
                self.network.release(claimed)
                self._held.discard(claimed)
            raise
        self._sync()
        self._drain()
        self.network.wake(self)
        return new

    def status(self) -> dict[str, object]:
        return self.node.status(self._now())

    def _sync(self) -> None:
        wanted = set(self.node.bindings().values())
        for place in self._held - wanted:
            self.network.release(place)
        for place in wanted - self._held:
            self.network.attach(self, *place)
        self._held = wanted

    def _drain(self) -> None:
        while (ev := self.node.next_event()) is not None:
            self.events.append(ev)

    # ---- the actor interface
    def receive_datagram(self, data: bytes, src: Address, local: Address, now: float) -> None:
        self.node.receive_datagram(data, src, local, now)
        self._drain()

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address, Address]]:
        return self.node.datagrams_to_send(now)

    def get_timer(self) -> float | None:
        return self.node.get_timer()

    def handle_timer(self, now: float) -> None:
        self.node.handle_timer(now)
        self._drain()
