"""The reference MN registering through a foreign agent (access modes f and fvc), sans-IO.

RFC 5944 2.4, 3.6.1.1, 3.7: the mobile node hears an Agent Advertisement,
takes the agent's care-of address, and sends its requests to the agent from
its address on the agent's link with 'D' clear (and 'T' when the agent offers
reverse tunnelling, RFC 3024); the agent relays them and the replies. RFC 5265
3.2.3 does not change: the node is inside only on an authenticated TNC from the
i-HA. The foreign agent and both home agents are the reference cores; the test
carries the datagrams between them (no sockets, no root).
"""

from __future__ import annotations

import time

import pytest

from mipcheck.fa.config import FAConfig
from mipcheck.fa.core import ForeignAgent
from mipcheck.ha import HAConfig, MobileNodeConfig
from mipcheck.ha.core import HomeAgent
from mipcheck.mn.config import MNConfig
from mipcheck.mn.core import RegistrationClient
from mipcheck.mn.node import AgentHeard, ReferenceMobileNode
from mipcheck.mn.profile import parse_mobile_node_profile
from mipcheck.proto import codec
from mipcheck.proto import numbers as n
from mipcheck.proto.agent import FLAG_BITS, build_advertisement, parse_advertisement_packet

HOA, XHOA = "10.1.0.100", "192.0.2.100"
IHA, XHA = ("10.1.0.1", 434), ("192.0.2.1", 434)
IFA, XFA = ("10.2.0.1", 434), ("203.0.113.1", 434)
PORT = 49434
KEY = "00112233445566778899aabbccddeeff"


def _node() -> ReferenceMobileNode:
    doc = {
        "dut": {"home_address": HOA, "interfaces": ["eth0"], "port": PORT},
        "i_ha": {"address": IHA[0], "spi": 0x52650001, "secret_hex": KEY},
        "x_ha": {"address": XHA[0], "home_address": XHOA, "spi": 0x52660001, "secret_hex": KEY},
        "vpn": {
            "gateway": "192.0.2.2",
            "inner_address": "10.8.0.250",
            "spi_in": 4097,
            "spi_out": 4098,
            "encryption": "NULL",
            "integrity": "NULL",
        },
        "networks": {"inside": "10.1.0.50", "outside": "198.51.100.10"},
    }
    return ReferenceMobileNode(parse_mobile_node_profile(doc))


def _ha(address: tuple[str, int], home: str, spi: int, trusted: tuple[str, ...]) -> HomeAgent:
    mn = MobileNodeConfig(home, spi, bytes.fromhex(KEY))
    role = "i-ha" if trusted else "x-ha"
    return HomeAgent(
        HAConfig(address=address[0], port=address[1], role=role, trusted_networks=trusted, mobile_nodes=(mn,))
    )


def _fa(place: tuple[str, int], flags: str = "FT") -> ForeignAgent:
    return ForeignAgent(FAConfig(address=place[0], port=place[1], flags=flags))


class Link:
    """Carries datagrams: node <-> foreign agent <-> home agents (the unreachable ones lose them)."""

    def __init__(self, node: ReferenceMobileNode, fa: ForeignAgent, agents: dict, reachable: set) -> None:
        self.node, self.fa, self.agents, self.reachable = node, fa, agents, reachable
        self.relayed: list[bytes] = []

    def run(self, now: float) -> None:
        for _ in range(4):
            for data, local, dst in self.node.datagrams_to_send(now):
                if dst == self.fa.local:
                    self.fa.receive_datagram(data, local, dst, now)
            for data, local, dst in self.fa.datagrams_to_send(now):
                if dst in self.agents and dst in self.reachable:
                    self.relayed.append(data)
                    d = self.agents[dst].handle(data, local, dst, now)
                    if d.reply is not None:
                        self.fa.receive_datagram(d.reply, dst, local, now)
                elif dst[0] == self.node.profile.home_address or dst in self.node.bindings().values():
                    self.node.receive_datagram(data, local, dst, now)


def _events(node: ReferenceMobileNode) -> list:
    out = []
    while (ev := node.next_event()) is not None:
        out.append(ev)
    return out


