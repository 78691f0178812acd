"""``mipcheck lab run --mode c``: the HA's and the MN's TUN data planes, and access mode c over real links.

The first half needs nothing: the sans-IO decisions of the home agent's
(:mod:`mipcheck.ha.tun`) and the mobile node's (:mod:`mipcheck.mn.tun`) data
planes, with a home agent core and a reference mobile node handing datagrams
to each other in memory. The second half needs root and network namespaces
(skipped with the reason otherwise): a fresh lab with a name of its own, taken
down by its fixture whatever happens, and checked to leave nothing behind.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from lab_support import WHY_NOT, lab_name, lab_up, leftovers, make_lab

from mipcheck.cli import cli
from mipcheck.errors import MipcheckError
from mipcheck.ha import HAConfig, MobileNodeConfig
from mipcheck.ha.core import HomeAgent
from mipcheck.ha.tun import Tunnelled, from_stack, to_stack
from mipcheck.ha.tunnel import TunnelError, echo_request
from mipcheck.lab import control, netns, vpn
from mipcheck.lab import overhead as lab_overhead
from mipcheck.lab import run as lab_run
from mipcheck.mn.detection_events import DataDecision
from mipcheck.mn.profile import load_mobile_node_profile, parse_mobile_node_profile
from mipcheck.mn.tun import TunMobileNode
from mipcheck.proto import codec

HOA = "10.1.0.100"
IHA = ("10.1.0.1", 434)
XHA = ("192.0.2.1", 434)
COA = "10.1.0.50"
MN_PLACE = (COA, 49434)
CN = "10.1.0.10"
KEY = "00112233445566778899aabbccddeeff"
VPN_MISSING = vpn.missing() if WHY_NOT is None else WHY_NOT


# ------------------------------------------------------------------ sans-IO: no root needed


def _core() -> HomeAgent:
    config = HAConfig(
        address=IHA[0],
        port=IHA[1],
        trusted_networks=("10.0.0.0/8",),
        mobile_nodes=(MobileNodeConfig(HOA, 0x52650001, bytes.fromhex(KEY)),),
    )
    return HomeAgent(config)


def _node() -> TunMobileNode:
    doc = {
        "dut": {"home_address": HOA, "interfaces": ["eth0"], "port": 49434, "correspondent": CN},
        "i_ha": {"address": IHA[0], "spi": 0x52650001, "secret_hex": KEY},
        "x_ha": {"address": XHA[0], "home_address": "192.0.2.100", "spi": 0x52660001, "secret_hex": KEY},
        "vpn": {
            "gateway": "192.0.2.2",
            "inner_address": "10.8.0.250",
            "spi_in": 4097,
            "spi_out": 4098,
            "encryption": "NULL",
            "integrity": "NULL",
        },
        "networks": {"inside": COA, "outside": "198.51.100.10"},
    }
    return TunMobileNode(parse_mobile_node_profile(doc))


def _exchange(node: TunMobileNode, core: HomeAgent, now: float) -> list:
    """Carry the node's datagrams to the i-HA core and its answers back; the x-HA never answers."""
    decisions = []
    for data, local, dst in node.datagrams_to_send(now):
        assert local == MN_PLACE
        if dst != IHA:
            continue
        d = core.handle(data, local, IHA, now)
        decisions.append(d)
        if d.reply is not None:
            node.receive_datagram(d.reply, IHA, d.reply_to, now)
    return decisions


@pytest.fixture
def registered() -> tuple[TunMobileNode, HomeAgent, float]:
    node, core, now = _node(), _core(), time.time()
    node.move("eth0", "inside", COA, now)
    decisions = _exchange(node, core, now)
    assert any(d.outcome == "accepted" and d.tnc and d.udp_tunnel for d in decisions)
    assert node.core.mode("eth0").value == "inside"
    return node, core, now


