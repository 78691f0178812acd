"""The home agent's IP-in-IP data plane (RFC 2003, RFC 3024): sans-IO decisions, then a root test in namespaces.

The first half needs nothing: a home agent core, registrations built with the
project's codec, and the decisions of :mod:`mipcheck.ha.tun` (``from_stack``
picks Tunnel Data or IP-in-IP by the binding; ``from_ipip``/``to_stack``
decapsulate only what comes from a binding's care-of address with its home
address inside). The second half needs root: two namespaces joined by a veth,
``mipcheck ha serve --tun`` in one, a raw IP-in-IP socket in the other playing
the care-of address; a ping from behind the home agent to the home address is
answered through both tunnel ends. Skipped with the reason otherwise; the
namespaces (``mcx-...``) are deleted whatever happens.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from mcx_support import Agent, ip, namespaces, needs_root, socket_in, veth, wait_link

from mipcheck.ha import HAConfig, MobileNodeConfig
from mipcheck.ha.core import HomeAgent
from mipcheck.ha.tun import IpipTunnelled, Tunnelled, from_ipip, from_stack, to_stack
from mipcheck.ha.tunnel import TunnelError, echo_reply, echo_request, parse_ipv4
from mipcheck.proto import codec
from mipcheck.proto import numbers as n
from mipcheck.proto.identification import timestamp_identification
from mipcheck.proto.ip import build_ipv4

HA = "10.60.0.2"
HOA = "10.1.0.100"
COA = "10.60.0.1"
CN = "10.1.0.10"  # a host behind the home agent
SPI = 0x52650001
KEY = bytes.fromhex("00112233445566778899aabbccddeeff")


def _core(**over) -> HomeAgent:
    kw = dict(address=HA, port=434, role="x-ha", mobile_nodes=(MobileNodeConfig(HOA, SPI, KEY),))
    kw.update(over)
    return HomeAgent(HAConfig(**kw))


def _register(
    core: HomeAgent, now: float, *, flags: int = n.FLAG_T, coa: str = COA, src: tuple[str, int] | None = None, ext=b""
):
    rrq = codec.build_request(flags, 600, HOA, HA, coa, timestamp_identification(now), ext, auth=(SPI, "hmac-md5", KEY))
    return core.handle(rrq, src or (coa, 49434), (HA, 434), now)


def _ipip(outer_src: str, inner: bytes, outer_dst: str = HA) -> bytes:
    return build_ipv4(outer_src, outer_dst, n.IPPROTO_IPIP, inner)


@pytest.fixture
def bound() -> tuple[HomeAgent, float]:
    core, now = _core(), time.time()
    d = _register(core, now)
    assert d.outcome == "accepted" and not d.udp_tunnel and d.care_of_address == COA
    return core, now


# ------------------------------------------------------------------ sans-IO: no root needed


def test_stack_to_a_binding_without_udp_tunnel_goes_ip_in_ip(bound) -> None:
    core, _now = bound
    packet = echo_request(CN, HOA, payload=b"p" * 30)
    out = from_stack(core, packet + b"link padding")
    assert isinstance(out, IpipTunnelled)
    assert out == IpipTunnelled(HOA, packet, COA, 0, False)  # the inner packet unchanged: TTL too (RFC 2003 3.1)


def test_tos_and_df_are_copied_for_the_outer_header(bound) -> None:
    core, _now = bound
    packet = bytearray(echo_request(CN, HOA))
    packet[1] = 0xB8  # DSCP EF
    packet[6] |= 0x40  # DF
    out = from_stack(core, bytes(packet))
    assert isinstance(out, IpipTunnelled) and out.tos == 0xB8 and out.dont_fragment


def test_stack_packets_that_are_not_tunnelled(bound) -> None:
    core, _now = bound
    assert isinstance(from_stack(core, echo_request(CN, "10.1.0.99")), TunnelError)  # no binding
    assert isinstance(from_stack(core, b"\x45garbage"), TunnelError)
    dead = bytearray(echo_request(CN, HOA))
    dead[8] = 0
    assert "TTL 0" in from_stack(core, bytes(dead)).reason


def test_udp_tunnelled_binding_still_gets_tunnel_data() -> None:
    core, now = _core(), time.time()
    # behind a NAT: the request's source is not the care-of address, so RFC 3519 tunnelling is granted
    d = _register(core, now, src=("198.51.100.3", 40000), ext=codec.udp_tunnel_request())
    assert d.outcome == "accepted" and d.udp_tunnel
    out = from_stack(core, echo_request(CN, HOA))
    assert isinstance(out, Tunnelled) and out.endpoint == ("198.51.100.3", 40000)
    # and IP-in-IP from its care-of address is not taken for it
    d = from_ipip(core, _ipip(COA, echo_request(HOA, CN)), now)
    assert d.outcome == "dropped" and "UDP-tunnelled" in d.reason and to_stack(d) is None


def test_reverse_tunnelled_packet_from_the_care_of_address_goes_to_the_stack(bound) -> None:
    core, now = bound
    inner = echo_request(HOA, CN, payload=b"r" * 20)
    d = from_ipip(core, _ipip(COA, inner) + b"\0\0", now)
    assert d.outcome == "accepted" and d.home_address == HOA and d.care_of_address == COA
    assert d.source == (COA, 0) and not d.log
    assert to_stack(d) == inner


@pytest.mark.parametrize(
    ("name", "packet", "reason"),
    [
        ("foreign outer source", _ipip("10.60.0.9", echo_request(HOA, CN)), "is not the care-of address registered"),
        ("inner source without binding", _ipip(COA, echo_request("10.1.0.77", CN)), "has no binding"),
        ("not for this home agent", _ipip(COA, echo_request(HOA, CN), outer_dst="10.60.0.3"), "not to this home agent"),
        ("not IP-in-IP", build_ipv4(COA, HA, n.IPPROTO_MINENC, echo_request(HOA, CN)), "is not IP-in-IP"),
        ("malformed inner", _ipip(COA, b"\x45\x00\x00\x05"), "IP-in-IP from 10.60.0.1"),
        ("malformed outer", b"\x45\x00", "malformed outer"),
        ("inner TTL 0", _ipip(COA, echo_request(HOA, CN)[:8] + b"\x00" + echo_request(HOA, CN)[9:]), "TTL 0"),
    ],
)
def test_anything_else_is_dropped_and_logged(bound, name: str, packet: bytes, reason: str) -> None:
    core, now = bound
    before = core.counters["dropped"]
    d = from_ipip(core, packet, now)
    assert d.outcome == "dropped" and reason in d.reason, (name, d.reason)
    assert to_stack(d) is None
    assert d.log  # one decision-log line (rate-limited like the UDP path)
    assert core.counters["dropped"] == before + 1
    assert d.as_log()["reason"] == d.reason


def test_deregistered_binding_takes_no_more_ip_in_ip(bound) -> None:
    core, now = bound
    rrq = codec.build_request(0, 0, HOA, HA, COA, timestamp_identification(now + 1), auth=(SPI, "hmac-md5", KEY))
    assert core.handle(rrq, (COA, 49434), (HA, 434), now + 1).outcome == "accepted"
    assert isinstance(from_stack(core, echo_request(CN, HOA)), TunnelError)
    assert from_ipip(core, _ipip(COA, echo_request(HOA, CN)), now + 1).outcome == "dropped"


def test_minimal_encapsulation_is_not_offered() -> None:
    """'M' (RFC 2004) is denied with 139, so no binding ever needs protocol 55 from the data plane."""
    d = _register(_core(), time.time(), flags=n.FLAG_M)
    assert d.outcome == "denied" and d.code == 139


# ------------------------------------------------------------------ root: two namespaces and a veth


def ha_config(path: Path) -> Path:
    path.write_text(
        f'address = "{HA}"\nport = 434\nrole = "x-ha"\n\n'
        f'[[mobile_node]]\nhome_address = "{HOA}"\nspi = {SPI}\nsecret_hex = "{KEY.hex()}"\n'
    )
    return path


@needs_root
def test_ping_through_the_home_agent_tun_and_an_ip_in_ip_peer(tmp_path: Path) -> None:
    started = time.monotonic()
    with namespaces("ha", "peer") as ns:
        veth(ns["ha"], "ha0", f"{HA}/24", ns["peer"], "peer0", f"{COA}/24")
        ip("addr", "add", f"{CN}/32", "dev", "lo", ns=ns["ha"])  # the host behind the home agent
        ha = Agent(
            ns["ha"], ["ha", "serve", "--config", str(ha_config(tmp_path / "ha.toml")), "--tun", "tunha"], tmp_path
        )
        try:
            ha.wait_for("listening")
            wait_link(ns["ha"], "tunha")
            ip("link", "set", "tunha", "up", ns=ns["ha"])
            ip("route", "add", f"{HOA}/32", "dev", "tunha", ns=ns["ha"])

            # the peer registers its co-located care-of address, no UDP Tunnel Request: an IP-in-IP binding
            reg = socket_in(ns["peer"], socket.SOCK_DGRAM)
            reg.bind((COA, 0))
            reg.settimeout(3)
            rrq = codec.build_request(
                n.FLAG_D | n.FLAG_T,
                600,
                HOA,
                HA,
                COA,
                timestamp_identification(time.time()),
                auth=(SPI, "hmac-md5", KEY),
            )
            reg.sendto(rrq, (HA, 434))
            reply, _ = reg.recvfrom(2048)
            assert codec.parse_reply(reply).code == 0
            ha.wait_for("accepted")

            tunnel = socket_in(ns["peer"], socket.SOCK_RAW, socket.IPPROTO_IPIP)
            tunnel.bind((COA, 0))
            tunnel.settimeout(3)
            pinger = socket_in(ns["ha"], socket.SOCK_RAW, socket.IPPROTO_ICMP)
            pinger.bind((CN, 0))
            pinger.settimeout(3)

            icmp = echo_request(CN, HOA, ident=0x4D43, seq=1, payload=b"through the tunnel")[20:]
            pinger.setsockopt(socket.IPPROTO_IP, 10, 2)  # DF on the inner packet
            pinger.sendto(icmp, (HOA, 0))
            outer = tunnel.recv(4096)
            o = parse_ipv4(outer)
            assert (o.src, o.dst, o.protocol) == (HA, COA, 4)
            assert outer[8] == 64 and outer[6] & 0x40  # outer TTL 64; the inner DF copied (RFC 2003 3.1)
            inner = outer[o.ihl : o.total_length]
            i = parse_ipv4(inner)
            assert (i.src, i.dst) == (CN, HOA) and inner[8] == 64  # the host's own packet: TTL not decremented

            # the peer answers the echo and reverse-tunnels it from its care-of address
            tunnel.sendto(echo_reply(inner, i), (HA, 0))
            answer = pinger.recv(4096)
            a = parse_ipv4(answer)
            assert (a.src, a.dst) == (HOA, CN) and answer[a.ihl] == 0  # echo reply, through tunha to the host

            # a packet with a foreign inner source from the same care-of address is dropped and logged
            tunnel.sendto(echo_request("10.1.0.77", CN), (HA, 0))
            line = ha.wait_for("has no binding")
            assert line.startswith("20") and " dropped " in line
        finally:
            assert ha.stop() == 0
    assert time.monotonic() - started < 15
