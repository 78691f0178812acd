"""The MN suite's cases: mipcheck plays the i-HA, the x-HA and the VPN gateway; the device is moved between networks.

Each case is data (:class:`MnCase`: id, title, level, requirement, the
catalogue rules it judges, the reference-MN faults that must make it fail or
warn) and a function ``run(env) -> list[Check]``. Product rules every case
keeps:

* it starts with the moves it needs (the device may be in any state);
* before it judges an absence ("no echo reply", "no request") it shows that
  the same device does the conforming thing under the same conditions (a
  control), else ``Inconclusive`` naming what actually arrived;
* every timer judged gets one retransmission interval of tolerance, taken
  from what the device does (at least 1 s on loopback): :class:`.judge.Timing`;
* only the wire is judged (the played parties' log); reasons quote frames.

Not retransmissions (never counted as such): the periodic re-registration,
the x-HA lifetime-0 de-registration, new registrations after a status change
or a denial, or after a reply without TNC.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mipcheck.engine.verdicts import Check, Inconclusive
from mipcheck.mn.profile import MobileNodeProfile

from . import judge as j
from .env import MnEnv
from .played import DIRECT, IHA, IN, VIA_VPN, VIA_XHA, XHA, Obs

# ---------------------------------------------------------------- the case record


@dataclass(frozen=True)
class MnCase:
    """One case of the MN suite (public id, level, the rules it judges, the faults that break it)."""

    id: str
    title: str
    level: str  # MUST | SHOULD: how a failed check grades
    requirement: str  # "RFC 5265 3.3" style, for people
    rules: tuple[str, ...]  # catalogue ids (mipcheck/catalogue_data/requirements/rfc5265.toml)
    faults: tuple[str, ...]  # reference-MN faults (mipcheck.mn.faults) each of which must make it fail or warn
    run: Callable[[MnEnv], list[Check]]
    applicable: Callable[[MobileNodeProfile], str | None] = lambda _p: None


def needs_distinct_addresses(profile: MobileNodeProfile) -> str | None:
    """Cases that bring the device inside: with one home agent address a conformant device never goes inside."""
    if not profile.same_home_agent:
        return None
    return (
        f"the i-HA and the x-HA share the address {profile.i_ha.address}: 3.5 makes the device assume it is outside "
        "and bypass detection, so it never goes inside (MN-SAME-HA-OUTSIDE tests that)"
    )


def needs_detection_period(profile: MobileNodeProfile) -> str | None:
    if profile.detection_period <= 0:
        return "the profile's detection period is 0 (3.3 prefers it when the x-HA is unreachable from inside)"
    return needs_distinct_addresses(profile)


def _iface(env: MnEnv, index: int = 0) -> str:
    return env.profile.interfaces[index]


def _since(env: MnEnv, at: float) -> str:
    return f"+{at - env.case_start:.2f} s"


# ---------------------------------------------------------------- 3.3: two simultaneous requests


RULE_3_3 = "5265-3-DETECTION-MECHANISM"  # "two simultaneous" has no keyword; the mechanism's MUST is section 3's


def parallel_detect(env: MnEnv) -> list[Check]:
    """Both home agents silent, so nothing but the device's own algorithm orders its requests."""
    t = j.Timing(env)
    checks = []
    for network in ("inside", "outside"):
        env.set(IHA, "silent")
        env.set(XHA, "silent")
        a = j.attach(env, _iface(env), network)

        def firsts(a: j.Attached = a) -> tuple[list[Obs], list[Obs]]:
            log = env.observations(a.at)
            return (
                j.requests(log, IHA, path=DIRECT, coa=a.coa, lifetime="nonzero", valid=False),
                j.requests(log, XHA, coa=a.coa, lifetime="nonzero", valid=False),
            )

        env.wait_until(lambda f=firsts: any(f()), t.settle)
        ri, rx = firsts()
        if ri or rx:
            first = min(o.at for o in (ri[:1] + rx[:1]))
            env.wait_until(lambda f=firsts: all(f()), max(0.0, first + 1.5 * t.tol - env.now()))
            ri, rx = firsts()
        what = f"{network}: requests to both home agents after `move {a.interface} {network}`"
        expected = (
            f"a request from {a.coa} to the i-HA and one to the x-HA, the second within one retransmission interval "
            f"({t.tol:.2f} s) of the first (3.3: 'two simultaneous registration requests')"
        )
        if not ri and not rx:
            seen = j.show(j.arrived(env.observations(a.at)), env.case_start)
            observed = f"no request from {a.coa} within {t.settle:.1f} s; observed: {seen}"
            checks.append(Check(what, expected, observed, None))
            continue
        if ri and rx:
            gap = abs(rx[0].at - ri[0].at)
            later = "x-HA" if rx[0].at >= ri[0].at else "i-HA"
            observed = (
                f"the {later}'s first request came {gap:.3f} s after the other's "
                f"({ri[0].describe(env.case_start)}; {rx[0].describe(env.case_start)})"
            )
            checks.append(Check(what, expected, observed, gap < t.tol, j.frames(ri[0], rx[0]), rule_id=RULE_3_3))
            continue
        have, missing = ("i-HA", "x-HA") if ri else ("x-HA", "i-HA")
        got = ri or rx
        observed = (
            f"{len(got)} request(s) to the {have} (first: {got[0].describe(env.case_start)}) and none to the "
            f"{missing} within {1.5 * t.tol:.2f} s"
        )
        checks.append(Check(what, expected, observed, False, j.frames(got[:3]), rule_id=RULE_3_3))
    return checks


# ---------------------------------------------------------------- 3.3, 4.1: a TNC reply means inside