def test_stack_to_cn_and_back_through_both_data_planes(registered) -> None:
    node, core, now = registered
    request = echo_request(HOA, CN, ident=7, seq=1, payload=b"x" * 40)
    assert node.from_stack(request, now) is DataDecision.PLAINTEXT
    sent = [s for s in node.datagrams_to_send(now) if s[0][:1] == b"\x04"]  # not the x-HA's registration
    assert [(lo, dst) for _d, lo, dst in sent] == [(MN_PLACE, IHA)]
    assert sent[0][0] == codec.tunnel_data(request)  # Tunnel Data, next header IP-in-IP, the packet unchanged
    d = core.handle(sent[0][0], MN_PLACE, IHA, now)
    assert to_stack(d) == request  # the i-HA hands the inner packet to its stack

    reply = echo_request(CN, HOA, ident=7, seq=1, payload=b"y" * 40)  # any packet the stack routes to the HoA
    out = from_stack(core, reply)
    assert isinstance(out, Tunnelled)
    assert out.endpoint == MN_PLACE and out.home_address == HOA and out.data == codec.tunnel_data(reply)
    node.receive_datagram(out.data, IHA, MN_PLACE, now)
    assert node.packets_for_stack() == [reply]  # through the gate, to the TUN: the node does not answer it
    assert [d for d, _lo, _dst in node.datagrams_to_send(now) if d[:1] == b"\x04"] == []
    assert node.packets_for_stack() == []


def test_home_agent_refuses_what_is_not_for_a_binding(registered) -> None:
    node, core, now = registered
    assert isinstance(from_stack(core, echo_request(CN, "10.1.0.99")), TunnelError)  # no binding
    assert isinstance(from_stack(core, b"\x45garbage"), TunnelError)
    # tunnel data from an endpoint with no binding, or with a foreign inner source, never reaches the stack
    stray = codec.tunnel_data(echo_request(HOA, CN))
    assert to_stack(core.handle(stray, ("10.1.0.51", 49434), IHA, now)) is None
    spoofed = codec.tunnel_data(echo_request("10.1.0.77", CN))
    assert to_stack(core.handle(spoofed, MN_PLACE, IHA, now)) is None
    # a keepalive is answered by the home agent itself, inside the tunnel
    keepalive = core.handle(codec.tunnel_data(echo_request(HOA, IHA[0])), MN_PLACE, IHA, now)
    assert keepalive.reply is not None and to_stack(keepalive) is None


def test_mobile_node_sends_only_its_home_address_and_only_when_gated_open(registered) -> None:
    node, _core_, now = registered
    assert node.from_stack(echo_request("10.1.0.77", CN), now) is None
    assert node.from_stack(b"\x60" + bytes(39), now) is None  # IPv6: not for this node
    assert [d for d, _lo, _dst in node.datagrams_to_send(now) if d[:1] == b"\x04"] == []
    # after T_MONITOR without a re-registration the gate shuts (3.2.4): dropped, nothing sent
    later = now + 61
    node.handle_timer(later)
    node.datagrams_to_send(later)  # re-registration attempts: not answered here
    assert node.from_stack(echo_request(HOA, CN), later) is DataDecision.DROPPED
    assert all(dst != IHA or d[:1] != b"\x04" for d, _lo, dst in node.datagrams_to_send(later))


def test_mobile_node_without_care_of_address_drops_from_stack() -> None:
    node = _node()
    assert node.from_stack(echo_request(HOA, CN), time.time()) is None
    status = node.status(time.time())
    assert status["interfaces"]["eth0"]["counters"] == {"dropped": 1}


def _tunnel_frame(inner_len: int, to_ha: bool) -> bytes:
    inner = bytes([0x45, 0]) + struct.pack("!H", inner_len) + bytes(5) + b"\x01" + bytes(inner_len - 10)
    body = b"\x04\x04\x00\x00" + inner
    ports = (49434, 434) if to_ha else (434, 49434)
    udp = struct.pack("!HHHH", *ports, 8 + len(body), 0)
    return bytes([0x45, 0]) + struct.pack("!H", 20 + 8 + len(body)) + bytes(5) + b"\x11" + bytes(10) + udp + body


