"""The HA suite's trust cases against the lab's i-HA from inside and through the VPN (``mipcheck lab audit-ha``).

The first tests need nothing: the profiles ``up`` writes load with the HA
suite's own parser, name the lab's keys and the i-HA knows their home
addresses; the case ids and breaks agree with the suite; the command's
choice of vantage points. The rest need root and network namespaces
(skipped otherwise, with the reason): ONE unbroken lab serves the clean runs
from both vantage points and the route-back control; each break with
HA-suite verdicts (``iha-omit-tnc``, ``iha-trust-all``) gets a lab of its
own, and its declared verdicts are held exactly, from the vantage points it
names, every other case as on the clean lab.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from lab_support import WHY_NOT, lab_up, make_lab

from mipcheck.cli import cli
from mipcheck.engine.profile import load_profile
from mipcheck.errors import MipcheckError
from mipcheck.ha.config import load_ha_config
from mipcheck.lab import breaks as br
from mipcheck.lab import control, ha_audit, netns, vpn
from mipcheck.lab.topology import (
    AUDIT_IN_ADDRESS,
    AUDIT_UNTRUSTED_ADDRESSES,
    IHA_ADDRESS,
    INNER_HOME_ADDRESS,
    INTERNAL_NETWORK,
    UNTRUSTED_NETWORK,
    build_topology,
)
from mipcheck.suites.ha import CASES_BY_ID

ROOT = pytest.mark.skipif(WHY_NOT is not None, reason=f"the lab needs root and network namespaces: {WHY_NOT}")
VPN_MISSING = vpn.missing() if WHY_NOT is None else "no lab here"
NEEDS_VPN = pytest.mark.skipif(VPN_MISSING is not None, reason=f"strongSwan: {VPN_MISSING}")
HA_BREAKS = [b for b in br.TABLE if b.ha]


def clean_verdicts(vantage: str) -> dict[str, str]:
    """What audit-ha's default cases give on the lab as built: pass, but the one the lab cannot give."""
    want = {case: "pass" for case in ha_audit.default_cases(vantage)}
    want["HA-TRUST-NONE-DEFAULT"] = "not-applicable"  # the lab's i-HA cannot be brought up unconfigured
    return want


# ------------------------------------------------------------------ no root needed


def test_the_audits_case_ids_and_breaks_are_the_ha_suites():
    assert set(ha_audit.TRUST_CASES) <= set(CASES_BY_ID)
    assert set(ha_audit.UNTRUSTED_CASES) <= set(ha_audit.TRUST_CASES)
    assert ha_audit.default_cases("inside") == ha_audit.TRUST_CASES
    vpn_cases = ha_audit.default_cases("vpn")
    assert not set(vpn_cases) & set(ha_audit.UNTRUSTED_CASES) and set(ha_audit.left_out("vpn")) == set(
        ha_audit.UNTRUSTED_CASES
    )
    assert {b.name for b in HA_BREAKS} == {br.IHA_OMIT_TNC, br.IHA_TRUST_ALL}
    for b in br.TABLE:
        if b.suite == "ha":
            assert b.case in CASES_BY_ID and any(e.case == b.case and e.verdict == "fail" for e in b.ha), b.name
        for e in b.ha:
            assert e.case in CASES_BY_ID and e.verdict in ("fail", "warn", "inconclusive") and e.why
            assert e.vantages and set(e.vantages) <= set(ha_audit.VANTAGES)
            for vantage in e.vantages:  # audit-ha runs it there by default, or the effect could never be seen
                assert e.case in ha_audit.default_cases(vantage), (b.name, e.case, vantage)
            if e.verdict == "warn":
                assert CASES_BY_ID[e.case].level == "SHOULD"


def _written(tmp_path: Path, breaks: tuple[str, ...] = (), tia: str | None = "10.8.0.7") -> control.Lab:
    lab = control.Lab(build_topology("lab"), tmp_path, breaks=breaks)
    control._write_files(lab, "psk")
    if tia is None:
        lab.vpn_host_not_started = "the lab break vpn-no-natt leaves the VPN unusable for clients"
    lab.ha_profiles = ha_audit.write_profiles(lab, tia)
    return lab


