"""Outcomes as values: Violation, Party, HomeAgentOutcome, and where reports carry them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from test_report_formats import make_run

from mipcheck.catalogue import ROLE_PARTIES, ROLES, load_catalogue
from mipcheck.engine.report_json import write_json
from mipcheck.engine.verdicts import CaseResult, Check, Verdict, blame
from mipcheck.ha import HAConfig, HomeAgent
from mipcheck.outcomes import HomeAgentOutcome, Party, Violation

CATALOGUE_IDS = {req.id for req in load_catalogue()}
REQS = [
    {"id": "5944-3.8.2.1-ID-MISMATCH-133", "level": "MUST"},
    {"id": "5944-3.8.2.1-REJECT-REPLY-133", "level": "SHOULD"},
]


def result(verdict: Verdict, failure: Check | None = None, level: str = "MUST", reqs=REQS) -> CaseResult:
    return CaseResult("MIP-ID-STALE", "stale", level, "RFC 5944 3.8.2.1", list(reqs), verdict, "why", failure=failure)


def test_violation_is_a_frozen_value():
    v = Violation("5265-4.3-DROP-UNTRUSTED", Party.HOME_AGENT, "PASSIVE-TNC-TO-UNTRUSTED", "seen")
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.party = Party.TESTER  # type: ignore[misc]
    assert v == Violation("5265-4.3-DROP-UNTRUSTED", Party.HOME_AGENT, "PASSIVE-TNC-TO-UNTRUSTED", "seen")
    assert json.loads(json.dumps(v.as_dict()))["party"] == "home-agent"


def test_parties_name_the_dut_the_tester_and_every_catalogue_role():
    assert {Party.DEVICE, Party.TESTER} <= set(Party)
    assert set(ROLE_PARTIES) == ROLES
    assert {Party.HOME_AGENT, Party.MOBILE_NODE, Party.FOREIGN_AGENT, Party.VPN_GATEWAY} <= set(ROLE_PARTIES.values())
    assert all(req.party in Party for req in load_catalogue())


def test_home_agent_outcomes_are_what_the_home_agent_decides():
    assert [str(o) for o in HomeAgentOutcome] == ["accepted", "denied", "dropped", "ignored"]
    decision = HomeAgent(HAConfig()).handle(b"", ("127.0.0.2", 49152), ("127.0.0.1", 434), 0.0)
    assert decision.outcome == HomeAgentOutcome.DROPPED


def test_a_failed_must_blames_the_device_with_the_case_rule_at_that_level():
    bad = Check("rejected", "a 133", "accepted", False, (1, 2))
    v = result(Verdict.FAIL, bad).violation
    assert v == Violation("5944-3.8.2.1-ID-MISMATCH-133", Party.DEVICE, "MIP-ID-STALE", "why")
    warn = Check("reply code", "133", "silence", False, (1,), "SHOULD")
    assert result(Verdict.WARN, warn).violation.rule_id == "5944-3.8.2.1-REJECT-REPLY-133"


def test_a_check_may_name_its_own_rule_and_party():
    bad = Check("identification", "copied", "not copied", False, (1, 2), rule_id="5944-5.7-REPLY-IDENTIFICATION")
    assert result(Verdict.FAIL, bad).violation.rule_id == "5944-5.7-REPLY-IDENTIFICATION"
    vpn = Check("port 434", "passed", "blocked", False, (1,), party=Party.VPN_GATEWAY)
    assert result(Verdict.FAIL, vpn).violation.party is Party.VPN_GATEWAY


def test_tester_errors_blame_the_tester_and_no_rule():
    assert result(Verdict.ERROR).violation == Violation(None, Party.TESTER, "MIP-ID-STALE", "why")


@pytest.mark.parametrize("verdict", [Verdict.PASS, Verdict.INCONCLUSIVE, Verdict.NOT_APPLICABLE])
def test_other_verdicts_blame_nobody(verdict: Verdict):
    assert blame(result(verdict)) is None


def test_a_case_outside_the_catalogue_still_names_the_party():
    assert result(Verdict.FAIL, reqs=[]).violation == Violation(None, Party.DEVICE, "MIP-ID-STALE", "why")


def test_json_report_carries_the_violation_next_to_the_old_fields(tmp_path: Path):
    doc = json.loads(write_json(make_run(tmp_path / "out"), tmp_path / "r.json").read_text())
    cases = {c["id"]: c for c in doc["cases"]}
    fail = cases["CASE-FAIL"]
    assert fail["violation"]["rule_id"] == "5265-4.3-DROP-UNTRUSTED" and fail["violation"]["party"] == "device"
    assert fail["violation"]["code"] == "CASE-FAIL" and fail["reason"] == fail["violation"]["detail"]
    assert fail["failure"]["party"] == "device" and fail["failure"]["rule_id"] is None
    assert cases["CASE-ERR"]["violation"]["party"] == "tester"
    assert cases["CASE-PASS"]["violation"] is None
    assert all(
        c["violation"]["rule_id"] in CATALOGUE_IDS for c in doc["cases"] if c["violation"] and c["violation"]["rule_id"]
    )
