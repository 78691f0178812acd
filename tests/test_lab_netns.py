"""``mipcheck lab`` for real: namespaces, the 3.1 firewall, the home agents, the VPN gateway, cleanup.

Needs root and ``ip netns add`` (and nftables); skipped otherwise, with the
reason. Every lab here has a name of its own, and a fixture that always runs
``down`` and then checks that nothing of it is left: no namespace, process,
veth or nftables table.
"""

from __future__ import annotations

import ipaddress
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from lab_support import WHY_NOT, lab_name, lab_up, leftovers, make_lab

from mipcheck.cli import cli
from mipcheck.lab import control, firewall, netns, probe, vpn
from mipcheck.lab.topology import (
    CN_ADDRESS,
    IHA_ADDRESS,
    INNER_HOME_ADDRESS,
    MN_ADDRESS,
    MN_NAI,
    OUTER_HOME_ADDRESS,
    ROLES,
    VPN_GATEWAY_ADDRESS,
    VPN_POOL,
    XHA_ADDRESS,
    namespace_prefix,
)

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(WHY_NOT is not None, reason=f"mipcheck lab needs root and network namespaces: {WHY_NOT}"),
]
VPN_MISSING = vpn.missing() if WHY_NOT is None else WHY_NOT
_name = lab_name
_leftovers = leftovers


def _make_lab(tmp_path_factory, tag: str, **kwargs):
    yield from make_lab(tmp_path_factory, tag, **kwargs)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    yield from _make_lab(tmp_path_factory, "a")


@pytest.fixture(scope="module")
def nat_lab(tmp_path_factory):
    yield from _make_lab(tmp_path_factory, "n", nat=True)


def _mn_config(lab: control.Lab, path: Path, *, home_agent: str, local: str, inner: bool = True) -> Path:
    key = lab.state_dir / "secrets" / ("mn1-inner.key" if inner else "mn1-outer.key")
    path.write_text(
        f'home_address = "{INNER_HOME_ADDRESS if inner else OUTER_HOME_ADDRESS}"\n'
        f'home_agent = "{home_agent}"\nlocal_address = "{local}"\n'
        f"spi = {control.INNER_SPI if inner else control.OUTER_SPI}\n"
        f'secret_file = "{key}"\nnai = "{MN_NAI}"\ntimeout = 0.4\nattempts = 2\n'
    )
    return path


def _register(lab: control.Lab, node: str, config: Path) -> tuple[int, dict]:
    argv = netns.in_ns(
        lab.topology.namespace(node), control.mipcheck_argv("mn", "register", "--config", str(config), "--json")
    )
    proc = subprocess.run(argv, capture_output=True, text=True, env=control._child_env(), timeout=30)
    assert proc.stdout.strip(), proc.stderr
    return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1])