def test_the_profiles_load_with_the_ha_suites_parser_and_use_the_labs_key(tmp_path):
    lab = _written(tmp_path)
    key = (tmp_path / "secrets" / "mn1-inner.key").read_bytes().strip()
    inside = load_profile(lab.ha_profiles["inside"]["profile"])
    assert inside.target == (IHA_ADDRESS, 434) and inside.role == "i-ha" and inside.flag("trusted_networks")
    assert inside.trusted_sources == (AUDIT_IN_ADDRESS,)
    assert inside.untrusted_sources == AUDIT_UNTRUSTED_ADDRESSES
    for address in inside.untrusted_sources:  # outside every trusted network, inside the prefix routed back
        ip = ipaddress.IPv4Address(address)
        assert ip not in INTERNAL_NETWORK and ip in UNTRUSTED_NETWORK
    assert "start_unconfigured" not in inside.commands  # HA-TRUST-NONE-DEFAULT: not applicable, never faked
    assert str(tmp_path / "i-ha.decisions.log") in inside.commands["read_log"]
    over = load_profile(lab.ha_profiles["vpn"]["profile"])
    assert over.trusted_sources == ("10.8.0.7",) and over.untrusted_sources == ()
    for profile, vantage in ((inside, "inside"), (over, "vpn")):
        homes = [m.home_address for m in profile.mobile_nodes]
        assert homes == ha_audit.home_addresses(vantage) and INNER_HOME_ADDRESS not in homes  # never the MN's
        assert all(m.sa.key == key and m.sa.spi == control.INNER_SPI for m in profile.mobile_nodes)
        assert key.decode() not in Path(profile.source).read_text()  # the key is named by file, never written in
    assert not set(ha_audit.home_addresses("inside")) & set(ha_audit.home_addresses("vpn"))  # both may run at once
    # the i-HA knows every audit home address with the same key, and trusts the internal network only
    iha = load_ha_config(tmp_path / "i-ha.toml")
    assert iha.trusted_networks == (INTERNAL_NETWORK,)
    for home in [INNER_HOME_ADDRESS, *ha_audit.all_home_addresses()]:
        node = iha.mobile_node(home)
        assert node is not None and node.sa.key == key and node.sa.spi == control.INNER_SPI
    doc = lab.as_json()
    assert doc["ha_profiles"]["inside"]["profile"] == str(tmp_path / "ha-suite-inside.toml")
    assert control.Lab.from_json(doc).ha_profiles == doc["ha_profiles"]


def test_without_a_vpn_host_there_is_no_vpn_profile_and_the_record_says_why(tmp_path):
    lab = _written(tmp_path, tia=None)
    record = lab.ha_profiles["vpn"]
    assert record["profile"] is None and "vpn-no-natt" in record["not_written"]
    assert not (tmp_path / ha_audit.PROFILE_FILES["vpn"]).exists()
    assert lab.ha_profiles["inside"]["profile"] is not None


def test_iha_trust_all_is_a_configuration_of_the_i_ha(tmp_path):
    _written(tmp_path, breaks=(br.IHA_TRUST_ALL,))
    assert load_ha_config(tmp_path / "i-ha.toml").trusted_networks == (ipaddress.IPv4Network(control.TRUST_ALL),)


def test_the_firewall_routes_the_untrusted_prefix_back_to_the_audit_host():
    topo = build_topology("lab")
    assert (str(UNTRUSTED_NETWORK), AUDIT_IN_ADDRESS) in topo.node("firewall").routes
    host = topo.node("audit-in")
    assert host.interfaces[0].address == f"{AUDIT_IN_ADDRESS}/24" and host.interfaces[0].network == "internal"
    assert [a for _dev, a in host.extra_addresses] == [f"{a}/32" for a in AUDIT_UNTRUSTED_ADDRESSES]


