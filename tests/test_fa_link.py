"""The foreign agent on a real link (``mipcheck fa serve --link IFACE --tun NAME``): sans-IO, then three namespaces.

The first half needs nothing: :mod:`mipcheck.fa.link` decides where each of
the unchanged core's datagrams goes on a link, where arriving packets enter
the core, and which host routes and rules the visitors need (the ``ip``
commands are recorded, not run); the core's reverse tunnel copies TOS and DF
(RFC 2003 3.1). The second half needs root: namespaces ``mn``, ``fa`` and
``ha`` joined by veths, the foreign agent in link mode and the reference home
agent (``ha serve --tun``, IP-in-IP) as subprocesses; a registration from the
mobile node's link through the foreign agent, its advertisements seen there,
a ping from behind the home agent answered by the home address on the link,
reverse-tunnelled with 'T' (seen IP-in-IP on the home agent's wire) and
forwarded by the host without it; everything the shell installed is gone
after the visitor and after the server. Namespaces are ``mcx-...`` and
deleted whatever happens.
"""

from __future__ import annotations

import json
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from mcx_support import Agent, ip, namespaces, needs_root, socket_in, veth, wait_link

from mipcheck.errors import MipcheckError
from mipcheck.fa.config import FAConfig, HomeAgentPeer
from mipcheck.fa.core import DELIVERED, DROPPED, RELAYED, TUNNELLED, ForeignAgent
from mipcheck.fa.link import (
    Dropped,
    LinkOut,
    Plan,
    Plumbing,
    TunnelOut,
    UdpOut,
    forwarded,
    from_link,
    from_tun,
    from_tunnel,
    host_warnings,
    link_config,
    plan,
    route,
)
from mipcheck.ha.tunnel import echo_request, parse_ipv4
from mipcheck.proto import codec
from mipcheck.proto import numbers as n
from mipcheck.proto.agent import build_solicitation, parse_advertisement_packet
from mipcheck.proto.identification import timestamp_identification
from mipcheck.proto.ip import build_ipv4, checksum

FA_LINK = "10.50.0.1"  # the foreign agent's address on the mobile node's link (config.address)
COA = "10.60.0.1"  # its care-of address, on the way to the home agent
HA = "10.60.0.2"
HOA = "10.1.0.100"
CN = "10.1.0.10"  # a host behind the home agent
MN_PLACE = (HOA, 49434)
SPI = 0x52650001
KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
NOW = 1_800_000_000.0


def _agent(**over: Any) -> ForeignAgent:
    kw: dict[str, Any] = dict(
        address=FA_LINK, care_of_addresses=(COA,), flags="FT", home_agents=(HomeAgentPeer(HA),), max_lifetime=600
    )
    kw.update(over)
    return ForeignAgent(link_config(FAConfig(**kw)), start=NOW)


def _register(fa: ForeignAgent, flags: int = n.FLAG_T, lifetime: int = 300, ident: int = 7) -> None:
    rrq = codec.build_request(flags, lifetime, HOA, HA, COA, ident, auth=(SPI, "hmac-md5", KEY))
    fa.receive_datagram(rrq, MN_PLACE, (FA_LINK, 434), NOW)
    [(relayed, _l, to)] = fa.datagrams_to_send(NOW)
    assert to == (HA, 434) and route(fa, relayed, to) == UdpOut(relayed, to)
    rrp = codec.build_reply(0, lifetime, HOA, HA, ident, auth=(SPI, "hmac-md5", KEY))
    fa.receive_datagram(rrp, (HA, 434), (FA_LINK, 434), NOW)
    [(reply, _l, to)] = fa.datagrams_to_send(NOW)
    assert to == MN_PLACE and route(fa, reply, to) == UdpOut(reply, MN_PLACE)
    while fa.next_event() is not None:
        pass


# ------------------------------------------------------------------ sans-IO: no root needed


def test_link_config_makes_the_link_itself_the_advertisement_place() -> None:
    config = link_config(
        FAConfig(address=FA_LINK, upstream=("127.0.0.40", 5000), advertisement_destination="224.0.0.1")
    )
    assert config.link == ("224.0.0.1", 434) and config.upstream is None