def tnc_means_inside(env: MnEnv) -> list[Check]:
    t = j.Timing(env)
    a = j.attach(env, _iface(env), "inside")
    reply = j.inside_reply(env, a, t)
    sent, _ = j.ping_answered(env, DIRECT, t, to=reply.peer, window=t.detection + 2 * t.tol)
    what = "a trusted i-HA reply (TNC before the authenticator) makes the device use the i-HA directly"
    expected = "an echo reply through the direct i-HA tunnel to an echo request sent that way"
    direct = [o for o in j.echo_replies(env.observations(), sent) if o.path == DIRECT]
    if direct:
        return [Check(what, expected, direct[0].describe(env.case_start), True, j.frames(reply, direct[0]))]
    # Not inside. Alive and outside (through the VPN)? Only then is this the device's choice.
    vpn = j.vpn_up(env, a, t, a.at, timeout=t.detection + 2 * t.tol)
    vpn_sent, vpn_echo = j.ping_answered(env, VIA_VPN, t) if vpn is not None else ([], None)
    if vpn_echo is None:
        observed = (
            f"no echo reply to {len(sent)} direct and {len(vpn_sent)} VPN echo requests: the device answers no "
            f"ping at all; observed: {j.show(j.arrived(env.observations(reply.at)), env.case_start)}"
        )
        return [Check(what, expected, observed, None, j.frames(reply))]
    observed = (
        f"no direct echo reply to {len(sent)} echo requests after the TNC reply ({reply.describe(env.case_start)}); "
        f"it stayed outside: {vpn_echo.describe(env.case_start)}"
    )
    return [Check(what, expected, observed, False, j.frames(reply, vpn, vpn_echo), rule_id="5265-3.3-TNC-MEANS-INSIDE")]


# ---------------------------------------------------------------- 3.2.3, 4.1: no inside without an authenticated TNC


def _untrusted_reply(env: MnEnv, mode: str, rule: str, about: str) -> list[Check]:
    t = j.Timing(env)
    iface = _iface(env)
    a = j.attach(env, iface, "inside")
    reply = j.inside_reply(env, a, t)
    echo = j.control_inside(env, a, t, reply)
    checks = [
        Check(
            "control: with TNC before the authenticator the device answers through the direct i-HA tunnel",
            "an echo reply through the direct i-HA tunnel",
            echo.describe(env.case_start),
            True,
            j.frames(reply, echo),
        )
    ]
    env.set(IHA, mode)
    b = j.attach(env, iface, "inside")
    tnc = None if mode == "no-tnc" else "after-auth"
    untrusted = j.inside_reply(env, b, t, tnc=tnc)
    # Pings through the direct tunnel from the untrusted reply on, over the detection period and more.
    direct = j.pings_over(env, DIRECT, t.detection + t.tol, max(0.1, t.tol / 4), to=untrusted.peer)
    vpn = j.vpn_up(env, b, t, b.at, timeout=t.tol)
    vpn_sent, vpn_echo = j.ping_answered(env, VIA_VPN, t) if vpn is not None else ([], None)
    direct.append(env.ping(DIRECT, to=untrusted.peer))  # once more, now that it is outside
    env.wait(t.crossing)
    direct = [p for p in direct if p is not None]
    leaks = j.echo_replies(env.observations(), direct)
    what = f"after an i-HA reply {about} the device keeps IPsec (no plaintext through the direct i-HA tunnel)"
    expected = (
        f"no echo reply to {len(direct)} echo requests sent through the direct i-HA tunnel to {untrusted.peer[0]} "
        "(the device stays outside: x-HA, ESP, i-HA through the VPN)"
    )
    if leaks:
        observed = (
            f"{len(leaks)} echo replies; first: {leaks[0].describe(env.case_start)}, after "
            f"{untrusted.describe(env.case_start)}"
        )
        checks.append(Check(what, expected, observed, False, j.frames(untrusted, leaks[:3]), rule_id=rule))
    elif vpn_echo is not None:
        observed = f"none; the device went outside: {vpn_echo.describe(env.case_start)}"
        checks.append(Check(what, expected, observed, True, j.frames(untrusted, vpn, vpn_echo)))
    else:
        observed = (
            f"no echo reply, but none through the VPN either ({'no' if vpn is None else 'a'} registration through "
            f"the VPN): the device answered no ping after {untrusted.describe(env.case_start)}"
        )
        checks.append(Check(what, expected, observed, None, j.frames(untrusted)))
    return checks


def tnc_required(env: MnEnv) -> list[Check]:
    return _untrusted_reply(env, "no-tnc", "5265-3.2.3-TNC-BEFORE-INSIDE", "without TNC")


def tnc_unauthenticated(env: MnEnv) -> list[Check]:
    return _untrusted_reply(
        env, "tnc-after-auth", "5265-4.1-KEEP-IPSEC-WITHOUT-TNC", "whose TNC sits after the authenticator"
    )


# ---------------------------------------------------------------- 3.3: keep asking the i-HA after the x-HA answered


def iha_retransmit(env: MnEnv) -> list[Check]:
    t = j.Timing(env)
    env.set(IHA, "silent")
    a = j.attach(env, _iface(env), "inside")
    xr = j.xha_reply(env, a, t)
    if xr is None:
        raise Inconclusive(
            f"no x-HA registration from {a.coa} was accepted within {t.settle:.1f} s; observed: "
            f"{j.show(j.arrived(env.observations(a.at)), env.case_start)}"
        )
    before = j.requests(env.observations(a.at), IHA, path=DIRECT, coa=a.coa, until=xr.at + t.crossing)
    if not before:
        raise Inconclusive(
            f"the device asked the i-HA nothing from {a.coa} before the x-HA's reply ({xr.describe(env.case_start)}):"
            " nothing to keep retransmitting"
        )
    start, deadline = xr.at + t.crossing, xr.at + t.detection + t.tol

    def after() -> list[Obs]:
        return j.requests(env.observations(start), IHA, path=DIRECT, coa=a.coa, lifetime="nonzero")

    env.wait_until(lambda: bool(after()), max(0.0, deadline - env.now()))
    got = [o for o in after() if o.at <= deadline]
    what = "the device keeps retransmitting to the i-HA after the x-HA answered"
    expected = (
        f"a request to the i-HA from {a.coa} after the x-HA's reply and within the detection period "
        f"({t.detection:g} s) + tolerance ({t.tol:.2f} s)"
    )
    if got:
        return [Check(what, expected, got[0].describe(env.case_start), True, j.frames(before[:1], xr, got[0]))]
    observed = (
        f"{len(before)} i-HA request(s) before the x-HA's reply ({xr.describe(env.case_start)}), none in the "
        f"{deadline - start:.2f} s after it"
    )
    return [Check(what, expected, observed, False, j.frames(before[-2:], xr))]


