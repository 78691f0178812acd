"""Wall time of the whole HA suite against the built-in i-HA on loopback.

Why: the suite's target is under 5 s wall, which only holds because cases
that wait for silence run concurrently. Measures, each as the median of
``--repeat`` runs in one process:

* concurrent: the suite as ``mipcheck run`` runs it (cases at once);
* sequential: the same with one case at a time (the baseline);
* cli: ``mipcheck run -q`` end to end in a fresh process (imports, HA start, reports).

Usage: python bench/bench_suite.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time


def suite_wall(jobs: int | None) -> float:
    from mipcheck.builtin import BuiltinLab
    from mipcheck.engine.runner import run_suite
    from mipcheck.engine.verdicts import Verdict
    from mipcheck.suites.ha import CASES, SUITE

    with BuiltinLab() as lab:
        t0 = time.perf_counter()
        run = run_suite(SUITE, CASES, lab.profile, lab.control, jobs=jobs)
        wall = time.perf_counter() - t0
    bad = [r.id for r in run.results if r.verdict is not Verdict.PASS]
    if bad:
        raise SystemExit(f"not all cases passed: {bad}")
    return wall


def cli_wall() -> float:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "mipcheck.cli", "run", "-q", "--out", out], capture_output=True, check=False
        )
        wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"mipcheck run exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    suite_wall(None)  # warm-up: imports, first-run caches
    rows = {
        "concurrent": [suite_wall(None) for _ in range(args.repeat)],
        "sequential (baseline)": [suite_wall(1) for _ in range(args.repeat)],
        "cli end to end": [cli_wall() for _ in range(args.repeat)],
    }
    med = {k: statistics.median(v) for k, v in rows.items()}
    for name, values in rows.items():
        print(f"{name:24} median {med[name]:6.3f} s  (min {min(values):.3f}, max {max(values):.3f}, n={len(values)})")
    print(f"{'speed-up':24} {med['sequential (baseline)'] / med['concurrent']:.1f}x concurrent over sequential")


if __name__ == "__main__":
    main()
