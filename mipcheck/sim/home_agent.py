"""The reference home agent on the simulated network, and a lab to run the HA suite over it.

:class:`HomeAgentActor` puts the sans-IO core (``HomeAgent.handle``,
``next_expiry``, ``expire``) behind the actor interface of
:mod:`mipcheck.sim.network`. :class:`SimLab` is :class:`mipcheck.builtin.BuiltinLab`
in virtual time: the same i-HA configuration, profile and side channels
(its log, its binding list, a second unconfigured instance), so the HA
suite's cases run over it unchanged and a T_MONITOR-sized wait costs
nothing.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

from mipcheck.builtin import HA_ADDRESS, BuiltinControl, builtin_profile, ha_config, mobile_nodes
from mipcheck.engine.transport import SimTransport
from mipcheck.ha.core import Decision, HomeAgent
from mipcheck.ha.faults import check_faults
from mipcheck.ha.server import DecisionLog

from .network import Address, SimNetwork

MIP_PORT = 434  # no privileges are needed to "bind" it on the simulated network


class HomeAgentActor:
    """The home agent core (itself an actor) with its decisions kept and logged as the server logs them."""

    def __init__(self, core: HomeAgent, log: DecisionLog | None = None) -> None:
        self.core = core
        self.log = log
        self.decisions: list[Decision] = []

    def receive_datagram(self, data: bytes, src: Address, local: Address, now: float) -> None:
        self.core.receive_datagram(data, src, local, now)
        while (d := self.core.next_event()) is not None:
            self.decisions.append(d)
            if d.log and self.log is not None:
                self.log.decision(d, now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address, Address]]:
        return self.core.datagrams_to_send(now)

    def get_timer(self) -> float | None:
        return self.core.get_timer()

    def handle_timer(self, now: float) -> None:
        self.core.handle_timer(now)


class SimControl(BuiltinControl):
    """The side channels of :class:`mipcheck.builtin.BuiltinControl`, on the simulated home agent."""

    def __init__(self, lab: SimLab) -> None:
        self.lab = lab
        self._unconfigured: Address | None = None

    def read_log(self) -> str | None:
        return self.lab.log_text.getvalue()

    def can_start_unconfigured(self) -> bool:
        return True

    def start_unconfigured(self) -> tuple[str, int]:
        core = HomeAgent(ha_config(self.lab.nodes, trusted=False), self.lab.faults)
        self._unconfigured = self.lab.network.attach(HomeAgentActor(core), HA_ADDRESS)
        return self._unconfigured

    def stop_unconfigured(self) -> None:
        if self._unconfigured is not None:
            self.lab.network.release(self._unconfigured)
            self._unconfigured = None

    def _on_core(self, fn: Any) -> Any:
        return fn(self.lab.core)  # one thread drives the simulated network: call directly

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "simulated",
            "log": "the home agent's decision log",
            "unconfigured": "a second home agent with no trusted network",
        }


class SimLab:
    """The built-in i-HA on a fresh simulated network, with the profile, control and transport to test it."""

    def __init__(self, faults: Iterable[str] = (), *, network: SimNetwork | None = None, port: int = MIP_PORT) -> None:
        self.faults = tuple(sorted(check_faults(faults)))
        self.network = network or SimNetwork()
        self.nodes = mobile_nodes()
        self.core = HomeAgent(ha_config(self.nodes), self.faults)
        self.log_text = io.StringIO()
        self.actor = HomeAgentActor(self.core, DecisionLog([self.log_text]))
        self.address, self.port = self.network.attach(self.actor, HA_ADDRESS, port)
        self.profile = builtin_profile(self.address, self.port, self.nodes)
        self.control = SimControl(self)
        self.transport = SimTransport(self.network)
