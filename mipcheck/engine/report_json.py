"""The machine-readable report (``--report-json``): one JSON object per run."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from .runner import RunResult
from .verdicts import exit_code


def relocate(run: RunResult, path_in_evidence: str, report_dir: Path | None) -> str:
    """An evidence path (relative to the evidence folder) as seen from where a report lives."""
    if run.evidence_dir is None or report_dir is None:
        return path_in_evidence
    full = Path(run.evidence_dir) / path_in_evidence
    return Path(os.path.relpath(full.resolve(), report_dir.resolve())).as_posix()


def _evidence(run: RunResult, evidence: dict[str, Any], report_dir: Path | None) -> dict[str, Any]:
    out = dict(evidence)
    if "pcap" in out:
        out["pcap"] = relocate(run, str(out["pcap"]), report_dir)
    if "files" in out:
        out["files"] = {k: relocate(run, v, report_dir) for k, v in out["files"].items()}
    return out


def to_dict(run: RunResult, report_dir: Path | None = None) -> dict[str, Any]:
    cases = []
    for r in run.results:
        d = r.as_dict()
        d["evidence"] = _evidence(run, r.evidence, report_dir)
        cases.append(d)
    return {
        "tool": run.tool,
        "suite": run.suite,
        "target": run.target,
        "profile": run.profile,
        "started": dt.datetime.fromtimestamp(run.started, dt.UTC).isoformat(timespec="seconds"),
        "duration": round(run.duration, 3),
        "preflight": run.preflight.as_dict() if run.preflight else None,
        "summary": run.summary,
        "exit_code": exit_code(run.results),
        "cases": cases,
    }


def write_json(run: RunResult, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_dict(run, path.parent), indent=2) + "\n", encoding="utf-8")
    return path