# ---------------------------------------------------------------- 3.3: an i-HA reply stops retransmissions to both


def stop_retransmit(env: MnEnv) -> list[Check]:
    t = j.Timing(env)
    env.set(XHA, "silent")  # the x-HA's request stays pending
    env.set(IHA, "hold")  # until the device has asked the x-HA too
    a = j.attach(env, _iface(env), "inside")

    def xha_asked() -> list[Obs]:
        return j.requests(env.observations(a.at), XHA, coa=a.coa, lifetime="nonzero")

    def iha_asked() -> list[Obs]:
        return j.requests(env.observations(a.at), IHA, path=DIRECT, coa=a.coa, lifetime="nonzero")

    env.wait_until(lambda: bool(xha_asked()) and bool(iha_asked()), t.settle)
    if not iha_asked():
        raise Inconclusive(
            f"no request from {a.coa} reached the i-HA within {t.settle:.1f} s; observed: "
            f"{j.show(j.arrived(env.observations(a.at)), env.case_start)}"
        )
    env.set(IHA, "answer", pending=True)
    reply = j.inside_reply(env, a, t)
    pending_xha = [o for o in xha_asked() if o.at <= reply.at]
    start = reply.at + t.crossing
    # A retransmission comes one retransmission interval after the request it repeats; the periodic
    # re-registration (T_MONITOR - N) or any earlier renewal the device may choose comes later than that.
    iha_end = reply.at + min(0.75 * (t.t_monitor - t.grace), 2 * t.tol)
    # the pending x-HA request's next retransmission would come one retransmission interval after it
    xha_end = max(reply.at, pending_xha[-1].at if pending_xha else reply.at) + 1.5 * t.tol
    env.wait(max(0.0, max(iha_end, xha_end) - env.now()))
    log = env.observations(start)
    iha_again = j.requests(log, IHA, path=DIRECT, coa=a.coa, until=iha_end, valid=False)
    xha_again = j.requests(log, XHA, coa=a.coa, until=xha_end, lifetime="nonzero", valid=False)
    deregs = j.requests(log, XHA, coa=a.coa, until=xha_end, lifetime="zero", valid=False)
    checks = [
        Check(
            "no i-HA retransmission after the i-HA's reply",
            f"no request to the i-HA from {a.coa} in the {iha_end - start:.2f} s after the reply (a retransmission "
            f"would come within one retransmission interval, {t.tol:.2f} s; the periodic re-registration at "
            f"T_MONITOR - N = {t.t_monitor - t.grace:g} s)",
            j.show(iha_again, env.case_start, empty="none"),
            not iha_again,
            j.frames(reply, iha_again[:3]),
        )
    ]
    what = "no x-HA retransmission after the i-HA's reply (a lifetime-0 de-registration is no retransmission)"
    expected = (
        f"no request with a non-zero lifetime to the x-HA from {a.coa} in the {xha_end - start:.2f} s after the "
        "i-HA's reply"
    )
    if not pending_xha:
        observed = (
            f"no x-HA request was pending when the i-HA answered ({reply.describe(env.case_start)}): nothing to stop"
        )
        checks.append(Check(what, expected, observed, None, j.frames(reply)))
    else:
        observed = j.show(xha_again, env.case_start, empty="none")
        if deregs and not xha_again:
            observed += f" (de-registration: {deregs[0].describe(env.case_start)})"
        checks.append(Check(what, expected, observed, not xha_again, j.frames(pending_xha[-1:], reply, xha_again[:3])))
    return checks


# ---------------------------------------------------------------- 3.2.4, 3.3: re-register every T_MONITOR


def tmonitor_rereg(env: MnEnv) -> list[Check]:
    t = j.Timing(env)
    a = j.attach(env, _iface(env), "inside")
    reply = j.inside_reply(env, a, t)
    j.control_inside(env, a, t, reply)
    end = reply.at + 2 * t.t_monitor
    sent = j.pings_over(env, DIRECT, end - env.now(), t.t_monitor / 6, to=reply.peer)
    accepted = j.replies(env.observations(reply.at), IHA, path=DIRECT, coa=a.coa, tnc="before-auth", lifetime="nonzero")
    times = [o.at for o in accepted] + [max(end, env.now())]
    gaps = [(times[i + 1] - times[i], i) for i in range(len(times) - 1)]
    worst, at = max(gaps)
    limit = t.t_monitor + t.tol
    answered = len(j.echo_replies(env.observations(), sent))
    what = "accepted i-HA registrations at most T_MONITOR apart while inside, data flowing"
    expected = (
        f"a re-registration accepted at least every T_MONITOR ({t.t_monitor:g} s) + tolerance ({t.tol:.2f} s) over "
        f"{end - reply.at:.1f} s, while {len(sent)} echo requests flowed"
    )
    after = f"after {accepted[at].describe(env.case_start)}"
    if at + 1 < len(accepted):
        until = f"the next accepted at {_since(env, accepted[at + 1].at)}"
    else:
        until = f"none until the end of the window at {_since(env, times[-1])}"
    observed = (
        f"{len(accepted)} accepted registrations, longest gap {worst:.2f} s ({after}; {until}); {answered} echo replies"
    )
    return [Check(what, expected, observed, worst <= limit, j.frames(accepted[at : at + 2]))]


# ---------------------------------------------------------------- 3.2.4: no data once T_MONITOR has passed


