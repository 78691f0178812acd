"""Concurrent cases do not disturb each other through the device's per-home-address state.

The built-in i-HA runs with ``replay_strict=True``: per home address a
timestamp must be above the last accepted one, so a shared home address or
an out-of-order identification shows up as a spurious 133. The suite is run
several times, also several runs at once, against one such home agent.
"""

from __future__ import annotations

import threading

from mipcheck.builtin import BuiltinLab
from mipcheck.engine.evidence import Capture
from mipcheck.engine.runner import run_suite
from mipcheck.engine.transport import Endpoint
from mipcheck.engine.verdicts import Verdict
from mipcheck.suites.ha import CASES, SUITE, judge
from mipcheck.suites.ha.messages import build_request

# On purpose: MIP-ID-STALE 2 (late, early), MIP-REPLAY 4 (a stale probe, replays of R2, R1 and a
# de-registration), MIP-REPLY-AUTH 1 (a stale probe whose 133 must be authenticated).
EXPECTED_133_PER_RUN = 7


def _133s(lab: BuiltinLab) -> int:
    return sum(1 for d in lab.ha.decisions_snapshot() if d.get("code") == 133)


def test_repeated_and_parallel_runs_against_a_strict_home_agent() -> None:
    with BuiltinLab(replay_strict=True) as lab:
        runs = [run_suite(SUITE, CASES, lab.profile, lab.control) for _ in range(2)]
        parallel: list = []
        lock = threading.Lock()

        def one() -> None:
            r = run_suite(SUITE, CASES, lab.profile, lab.control)
            with lock:
                parallel.append(r)

        threads = [threading.Thread(target=one) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        runs += parallel
        denials = _133s(lab)
    assert len(runs) == 5
    for run in runs:
        bad = {r.id: r.reason for r in run.results if r.verdict is not Verdict.PASS}
        assert not bad
    assert denials == EXPECTED_133_PER_RUN * len(runs)


def test_strict_home_agent_does_reject_out_of_order_identifications() -> None:
    """The negative control: without the design above, the strict home agent would say 133."""
    with BuiltinLab(replay_strict=True) as lab:
        mn = lab.profile.mobile_nodes[0]
        from mipcheck.engine.pool import IdentificationClock

        clock = IdentificationClock()
        early, late = clock.next(), clock.next()
        codes = []
        with Endpoint(Capture(), "127.0.0.2") as ep:
            for ident in (late, early):  # two "cases" sharing a home address, sent out of order
                req = build_request(
                    mn,
                    home_agent=lab.profile.dut_address,
                    care_of_address="127.0.0.2",
                    identification=ident,
                    lifetime=60,
                )
                ep.send(req.data, lab.profile.target)
                reply = ep.receive(1.0, lambda d, req=req: judge.is_reply_to(req, d))
                assert reply is not None
                codes.append(judge.parse_reply(reply.payload).code)
    assert codes == [0, 133]
