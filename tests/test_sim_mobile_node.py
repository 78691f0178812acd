"""The reference mobile node on the simulated enterprise (mipcheck.sim.mobile_node, .vpn, .enterprise).

RFC 5265 Figure 1 in virtual time, T_MONITOR 60 s: inside (mode c), outside
(mode cvc: x-MIP, VPN, i-MIP through it), back inside; an i-HA without TNC;
the firewall of 3.1; and a mobile node that skips the VPN, caught from the
network log alone, the judgement an MN suite case can make without looking
inside the mobile node.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from mipcheck.mn.core import Registered
from mipcheck.mn.detection_events import (
    ClientEvent,
    DataDecision,
    Direction,
    Inside,
    Role,
    UntrustedReply,
    VpnReleased,
    VpnRequested,
)
from mipcheck.mn.detection_table import Mode
from mipcheck.outcomes import Party, Violation
from mipcheck.proto import codec
from mipcheck.proto import numbers as n
from mipcheck.sim.enterprise import EXTERNAL, INTERNAL, MN_PORT, Enterprise
from mipcheck.sim.network import BLOCKED, DELIVERED
from mipcheck.sim.vpn import TUNNEL_PORT, decapsulate, encapsulate

NOW = 1_800_000_000.0
PLAIN, VPN, DROPPED = DataDecision.PLAINTEXT, DataDecision.VIA_VPN, DataDecision.DROPPED


def enterprise(**kw: Any) -> Enterprise:
    return Enterprise(epoch=NOW, **kw)


def sent_between(mn: Any, start: float, end: float) -> set[DataDecision]:
    """The gate's decisions on the node's own packets sent in [start, end) seconds of the scenario."""
    return {r.decision for r in mn.decisions(Direction.SEND) if start <= r.at - NOW < end and not r.released}


def of(mn: Any, kind: type) -> list[Any]:
    return [e for e in mn.events if isinstance(e, kind)]


def no_vpn_skip(ent: Enterprise) -> list[Violation]:
    """MN-NO-VPN-SKIP (2.3) from the network log and the address plan alone.

    A capture on the external access network sees the mobile node's datagrams.
    Bound for the enterprise, only two kinds may leave it outside the VPN: the
    plaintext registration requests of detection to the i-HA (3.3), which the
    firewall stops (3.1), and nothing else; the VPN's own datagrams go from the
    x-HoA to the gateway, never to the internal network.
    """
    found = []
    for t in ent.network.log:
        if not (ent.on_external_access(t.src[0]) and ent.in_enterprise(t.dst[0])):
            continue
        if t.dst == ent.iha_place and codec.parse_request(t.data) is not None:
            continue  # 3.3: parallel detection asks the i-HA in plaintext
        found.append(
            Violation(
                "5265-2.3-NO-VPN-SKIP",
                Party.MOBILE_NODE,
                "MN-NO-VPN-SKIP",
                f"{len(t.data)} octets from {t.src[0]}:{t.src[1]} to {t.dst[0]}:{t.dst[1]} at +{t.time - NOW:.3f} s "
                f"left the external network outside the VPN ({t.fate})",
            )
        )
    return found


def tnc_in(data: bytes) -> bool:
    rep = codec.parse_reply(data)
    return rep is not None and any(e.type == n.EXT_TNC for e in rep.extensions)


# ---------------------------------------------------------------- the tunnel's encoding


def test_tunnel_packets_round_trip_and_reject_garbage() -> None:
    data = encapsulate(("10.8.0.1", 49434), ("10.1.0.1", 434), b"rrq")
    inner = decapsulate(data)
    assert inner is not None and (inner.src, inner.dst, inner.payload) == (
        ("10.8.0.1", 49434),
        ("10.1.0.1", 434),
        b"rrq",
    )
    assert decapsulate(b"rrq") is None
    assert decapsulate(data[:-1]) is None  # length mismatch
    assert decapsulate(data[:10] + b"\0\0" + data[12:]) is None  # bad header checksum


# ---------------------------------------------------------------- inside, outside, inside


def test_inside_outside_inside() -> None:
    """Several virtual minutes, T_MONITOR 60 s, the i-HA behind the firewall of 3.1, in well under a second."""
    t0 = time.monotonic()
    ent = enterprise()
    mn = ent.mobile_node()
    mn.traffic(1.0)
    first = ent.move(mn, "eth0", INTERNAL)
    ent.run_for(150)
    outside = ent.move(mn, "eth0", EXTERNAL)
    ent.run_for(150)
    second = ent.move(mn, "eth0", INTERNAL)
    ent.run_for(150)
    elapsed = time.monotonic() - t0
    assert elapsed < 1.0, elapsed
    log = ent.network.log
    identity = ent.identities[0]

    # Inside (mode c): registered with TNC, re-registering every T_MONITOR - N = 48 s, plaintext data.
    replies = [t for t in log if t.src == ent.iha_place and t.dst == (first, MN_PORT)]
    assert replies and all(tnc_in(t.data) for t in replies)
    rereg = [round(t.time - NOW) for t in log if t.dst == ent.iha_place and t.src == (first, MN_PORT)]
    assert rereg[:4] == [0, 48, 96, 144]
    assert sent_between(mn, 1, 150) == {PLAIN}
    assert any(t.src == (first, mn.data_port) and t.dst == ent.correspondent_place and t.fate == DELIVERED for t in log)

    # Outside (mode cvc): x-HA, detection period 3 s, VPN from the x-HoA, inner registration with 'T'.
    (requested,) = [e for e in of(mn, VpnRequested)]
    assert (requested.x_home_address, round(requested.at - NOW)) == (identity.outer.home_address, 153)
    assert sent_between(mn, 150.5, 153) == {DROPPED}  # 3.2.2: nothing until the tunnels are up
    inbound = [c for c in ent.vpn.carried if c.inbound and c.packet.dst == ent.iha_place]
    assert inbound and all(c.fate == "forwarded" and c.outer == identity.outer.home_address for c in inbound)
    tia = inbound[0].packet.src[0]
    req = codec.parse_request(inbound[0].packet.payload)
    assert req is not None and req.care_of_address == tia and req.flags & n.FLAG_T  # 2.3: VPN-TIA, T-bit
    assert any(t.src == (tia, MN_PORT) and t.dst == ent.iha_place and t.fate == DELIVERED for t in log)  # {2c}
    assert sent_between(mn, 154, 300) == {VPN}
    # Data via the VPN only: the correspondent heard the node from its VPN-TIA, never from the outside address.
    heard = {r.src[0] for r in ent.correspondent.received if 151 < r.at - NOW < 300}
    assert heard == {tia}
    assert not any(t.src[0] == outside and t.dst == ent.correspondent_place for t in log)
    tunnelled = [t for t in log if ent.vpn.in_vpn(t)]
    assert tunnelled and all(
        t.src[0] == identity.outer.home_address or t.dst[0] == identity.outer.home_address for t in tunnelled
    )
    assert all(decapsulate(t.data) is not None for t in tunnelled)

    # Back inside: plaintext again, the VPN released, the x-HA de-registered (3.3).
    assert sent_between(mn, 302, 450) == {PLAIN}
    assert [round(e.at - NOW) for e in of(mn, Inside)] == [0, 300]
    assert of(mn, VpnReleased) and not ent.vpn.tunnels and mn.tunnel_inner_address("eth0") is None
    assert identity.outer.home_address not in ent.xha.bindings
    assert ent.iha.bindings[identity.inner.home_address][0].care_of_address == second
    assert mn.location("eth0") == INTERNAL and mn.mode("eth0") is Mode.INSIDE
    # Judged both ways: the node's events (safety checker) and the wire (no VPN skip).
    assert not mn.checker.violations and mn.checker.plaintext_checked > 500
    assert no_vpn_skip(ent) == []


def test_the_firewall_keeps_the_i_ha_from_outside() -> None:
    """3.1: from outside, plaintext registration with the i-HA fails; the network log says why."""
    ent = enterprise()
    mn = ent.mobile_node()
    coa = ent.move(mn, "eth0", EXTERNAL)
    ent.run_for(30)
    to_iha = [t for t in ent.network.log if t.dst == ent.iha_place]
    direct = [t for t in to_iha if t.src[0] == coa]
    assert [round(t.time - NOW) for t in direct] == [0, 1, 3]  # retransmitted for the detection period (3.3)
    assert {t.fate for t in direct} == {BLOCKED}
    assert {t.fate for t in to_iha if t.src[0] != coa} == {DELIVERED}  # the rest came through the VPN
    assert all(not ent.on_external_access(d.source[0]) for d in ent.iha_actor.decisions)
    # A tester on the external network is stopped too, whatever it sends.
    sock = ent.network.socket(ent.care_of_address(EXTERNAL))
    sock.send(b"anything", ent.iha_place)
    ent.run_for(1)
    assert ent.network.log[-1].fate == BLOCKED and not sock.queue
    assert mn.mode("eth0") is Mode.OUTSIDE


def test_an_i_ha_without_tnc_keeps_the_node_on_the_vpn_inside() -> None:
    """3.2.3, 4.1: an accepted i-HA reply without TNC does not make the node inside; IPsec stays on."""
    ent = enterprise(iha_faults=("omit-tnc",))
    mn = ent.mobile_node()
    mn.traffic(1.0)
    coa = ent.move(mn, "eth0", INTERNAL)
    ent.run_for(120)
    assert of(mn, UntrustedReply) and not of(mn, Inside)
    direct = [e.event for e in of(mn, ClientEvent) if e.role is Role.IHA and isinstance(e.event, Registered)]
    assert direct and not any(r.tnc for r in direct)
    assert mn.mode("eth0") is Mode.OUTSIDE and mn.tunnel_inner_address("eth0") is not None
    assert sent_between(mn, 0, 120) == {VPN}  # the untrusted reply ended detection at once (3.3)
    assert not any(t.src == (coa, mn.data_port) for t in ent.network.log)  # no plaintext data at all
    assert not mn.checker.violations


def test_interfaces_are_separate_parties_on_the_network() -> None:
    """3.2.1: one interface inside in plaintext, the other outside through the VPN, at the same time."""
    ent = enterprise()
    mn = ent.mobile_node(interfaces=("eth0", "wlan0"))
    mn.traffic(2.0)
    ent.move(mn, "eth0", INTERNAL)
    ent.move(mn, "wlan0", EXTERNAL)
    ent.run_for(100)
    assert (mn.mode("eth0"), mn.mode("wlan0")) == (Mode.INSIDE, Mode.OUTSIDE)
    by_iface = {
        i: {r.decision for r in mn.decisions() if r.interface == i and r.at - NOW > 10} for i in ("eth0", "wlan0")
    }
    assert by_iface == {"eth0": {PLAIN}, "wlan0": {VPN}}
    ent.move(mn, "wlan0", "down")
    ent.run_for(5)
    assert mn.mode("wlan0") is Mode.DOWN and not ent.vpn.tunnels and mn.mode("eth0") is Mode.INSIDE
    assert not mn.checker.violations and no_vpn_skip(ent) == []


# ---------------------------------------------------------------- an MN fault, judged from the wire alone


@pytest.mark.parametrize("broken", [False, True], ids=["conformant", "skip_vpn"])
def test_a_node_skipping_the_vpn_is_caught_from_the_network_log(broken: bool) -> None:
    """2.3 MUST NOT skip the VPN layer: enterprise-bound data left the external network in plaintext."""
    ent = enterprise()
    mn = ent.mobile_node(behaviour=("skip_vpn",) if broken else ())
    mn.traffic(1.0)
    coa = ent.move(mn, "eth0", EXTERNAL)
    ent.run_for(60)
    found = no_vpn_skip(ent)
    if not broken:
        assert found == [] and mn.mode("eth0") is Mode.OUTSIDE
        return
    assert found and {v.rule_id for v in found} == {"5265-2.3-NO-VPN-SKIP"}
    assert {v.code for v in found} == {"MN-NO-VPN-SKIP"} and {v.party for v in found} == {Party.MOBILE_NODE}
    assert f"from {coa}:{mn.data_port} to 10.3.0.10:7" in found[0].detail and "blocked" in found[0].detail
    assert not ent.vpn.carried and not of(mn, VpnRequested)  # the VPN was never used
    # The node's own events agree (the independent checker), but the wire alone was enough.
    assert mn.checker.violations


def test_the_gateway_forwards_only_for_an_up_vpn_and_its_vpn_tia() -> None:
    """2.3: IPsec selectors restrict the client address to the VPN-TIA; no VPN, no way in."""
    ent = enterprise()
    assert ent.vpn.place[1] == TUNNEL_PORT
    sock = ent.network.socket("192.0.2.200", TUNNEL_PORT)
    probe = encapsulate(("10.8.0.1", 5), ent.correspondent_place, b"hello")
    sock.send(probe, ent.vpn.place)
    ent.run_for(1)
    tia = ent.vpn.connect("192.0.2.200", ent.now)
    sock.send(encapsulate(("10.8.0.99", 5), ent.correspondent_place, b"spoofed"), ent.vpn.place)
    sock.send(encapsulate((tia, 5), ent.correspondent_place, b"hello"), ent.vpn.place)
    ent.run_for(1)
    assert [c.fate.split(":")[0] for c in ent.vpn.carried] == ["dropped", "dropped", "forwarded", "forwarded"]
    assert [r.src for r in ent.correspondent.received] == [(tia, 5)]
    (_at, src, data) = sock.queue.popleft()  # the echo came back through the tunnel
    inner = decapsulate(data)
    assert (
        src == ent.vpn.place
        and inner is not None
        and (inner.src, inner.dst, inner.payload) == (ent.correspondent_place, (tia, 5), b"hello")
    )
    ent.vpn.disconnect("192.0.2.200")
    sock.send(encapsulate((tia, 5), ent.correspondent_place, b"again"), ent.vpn.place)
    ent.run_for(1)
    assert ent.vpn.carried[-1].fate == "dropped: no VPN from this address" and len(ent.correspondent.received) == 1