def test_mode_f_inside_through_the_i_fa() -> None:
    node, fa, now = _node(), _fa(IFA), time.time()
    iha = _ha(IHA, HOA, 0x52650001, ("10.0.0.0/8",))
    xha = _ha(XHA, XHOA, 0x52660001, ())
    node.move_to_agent("eth0", "inside", HOA, now)
    [(iface, solicitation)] = node.link_packets()
    assert iface == "eth0" and solicitation[9] == 1 and solicitation[20] == n.ICMP_ROUTER_SOLICITATION
    assert solicitation[8] == 1  # TTL 1 (RFC 5944 2.2)
    assert node.bindings() == {} and node.datagrams_to_send(now) == []  # nothing before the agent is heard

    assert node.agent_advertisement("eth0", fa.advertisement("255.255.255.255"), now)
    assert node.bindings() == {"eth0": (HOA, PORT)}  # requests leave from our address on the agent's link
    link = Link(node, fa, {IHA: iha, XHA: xha}, reachable={IHA, XHA})
    sent = node.datagrams_to_send(now)
    assert {dst for _d, _lo, dst in sent} == {IFA}  # both go to the foreign agent (RFC 5944 3.6.1.1)
    for data, _lo, _dst in sent:
        rq = codec.parse_request(data)
        assert rq.care_of_address == IFA[0]  # the agent's care-of address
        assert not rq.flags & n.FLAG_D and rq.flags & n.FLAG_T  # not co-located; reverse tunnel (offered)
        assert n.EXT_UDP_TUNNEL_REQUEST not in [e.type for e in rq.extensions]  # the agent is the tunnel's end
        fa.receive_datagram(data, (HOA, PORT), IFA, now)
    link.run(now)
    assert node.core.mode("eth0").value == "inside"  # the i-HA's TNC (the agent's address is trusted, 4.3)
    [binding] = iha.bindings[HOA]
    assert binding.care_of_address == IFA[0] and not binding.udp_tunnel  # IP-in-IP to the agent (RFC 5944 4.1)
    status = node.status(now)["interfaces"]["eth0"]
    assert status["foreign_agent"] == IFA[0] and status["care_of_address"] == IFA[0]
    assert status["data"] == "plaintext"


def test_mode_fvc_outside_through_the_x_fa_then_the_vpn() -> None:
    node, fa, now = _node(), _fa(XFA), time.time()
    iha = _ha(IHA, HOA, 0x52650001, ("10.0.0.0/8",))
    xha = _ha(XHA, XHOA, 0x52660001, ())
    node.move_to_agent("eth0", "outside", XHOA, now)
    node.agent_advertisement("eth0", fa.advertisement("255.255.255.255"), now)
    link = Link(node, fa, {IHA: iha, XHA: xha}, reachable={XHA})  # 3.1: the i-HA is not reachable from outside
    link.run(now)
    assert node.core.mode("eth0").value == "tentatively-outside"
    later = now + node.profile.detection_period + 0.1
    while (at := node.get_timer()) is not None and at <= later:
        node.handle_timer(at)
        link.run(at)
    # static SAs here: the VPN comes up at once; i-MIP from the VPN-TIA is co-located (not through the agent)
    det = node.core.interface("eth0")
    assert det.foreign_agent is not None and det.care_of_address == XFA[0]
    assert det.tunnel_inner_address == "10.8.0.250"
    assert node.core.mode("eth0").value == "inner-registering"


@pytest.mark.parametrize(
    ("flags", "waiting", "why"),
    [
        ("T", True, "not a foreign agent (no 'F')"),
        ("FB", True, "busy ('B')"),
        ("FT", False, "the interface waits for no agent"),
    ],
)
def test_advertisements_that_are_not_used_say_why(flags: str, waiting: bool, why: str) -> None:
    node, now = _node(), time.time()
    if waiting:
        node.move_to_agent("eth0", "inside", HOA, now)
    _events(node)
    advertisement = build_advertisement(
        source=IFA[0],
        destination="255.255.255.255",
        sequence=1,
        registration_lifetime=1800,
        flags=sum(FLAG_BITS[f] for f in flags),
        care_of_addresses=(IFA[0],),
        lifetime=3,
    )
    assert not node.agent_advertisement("eth0", advertisement, now)
    heard = [e for e in _events(node) if isinstance(e, AgentHeard)]
    assert len(heard) == 1 and not heard[0].used and heard[0].why_not == why
    assert node.awaiting_agent() == (("eth0",) if waiting else ())


def test_no_reverse_tunnel_unless_the_agent_offers_it() -> None:
    node, now = _node(), time.time()
    node.move_to_agent("eth0", "inside", HOA, now)
    node.agent_advertisement("eth0", _fa(IFA, "F").advertisement("255.255.255.255"), now)
    for data, _lo, _dst in node.datagrams_to_send(now):
        assert not codec.parse_request(data).flags & n.FLAG_T  # RFC 3024: 'T' only where offered


def test_garbage_on_the_link_is_ignored() -> None:
    node, now = _node(), time.time()
    node.move_to_agent("eth0", "inside", HOA, now)
    for junk in (b"", b"\x45" + bytes(30), bytes(64)):
        assert node.agent_advertisement("eth0", junk, now) is False
    assert node.awaiting_agent() == ("eth0",)