def _decisions(lab: control.Lab, role: str, until=None, timeout: float = 3.0) -> list[dict]:
    """The home agent's decision log; with ``until``, waits for a record it accepts (the log is flushed each second)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = (lab.state_dir / f"{role}.decisions.log").read_text().splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
        if until is None or any(until(r) for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.05)


# ------------------------------------------------------------------ up and status


def test_up_status_lists_every_node_alive(lab):
    result = CliRunner().invoke(cli, ["lab", "status", "--json", "--name", lab.name, "--state-dir", str(lab.state_dir)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["healthy"], doc["problems"]
    assert sorted(n["role"] for n in doc["nodes"]) == sorted(ROLES)
    for node in doc["nodes"]:
        assert set(node) >= {"name", "role", "namespace", "addresses", "pids"}
        assert node["namespace"] == f"mipcheck-{lab.name}-{node['name']}" and node["namespace_exists"]
    by_name = {n["name"]: n for n in doc["nodes"]}
    for role in ("i-ha", "x-ha"):
        assert len(by_name[role]["pids"]) == 1 and all(by_name[role]["alive"].values())
    assert by_name["i-ha"]["addresses"] == [f"{IHA_ADDRESS}/24"]
    assert Path(doc["site_profile"]).is_file() and doc["firewall"]["loaded"]
    assert doc["site_profile"].endswith(control.SITE_PROFILE) and Path(doc["analyze_profile"]).is_file()
    vantages = {v["name"]: v for v in doc["vantages"]}  # the audits' own hosts
    assert set(vantages) == {"audit-out", "audit-vpn", "audit-in"}
    assert all(v["namespace_exists"] for v in vantages.values())
    assert vantages["audit-in"]["addresses"] == ["10.1.0.20/24", "172.16.1.20/32", "172.16.1.21/32"]
    assert Path(doc["ha_profiles"]["inside"]["profile"]).is_file()
    assert doc["breaks"] == []
    if VPN_MISSING is None:
        assert doc["vpn"]["running"], doc["vpn"]["status"]
        assert len(by_name["vpn-gateway"]["pids"]) == 1
        assert doc["vpn"]["audit_host_not_started"] is None
        assert len(vantages["audit-vpn"]["pids"]) == 1 and all(vantages["audit-vpn"]["alive"].values())
        assert ipaddress.IPv4Address(control.vpn_tunnel_address(lab, "audit-vpn")) in VPN_POOL
        assert doc["ha_profiles"]["vpn"]["trusted_sources"] == [control.vpn_tunnel_address(lab, "audit-vpn")]
    else:
        assert doc["vpn"]["status"].startswith("vpn: not running (")
    assert lab.up_seconds < 10
    text = CliRunner().invoke(cli, ["lab", "status", "--name", lab.name, "--state-dir", str(lab.state_dir)])
    assert text.exit_code == 0 and "firewall: table inet mipcheck loaded" in text.output


def test_a_second_up_of_the_same_lab_is_refused(lab):
    with pytest.raises(Exception, match="already up"):
        control.up(lab.name, state_dir=lab.state_dir)
    assert control.status(lab)["healthy"]


def test_shell_runs_a_command_in_a_node(lab):
    argv = control.mipcheck_argv("lab", "shell", "--name", lab.name, "cn", "--", "ip", "-o", "-4", "address")
    out = subprocess.run(argv, capture_output=True, text=True, env=control._child_env(), timeout=30)
    assert out.returncode == 0 and f"{CN_ADDRESS}/24" in out.stdout, out.stderr


# ------------------------------------------------------------------ the firewall (RFC 5265 3.1)


def test_the_firewall_rules_are_loaded(lab):
    rules = firewall.rules(lab.topology.namespace("firewall"))
    for comment in (
        firewall.IHA_UDP_DROP,
        firewall.IHA_IPIP_DROP,
        firewall.INTERNAL_OUT,
        firewall.VPN_INNER,
        firewall.DEFAULT_DROP,
    ):
        assert comment in rules
    assert "inet mipcheck" in firewall.tables(lab.topology.namespace("nat"))


def test_allowed_paths_carry_traffic_both_ways(lab):
    ns = lab.topology.namespace
    # the internal network reaches the x-HA in the DMZ, and the answer comes back (stateful)
    to_xha = probe.udp(ns("cn"), ns("x-ha"), XHA_ADDRESS, 9000)
    assert to_xha.arrived and to_xha.source[0] == CN_ADDRESS and to_xha.replied
    # outside reaches the DMZ's public services; inside, hosts reach each other
    assert probe.ping(ns("mn"), XHA_ADDRESS)
    assert probe.ping(ns("mn"), VPN_GATEWAY_ADDRESS)
    assert probe.udp(ns("cn"), ns("i-ha"), IHA_ADDRESS, 9001).replied
    assert probe.ipip(ns("cn"), ns("i-ha"), IHA_ADDRESS, inner_src=CN_ADDRESS, inner_dst=IHA_ADDRESS)
    # the internal network reaches the outside; an x-FA's link is routed
    assert probe.udp(ns("cn"), ns("mn"), MN_ADDRESS, 9002).replied
    assert probe.udp(ns("i-ha"), ns("x-fa"), "203.0.113.1", 9003).replied


def test_nothing_from_outside_reaches_the_internal_network(lab):
    ns = lab.topology.namespace
    fw = ns("firewall")
    before = firewall.rules(fw)
    assert not probe.udp(ns("mn"), ns("i-ha"), IHA_ADDRESS, 434, timeout=0.3).arrived
    assert not probe.udp(ns("x-ha"), ns("i-ha"), IHA_ADDRESS, 434, timeout=0.3).arrived  # from the DMZ
    assert not probe.ipip(ns("mn"), ns("i-ha"), IHA_ADDRESS, inner_src=MN_ADDRESS, inner_dst=IHA_ADDRESS, timeout=0.3)
    assert not probe.udp(ns("mn"), ns("cn"), CN_ADDRESS, 9004, timeout=0.3).arrived
    assert not probe.udp(ns("x-ha"), ns("cn"), CN_ADDRESS, 9005, timeout=0.3).arrived  # unsolicited from the DMZ
    assert not probe.ping(ns("mn"), IHA_ADDRESS, timeout=0.3)
    # the outside reaches only the DMZ's services, not any port of its hosts
    assert not probe.udp(ns("mn"), ns("x-ha"), XHA_ADDRESS, 9006, timeout=0.3).arrived
    after = firewall.rules(fw)
    assert after[firewall.IHA_UDP_DROP] - before[firewall.IHA_UDP_DROP] == 2
    assert after[firewall.IHA_IPIP_DROP] - before[firewall.IHA_IPIP_DROP] == 1
    assert after[firewall.DEFAULT_DROP] - before[firewall.DEFAULT_DROP] >= 4


# ------------------------------------------------------------------ the home agents


def test_iha_accepts_with_tnc_from_inside_and_hears_nothing_from_outside(lab, tmp_path):
    inside = _mn_config(lab, tmp_path / "inside.toml", home_agent=IHA_ADDRESS, local=CN_ADDRESS)
    rc, reply = _register(lab, "cn", inside)
    assert (rc, reply["outcome"], reply["tnc"]) == (0, "accepted", True), reply
    outside = _mn_config(lab, tmp_path / "outside.toml", home_agent=IHA_ADDRESS, local=MN_ADDRESS)
    dropped = firewall.rules(lab.topology.namespace("firewall"))[firewall.IHA_UDP_DROP]
    rc, reply = _register(lab, "mn", outside)
    assert (rc, reply["outcome"], reply["sent"]) == (2, "no-reply", 2), reply
    assert firewall.rules(lab.topology.namespace("firewall"))[firewall.IHA_UDP_DROP] == dropped + 2
    sources = [d.get("source", "") for d in _decisions(lab, "i-ha", until=lambda d: d.get("outcome") == "accepted")]
    assert any(s.startswith(f"{CN_ADDRESS}:") for s in sources)
    assert not any(s.startswith(f"{MN_ADDRESS}:") for s in sources)  # the firewall kept it away (3.1)


def test_xha_accepts_from_outside_without_tnc(lab, tmp_path):
    config = _mn_config(lab, tmp_path / "xmip.toml", home_agent=XHA_ADDRESS, local=MN_ADDRESS, inner=False)
    rc, reply = _register(lab, "mn", config)
    assert (rc, reply["outcome"], reply["tnc"]) == (0, "accepted", False), reply


# ------------------------------------------------------------------ NAT and the VPN gateway


def test_the_nat_hides_the_mobile_node(nat_lab, tmp_path):
    ns = nat_lab.topology.namespace
    mn = nat_lab.topology.node("mn").interfaces[0].ip
    result = probe.udp(ns("mn"), ns("x-ha"), XHA_ADDRESS, 9010, timeout=0.3)
    assert not result.arrived  # only the x-HA's registration port is open to the outside
    config = _mn_config(nat_lab, tmp_path / "xmip.toml", home_agent=XHA_ADDRESS, local=mn, inner=False)
    rc, reply = _register(nat_lab, "mn", config)
    assert (rc, reply["outcome"]) == (0, "accepted"), reply
    seen = [d["source"] for d in _decisions(nat_lab, "x-ha", until=lambda d: "source" in d) if "source" in d]
    assert seen and seen[-1].startswith("198.51.100.3:")  # the NAT's outside address


@pytest.mark.skipif(VPN_MISSING is not None, reason=f"strongSwan: {VPN_MISSING}")
def test_through_the_vpn_the_iha_accepts_with_tnc(nat_lab, tmp_path):
    fw = nat_lab.topology.namespace("firewall")
    before = firewall.rules(fw)
    control.start_vpn_client(nat_lab, "mn")
    tia = control.vpn_tunnel_address(nat_lab, "mn")
    assert tia is not None and tia.startswith(str(VPN_POOL.network_address)[:-1])
    config = _mn_config(nat_lab, tmp_path / "vpn.toml", home_agent=IHA_ADDRESS, local=tia)
    rc, reply = _register(nat_lab, "mn", config)
    assert (rc, reply["outcome"], reply["tnc"]) == (0, "accepted", True), reply
    after = firewall.rules(fw)
    assert after[firewall.VPN_INNER] > before[firewall.VPN_INNER]  # decrypted by the gateway, then let in
    assert after[firewall.VPN_IKE] > before[firewall.VPN_IKE]  # ESP in UDP 4500 outside
    assert after[firewall.IHA_UDP_DROP] == before[firewall.IHA_UDP_DROP]
    assert "NAT" in (nat_lab.state_dir / "vpn-gateway" / "charon.log").read_text()
    doc = control.status(control.load(nat_lab.name, state_dir=nat_lab.state_dir))
    mn = next(n for n in doc["nodes"] if n["name"] == "mn")
    assert doc["healthy"] and len(mn["pids"]) == 1 and all(mn["alive"].values())


# ------------------------------------------------------------------ down


def test_down_of_a_lab_that_is_not_up_is_harmless(tmp_path):
    name = _name("d")
    result = CliRunner().invoke(cli, ["lab", "down", "--name", name, "--state-dir", str(tmp_path / "none")])
    assert result.exit_code == 0 and "removed 0 namespaces" in result.output
    result = CliRunner().invoke(cli, ["lab", "status", "--name", name, "--state-dir", str(tmp_path / "none")])
    assert result.exit_code == 1 and "is not up" in str(result.exception)


@pytest.mark.parametrize("when", ["namespaces", "home agents"])
def test_down_cleans_up_after_a_crashed_up(tmp_path, when):
    name = _name("c")
    state = tmp_path / "state"
    argv = control.mipcheck_argv("lab", "up", "--name", name, "--state-dir", str(state))
    up = subprocess.Popen(argv, env=control._child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if when == "namespaces" and len(netns.namespaces(namespace_prefix(name))) >= 3:
                break
            if when == "home agents" and (state / "logs" / "x-ha.log").exists():
                break
            time.sleep(0.005)
        else:
            pytest.fail(f"up never reached {when}")
        up.send_signal(signal.SIGKILL)
        up.wait()
        assert not (state / control.STATE_FILE).exists()
        assert netns.namespaces(namespace_prefix(name))
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        report = control.down(name, state_dir=state)
    if when == "home agents":
        assert report.killed  # the i-HA and x-HA outlived the crash; down found them
    assert _leftovers(name, state) == []


def test_status_sees_a_dead_home_agent(tmp_path_factory):
    with lab_up(tmp_path_factory, "s", with_vpn=False) as small:
        (pid,) = small.pids("x-ha")
        netns.kill_all([pid])
        result = CliRunner().invoke(cli, ["lab", "status", "--name", small.name, "--state-dir", str(small.state_dir)])
        assert result.exit_code == 1
        assert f"problem: x-ha: pid {pid} is not running" in result.output
        assert "vpn: not running (not requested)" in result.output


def test_a_failing_up_takes_down_what_it_made(tmp_path, monkeypatch):
    name = _name("f")
    state = tmp_path / "state"

    def broken(ns, ruleset):
        raise netns.LabError("nft -f -: Error: broken on purpose")

    monkeypatch.setattr(firewall, "load", broken)
    with pytest.raises(netns.LabError, match="broken on purpose"):
        control.up(name, state_dir=state)
    assert _leftovers(name, state) == []