def _lapse(env: MnEnv, t: j.Timing) -> tuple[j.Attached, Obs, float]:
    """Inside and answering, then the i-HA goes silent: returns (attachment, last accepted reply, lapse time)."""
    a = j.attach(env, _iface(env), "inside")
    reply = j.inside_reply(env, a, t)
    j.control_inside(env, a, t, reply)
    env.set(IHA, "silent")
    last = j.replies(env.observations(), IHA, path=DIRECT, coa=a.coa, tnc="before-auth", lifetime="nonzero")[-1]
    return a, last, last.at + t.t_monitor + t.tol


def tmonitor_gate(env: MnEnv) -> list[Check]:
    t = j.Timing(env)
    a, last, lapse = _lapse(env, t)
    every = max(0.1, min(t.tol, t.t_monitor) / 4)
    early = j.pings_over(env, DIRECT, lapse - env.now(), max(every, (lapse - env.now()) / 8), to=last.peer)
    late = j.pings_over(env, DIRECT, max(t.tol / 2, 2 * every), every, to=last.peer)
    env.wait(t.crossing)
    leaks = j.echo_replies(env.observations(), late)
    what = "no user data once T_MONITOR has passed since the last accepted i-HA registration"
    expected = (
        f"no echo reply to {len(late)} echo requests sent after the last accepted registration "
        f"({last.describe(env.case_start)}) + T_MONITOR ({t.t_monitor:g} s) + tolerance ({t.tol:.2f} s)"
    )
    if leaks:
        return [Check(what, expected, j.show(leaks, env.case_start), False, j.frames(last, leaks[:3]))]
    before = j.echo_replies(env.observations(), early)
    observed = f"none ({len(before)} of {len(early)} echo requests before the lapse were answered)"
    observed += _restarted_before(env, a, last, lapse)
    return [Check(what, expected, observed, True, j.frames(last))]


def _restarted_before(env: MnEnv, a: j.Attached, last: Obs, lapse: float) -> str:
    """A note when the device gave up its re-registration and restarted detection before T_MONITOR lapsed."""
    restart = j.requests(env.observations(last.at), XHA, coa=a.coa, until=lapse, lifetime="nonzero", valid=False)
    if not restart:
        return ""
    return (
        f"; note: the device restarted detection before T_MONITOR passed ({restart[0].describe(env.case_start)}), "
        "so it was no longer inside when the gate was probed"
    )


# ---------------------------------------------------------------- 3.2.4: a queue waits for a successful re-registration


def queue_held(env: MnEnv) -> list[Check]:
    """Pings held while T_MONITOR lapsed; the re-registration fails (denied); the device may go outside; then a
    direct re-registration succeeds. No echo reply to the held pings may come before that success."""
    t = j.Timing(env)
    a, last, lapse = _lapse(env, t)
    env.wait(max(0.0, lapse - env.now()))
    held = j.pings_over(env, DIRECT, min(t.tol, 0.5), 0.1, to=last.peer)
    # The re-registration fails: the i-HA denies the request it holds (or the next one).
    deny_from = env.now()
    env.set(IHA, "deny", pending=True)

    def denial() -> list[Obs]:
        return j.replies(env.observations(deny_from), IHA, path=DIRECT, coa=a.coa, accepted=False)

    got = j.wait_for(env, denial, t.settle + t.t_monitor)
    if got is None:
        raise Inconclusive(
            f"the device sent the i-HA no re-registration to deny within {t.settle + t.t_monitor:.1f} s after "
            f"T_MONITOR passed; observed: {j.show(j.arrived(env.observations(last.at)), env.case_start)}"
        )
    # Detection restarts: no direct i-HA answer for now; the x-HA (and the i-HA through the VPN) answer.
    env.set(IHA, "silent")
    vpn = j.vpn_up(env, a, t, got.at)
    env.wait(t.tol)  # whatever the device releases once outside
    success_from = env.now()
    env.set(IHA, "answer", pending=True)  # now a direct registration succeeds (late, if it went outside)

    def accepted() -> list[Obs]:
        return j.replies(
            env.observations(success_from), IHA, path=DIRECT, coa=a.coa, tnc="before-auth", lifetime="nonzero"
        )

    again = j.wait_for(env, accepted, t.settle)
    end = again.at if again is not None else env.now()
    early = [o for o in j.echo_replies(env.observations(), held) if o.at < end]
    what = "data held after T_MONITOR is not processed before a successful re-registration with the i-HA"
    expected = (
        f"no echo reply (by any path) to {len(held)} echo requests received while T_MONITOR had lapsed, before the "
        f"next accepted direct i-HA registration ({'at ' + _since(env, end) if again else 'none came'}); neither "
        f"the denial ({got.describe(env.case_start)}) nor a registration through the VPN is that success"
    )
    if early:
        observed = j.show(early, env.case_start)
        if vpn is not None and any(o.path == VIA_VPN for o in early):
            observed += f" (answered through the VPN after {vpn.describe(env.case_start)})"
        return [Check(what, expected, observed, False, j.frames(got, vpn, early[:3], again))]
    note = ""
    if again is not None:
        _, echo = j.ping_answered(env, DIRECT, t, to=again.peer)
        later = [o for o in j.echo_replies(env.observations(), held) if o.at >= end]
        note = (
            f"; after the accepted registration: {len(later)} held echo requests answered (queue released), "
            f"a new one {'answered' if echo else 'not answered'}"
        )
    note += _restarted_before(env, a, last, lapse)
    return [Check(what, expected, "none" + note, True, j.frames(got, vpn, again))]


# ---------------------------------------------------------------- 3.3: a failed re-registration: stop, restart


