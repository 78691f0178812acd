"""The foreign agent between a mobile node and the reference home agent, on the simulated network.

Virtual time: advertisements every interval, a registration relayed both
ways and judged by the home agent's own checks (the relayed request must
still verify), the visitor expiring when its Lifetime runs out, tunnelled
data delivered; minutes of protocol in milliseconds.
"""

from __future__ import annotations

from scapy.layers.inet import IP

from mipcheck.fa.config import FAConfig, HomeAgentPeer
from mipcheck.fa.core import ForeignAgent
from mipcheck.ha.config import HAConfig, MobileNodeConfig
from mipcheck.ha.core import HomeAgent
from mipcheck.layers import AgentAdvertisement
from mipcheck.proto import codec
from mipcheck.proto import numbers as n
from mipcheck.proto.identification import timestamp_identification
from mipcheck.proto.ip import build_ipv4, build_udp_ipv4
from mipcheck.sim.network import DELIVERED, SimNetwork

FA_ADDR, HA_ADDR, HOA = "10.20.0.1", "10.30.0.1", "10.30.0.50"
KEY = b"sim mn-ha key"


def lab(**fa_over: object) -> tuple[SimNetwork, ForeignAgent, HomeAgent, object, object]:
    net = SimNetwork()
    fa = ForeignAgent(
        FAConfig(
            address=FA_ADDR,
            link=("10.20.0.255", 4340),
            advertise_interval=5,
            max_lifetime=600,
            flags="RFT",
            home_agents=(HomeAgentPeer(HA_ADDR),),
            **fa_over,
        ),
        start=net.clock.time(),
    )
    ha = HomeAgent(
        HAConfig(address=HA_ADDR, role="x-ha", max_lifetime=120, mobile_nodes=(MobileNodeConfig(HOA, 300, KEY),))
    )
    net.attach(fa, FA_ADDR, 434)
    net.attach(ha, HA_ADDR, 434)
    link = net.socket("10.20.0.255", 4340)
    mn = net.socket("10.20.0.77", 40000)
    return net, fa, ha, link, mn


def test_advertisements_arrive_every_interval_in_virtual_time() -> None:
    net, fa, _ha, link, _mn = lab()
    net.run_for(22)
    advs = [IP(data).payload for _t, _src, data in link.queue]
    assert all(isinstance(a, AgentAdvertisement) for a in advs)
    seqs = [a.extensions[0].sequence for a in advs]
    times = [round(t - net.clock.epoch, 3) for t, _src, _data in link.queue]
    assert seqs == [0, 1, 2, 3, 4] and times == [0.0, 5.0, 10.0, 15.0, 20.0]


def test_registration_through_the_foreign_agent_and_expiry() -> None:
    net, fa, ha, link, mn = lab()
    now = net.clock.time()
    rq = codec.build_request(
        n.FLAG_T, 300, HOA, HA_ADDR, FA_ADDR, timestamp_identification(now), auth=(300, "hmac-md5", KEY)
    )
    mn.send(rq, (FA_ADDR, 434))
    net.run_for(1)
    [(_t, src, reply)] = mn.queue
    assert src == (FA_ADDR, 434)
    rp = codec.parse_reply(reply)
    assert (rp.code, rp.lifetime) == (0, 120)  # the home agent granted less than requested
    assert [b.care_of_address for b in ha.bindings[HOA]] == [FA_ADDR]
    v = fa.visitor(HOA)
    assert v.lifetime == 120 and v.reverse_tunnel
    # what went over the wire: the request relayed unchanged, the reply relayed unchanged
    wire = [t for t in net.log if t.fate == DELIVERED and t.data[0] in (1, 3)]
    assert [(t.src, t.dst) for t in wire] == [
        (("10.20.0.77", 40000), (FA_ADDR, 434)),
        ((FA_ADDR, 434), (HA_ADDR, 434)),
        ((HA_ADDR, 434), (FA_ADDR, 434)),
        ((FA_ADDR, 434), ("10.20.0.77", 40000)),
    ]
    assert wire[1].data == wire[0].data and wire[3].data == wire[2].data
    # tunnelled data for the visitor is delivered to it
    inner = build_udp_ipv4(("192.0.2.9", 53), (HOA, 5353), b"answer")
    ha_sock = net.socket(HA_ADDR, 9999)
    ha_sock.send(build_ipv4(HA_ADDR, FA_ADDR, 4, inner), (FA_ADDR, 434))
    net.run_for(1)
    assert mn.queue[-1][2] == inner
    # the visitor goes when its Lifetime runs out, measured from the relay
    assert v.expires == v.registered_at + 120 and now < v.registered_at < now + 0.01
    net.run_for(v.expires - net.clock.time() - 0.01)
    assert fa.visitor(HOA) is not None
    net.run_for(0.02)
    assert fa.visitor(HOA) is None


def test_a_denial_never_reaches_the_home_agent() -> None:
    net, fa, ha, _link, mn = lab()
    rq = codec.build_request(
        n.FLAG_G, 300, HOA, HA_ADDR, FA_ADDR, timestamp_identification(net.clock.time()), auth=(300, "hmac-md5", KEY)
    )
    mn.send(rq, (FA_ADDR, 434))
    net.run_for(1)
    assert codec.parse_reply(mn.queue[0][2]).code == 72
    assert not any(t.dst[0] == HA_ADDR for t in net.log) and ha.binding_count() == 0
