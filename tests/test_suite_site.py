"""The site audit against the namespace lab: every case passes on the lab as built, and fails under its break.

Needs root and network namespaces (skipped otherwise, with the reason). ONE
unbroken lab serves every test that needs it; each break
(``mipcheck lab up --break NAME``, :mod:`mipcheck.lab.breaks`) gets a lab of
its own, brought up for its test only. Every lab is taken down by its fixture
and checked to leave nothing behind, also when a test fails.

Under a break the whole suite runs and the verdicts are held exactly: the
break's case fails (warns for a SHOULD case; a MAY case's conformant
variant passes with the other observation), the side effects the break
declares happen, and every other case still passes. A break built for an
HA-suite case (``iha-trust-all``: tests/test_lab_ha_audit.py) is held to its
site verdicts too: what the site audit cannot see, every site case passes.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from lab_support import WHY_NOT, lab_up, make_lab
from rich.console import Console

from mipcheck.lab import control, netns, vpn
from mipcheck.lab.breaks import TABLE, Break
from mipcheck.suites.site import CASES, CASES_BY_ID
from mipcheck.suites.site.cli import run_site

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        WHY_NOT is not None, reason=f"the site audit's lab needs root and network namespaces: {WHY_NOT}"
    ),
]
VPN_MISSING = vpn.missing() if WHY_NOT is None else None  # without root the module-level skip says why
FAILED = {"MUST": "fail", "SHOULD": "warn", "MAY": "pass"}


def _audit(lab: control.Lab, out: Path, *patterns: str) -> tuple[int, dict]:
    """``mipcheck run --suite site --profile <the lab's site-audit.toml>``, as the CLI will call it."""
    assert lab.site_profile is not None
    rc = run_site(
        lab.site_profile,
        out_dir=out,
        case_patterns=patterns,
        quiet=True,
        stdout=Console(file=io.StringIO(), width=200),
    )
    return rc, json.loads((out / "report.json").read_text())


def _verdicts(report: dict) -> dict[str, str]:
    return {c["id"]: c["verdict"] for c in report["cases"]}


def _case(report: dict, case_id: str) -> dict:
    return next(c for c in report["cases"] if c["id"] == case_id)


@pytest.fixture(scope="module")
def site_lab(tmp_path_factory):
    yield from make_lab(tmp_path_factory, "s")


@pytest.fixture(scope="module")
def unbroken(site_lab, tmp_path_factory):
    out = tmp_path_factory.mktemp("site-unbroken")
    rc, report = _audit(site_lab, out)
    return rc, report, out


# ------------------------------------------------------------------ the lab as built


@pytest.mark.skipif(VPN_MISSING is not None, reason=f"strongSwan: {VPN_MISSING}")
def test_every_case_passes_on_the_lab_as_built(unbroken):
    rc, report, out = unbroken
    assert _verdicts(report) == {c.id: "pass" for c in CASES}, [
        (c["id"], c["reason"]) for c in report["cases"] if c["verdict"] != "pass"
    ]
    assert rc == 0 and report["exit_code"] == 0 and report["suite"] == "site"
    for name in ("report.json", "junit.xml", "report.html"):
        assert (out / name).is_file()
    # the MAY case passes either way; on this lab the x-HA is reachable from inside, and it says so
    assert _case(report, "SITE-XHA-INSIDE-DROP")["reason"].startswith("optional behaviour absent")
    # the controls ran: silence was only judged where the same probe from inside was answered
    fw = _case(report, "SITE-FW-IHA-UNREACHABLE")
    whats = [c["what"] for c in fw["checks"]]
    assert whats[0].startswith("control: a valid registration") and whats[1].startswith("control: IP-in-IP")
    assert sum("from outside gets no reply" in w for w in whats) == 2  # the external network and the DMZ
    assert all(c["ok"] for c in fw["checks"])


