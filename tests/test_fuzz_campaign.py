"""``mipcheck fuzz``: reproducible cases, resume after SIGKILL, findings on a crashing target, show, merge."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mipcheck.cli import main
from mipcheck.fuzz.case import Draft, render
from mipcheck.fuzz.context import context_from_profile
from mipcheck.fuzz.lab import profile_for
from mipcheck.fuzz.store import pending, positions
from mipcheck.fuzz.strategies import STRATEGIES, generate

REPO = Path(__file__).resolve().parents[1]
CTX = context_from_profile(profile_for("127.0.0.1", 434))


def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        rc = main(args)
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def _indexes(out: Path) -> list[int]:
    with sqlite3.connect(out / "campaign.sqlite") as db:
        return [i for (i,) in db.execute("SELECT idx FROM cases ORDER BY idx")]


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ reproducibility


def test_same_seed_and_index_give_the_same_octets_in_another_process() -> None:
    here = [generate(11, i, CTX).payload.hex() for i in range(300)]
    code = textwrap.dedent("""
        import json
        from mipcheck.fuzz.context import context_from_profile
        from mipcheck.fuzz.lab import profile_for
        from mipcheck.fuzz.strategies import generate
        ctx = context_from_profile(profile_for("127.0.0.1", 9999))
        print(json.dumps([generate(11, i, ctx).payload.hex() for i in range(300)]))
    """)
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # a different str hash salt must not matter
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    there = json.loads(there)
    assert here == there
    assert len(set(here)) > 250  # and the cases differ from each other
    assert {generate(11, i, CTX).strategy.split("/")[0] for i in range(300)} == set(STRATEGIES)


def test_index_plan_splits_without_overlap_or_gap() -> None:
    gaps, first = pending([0, 1, 2, 5, 6], 10)
    assert (gaps, first) == ([3, 4], 7)
    workers = [list(positions(gaps, first, 10, w, 3)) for w in range(3)]
    flat = sorted(j for w in workers for j in w)
    assert flat == [3, 4, 7, 8, 9]


def test_render_skips_operations_out_of_range_so_any_subset_renders() -> None:
    d = Draft(b"\x01" * 24, (b"\x83\x01x",), (("ext_len", 5, 0), ("ext_drop", 9), ("u16", 30, 1), ("cut", 26)))
    assert render(d) == b"\x01" * 24 + b"\x83\x01"


def test_jobs_and_shards_cover_the_index_space_exactly(tmp_path: Path, capsys) -> None:
    rc, _, err = _cli(
        ["fuzz", "run", "-q", "--seed", "5", "--max-cases", "400", "--jobs", "2", "--out", str(tmp_path / "j")], capsys
    )
    assert rc == 0, err
    assert _indexes(tmp_path / "j") == list(range(400))
    for k in (1, 2):
        rc, _, err = _cli(
            [
                "fuzz",
                "run",
                "-q",
                "--seed",
                "5",
                "--max-cases",
                "150",
                "--shard",
                f"{k}/2",
                "--out",
                str(tmp_path / f"s{k}"),
            ],
            capsys,
        )
        assert rc == 0, err
    rc, out, err = _cli(
        ["fuzz", "merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(tmp_path / "m")], capsys
    )
    assert rc == 0, err
    assert _indexes(tmp_path / "m") == list(range(300))
    with (
        sqlite3.connect(tmp_path / "j" / "campaign.sqlite") as a,
        sqlite3.connect(tmp_path / "m" / "campaign.sqlite") as b,
    ):
        q = "SELECT idx, strategy, kind, signed FROM cases WHERE idx < 300 ORDER BY idx"
        assert a.execute(q).fetchall() == b.execute(q).fetchall()  # the same cases whatever the split
    summary = json.loads((tmp_path / "j" / "summary.json").read_text())
    assert summary["cases"] == 400 and summary["findings"] == 0 and summary["health_checks"] >= 4
    assert set(summary) >= {"cases", "elapsed_s", "cases_per_s", "findings", "health_checks"}


# ------------------------------------------------------------------ resume


def test_resume_after_sigkill_neither_loses_nor_repeats_a_case(tmp_path: Path) -> None:
    out = tmp_path / "c"
    total = 20000
    args = [
        sys.executable,
        "-m",
        "mipcheck.cli",
        "fuzz",
        "run",
        "-q",
        "--seed",
        "9",
        "--max-cases",
        str(total),
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(args, cwd=REPO, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    db_path = out / "campaign.sqlite"
    deadline = time.monotonic() + 60
    seen = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if db_path.exists():
            try:
                with sqlite3.connect(db_path, timeout=5) as db:
                    seen = db.execute("SELECT count(*) FROM cases").fetchone()[0]
            except sqlite3.OperationalError:
                seen = 0
            if seen >= 3000:
                break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = len(_indexes(out))
    assert 0 < killed_at < total
    done = subprocess.run([*args, "--resume"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert _indexes(out) == list(range(total))  # primary key (seed, idx): no duplicate can be stored
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cases"] == total and summary["cases_this_run"] == total - killed_at


# ------------------------------------------------------------------ findings


RESPONDER = """
import os, socket, sys
from mipcheck.fuzz.lab import config
from mipcheck.ha.core import HomeAgent

