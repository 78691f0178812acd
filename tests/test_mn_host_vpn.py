"""The reference MN with the host's IPsec client as its VPN (``mn run --host-vpn``), sans-IO.

Access mode cvc (RFC 5265 2.3) the way the lab runs it: x-MIP with a
co-located care-of address to the x-HA, the host's VPN client (IKE and ESP
from the x-HoA, carried in x-MIP by the node), i-MIP from the VPN-TIA. The
home agents are the reference HA cores; the host's IPsec client is played
by the test (it only moves the datagrams the node sends from the VPN-TIA and
hands back what comes for it). No root needed.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from mipcheck.errors import MipcheckError
from mipcheck.ha import HAConfig, MobileNodeConfig
from mipcheck.ha.core import HomeAgent
from mipcheck.ha.tun import Tunnelled, from_stack, to_stack
from mipcheck.ha.tunnel import echo_request
from mipcheck.mn.detection_events import DataDecision, VpnReleased, VpnRequested
from mipcheck.mn.host_vpn import HostVpn, interface_address
from mipcheck.mn.profile import parse_mobile_node_profile
from mipcheck.mn.tun import TunMobileNode
from mipcheck.proto import codec
from mipcheck.proto.ip import build_udp_ipv4

HOA, XHOA = "10.1.0.100", "192.0.2.100"
IHA, XHA = ("10.1.0.1", 434), ("192.0.2.1", 434)
GATEWAY = "192.0.2.2"
PORT = 49434
COA_OUT, COA_IN = "198.51.100.10", "10.1.0.50"
TIA = "10.8.0.5"
CN = "10.1.0.10"
KEY = "00112233445566778899aabbccddeeff"


def _node() -> TunMobileNode:
    doc = {
        "dut": {"home_address": HOA, "interfaces": ["eth0"], "port": PORT, "correspondent": CN},
        "i_ha": {"address": IHA[0], "spi": 0x52650001, "secret_hex": KEY},
        "x_ha": {"address": XHA[0], "home_address": XHOA, "spi": 0x52660001, "secret_hex": KEY},
        "vpn": {
            "gateway": GATEWAY,
            "inner_address": "10.8.0.250",
            "spi_in": 4097,
            "spi_out": 4098,
            "encryption": "NULL",
            "integrity": "NULL",
        },
        "networks": {"inside": COA_IN, "outside": COA_OUT},
    }
    return TunMobileNode(parse_mobile_node_profile(doc), host_vpn=True)


def _ha(address: tuple[str, int], home: str, spi: int, trusted: tuple[str, ...]) -> HomeAgent:
    """An i-HA (with trusted networks) or an x-HA (without)."""
    mn = MobileNodeConfig(home, spi, bytes.fromhex(KEY))
    role = "i-ha" if trusted else "x-ha"
    config = HAConfig(address=address[0], port=address[1], role=role, trusted_networks=trusted, mobile_nodes=(mn,))
    return HomeAgent(config)


def _events(node: TunMobileNode) -> list:
    out = []
    while (ev := node.next_event()) is not None:
        out.append(ev)
    return out


def _carry(node: TunMobileNode, agents: dict, now: float, *, reachable: set) -> list:
    """Deliver the node's datagrams to the agents it can reach, their replies back; the rest is returned."""
    rest = []
    for data, local, dst in node.datagrams_to_send(now):
        if dst in agents and dst in reachable and data[:1] == bytes((1,)):
            d = agents[dst].handle(data, local, dst, now)
            if d.reply is not None:
                node.receive_datagram(d.reply, dst, local, now)
        else:
            rest.append((data, local, dst))
    return rest


@pytest.fixture
def outside():
    """The node outside: x-MIP registered, detection over, the VPN asked for (and not faked by the node)."""
    node = _node()
    iha = _ha(IHA, HOA, 0x52650001, ("10.0.0.0/8",))
    xha = _ha(XHA, XHOA, 0x52660001, ())
    agents = {IHA: iha, XHA: xha}
    now = time.time()
    node.move("eth0", "outside", COA_OUT, now)
    _carry(node, agents, now, reachable={XHA})  # 3.1: the firewall drops what goes to the i-HA
    now += node.profile.detection_period + 0.1
    while (at := node.get_timer()) is not None and at <= now:
        node.handle_timer(at)
        node.datagrams_to_send(at)  # the i-HA's retransmissions: dropped on the way
    events = _events(node)
    assert any(isinstance(e, VpnRequested) for e in events)
    assert node.core.mode("eth0").value == "vpn-setup"  # waits for the host's client: no static SAs used
    assert "eth0/vpn" not in node.bindings()
    return node, iha, xha, now


