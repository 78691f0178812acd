"""Minimal encapsulation (RFC 2004) at the reference home agent and foreign agent: sans-IO, then root in namespaces.

The first half needs nothing: the home agent with ``encapsulations = ["ipip",
"minimal"]`` accepts 'M' (139 without it), tunnels the binding with protocol 55
(:class:`mipcheck.ha.tun.MinencTunnelled`) and takes minimally encapsulated
reverse tunnels only from the care-of address of a binding registered with 'M'
whose home address is the restored source (RFC 3024); the foreign agent with
flags "FMT" advertises 'M', decapsulates protocol 55 for a visitor and
reverse-tunnels an 'M'+'T' visitor with it (RFC 3024: the registered
encapsulation). The second half needs root: mn, fa and ha namespaces, a
registration with 'M' and 'T' through the foreign agent, a ping delivered both
ways with protocol 55 seen on the wire and its overhead measured (12 octets:
S = 1, neither agent is the source; 8 with S = 0 for the home agent's own
packet). The namespaces (``mcx-...``) are deleted whatever happens.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from pathlib import Path

import pytest
from mcx_support import Agent, ip, namespaces, needs_root, socket_in, veth, wait_link

from mipcheck.errors import ConfigError
from mipcheck.fa.config import FAConfig, HomeAgentPeer, fa_config_from_dict
from mipcheck.fa.core import DELIVERED, DROPPED, TUNNELLED, ForeignAgent
from mipcheck.fa.link import MinencOut, TunnelOut, link_config, route
from mipcheck.ha import HAConfig, MobileNodeConfig
from mipcheck.ha.config import ha_config_from_dict
from mipcheck.ha.core import HomeAgent
from mipcheck.ha.tun import IpipTunnelled, MinencTunnelled, from_minenc, from_stack, to_stack
from mipcheck.ha.tunnel import echo_reply, echo_request, parse_ipv4
from mipcheck.proto import codec, minenc
from mipcheck.proto import numbers as n
from mipcheck.proto.agent import FLAG_BITS, parse_advertisement_packet
from mipcheck.proto.identification import timestamp_identification
from mipcheck.proto.ip import build_ipv4

FA_LINK = "10.50.0.1"
COA = "10.60.0.1"
HA = "10.60.0.2"
HOA = "10.1.0.100"
CN = "10.1.0.10"
MN_PLACE = (HOA, 49434)
SPI = 0x52650001
KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
NOW = 1_800_000_000.0
BOTH = ("ipip", "minimal")


# ------------------------------------------------------------------ the home agent, sans-IO


def _ha(encapsulations: tuple[str, ...] = BOTH) -> HomeAgent:
    mn = MobileNodeConfig(HOA, SPI, KEY)
    return HomeAgent(HAConfig(address=HA, role="x-ha", mobile_nodes=(mn,), encapsulations=encapsulations))


def _ha_register(core: HomeAgent, flags: int, now: float, coa: str = COA):
    rrq = codec.build_request(flags, 600, HOA, HA, coa, timestamp_identification(now), auth=(SPI, "hmac-md5", KEY))
    return core.handle(rrq, (coa, 434), (HA, 434), now)


def test_ha_config_key_encapsulations() -> None:
    assert HAConfig().encapsulations == ("ipip",)  # the default: every existing behaviour stays
    assert ha_config_from_dict({"encapsulations": ["minimal", "ipip"]}).encapsulations == BOTH
    for bad, message in (
        (["minimal"], 'must include "ipip"'),
        (["ipip", "gre"], "'gre' is not one of ipip, minimal"),
        ("ipip", "expected a list"),
        (["ipip", "ipip"], "repeats"),
    ):
        with pytest.raises(ConfigError, match=message):
            ha_config_from_dict({"encapsulations": bad})


@pytest.mark.parametrize(
    ("encapsulations", "flags", "code"),
    [
        (("ipip",), n.FLAG_M | n.FLAG_T, 139),  # RFC 5944 3.8.2.3 / 3.4: requested encapsulation unavailable
        (BOTH, n.FLAG_M | n.FLAG_T, 0),
        (BOTH, n.FLAG_M, 0),
        (BOTH, n.FLAG_G | n.FLAG_T, 139),  # GRE is still not offered
        (BOTH, n.FLAG_M | n.FLAG_G, 139),
    ],
)
def test_ha_accepts_m_only_when_offered(encapsulations, flags: int, code: int) -> None:
    d = _ha_register(_ha(encapsulations), flags, time.time())
    assert d.code == code, d.reason


@pytest.fixture
def ha_bound() -> tuple[HomeAgent, float]:
    core, now = _ha(), time.time()
    assert _ha_register(core, n.FLAG_M | n.FLAG_T, now).code == 0
    return core, now


def test_ha_tunnels_an_m_binding_with_minimal_encapsulation(ha_bound) -> None:
    core, _now = ha_bound
    packet = echo_request(CN, HOA, payload=b"m" * 20)
    out = from_stack(core, packet)
    assert isinstance(out, MinencTunnelled) and out.care_of_address == COA
    wire = parse_ipv4(out.packet)
    assert (wire.src, wire.dst, wire.protocol) == (HA, COA, 55) and len(out.packet) - len(packet) == 12  # S = 1
    assert out.packet[wire.ihl + 1] & 0x80 and minenc.decapsulate(out.packet).packet == packet
    own = echo_request(HA, HOA)  # the home agent's own packet: it is the source, S = 0, 8 octets
    out = from_stack(core, own)
    assert isinstance(out, MinencTunnelled) and len(out.packet) - len(own) == 8


def test_ha_never_encapsulates_a_fragment_minimally(ha_bound) -> None:
    core, _now = ha_bound
    fragment = bytearray(build_ipv4(CN, HOA, 17, b"x" * 16))
    fragment[6] = 0x20  # MF
    from mipcheck.proto.ip import checksum

    fragment[10:12] = b"\0\0"
    fragment[10:12] = checksum(bytes(fragment[:20])).to_bytes(2, "big")
    out = from_stack(core, bytes(fragment))
    assert "MUST NOT" in out.reason


def test_ha_ip_in_ip_binding_unchanged_when_minimal_is_offered() -> None:
    core, now = _ha(), time.time()
    assert _ha_register(core, n.FLAG_T, now).code == 0
    assert isinstance(from_stack(core, echo_request(CN, HOA)), IpipTunnelled)


def test_ha_takes_a_minimal_reverse_tunnel_from_the_care_of_address(ha_bound) -> None:
    core, now = ha_bound
    inner = echo_reply(echo_request(CN, HOA), parse_ipv4(echo_request(CN, HOA)))
    d = from_minenc(core, minenc.encapsulate(inner, COA, HA), now)
    assert d.outcome == "accepted" and d.care_of_address == COA and d.home_address == HOA
    assert to_stack(d) == inner and d.reason == "minimal encapsulation reverse tunnel"


def _bad_checksum() -> bytes:
    wire = bytearray(minenc.encapsulate(echo_request(HOA, CN), COA, HA))
    wire[22] ^= 0xFF
    return bytes(wire)


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (minenc.encapsulate(echo_request(HOA, CN), "10.60.0.9", HA), "is not the care-of address registered"),
        (minenc.encapsulate(echo_request("10.1.0.77", CN), COA, HA), "has no binding"),
        (minenc.encapsulate(echo_request(HOA, CN), COA, "10.60.0.3"), "not to this home agent"),
        (_bad_checksum(), "checksum is wrong"),
        (build_ipv4(COA, HA, 4, echo_request(HOA, CN)), "is not minimal encapsulation"),
    ],
)
def test_ha_drops_and_logs_anything_else(ha_bound, packet: bytes, reason: str) -> None:
    core, now = ha_bound
    d = from_minenc(core, packet, now)
    assert d.outcome == "dropped" and reason in d.reason and d.log and to_stack(d) is None, d.reason


def test_ha_wants_the_registered_encapsulation_for_a_minimal_reverse_tunnel() -> None:
    core, now = _ha(), time.time()
    assert _ha_register(core, n.FLAG_T, now).code == 0  # registered without 'M'
    d = from_minenc(core, minenc.encapsulate(echo_request(HOA, CN), COA, HA), now)
    assert d.outcome == "dropped" and "without 'M'" in d.reason
    d = from_minenc(_ha(("ipip",)), minenc.encapsulate(echo_request(HOA, CN), COA, HA), now)
    assert d.outcome == "dropped" and "not offered" in d.reason


# ------------------------------------------------------------------ the foreign agent, sans-IO


def _fa(flags: str = "FMT") -> ForeignAgent:
    config = FAConfig(
        address=FA_LINK, care_of_addresses=(COA,), flags=flags, home_agents=(HomeAgentPeer(HA),), max_lifetime=600
    )
    return ForeignAgent(link_config(config), start=NOW)


def _fa_register(fa: ForeignAgent, flags: int, ident: int = 7) -> int:
    rrq = codec.build_request(flags, 300, HOA, HA, COA, ident, auth=(SPI, "hmac-md5", KEY))
    fa.receive_datagram(rrq, MN_PLACE, (FA_LINK, 434), NOW)
    out = fa.datagrams_to_send(NOW)
    if out[0][2] == MN_PLACE:  # denied by the agent
        return codec.parse_reply(out[0][0]).code
    fa.receive_datagram(
        codec.build_reply(0, 300, HOA, HA, ident, auth=(SPI, "hmac-md5", KEY)), (HA, 434), (FA_LINK, 434), NOW
    )
    [(reply, _l, _to)] = fa.datagrams_to_send(NOW)
    while fa.next_event() is not None:
        pass
    return codec.parse_reply(reply).code


def test_fa_config_offers_m_and_advertises_it() -> None:
    config = fa_config_from_dict({"flags": "TMF"})
    assert config.flags == "FMT" and config.advertised_flags & FLAG_BITS["M"]
    adv = parse_advertisement_packet(_fa().advertisement("255.255.255.255"))
    assert adv is not None and adv[3].mobility.has("M") and adv[3].mobility.has("T")
    with pytest.raises(ConfigError, match="'G' is not offered"):
        fa_config_from_dict({"flags": "FG"})


def test_fa_denies_m_with_72_unless_offered() -> None:
    assert _fa_register(_fa("FT"), n.FLAG_M | n.FLAG_T) == 72
    assert _fa_register(_fa(), n.FLAG_G | n.FLAG_T) == 72
    assert _fa_register(_fa(), n.FLAG_M | n.FLAG_T) == 0


def test_fa_decapsulates_minimal_encapsulation_for_a_visitor() -> None:
    fa = _fa()
    assert _fa_register(fa, n.FLAG_M | n.FLAG_T) == 0
    inner = echo_request(CN, HOA)
    fa.receive_datagram(minenc.encapsulate(inner, HA, COA), (HA, 0), (FA_LINK, 434), NOW)
    d = fa.next_event()
    assert d.outcome == DELIVERED and d.home_agent == HA, d.reason
    [(data, _l, to)] = fa.datagrams_to_send(NOW)
    assert data == inner and to == MN_PLACE
    bad = bytearray(minenc.encapsulate(inner, HA, COA))
    bad[22] ^= 1
    fa.receive_datagram(bytes(bad), (HA, 0), (FA_LINK, 434), NOW)
    d = fa.next_event()
    assert d.outcome == DROPPED and "checksum is wrong" in d.reason


def test_fa_without_m_still_drops_protocol_55() -> None:
    fa = _fa("FT")
    assert _fa_register(fa, n.FLAG_T) == 0
    fa.receive_datagram(minenc.encapsulate(echo_request(CN, HOA), HA, COA), (HA, 0), (FA_LINK, 434), NOW)
    d = fa.next_event()
    assert d.outcome == DROPPED and "not offered" in d.reason


@pytest.mark.parametrize(("flags", "kind"), [(n.FLAG_M | n.FLAG_T, MinencOut), (n.FLAG_T, TunnelOut)])
def test_fa_reverse_tunnel_uses_the_registered_encapsulation(flags: int, kind: type) -> None:
    """RFC 3024 5.2: 'M' and 'T' -> minimal encapsulation (S = 1, 12 octets), 'T' alone -> IP-in-IP."""
    fa = _fa()
    assert _fa_register(fa, flags) == 0
    packet = echo_request(HOA, CN)
    fa.receive_datagram(packet, MN_PLACE, (FA_LINK, 434), NOW)
    d = fa.next_event()
    assert d.outcome == TUNNELLED
    [(data, _l, to)] = fa.datagrams_to_send(NOW)
    where = route(fa, data, to)
    assert isinstance(where, kind)
    if kind is MinencOut:
        assert where == MinencOut(data, COA, HA, HOA) and len(data) - len(packet) == 12
        assert minenc.decapsulate(data).packet == packet


# ------------------------------------------------------------------ root: mn, fa, ha


FA_CONFIG = f"""address = "{FA_LINK}"
port = 434
care_of_addresses = ["{COA}"]
flags = "FMT"
advertise_interval = 0.5
max_lifetime = 600