def rereg_fail_restart(env: MnEnv) -> list[Check]:
    t = j.Timing(env)
    a = j.attach(env, _iface(env), "inside")
    reply = j.inside_reply(env, a, t)
    j.control_inside(env, a, t, reply)
    # Deny the re-registration, then silence at once: the restarted detection (which may follow the denial within
    # a millisecond on a real link) must get no direct i-HA answer, or a second denial would end it.
    env.set(IHA, "deny-once")
    since = env.now()

    def denial() -> list[Obs]:
        return j.replies(env.observations(since), IHA, path=DIRECT, coa=a.coa, accepted=False)

    wait = t.t_monitor - t.grace + 2 * t.tol
    got = j.wait_for(env, denial, wait)
    if got is None:
        raise Inconclusive(
            f"no re-registration reached the i-HA from {a.coa} within T_MONITOR - N + 2 x tolerance ({wait:.1f} s) "
            f"to deny; observed: {j.show(j.arrived(env.observations(since)), env.case_start)}"
        )
    env.set(IHA, "silent")  # the restarted detection gets no direct i-HA answer: the device must not be inside
    end = got.at + 2 * t.tol
    # 3.5 MAY: a device that believes it is inside may postpone the x-HA request "for some time"; give it
    # until its i-HA requests would have gone unanswered for a whole detection (restart means both, 3.3).
    end_xha = end + t.settle + t.t_monitor

    def after() -> tuple[list[Obs], list[Obs]]:
        log = [o for o in env.observations(got.at) if o.frame > got.frame]  # sent after the denial went out
        return (
            j.requests(log, IHA, path=DIRECT, coa=a.coa, until=end, lifetime="nonzero", valid=False),
            j.requests(log, XHA, coa=a.coa, until=end_xha, lifetime="nonzero", valid=False),
        )

    def seen_enough() -> bool:  # plaintext probed for one tolerance, and both restart requests seen
        return env.now() >= got.at + t.tol and all(after())

    sent = j.pings_over(env, DIRECT, end_xha - env.now(), max(0.1, t.tol / 4), to=got.peer, stop=seen_enough)
    env.wait(t.crossing)
    leaks = j.echo_replies(env.observations(), sent)
    iha, xha = after()
    stop = Check(
        "no plaintext after the re-registration failed",
        f"no echo reply to {len(sent)} echo requests sent through the direct i-HA tunnel after the denial "
        f"({got.describe(env.case_start)})",
        j.show(leaks, env.case_start, empty="none"),
        not leaks,
        j.frames(got, leaks[:3]),
        rule_id="5265-3.3-REREG-FAIL-STOP-PLAINTEXT",
    )
    missing = [name for name, found in (("i-HA", iha), ("x-HA", xha)) if not found]
    restart = Check(
        "the device restarts detection after the re-registration failed",
        f"new requests from {a.coa} to the i-HA within {end - got.at:.2f} s of the denial and to the x-HA "
        f"within {end_xha - got.at:.2f} s (3.5 lets it postpone the x-HA)",
        f"i-HA: {j.show(iha[:1], env.case_start, empty='none')}; x-HA: {j.show(xha[:1], env.case_start, empty='none')}"
        + (f" (missing: {' and '.join(missing)} after {got.describe(env.case_start)})" if missing else ""),
        not missing,
        j.frames(got, iha[:1], xha[:1]),
        rule_id="5265-3.3-REREG-FAIL-RESTART-DETECTION",
    )
    return [stop, restart]


# ---------------------------------------------------------------- 3.2.2: a status change stops data at once


def status_change_stop(env: MnEnv) -> list[Check]:
    t = j.Timing(env)
    p = env.profile
    iface = _iface(env)
    a = j.attach(env, iface, "inside")
    reply = j.inside_reply(env, a, t)
    j.control_inside(env, a, t, reply)
    inside_2 = len(p.interfaces) == 1 and bool(p.networks.get("inside_2"))
    if inside_2:  # to another inside network; the i-HA's reply there is held: detection ends when it is sent
        env.set(IHA, "hold")
        env.set(XHA, "silent")
        b = j.attach(env, iface, "inside", p.networks["inside_2"], fresh=False)
    else:  # to the outside: detection ends with the registration through the VPN
        b = j.attach(env, iface, "outside", fresh=False)
    port = j.device_port(env, b.coa, b.at, timeout=t.tol)
    every = max(0.1, t.tol / 4)
    if inside_2:
        sent = j.pings_over(env, DIRECT, t.detection + t.tol, every, to=(b.coa, port))
        env.release(IHA)
        end_obs = j.inside_reply(env, b, t)
    else:

        def done() -> bool:
            return j.vpn_up(env, b, t, b.at, timeout=0.0) is not None

        sent = j.pings_over(env, DIRECT, t.settle, every, to=(b.coa, port), stop=done)
        vpn = j.vpn_up(env, b, t, b.at, timeout=0.0)
        end_obs = vpn
    end = end_obs.at if end_obs is not None else env.now()
    env.wait(t.crossing)
    early = [o for o in j.echo_replies(env.observations(), sent) if o.at < end]
    how = "the held TNC reply at" if inside_2 else "the registration through the VPN at"
    what = f"no user data between the move to {b.network} ({b.coa}) and the end of detection"
    expected = (
        f"no echo reply, before detection ended ({how} {_since(env, end) if end_obs else 'never'}), to {len(sent)} "
        f"echo requests sent to {b.coa}:{port} after the move"
    )
    if early:
        return [Check(what, expected, j.show(early, env.case_start), False, j.frames(early[:3], end_obs))]
    if end_obs is None:
        observed = f"none; detection did not end within {t.settle:.1f} s"
        return [Check(what, expected, observed, True, ())]
    return [Check(what, expected, f"none; {end_obs.describe(env.case_start)}", True, j.frames(end_obs))]


# ---------------------------------------------------------------- 3.2.1: each interface on its own


def needs_two_interfaces(profile: MobileNodeProfile) -> str | None:
    if len(profile.interfaces) < 2:
        return "the profile has one interface ([dut].interfaces): 3.2.1 needs one inside and one outside at once"
    return needs_distinct_addresses(profile)


