"""The lab's plan as data, its rulesets as text and its CLI's refusals: no root needed."""

from __future__ import annotations

import ipaddress
import json
import tomllib

import pytest
from click.testing import CliRunner

from mipcheck.capture.profile import parse_profile
from mipcheck.cli import COMMANDS, cli
from mipcheck.errors import ConfigError, MipcheckError
from mipcheck.lab import control, firewall, netns
from mipcheck.lab.topology import (
    AUDIT_ROLE,
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
    # plus the audits' own hosts, which are no node of Figure 1
    assert [v.name for v in topo.vantages] == ["audit-out", "audit-vpn", "audit-in"]
    assert {v.role for v in topo.vantages} == {AUDIT_ROLE} and AUDIT_ROLE not in ROLES
    assert len(set(topo.namespaces)) == len(ROLES) + 1 + len(topo.vantages)
    assert topo.node("audit-vpn").interfaces[0].network == "nat-inside"  # the VPN host's IPsec crosses the NAT


@pytest.mark.parametrize("nat", [False, True])
def test_interfaces_are_short_addresses_unique_and_inside_their_networks(nat: bool):
    topo = build_topology("lab", nat=nat)
    seen = set()
    for node in topo.hosts:
        for leg in node.interfaces:
            assert len(leg.name) <= IFNAMSIZ and len(leg.port) <= IFNAMSIZ
            iface = ipaddress.IPv4Interface(leg.address)
            assert iface.network == topo.network(leg.network).subnet, (node.name, leg)
            assert iface.ip not in seen
            seen.add(iface.ip)
            assert iface.ip.is_private or iface.ip in ipaddress.IPv4Network("198.51.100.0/24")
    ports = [leg.port for n in topo.hosts for leg in n.interfaces if topo.network(leg.network).bridge]
    assert len(ports) == len(set(ports))


def test_every_gateway_is_on_a_network_of_its_node():
    topo = build_topology("lab")
    for node in topo.hosts:
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


# ------------------------------------------------------------------ broken variants (site audit), site-audit profile


def test_every_break_names_a_case_and_is_listed_by_the_cli():
    from mipcheck.lab.breaks import BREAKS, TABLE

    assert len(BREAKS) == len(TABLE)
    result = CliRunner().invoke(cli, ["lab", "breaks", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == [b.name for b in TABLE]
    assert all(
        r["case"].startswith(("SITE-", "HA-")) and r["summary"] and r["rule"].startswith("RFC 5265") for r in rows
    )
    assert all(r["suite"] == ("site" if r["case"].startswith("SITE-") else "ha") for r in rows)
    # a break built for an HA-suite case names where audit-ha sees it fail
    for r in rows:
        if r["suite"] == "ha":
            assert any(h["case"] == r["case"] and h["verdict"] == "fail" for h in r["ha"]), r
    text = CliRunner().invoke(cli, ["lab", "breaks"])
    assert text.exit_code == 0 and all(b.name in text.output for b in TABLE)


def test_an_unknown_break_is_a_usage_error_before_anything_is_built(monkeypatch):
    called = []
    monkeypatch.setattr(control, "up", lambda *a, **k: called.append(1))
    args = ["lab", "up", "--name", "nobreak", "--break", "fw-open-everything"]
    result = CliRunner().invoke(cli, args, standalone_mode=False)
    assert isinstance(result.exception, ConfigError) and result.exception.exit_code == 2
    assert "'fw-open-everything' is not a lab break" in str(result.exception)
    assert called == []
    with pytest.raises(ConfigError, match="not a lab break"):
        firewall.firewall_ruleset(["nope"])


def _rule_lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if "comment" in ln]


def test_each_firewall_break_changes_only_its_rule():
    base = _rule_lines(firewall.firewall_ruleset())
    udp = _rule_lines(firewall.firewall_ruleset(["fw-open-434"]))
    assert len(udp) == len(base) and sum(a != b for a, b in zip(base, udp, strict=True)) == 1
    opened = next(ln for ln in udp if "BREAK fw-open-434" in ln)
    assert f"ip daddr {IHA_ADDRESS} udp dport 434" in opened and " accept " in opened
    ipip = _rule_lines(firewall.firewall_ruleset(["fw-open-ipip"]))
    assert sum(a != b for a, b in zip(base, ipip, strict=True)) == 1
    inside = _rule_lines(firewall.firewall_ruleset(["xha-inside-drop"]))
    assert len(inside) == len(base) + 1 and any(f"ip daddr {XHA_ADDRESS} udp dport 434" in ln for ln in inside)
    same = firewall.firewall_ruleset(["same-ha-address"])
    assert f"dnat ip to {XHA_ADDRESS}" in same and "hook prerouting" in same
    assert "prerouting" not in firewall.firewall_ruleset()


def test_the_vpn_policy_allows_434_from_any_port_and_ipip_unless_broken():
    ok = firewall.vpn_policy_ruleset()
    assert firewall.VPN_POLICY_UDP in ok and firewall.VPN_POLICY_IPIP in ok and "sport" not in ok
    fixed = firewall.vpn_policy_ruleset(["vpn-434-fixed-port"])
    assert "udp sport 434" in fixed and firewall.VPN_POLICY_UDP not in fixed
    no_ipip = firewall.vpn_policy_ruleset(["vpn-no-ipip"])
    assert "ip protocol 4 counter drop" in no_ipip and firewall.VPN_POLICY_IPIP not in no_ipip


def test_vpn_no_natt_moves_charons_nat_t_port():
    from mipcheck.lab import vpn

    assert "port_nat_t" not in vpn.strongswan_conf()
    assert "port_nat_t = 4501" in vpn.strongswan_conf(control.NAT_T_PORT_BROKEN)


def test_the_site_audit_profile_of_the_lab_loads(tmp_path):
    from mipcheck.suites.site.profile import load_site_profile

    lab = control.Lab(build_topology("lab"), tmp_path)
    control._write_files(lab, "psk")
    assert lab.site_profile == tmp_path / control.SITE_PROFILE
    profile = load_site_profile(lab.site_profile)
    assert profile.internal_home_agents == (IHA_ADDRESS,) and profile.external_home_agents == (XHA_ADDRESS,)
    assert {v.role for v in profile.vantages} == {"outside", "inside", "vpn", "i-ha"}
    assert all(v.namespace and v.namespace.startswith("mipcheck-lab-") for v in profile.vantages)
    assert {m.home_agent for m in profile.mobile_nodes} == {"internal", "external"}
    assert profile.identity("internal").sa.key == (tmp_path / "secrets" / "mn1-inner.key").read_bytes().strip()
    # without a VPN host there is no vpn vantage point, and the profile says why
    text = control.site_audit_profile_text(build_topology("lab"), ("vpn-no-natt",), "the lab break vpn-no-natt ...")
    assert 'role = "vpn"' not in text and "# no vantage point on the VPN: the lab break vpn-no-natt" in text
    # same-ha-address: the profile names the i-HA's address for the x-HA too
    same = control.site_audit_profile_text(build_topology("lab"), ("same-ha-address",))
    assert f'external_home_agents = ["{IHA_ADDRESS}"]' in same