def test_periodic_and_solicited_advertisements_go_on_the_link() -> None:
    fa = _agent()
    fa.handle_timer(NOW)
    [(adv, _l, to)] = fa.datagrams_to_send(NOW)
    out = route(fa, adv, to)
    assert isinstance(out, LinkOut) and out.what == "advertisement" and out.destination == "255.255.255.255"
    src, dst, ttl, parsed = parse_advertisement_packet(out.packet)
    assert (src, dst, ttl) == (FA_LINK, "255.255.255.255", 1) and parsed.mobility.care_of_addresses == (COA,)
    # a solicitation read on the link enters the core as (source, 0); the answer goes to the solicitor on the link
    packet, place = from_link(build_solicitation(HOA))
    assert place == (HOA, 0)
    fa.receive_datagram(packet, place, (FA_LINK, 434), NOW)
    [(answer, _l, to)] = fa.datagrams_to_send(NOW)
    out = route(fa, answer, to)
    assert isinstance(out, LinkOut) and out.what == "advertisement" and out.destination == HOA
    # other ICMP on the link (our own advertisement looped back, an echo) is not the core's
    assert from_link(adv) is None and from_link(echo_request(HOA, FA_LINK)) is None


def test_ip_in_ip_for_a_visitor_is_forwarded_onto_the_link() -> None:
    fa = _agent()
    _register(fa)
    inner = echo_request(CN, HOA, payload=b"to the visitor")
    packet, place = from_tunnel(build_ipv4(HA, COA, 4, inner))
    assert place == (HA, 0)
    fa.receive_datagram(packet, place, (FA_LINK, 434), NOW)
    assert fa.next_event().outcome == DELIVERED
    [(data, _l, to)] = fa.datagrams_to_send(NOW)
    out = route(fa, data, to)
    assert isinstance(out, LinkOut) and out.what == "delivery" and out.destination == HOA
    assert out.packet[8] == inner[8] - 1  # forwarded onto the link (RFC 2003 3.1)
    assert out.packet[:8] == inner[:8] and out.packet[12:] == inner[12:] and checksum(out.packet[:20]) == 0


def test_forwarding_decrements_ttl_and_drops_what_expires() -> None:
    packet = bytearray(echo_request(CN, HOA))
    packet[8] = 2
    packet[10:12] = b"\0\0"
    packet[10:12] = checksum(bytes(packet[:20])).to_bytes(2, "big")
    once = forwarded(bytes(packet))
    assert once is not None and once[8] == 1 and checksum(once[:20]) == 0
    assert forwarded(once) is None
    fa = _agent()
    _register(fa)
    fa.receive_datagram(build_ipv4(HA, COA, 4, once), (HA, 0), (FA_LINK, 434), NOW)
    [(data, _l, to)] = fa.datagrams_to_send(NOW)
    out = route(fa, data, to)
    assert isinstance(out, Dropped) and "TTL" in out.reason and out.home_address == HOA


def test_reverse_tunnel_from_the_tun_goes_ip_in_ip_with_tos_and_df_copied() -> None:
    fa = _agent()
    _register(fa, flags=n.FLAG_T)
    mine = build_ipv4(HOA, CN, 1, echo_request(HOA, CN)[20:], tos=0x28, dont_fragment=True)
    packet, place = from_tun(fa, mine)
    assert place == MN_PLACE  # the core knows the visitor by its registration place
    fa.receive_datagram(packet, place, (FA_LINK, 434), NOW)
    assert fa.next_event().outcome == TUNNELLED
    [(outer, _l, to)] = fa.datagrams_to_send(NOW)
    assert outer[1] == 0x28 and outer[6] & 0x40  # RFC 2003 3.1, in the core's own encapsulation
    out = route(fa, outer, to)
    assert out == TunnelOut(mine, COA, HA, 0x28, True, HOA)


def test_packets_from_the_tun_that_no_t_visitor_sent_are_dropped_by_the_core() -> None:
    fa = _agent()
    _register(fa, flags=0)  # no 'T': its packets never belong in the TUN device
    packet, place = from_tun(fa, echo_request(HOA, CN))
    assert place == (HOA, 0)
    fa.receive_datagram(packet, place, (FA_LINK, 434), NOW)
    assert fa.next_event().outcome == DROPPED and fa.datagrams_to_send(NOW) == []
    assert from_tun(fa, b"\x60" + bytes(39)) is None  # the host's IPv6 on the device is not the core's


def test_what_has_nowhere_to_go_on_a_link_is_dropped() -> None:
    fa = _agent()
    assert isinstance(route(fa, echo_request(HOA, CN), ("127.0.0.40", 5000)), Dropped)
    assert isinstance(route(fa, b"\x45\x00", ("127.0.0.40", 5000)), Dropped)


