"""The MN suite in the netns lab (``mipcheck lab suite-mn``, ``suites/mn/lab.py``): real links, real moves.

The first tests need nothing: the lab profile loads with the reference MN's
parser and names the lab's addresses and keys; the tap's notion of "outside".
The rest need root and network namespaces (skipped otherwise, with the
reason) and share ONE lab: the whole suite against the clean reference MN
(every case passes, but MN-SAME-HA-OUTSIDE: the lab's home agents have
distinct addresses, so it is not applicable), the lab's agents
restarted exactly as they were afterwards, also after a failure, and single
cases against faulty reference MNs that must fail (or warn, SHOULD cases),
among them three whose evidence only the taps on the MN's links can see (the
firewall drops it before the i-HA, RFC 5265 3.1).
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from lab_support import WHY_NOT, make_lab

from mipcheck.cli import cli
from mipcheck.lab import control, netns, vpn
from mipcheck.lab.topology import build_topology
from mipcheck.mn.profile import load_mobile_node_profile
from mipcheck.suites.mn import CASES, CASES_BY_ID
from mipcheck.suites.mn.lab import LabEnv, LabMobileNode, lab_profile_text, run_lab_mn_suite

ROOT = pytest.mark.skipif(WHY_NOT is not None, reason=f"the lab needs root and network namespaces: {WHY_NOT}")

#: what the lab cannot give: its home agents have distinct addresses (3.5 needs one for both)
NOT_APPLICABLE = {"MN-SAME-HA-OUTSIDE": "different addresses"}

#: (case, fault, verdict) against a faulty reference MN in the lab
FAULTY = [
    ("MN-NO-VPN-SKIP", "skip-vpn", "fail"),  # plaintext echo replies from outside: only the tap sees them
    ("MN-STATUS-CHANGE-STOP", "data-through-status-change", "fail"),  # the same, right after the move outside
    ("MN-PER-INTERFACE", "shared-interface-verdict", "fail"),  # plaintext from eth1 (outside): the tap on eth1
    ("MN-REREG-FAIL-RESTART", "plaintext-after-rereg-failure", "fail"),
    ("MN-IHA-RETRANSMIT", "stop-iha-after-xha", "fail"),
    ("MN-TNC-MEANS-INSIDE", "ignore-tnc", "warn"),  # SHOULD
]


# ------------------------------------------------------------------ no root needed


def test_the_lab_profile_loads_and_names_the_labs_places_and_keys(tmp_path):
    lab = control.Lab(build_topology("pf"), tmp_path)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "mn1-inner.key").write_text("00" * 16 + "\n")
    (tmp_path / "secrets" / "mn1-outer.key").write_text("11" * 16 + "\n")
    path = tmp_path / "mn-suite.toml"
    path.write_text(lab_profile_text(lab, "/run/x.sock", "198.51.100.10", ("22" * 16, "33" * 20)))
    p = load_mobile_node_profile(path)
    assert p.home_address == "10.1.0.100" and p.port == 49434 and p.interfaces == ("eth0", "eth1")
    assert p.i_ha.place == ("10.1.0.1", 434) and p.x_ha.place == ("192.0.2.1", 434)
    assert p.x_ha.home_address == "192.0.2.100" and p.vpn.place == ("192.0.2.2", 4500)
    assert p.i_ha.sa.spi == control.INNER_SPI and p.x_ha.sa.spi == control.OUTER_SPI
    assert p.networks["inside"] == "10.1.0.50" and p.networks["outside"] == "198.51.100.10"
    assert p.networks["inside_2"] == "10.1.0.51" and p.networks["outside_2"] == "198.51.100.11"
    assert p.t_monitor == 2.0 and p.detection_period == 1.0
    text = path.read_text()  # the MN-HA keys by file, never their values
    assert 'secret_file = "secrets/mn1-inner.key"' in text and "00" * 16 not in text


def test_the_tap_hands_over_only_what_comes_from_outside_the_internal_network(tmp_path):
    lab = control.Lab(build_topology("pf"), tmp_path)
    (tmp_path / "secrets").mkdir()
    for name in ("mn1-inner.key", "mn1-outer.key"):
        (tmp_path / "secrets" / name).write_text("00" * 16 + "\n")
    path = tmp_path / "mn-suite.toml"
    path.write_text(lab_profile_text(lab, "/run/x.sock", "198.51.100.10", ("22" * 16, "33" * 20)))
    env = LabEnv(load_mobile_node_profile(path), lambda *a: None, {})
    assert env._outside("198.51.100.10") and env._outside("192.168.100.10")
    assert not env._outside("10.1.0.50") and not env._outside("10.8.0.250")


def test_suite_mn_is_a_lab_command():
    got = CliRunner().invoke(cli, ["lab", "suite-mn", "--help"])
    assert got.exit_code == 0 and "--case" in got.output and "--fault" in got.output


# ------------------------------------------------------------------ root: one lab for the module


@pytest.fixture(scope="module")
def mn_lab(tmp_path_factory):
    if WHY_NOT is not None:
        pytest.skip(f"the lab needs root and network namespaces: {WHY_NOT}")
    yield from make_lab(tmp_path_factory, "m")


def _fresh(lab: control.Lab) -> control.Lab:
    """The lab as lab.json has it now (a run through the command restarts the agents: new pids)."""
    return control.load(lab.name, state_dir=lab.state_dir)


def _agents(lab: control.Lab) -> list[tuple[str, str, list[str]]]:
    return [(p.node, p.name, p.argv) for p in lab.processes if p.name in ("i-ha", "x-ha", "charon")]


def _restored(lab: control.Lab, before: list[tuple[str, str, list[str]]], tia: str | None) -> None:
    doc = control.status(control.load(lab.name, state_dir=lab.state_dir))
    assert doc["healthy"], doc["problems"]
    after = control.load(lab.name, state_dir=lab.state_dir)
    got = _agents(after)
    # the same agents, in the same order, with the same command lines (charon's is rebuilt by vpn.start)
    assert [(n, m) for n, m, _ in got] == [(n, m) for n, m, _ in before]
    assert [a for n, m, a in got if m != "charon"] == [a for n, m, a in before if m != "charon"]
    assert not any(p.name == "mn-suite" for p in after.processes)
    ns = after.topology.namespace("mn")
    assert "198.51.100.10/24" in netns.ip("-o", "-4", "address", "show", "dev", "eth0", ns=ns)
    link = netns.ip("-o", "link", "show", "mn-ext", ns=after.topology.switch_namespace)
    assert "master ext" in link and "state UP" in link
    assert "eth1" not in netns.ip("-o", "link", "show", ns=ns)  # the suite's second interface is gone
    assert "102" not in netns.ip("rule", "show", ns=ns)
    if tia is not None:
        assert control.vpn_tunnel_address(after, "audit-vpn") == tia


@pytest.mark.root
@ROOT
def test_the_whole_suite_passes_against_the_reference_mn_in_the_lab(mn_lab, tmp_path):
    before = _agents(mn_lab)
    tia = control.vpn_tunnel_address(mn_lab, "audit-vpn") if vpn.missing() is None else None
    got = CliRunner().invoke(
        cli, ["lab", "suite-mn", "--name", mn_lab.name, "--state-dir", str(mn_lab.state_dir), "--out", str(tmp_path)]
    )
    assert got.exit_code == 0, got.output
    report = json.loads((tmp_path / "report.json").read_text())
    verdicts = {c["id"]: c["verdict"] for c in report["cases"]}
    assert set(verdicts) == {c.id for c in CASES}
    for case in report["cases"]:
        if case["id"] in NOT_APPLICABLE:
            assert case["verdict"] == "not-applicable" and NOT_APPLICABLE[case["id"]] in case["reason"]
        else:
            assert case["verdict"] == "pass", (case["id"], case["reason"])
    assert (tmp_path / "pcaps" / "mn-eth0.pcap").stat().st_size > 24
    assert (tmp_path / "pcaps" / "mn-eth1.pcap").stat().st_size > 24
    assert (tmp_path / "pcaps" / "MN-PARALLEL-DETECT.pcap").exists()
    # from outside, the i-HA's request was seen by the tap on the MN's link, never at the i-HA (3.1)
    outside = [c for c in report["cases"] if c["id"] == "MN-PARALLEL-DETECT"][0]["checks"][1]
    assert "from 198.51.100.10" in outside["observed"] and "3.1 firewall" in outside["observed"]
    _restored(mn_lab, before, tia)


@pytest.mark.root
@ROOT
def test_the_labs_agents_are_restarted_after_a_failure(mn_lab):
    mn_lab = _fresh(mn_lab)
    before = _agents(mn_lab)
    tia = control.vpn_tunnel_address(mn_lab, "audit-vpn") if vpn.missing() is None else None
    with pytest.raises(RuntimeError), LabMobileNode(mn_lab) as node:
        assert node.env is not None
        node.move("eth0", "inside", "10.1.0.50")
        raise RuntimeError("the suite broke")
    assert node.problems == []
    _restored(mn_lab, before, tia)


@pytest.mark.root
@ROOT
@pytest.mark.parametrize(("case_id", "fault", "verdict"), FAULTY, ids=[f for _, f, _ in FAULTY])
def test_a_faulty_reference_mn_fails_in_the_lab(mn_lab, case_id, fault, verdict):
    mn_lab = _fresh(mn_lab)
    result, problems = run_lab_mn_suite(mn_lab, [CASES_BY_ID[case_id]], faults=[fault])
    assert problems == []
    got = result.results[0]
    assert str(got.verdict) == verdict, got.reason


# ------------------------------------------------------------------ through the foreign agents (modes f and fvc)

#: what the played parties cannot see through the agents, or what needs two interfaces / one HA address
THROUGH_AGENTS_NOT_PASS = {
    "MN-SAME-HA-OUTSIDE": ("not-applicable", "different addresses"),
    "MN-PER-INTERFACE": ("not-applicable", "one interface"),
    "MN-STATUS-CHANGE-STOP": ("inconclusive", "delivers nothing for a binding"),
}
FAULTY_THROUGH_AGENTS = [
    ("MN-TNC-REQUIRED", "inside-without-tnc", "fail"),  # inside through the i-FA on a reply without TNC
    ("MN-TMONITOR-GATE", "data-after-tmonitor", "fail"),  # the data gate through an agent (AF_PACKET in, link out)
]


@pytest.mark.root
@ROOT
def test_the_suite_through_the_foreign_agents(mn_lab, tmp_path):
    """Inside on the i-FA's link, outside on the x-FA's: the device registers through the lab's reference FAs."""
    mn_lab = _fresh(mn_lab)
    before = _agents(mn_lab)
    tia = control.vpn_tunnel_address(mn_lab, "audit-vpn") if vpn.missing() is None else None
    got = CliRunner().invoke(
        cli,
        ["lab", "suite-mn", "--via-agents", "--name", mn_lab.name, "--state-dir", str(mn_lab.state_dir)]
        + ["--out", str(tmp_path)],
    )
    assert got.exit_code == 0, got.output
    report = json.loads((tmp_path / "report.json").read_text())
    for case in report["cases"]:
        verdict, why = THROUGH_AGENTS_NOT_PASS.get(case["id"], ("pass", ""))
        assert case["verdict"] == verdict and why in case["reason"], (case["id"], case["reason"])
    # registered through the agents: the care-of addresses the played home agents saw are theirs
    seen = json.dumps([c.get("checks", []) for c in report["cases"]]) + " ".join(c["reason"] for c in report["cases"])
    assert "10.2.0.1" in seen and "203.0.113.1" in seen
    _restored(mn_lab, before, tia)
    mn_ns = mn_lab.topology.namespace("mn")
    assert "mipcheck_mn" not in netns.run(netns.in_ns(mn_ns, ["nft", "list", "tables"]))


@pytest.mark.root
@ROOT
@pytest.mark.parametrize(
    ("case_id", "fault", "verdict"), FAULTY_THROUGH_AGENTS, ids=[f for _, f, _ in FAULTY_THROUGH_AGENTS]
)
def test_a_faulty_reference_mn_fails_through_the_agents(mn_lab, case_id, fault, verdict):
    mn_lab = _fresh(mn_lab)
    result, problems = run_lab_mn_suite(mn_lab, [CASES_BY_ID[case_id]], faults=[fault], via_agents=True)
    assert problems == []
    got = result.results[0]
    assert str(got.verdict) == verdict, got.reason
