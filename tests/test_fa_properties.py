"""Properties of the foreign agent core: it never raises, and its visitor list never holds an expired entry.

Hypothesis drives the core with random octets and with mutations of valid
messages (each kind it handles: requests, replies, tunnel data, IPv4 packets
on the link); a state machine registers, renews, deregisters and lets time
pass, checking after every step that no visitor or pending request outlives
its time and that no visitor got a longer Lifetime than it asked for.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mipcheck.fa.config import FAConfig, HomeAgentPeer, VisitorSA
from mipcheck.fa.core import ForeignAgent
from mipcheck.proto import codec
from mipcheck.proto import numbers as n
from mipcheck.proto.ip import build_ipv4, build_udp_ipv4
from mipcheck.proto.security import SecurityAssociation

FA_ADDR, HA_ADDR = "127.0.0.5", "127.0.0.2"
FA_PLACE, HA_PLACE = (FA_ADDR, 434), (HA_ADDR, 434)
MN_LINKS = [("127.0.0.9", 40000), ("127.0.0.10", 40001)]
HOAS = ["10.1.0.1", "10.1.0.2", "10.1.0.3"]
MN_HA = (300, "hmac-md5", b"mn-ha key")
NOW = 1_800_000_000.0


def fresh(**over: object) -> ForeignAgent:
    kw: dict[str, object] = dict(
        address=FA_ADDR,
        flags="FT",
        max_lifetime=600,
        link=("127.0.0.1", 4340),
        upstream=("127.0.0.40", 5000),
        home_agents=(HomeAgentPeer(HA_ADDR, sa=SecurityAssociation(500, b"fa-ha")),),
        mobile_nodes=(VisitorSA(HOAS[0], SecurityAssociation(400, b"mn-fa")),),
        max_visitors=4,
    )
    kw.update(over)
    return ForeignAgent(FAConfig(**kw), start=NOW)


def _seeds() -> list[bytes]:
    rq = codec.build_request(n.FLAG_T, 300, HOAS[1], HA_ADDR, FA_ADDR, 7, codec.nai_extension("a@b"), auth=MN_HA)
    rp = codec.build_reply(0, 300, HOAS[1], HA_ADDR, 7, auth=MN_HA)
    inner = build_udp_ipv4(("192.0.2.1", 1), (HOAS[1], 2), b"data")
    return [
        rq,
        rp,
        codec.tunnel_data(inner),
        build_ipv4(HA_ADDR, FA_ADDR, 4, inner),
        build_udp_ipv4((HOAS[1], 2), ("192.0.2.1", 1), b"up"),
        bytes.fromhex("4500001c0000000001013ad97f000009ffffffff0a00f5ff00000000"),  # a solicitation
    ]


SEEDS = _seeds()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=8))


def _drive(fa: ForeignAgent, datagrams: list[tuple[bytes, tuple[str, int]]], dt: float) -> None:
    now = NOW
    for data, src in datagrams:
        fa.receive_datagram(data, src, FA_PLACE, now)
        now += dt
        timer = fa.get_timer()
        if timer is not None and timer <= now:
            fa.handle_timer(now)
    fa.datagrams_to_send(now)
    while fa.next_event() is not None:
        pass


SOURCES = st.sampled_from([*MN_LINKS, HA_PLACE, ("127.0.0.66", 434)])


@settings(max_examples=300)
@given(st.lists(st.tuples(st.binary(max_size=120), SOURCES), max_size=6), st.floats(0, 20))
def test_never_raises_on_random_octets(datagrams: list[tuple[bytes, tuple[str, int]]], dt: float) -> None:
    _drive(fresh(), datagrams, dt)


@settings(max_examples=300)
@given(st.lists(st.tuples(mutated(), SOURCES), max_size=6), st.floats(0, 20))
def test_never_raises_on_mutated_messages(datagrams: list[tuple[bytes, tuple[str, int]]], dt: float) -> None:
    fa = fresh()
    # a visitor and a pending request first, so replies and data find something to act on
    fa.receive_datagram(SEEDS[0], MN_LINKS[0], FA_PLACE, NOW)
    _drive(fa, datagrams, dt)


@settings(max_examples=100)
@given(st.lists(st.tuples(mutated(), SOURCES), max_size=6))
def test_never_raises_under_any_fault(datagrams: list[tuple[bytes, tuple[str, int]]]) -> None:
    from mipcheck.fa.faults import FAULTS

    for name in FAULTS:
        fa = ForeignAgent(fresh().config, [name])
        fa.receive_datagram(SEEDS[0], MN_LINKS[0], FA_PLACE, NOW)
        _drive(fa, datagrams, 1.0)


class VisitorList(RuleBasedStateMachine):
    """Registrations, renewals, deregistrations and time; the visitor list never holds an expired entry."""

    @initialize()
    def start(self) -> None:
        self.fa = fresh(mobile_nodes=())
        self.now = NOW
        self.ident = 1
        self.requested: dict[tuple[str, int], int] = {}

    def _feed(self, data: bytes, src: tuple[str, int]) -> None:
        self.fa.receive_datagram(data, src, FA_PLACE, self.now)
        self.fa.datagrams_to_send(self.now)
        while self.fa.next_event() is not None:
            pass

    @rule(hoa=st.sampled_from(HOAS), lifetime=st.sampled_from([0, 1, 5, 30, 600, 601]), link=st.sampled_from(MN_LINKS))
    def request(self, hoa: str, lifetime: int, link: tuple[str, int]) -> None:
        self.ident += 1
        self.requested[(hoa, self.ident)] = lifetime
        self._feed(codec.build_request(0, lifetime, hoa, HA_ADDR, FA_ADDR, self.ident, auth=MN_HA), link)

    @precondition(lambda self: self.fa.pending)
    @rule(data=st.data(), code=st.sampled_from([0, 1, 131, 133]), granted=st.integers(0, 0xFFFF))
    def reply(self, data: st.DataObject, code: int, granted: int) -> None:
        p = data.draw(st.sampled_from(self.fa.pending))
        reply = codec.build_reply(code, granted, p.home_address, HA_ADDR, p.identification, auth=MN_HA)
        covered = reply + codec.AUTH_HDR.pack(n.EXT_FA_HA_AUTH, 20, 500)
        self._feed(covered + codec.authenticator("hmac-md5", b"fa-ha", covered), HA_PLACE)

    @rule(seconds=st.floats(0, 40))
    def wait(self, seconds: float) -> None:
        self.now += seconds

    @rule()
    def timer(self) -> None:
        at = self.fa.get_timer()
        if at is not None:
            self.now = max(self.now, at)
            self.fa.handle_timer(self.now)

    @rule(data=st.binary(max_size=40))
    def noise(self, data: bytes) -> None:
        self._feed(data, MN_LINKS[0])

    @invariant()
    def nothing_outlives_its_time(self) -> None:
        fa, now = self.fa, self.now
        # every entry point expires first; a query at `now` must see what the agent saw at its last call
        fa.receive_datagram(b"", MN_LINKS[0], FA_PLACE, now)
        fa.next_event()
        for v in fa.visitors:
            assert v.expires is None or v.expires > now, v
            assert v.lifetime <= self.requested[(v.home_address, v.identification)]
            assert v.lifetime <= fa.config.max_lifetime
        for p in fa.pending:
            assert p.expires > now
        assert len({(v.home_address, v.home_agent) for v in fa.visitors}) == len(fa.visitors)
        timer = fa.get_timer()
        assert timer is None or timer > now or timer == fa._next_advertisement


TestVisitorList = VisitorList.TestCase
TestVisitorList.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
