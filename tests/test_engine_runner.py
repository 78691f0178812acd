"""The runner against fake cases: selection, verdicts from outcomes, concurrency, leases, clocks."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from mipcheck.engine.control import DeviceControl
from mipcheck.engine.pool import IdentificationClock, MobileNodePool
from mipcheck.engine.profile import MobileNode, Profile
from mipcheck.engine.runner import Case, run_suite, select_cases
from mipcheck.engine.verdicts import Check, Inconclusive, NotApplicable, TesterError, Verdict
from mipcheck.errors import ConfigError
from mipcheck.layers.secret import Secret


def _profile(nodes: int = 4) -> Profile:
    mns = tuple(MobileNode(f"10.9.0.{i + 1}", None, 0x1000 + i, Secret(b"k")) for i in range(nodes))
    return Profile(
        dut_address="127.0.0.1", dut_port=9, mobile_nodes=mns, trusted_sources=("127.0.0.2",), reply_timeout=0.2
    )


def _case(id: str, fn, level: str = "MUST", **kw) -> Case:
    return Case(id=id, title=id, level=level, requirement="RFC 0 0", run=fn, **kw)


def ok(_ctx):
    return [Check("thing", "x", "x", True)]


def bad(_ctx):
    return [Check("thing", "x", "y", False)]


def test_select_by_id_glob_and_level() -> None:
    cases = [_case("HA-TNC-A", ok), _case("HA-TNC-B", ok, "SHOULD"), _case("MIP-X", ok)]
    assert [c.id for c in select_cases(cases, ["ha-tnc-*"])] == ["HA-TNC-A", "HA-TNC-B"]
    assert [c.id for c in select_cases(cases, ["MIP-X,HA-TNC-A"])] == ["HA-TNC-A", "MIP-X"]
    assert [c.id for c in select_cases(cases, [], ["should"])] == ["HA-TNC-B"]
    with pytest.raises(ConfigError) as info:
        select_cases(cases, ["NOPE-*"])
    assert info.value.key == "--case"
    with pytest.raises(ConfigError):
        select_cases(cases, [], ["SHALL"])


def test_outcomes_become_verdicts(tmp_path: Path) -> None:
    def raise_(exc):
        def run(_ctx):
            raise exc

        return run

    cases = [
        _case("C-PASS", ok),
        _case("C-FAIL", bad),
        _case("C-WARN", bad, "SHOULD"),
        _case("C-INC", raise_(Inconclusive("could not see"))),
        _case("C-NA", raise_(NotApplicable("not this device"))),
        _case("C-ERR", raise_(TesterError("cannot bind"))),
        _case("C-BUG", raise_(ZeroDivisionError("oops"))),
        _case("C-NA-PROFILE", ok, applicable=lambda p, c: "profile says no"),
    ]
    run = run_suite("fake", cases, _profile(), evidence_dir=tmp_path)
    got = {r.id: r.verdict for r in run.results}
    assert got == {
        "C-PASS": Verdict.PASS,
        "C-FAIL": Verdict.FAIL,
        "C-WARN": Verdict.WARN,
        "C-INC": Verdict.INCONCLUSIVE,
        "C-NA": Verdict.NOT_APPLICABLE,
        "C-ERR": Verdict.ERROR,
        "C-BUG": Verdict.ERROR,
        "C-NA-PROFILE": Verdict.NOT_APPLICABLE,
    }
    bug = next(r for r in run.results if r.id == "C-BUG")
    assert "ZeroDivisionError" in bug.reason
    assert (tmp_path / bug.evidence["files"]["error.txt"]).read_text().startswith("Traceback")
    assert [r.id for r in run.results] == [c.id for c in cases]  # report order is the suite's order
    assert (tmp_path / "pcaps" / "C-PASS.pcap").exists()
    fail = next(r for r in run.results if r.id == "C-FAIL")
    assert fail.failure is not None and fail.failure.observed == "y"


def test_waiting_cases_run_concurrently_on_distinct_home_addresses() -> None:
    seen: list[str] = []
    active = {"now": 0, "max": 0}
    lock = threading.Lock()

    def slow(ctx):
        with lock:
            seen.append(ctx.mn.home_address)
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
            in_use = active["now"]
        time.sleep(0.3)
        with lock:
            active["now"] -= 1
        return [Check("alone", "home address not shared", ctx.mn.home_address, in_use <= 4)]

    cases = [_case(f"C-{i}", slow) for i in range(8)]
    t0 = time.monotonic()
    run = run_suite("fake", cases, _profile(nodes=4), jobs=8)
    wall = time.monotonic() - t0
    assert all(r.verdict is Verdict.PASS for r in run.results)
    assert active["max"] == 4  # limited by the pool of four home addresses, not by jobs
    assert 0.55 < wall < 1.5  # two waves of 0.3 s, not eight
    assert len(set(seen)) == 4


def test_exclusive_cases_run_alone_after_the_others() -> None:
    order: list[str] = []
    running = {"n": 0, "alone": True}
    lock = threading.Lock()

    def track(name, exclusive=False):
        def run(_ctx):
            with lock:
                running["n"] += 1
                if exclusive and running["n"] != 1:
                    running["alone"] = False
            time.sleep(0.05)
            with lock:
                running["n"] -= 1
                order.append(name)
            return [Check("x", "x", "x", True)]

        return run

    cases = [_case("C-EX", track("ex", True), exclusive=lambda p, c: True)] + [
        _case(f"C-{i}", track(str(i))) for i in range(4)
    ]
    run_suite("fake", cases, _profile(), jobs=4)
    assert order[-1] == "ex" and running["alone"]


def test_too_few_mobile_nodes_is_an_error() -> None:
    run = run_suite("fake", [_case("C-TWO", ok, mobile_nodes=2)], _profile(nodes=1))
    assert run.results[0].verdict is Verdict.ERROR and "home_addresses" in run.results[0].reason


def test_leases_are_exclusive_across_pools_of_the_same_device() -> None:
    nodes = _profile(nodes=1).mobile_nodes
    a, b = MobileNodePool(nodes, ("127.0.0.1", 9)), MobileNodePool(nodes, ("127.0.0.1", 9))
    with a.lease(), pytest.raises(TimeoutError):
        with b.lease(timeout=0.05):
            pass
    with b.lease(timeout=0.05) as got:
        assert got == list(nodes)
    other_device = MobileNodePool(nodes, ("127.0.0.1", 10))
    with a.lease(), other_device.lease(timeout=0.05):
        pass


def test_identification_clock_is_strictly_increasing_across_threads() -> None:
    clock = IdentificationClock()
    out: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        mine = [clock.next() for _ in range(500)]
        with lock:
            out.extend(mine)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(out)) == 2000


def test_identification_clock_reads_the_clock_it_is_given() -> None:
    """Over the simulated network Identifications follow virtual time, not the machine's."""
    from mipcheck.layers.identification import identification_time

    clock = IdentificationClock(lambda: 1_000_000.0)
    first, second = clock.next(), clock.next()
    assert abs(identification_time(first) - 1_000_000.0) < 1e-6 and second == first + 1


def test_control_without_side_channels_says_so() -> None:
    c = DeviceControl()
    assert c.read_log() is None and not c.can_start_unconfigured() and c.tunnel_delivered("1.2.3.4", b"x") is None
    with pytest.raises(TesterError):
        c.start_unconfigured()
