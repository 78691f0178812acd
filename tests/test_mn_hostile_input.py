"""The MN cores take hostile input without raising (issue 11 item 8): random bytes and mutated valid replies.

Whatever arrives at a mobile node's port, from its home agents or from anyone,
the registration client and the reference node (detection core and data
plane) decide; they never raise. Mutations are structure-aware: a valid,
authenticated reply to the request just sent, then bit flips, truncation and
insertions (the damage a fuzzer or a buggy home agent does).
"""

from __future__ import annotations

import socket

from hypothesis import given, settings
from hypothesis import strategies as st

from mipcheck.mn.config import MNConfig
from mipcheck.mn.core import RegistrationClient
from mipcheck.mn.node import ReferenceMobileNode
from mipcheck.mn.profile import parse_mobile_node_profile
from mipcheck.proto import codec
from mipcheck.proto import numbers as n

NOW = 1_800_000_000.0
HA, HOA, SPI, KEY = "127.0.0.1", "10.3.0.1", 0x3000, b"client-test-key"
LOCAL = ("127.0.0.10", 45000)
IHA, XHA = ("127.0.1.1", 434), ("127.0.1.2", 434)
PROFILE = parse_mobile_node_profile(
    {
        "dut": {"home_address": HOA, "t_monitor": 60},
        "i_ha": {"address": IHA[0], "spi": SPI, "secret": KEY.decode()},
        "x_ha": {"address": XHA[0], "home_address": "192.0.2.99", "spi": SPI + 1, "secret": "x"},
        "vpn": {
            "gateway": "127.0.1.3",
            "inner_address": "10.8.0.5",
            "spi_in": 0x1001,
            "spi_out": 0x1002,
            "encryption": "NULL",
            "integrity": "NULL",
        },
        "networks": {"inside": "127.0.2.10", "outside": "127.0.3.10"},
    }
)


def _valid_reply(request: bytes, *, tnc: bool) -> bytes:
    rq = codec.parse_request(request)
    assert rq is not None
    exts = codec.udp_tunnel_reply() if any(e.type == n.EXT_UDP_TUNNEL_REQUEST for e in rq.extensions) else b""
    if tnc:
        exts += bytes((n.EXT_TNC, 2, 0, 0))
    ha = socket.inet_aton(rq.home_agent)
    return codec.build_reply(0, 100, rq.home_address, ha, rq.identification, exts, auth=(SPI, "hmac-md5", KEY))


def _mutate(data: bytes, flips: list[int], cut: int | None, insert: tuple[int, bytes] | None) -> bytes:
    out = bytearray(data)
    for bit in flips:
        out[(bit // 8) % len(out)] ^= 1 << (bit % 8)
    if insert is not None:
        at, extra = insert
        at %= len(out) + 1
        out[at:at] = extra
    if cut is not None:
        del out[cut % (len(out) + 1) :]
    return bytes(out)


mutations = st.tuples(
    st.lists(st.integers(0, 8 * 80), max_size=4),
    st.none() | st.integers(0, 200),
    st.none() | st.tuples(st.integers(0, 200), st.binary(min_size=1, max_size=8)),
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), mutations, st.booleans())
def test_the_registration_client_never_raises(random: bytes, mutation, tnc: bool) -> None:
    client = RegistrationClient(
        MNConfig(home_address=HOA, home_agent=HA, spi=SPI, secret=KEY, local_address=LOCAL[0], udp_tunnel=True)
    )
    client.register(NOW)
    (request,) = [d for d, _l, _dst in client.datagrams_to_send(NOW)]
    for data in (random, _mutate(_valid_reply(request, tnc=tnc), *mutation)):
        client.receive_datagram(data, (HA, 434), LOCAL, NOW + 0.1)
        while client.next_event() is not None:
            pass
    client.handle_timer(NOW + 5)
    client.datagrams_to_send(NOW + 5)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=160), mutations, st.sampled_from([IHA, XHA, ("127.9.9.9", 7)]), st.booleans())
def test_the_reference_node_never_raises(random: bytes, mutation, src, tnc: bool) -> None:
    node = ReferenceMobileNode(PROFILE)
    node.move("eth0", "inside", None, NOW)
    local = node.bindings()["eth0"]
    out = node.datagrams_to_send(NOW)
    request = next(d for d, _l, dst in out if dst == IHA and d[0] == n.MSG_RRQ)
    for data in (random, _mutate(_valid_reply(request, tnc=tnc), *mutation), codec.tunnel_data(random)):
        node.receive_datagram(data, src, local, NOW + 0.1)
        node.datagrams_to_send(NOW + 0.1)
        while node.next_event() is not None:
            pass
    node.handle_timer(NOW + 70)
    node.datagrams_to_send(NOW + 70)
    node.status(NOW + 70)


def test_the_unmutated_reply_is_accepted_so_mutations_start_from_deep_inside() -> None:
    """Otherwise the mutated replies would only exercise the first check that rejects them."""
    from mipcheck.mn.core import Registered
    from mipcheck.mn.detection_table import Mode

    client = RegistrationClient(
        MNConfig(home_address=HOA, home_agent=HA, spi=SPI, secret=KEY, local_address=LOCAL[0], udp_tunnel=True)
    )
    client.register(NOW)
    (request,) = [d for d, _l, _dst in client.datagrams_to_send(NOW)]
    client.receive_datagram(_valid_reply(request, tnc=True), (HA, 434), LOCAL, NOW + 0.1)
    event = client.next_event()
    assert isinstance(event, Registered) and event.tnc, event
    node = ReferenceMobileNode(PROFILE)
    node.move("eth0", "inside", None, NOW)
    request = next(d for d, _l, dst in node.datagrams_to_send(NOW) if dst == IHA and d[0] == n.MSG_RRQ)
    node.receive_datagram(_valid_reply(request, tnc=True), IHA, node.bindings()["eth0"], NOW + 0.1)
    assert node.core.mode("eth0") is Mode.INSIDE