def per_interface(env: MnEnv) -> list[Check]:
    t = j.Timing(env)
    first, second = _iface(env, 0), _iface(env, 1)
    a = j.attach(env, first, "inside")
    reply = j.inside_reply(env, a, t)
    j.control_inside(env, a, t, reply)
    env.set(XHA, "silent")  # the outside interface can complete no detection
    try:
        b = j.attach(env, second, "outside")
        port = j.device_port(env, b.coa, b.at, timeout=t.tol)
        every = max(0.1, t.tol / 4)
        sent = j.pings_over(env, DIRECT, t.detection + t.tol, every, to=(b.coa, port))
        control, echo = j.ping_answered(env, DIRECT, t, to=reply.peer)
        env.wait(t.crossing)
        leaks = j.echo_replies(env.observations(), sent)
    finally:
        j.detach(env, second)
    what = f"an inside verdict on {first} lets no plaintext through {second} (outside, x-HA silent)"
    expected = f"no echo reply to {len(sent)} echo requests tunnelled to {second}'s care-of address {b.coa}:{port}"
    if leaks:
        return [Check(what, expected, j.show(leaks, env.case_start), False, j.frames(reply, leaks[:3]))]
    if echo is None:
        observed = f"none, but {first} ({a.coa}) no longer answered either: cannot tell"
        return [Check(what, expected, observed, None, j.frames(reply))]
    observed = f"none, while {first} still answered: {echo.describe(env.case_start)}"
    return [Check(what, expected, observed, True, j.frames(reply, echo))]


# ---------------------------------------------------------------- 3.5: one address for both home agents


def needs_same_address(profile: MobileNodeProfile) -> str | None:
    if profile.same_home_agent:
        return None
    return (
        f"the i-HA ({profile.i_ha.address}) and the x-HA ({profile.x_ha.address}) have different addresses "
        "(3.5 applies only when they are the same)"
    )


def same_ha_outside(env: MnEnv) -> list[Check]:
    t = j.Timing(env)
    a = j.attach(env, _iface(env), "inside")

    def xha() -> list[Obs]:
        return j.requests(env.observations(a.at), XHA, coa=a.coa, lifetime="nonzero")

    env.wait_until(lambda: bool(xha()), t.settle)
    env.wait(t.detection + t.tol)
    vpn = j.vpn_up(env, a, t, a.at, timeout=t.tol)
    log = env.observations(a.at)
    direct = j.requests(log, IHA, path=DIRECT, coa=a.coa, valid=False)
    asked = xha()
    what = "with one address for the i-HA and the x-HA the device registers as outside, without detection"
    expected = (
        f"a registration of the x-HoA {env.profile.x_ha.home_address} and no direct request for the i-HoA "
        f"{env.profile.home_address} from {a.coa}"
    )
    if direct:
        return [Check(what, expected, j.show(direct, env.case_start), False, j.frames(direct[:3], asked[:1]))]
    if not asked:
        observed = f"no registration at all from {a.coa}: {j.show(j.arrived(log), env.case_start)}"
        return [Check(what, expected, observed, None, ())]
    observed = f"{asked[0].describe(env.case_start)}" + (f"; {vpn.describe(env.case_start)}" if vpn else "")
    return [Check(what, expected, observed, True, j.frames(asked[:1], vpn))]


# ---------------------------------------------------------------- 2.3, 4.1: the VPN layer is never skipped


def no_vpn_skip(env: MnEnv) -> list[Check]:
    t = j.Timing(env)
    a = j.attach(env, _iface(env), "outside")
    port = j.device_port(env, a.coa, a.at, timeout=t.tol)
    vpn = j.vpn_up(env, a, t, a.at)
    vpn_sent, vpn_echo = j.ping_answered(env, VIA_VPN, t) if vpn is not None else ([], None)
    plain = j.pings_over(env, DIRECT, t.tol / 2, max(0.1, t.tol / 6), to=(a.coa, port))
    env.wait(t.crossing)
    log = env.observations(a.at)
    checks = []
    # (a) the x-HA's tunnel carries ESP to the gateway and nothing else
    tunnel = [o for o in log if o.direction == IN and o.kind == "tunnel" and (o.outer or o.peer)[0] == a.coa]
    bare = [o for o in tunnel if not o.esp_to_gateway]
    checks.append(
        Check(
            "the x-HA's tunnel carries only ESP in UDP to the VPN gateway",
            f"every Tunnel Data from {a.coa} to the x-HA: IPv4 to {env.profile.vpn.gateway}, UDP to port "
            f"{env.profile.vpn.port}, ESP",
            f"{len(tunnel)} tunnel datagrams, {len(bare)} without ESP"
            + (f": {j.show(bare, env.case_start)}" if bare else ""),
            not bare,
            j.frames(bare[:3]),
            rule_id="5265-2.3-NO-VPN-SKIP",
        )
    )
    # (b) a plaintext echo request is not answered; judged only when the device answers through the VPN
    leaks = j.echo_replies(env.observations(), plain)
    what = "an echo request in plaintext on the outside network is not answered"
    expected = (
        f"no echo reply to {len(plain)} echo requests tunnelled in plaintext to {a.coa}:{port}, while one through "
        "the VPN is answered"
    )
    if leaks:
        checks.append(
            Check(
                what,
                expected,
                j.show(leaks, env.case_start),
                False,
                j.frames(leaks[:3]),
                rule_id="5265-2.3-NO-VPN-SKIP",
            )
        )
    elif vpn_echo is not None and vpn_echo.path == VIA_VPN:
        checks.append(
            Check(
                what, expected, f"none; through the VPN: {vpn_echo.describe(env.case_start)}", True, j.frames(vpn_echo)
            )
        )
    else:
        why = (
            "no registration through the VPN was accepted"
            if vpn is None
            else f"{len(vpn_sent)} echo requests through the VPN got no reply through it"
        )
        checks.append(Check(what, expected, f"none, but {why}: cannot tell", None, j.frames(vpn)))
    # (c) nothing for the enterprise in plaintext from the outside care-of address
    plaintext = [
        o
        for o in log
        if o.direction == IN
        and o.path in (DIRECT, VIA_XHA)
        and o.peer[0] == a.coa
        and (
            o.kind in ("echo-reply", "data")
            or o.kind == "request"
            and o.care_of_address == env.profile.vpn.inner_address
        )
    ]
    checks.append(
        Check(
            "nothing for the enterprise leaves the outside interface without ESP",
            f"no echo reply, user data or VPN-TIA registration from {a.coa} outside ESP",
            j.show(plaintext, env.case_start, empty="none"),
            not plaintext,
            j.frames(plaintext[:3]),
            rule_id="5265-4.1-ENCRYPT-ALL-OUTSIDE",
        )
    )
    # (d) the inner registration asks for reverse tunnelling (SHOULD)
    inner = j.requests(log, IHA, path=VIA_VPN, coa=a.coa)
    checks.append(
        Check(
            "the registration through the VPN sets the 'T' bit (reverse tunnelling)",
            "flag T on every registration of the VPN-TIA with the i-HA",
            j.show(
                [o for o in inner if not o.t_bit] or inner[:1], env.case_start, empty="no registration through the VPN"
            ),
            all(o.t_bit for o in inner) if inner else None,
            j.frames(inner[:3]),
            level="SHOULD",
            rule_id="5265-2.3-IMIP-TBIT",
        )
    )
    return checks