def test_overhead_is_outer_minus_inner_of_tunnel_data() -> None:
    packets = [
        (0.0, _tunnel_frame(84, True), True),
        (0.1, _tunnel_frame(84, False), False),
        (0.2, b"\x45" + bytes(30), True),
    ]
    found = lab_overhead.tunnel_overheads(packets)
    assert [(o["outer"], o["inner"], o["overhead"], o["direction"]) for o in found] == [
        (116, 84, 32, "mn->i-ha"),
        (116, 84, 32, "i-ha->mn"),
    ]
    assert lab_overhead.RFC5265_OVERHEAD["c"] + lab_overhead.MIP_NATT_OVERHEAD == 32


def test_lab_profile_for_the_reference_mn_is_valid(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    for name in ("mn1-inner.key", "mn1-outer.key"):
        (tmp_path / "secrets" / name).write_text(KEY + "\n")
    path = tmp_path / "mn-lab.toml"
    path.write_text(lab_run.mn_profile_text(SimpleNamespace(name="x"), "198.51.100.10"))  # type: ignore[arg-type]
    profile = load_mobile_node_profile(str(path))
    assert profile.home_address == HOA and profile.i_ha.place == IHA and profile.x_ha.place == XHA
    assert profile.networks["inside"] == lab_run.MODE_C_COA and profile.correspondent == CN


@pytest.mark.parametrize("mode", ["x", "c,x", "c,,f"])
def test_unknown_modes_are_usage_errors(mode: str) -> None:
    result = CliRunner().invoke(cli, ["lab", "run", "--mode", mode, "--name", "nolab"])
    assert result.exit_code == 2  # a usage error, before any lab is looked at
    assert "is not one of c, f, cvc, fvc" in result.output


def test_run_modes_refuses_what_is_not_a_mode(tmp_path: Path) -> None:
    with pytest.raises(MipcheckError, match="one of c, f, cvc, fvc"):
        lab_run.run_modes(SimpleNamespace(), ("c", "g"))  # type: ignore[arg-type]
    with pytest.raises(MipcheckError, match="no mode"):
        lab_run.run_modes(SimpleNamespace(), ())  # type: ignore[arg-type]


def _ipv4(src: str, dst: str, proto: int, payload: bytes) -> bytes:
    addresses = socket.inet_aton(src) + socket.inet_aton(dst)
    return struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(payload), 0, 0, 64, proto, 0) + addresses + payload


