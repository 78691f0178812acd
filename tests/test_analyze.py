"""``mipcheck analyze``: the six passive RFC 5265 checks, against the golden captures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mipcheck.capture.analysis import CHECKS, Analyzer, protection
from mipcheck.capture.dissector import Dissector, records
from mipcheck.capture.keys import load_keys_file
from mipcheck.capture.profile import load_profile, parse_profile
from mipcheck.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
PCAPS = ROOT / "pcaps"
SITE = str(ROOT / "examples" / "site.toml")
KEYS = str(PCAPS / "keys.toml")


def analyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mipcheck.cli", "analyze", *args], capture_output=True, text=True)


def findings(name: str, profile=None) -> dict[str, list[int]]:
    analyzer = Analyzer(profile or load_profile(SITE))
    for record in records(str(PCAPS / name), Dissector(load_keys_file(KEYS))):
        analyzer.feed(record)
    return {f.id: f.frames for f in analyzer.findings()}


def test_each_check_fires_on_its_example():
    assert findings("analyze-findings.pcap") == {
        "PASSIVE-PLAINTEXT-RRQ-EXTERNAL": [1],
        "PASSIVE-IHA-UNTRUSTED-SOURCE": [2],
        "PASSIVE-TNC-TO-UNTRUSTED": [2],
        "PASSIVE-TNC-AFTER-AUTH": [2],
        "PASSIVE-PLAINTEXT-AFTER-TMONITOR": [6, 7],
        "PASSIVE-SAME-HA-ADDRESS": [1, 8],
    }


@pytest.mark.parametrize(
    "name",
    [
        "access-mode-c.pcap",
        "access-mode-f.pcap",
        "access-mode-cvc.pcap",
        "access-mode-fvc.pcapng",
        "nat-traversal.pcap",
        "rfc5265-appendix-a.pcapng",
    ],
)
def test_conforming_captures_have_no_findings(name):
    assert findings(name) == {}


def test_t_monitor_comes_from_the_profile():
    doc = {
        "home_agents": {"internal": ["10.20.0.1"], "external": ["198.51.100.1"]},
        "networks": {"trusted": ["10.0.0.0/8"], "internal": ["10.0.0.0/8"]},
        "timers": {"t_monitor": 90.5},
    }
    got = findings("analyze-findings.pcap", parse_profile(doc))
    assert got["PASSIVE-PLAINTEXT-AFTER-TMONITOR"] == [
        7
    ]  # 91 s after the registration; frame 6 (90 s) is within 90.5 s


def test_same_address_for_both_home_agents_in_the_profile_is_a_finding():
    doc = {
        "home_agents": {"internal": ["10.20.0.1"], "external": ["10.20.0.1"]},
        "networks": {"trusted": ["10.0.0.0/8"], "internal": ["10.0.0.0/8"]},
    }
    got = findings("access-mode-c.pcap", parse_profile(doc))
    assert got == {"PASSIVE-SAME-HA-ADDRESS": []}


def test_levels_and_texts_come_from_the_catalogue():
    from mipcheck.catalogue import by_case

    result = analyze(str(PCAPS / "analyze-findings.pcap"), "--profile", SITE, "--json")
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    assert doc["packets"] == 8 and doc["summary"]["MUST"] == 6
    for f in doc["findings"]:
        assert f["id"] in CHECKS and f["explanation"] and f["frames"] is not None
        assert [r["id"] for r in f["requirements"]] == [r.id for r in by_case(f["id"])]
        assert all(r["text"] for r in f["requirements"])
        assert f["level"] == "MUST"


def test_exit_codes_and_table():
    clean = analyze(str(PCAPS / "access-mode-cvc.pcap"), "--profile", SITE, "--keys", KEYS)
    assert clean.returncode == 0 and "no findings" in clean.stdout
    dirty = analyze(str(PCAPS / "analyze-findings.pcap"), "--profile", SITE)
    assert dirty.returncode == 1 and "TNC-TO-UNTRUSTED" in dirty.stdout and "5265-4.3-DROP-UNTRUSTED" in dirty.stdout


def test_bad_input_exits_2_with_one_line(tmp_path):
    profile = tmp_path / "site.toml"
    profile.write_text('[home_agents]\ninternal = ["10.20.0.300"]\n[networks]\ntrusted = []\ninternal = []\n')
    bad_profile = analyze(str(PCAPS / "access-mode-c.pcap"), "--profile", str(profile))
    assert (
        bad_profile.returncode == 2
        and "home_agents.internal" in bad_profile.stderr
        and bad_profile.stderr.count("\n") == 1
    )
    missing = analyze(str(tmp_path / "none.pcap"), "--profile", SITE)
    assert missing.returncode == 2 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr
    with pytest.raises(ConfigError, match="timers.t_monitor"):
        parse_profile(
            {"home_agents": {"internal": []}, "networks": {"trusted": [], "internal": []}, "timers": {"t_monitor": -1}}
        )


def test_protection_marks_headers_inside_esp():
    record = {"layers": ["Ethernet", "IP", "IP", "ESP", "IP", "UDP", "RRQ"], "ip": [{}, {}, {}]}
    assert protection(record) == ([False, False, True], 2)


def test_each_check_names_a_catalogue_rule_it_tests_and_the_party_of_its_role():
    from mipcheck.capture.analysis import RULES
    from mipcheck.catalogue import load_catalogue
    from mipcheck.outcomes import Party

    catalogue = {req.id: req for req in load_catalogue()}
    assert set(RULES) == set(CHECKS)
    for check_id, (rule_id, party) in RULES.items():
        assert rule_id in catalogue, f"{check_id}: {rule_id} is not a catalogue id"
        assert check_id in catalogue[rule_id].cases, f"{rule_id} does not list {check_id}"
        assert party is catalogue[rule_id].party or party is Party.HOME_AGENT, check_id


def test_each_finding_carries_its_violation():
    from mipcheck.capture.analysis import RULES
    from mipcheck.outcomes import Party

    analyzer = Analyzer(load_profile(SITE))
    for record in records(str(PCAPS / "analyze-findings.pcap"), Dissector(load_keys_file(KEYS))):
        analyzer.feed(record)
    for f in analyzer.findings():
        assert f.violation is not None and f.violation.code == f.id
        assert (f.violation.rule_id, f.violation.party) == RULES[f.id]
        assert f.violation.detail == f.explanation
        assert json.loads(json.dumps(f.as_dict()))["violation"]["rule_id"] == RULES[f.id][0]
    parties = {f.id: f.violation.party for f in analyzer.findings()}
    assert parties["PASSIVE-PLAINTEXT-AFTER-TMONITOR"] is Party.MOBILE_NODE
    assert parties["PASSIVE-PLAINTEXT-RRQ-EXTERNAL"] is Party.FIREWALL