def test_the_x_home_address_travels_in_x_mip_both_ways(outside) -> None:
    node, _iha, xha, now = outside
    ike = build_udp_ipv4((XHOA, 4500), (GATEWAY, 4500), b"\x00\x00\x00\x00ike")
    assert node.from_stack(ike, now) is None  # not user data of the home address: no gate decision
    sent = [s for s in node.datagrams_to_send(now) if s[0][:1] == b"\x04"]
    assert [(lo, dst) for _d, lo, dst in sent] == [((COA_OUT, PORT), XHA)]
    assert to_stack(xha.handle(sent[0][0], (COA_OUT, PORT), XHA, now)) == ike  # the x-HA forwards it

    answer = build_udp_ipv4((GATEWAY, 4500), (XHOA, 4500), b"\x00\x00\x00\x00ike-answer")
    out = from_stack(xha, answer)
    assert isinstance(out, Tunnelled) and out.endpoint == (COA_OUT, PORT)
    node.receive_datagram(out.data, XHA, (COA_OUT, PORT), now)
    assert node.packets_for_stack() == [answer]  # to the host's VPN client, untouched


def test_vpn_tia_registration_and_user_data_go_as_plain_datagrams_for_the_host_to_encrypt(outside) -> None:
    node, iha, _xha, now = outside
    assert node.vpn_established("eth0", TIA, now)
    assert node.bindings()["eth0/vpn"] == (TIA, PORT)
    sent = [s for s in node.datagrams_to_send(now) if s[2] == IHA]
    assert [lo for _d, lo, _dst in sent] == [(TIA, PORT)]
    assert codec.parse_request(sent[0][0]).care_of_address == TIA  # i-MIP: the VPN-TIA is the care-of address (2.3)
    d = iha.handle(sent[0][0], (TIA, PORT), IHA, now)
    assert d.outcome == "accepted" and d.tnc  # the VPN-TIA is in the i-HA's trusted networks (4.3)
    node.receive_datagram(d.reply, IHA, (TIA, PORT), now)
    assert node.core.mode("eth0").value == "outside"

    request = echo_request(HOA, CN, ident=9, seq=1, payload=b"z" * 20)
    assert node.from_stack(request, now) is DataDecision.VIA_VPN
    data = [s for s in node.datagrams_to_send(now) if s[0][:1] == b"\x04"]
    assert data == [(codec.tunnel_data(request), (TIA, PORT), IHA)]  # not sealed, not in x-MIP: the host does that
    assert to_stack(iha.handle(data[0][0], (TIA, PORT), IHA, now)) == request

    reply = echo_request(CN, HOA, ident=9, seq=1, payload=b"z" * 20)
    out = from_stack(iha, reply)
    assert isinstance(out, Tunnelled) and out.endpoint == (TIA, PORT)
    node.receive_datagram(out.data, IHA, (TIA, PORT), now)
    assert node.packets_for_stack() == [reply]


def test_what_reaches_the_vpn_tia_socket_from_anyone_but_the_i_ha_is_dropped(outside) -> None:
    node, iha, _xha, now = outside
    node.vpn_established("eth0", TIA, now)
    _carry(node, {IHA: iha}, now, reachable={IHA})
    stray = codec.tunnel_data(echo_request(CN, HOA))
    node.receive_datagram(stray, ("10.1.0.66", 434), (TIA, PORT), now)
    assert node.packets_for_stack() == []
    assert node.status(now)["interfaces"]["eth0"]["counters"]["dropped/via-vpn"] == 1


def test_no_x_mip_for_the_x_home_address_without_an_x_ha_binding() -> None:
    node, now = _node(), time.time()
    ike = build_udp_ipv4((XHOA, 500), (GATEWAY, 500), b"ike")
    assert node.from_stack(ike, now) is None
    assert node.datagrams_to_send(now) == []
    node.move("eth0", "inside", COA_IN, now)  # detecting: not outside yet either
    node.from_stack(ike, now)
    assert [d for d, _lo, _dst in node.datagrams_to_send(now) if d[:1] == b"\x04"] == []
    assert node.status(now)["interfaces"]["eth0"]["counters"]["dropped/x-mip"] == 2


def test_moving_inside_releases_the_vpn_and_its_socket(outside) -> None:
    node, iha, _xha, now = outside
    node.vpn_established("eth0", TIA, now)
    _carry(node, {IHA: iha}, now, reachable={IHA})
    node.move("eth0", "inside", COA_IN, now + 1)
    _carry(node, {IHA: iha}, now + 1, reachable={IHA})
    assert node.core.mode("eth0").value == "inside"
    assert any(isinstance(e, VpnReleased) for e in _events(node))
    assert "eth0/vpn" not in node.bindings()


