"""The HA suite against devices that are picky or buggy the way real ones are (issue: verdicts that hold).

Each test reproduces one behaviour seen on independently written home
agents and pins the verdict the suite must give: a device the suite cannot
drive is inconclusive (never a false fail), a reply that arrives is judged
and named (never "no reply"), a tester-side mistake is an error (exit 2).
"""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest
from odd_devices import (
    ScriptedHomeAgent,
    answers_missing_auth_with_134,
    fa_ha_auth_only,
    requires_gre,
)

from mipcheck.builtin import BuiltinLab, builtin_profile, mobile_nodes
from mipcheck.engine.control import DeviceControl
from mipcheck.engine.runner import run_suite
from mipcheck.engine.verdicts import Verdict, exit_code
from mipcheck.suites.ha import CASES, CASES_BY_ID, PREFLIGHT, SUITE

FLAG_G = 0x08


def _verdicts(run) -> dict[str, Verdict]:
    return {r.id: r.verdict for r in run.results}


def _run(profile, cases=CASES, control=None):
    return run_suite(SUITE, cases, profile, control or DeviceControl(), preflight=PREFLIGHT)


def test_a_device_that_requires_g_is_inconclusive_without_the_flag_and_passes_with_it() -> None:
    ha = ScriptedHomeAgent()
    ha.before = requires_gre(ha)
    with ha:
        run = _run(ha.profile())
        assert (
            run.preflight.status == "denied"
            and "code 128" in run.preflight.detail
            and "[mn] flags" in run.preflight.detail
        )
        bad = {r.id: r.reason for r in run.results if r.verdict in (Verdict.FAIL, Verdict.WARN, Verdict.ERROR)}
        assert not bad, "a device that denies every request without G was judged on rules it keeps"
        assert exit_code(run.results) == 0
        for case_id in ("MIP-SKIPPABLE-IGNORED", "MIP-REVERSE-TUNNEL", "HA-ANY-SOURCE-PORT", "MIP-HA-FIELD"):
            result = next(r for r in run.results if r.id == case_id)
            assert result.verdict is Verdict.INCONCLUSIVE and "128" in result.reason, (case_id, result.reason)

        with_g = tuple(replace(m, flags=FLAG_G) for m in ha.nodes)
        run = _run(ha.profile(mobile_nodes=with_g))
        assert run.preflight.status == "accepted"
        bad = {
            r.id: r.reason
            for r in run.results
            if r.verdict not in (Verdict.PASS, Verdict.NOT_APPLICABLE, Verdict.INCONCLUSIVE)
        }
        assert not bad
        # Inconclusive only where the scripted device has no side channel (its log).
        assert {r.id for r in run.results if r.verdict is Verdict.INCONCLUSIVE} <= {"HA-UNTRUSTED-LOG"}


def test_a_reply_with_altered_identification_is_judged_and_named() -> None:
    with BuiltinLab(("mangle-reply-identification",)) as lab:
        run = _run(lab.profile, control=lab.control)
    result = next(r for r in run.results if r.id == "MIP-REPLY-ID")
    assert result.verdict is Verdict.FAIL
    assert "Identification low-order 32 bits" in result.reason or "0x" in result.reason, result.reason
    assert run.preflight.status == "unusable" and "were not copied from the request" in run.preflight.detail
    for r in run.results:
        assert "no reply within" not in r.reason, (r.id, r.reason)


def test_nothing_listening_is_a_tester_error_not_a_device_fail() -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    profile = replace(builtin_profile("127.0.0.1", port, mobile_nodes()), reply_timeout=0.3)
    run = _run(profile)
    assert run.preflight.status == "silent" and "nothing is listening" in run.preflight.detail
    assert {r.verdict for r in run.results} <= {Verdict.ERROR, Verdict.NOT_APPLICABLE}
    assert exit_code(run.results) == 2


def test_replies_without_mn_ha_authentication_pass_no_case_in_x_ha_mode() -> None:
    with ScriptedHomeAgent(after=fa_ha_auth_only) as ha:
        run = _run(ha.profile(role="x-ha", applicability={"trusted_networks": False}))
    verdicts = _verdicts(run)
    assert verdicts["MIP-REPLY-AUTH"] is Verdict.FAIL
    passed = {c for c, v in verdicts.items() if v is Verdict.PASS}
    # Only the case that judges the reply's Identification alone may pass: the device copies it.
    assert passed <= {"MIP-REPLY-ID"}, passed
    assert run.preflight.status == "unusable"