def test_audit_ha_runs_both_vantage_points_by_default_and_says_why_one_is_missing(monkeypatch, tmp_path):
    lab = _written(tmp_path, tia=None)
    monkeypatch.setattr(control, "load", lambda *a, **k: lab)
    real_check_ready = ha_audit.check_ready
    monkeypatch.setattr(ha_audit, "check_ready", lambda _lab, vantage: _lab.ha_profiles[vantage])
    ran = []
    monkeypatch.setattr(ha_audit, "run", lambda _lab, vantage, cases, out, quiet: ran.append((vantage, cases)) or 0)
    result = CliRunner().invoke(cli, ["lab", "audit-ha", "--name", "lab", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert ran == [("inside", ha_audit.TRUST_CASES)]
    assert "not from vpn: the audit's VPN host is not on the VPN" in result.output
    ran.clear()
    monkeypatch.setattr(ha_audit, "check_ready", real_check_ready)  # asked for by name, a missing profile is an error
    result = CliRunner().invoke(cli, ["lab", "audit-ha", "--from", "vpn", "--case", "HA-TNC-*"], standalone_mode=False)
    assert isinstance(result.exception, MipcheckError) and result.exception.exit_code == 2 and ran == []
    assert "audit-ha --from vpn: no profile: the audit's VPN host is not on the VPN" in str(result.exception)


def test_audit_ha_runs_mipcheck_run_in_the_vantage_points_namespace(tmp_path):
    lab = _written(tmp_path)
    argv = ha_audit.suite_argv(lab, "vpn", ("HA-TNC-*",), tmp_path / "out", quiet=True)
    assert argv[:4] == ["ip", "netns", "exec", "mipcheck-lab-audit-vpn"]
    tail = ["run", "--suite", "ha", "--profile", str(tmp_path / "ha-suite-vpn.toml"), "--out", str(tmp_path / "out")]
    assert argv[-len(tail) - 3 :] == [*tail, "--case", "HA-TNC-*", "-q"]
    assert argv[4:7] == [sys.executable, "-m", "mipcheck"]


# ------------------------------------------------------------------ against the lab (root)


def _audit(lab: control.Lab, out: Path, *vantages: str) -> tuple[subprocess.CompletedProcess, dict[str, dict]]:
    """``mipcheck lab audit-ha`` as a user runs it; the report of each vantage point's run."""
    argv = [sys.executable, "-m", "mipcheck", "lab", "audit-ha", "--name", lab.name]
    argv += ["--state-dir", str(lab.state_dir), "--out", str(out), "-q"]
    for vantage in vantages:
        argv += ["--from", vantage]
    proc = subprocess.run(argv, capture_output=True, text=True, env=control._child_env(), timeout=120)
    reports = {}
    for vantage in vantages or ha_audit.VANTAGES:
        path = out / vantage / "report.json"
        if path.exists():
            reports[vantage] = json.loads(path.read_text())
    return proc, reports


def _verdicts(report: dict) -> dict[str, str]:
    return {c["id"]: c["verdict"] for c in report["cases"]}


def _case(report: dict, case_id: str) -> dict:
    return next(c for c in report["cases"] if c["id"] == case_id)


@pytest.fixture(scope="module")
def ha_lab(tmp_path_factory):
    if WHY_NOT is not None:
        pytest.skip(f"the lab needs root and network namespaces: {WHY_NOT}")
    yield from make_lab(tmp_path_factory, "h")


@pytest.fixture(scope="module")
def clean_run(ha_lab, tmp_path_factory):
    out = tmp_path_factory.mktemp("ha-clean")
    proc, reports = _audit(ha_lab, out)
    return proc, reports, out


@pytest.mark.root
@ROOT
@NEEDS_VPN
def test_the_lab_as_built_passes_the_trust_cases_from_inside_and_through_the_vpn(clean_run, ha_lab):
    proc, reports, out = clean_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert set(reports) == {"inside", "vpn"}
    for vantage, report in reports.items():
        assert _verdicts(report) == clean_verdicts(vantage), [
            (c["id"], c["verdict"], c["reason"]) for c in report["cases"] if c["verdict"] != "pass"
        ]
        assert report["suite"] == "ha" and report["exit_code"] == 0 and report["preflight"]["status"] == "accepted"
        assert report["target"]["address"] == IHA_ADDRESS
        assert report["profile"]["source"] == ha_lab.ha_profiles[vantage]["profile"]
        assert all(m["secret"].startswith("<hidden: file ") for m in report["profile"]["mn"])
        why = _case(report, "HA-TRUST-NONE-DEFAULT")["reason"]
        assert "no way to bring the device up with no trusted subnet" in why
        assert (out / vantage / "report.html").is_file() and (out / vantage / "junit.xml").is_file()
    # the datagrams are the vantage points': audit-in's addresses inside, the VPN-TIA through the VPN
    drop = _case(reports["inside"], "HA-UNTRUSTED-DROP")["evidence"]["datagrams"]
    assert any(f"{AUDIT_UNTRUSTED_ADDRESSES[0]}:" in d for d in drop) and any(f"{AUDIT_IN_ADDRESS}:" in d for d in drop)
    tia = ha_lab.ha_profiles["vpn"]["trusted_sources"][0]
    assert ipaddress.IPv4Address(tia) in ipaddress.IPv4Network("10.8.0.0/24")
    assert all(d.split(": ", 1)[1].startswith((f"{tia}:", f"{IHA_ADDRESS}:")) for d in _evidence(reports["vpn"]))
    # the untrusted cases are left to the inside, and the run says so
    assert "not run from vpn: HA-UNTRUSTED-DROP, HA-SOURCE-NOT-COA, HA-UNTRUSTED-LOG" in proc.stderr
    assert "the i-HA's namespace reaches 172.16.1.20, 172.16.1.21" in proc.stderr


def _evidence(report: dict) -> list[str]:
    return [d for c in report["cases"] for d in c["evidence"]["datagrams"]]


@pytest.mark.root
@ROOT
def test_status_names_the_ha_profiles(ha_lab):
    result = CliRunner().invoke(cli, ["lab", "status", "--name", ha_lab.name, "--state-dir", str(ha_lab.state_dir)])
    assert result.exit_code == 0, result.output
    assert f"ha profile inside: {ha_lab.state_dir / 'ha-suite-inside.toml'}" in result.output
    assert f"mipcheck lab audit-ha --name {ha_lab.name} --from inside" in result.output


@pytest.mark.root
@ROOT
def test_without_the_route_back_the_inside_audit_refuses_to_judge_silence(ha_lab, clean_run):
    # without the firewall's route an i-HA answering untrusted sources would pass HA-UNTRUSTED-DROP: no run then
    fw = ha_lab.topology.namespace("firewall")
    netns.ip("route", "del", str(UNTRUSTED_NETWORK), ns=fw)
    try:
        with pytest.raises(MipcheckError, match="silence at the untrusted sources would prove nothing") as refused:
            ha_audit.check_ready(ha_lab, "inside")
        assert f"reaches {', '.join(AUDIT_UNTRUSTED_ADDRESSES)} (route" in str(refused.value)
    finally:
        netns.ip("route", "add", str(UNTRUSTED_NETWORK), "via", AUDIT_IN_ADDRESS, ns=fw)
    assert all(ok for _address, ok in ha_audit.route_back(ha_lab))


@pytest.mark.root
@ROOT
@pytest.mark.parametrize("brk", HA_BREAKS, ids=lambda b: b.name)
def test_each_break_fails_its_ha_cases_and_nothing_else(brk: br.Break, tmp_path_factory, tmp_path):
    vantages = tuple(v for v in ha_audit.VANTAGES if any(v in e.vantages for e in brk.ha))
    if "vpn" in vantages and VPN_MISSING is not None:
        pytest.skip(f"strongSwan: {VPN_MISSING}")
    with lab_up(tmp_path_factory, "a", breaks=(brk.name,)) as lab:
        proc, reports = _audit(lab, tmp_path / "out", *vantages)
    assert set(reports) == set(vantages), proc.stdout + proc.stderr
    for vantage in vantages:
        want = clean_verdicts(vantage)
        want.update({e.case: e.verdict for e in brk.ha if vantage in e.vantages})
        got = _verdicts(reports[vantage])
        assert got == want, (vantage, [(c["id"], c["verdict"], c["reason"]) for c in reports[vantage]["cases"]])
    assert proc.returncode == 1  # each break fails a MUST case
    for e in brk.ha:
        if e.verdict == "fail":
            case = _case(reports[e.vantages[0]], e.case)
            assert case["violation"]["code"] == e.case and case["violation"]["rule_id"].startswith("5265-")
    if brk.name == br.IHA_TRUST_ALL:  # the reply the i-HA must not send, caught where the suite listened
        detail = _case(reports["inside"], "HA-UNTRUSTED-DROP")["violation"]["detail"]
        assert "reply code 0" in detail and f"at {AUDIT_UNTRUSTED_ADDRESSES[0]}:" in detail
