"""bench/bench_ha.py still runs end to end (tiny counts; never asserts on speed)."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from mipcheck.ha.config import load_ha_config
from mipcheck.ha.core import HomeAgent

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_ha.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_ha", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_generated_requests_are_accepted_by_the_core(tmp_path: Path) -> None:
    bench = _load()
    cfg_path = tmp_path / "ha.toml"
    bench.write_config(cfg_path, 3, "127.0.0.1", 4434)
    ha = HomeAgent(load_ha_config(cfg_path))
    gen = bench.Requests(3, "127.0.0.1", "127.0.0.2", 1800)
    for _ in range(7):
        d = ha.handle(gen.make(), ("127.0.0.2", 40000), ("127.0.0.1", 4434), time.time())
        assert (d.outcome, d.code, d.tnc) == ("accepted", 0, True), d.reason
        assert bench.accepted(d.reply)
    assert ha.binding_count() == 3


def test_bench_end_to_end_json(tmp_path: Path) -> None:
    bench = _load()
    out = tmp_path / "bench.json"
    assert (
        bench.main(
            [
                "--bindings",
                "20",
                "--runs",
                "1",
                "--duration",
                "0.3",
                "--soak",
                "300",
                "--rss-every",
                "100",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    res = json.loads(out.read_text())
    assert res["warmup"]["replies"] == 20 and res["warmup"]["bad"] == 0
    t = res["throughput"]
    assert set(t["median"]) == {"ha", "reader", "protocol"} and all(v > 0 for v in t["median"].values())
    assert t["ha_not_accepted"] == 0
    assert res["soak"]["replies"] == 300 and len(res["soak"]["rss_kib"]) == 4


def test_refuses_non_loopback() -> None:
    bench = _load()
    with pytest.raises(SystemExit):
        bench.main(["--address", "192.0.2.1"])
