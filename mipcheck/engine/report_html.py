"""The self-contained HTML report (``--html``): one file, inline style, no script, no network.

Shows the tool version, the target, the profile without secrets, totals, and
a row per case with its requirement text, verdict, reason and a link to its
pcap. Every value is escaped: device replies and profile strings are data.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path
from string import Template

from .report_json import relocate
from .runner import RunResult
from .verdicts import VERDICT_ORDER, CaseResult, exit_code

_PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mipcheck $suite report: $target</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.verdict { font-weight: bold; white-space: nowrap; }
tr.pass td.verdict { color: #176f2c; }
tr.fail td.verdict { color: #b00020; }
tr.warn td.verdict { color: #a35c00; }
tr.error td.verdict { color: #6a1b9a; }
tr.inconclusive td.verdict, tr.not-applicable td.verdict { color: #555; }
.req { color: #444; font-size: .9em; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; }
code { font-size: .95em; }
</style>
</head>
<body>
<h1>mipcheck $suite suite: $target</h1>
<table id="run">
<tr><th>Tool</th><td id="tool">mipcheck $version</td></tr>
<tr><th>Target</th><td id="target">$target ($role$builtin)</td></tr>
<tr><th>Started</th><td>$started</td></tr>
<tr><th>Duration</th><td>$duration s</td></tr>
<tr><th>Exit code</th><td id="exit-code">$exit</td></tr>
</table>
<h2>Totals</h2>
<table id="totals">
<tr>$total_heads</tr>
<tr>$total_cells</tr>
</table>
<h2>Cases</h2>
<table id="cases">
<tr><th>Case</th><th>Level</th><th>Requirement</th><th>Verdict</th><th>Reason</th><th>Evidence</th></tr>
$rows
</table>
<h2>Profile (secrets hidden)</h2>
<pre id="profile">$profile</pre>
</body>
</html>
""")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _row(run: RunResult, r: CaseResult, report_dir: Path | None) -> str:
    reqs = "".join(
        f'<div class="req"><b>RFC {_e(q["rfc"])} {_e(q["section"])} {_e(q["keyword"])}</b>: {_e(q["text"])}</div>'
        for q in r.requirements
    )
    if r.failure is not None:  # the check that decided the verdict, as expected versus observed
        f = r.failure
        reason = (
            f'{_e(f.what)}<div class="expected">expected: {_e(f.expected)}</div>'
            f'<div class="observed">observed: {_e(f.observed)}</div>'
        )
    else:
        reason = _e(r.reason)
    ev = []
    if "pcap" in r.evidence:
        href = relocate(run, str(r.evidence["pcap"]), report_dir)
        ev.append(f'<a class="pcap" href="{_e(href)}">{_e(Path(href).name)}</a>')
    judged = r.evidence.get("judged") or []
    if judged:
        ev.append("frames " + _e(", ".join(map(str, judged))))
    for name, rel in (r.evidence.get("files") or {}).items():
        ev.append(f'<a href="{_e(relocate(run, rel, report_dir))}">{_e(name)}</a>')
    return (
        f'<tr id="case-{_e(r.id)}" class="{_e(r.verdict)}" data-verdict="{_e(r.verdict)}">'
        f"<td><code>{_e(r.id)}</code><div>{_e(r.title)}</div></td><td>{_e(r.level)}</td>"
        f'<td>{_e(r.requirement)}{reqs}</td><td class="verdict">{_e(r.verdict)}</td>'
        f"<td>{reason}</td><td>{'<br>'.join(ev)}</td></tr>"
    )


def render_html(run: RunResult, report_dir: Path | None = None) -> str:
    s = run.summary
    target = f"{run.target['address']}:{run.target['port']}"
    return _PAGE.substitute(
        suite=_e(run.suite),
        target=_e(target),
        role=_e(run.target["role"]),
        builtin=(", built-in reference mobile node" if run.target["role"] == "mn" else ", built-in home agent")
        if run.target.get("builtin")
        else "",
        version=_e(run.tool["version"]),
        started=_e(dt.datetime.fromtimestamp(run.started, dt.UTC).isoformat(timespec="seconds")),
        duration=f"{run.duration:.2f}",
        exit=exit_code(run.results),
        total_heads="".join(f"<th>{_e(v)}</th>" for v in VERDICT_ORDER),
        total_cells="".join(f'<td id="total-{_e(v)}">{s[str(v)]}</td>' for v in VERDICT_ORDER),
        rows="\n".join(_row(run, r, report_dir) for r in run.results),
        profile=_e(json.dumps(run.profile, indent=2)),
    )


def write_html(run: RunResult, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(run, path.parent), encoding="utf-8")
    return path