def test_client_through_an_agent_accepts_replies_only_from_it() -> None:
    cfg = MNConfig(HOA, IHA[0], 0x52650001, bytes.fromhex(KEY), local_address=HOA, care_of_address=IFA[0],
                   colocated=False, foreign_agent=IFA[0])  # fmt: skip
    client = RegistrationClient(cfg)
    now = time.time()
    client.register(now)
    [(request, _local, dst)] = client.datagrams_to_send(now)
    assert dst == IFA
    reply = _ha(IHA, HOA, 0x52650001, ("10.0.0.0/8",)).handle(request, IFA, IHA, now).reply
    client.receive_datagram(reply, IHA, None, now)  # straight from the home agent: not how it comes via an agent
    assert client.waiting
    client.receive_datagram(reply, IFA, None, now)
    assert not client.waiting and client.last_registered is not None


def test_advertisement_parser_is_shared_with_the_foreign_agent() -> None:
    """proto.agent is the one codec: what the FA core builds, the MN parses (Scapy judges it elsewhere)."""
    src, dst, ttl, adv = parse_advertisement_packet(_fa(IFA).advertisement("224.0.0.1"))
    assert (src, dst, ttl) == (IFA[0], "224.0.0.1", 1) and adv.mobility.care_of_addresses == (IFA[0],)


@pytest.mark.parametrize(("flags", "asked"), [("FMT", True), ("FT", False)])
def test_minimal_encapsulation_is_asked_for_only_where_the_agent_offers_it(flags: str, asked: bool) -> None:
    """RFC 5944 3.3, RFC 2004: 'M' asks the home agent to tunnel to the agent with minimal encapsulation."""
    node, now = _node(), time.time()
    node.minimal = True
    node.move_to_agent("eth0", "inside", HOA, now)
    node.agent_advertisement("eth0", _fa(IFA, flags).advertisement("255.255.255.255"), now)
    requests = [codec.parse_request(d) for d, _lo, _dst in node.datagrams_to_send(now)]
    assert requests and all(bool(rq.flags & n.FLAG_M) is asked for rq in requests)
    assert all(rq.flags & n.FLAG_T for rq in requests)  # 'T' as before


def test_a_co_located_registration_never_asks_for_minimal_encapsulation() -> None:
    node, now = _node(), time.time()
    node.minimal = True
    node.move("eth0", "inside", "10.1.0.50", now)
    assert all(not codec.parse_request(d).flags & n.FLAG_M for d, _lo, _dst in node.datagrams_to_send(now))


def _tun_node_inside_through_the_agent():
    from mipcheck.mn.tun import TunMobileNode

    node, fa, now = TunMobileNode(_node().profile), _fa(IFA), time.time()
    iha = _ha(IHA, HOA, 0x52650001, ("10.0.0.0/8",))
    xha = _ha(XHA, XHOA, 0x52660001, ())
    node.move_to_agent("eth0", "inside", HOA, now)
    node.link_packets()  # the solicitation
    node.agent_advertisement("eth0", fa.advertisement("255.255.255.255"), now)
    Link(node, fa, {IHA: iha, XHA: xha}, reachable={IHA, XHA}).run(now)
    assert node.core.mode("eth0").value == "inside"
    return node, now


def test_user_data_through_an_agent_crosses_the_data_gate_both_ways() -> None:
    """RFC 5265 3.2.4 holds in mode f too: the node puts data on the agent's link and takes what it delivers."""
    from mipcheck.ha.tunnel import echo_request
    from mipcheck.mn.detection_events import DataDecision

    node, now = _tun_node_inside_through_the_agent()
    assert node.foreign_agent_interfaces() == {"eth0": HOA}
    request = echo_request(HOA, "10.1.0.10", ident=5, seq=1)
    assert node.from_stack(request, now) is DataDecision.PLAINTEXT
    assert node.link_packets() == [("eth0", request)]  # as it is: the agent is the tunnel's end
    reply = echo_request("10.1.0.10", HOA, ident=5, seq=1)
    node.link_in("eth0", reply, now)
    assert node.packets_for_stack() == [reply]

    later = now + node.profile.t_monitor + 1  # 3.2.4: no re-registration answered within T_MONITOR
    node.handle_timer(later)
    node.datagrams_to_send(later)  # re-registrations: unanswered here
    assert node.from_stack(request, later) is DataDecision.DROPPED
    assert [p for i, p in node.link_packets() if p == request] == []
    node.link_in("eth0", reply, later)
    assert node.packets_for_stack() == []


def test_what_arrives_on_a_link_without_an_agent_is_not_user_data() -> None:
    from mipcheck.ha.tunnel import echo_request
    from mipcheck.mn.tun import TunMobileNode

    node, now = TunMobileNode(_node().profile), time.time()
    node.move("eth0", "inside", "10.1.0.50", now)
    node.link_in("eth0", echo_request("10.1.0.10", HOA), now)
    assert node.packets_for_stack() == [] and node.foreign_agent_interfaces() == {}
