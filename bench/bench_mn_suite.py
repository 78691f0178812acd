"""Wall time of the MN suite against the built-in reference mobile node, next to the protocol time it must wait.

Why: the MN cases wait on the device's timers (T_MONITOR, the detection
period, retransmissions), so their wall time is mostly protocol time. The
baseline is that protocol time: the same cases with the built-in's timers
(T_MONITOR 2 s, detection period 1 s) over the simulated network, where
waiting costs nothing and the virtual clock says how long the suite had to
wait. Measures, medians of ``--repeat`` runs:

* loopback: ``mipcheck run --suite mn -q`` end to end in a fresh process
  (imports, the reference MN as a subprocess, one ``mn ctl`` process per move);
* sim: the same cases and timers over ``SimNetwork`` in this process: real
  wall time and the virtual time they span (the baseline).

Usage: python bench/bench_mn_suite.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib


def loopback_wall() -> float:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "mipcheck", "run", "--suite", "mn", "-q", "--out", out],
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"the built-in MN suite did not pass (exit {done.returncode}): {done.stdout[-400:]}")
    return wall


def sim_run() -> tuple[float, float]:
    """(real seconds, virtual seconds) of the suite over the simulated network with the built-in's timers."""
    from mipcheck.engine.verdicts import Verdict
    from mipcheck.mn.node import ReferenceMobileNode
    from mipcheck.mn.profile import parse_mobile_node_profile
    from mipcheck.sim.network import SimNetwork
    from mipcheck.sim.reference_node import SimReferenceNode
    from mipcheck.suites.mn import CASES, SimEnv, run_mn_suite
    from mipcheck.suites.mn.builtin import builtin_profile_text

    profile = parse_mobile_node_profile(tomllib.loads(builtin_profile_text("/nonexistent.sock", seed=1)))
    net = SimNetwork()
    node = SimReferenceNode(net, ReferenceMobileNode(profile))
    env = SimEnv(profile, net, lambda i, n, c: node.move(i, n, c))
    v0, t0 = net.clock.time(), time.perf_counter()
    try:
        result = run_mn_suite(list(CASES), env)
    finally:
        env.close()
    real, virtual = time.perf_counter() - t0, net.clock.time() - v0
    bad = [r.id for r in result.results if r.verdict not in (Verdict.PASS, Verdict.NOT_APPLICABLE)]
    if bad:
        raise SystemExit(f"not all cases passed over the simulated network: {bad}")
    return real, virtual


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sims = [sim_run() for _ in range(args.repeat)]
    loops = [loopback_wall() for _ in range(args.repeat)]
    real = statistics.median(s[0] for s in sims)
    virtual = statistics.median(s[1] for s in sims)
    loop = statistics.median(loops)
    print(f"sim: {real:.3f} s real for {virtual:.1f} s of virtual time (median of {args.repeat})")
    print(f"loopback end to end: {loop:.2f} s (median of {args.repeat}; min {min(loops):.2f}, max {max(loops):.2f})")
    print(f"loopback / protocol time (virtual): {loop / virtual:.2f}x")


if __name__ == "__main__":
    main()
