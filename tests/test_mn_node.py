"""The reference mobile node (mipcheck.mn.node) on the simulated network, against parties played with Scapy.

Each scenario moves the node and plays the i-HA, the x-HA and the VPN
gateway of docs/design/mn-loopback.md (tests/mn_peer.py); the checks read
only what reached the played parties, the wire, as the MN suite will.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from mn_peer import CN, GW, HOA, INSIDE, OUTSIDE, PORT, SPI_OUT, TIA, XHOA, Played, make_profile
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.ipsec import ESP

from mipcheck.clock import VirtualClock
from mipcheck.layers import MIPExtMNHAAuth, MIPExtUDPTunnelRequest, MobileIPMessage, TunnelData
from mipcheck.mn.faults import behaviour_for
from mipcheck.mn.node import DataPlane, Moved, ReferenceMobileNode
from mipcheck.sim.network import SimNetwork
from mipcheck.sim.reference_node import SimReferenceNode

NOW = 1_800_000_000.0


def lab(*faults: str, played: dict[str, Any] | None = None, **dut: Any) -> tuple[SimNetwork, Played, SimReferenceNode]:
    profile = make_profile(**dut)
    net = SimNetwork(VirtualClock(epoch=NOW))
    peer = Played(profile, **(played or {}))
    peer.attach(net)
    return net, peer, SimReferenceNode(net, ReferenceMobileNode(profile, behaviour=behaviour_for(faults)))


# ---------------------------------------------------------------- scenarios as steps

Step = Callable[[SimNetwork, Played, SimReferenceNode], None]


def move(network: str, interface: str = "eth0") -> Step:
    def step(net: SimNetwork, peer: Played, mn: SimReferenceNode) -> None:
        mn.move(interface, network)

    return step


def run(seconds: float) -> Step:
    return lambda net, peer, mn: net.run_for(seconds)


def echo(coa: str, *, via_vpn: bool, seq: int = 1) -> Step:
    def step(net: SimNetwork, peer: Played, mn: SimReferenceNode) -> None:
        peer.echo(coa, via_vpn=via_vpn, seq=seq)
        net.wake(peer)
        net.run_for(0.5)

    return step


def iha(mode: str) -> Step:
    return lambda net, peer, mn: setattr(peer, "iha_mode", mode)


SCENARIOS: dict[str, tuple[dict[str, Any], list[Step], dict[str, int]]] = {
    # mode c: a TD echo from the i-HA is answered with a TD echo reply to the i-HA
    "inside": ({}, [move("inside"), run(1), echo(INSIDE, via_vpn=False)], {"echo-plaintext": 1, "echo-vpn": 0}),
    # mode cvc: answered through the VPN only; the plaintext one (wrong side, 4.1) is not answered
    "outside": (
        {},
        [move("outside"), run(5), echo(OUTSIDE, via_vpn=True), echo(OUTSIDE, via_vpn=False, seq=2)],
        {"echo-vpn": 1, "echo-plaintext": 0, "inner-rrq": 1},
    ),
    # inside, but the echo arrives through the VPN: the wrong side (3.2)
    "inside, echo via VPN": ({}, [move("inside"), run(1), echo(INSIDE, via_vpn=True)], {"echo-vpn": 0}),
    # 3.2.4: the i-HA stops answering; once T_MONITOR has passed, no more echo replies
    "T_MONITOR lapse": (
        {"rereg_grace": 2},
        [move("inside"), run(30), echo(INSIDE, via_vpn=False), iha("silent"), run(31), echo(INSIDE, via_vpn=False)],
        {"echo-plaintext": 1},
    ),
    # 3.2.2: back inside after outside: plaintext again, and nothing through the VPN
    "outside then inside": (
        {},
        [move("outside"), run(5), move("inside"), run(1), echo(INSIDE, via_vpn=False)],
        {"echo-plaintext": 1, "echo-vpn": 0},
    ),
    "down": ({}, [move("inside"), run(1), move("down"), echo(INSIDE, via_vpn=False)], {"echo-plaintext": 0}),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario(name: str) -> None:
    dut, steps, expected = SCENARIOS[name]
    net, peer, mn = lab(**dut)
    for step in steps:
        step(net, peer, mn)
    assert {what: len(peer.of(what)) for what in expected} == expected


# ---------------------------------------------------------------- the stacks, field by field


def _sent(net: SimNetwork, dst: tuple[str, int]) -> list[tuple[tuple[str, int], bytes]]:
    return [(tx.src, tx.data) for tx in net.log if tx.dst == dst]


def _check_request(req: Any, *, hoa: str, coa: str, flags: str) -> None:
    assert (req.home_address, req.care_of_address) == (hoa, coa)
    assert "".join(f for f in "SBDMGT" if getattr(req, f)) == flags
    udp, auth = req.extensions  # RFC 3519 3.1: the UDP Tunnel Request before the authenticator
    assert isinstance(udp, MIPExtUDPTunnelRequest) and (udp.length, udp.F, udp.encapsulation) == (6, 1, 4)
    assert isinstance(auth, MIPExtMNHAAuth)


def test_inside_registration_and_echo_layout() -> None:
    net, peer, mn = lab()
    mn.move("eth0", "inside")
    net.run_for(1)
    iha_requests = [r for r in peer.of("rrq") if r.home_address == HOA]
    assert len(iha_requests) == 1
    _check_request(iha_requests[0], hoa=HOA, coa=INSIDE, flags="D")
    xha = [r for r in peer.of("rrq") if r.home_address == XHOA]
    assert [r.lifetime > 0 for r in xha] == [True, False]  # 3.3: both at once, then the x-HA de-registration
    peer.echo(INSIDE, via_vpn=False, ident=0x1234, seq=9, payload=b"abc")
    net.wake(peer)
    net.run_for(1)
    (src, data), *_ = [s for s in _sent(net, peer.iha) if MobileIPMessage(s[1]).haslayer(ICMP)]
    assert src == (INSIDE, PORT)
    td = MobileIPMessage(data)
    assert isinstance(td, TunnelData) and (td.next_header, td.reserved) == (4, 0)
    ip, icmp = td[IP], td[ICMP]
    assert (ip.src, ip.dst, icmp.type, icmp.id, icmp.seq, bytes(icmp.payload)) == (HOA, CN, 0, 0x1234, 9, b"abc")
    assert IP(bytes(ip)).chksum == ip.chksum and ICMP(bytes(icmp)).chksum == icmp.chksum


def test_outside_stacks() -> None:
    net, peer, mn = lab()
    mn.move("eth0", "outside")
    net.run_for(5)
    (xreq,) = [r for r in peer.of("rrq") if r.home_address == XHOA]
    _check_request(xreq, hoa=XHOA, coa=OUTSIDE, flags="D")
    (inner,) = peer.of("inner-rrq")
    _check_request(inner, hoa=HOA, coa=TIA, flags="DT")  # 2.3: VPN-TIA as co-located CoA, 'T'
    to_xha = [MobileIPMessage(d) for s, d in _sent(net, peer.xha) if s == (OUTSIDE, PORT)]
    esp = [m for m in to_xha if isinstance(m, TunnelData)]
    assert esp and all(m.next_header == 4 for m in esp)
    outer = esp[0][IP]
    assert (outer.src, outer.dst, outer[UDP].sport, outer[UDP].dport, outer[ESP].spi) == (XHOA, GW, 4500, 4500, SPI_OUT)
    inner_ip = peer.gw_rx.decrypt(IP(bytes(outer)))
    assert (inner_ip.src, inner_ip.dst, inner_ip[UDP].sport, inner_ip[UDP].dport) == (TIA, peer.iha[0], PORT, 434)
    # 2.3: nothing for the enterprise outside ESP: no plaintext request to the i-HA after detection
    assert not [s for s, d in _sent(net, peer.iha) if MobileIPMessage(d).haslayer(ICMP)]


# ---------------------------------------------------------------- the node's own interface


def test_move_checks_its_input_and_never_reads_the_network_name() -> None:
    node = ReferenceMobileNode(make_profile())
    for args in (
        ("wlan9", "inside", None),
        ("eth0", "lab", None),
        ("eth0", "down", "10.2.0.5"),
        ("eth0", "inside", "x"),
    ):
        with pytest.raises(ValueError):
            node.move(*args, NOW)
    node.move("eth0", "outside", INSIDE, NOW)  # a name only: the address decides, by detection
    assert node.bindings() == {"eth0": (INSIDE, PORT)}
    assert node.status(NOW)["interfaces"]["eth0"]["network"] == "outside"
    node.move("eth0", "down", None, NOW + 1)
    assert node.bindings() == {} and node.get_timer() is None


def test_status_and_events_are_json_and_keep_secrets() -> None:
    net, peer, mn = lab("no-inner-t-bit")
    mn.move("eth0", "inside")
    net.run_for(1)
    peer.echo(INSIDE, via_vpn=False)
    net.wake(peer)
    net.run_for(1)
    status = mn.status()
    text = json.dumps(status)
    assert status["faults"] == ["no-inner-t-bit"] and status["interfaces"]["eth0"]["mode"] == "inside"
    assert status["interfaces"]["eth0"]["counters"] == {"echo-reply-out/plaintext": 1, "echo-request-in/plaintext": 1}
    assert "69696969" not in text and bytes(range(16)).hex() not in text
    assert isinstance(mn.events[0], Moved) and any(isinstance(e, DataPlane) for e in mn.events)


def test_data_every_originates_echo_requests() -> None:
    profile = make_profile()
    net = SimNetwork(VirtualClock(epoch=NOW))
    peer = Played(profile)
    peer.attach(net)
    mn = SimReferenceNode(net, ReferenceMobileNode(profile, data_every=2.0))
    mn.move("eth0", "inside")
    net.run_for(5)
    requests = [p for p in peer.of("echo-plaintext") if p[ICMP].type == 8]
    assert len(requests) == 2 and requests[0].src == HOA and requests[0].dst == CN


def test_sim_adaptor_leaves_the_node_where_it_was_when_the_place_is_taken() -> None:
    net, peer, mn = lab()
    net.socket(OUTSIDE, PORT)
    mn.move("eth0", "inside")
    with pytest.raises(OSError):
        mn.move("eth0", "outside")
    assert mn.node.bindings() == {"eth0": (INSIDE, PORT)}