port = int(sys.argv[1])
core = HomeAgent(config(port))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", port))
while True:
    data, src = s.recvfrom(65535)
    if len(data) >= 26 and data[0] == 1 and data[24] == 100:  # the planted bug: first extension of type 100
        if sys.argv[2] == "crash":
            os._exit(3)
        while True:  # hang: alive, deaf
            __import__("time").sleep(60)
    d = core.handle(data, src, ("127.0.0.1", port), __import__("time").time())
    if d.reply is not None:
        s.sendto(d.reply, d.reply_to)
"""


@pytest.mark.parametrize("bug", ["crash", "hang"])
def test_campaign_finds_minimises_and_replays_the_planted_bug(tmp_path: Path, capsys, bug: str) -> None:
    script = tmp_path / "responder.py"
    script.write_text(RESPONDER)
    port = _free_port()
    target = ["--target", f"127.0.0.1:{port}", "--target-cmd", f"{sys.executable} {script} {port} {bug}"]
    out = tmp_path / "f"
    rc, _, err = _cli(["fuzz", "run", "-q", "--seed", "1", "--max-cases", "700", "--out", str(out), *target], capsys)
    assert rc == 1, err
    findings = json.loads((out / "findings.json").read_text())["findings"]
    assert findings, "the planted crash was not found"
    f = findings[0]
    assert f["kind"] == bug and f["seed"] == 1
    case, small = bytes.fromhex(f["case_hex"]), bytes.fromhex(f["minimised_hex"])
    assert case[24] == 100 and small[24] == 100
    assert len(small) <= len(case) and len(f["minimised_ops"]) <= 1
    assert (out / f["pcap"]).stat().st_size > 24
    rc, out_text, err = _cli(["fuzz", "replay", "--seed", "1", "--index", str(f["index"]), *target], capsys)
    assert rc == 1 and f"reproduced: {bug}" in out_text, out_text + err
    rc, out_text, _ = _cli(
        ["fuzz", "replay", "--seed", "1", "--index", str(f["index"] + 1 if f["index"] else 1), *target], capsys
    )
    assert rc in (0, 1)


def test_builtin_campaign_has_no_finding_and_records_coverage(tmp_path: Path, capsys) -> None:
    rc, _, err = _cli(
        ["fuzz", "run", "--seed", "3", "--max-cases", "2000", "--health-every", "50", "--out", str(tmp_path)], capsys
    )
    assert rc == 0, err
    assert "mipcheck fuzz" in err
    with sqlite3.connect(tmp_path / "campaign.sqlite") as db:
        coverage = dict(((k, r), c) for k, r, c in db.execute("SELECT kind, reaction, cases FROM coverage"))
    assert (
        coverage[("rrq", "accepted-0")] > 0
        and coverage[("rrq", "denied-131")] > 0
        and coverage[("rrq", "denied-134")] > 0
    )
    assert sum(coverage.values()) == 2000
    assert json.loads((tmp_path / "summary.json").read_text())["health_checks"] >= 40


# ------------------------------------------------------------------ show and bad input


def test_show_dissects_without_sending(capsys) -> None:
    rc, out, _ = _cli(["fuzz", "show", "--seed", "2", "--index", "5"], capsys)
    assert rc in (0, None)
    assert "strategy=" in out and "octets (" in out and "###[" in out


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["run", "--shard", "3/2"], "--shard"),
        (["run", "--target", "127.0.0.1"], "--profile"),
        (["run", "--target-cmd", "true"], "--target"),
        (["run", "--target", "127.0.0.1", "--profile", "/nonexistent/p.toml"], "--profile"),
        (["run", "--strategy", "no-such"], "--strategy"),
        (["run", "--resume"], "--resume"),
        (["run", "--jobs", "2", "--target", "127.0.0.1:4000", "--target-cmd", "sleep 9"], "--target-cmd"),
        (["replay", "--seed", "1", "--index", "0", "--target", "nonsense", "--profile", "x.toml"], "--target"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path: Path, capsys, args, key) -> None:
    rc, _, err = _cli(["fuzz", *args, *(["--out", str(tmp_path / "new")] if args[0] == "run" else [])], capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mipcheck: error: ") and key in lines[0], err


def test_existing_campaign_needs_resume(tmp_path: Path, capsys) -> None:
    assert _cli(["fuzz", "run", "-q", "--seed", "1", "--max-cases", "50", "--out", str(tmp_path)], capsys)[0] == 0
    rc, _, err = _cli(["fuzz", "run", "-q", "--seed", "1", "--max-cases", "50", "--out", str(tmp_path)], capsys)
    assert rc == 2 and "--resume" in err and len(err.strip().splitlines()) == 1
    rc, _, err = _cli(
        ["fuzz", "run", "-q", "--seed", "2", "--max-cases", "50", "--out", str(tmp_path), "--resume"], capsys
    )
    assert rc == 2 and "seed" in err
