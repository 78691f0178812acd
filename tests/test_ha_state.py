"""Stateful tests: register, renew, deregister and expire never leave an inconsistent binding.

The machine drives the home agent through real, authenticated Registration
Requests and keeps its own model of what the binding list must hold (RFC 5944
3.8.2.2 and 3.8.3.2): after every step the two must agree, and the cache's
internal indexes must be consistent.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mipcheck.ha import HAConfig, HomeAgent, MobileNodeConfig
from mipcheck.ha.binding import Binding, BindingCache
from mipcheck.layers.identification import timestamp_identification
from mipcheck.proto import codec
from mipcheck.proto import numbers as n

HA = "127.0.0.1"
LOCAL = (HA, 434)
KEY = b"state-machine-key"
SPI = 0x2000
HOMES = [f"10.2.0.{i}" for i in range(1, 4)]
COAS = [f"127.0.3.{i}" for i in range(1, 4)]
NAT_PORTS = [50000, 50001]
MAX_LIFETIME = 300
T0 = 1_800_000_000.0


class HomeAgentMachine(RuleBasedStateMachine):
    simultaneous = False

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.seq = 0
        cfg = HAConfig(
            trusted_networks=("127.0.0.0/16",),
            max_lifetime=MAX_LIFETIME,
            simultaneous_bindings=self.simultaneous,
            max_simultaneous_bindings=len(COAS),
            replay_skew=1e9,  # time jumps far in this machine; ordering is still enforced
            mobile_nodes=tuple(MobileNodeConfig(h, SPI, KEY) for h in HOMES),
        )
        self.ha = HomeAgent(cfg)
        # model: home -> {coa: (expires, endpoint)}
        self.model: dict[str, dict[str, tuple[float, tuple[str, int] | None]]] = {}

    def _ident(self) -> int:
        self.seq += 1
        return timestamp_identification(T0, low_bits=self.seq)

    def _send(self, home: str, coa: str, lifetime: int, *, s: bool = False, nat_port: int | None = None) -> None:
        flags = n.FLAG_D | (n.FLAG_S if s else 0)
        exts = codec.udp_tunnel_request() if nat_port is not None else b""
        data = codec.build_request(flags, lifetime, home, HA, coa, self._ident(), exts, auth=(SPI, "hmac-md5", KEY))
        src = ("127.0.9.9", nat_port) if nat_port is not None else ("127.0.3.200", 40000)
        d = self.ha.handle(data, src, LOCAL, self.now)
        assert d.outcome == "accepted", d.reason
        self._model_expire()
        entries = self.model.setdefault(home, {})
        if lifetime == 0:
            if coa == home:
                entries.clear()
            else:
                entries.pop(coa, None)
            assert d.lifetime == 0
        else:
            granted = min(lifetime, MAX_LIFETIME)
            assert d.lifetime == granted
            assert d.code == (1 if s and not self.simultaneous else 0)
            if not (s and self.simultaneous):
                entries.clear()
            endpoint = src if nat_port is not None else None
            # An endpoint belongs to one binding only.
            for es in self.model.values():
                for c, (exp, ep) in list(es.items()):
                    if ep is not None and ep == endpoint:
                        es[c] = (exp, None)
            entries[coa] = (self.now + granted, endpoint)
        if not entries:
            self.model.pop(home, None)

    def _model_expire(self) -> None:
        for home in list(self.model):
            es = self.model[home]
            for c in [c for c, (exp, _ep) in es.items() if exp <= self.now]:
                del es[c]
            if not es:
                del self.model[home]

    @rule(
        home=st.sampled_from(HOMES),
        coa=st.sampled_from(COAS),
        lifetime=st.integers(1, 2 * MAX_LIFETIME),
        s=st.booleans(),
    )
    def register(self, home: str, coa: str, lifetime: int, s: bool) -> None:
        self._send(home, coa, lifetime, s=s)

    @rule(
        home=st.sampled_from(HOMES),
        coa=st.sampled_from(COAS),
        lifetime=st.integers(1, MAX_LIFETIME),
        port=st.sampled_from(NAT_PORTS),
    )
    def register_behind_nat(self, home: str, coa: str, lifetime: int, port: int) -> None:
        self._send(home, coa, lifetime, nat_port=port)

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def renew(self, data: st.DataObject) -> None:
        home = data.draw(st.sampled_from(sorted(self.model)))
        coa = data.draw(st.sampled_from(sorted(self.model[home])))
        self._send(home, coa, data.draw(st.integers(1, MAX_LIFETIME)), s=self.simultaneous)

    @rule(home=st.sampled_from(HOMES), coa=st.sampled_from(COAS))
    def deregister_one(self, home: str, coa: str) -> None:
        self._send(home, coa, 0)

    @rule(home=st.sampled_from(HOMES))
    def deregister_all(self, home: str) -> None:
        self._send(home, home, 0)

    @rule(
        dt=st.one_of(st.floats(0, 2 * MAX_LIFETIME, allow_nan=False), st.sampled_from([0.0, 1.0, float(MAX_LIFETIME)]))
    )
    def advance(self, dt: float) -> None:
        self.now += dt
        expired = self.ha.expire(self.now)
        assert all(b.expires <= self.now for b in expired)
        self._model_expire()

    @invariant()
    def agrees_with_model(self) -> None:
        self.ha.check_invariants()
        self._model_expire()
        self.ha.expire(self.now)
        got = {h: {b.care_of_address: (b.expires, b.tunnel_endpoint) for b in bs} for h, bs in self.ha.bindings.items()}
        assert got == self.model
        for bs in self.ha.bindings.values():
            assert len(bs) <= (len(COAS) if self.simultaneous else 1)
            for b in bs:
                assert b.expires > self.now and b.lifetime <= MAX_LIFETIME
        # Tunnel data is accepted from exactly the endpoints the model holds.
        endpoints = {ep: h for h, es in self.model.items() for _c, (_e, ep) in es.items() if ep is not None}
        for port in NAT_PORTS:
            ep = ("127.0.9.9", port)
            from mipcheck.ha.tunnel import echo_request

            for home in HOMES:
                res = self.ha.decapsulate(codec.tunnel_data(echo_request(home, "127.0.0.50")), ep)
                assert isinstance(res, bytes) == (endpoints.get(ep) == home)


class SimultaneousMachine(HomeAgentMachine):
    simultaneous = True


TestHomeAgentMachine = HomeAgentMachine.TestCase
TestHomeAgentMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestSimultaneousMachine = SimultaneousMachine.TestCase
TestSimultaneousMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


class CacheMachine(RuleBasedStateMachine):
    """The cache alone, with heap compaction pushed hard (many renewals, few bindings)."""

    def __init__(self) -> None:
        super().__init__()
        self.cache = BindingCache()
        self.now = 0.0

    @initialize()
    def start(self) -> None:
        self.now = 0.0

    @rule(
        home=st.sampled_from(HOMES),
        coa=st.sampled_from(COAS),
        lifetime=st.sampled_from([1, 5, 50, 0xFFFF]),
        keep=st.booleans(),
        renewals=st.integers(1, 800),
    )
    def add(self, home: str, coa: str, lifetime: int, keep: bool, renewals: int) -> None:
        for i in range(renewals):
            self.cache.add(Binding(home, coa, lifetime, self.now + i * 1e-6, i, 0, (coa, 1)), keep_others=keep)

    @rule(home=st.sampled_from(HOMES), coa=st.sampled_from(COAS))
    def remove(self, home: str, coa: str) -> None:
        self.cache.remove(home, coa)

    @rule(home=st.sampled_from(HOMES))
    def remove_all(self, home: str) -> None:
        self.cache.remove_all(home)

    @rule(dt=st.floats(0, 60, allow_nan=False))
    def expire(self, dt: float) -> None:
        self.now += dt
        for b in self.cache.expire(self.now):
            assert b.expires <= self.now

    @invariant()
    def consistent(self) -> None:
        self.cache.check()
        assert all(
            b.expires > self.now or math.isinf(b.expires) or self.cache.next_expiry() is not None for b in self.cache
        )


TestCacheMachine = CacheMachine.TestCase
TestCacheMachine.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)


@pytest.mark.parametrize("drop", ["remove", "remove_all", "expire"])
def test_stale_entry_bound_holds_after_bindings_leave(drop: str) -> None:
    """Found by the machine above in CI: the heap's bound (2 x bindings + 1024)
    was restored only on add, so it broke when bindings left the cache."""
    cache = BindingCache()

    def bind(home: str, lifetime: int, ident: int = 0) -> None:
        cache.add(Binding(home, "127.0.3.1", lifetime, ident * 1e-6, ident, 0, None), keep_others=False)

    bind("10.2.0.3", 1)
    bind("10.2.0.4", 1)
    for i in range(1028):  # renewals of one binding: the heap fills to exactly its bound, 2 x 3 + 1024
        bind("10.2.0.1", 50, i)
    assert len(cache._heap) == 1030
    cache.check()
    if drop == "expire":
        assert sorted(b.home_address for b in cache.expire(2.0)) == ["10.2.0.3", "10.2.0.4"]
    elif drop == "remove":
        cache.remove("10.2.0.3", "127.0.3.1")
    else:
        cache.remove_all("10.2.0.3")
    cache.check()