def _udp(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    return _ipv4(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)


def test_cvc_overhead_is_measured_layer_by_layer() -> None:
    """i-MIP on ipsec0, ESP on tun0 (paired by ESP sequence number), x-MIP on eth0 (the one carrying exactly it)."""
    user = _ipv4(HOA, CN, 1, b"\x08\x00" + bytes(62))  # an 84-octet echo request
    ack = _ipv4(HOA, CN, 6, bytes(32))  # a 52-octet TCP segment, sent into the VPN just before it
    imip = _udp("10.8.0.2", IHA[0], 49434, 434, b"\x04\x04\x00\x00" + user)  # 116
    imip_ack = _udp("10.8.0.2", IHA[0], 49434, 434, b"\x04\x04\x00\x00" + ack)  # 84

    def esp(seq: int, size: int) -> bytes:
        return _udp("192.0.2.100", "192.0.2.2", 4500, 4500, b"\x00\x00\x10\x01" + struct.pack("!I", seq) + bytes(size))

    ike = _udp("192.0.2.100", "192.0.2.2", 4500, 4500, bytes(4) + bytes(60))  # non-ESP marker: never paired
    sealed_ack, sealed = esp(7, 124), esp(8, 156)  # 160, 192 octets
    xmip = _udp("198.51.100.10", XHA[0], 49434, 434, b"\x04\x04\x00\x00" + sealed)  # 224
    xmip_ack = _udp("198.51.100.10", XHA[0], 49434, 434, b"\x04\x04\x00\x00" + sealed_ack)
    # the captures' clocks put the echo's ESP packet first: pairing by time would swap them
    found = lab_overhead.cvc_overhead(
        [(1.002, xmip, True), (1.003, xmip_ack, True)],
        [(1.0005, ike, True), (1.0010, sealed, True), (1.0011, sealed_ack, True)],
        [(1.0, imip_ack, True), (1.0001, imip, True), (1.0002, imip, False)],  # incoming: not sealed by us
    )
    assert found["per_packet"] == [
        {"user_packet": 84, "i_mip": 32, "esp": 76, "x_mip": 32, "total": 140, "on_mn_link": 140}
    ]
    assert found["measured"] == [140]
    assert lab_overhead.cvc_overhead([], [(1.001, sealed, True)], [(1.0, imip, True)])["measured"] == []  # no x-MIP
    assert lab_overhead.RFC5265_OVERHEAD["cvc"] + lab_overhead.NAT_TRAVERSAL_OVERHEAD["cvc"] == 129  # 5.2: "129 octets"


# ------------------------------------------------------------------ mode c for real: root and namespaces

needs_netns = pytest.mark.skipif(
    WHY_NOT is not None, reason=f"mipcheck lab needs root and network namespaces: {WHY_NOT}"
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if WHY_NOT is not None:
        pytest.skip(f"mipcheck lab needs root and network namespaces: {WHY_NOT}")
    yield from make_lab(tmp_path_factory, "r", with_vpn=False)


@pytest.fixture(scope="module")
def vpn_lab(tmp_path_factory):
    if WHY_NOT is not None:
        pytest.skip(f"mipcheck lab needs root and network namespaces: {WHY_NOT}")
    if VPN_MISSING is not None:
        pytest.skip(f"mode cvc needs strongSwan: {VPN_MISSING}")
    yield from make_lab(tmp_path_factory, "v")


@pytest.mark.root
@needs_netns
def test_mode_c_end_to_end(lab, tmp_path: Path) -> None:
    report = lab_run.run_mode(lab, "c", pings=3, out_dir=tmp_path / "out")
    assert report["problems"] == []
    assert report["detection"]["result"] == "inside" and report["detection"]["data_gate"] == "plaintext"
    reg = report["registration"]
    assert reg["i_ha_accepted"] >= 1 and reg["i_ha_tnc"] and reg["i_ha_care_of_address"] == lab_run.MODE_C_COA
    data = report["data"]
    assert data["answered"] == 3 and all(r is not None for r in data["rtt_ms"])
    assert data["cn_saw_requests_from_home_address"] == 3 and data["cn_sent_replies_to_home_address"] == 3
    assert report["overhead"]["measured"] == [32] and report["overhead"]["tunnel_data_packets"] >= 6
    assert report["ok"] is True
    assert json.loads((tmp_path / "out" / "report.json").read_text())["ok"] is True
    # every segment's pcap is dissectable; the MN-i-HA one shows the tunnel
    seen = subprocess.run(
        [sys.executable, "-m", "mipcheck", "dissect", report["pcaps"]["mn-eth0"]["file"]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert seen.returncode == 0, seen.stderr
    assert "Tunnel Data" in seen.stdout and "TNC" in seen.stdout
    # the run undid itself: the MN is back outside, no tun0, no runner; the lab is healthy
    mn_ns = lab.topology.namespace("mn")
    assert "198.51.100.10/24" in netns.ip("-o", "-4", "address", "show", "dev", "eth0", ns=mn_ns)
    assert "tun0" not in netns.ip("-o", "link", "show", ns=mn_ns)
    assert not [p for p in lab.processes if p.node == "mn"]
    assert control.status(control.load(lab.name, state_dir=lab.state_dir))["healthy"]


@pytest.mark.root
@needs_netns
def test_mode_c_runs_again_on_the_same_lab(lab, tmp_path: Path) -> None:
    report = lab_run.run_mode(lab, "c", pings=1, out_dir=tmp_path / "again")
    assert report["ok"] and report["i_ha"]["restarted"] is False


@pytest.mark.root
@needs_netns
def test_cli_up_runs_and_takes_the_lab_down(tmp_path: Path) -> None:
    name = lab_name("u")
    state = tmp_path / "state"
    try:
        result = CliRunner().invoke(
            cli,
            ["lab", "run", "--mode", "c", "--up", "--name", name, "--state-dir", str(state), "--json"]
            + ["--out", str(tmp_path / "out"), "--pings", "2"],
        )
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["ok"] and report["data"]["answered"] == 2
        assert (tmp_path / "out" / "mn-eth0.pcap").exists()
    finally:
        control.down(name, state_dir=state)
    assert leftovers(name, state) == []


# ------------------------------------------------------------------ mode cvc and moves: strongSwan too


@pytest.mark.root
@needs_netns
def test_mode_cvc_end_to_end(vpn_lab, tmp_path: Path) -> None:
    """x-MIP to the x-HA, IKEv2 from the x-HoA through it, i-MIP from the VPN-TIA through the VPN (2.3)."""
    report = lab_run.run_mode(vpn_lab, "cvc", pings=3, out_dir=tmp_path / "cvc")
    assert report["problems"] == []
    det, reg, data = report["detection"], report["registration"], report["data"]
    assert det["result"] == "outside" and det["data_gate"] == "via-vpn"
    tia = det["vpn_tia"]
    assert tia is not None and tia.startswith("10.8.0.")  # from the gateway's pool, not the profile's static one
    assert reg["x_ha_accepted"] >= 1 and reg["x_ha_care_of_address"] == "198.51.100.10"
    assert reg["i_ha_care_of_address"] == tia and reg["i_ha_tnc"]  # the VPN-TIA is trusted (4.3)
    assert data["answered"] == 3 and data["cn_saw_requests_from_home_address"] == 3
    assert data["mn_counters"].get("x-hoa-out/x-mip", 0) >= 3  # ESP (and IKE) from the x-HoA went in x-MIP
    layers = report["overhead"]["per_packet"]
    assert layers and all(p["i_mip"] == 32 and p["x_mip"] == 32 for p in layers)
    # ESP in UDP with AES-128-CBC and a 16-octet ICV: 20 + 8 + 8 (SPI, sequence) + 16 (IV) + pad + 2 + 16
    for p in layers:
        inner = p["user_packet"] + p["i_mip"]
        assert p["esp"] == 20 + 8 + 8 + 16 + (-(inner + 2) % 16) + 2 + 16
    assert report["ok"] is True
    # the pcap of the MN's link shows x-MIP Tunnel Data; the one inside the VPN the i-MIP registration
    for pcap, want in (("mn-eth0", "Tunnel Data"), ("mn-ipsec0", "TNC")):
        seen = subprocess.run(
            [sys.executable, "-m", "mipcheck", "dissect", report["pcaps"][pcap]["file"]],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert seen.returncode == 0 and want in seen.stdout, (pcap, seen.stdout[-500:], seen.stderr)
    # undone: no charon left in the MN's namespace, no rules, the lab still healthy
    mn_ns = vpn_lab.topology.namespace("mn")
    assert not [p for p in vpn_lab.processes if p.node == "mn"]
    assert "lookup 100" not in netns.ip("rule", ns=mn_ns)
    assert control.status(control.load(vpn_lab.name, state_dir=vpn_lab.state_dir))["healthy"]


@pytest.mark.root
@needs_netns
def test_moves_through_every_access_mode_keep_the_session(vpn_lab, tmp_path: Path) -> None:
    """c -> f -> cvc -> fvc -> c with one reference MN: the i-HA's binding follows, one TCP connection survives."""
    report = lab_run.run_modes(vpn_lab, ("c", "f", "cvc", "fvc", "c"), pings=1, out_dir=tmp_path / "moves")
    steps = report["steps"]
    assert [s["detection"]["result"] for s in steps] == ["inside", "inside", "outside", "outside", "inside"]
    tias = [s["detection"]["vpn_tia"] for s in steps]
    assert [s["registration"]["i_ha_care_of_address"] for s in steps] == [
        lab_run.MODE_C_COA,
        "10.2.0.1",  # the i-FA's care-of address (RFC 5944 3.7)
        tias[2],
        tias[3],
        lab_run.MODE_C_COA,
    ]
    assert steps[3]["registration"]["x_ha_care_of_address"] == "203.0.113.1"  # x-MIP through the x-FA
    session = report["session"]
    assert session["ok"] and session["same_connection"]
    assert session["cn_peer"].startswith(f"{HOA}:")  # the CN saw the home address in every mode
    assert [s["overhead"]["measured"][:1] for s in steps] == [[32], [0], [144], [112], [32]]
    assert steps[1]["overhead"]["fa_to_ha_ip_in_ip"] == [20] and steps[3]["overhead"]["total"] == [132]
    assert report["ok"] is True, [(s["mode"], s["ok"]) for s in steps]


@pytest.mark.root
@needs_netns
def test_mode_f_end_to_end(lab, tmp_path: Path) -> None:
    """Through the i-FA: its advertisement heard, registered with its care-of address, IP-in-IP both ways."""
    report = lab_run.run_mode(lab, "f", pings=2, out_dir=tmp_path / "f")
    reg, det = report["registration"], report["detection"]
    assert det["result"] == "inside" and det["care_of_address"] == "10.2.0.1"
    assert reg["i_ha_care_of_address"] == "10.2.0.1" and reg["i_ha_tnc"] and not reg["i_ha_udp_tunnel"]
    assert report["data"]["answered"] == 2 and report["overhead"]["measured"] == [0]
    assert report["overhead"]["fa_to_ha_ip_in_ip"] == [20] and report["ok"] is True
    seen = subprocess.run(
        [sys.executable, "-m", "mipcheck", "dissect", report["pcaps"]["mn-eth0"]["file"]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert seen.returncode == 0, seen.stderr
    assert "CoA=10.2.0.1" in seen.stdout and "TNC" in seen.stdout  # the request via the agent, the relayed reply
    assert "i-fa" in report["foreign_agents"]
    # the FA stays (a node of Figure 1); the MN is back on its own network
    mn_ns = lab.topology.namespace("mn")
    assert "198.51.100.10/24" in netns.ip("-o", "-4", "address", "show", "dev", "eth0", ns=mn_ns)
    assert [p for p in control.load(lab.name, state_dir=lab.state_dir).processes if p.name == "i-fa"]


@pytest.mark.root
@needs_netns
def test_mode_f_fails_without_the_tnc(tmp_path_factory, tmp_path: Path) -> None:
    """A run that cannot fail proves nothing: an i-HA that omits TNC never lets the MN be inside (3.2.3)."""
    with lab_up(tmp_path_factory, "t", breaks=("iha-omit-tnc",), with_vpn=False) as broken:
        report = lab_run.run_mode(broken, "f", pings=1, out_dir=tmp_path / "broken", timeout=6.0)
    assert report["ok"] is False
    assert report["detection"]["result"] != "inside" and report["registration"]["i_ha_tnc"] is False


@pytest.mark.root
@needs_netns
def test_mode_cvc_fails_when_the_vpn_cannot_come_up(tmp_path_factory, tmp_path: Path) -> None:
    """A run that cannot fail proves nothing: with IKE's NAT-T port moved off 4500 the MN's VPN never comes up."""
    if VPN_MISSING is not None:
        pytest.skip(f"mode cvc needs strongSwan: {VPN_MISSING}")
    with lab_up(tmp_path_factory, "n", breaks=("vpn-no-natt",)) as broken:
        report = lab_run.run_mode(broken, "cvc", pings=1, out_dir=tmp_path / "broken", timeout=8.0)
    assert report["ok"] is False
    assert report["detection"]["result"] == "vpn-setup" and report["detection"]["vpn_tia"] is None
    assert report["registration"]["x_ha_accepted"] >= 1 and report["data"]["answered"] == 0


@pytest.mark.root
@needs_netns
def test_mode_cvc_behind_the_nat(vpn_lab, tmp_path: Path) -> None:
    """`--nat`: x-MIP from 192.168.100.10 reaches the x-HA from the NAT's address; RFC 3519 carries it through."""
    report = lab_run.run_modes(vpn_lab, ("cvc",), pings=1, out_dir=tmp_path / "nat", nat=True)
    reg = report["registration"]
    assert report["nat"] is True and reg["x_ha_care_of_address"] == "192.168.100.10"
    assert reg["x_ha_source"].split(":")[0] == "198.51.100.3"  # the NAT's outside address, not the care-of address
    assert report["detection"]["result"] == "outside" and report["data"]["answered"] == 1
    assert report["ok"] is True
    # undone: the MN is back on its own network
    mn_ns = vpn_lab.topology.namespace("mn")
    assert "198.51.100.10/24" in netns.ip("-o", "-4", "address", "show", "dev", "eth0", ns=mn_ns)


def test_nat_needs_an_outside_mode() -> None:
    result = CliRunner().invoke(cli, ["lab", "run", "--mode", "c", "--nat", "--name", "nolab"])
    assert result.exit_code == 2 and "c and f are inside" in result.output


@pytest.mark.root
@needs_netns
def test_ip_in_ip_instead_of_udp_tunnelling(vpn_lab, tmp_path: Path) -> None:
    """--encapsulation ipip: RFC 2003 at the MN and the home agents (raw sockets): mode c costs 5.2's 20 exactly."""
    report = lab_run.run_modes(vpn_lab, ("c", "cvc"), pings=1, out_dir=tmp_path / "ipip", encapsulation="ipip")
    c, cvc = report["steps"]
    assert c["registration"]["i_ha_udp_tunnel"] is False and c["overhead"]["measured"] == [20]
    assert c["overhead"]["measured"] == [lab_overhead.RFC5265_OVERHEAD["c"]]
    layers = cvc["overhead"]["per_packet"]
    assert layers and all(p["i_mip"] == 20 and p["x_mip"] == 20 for p in layers)
    assert report["ok"] is True and report["session"]["ok"]


@pytest.mark.root
@needs_netns
def test_minimal_encapsulation_between_home_agents_and_foreign_agents(vpn_lab, tmp_path: Path) -> None:
    """--encapsulation minimal: 'M' through the agents; RFC 2004 between them and the home agents (S=1: 12)."""
    report = lab_run.run_modes(vpn_lab, ("f", "fvc"), pings=1, out_dir=tmp_path / "min", encapsulation="minimal")
    f, fvc = report["steps"]
    assert f["overhead"]["measured"] == [0] and f["overhead"]["fa_to_ha_minimal"] == [12]
    assert f["overhead"]["fa_to_ha_ip_in_ip"] == []  # the i-FA's reverse tunnel is minimal too (RFC 3024)
    assert [p["x_mip"] for p in fvc["overhead"]["per_packet"]] and all(
        p["x_mip"] == 12 for p in fvc["overhead"]["per_packet"]
    )
    assert report["ok"] is True


def test_minimal_encapsulation_needs_a_foreign_agent_mode() -> None:
    with pytest.raises(MipcheckError, match="give mode f or fvc"):
        lab_run.run_modes(SimpleNamespace(), ("c", "cvc"), encapsulation="minimal")  # type: ignore[arg-type]