# ---------------------------------------------------------------- 3.3 last paragraph, 3.5: a late i-HA reply wins


def late_iha_switch(env: MnEnv) -> list[Check]:
    t = j.Timing(env)
    iface = _iface(env)
    a = j.attach(env, iface, "inside")
    reply = j.inside_reply(env, a, t)
    j.control_inside(env, a, t, reply)
    env.set(IHA, "hold")  # the i-HA's reply comes after the detection period
    b = j.attach(env, iface, "inside")
    vpn = j.vpn_up(env, b, t, b.at, timeout=t.detection + 3 * t.tol)
    held = j.requests(env.observations(b.at), IHA, path=DIRECT, coa=b.coa, lifetime="nonzero")
    if not held:
        raise Inconclusive(f"the device asked the i-HA nothing from {b.coa}: no reply to send late")
    env.set(IHA, "answer", pending=True)
    late = j.inside_reply(env, b, t)
    sent, echo = j.ping_answered(env, DIRECT, t, to=late.peer, attempts=4, window=t.detection + 2 * t.tol)
    direct = [o for o in j.echo_replies(env.observations(), sent) if o.path == DIRECT]
    went = (
        f"it had gone outside first ({vpn.describe(env.case_start)})"
        if vpn
        else "it had not gone outside (no registration through the VPN)"
    )
    what = "after an i-HA reply that comes after the x-HA's, the device uses the i-HA directly"
    expected = (
        f"an echo reply through the direct i-HA tunnel after the late TNC reply ({late.describe(env.case_start)})"
    )
    if direct:
        return [
            Check(what, expected, f"{direct[0].describe(env.case_start)}; {went}", True, j.frames(vpn, late, direct[0]))
        ]
    vpn_sent, vpn_echo = j.ping_answered(env, VIA_VPN, t) if vpn is not None else ([], None)
    if vpn_echo is None:
        observed = f"no echo reply to {len(sent)} direct and {len(vpn_sent)} VPN echo requests: cannot tell; {went}"
        return [Check(what, expected, observed, None, j.frames(vpn, late))]
    observed = f"none to {len(sent)} direct echo requests; it stayed outside: {vpn_echo.describe(env.case_start)}"
    return [Check(what, expected, observed, False, j.frames(vpn, late, vpn_echo))]


# ---------------------------------------------------------------- 3.3: de-register with the x-HA once inside


def xha_dereg(env: MnEnv) -> list[Check]:
    t = j.Timing(env)
    env.set(IHA, "hold")  # the x-HA answers first, so there is a registration to undo
    a = j.attach(env, _iface(env), "inside")
    xr = j.xha_reply(env, a, t)
    env.set(IHA, "answer", pending=True)
    if xr is None:
        raise Inconclusive(
            f"no x-HA registration from {a.coa} was accepted within {t.settle:.1f} s: nothing to de-register; "
            f"observed: {j.show(j.arrived(env.observations(a.at)), env.case_start)}"
        )
    reply = j.inside_reply(env, a, t)
    j.control_inside(env, a, t, reply)

    def dereg() -> list[Obs]:
        return j.requests(env.observations(reply.at), XHA, coa=a.coa, lifetime="zero")

    got = j.wait_for(env, dereg, 2 * t.tol)
    what = "once registered with the i-HA directly the device de-registers with the x-HA"
    expected = f"a lifetime-0 request to the x-HA from {a.coa} within {2 * t.tol:.2f} s of the i-HA's reply"
    if got is not None:
        return [Check(what, expected, got.describe(env.case_start), True, j.frames(xr, reply, got))]
    later = j.requests(env.observations(reply.at), XHA, coa=a.coa, valid=False)
    observed = f"none after {reply.describe(env.case_start)}" + (
        f"; x-HA saw: {j.show(later, env.case_start)}" if later else ""
    )
    return [Check(what, expected, observed, False, j.frames(xr, reply))]


# ---------------------------------------------------------------- the table

