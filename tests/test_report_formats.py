"""JSON and JUnit reports: their shape, the verdict mapping, and paths relative to where they are written.

``make_run`` (a hand-made run with every verdict once) is shared with test_report_html.py.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from mipcheck.engine.evidence import Capture, write_pcap
from mipcheck.engine.report_json import write_json
from mipcheck.engine.report_junit import write_junit
from mipcheck.engine.runner import RunResult
from mipcheck.engine.verdicts import CaseResult, Check, Verdict

NASTY = '<script>alert("x")</script> & [bold]'


def make_run(evidence_dir: Path) -> RunResult:
    cap = Capture()
    cap.record(("127.0.0.2", 40000), ("127.0.0.1", 434), b"\x01" + bytes(23), "sent")
    cap.record(("127.0.0.1", 434), ("127.0.0.2", 40000), b"\x03" + bytes(19), "received")
    write_pcap(evidence_dir / "pcaps" / "CASE-FAIL.pcap", cap.frames)
    req = [
        {
            "id": "5265-4.3-DROP-UNTRUSTED",
            "rfc": 5265,
            "section": "4.3",
            "keyword": "MUST",
            "level": "MUST",
            "text": "MUST reject (drop silently) ...",
        }
    ]
    bad = Check("reply to untrusted source", "no reply at all", f"frame 2: reply code 0 {NASTY}", False, (1, 2))
    results = [
        CaseResult(
            "CASE-PASS",
            "passes",
            "MUST",
            "RFC 5265 4.3",
            req,
            Verdict.PASS,
            "all met",
            checks=[Check("a", "b", "b", True, (1,))],
            evidence={"frames": 1, "judged": [1]},
        ),
        CaseResult(
            "CASE-FAIL",
            "fails",
            "MUST",
            "RFC 5265 4.3",
            req,
            Verdict.FAIL,
            f"reply to untrusted source: expected no reply at all, observed {NASTY}",
            failure=bad,
            checks=[bad],
            evidence={"pcap": "pcaps/CASE-FAIL.pcap", "frames": 2, "judged": [1, 2]},
        ),
        CaseResult(
            "CASE-WARN", "warns", "SHOULD", "RFC 5265 4.3", [], Verdict.WARN, "log: expected a line, observed none"
        ),
        CaseResult("CASE-INC", "inconclusive", "MUST", "RFC 5944 1.9", [], Verdict.INCONCLUSIVE, "could not see"),
        CaseResult(
            "CASE-NA", "not applicable", "MUST", "RFC 5265 4.3", [], Verdict.NOT_APPLICABLE, "profile says x-ha"
        ),
        CaseResult(
            "CASE-ERR",
            "tester error",
            "MUST",
            "RFC 5265 4.3",
            [],
            Verdict.ERROR,
            "cannot bind tester source 127.0.0.66:0",
        ),
    ]
    return RunResult(
        suite="ha",
        target={"address": "127.0.0.1", "port": 434, "role": "i-ha", "builtin": False},
        profile={"dut": {"address": "127.0.0.1"}, "mn": [{"secret": "<hidden: inline>"}], "note": NASTY},
        results=results,
        started=1_700_000_000.0,
        duration=1.25,
        evidence_dir=str(evidence_dir),
    )


def test_json_report_shape(tmp_path: Path) -> None:
    run = make_run(tmp_path / "out")
    path = write_json(run, tmp_path / "reports" / "r.json")
    doc = json.loads(path.read_text())
    assert {"suite", "target", "summary", "cases", "tool", "profile"} <= set(doc)
    assert doc["suite"] == "ha" and doc["target"]["address"] == "127.0.0.1"
    assert doc["summary"] == {"error": 1, "fail": 1, "warn": 1, "inconclusive": 1, "not-applicable": 1, "pass": 1}
    assert doc["exit_code"] == 2
    for case in doc["cases"]:
        assert {"id", "requirement", "level", "verdict", "reason", "evidence"} <= set(case)
        assert case["level"] in ("MUST", "SHOULD", "MAY")
        assert case["verdict"] in ("pass", "fail", "warn", "inconclusive", "not-applicable", "error")
    fail = next(c for c in doc["cases"] if c["id"] == "CASE-FAIL")
    assert fail["expected"] == "no reply at all" and fail["failure"]["frames"] == [1, 2]
    pcap = path.parent / fail["evidence"]["pcap"]  # relative to the report, wherever it is written
    assert pcap.resolve() == (tmp_path / "out" / "pcaps" / "CASE-FAIL.pcap").resolve() and pcap.exists()


def test_junit_maps_verdicts(tmp_path: Path) -> None:
    run = make_run(tmp_path / "out")
    path = write_junit(run, tmp_path / "junit.xml")
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (
        suite.get("tests") == "6"
        and suite.get("failures") == "1"
        and suite.get("errors") == "1"
        and suite.get("skipped") == "2"
    )
    cases = {tc.get("name"): tc for tc in suite.iter("testcase")}
    assert cases["CASE-FAIL"].find("failure") is not None
    assert "expected: no reply at all" in cases["CASE-FAIL"].find("failure").text
    assert cases["CASE-ERR"].find("error") is not None
    assert cases["CASE-NA"].find("skipped").get("message").startswith("not-applicable")
    assert cases["CASE-INC"].find("skipped").get("message").startswith("inconclusive")
    for name in ("CASE-PASS", "CASE-WARN"):  # a SHOULD not met does not break a build
        assert [c.tag for c in cases[name]] == ["system-out"]
    assert "verdict: warn" in cases["CASE-WARN"].find("system-out").text
    assert "pcap: out/pcaps/CASE-FAIL.pcap" in cases["CASE-FAIL"].find("system-out").text