@pytest.mark.parametrize("homes", [1, 32], ids=["one-home-address", "many"])
def test_replay_compared_with_the_first_identification_only_fails_on_a_used_device(homes: int) -> None:
    with BuiltinLab(("replay-first-only",)) as lab:
        profile = replace(lab.profile, mobile_nodes=lab.profile.mobile_nodes[:homes])
        _run(profile, control=lab.control)  # the device is used now: every home address has history
        run = _run(profile, [CASES_BY_ID["MIP-REPLAY"]], control=lab.control)
    assert _verdicts(run)["MIP-REPLAY"] is Verdict.FAIL, run.results[0].reason


def test_a_device_that_drops_replays_silently_warns_and_says_so() -> None:
    with BuiltinLab(("drop-replays",)) as lab:
        run = _run(lab.profile, [CASES_BY_ID["MIP-REPLAY"]], control=lab.control)
    r = run.results[0]
    assert r.verdict is Verdict.WARN and "silently dropped" in r.reason, r.reason


def test_a_device_whose_clock_lags_two_seconds_passes_the_identification_cases() -> None:
    with ScriptedHomeAgent(clock_offset=-2.0) as ha:
        run = _run(ha.profile(), [CASES_BY_ID["MIP-REPLAY"], CASES_BY_ID["MIP-ID-STALE"]])
    assert {r.id: (r.verdict, r.reason) for r in run.results if r.verdict is not Verdict.PASS} == {}


def test_a_missing_authenticator_answered_with_134_is_a_should_deviation() -> None:
    with ScriptedHomeAgent(before=answers_missing_auth_with_134) as ha:
        run = _run(ha.profile(), [CASES_BY_ID["MIP-AUTH-MISSING"]])
    r = run.results[0]
    assert r.verdict is Verdict.WARN and "134" in r.reason, r.reason


def test_replies_sent_to_port_434_are_named_by_the_preflight() -> None:
    """Over the simulated network (no privileges needed to listen on 434)."""
    from mipcheck.sim.home_agent import SimLab

    lab = SimLab(("reply-to-port-434",))
    run = run_suite(
        SUITE,
        [CASES_BY_ID["HA-ANY-SOURCE-PORT"]],
        lab.profile,
        lab.control,
        preflight=PREFLIGHT,
        transport=lab.transport,
    )
    assert run.preflight.status == "misdirected" and "port 434" in run.preflight.detail
    assert run.results[0].verdict is Verdict.FAIL and "port 434" in run.results[0].reason


def test_keys_the_device_does_not_share_leave_the_reply_authenticator_inconclusive() -> None:
    """A mistyped secret: the device denies with 131 and signs with its own key; not a device fail."""
    with BuiltinLab() as lab:
        wrong = tuple(replace(m, secret=b"not the device's key!") for m in lab.profile.mobile_nodes)
        run = _run(replace(lab.profile, mobile_nodes=wrong), [CASES_BY_ID["MIP-REPLY-AUTH"]], control=lab.control)
    r = run.results[0]
    assert r.verdict is Verdict.INCONCLUSIVE and "131" in r.reason and "[mn] spi" in r.reason, r.reason
    # a denial signed with another key is unusable to a mobile node; the pre-flight says what to check
    assert run.preflight.status == "unusable" and "131" in run.preflight.detail and "[mn] spi" in run.preflight.detail


@pytest.mark.parametrize(
    ("line", "accepted"),
    [
        ('{"time":"t","outcome":"accepted","code":0,"source":"172.16.1.20:49434","home_address":"10.1.0.110"}', True),
        ("2026-12-07T21:40:05Z accepted code=0 source=172.16.1.20:49434 home_address=10.1.0.110", True),
        ('{"outcome":"dropped","reason":"registration request from untrusted source 172.16.1.20 dropped"}', False),
        ("Dec  7 21:40:05 ha mipd[12]: denied registration from 172.16.1.20: untrusted", False),
        ("ha: 172.16.1.20 rejected (not in trusted networks)", False),
    ],
)
def test_untrusted_log_does_not_count_a_line_that_reports_an_acceptance(line: str, accepted: bool) -> None:
    """Without a route back the tester hears nothing from an HA that accepted; its 'accepted' line is no drop log."""
    from mipcheck.suites.ha.cases_rfc5265 import says_accepted

    assert says_accepted(line) is accepted