CASES: tuple[MnCase, ...] = (
    MnCase(
        "MN-PARALLEL-DETECT",
        "After a move, registration requests reach the i-HA and the x-HA at the same time",
        # 3.3 is a "proposed algorithm" without a keyword of its own; section 3's MUST is a mechanism that
        # meets 3.2, which another mechanism may do too: a sequential device warns, it does not fail.
        "SHOULD",
        "RFC 5265 3.3",
        ("5265-3-DETECTION-MECHANISM",),
        ("sequential-detection",),
        parallel_detect,
        needs_distinct_addresses,
    ),
    MnCase(
        "MN-TNC-MEANS-INSIDE",
        "A trusted i-HA reply (with TNC) makes the device use the i-HA directly",
        "SHOULD",
        "RFC 5265 3.3, 4.1",
        ("5265-3.3-TNC-MEANS-INSIDE", "5265-4.1-INNER-LAYER-ONLY-INSIDE"),
        ("ignore-tnc",),
        tnc_means_inside,
        needs_distinct_addresses,
    ),
    MnCase(
        "MN-TNC-REQUIRED",
        "An i-HA reply without TNC does not make the device inside",
        "MUST",
        "RFC 5265 3.2.3, 4.1",
        ("5265-3.2.3-TNC-BEFORE-INSIDE", "5265-4.1-KEEP-IPSEC-WITHOUT-TNC"),
        ("inside-without-tnc",),
        tnc_required,
        needs_distinct_addresses,
    ),
    MnCase(
        "MN-TNC-UNAUTHENTICATED",
        "A TNC extension after the MN-HA authenticator does not make the device inside",
        "MUST",
        "RFC 5265 4.1, 3.2.3",
        ("5265-4.1-KEEP-IPSEC-WITHOUT-TNC", "5265-3.2.3-TNC-BEFORE-INSIDE"),
        ("trust-unauthenticated-tnc",),
        tnc_unauthenticated,
        needs_distinct_addresses,
    ),
    MnCase(
        "MN-IHA-RETRANSMIT",
        "After the x-HA answered, the device keeps asking the i-HA for the detection period",
        "MUST",
        "RFC 5265 3.3",
        ("5265-3.3-KEEP-RETRANSMITTING-IHA",),
        ("stop-iha-after-xha",),
        iha_retransmit,
        needs_detection_period,
    ),
    MnCase(
        "MN-STOP-RETRANSMIT",
        "An i-HA reply stops the retransmissions to both home agents",
        "MUST",
        "RFC 5265 3.3",
        ("5265-3.3-STOP-RETRANSMITTING",),
        ("keep-retransmitting",),
        stop_retransmit,
        needs_distinct_addresses,
    ),
    MnCase(
        "MN-TMONITOR-REREG",
        "Inside, accepted i-HA registrations are never more than T_MONITOR apart, data flowing or not",
        "MUST",
        "RFC 5265 3.2.4, 3.3",
        ("5265-3.3-INSIDE-REREGISTER", "5265-3.2.4-REREG-DESPITE-TRAFFIC", "5265-2.1-PERIODIC-REREG"),
        ("no-tmonitor-rereg", "no-rereg-while-data"),
        tmonitor_rereg,
        needs_distinct_addresses,
    ),
    MnCase(
        "MN-TMONITOR-GATE",
        "No user data once T_MONITOR has passed since the last accepted i-HA registration",
        "MUST",
        "RFC 5265 3.2.4",
        ("5265-3.2.4-NO-DATA-AFTER-TMONITOR", "5265-3.2.4-DROP-OR-QUEUE"),
        ("data-after-tmonitor",),
        tmonitor_gate,
        needs_distinct_addresses,
    ),
    MnCase(
        "MN-QUEUE-HELD",
        "Data held after T_MONITOR is not released before a successful re-registration",
        "MUST",
        "RFC 5265 3.2.4",
        ("5265-3.2.4-QUEUE-HELD",),
        ("release-queue-early",),
        queue_held,
        needs_distinct_addresses,
    ),
    MnCase(
        "MN-REREG-FAIL-RESTART",
        "A failed re-registration stops plaintext and restarts detection",
        "MUST",
        "RFC 5265 3.3",
        ("5265-3.3-REREG-FAIL-STOP-PLAINTEXT", "5265-3.3-REREG-FAIL-RESTART-DETECTION"),
        ("plaintext-after-rereg-failure", "no-restart-after-rereg-failure"),
        rereg_fail_restart,
        needs_distinct_addresses,
    ),
    MnCase(
        "MN-STATUS-CHANGE-STOP",
        "After a connection status change no user data flows until detection has ended",
        "MUST",
        "RFC 5265 3.2.2",
        ("5265-3.2.2-STATUS-CHANGE",),
        ("data-through-status-change",),
        status_change_stop,
        needs_distinct_addresses,
    ),
    MnCase(
        "MN-PER-INTERFACE",
        "An inside interface lets no plaintext through another interface that is outside",
        "MUST",
        "RFC 5265 3.2.1",
        ("5265-3.2.1-PER-INTERFACE",),
        ("shared-interface-verdict",),
        per_interface,
        needs_two_interfaces,
    ),
    MnCase(
        "MN-SAME-HA-OUTSIDE",
        "With one address for the i-HA and the x-HA the device registers as outside, never directly with the i-HA",
        "MUST",
        "RFC 5265 3.5",
        ("5265-3.5-SAME-ADDRESS-MEANS-OUTSIDE",),
        ("detect-with-same-ha",),
        same_ha_outside,
        needs_same_address,
    ),
    MnCase(
        "MN-NO-VPN-SKIP",
        "Outside, everything for the enterprise goes through the VPN (ESP through the x-HA), 'T' set inside it",
        "MUST",
        "RFC 5265 2.3, 4.1",
        ("5265-2.3-NO-VPN-SKIP", "5265-4.1-ENCRYPT-ALL-OUTSIDE", "5265-2.3-IMIP-TBIT"),
        ("skip-vpn", "no-inner-t-bit"),
        no_vpn_skip,
    ),
    MnCase(
        "MN-LATE-IHA-SWITCH",
        "A TNC reply from the i-HA after the device went outside switches it to the i-HA directly",
        "SHOULD",
        "RFC 5265 3.3, 3.5",
        ("5265-3.3-LATE-IHA-REPLY", "5265-3.5-SWITCH-TO-IHA"),
        ("ignore-late-iha",),
        late_iha_switch,
        needs_distinct_addresses,
    ),
    MnCase(
        "MN-XHA-DEREG",
        "Once registered with the i-HA directly, the device de-registers with the x-HA",
        "SHOULD",
        "RFC 5265 3.3",
        ("5265-3.3-DEREGISTER-XHA",),
        ("no-xha-dereg",),
        xha_dereg,
        needs_distinct_addresses,
    ),
)

#: (case, fault) pairs that grade WARN although the case is MUST: the fault breaks a SHOULD the case also checks.
WARN_UNDER: frozenset[tuple[str, str]] = frozenset({("MN-NO-VPN-SKIP", "no-inner-t-bit")})

__all__ = ["CASES", "WARN_UNDER", "MnCase"]
