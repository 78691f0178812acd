"""The lab's plan as data, its rulesets as text and its CLI's refusals: no root needed."""

from __future__ import annotations

import ipaddress
import tomllib

import pytest
from click.testing import CliRunner

from mipcheck.capture.profile import parse_profile
from mipcheck.cli import COMMANDS, cli
from mipcheck.errors import MipcheckError
from mipcheck.lab import control, firewall, netns
from mipcheck.lab.topology import (
    IFNAMSIZ,
    IHA_ADDRESS,
    INTERNAL_NETWORK,
    ROLES,
    VPN_POOL,
    XHA_ADDRESS,
    build_topology,
    check_lab_name,
)


def test_every_role_of_figure_1_is_a_node_in_its_own_namespace():
    topo = build_topology("x1")
    assert sorted(n.role for n in topo.nodes) == sorted(ROLES)
    assert all(topo.namespace(n.name) == f"mipcheck-x1-{n.name}" for n in topo.nodes)
    assert topo.switch_namespace == "mipcheck-x1-switch"
    assert len(set(topo.namespaces)) == len(ROLES) + 1


@pytest.mark.parametrize("nat", [False, True])
def test_interfaces_are_short_addresses_unique_and_inside_their_networks(nat: bool):
    topo = build_topology("lab", nat=nat)
    seen = set()
    for node in topo.nodes:
        for leg in node.interfaces:
            assert len(leg.name) <= IFNAMSIZ and len(leg.port) <= IFNAMSIZ
            iface = ipaddress.IPv4Interface(leg.address)
            assert iface.network == topo.network(leg.network).subnet, (node.name, leg)
            assert iface.ip not in seen
            seen.add(iface.ip)
            assert iface.ip.is_private or iface.ip in ipaddress.IPv4Network("198.51.100.0/24")
    ports = [leg.port for n in topo.nodes for leg in n.interfaces if topo.network(leg.network).bridge]
    assert len(ports) == len(set(ports))


def test_every_gateway_is_on_a_network_of_its_node():
    topo = build_topology("lab")
    for node in topo.nodes:
        for _dest, gw in node.routes:
            nets = [ipaddress.IPv4Interface(i.address).network for i in node.interfaces]
            assert any(ipaddress.IPv4Address(gw) in n for n in nets), (node.name, gw)


def test_the_plan_keeps_rfc_5265_apart():
    topo = build_topology("lab")
    assert topo.node("i-ha").interfaces[0].ip == IHA_ADDRESS != XHA_ADDRESS  # 3.5: distinct HA addresses
    assert ipaddress.IPv4Address(IHA_ADDRESS) in INTERNAL_NETWORK and VPN_POOL.subnet_of(INTERNAL_NETWORK)
    assert ipaddress.IPv4Address(topo.node("mn").interfaces[0].ip) not in INTERNAL_NETWORK
    assert topo.node("nat").name == topo.node("nat").role
    assert build_topology("lab", nat=True).node("mn").interfaces[0].network == "nat-inside"


@pytest.mark.parametrize("name", ["", "a-b", "UPPER", "x" * 17, "../x", "a b"])
def test_lab_names_that_would_clash_or_escape_are_refused(name: str):
    with pytest.raises(MipcheckError, match="lab name"):
        check_lab_name(name)


def test_node_lookup_by_name_role_or_short_name():
    topo = build_topology("lab")
    assert topo.node("vpn-gateway") is topo.node("vpn")
    with pytest.raises(MipcheckError, match="no node 'router'"):
        topo.node("router")


def test_the_firewall_ruleset_drops_outside_to_the_iha_before_accepting_anything():
    text = firewall.firewall_ruleset()
    lines = [ln.strip() for ln in text.splitlines()]
    first_accept = next(i for i, ln in enumerate(lines) if ln.endswith('"') and " accept " in ln)
    udp = next(i for i, ln in enumerate(lines) if firewall.IHA_UDP_DROP in ln)
    ipip = next(i for i, ln in enumerate(lines) if firewall.IHA_IPIP_DROP in ln)
    assert udp < first_accept and ipip < first_accept
    assert f"ip daddr {IHA_ADDRESS} udp dport 434" in lines[udp] and "ip protocol 4" in lines[ipip]
    assert "policy drop" in text and firewall.DEFAULT_DROP in lines[-3]
    assert f"ip saddr {VPN_POOL}" in next(ln for ln in lines if firewall.VPN_INNER in ln)


def test_the_site_profile_is_a_valid_profile_of_the_lab():
    profile = parse_profile(tomllib.loads(control.site_profile_text(build_topology("lab"))))
    assert profile.internal_home_agents == {IHA_ADDRESS}
    assert profile.external_home_agents == {XHA_ADDRESS}
    assert profile.trusted_networks == (INTERNAL_NETWORK,)


def test_ha_configs_load(tmp_path):
    from mipcheck.ha.config import load_ha_config

    lab = control.Lab(build_topology("lab"), tmp_path)
    control._write_files(lab, "psk")
    iha = load_ha_config(tmp_path / "i-ha.toml")
    xha = load_ha_config(tmp_path / "x-ha.toml")
    assert (iha.role, iha.address, iha.port, iha.trusted_networks) == ("i-ha", IHA_ADDRESS, 434, (INTERNAL_NETWORK,))
    assert (xha.role, xha.address, xha.trusted_networks) == ("x-ha", XHA_ADDRESS, ())
    assert oct((tmp_path / "secrets" / "mn1-inner.key").stat().st_mode & 0o777) == "0o600"


def test_the_command_is_registered():
    assert COMMANDS["lab"][0] == "mipcheck.commands.lab"


@pytest.mark.parametrize("args", [["up"], ["down"], ["status"], ["shell", "cn"]])
def test_without_root_one_line_and_exit_2(monkeypatch, args):
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    result = CliRunner().invoke(cli, ["lab", *args, "--name", "noroot"], standalone_mode=False)
    assert isinstance(result.exception, MipcheckError) and result.exception.exit_code == 2
    assert str(result.exception) == "mipcheck lab needs root and network namespaces (not running as root)"


def test_a_failing_command_is_one_line_naming_it():
    with pytest.raises(netns.LabError) as err:
        netns.run(["sh", "-c", "echo \"plugin 'x': failed to load\" >&2; echo 'Error: no such thing' >&2; exit 3"])
    assert str(err.value).endswith(": Error: no such thing") and "\n" not in str(err.value)
    with pytest.raises(netns.LabError, match="no-such-command-here: command not found"):
        netns.run(["no-such-command-here"])
