#!/usr/bin/env python3
"""Time ``mipcheck dissect`` against tshark on the same capture; print the ratios.

Two pairs, each run interleaved ``--runs`` times, medians compared:
``mipcheck dissect FILE`` vs ``tshark -r FILE`` (summaries) and
``mipcheck dissect --json FILE`` vs ``tshark -r FILE -T json``. Output goes to
/dev/null; wall-clock time of the whole process, start-up included. A ratio
below 1 means mipcheck is faster. Exit status 1 when a ratio is above 1.

    python bench/make_bench_pcap.py && python bench/bench_dissect.py out/bench-registrations.pcap
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def mipcheck_command() -> list[str]:
    """The installed console script beside this Python (not a shell shim), else ``python -m``."""
    script = Path(sys.executable).with_name("mipcheck")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mipcheck.cli"]


def timed(cmd: list[str]) -> float:
    with open(os.devnull, "wb") as sink:
        start = time.perf_counter()
        subprocess.run(cmd, stdout=sink, stderr=subprocess.DEVNULL, check=True)
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture", nargs="?", default="out/bench-registrations.pcap")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", dest="json_out", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if shutil.which("tshark") is None:
        print("bench_dissect: tshark is not installed", file=sys.stderr)
        return 2
    if not Path(args.capture).exists():
        print(f"bench_dissect: {args.capture} not found; run bench/make_bench_pcap.py first", file=sys.stderr)
        return 2
    mip = mipcheck_command()
    pairs = {
        "summary": (mip + ["dissect", args.capture], ["tshark", "-n", "-r", args.capture]),
        "json": (mip + ["dissect", "--json", args.capture], ["tshark", "-n", "-r", args.capture, "-T", "json"]),
    }
    results = {}
    worst = 0.0
    for name, (ours, theirs) in pairs.items():
        timed(ours), timed(theirs)  # warm the page cache and both programs' imports
        mine, tshark = [], []
        for _ in range(args.runs):
            mine.append(timed(ours))
            tshark.append(timed(theirs))
        ratio = statistics.median(mine) / statistics.median(tshark)
        worst = max(worst, ratio)
        results[name] = {
            "mipcheck": " ".join(ours),
            "tshark": " ".join(theirs),
            "mipcheck_median_s": round(statistics.median(mine), 3),
            "tshark_median_s": round(statistics.median(tshark), 3),
            "ratio": round(ratio, 3),
            "runs": args.runs,
        }
        print(
            f"{name:8} mipcheck {statistics.median(mine):6.3f} s  tshark {statistics.median(tshark):6.3f} s  "
            f"ratio {ratio:.2f}  (medians of {args.runs}; mipcheck runs {', '.join(f'{t:.2f}' for t in mine)})",
            flush=True,
        )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2) + "\n")
    return 0 if worst <= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
