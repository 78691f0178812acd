"""JUnit XML (``--junit``) for CI servers.

JUnit knows only passed, failure, error and skipped, so: fail -> failure,
error -> error, not-applicable and inconclusive -> skipped (the message says
which), warn -> passed with the warning in system-out (a SHOULD not met must
not break a build, but stays visible).
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path

from .report_json import relocate
from .runner import RunResult
from .verdicts import Verdict


def to_element(run: RunResult, report_dir: Path | None = None) -> ET.Element:
    s = run.summary
    name = f"mipcheck.{run.suite}"
    root = ET.Element("testsuites", name="mipcheck", tests=str(len(run.results)), time=f"{run.duration:.3f}")
    suite = ET.SubElement(
        root,
        "testsuite",
        name=name,
        tests=str(len(run.results)),
        failures=str(s["fail"]),
        errors=str(s["error"]),
        skipped=str(s["not-applicable"] + s["inconclusive"]),
        time=f"{run.duration:.3f}",
        timestamp=dt.datetime.fromtimestamp(run.started, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("tool.version", run.tool["version"]),
        ("target", f"{run.target['address']}:{run.target['port']}"),
        ("target.role", str(run.target["role"])),
        ("target.builtin", str(run.target["builtin"]).lower()),
    ):
        ET.SubElement(props, "property", name=key, value=value)
    for r in run.results:
        tc = ET.SubElement(suite, "testcase", classname=name, name=r.id, time=f"{r.duration:.3f}")
        message = f"[{r.level}] {r.requirement}: {r.reason}"
        if r.verdict is Verdict.FAIL:
            ET.SubElement(tc, "failure", message=message, type="fail").text = _detail(r)
        elif r.verdict is Verdict.ERROR:
            ET.SubElement(tc, "error", message=message, type="tester-error").text = r.reason
        elif r.verdict in (Verdict.NOT_APPLICABLE, Verdict.INCONCLUSIVE):
            ET.SubElement(tc, "skipped", message=f"{r.verdict}: {r.reason}")
        lines = [f"verdict: {r.verdict}", f"reason: {r.reason}"]
        if "pcap" in r.evidence:
            lines.append(f"pcap: {relocate(run, str(r.evidence['pcap']), report_dir)}")
        if r.evidence.get("judged"):
            lines.append("frames judged: " + ", ".join(map(str, r.evidence["judged"])))
        ET.SubElement(tc, "system-out").text = "\n".join(lines)
    return root


def _detail(r) -> str:
    if r.failure is None:
        return r.reason
    f = r.failure
    frames = f" (frames {', '.join(map(str, f.frames))})" if f.frames else ""
    return f"{f.what}\nexpected: {f.expected}\nobserved: {f.observed}{frames}"


def write_junit(run: RunResult, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = ET.ElementTree(to_element(run, path.parent))
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path