@pytest.mark.skipif(VPN_MISSING is not None, reason=f"strongSwan: {VPN_MISSING}")
def test_evidence_pcaps_hold_what_was_judged(unbroken):
    from scapy.layers.inet import IP, UDP
    from scapy.utils import rdpcap

    _rc, report, out = unbroken
    ports = _case(report, "SITE-VPN-UDP434-ANY-PORT")
    pcap = rdpcap(str(out / ports["evidence"]["pcap"]))
    sent_from = {p[UDP].sport for p in pcap if p[IP].dst == "10.1.0.1" and p[UDP].dport == 434}
    assert {434, 700, 1023, 10434, 49152, 65000} <= sent_from
    outer = _case(report, "SITE-VPN-ENCRYPT-ALL")["evidence"]["files"]["outer (raw IPv4)"]
    packets = rdpcap(str(out / outer))
    assert packets and all(p.haslayer(UDP) and p[UDP].dport == 4500 for p in packets)  # ESP in UDP, nothing else


@pytest.mark.skipif(VPN_MISSING is not None, reason=f"strongSwan: {VPN_MISSING}")
def test_a_local_vantage_point_probes_from_where_mipcheck_runs(site_lab, tmp_path):
    # a real site: mipcheck runs on a host outside; here that host is the lab's audit-out namespace
    text = site_lab.site_profile.read_text()
    head = text.split("[[vantage]]")[0]
    profile = tmp_path / "local.toml"
    profile.write_text(head.replace('secret_file = "secrets/', f'secret_file = "{site_lab.state_dir}/secrets/'))
    profile.write_text(profile.read_text() + '\n[[vantage]]\nname = "here"\nrole = "outside"\nlocal = true\n')
    code = (
        "import sys; from mipcheck.suites.site.cli import run_site; "
        f"sys.exit(run_site({str(profile)!r}, out_dir={str(tmp_path / 'out')!r}, case_patterns=['SITE-VPN-NATT'], "
        "quiet=True))"
    )
    argv = netns.in_ns(site_lab.topology.namespace("audit-out"), [sys.executable, "-c", code])
    proc = subprocess.run(argv, capture_output=True, text=True, env=control._child_env(), timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (case,) = json.loads((tmp_path / "out" / "report.json").read_text())["cases"]
    assert case["verdict"] == "pass" and case["evidence"]["datagrams"][0].startswith("frame 1: 198.51.100.20:")


# ------------------------------------------------------------------ one broken lab per break


def _expected(b: Break) -> dict[str, str]:
    want = {c.id: "pass" for c in CASES}
    if b.suite == "site":
        want[b.case] = FAILED[CASES_BY_ID[b.case].level]
    for effect in b.also:
        want[effect.case] = effect.verdict
    return want


@pytest.mark.parametrize("brk", TABLE, ids=lambda b: b.name)
def test_each_break_fails_its_case_and_nothing_else(brk: Break, unbroken, tmp_path_factory, tmp_path):
    if VPN_MISSING is not None:
        pytest.skip(f"strongSwan: {VPN_MISSING} (the suite's VPN cases cannot pass on the unbroken lab)")
    _rc, before, _out = unbroken
    if brk.suite == "site":
        assert _case(before, brk.case)["verdict"] == "pass"  # the case passes on the lab as built
    with lab_up(tmp_path_factory, "b", breaks=(brk.name,)) as lab:
        assert lab.breaks == (brk.name,)
        assert (lab.vpn_host_not_started is None) == brk.vpn_host, lab.vpn_host_not_started
        rc, report = _audit(lab, tmp_path / "out")
        got = _verdicts(report)
        assert got == _expected(brk), [(c["id"], c["verdict"], c["reason"]) for c in report["cases"]]
        if brk.suite != "site":
            pass  # an HA-suite break: the site verdicts above are all there is to hold here
        elif brk.conformant:  # the MAY case reports the other observation
            case = _case(report, brk.case)
            assert case["reason"] != _case(before, brk.case)["reason"]
            assert not case["reason"].startswith("optional behaviour absent")
        else:
            case = _case(report, brk.case)
            assert case["violation"]["code"] == brk.case and case["violation"]["rule_id"].startswith("5265-")
        assert rc == (1 if "fail" in got.values() else 0)