def test_plan_routes_every_visitor_and_rules_only_t_visitors_with_a_tun() -> None:
    fa = _agent()
    assert plan(fa, True) == Plan(frozenset(), frozenset())
    _register(fa, flags=n.FLAG_T)
    assert plan(fa, True) == Plan(frozenset({HOA}), frozenset({HOA}))
    assert plan(fa, False) == Plan(frozenset({HOA}), frozenset())
    _register(fa, flags=0, ident=8)  # re-registered without 'T'
    assert plan(fa, True) == Plan(frozenset({HOA}), frozenset())
    broken = ForeignAgent(fa.config, ("no-reverse-tunnel",), start=NOW)
    _register(broken, flags=n.FLAG_T)
    assert plan(broken, True).rules == frozenset()  # the host forwards them: the fault shows on the wire


class FakeIp:
    def __init__(self, fail: tuple[str, ...] = (), rules: list[dict[str, Any]] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail, self.rules = fail, rules or []

    def __call__(self, argv) -> tuple[int, str]:
        self.calls.append(list(argv))
        if argv[:3] == ["-j", "rule", "list"]:
            return 0, json.dumps(self.rules)
        if any(" ".join(argv).startswith(f) for f in self.fail):
            return 2, "RTNETLINK answers: File exists"
        return 0, ""


def test_plumbing_installs_and_removes_exactly_what_the_plan_says() -> None:
    fake = FakeIp(rules=[{"priority": 434, "src": "10.1.0.7", "iif": "fa0", "table": "434"}, {"priority": 434}])
    p = Plumbing("fa0", "tunfa", 434, run=fake)
    records = p.start()
    assert fake.calls[1] == ["rule", "del", "pref", "434", "from", "10.1.0.7/32", "iif", "fa0", "lookup", "434"]
    assert ["route", "flush", "dev", "fa0", "proto", "210"] in fake.calls
    assert ["route", "replace", "default", "dev", "tunfa", "table", "434"] in fake.calls
    assert records[0]["event"] == "leftover-removed"
    fake.calls.clear()
    p.sync(Plan(frozenset({HOA}), frozenset({HOA})))
    assert fake.calls == [
        ["route", "add", f"{HOA}/32", "dev", "fa0", "proto", "210"],
        ["rule", "add", "pref", "434", "from", f"{HOA}/32", "iif", "fa0", "lookup", "434"],
    ]
    fake.calls.clear()
    assert p.sync(Plan(frozenset({HOA}), frozenset({HOA}))) == [] and fake.calls == []  # nothing changes
    p.sync(Plan(frozenset({HOA}), frozenset()))
    assert fake.calls == [["rule", "del", "pref", "434", "from", f"{HOA}/32", "iif", "fa0", "lookup", "434"]]
    fake.calls.clear()
    records = p.close()
    assert fake.calls == [
        ["route", "del", f"{HOA}/32", "dev", "fa0", "proto", "210"],
        ["route", "del", "default", "dev", "tunfa", "table", "434"],
    ]
    assert [r["event"] for r in records] == ["removed", "removed"]


def test_plumbing_reports_what_it_could_not_install_and_fails_without_its_table() -> None:
    fake = FakeIp(fail=("route add",))
    p = Plumbing("fa0", None, 434, run=fake)
    p.start()
    [record] = p.sync(Plan(frozenset({HOA}), frozenset()))
    assert record["event"] == "warning" and "File exists" in record["reason"]
    with pytest.raises(MipcheckError, match="--tun tunfa"):
        Plumbing("fa0", "tunfa", 434, run=FakeIp(fail=("route replace",))).start()


def test_host_warnings_name_forwarding_and_strict_reverse_path_filtering() -> None:
    values = {"/proc/sys/net/ipv4/ip_forward": "0", "/proc/sys/net/ipv4/conf/fa0/rp_filter": "1"}
    warnings = host_warnings("fa0", values.get)
    assert len(warnings) == 2 and "ip_forward" in warnings[0] and "rp_filter 1" in warnings[1]
    good = {"/proc/sys/net/ipv4/ip_forward": "1", "/proc/sys/net/ipv4/conf/all/rp_filter": "2"}
    assert host_warnings("fa0", good.get) == []


def test_serve_refuses_tun_without_link() -> None:
    import asyncio

    from mipcheck.fa.server import DecisionLog, serve

    with pytest.raises(MipcheckError, match="--tun needs --link"):
        asyncio.run(serve(FAConfig(), log=DecisionLog([]), stop=asyncio.Event(), tun="tunfa"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tun", "tunfa"], "--tun: needs --link IFACE"),
        (["--link", "lo", "--table", "254"], "--table: 254 is one of the kernel's own tables"),
        (["--link", "nosuch0"], "--link nosuch0: no such interface"),
    ],
)
def test_cli_refuses_link_options_it_cannot_honour(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "fa.toml").write_text('address = "127.0.0.5"\nport = 0\n')
    argv = [sys.executable, "-m", "mipcheck.cli", "fa", "serve", "--config", str(tmp_path / "fa.toml"), *args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_relayed_and_relayed_reply_stay_udp() -> None:
    fa = _agent()
    rrq = codec.build_request(n.FLAG_T, 300, HOA, HA, COA, 9, auth=(SPI, "hmac-md5", KEY))
    fa.receive_datagram(rrq, MN_PLACE, (FA_LINK, 434), NOW)
    assert fa.next_event().outcome == RELAYED
    [(data, _l, to)] = fa.datagrams_to_send(NOW)
    assert route(fa, data, to) == UdpOut(data, (HA, 434))


# ------------------------------------------------------------------ root: mn, fa, ha


FA_CONFIG = f"""address = "{FA_LINK}"
port = 434
care_of_addresses = ["{COA}"]
flags = "FT"
advertise_interval = 0.5
max_lifetime = 600

[[home_agent]]
address = "{HA}"
"""

HA_CONFIG = f"""address = "{HA}"
port = 434
role = "x-ha"

[[mobile_node]]
home_address = "{HOA}"
spi = {SPI}
secret_hex = "{KEY.hex()}"
"""

MN_CONFIG = f"""home_address = "{HOA}"
home_agent = "{HA}"
spi = {SPI}
secret_hex = "{KEY.hex()}"
local_address = "{HOA}"
care_of_address = "{COA}"
colocated = false
reverse_tunnel = true
foreign_agent = "{FA_LINK}"
lifetime = 60
"""


def _frames(sock: socket.socket, seconds: float) -> list[bytes]:
    """IPv4 packets an AF_PACKET socket saw within ``seconds`` (Ethernet header off)."""
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


def _ping(pinger: socket.socket, seq: int) -> bytes:
    """An echo from the host behind the home agent to the home address; the echo reply it gets back."""
    pinger.sendto(echo_request(CN, HOA, ident=0x4D43, seq=seq, payload=b"through the foreign agent")[20:], (HOA, 0))
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        answer = pinger.recv(4096)
        ip = parse_ipv4(answer)
        if ip.src == HOA and answer[ip.ihl] == 0 and struct.unpack_from("!H", answer, ip.ihl + 6)[0] == seq:
            return answer
    raise AssertionError(f"no echo reply {seq}")


def _register_from_link(reg: socket.socket, flags: int, lifetime: int = 60) -> int:
    rrq = codec.build_request(
        flags, lifetime, HOA, HA, COA, timestamp_identification(time.time()), auth=(SPI, "hmac-md5", KEY)
    )
    reg.sendto(rrq, (FA_LINK, 434))
    reply, src = reg.recvfrom(2048)
    assert src == (FA_LINK, 434)
    return codec.parse_reply(reply).code


def _installed(ns: str) -> tuple[str, str]:
    return ip("rule", "list", ns=ns), ip("route", "list", "proto", "210", ns=ns)


@needs_root
def test_registration_through_the_foreign_agent_and_ping_on_the_link(tmp_path: Path) -> None:
    started = time.monotonic()
    (tmp_path / "fa.toml").write_text(FA_CONFIG)
    (tmp_path / "ha.toml").write_text(HA_CONFIG)
    (tmp_path / "mn.toml").write_text(MN_CONFIG)
    with namespaces("mn", "fa", "ha") as ns:
        veth(ns["mn"], "mn0", f"{HOA}/32", ns["fa"], "fa0", f"{FA_LINK}/24")
        veth(ns["fa"], "fa1", f"{COA}/24", ns["ha"], "ha0", f"{HA}/24")
        ip("route", "add", f"{FA_LINK}/32", "dev", "mn0", ns=ns["mn"])
        ip("route", "add", "default", "via", FA_LINK, "dev", "mn0", ns=ns["mn"])
        ip("route", "add", "10.1.0.0/24", "via", HA, ns=ns["fa"])  # the home network, for packets without 'T'
        ip("addr", "add", f"{CN}/32", "dev", "lo", ns=ns["ha"])
        ip("route", "add", "10.50.0.0/24", "via", COA, ns=ns["ha"])
        ip("netns", "exec", ns["fa"], "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for where, devs in ((ns["fa"], ("all", "default", "fa0")), (ns["ha"], ("all", "default", "ha0"))):
            # the host's part (a host may inherit a strict reverse-path filter into new namespaces)
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
            listening = json.loads(fa.wait_for('"listening"'))
            assert listening["link"] == "fa0" and listening["tun"] == "tunfa"
            assert not [ln for ln in fa.lines if '"warning"' in ln]  # forwarding on, no strict rp_filter here

            # the advertisement on the mobile node's link: ICMP type 9, TTL 1, broadcast, the care-of address
            icmp = socket_in(ns["mn"], socket.SOCK_RAW, socket.IPPROTO_ICMP)
            icmp.settimeout(3)
            while True:
                seen = parse_advertisement_packet(icmp.recv(4096))
                if seen is not None:
                    break
            src, dst, ttl, adv = seen
            assert (src, dst, ttl) == (FA_LINK, "255.255.255.255", 1)
            assert adv.mobility.care_of_addresses == (COA,) and adv.mobility.has("F") and adv.mobility.has("T")

            # a solicitation from the home address is answered on the link, to the solicitor
            solicit = socket_in(ns["mn"], socket.SOCK_RAW, socket.IPPROTO_RAW)
            solicit.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"mn0")
            solicit.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            solicit.sendto(build_solicitation(HOA), ("255.255.255.255", 0))
            while (seen := parse_advertisement_packet(icmp.recv(4096))) is None or seen[1] != HOA:
                pass
            assert seen[0] == FA_LINK and seen[2] == 1

            # a registration from the home address on the link, 'D' clear, the FA's care-of address, 'T';
            # the FA's own denial reaches it on the link before any route to it exists (69: Lifetime too long)
            reg = socket_in(ns["mn"], socket.SOCK_DGRAM)
            reg.bind((HOA, 0))
            reg.settimeout(3)
            assert _register_from_link(reg, n.FLAG_T, lifetime=601) == 69
            assert _register_from_link(reg, n.FLAG_T) == 0
            rules, routes = _installed(ns["fa"])
            assert f"from {HOA} iif fa0 lookup 434" in rules and f"{HOA} dev fa0" in routes

            capture = socket_in(ns["ha"], socket.SOCK_RAW, socket.htons(0x0003), family=socket.AF_PACKET)
            capture.bind(("ha0", 0))
            pinger = socket_in(ns["ha"], socket.SOCK_RAW, socket.IPPROTO_ICMP)
            pinger.bind((CN, 0))
            pinger.settimeout(3)
            _ping(pinger, 1)
            wire = _frames(capture, 0.3)
            ipip = [parse_ipv4(p) for p in wire if p[9] == 4]
            assert (HA, COA) in [(p.src, p.dst) for p in ipip]  # the request went IP-in-IP to the care-of address
            back = [p for p in wire if p[9] == 4 and p[12:16] == socket.inet_aton(COA)]
            assert back, "the reply was not reverse-tunnelled"
            inner = parse_ipv4(back[0][20:])
            assert (inner.src, inner.dst, inner.protocol) == (HOA, CN, 1)  # the echo reply, from the home address

            # re-registered without 'T': the rule goes, the host forwards the reply itself
            assert _register_from_link(reg, 0) == 0
            rules, routes = _installed(ns["fa"])
            assert f"from {HOA} iif fa0" not in rules and f"{HOA} dev fa0" in routes
            _ping(pinger, 2)
            wire = _frames(capture, 0.3)
            assert not [p for p in wire if p[9] == 4 and p[12:16] == socket.inet_aton(COA)]
            assert [p for p in wire if p[9] == 1 and p[12:16] == socket.inet_aton(HOA)]

            # deregistered: the host route goes too
            assert _register_from_link(reg, 0, lifetime=0) == 0
            rules, routes = _installed(ns["fa"])
            assert HOA not in rules and HOA not in routes

            # registered again, by the reference tooling this time (`mipcheck mn register` through the FA)
            mn = ["ip", "netns", "exec", ns["mn"], sys.executable, "-m", "mipcheck.cli", "mn", "register"]
            done = subprocess.run([*mn, "--config", str(tmp_path / "mn.toml")], capture_output=True, text=True)
            assert done.returncode == 0, done.stdout + done.stderr
            assert HOA in _installed(ns["fa"])[0]

            # and the server stopped: nothing of it stays
            fa.proc.send_signal(signal.SIGTERM)
            assert fa.proc.wait(5) == 0
            rules, routes = _installed(ns["fa"])
            assert HOA not in rules and "lookup 434" not in rules and routes.strip() == ""
            assert "tunfa" not in ip("link", "show", ns=ns["fa"])
        finally:
            fa.stop()
            ha.stop()
    assert time.monotonic() - started < 15