def test_the_static_node_still_brings_its_own_vpn_up() -> None:
    """Without host_vpn nothing changes: the profile's SAs, up as soon as the core asks."""
    node = _node()
    node.host_vpn = False
    xha = _ha(XHA, XHOA, 0x52660001, ())
    now = time.time()
    node.move("eth0", "outside", COA_OUT, now)
    _carry(node, {XHA: xha}, now, reachable={XHA})
    while (at := node.get_timer()) is not None and at <= now + node.profile.detection_period + 0.1:
        node.handle_timer(at)
        node.datagrams_to_send(at)
    assert node.core.mode("eth0").value == "inner-registering"
    assert node.core.interface("eth0").tunnel_inner_address == "10.8.0.250"


# ---------------------------------------------------------------- the shell's part


def test_host_vpn_commands_and_the_address_wait() -> None:
    assert interface_address("lo") == "127.0.0.1"
    assert interface_address("no-such-if0") is None
    assert asyncio.run(HostVpn("lo", "true", "true").bring_up()) == "127.0.0.1"
    with pytest.raises(MipcheckError, match=r"--vpn-up: exit status 3: nope"):
        asyncio.run(HostVpn("lo", "echo nope; exit 3").bring_up())


def test_host_vpn_needs_tun(tmp_path) -> None:
    from mipcheck.mn.runner import run_node

    with pytest.raises(MipcheckError, match="--host-vpn needs --tun"):
        run_node(str(tmp_path / "p.toml"), host_vpn=HostVpn("ipsec0"))


# ---------------------------------------------------------------- IP-in-IP instead of Tunnel Data (--encapsulation)


def test_ip_in_ip_node_registers_without_udp_tunnelling_and_tunnels_ip_in_ip() -> None:
    from mipcheck.proto.ip import PROTO_IPIP, build_ipv4
    from mipcheck.proto.numbers import EXT_UDP_TUNNEL_REQUEST

    node = TunMobileNode(_node().profile, ipip=True)
    iha = _ha(IHA, HOA, 0x52650001, ("10.0.0.0/8",))
    now = time.time()
    node.move("eth0", "inside", COA_IN, now)
    for data, local, dst in node.datagrams_to_send(now):
        assert EXT_UDP_TUNNEL_REQUEST not in [e.type for e in codec.parse_request(data).extensions]
        if dst == IHA:
            d = iha.handle(data, local, dst, now)
            node.receive_datagram(d.reply, dst, local, now)
    assert node.core.mode("eth0").value == "inside"
    [binding] = iha.bindings[HOA]
    assert not binding.udp_tunnel  # the home agent will tunnel IP-in-IP (RFC 2003)

    request = echo_request(HOA, CN, ident=3, seq=1)
    assert node.from_stack(request, now) is DataDecision.PLAINTEXT
    assert [d for d, _lo, _dst in node.datagrams_to_send(now) if d[:1] == b"\x04"] == []  # no Tunnel Data
    assert node.ipip_to_send() == [(request, COA_IN, IHA[0])]  # for the raw socket: inner, outer source, dest

    reply = echo_request(CN, HOA, ident=3, seq=1)
    node.receive_ipip(build_ipv4(IHA[0], COA_IN, PROTO_IPIP, reply), now)
    assert node.packets_for_stack() == [reply]
    node.receive_ipip(build_ipv4("10.1.0.66", COA_IN, PROTO_IPIP, reply), now)  # not from a home agent
    node.receive_ipip(build_ipv4(IHA[0], COA_IN, 17, reply), now)  # not IP-in-IP
    node.receive_ipip(b"\x45junk", now)
    assert node.packets_for_stack() == []


def test_ip_in_ip_through_the_host_vpn_leaves_from_the_vpn_tia(outside) -> None:
    from mipcheck.proto.ip import PROTO_IPIP, build_ipv4

    node, iha, _xha, now = outside
    node.ipip = True
    node.vpn_established("eth0", TIA, now)
    for data, local, dst in node.datagrams_to_send(now):
        if dst == IHA:
            node.receive_datagram(iha.handle(data, local, dst, now).reply, IHA, local, now)
    request = echo_request(HOA, CN, ident=4, seq=1)
    assert node.from_stack(request, now) is DataDecision.VIA_VPN
    assert node.ipip_to_send() == [(request, TIA, IHA[0])]  # i-MIP IP-in-IP from the VPN-TIA, for charon
    ike = build_udp_ipv4((XHOA, 4500), (GATEWAY, 4500), b"\x00\x00\x00\x01esp")
    node.from_stack(ike, now)
    assert node.ipip_to_send() == [(ike, COA_OUT, XHA[0])]  # x-MIP IP-in-IP from the care-of address
    reply = echo_request(CN, HOA, ident=4, seq=1)
    node.receive_ipip(build_ipv4(IHA[0], TIA, PROTO_IPIP, reply), now)
    back = build_udp_ipv4((GATEWAY, 4500), (XHOA, 4500), b"\x00\x00\x00\x01esp")
    node.receive_ipip(build_ipv4(XHA[0], COA_OUT, PROTO_IPIP, back), now)
    assert node.packets_for_stack() == [reply, back]
