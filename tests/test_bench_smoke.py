"""The layer benchmark still runs (tiny counts). Benchmarks never assert on speed in unit tests."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_layers.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_layers", BENCH)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_bench_run_reports_every_figure() -> None:
    bench = _load()
    result = bench.run(repeat=2, count=3, warmup=1)
    assert set(result["median_pps"]) == set(bench.BENCHMARKS)
    assert all(len(v) == 2 and all(x > 0 for x in v) for v in result["runs_pps"].values())
    assert set(result["ratios"]) == set(bench.RATIOS)
    assert result["goal"]["min_ratio"] == 0.8
    assert result["goal"]["met"] == all(result["ratios"][r] >= 0.8 for r in bench.GOAL_RATIOS)
    assert "median of 2 runs" in bench.format_text(result)


def test_bench_compares_identical_octets() -> None:
    bench = _load()
    assert bench.scapy_fixed_build() == bench.ours_fixed_build() == bench.FULL_RAW[:24]
    bench.check_equivalence()  # raises SystemExit when the comparison would be meaningless


def test_bench_command_line_json(tmp_path) -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--repeat", "1", "--count", "2", "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        timeout=120,
    )
    result = json.loads(out.stdout)
    assert result["repeat"] == 1 and result["count"] == 2
    assert result["command"] == "python bench/bench_layers.py --repeat 1 --count 2"


def test_bench_rejects_bad_arguments(tmp_path) -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--repeat", "0"], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert out.returncode == 2 and "--repeat" in out.stderr
