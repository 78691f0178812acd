"""Asyncio UDP shell around the registration client, bound to a chosen local address and port.

It sends what the client returns, feeds it every datagram from the home
agent with the wall clock (timestamps need it), and sleeps until the
client's next timer. Binding any 127.x address needs no privileges on Linux.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mipcheck.errors import MipcheckError

from .config import MNConfig
from .core import (
    TERMINAL,
    Denied,
    Deregistered,
    Event,
    Ignored,
    Registered,
    RegistrationClient,
    TimedOut,
)


class _ClientProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((data, addr))

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP port unreachable and the like: the client's timers deal with silence


@dataclass
class RegistrationResult:
    """What one registration exchange ended with, plus every event on the way."""

    final: Event | None
    events: list[Event] = field(default_factory=list)
    sent: int = 0
    local: tuple[str, int] | None = None

    @property
    def outcome(self) -> str:
        f = self.final
        if isinstance(f, Registered):
            return "accepted"
        if isinstance(f, Deregistered):
            return "deregistered"
        if isinstance(f, Denied):
            return "denied"
        return "no-reply"

    @property
    def ignored(self) -> list[Ignored]:
        return [e for e in self.events if isinstance(e, Ignored)]


class UDPClient:
    """A registration client on a UDP socket; use ``await UDPClient.open(config)``."""

    def __init__(
        self,
        config: MNConfig,
        client: RegistrationClient,
        transport: asyncio.DatagramTransport,
        proto: _ClientProtocol,
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.client = client
        self.transport = transport
        self.proto = proto
        self.clock = clock
        self.dest = (config.home_agent, config.ha_port)
        self.sent = 0

    @classmethod
    async def open(
        cls, config: MNConfig, *, client: RegistrationClient | None = None, clock: Callable[[], float] = time.time
    ) -> UDPClient:
        loop = asyncio.get_running_loop()
        try:
            transport, proto = await loop.create_datagram_endpoint(
                _ClientProtocol, local_addr=(config.local_address, config.local_port)
            )
        except OSError as exc:
            raise MipcheckError(
                f"cannot bind {config.local_address}:{config.local_port}: {exc.strerror or exc}"
            ) from None
        return cls(config, client or RegistrationClient(config), transport, proto, clock)

    @property
    def local(self) -> tuple[str, int]:
        return self.transport.get_extra_info("sockname")[:2]

    def close(self) -> None:
        self.transport.close()

    def send(self, data: bytes, dest: tuple[str, int] | None = None) -> None:
        self.transport.sendto(data, dest or self.dest)
        self.sent += 1

    async def run_until_done(self) -> RegistrationResult:
        """Pump the client: send what it has, feed it replies and timer expiries, until a final event."""
        events: list[Event] = []
        client = self.client
        while True:
            for data, _local, dst in client.datagrams_to_send(self.clock()):
                self.send(data, dst)
            due = client.get_timer()
            wait = None if due is None else max(0.0, due - self.clock())
            try:
                data, addr = await asyncio.wait_for(self.proto.queue.get(), wait)
            except TimeoutError:
                client.handle_timer(self.clock())
            else:
                client.receive_datagram(data, addr[:2], self.local, self.clock())
            new = []
            while (ev := client.next_event()) is not None:
                new.append(ev)
            events.extend(new)
            final = next((e for e in new if isinstance(e, TERMINAL)), None)
            if final is not None:
                return RegistrationResult(final, events, self.sent, self.local)
            if due is None and not new and not client.waiting:
                return RegistrationResult(None, events, self.sent, self.local)

    async def register(self) -> RegistrationResult:
        self.client.register(self.clock())
        return await self.run_until_done()

    async def deregister(self, *, all_bindings: bool = False) -> RegistrationResult:
        self.client.deregister(self.clock(), all_bindings=all_bindings)
        return await self.run_until_done()


async def register_async(
    config: MNConfig, *, deregister: bool = False, client: RegistrationClient | None = None
) -> RegistrationResult:
    udp = await UDPClient.open(config, client=client)
    try:
        return await (udp.deregister() if deregister else udp.register())
    finally:
        udp.close()


def register_once(config: MNConfig, *, deregister: bool = False) -> RegistrationResult:
    """One registration (or deregistration) exchange, blocking; returns when it is decided."""
    return asyncio.run(register_async(config, deregister=deregister))


__all__ = ["RegistrationResult", "TimedOut", "UDPClient", "register_async", "register_once"]