[[home_agent]]
address = "{HA}"
"""

HA_CONFIG = f"""address = "{HA}"
port = 434
role = "x-ha"
encapsulations = ["ipip", "minimal"]

[[mobile_node]]
home_address = "{HOA}"
spi = {SPI}
secret_hex = "{KEY.hex()}"
"""


def _frames(sock: socket.socket, seconds: float) -> list[bytes]:
    out, deadline = [], time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            frame = sock.recv(65535)
        except TimeoutError:
            break
        if frame[12:14] == b"\x08\x00":
            out.append(frame[14:])
    return out


def _echo(pinger: socket.socket, src: str, seq: int) -> bytes:
    pinger.sendto(echo_request(src, HOA, ident=0x4D45, seq=seq, payload=b"minimal encapsulation")[20:], (HOA, 0))
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        answer = pinger.recv(4096)
        a = parse_ipv4(answer)
        if a.src == HOA and answer[a.ihl] == 0 and struct.unpack_from("!H", answer, a.ihl + 6)[0] == seq:
            return answer
    raise AssertionError(f"no echo reply {seq}")


def _overheads(wire: list[bytes], src: str, dst: str, plain: list[bytes]) -> list[tuple[int, int, bool]]:
    """(length, overhead against the decapsulated packet, S) of each protocol-55 packet src -> dst on the wire."""
    out = []
    for p in wire:
        if p[9] == 55 and p[12:16] == socket.inet_aton(src) and p[16:20] == socket.inet_aton(dst):
            d = minenc.decapsulate(p)
            assert d, d
            out.append((len(p), len(p) - len(d.packet), d.source_present))
            plain.append(d.packet)
    return out


@needs_root
def test_registration_with_m_through_the_foreign_agent_and_a_ping_both_ways(tmp_path: Path) -> None:
    started = time.monotonic()
    (tmp_path / "fa.toml").write_text(FA_CONFIG)
    (tmp_path / "ha.toml").write_text(HA_CONFIG)
    with namespaces("mn", "fa", "ha") as ns:
        veth(ns["mn"], "mn0", f"{HOA}/32", ns["fa"], "fa0", f"{FA_LINK}/24")
        veth(ns["fa"], "fa1", f"{COA}/24", ns["ha"], "ha0", f"{HA}/24")
        ip("route", "add", f"{FA_LINK}/32", "dev", "mn0", ns=ns["mn"])
        ip("route", "add", "default", "via", FA_LINK, "dev", "mn0", ns=ns["mn"])
        ip("addr", "add", f"{CN}/32", "dev", "lo", ns=ns["ha"])
        ip("route", "add", "10.50.0.0/24", "via", COA, ns=ns["ha"])
        ip("netns", "exec", ns["fa"], "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for where, devs in ((ns["fa"], ("all", "default", "fa0")), (ns["ha"], ("all", "default", "ha0"))):
            ip("netns", "exec", where, "sysctl", "-qw", *(f"net.ipv4.conf.{d}.rp_filter=0" for d in devs))

        ha = Agent(ns["ha"], ["ha", "serve", "--config", str(tmp_path / "ha.toml"), "--tun", "tunha"], tmp_path)
        fa = Agent(
            ns["fa"],
            ["fa", "serve", "--config", str(tmp_path / "fa.toml"), "--link", "fa0", "--tun", "tunfa", "--log-json"],
            tmp_path,
        )
        try:
            ha.wait_for("listening")
            wait_link(ns["ha"], "tunha")
            ip("link", "set", "tunha", "up", ns=ns["ha"])
            ip("route", "add", f"{HOA}/32", "dev", "tunha", ns=ns["ha"])
            json.loads(fa.wait_for('"listening"'))

            # the advertisement offers 'M' (and 'T')
            icmp = socket_in(ns["mn"], socket.SOCK_RAW, socket.IPPROTO_ICMP)
            icmp.settimeout(3)
            while (seen := parse_advertisement_packet(icmp.recv(4096))) is None:
                pass
            assert seen[3].mobility.has("M") and seen[3].mobility.has("T")

            # the registration: M | T, 'D' clear, the agent's care-of address, from the home address on the link
            reg = socket_in(ns["mn"], socket.SOCK_DGRAM)
            reg.bind((HOA, 0))
            reg.settimeout(3)
            rrq = codec.build_request(
                n.FLAG_M | n.FLAG_T,
                60,
                HOA,
                HA,
                COA,
                timestamp_identification(time.time()),
                auth=(SPI, "hmac-md5", KEY),
            )
            assert not rrq[1] & n.FLAG_D
            reg.sendto(rrq, (FA_LINK, 434))
            reply, src = reg.recvfrom(2048)
            assert src == (FA_LINK, 434) and codec.parse_reply(reply).code == 0
            assert ha.wait_for("accepted")

            capture = socket_in(ns["ha"], socket.SOCK_RAW, socket.htons(0x0003), family=socket.AF_PACKET)
            capture.bind(("ha0", 0))
            pinger = socket_in(ns["ha"], socket.SOCK_RAW, socket.IPPROTO_ICMP)
            pinger.settimeout(3)

            # a correspondent's ping: tunnelled to the care-of address, answered reverse-tunnelled, both protocol 55
            sent = echo_request(CN, HOA, ident=0x4D45, seq=1, payload=b"minimal encapsulation")
            pinger.bind((CN, 0))
            _echo(pinger, CN, 1)
            wire = _frames(capture, 0.3)
            plain: list[bytes] = []
            forward = _overheads(wire, HA, COA, plain)
            reverse = _overheads(wire, COA, HA, plain)
            assert forward == [(len(sent) + 12, 12, True)]  # RFC 2004: S = 1, 12 octets
            assert reverse == [(len(sent) + 12, 12, True)]
            assert [(h.src, h.dst, h.protocol) for h in map(parse_ipv4, plain)] == [(CN, HOA, 1), (HOA, CN, 1)]
            assert not [p for p in wire if p[9] == 4], "IP-in-IP used although 'M' was registered"

            # the home agent's own ping (source its address): it is the source, S = 0, 8 octets
            own = socket_in(ns["ha"], socket.SOCK_RAW, socket.IPPROTO_ICMP)
            own.bind((HA, 0))
            own.settimeout(3)
            _echo(own, HA, 2)
            wire = _frames(capture, 0.3)
            forward = _overheads(wire, HA, COA, [])
            assert forward == [(len(sent) + 8, 8, False)]

            # a minimally encapsulated packet from elsewhere is dropped and logged by the home agent
            raw = socket_in(ns["fa"], socket.SOCK_RAW, 55)
            raw.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
            raw.sendto(minenc.encapsulate(echo_request("10.1.0.77", CN), COA, HA), (HA, 0))
            line = ha.wait_for("has no binding")
            assert " dropped " in line and "minimal encapsulation" in line
        finally:
            assert fa.stop() == 0
            assert ha.stop() == 0
    assert time.monotonic() - started < 15
