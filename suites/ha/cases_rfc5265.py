"""Cases for RFC 5265 section 4.3 (and 3.4): what an internal home agent must do about trust.

Each function plays the mobile node and returns checks; the case table in
``suites/ha/__init__.py`` gives each its public id, level and fault. Silence
is only evidence when the device is known to be alive, so every "no reply"
case also runs a control exchange from a trusted source in the same window.
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import replace

from mipcheck.engine.control import DeviceControl
from mipcheck.engine.evidence import Datagram
from mipcheck.engine.profile import Profile
from mipcheck.engine.runner import CaseContext
from mipcheck.engine.verdicts import Check, Inconclusive, TesterError

from . import exchange, judge
from . import probes_trust as probes
from .exchange import ask, control, listen, new_request, trusted_source, untrusted_sources
from .messages import flip_authenticator, icmp_echo, tunnel_data, udp_tunnel_request

# ------------------------------------------------------------------ applicability


def needs_trusted_networks(profile: Profile, _control: DeviceControl) -> str | None:
    if profile.flag("trusted_networks"):
        return None
    return (
        "the profile says the device keeps no trusted-subnet list (dut.role / applicability.trusted_networks): RFC "
        "5265 4.3 binds the i-HA"
    )


def needs_unconfigured_start(profile: Profile, control: DeviceControl) -> str | None:
    why = needs_trusted_networks(profile, control)
    if why:
        return why
    if not control.can_start_unconfigured():
        return (
            "the profile gives no way to bring the device up with no trusted subnet (commands.start_unconfigured / "
            "stop_unconfigured)"
        )
    return None


def needs_nat_traversal(profile: Profile, _control: DeviceControl) -> str | None:
    if profile.flag("nat_traversal"):
        return None
    return (
        "the profile declares no Mobile IPv4 NAT traversal (applicability.nat_traversal = false); RFC 5265 4.3 says "
        "SHOULD"
    )


def unconfigured_exclusive(_profile: Profile, control: DeviceControl) -> bool:
    return not control.unconfigured_separate


# ------------------------------------------------------------------ 4.3: drop untrusted sources


def _accepted(what: str, sent, reply, req) -> Check:
    return judge.check_accepted(what, sent, reply, req)


def _control(ctx: CaseContext, ep, purpose: str, **kw):
    """The conforming request from the trusted endpoint; inconclusive when it is not accepted."""
    return exchange.control(ctx, ep, purpose=purpose, **kw)


def _clear_bindings(ctx: CaseContext, tep) -> None:
    """No binding for the home address: de-register every binding (CoA = home address, RFC 5944 3.8.2.2)
    from the trusted endpoint, or, if the device refuses that form, the binding at the endpoint's own address."""
    home = ctx.mn.home_address
    req = new_request(ctx, care_of_address=home, lifetime=0)
    sent, reply = ask(ctx, tep, req, note="de-registration of every binding (fresh state)")
    if _accepted("de-registration of every binding", sent, reply, req).ok:
        return
    ctx.note(
        f"de-registration of every binding not accepted ({judge.describe(reply)}); de-registering CoA {tep.address} "
        "instead"
    )
    _control(
        ctx,
        tep,
        f"control: de-registration of the binding at {tep.address} from the trusted source (no binding left)",
        lifetime=0,
    )


def _unknown_spi(mn) -> int:
    spi = (mn.spi + 0x5A5A) % 2**32
    return spi if spi >= 256 else spi + 256


def _untrusted_net(ctx: CaseContext, places: probes.Places) -> list[tuple[str, str, object]]:
    """(source, claimed Care-of Address, probe socket) per untrusted source, with listeners where replies must not go.

    The CoA is another untrusted source (an address the tester can bind), so a
    device that answers the CoA instead of the source is caught there, at the
    probe's port and at 434; port 434 of the source is listened on too.
    """
    srcs = untrusted_sources(ctx)
    out = []
    for i, src in enumerate(srcs):
        coa = srcs[(i + 1) % len(srcs)]
        ep = probes.paired_endpoints(
            ctx, src, coa, places, f"the claimed Care-of Address {coa}, at the request's source port"
        )
        places.add_probe(ep, f"the untrusted source {src}")
        places.add(src, probes.MIP_PORT, f"port 434 of the untrusted source {src}")
        places.add(coa, probes.MIP_PORT, f"port 434 of the claimed Care-of Address {coa}")
        out.append((src, coa, ep))
    return out


def _send_probes(ctx: CaseContext, net, kinds) -> list[probes.Probe]:
    sent = []
    for src, coa, ep in net:
        for label, make in kinds:
            req = make(src, coa)
            sent.append(
                probes.Probe(
                    f"{label} from untrusted {src} (CoA {coa})",
                    req,
                    ep.send(req.data, ctx.target, note=f"untrusted {src}: {label}"),
                )
            )
    return sent


def untrusted_drop(ctx: CaseContext) -> list[Check]:
    """Requests from untrusted sources get no reply anywhere, and change no binding (RFC 5265 4.3).

    Branches probed (where C implementations of the source check go wrong):

    * a fresh, valid registration for a home address without a binding (the
      trusted source first de-registers it): the plain check;
    * a renewal of a live binding (registered from the trusted source just
      before): implementations that skip the check for known home addresses;
    * a de-registration (Lifetime 0) of that binding: de-registrations handled
      before, or outside, the trust check;
    * a wrong authenticator, an unknown SPI, no authenticator: an HA that
      authenticates before the trust check answers 131 instead of silence;
    * the 'T' bit and a UDP Tunnel Request: option paths that bypass the check.

    Replies are listened for at the probe's socket, at port 434 of the source
    and at the claimed Care-of Address (at the probe's port and 434); any
    reply anywhere fails, naming where it went. After the probes that target
    the live binding the binding is compared with its state before (when the
    device shows it), and a trusted control shows the device alive.
    """
    probes.run_log_baseline(ctx)
    home = ctx.mn.home_address
    silence = ctx.profile.silence
    tep = ctx.endpoint(trusted_source(ctx))
    checks: list[Check] = []
    with probes.Places(ctx) as places:
        net = _untrusted_net(ctx, places)
        where = "the source, its port 434 and the claimed Care-of Address"

        # 1. no binding: the trusted source de-registers every binding of the home address first.
        _clear_bindings(ctx, tep)
        fresh = _send_probes(
            ctx,
            net,
            [
                (
                    "valid registration for a home address without a binding",
                    lambda _s, c: new_request(ctx, care_of_address=c),
                )
            ],
        )
        checks += probes.judge_silence(fresh, places.drain(silence), silence, where)
        _req, sent, reply = _control(
            ctx, tep, "control: a valid registration from the trusted source (the live binding)"
        )
        checks.append(
            _accepted("control: registration from the trusted source after the untrusted ones", sent, reply, _req)
        )

        # 2.-4. the live binding: renewal, de-registration, then everything else; binding compared after each.
        rounds = [
            ("renewal", [("renewal of the live binding", lambda _s, c: new_request(ctx, care_of_address=c))]),
            (
                "de-registration",
                [
                    (
                        "de-registration (Lifetime 0) of every binding",
                        lambda _s, _c: new_request(ctx, care_of_address=home, lifetime=0),
                    )
                ],
            ),
            (
                "requests failing authentication and option requests",
                [
                    (
                        "renewal with a wrong authenticator",
                        lambda _s, c: flip_authenticator(new_request(ctx, care_of_address=c), 0),
                    ),
                    (
                        "renewal with an unknown SPI",
                        lambda _s, c: new_request(ctx, care_of_address=c, spi=_unknown_spi(ctx.mn)),
                    ),
                    (
                        "renewal without an authenticator",
                        lambda _s, c: new_request(ctx, care_of_address=c, authenticate=False),
                    ),
                    (
                        "renewal with the 'T' bit",
                        lambda _s, c: new_request(ctx, care_of_address=c, reverse_tunnel=True),
                    ),
                    (
                        "renewal with a UDP Tunnel Request",
                        lambda s, c: new_request(
                            ctx, care_of_address=c, before_auth=[udp_tunnel_request(force=s == c)]
                        ),
                    ),
                ],
            ),
        ]
        for what, kinds in rounds:
            before = probes.binding_state(ctx, home)
            sent_probes = _send_probes(ctx, net, kinds)
            checks += probes.judge_silence(sent_probes, places.drain(silence), silence, where)
            kept = probes.check_binding_kept(
                ctx, home, before, f"the untrusted {what}", tuple(p.sent.frame for p in sent_probes)
            )
            if kept is not None:
                checks.append(kept)
            _req, sent, reply = _control(
                ctx, tep, f"control: a valid registration from the trusted source after the untrusted {what}"
            )
            checks.append(_accepted(f"control after the untrusted {what}", sent, reply, _req))
        if probes.binding_state(ctx, home) is None:
            ctx.note("the device shows no binding state: judged on silence alone")
    return checks


def source_not_coa(ctx: CaseContext) -> list[Check]:
    """Trust is decided by the IP source, never by a trusted address in the Care-of Address field.

    Branches probed, all from an untrusted source claiming the trusted source's
    address as Care-of Address:

    * a fresh registration (no binding): trust taken from the CoA field;
    * a renewal identical to the live binding but for its source: trust taken
      from "the CoA is already registered" (a binding made from inside);
    * a de-registration of that CoA: the same shortcut on removal.

    Replies are listened for at the probe socket, at the claimed CoA (at the
    probe's port and 434) and at port 434 of the source; the live binding is
    compared before and after (when the device shows it); a trusted control
    after each round shows the device alive.
    """
    probes.run_log_baseline(ctx)
    src = untrusted_sources(ctx)[0]
    coa = trusted_source(ctx)
    home = ctx.mn.home_address
    silence = ctx.profile.silence
    checks: list[Check] = []
    with probes.Places(ctx) as places:
        ep = probes.paired_endpoints(
            ctx, src, coa, places, f"the claimed trusted Care-of Address {coa}, at the request's source port"
        )
        places.add_probe(ep, f"the untrusted source {src}")
        places.add(src, probes.MIP_PORT, f"port 434 of the untrusted source {src}")
        places.add(coa, probes.MIP_PORT, f"port 434 of the claimed Care-of Address {coa}")
        tep = ctx.endpoint(coa)
        where = f"{src}, its port 434 and the claimed Care-of Address {coa}"
        _clear_bindings(ctx, tep)
        rounds = [
            ("registration for a home address without a binding", None, {}),
            ("renewal of the live binding registered from that CoA", "renewal", {}),
            ("de-registration of the live binding at that CoA", "de-registration", {"lifetime": 0}),
        ]
        for label, state, kw in rounds:
            before = probes.binding_state(ctx, home) if state else None
            req = new_request(ctx, care_of_address=coa, **kw)
            p = probes.Probe(
                f"{label}, from untrusted {src} claiming CoA {coa}",
                req,
                ep.send(req.data, ctx.target, note=f"untrusted {src}, trusted CoA {coa}: {label}"),
            )
            checks += probes.judge_silence([p], places.drain(silence), silence, where)
            if state:
                kept = probes.check_binding_kept(
                    ctx, home, before, f"the untrusted {state} claiming CoA {coa}", (p.sent.frame,)
                )
                if kept is not None:
                    checks.append(kept)
            _req, sent, reply = _control(
                ctx, tep, f"control: a valid registration from the trusted source {coa} (the live binding)"
            )
            checks.append(_accepted(f"control after the untrusted {state or 'registration'}", sent, reply, _req))
    return checks


def trust_none_default(ctx: CaseContext) -> list[Check]:
    """With no trusted subnet configured, even a request from a (normally) trusted source is dropped."""
    address, port = ctx.control.start_unconfigured()
    try:
        target = (address, port)
        ep = ctx.endpoint(trusted_source(ctx))
        home_agent = address if address != ctx.profile.dut_address else None
        req = new_request(ctx, care_of_address=ep.address, home_agent=home_agent, target=target)
        sent = ep.send(req.data, target, note="valid request to the device with no trusted subnet")
        got = listen(ctx, ep)
    finally:
        ctx.control.stop_unconfigured()
    ctx.note("no control exchange is possible here: with no trusted subnet every source is untrusted")
    return [
        judge.check_silent(f"reply from the unconfigured device at {address}:{port}", sent, got, ctx.profile.silence)
    ]


def _new_lines(before: str, after: str) -> list[str]:
    if after.startswith(before):
        return [line for line in after[len(before) :].splitlines() if line.strip()]
    old = set(before.splitlines())
    return [line for line in after.splitlines() if line.strip() and line not in old]


def names_address(line: str, address: str) -> bool:
    """``address`` appears in ``line`` as a whole address (127.0.0.6 is not in 127.0.0.66)."""
    return re.search(rf"(?<![\d.]){re.escape(address)}(?![\d])", line) is not None


_ACCEPTED_WORDS = ("accept", "registered", "granted")
_DROPPED_WORDS = ("drop", "untrust", "den", "reject", "discard", "refus", "ignor", "block")


def says_accepted(line: str) -> bool:
    """A log line that reports an acceptance rather than a drop (e.g. ``outcome=accepted``)."""
    low = line.lower()
    return any(w in low for w in _ACCEPTED_WORDS) and not any(w in low for w in _DROPPED_WORDS)


def untrusted_log(ctx: CaseContext) -> list[Check]:
    """A dropped request from an untrusted source leaves a line naming that source in the device's log.

    Branches: the device may log each dropped request, or (legitimately:
    rate limiting, deduplication) each source once. Other cases of the run
    send from the same untrusted sources, so the line may already have been
    written for one of theirs: a line naming the source that appeared since
    the run's first untrusted request (the per-run baseline) counts; a line
    for this case's own request is preferred as evidence.
    """
    baseline = probes.run_log_baseline(ctx)
    before = ctx.control.read_log()
    if before is None or baseline is None:
        raise Inconclusive("the profile gives no way to read the device's log (commands.read_log)")
    src = untrusted_sources(ctx)[0]
    ep = ctx.endpoint(src)
    req = new_request(ctx, care_of_address=src)
    sent = ep.send(req.data, ctx.target, note=f"request from untrusted {src}, to be dropped and logged")
    got = listen(ctx, ep)
    if got:
        raise Inconclusive(
            f"the device answered the untrusted request ({judge.describe(got[0])}), so nothing was dropped to log; see "
            "HA-UNTRUSTED-DROP"
        )
    # Silence is not a drop when the reply could not come back (no route to the untrusted source): a binding
    # from it, or a log line saying it was accepted, shows the request was not dropped at all.
    bound = probes.binding_state(ctx, req.home_address)
    if bound and any(src in pair for pair in bound):
        raise Inconclusive(
            f"the device accepted the untrusted request ({probes.describe_bindings(bound)}) though no reply came "
            "back, so nothing was dropped to log; see HA-UNTRUSTED-DROP"
        )
    hits: list[str] = []
    earlier: list[str] = []
    new: list[str] = []
    accepting: list[str] = []
    for _ in range(3):  # logs may be written a moment after the drop
        log = ctx.control.read_log() or ""
        new = _new_lines(before, log)
        naming = [line for line in new if names_address(line, src)]
        accepting = [line for line in naming if says_accepted(line)]
        hits = [line for line in naming if not says_accepted(line)]
        if hits:
            break
        earlier = [line for line in _new_lines(baseline, log) if names_address(line, src) and not says_accepted(line)]
        listen(ctx, ep)
    ctx.attach("log.txt", "\n".join(new) + "\n" if new else "(no new log lines)\n")
    if accepting and not hits:
        raise Inconclusive(
            f"the device's log says it accepted the untrusted request though no reply came back: {accepting[0][:200]}"
            "; see HA-UNTRUSTED-DROP"
        )
    if hits:
        observed = f"new log line: {hits[0][:200]}"
    elif earlier:
        observed = (
            f"no line for this request, but one for {src} earlier in this run (logged once per source): "
            f"{earlier[-1][:200]}"
        )
    else:
        observed = f"{len(new)} new log line(s), none naming {src}, and none naming it since the run began"
    expected = f"a log line naming the source {src}, written since the run's first untrusted request"
    return [Check("log of the dropped request", expected, observed, bool(hits or earlier), (sent.frame,))]


# ------------------------------------------------------------------ 4.3 and 3.4: the TNC extension


def _accepting_replies(ctx: CaseContext) -> list[tuple[str, Datagram]]:
    """Every accepting reply to a trusted source this sequence provokes, labelled (the case judges each).

    A de-registration of every binding (fresh state; its reply accepts too), a
    first registration, a renewal of the live binding, a renewal with the 'T'
    bit (judged when accepted; reverse tunnelling is optional) and, when NAT
    traversal applies, a registration with a UDP Tunnel Request behind a NAT,
    then a final de-registration.
    """
    ep = ctx.endpoint(trusted_source(ctx))
    home = ctx.mn.home_address
    out: list[tuple[str, Datagram]] = []
    # Fresh state first; a device that refuses this form of de-registration is still judged on the rest.
    req = new_request(ctx, care_of_address=home, lifetime=0)
    sent, reply = ask(ctx, ep, req, note="de-registration of every binding (fresh state)")
    if reply is not None and _accepted("the de-registration of every binding", sent, reply, req).ok:
        out.append(("the de-registration of every binding", reply))
    else:
        ctx.note(
            f"the de-registration of every binding was not accepted ({judge.describe(reply, req)}), so not judged here"
        )
    req, _sent, reply = _control(ctx, ep, "control: first registration from a trusted source")
    out.append(("the first registration", reply))
    optional: list[tuple[str, dict]] = [("the renewal of the live binding", {})]
    if ctx.profile.flag("reverse_tunneling") is not False:
        optional.append(("the renewal with the 'T' bit", {"reverse_tunnel": True}))
    if needs_nat_traversal(ctx.profile, ctx.control) is None:
        coa = ctx.profile.nat_care_of_address
        force = coa == ep.address
        optional.append(
            (
                f"the registration with a UDP Tunnel Request (CoA {coa} behind a NAT)",
                {"care_of_address": coa, "before_auth": [udp_tunnel_request(force=force)]},
            )
        )
    optional.append(("the final de-registration", {"lifetime": 0, "care_of_address": home}))
    for label, kw in optional:
        kw = dict(kw)
        req = new_request(ctx, care_of_address=kw.pop("care_of_address", ep.address), **kw)
        sent, reply = ask(ctx, ep, req, note=label)
        if reply is not None and _accepted(label, sent, reply, req).ok:
            out.append((label, reply))
        else:
            ctx.note(f"{label}: not accepted ({judge.describe(reply)}), so not judged here")
    return out


def tnc_included(ctx: CaseContext) -> list[Check]:
    """Every accepting reply to a trusted source carries TNC (RFC 5265 4.3).

    Branches: a first registration, a renewal of a live binding (a cached
    reply path), the 'T' bit and a UDP Tunnel Reply (other reply builders),
    de-registrations. Each reply is judged, not only the first.
    """
    return [
        judge.check_tnc_present(f"TNC in the accepting reply to {label}", reply)
        for label, reply in _accepting_replies(ctx)
    ]


def _each_reply_with_tnc(ctx: CaseContext, aspect: str, judge_one) -> list[Check]:
    """``judge_one(label, reply)`` for every accepting reply that carries a TNC (the rest is HA-TNC-INCLUDED's)."""
    checks: list[Check] = []
    for label, reply in _accepting_replies(ctx):
        if not probes.tnc_extensions(reply.payload):
            ctx.note(f"the reply to {label} carries no TNC (see HA-TNC-INCLUDED): no {aspect} to judge")
            continue
        checks += judge_one(label, reply)
    if not checks:
        raise Inconclusive(
            f"no accepting reply carried a TNC extension, so its {aspect} cannot be judged (see HA-TNC-INCLUDED)"
        )
    return checks


def tnc_format(ctx: CaseContext) -> list[Check]:
    """Each accepting reply has exactly one TNC, and every TNC in it is Type 149, Length 2, Sub-Type 0, Reserved 0.

    Branches: the replies of :func:`_accepting_replies`; every TNC in each
    (a second, malformed TNC fails even when the first is right).
    """
    return _each_reply_with_tnc(
        ctx, "format", lambda label, reply: probes.check_tnc_each_format(f"the reply to {label}", reply)
    )


def tnc_authenticated(ctx: CaseContext) -> list[Check]:
    """Every TNC of every accepting reply precedes the MN-HA authenticator, which verifies.

    Branches: the replies of :func:`_accepting_replies` (reply builders for
    renewals, 'T' bit and UDP tunnelling may place extensions differently);
    every TNC in each reply.
    """

    def judge_one(label: str, reply: Datagram) -> list[Check]:
        auth = judge.check_reply_authenticator(reply, ctx.mn)
        return [
            *probes.check_tnc_each_before_auth(f"the reply to {label}", reply),
            replace(auth, what=f"{auth.what} of the reply to {label}"),
        ]

    return _each_reply_with_tnc(ctx, "position", judge_one)


def tnc_on_denial(ctx: CaseContext) -> list[Check]:
    """4.3 read literally: every reply to a trusted source carries TNC, a denial too.

    The control shows the device accepts the conforming request from the same
    socket first: a device that denies everything for another reason (flags
    it requires) says nothing about its TNC on an authentication denial.
    """
    ep = ctx.endpoint(trusted_source(ctx))
    control(ctx, ep)
    req = flip_authenticator(new_request(ctx, care_of_address=ep.address), 0)
    sent, reply = ask(ctx, ep, req, note="request with a wrong authenticator, to be denied")
    if reply is None:
        raise Inconclusive(
            f"no reply within {ctx.profile.reply_timeout:g} s to a request with a wrong authenticator: no denial to "
            "judge"
        )
    accepted = judge.check_accepted("denial", sent, reply, req)
    if accepted.ok:
        raise Inconclusive("the device accepted a wrong authenticator (see MIP-AUTH-BAD): no denial to judge")
    return [judge.check_tnc_present("TNC in the denying reply to a trusted source", reply)]


# ------------------------------------------------------------------ 4.3 SHOULD: NAT traversal (RFC 3519)


def natt_udp_tunnel(ctx: CaseContext) -> list[Check]:
    """UDP Tunnel Request behind a "NAT" (source differs from CoA): Tunnel Reply, then data both ways.

    Branches: the UDP Tunnel Reply itself; MN->HA data decapsulated; HA->MN
    data sent to the registered endpoint (the NAT's public address and port).
    A device that tunnels to the wrong place (port 434 of the source, the
    private Care-of Address) is caught there and fails naming where it went,
    even without commands.send_to_home_address.
    """
    src = trusted_source(ctx)
    ep = ctx.endpoint(src)
    coa = ctx.profile.nat_care_of_address
    if coa == src:
        raise TesterError("tester.nat_care_of_address must differ from the trusted source, or no NAT is seen")
    control(ctx, ep)  # the same socket without the NAT: a denial there is no NAT-traversal verdict
    req = new_request(ctx, care_of_address=coa, before_auth=[udp_tunnel_request()])
    sent, reply = ask(ctx, ep, req, note=f"UDP Tunnel Request, CoA {coa} behind a NAT at {src}")
    checks = [judge.check_accepted("registration with a UDP Tunnel Request", sent, reply, req)]
    if reply is None or not checks[0].ok:
        return checks
    tunnel_reply = judge.check_udp_tunnel_reply(reply)
    checks.append(tunnel_reply[0])  # no UDP Tunnel Reply at all: NAT traversal unsupported, a SHOULD (5265 4.3)
    if not tunnel_reply[0].ok:
        return checks
    # Once the device answers with a UDP Tunnel Reply it supports NAT traversal, and RFC 3519's
    # MUSTs bind it (3519-3.2-UDP-TUNNEL-REPLY): graded as MUST from here on.
    checks += [replace(c, level="MUST") for c in tunnel_reply[1:]]
    if not all(c.ok for c in checks):
        return checks

    with probes.Places(ctx) as places:
        # Where HA->MN tunnel data must not go, but a sloppy device sends it: listened on, named.
        places.add(src, probes.MIP_PORT, f"port 434 of the NAT's public address {src}")
        places.add(coa, ep.port, f"the Care-of Address {coa} behind the NAT, at the endpoint's port")
        places.add(coa, probes.MIP_PORT, f"port 434 of the Care-of Address {coa} behind the NAT")
        return checks + _tunnel_both_ways(ctx, ep, reply, places)


def _tunnel_both_ways(ctx: CaseContext, ep, reply, places: probes.Places) -> list[Check]:
    checks: list[Check] = []
    home = ctx.mn.home_address
    cn = ctx.profile.correspondent or ctx.profile.dut_address
    marker = b"mipcheck-" + os.urandom(6).hex().encode()
    # An echo request to the device itself: a home agent answers it through the tunnel
    # (RFC 3519 keepalives are ICMP echoes), which shows both directions at once.
    up = ep.send(
        tunnel_data(icmp_echo(home, cn, marker, ident=random.getrandbits(16))),
        ctx.target,
        note="tunnel data MN->HA (ICMP echo)",
    )

    def tunnelled_to_home(d) -> bool:
        ip = judge.tunnelled_ip(d)
        return ip is not None and judge.inner_addresses(ip)[1] == home

    down = ep.receive(ctx.profile.reply_timeout, tunnelled_to_home)
    asked = False
    if down is None and ctx.control.can_send_to_home_address():
        asked = ctx.control.send_to_home_address(home, icmp_echo(cn, home, marker))
        down = ep.receive(ctx.profile.reply_timeout, tunnelled_to_home)
    stray = [] if down is not None else [(d, n) for d, n in places.drain(0.05) if tunnelled_to_home(d)]
    echoed = down is not None and marker in down.payload
    echoed_elsewhere = any(marker in d.payload for d, _ in stray)
    delivered = True if echoed or echoed_elsewhere else ctx.control.tunnel_delivered(home, marker)
    frames = (up.frame,) + ((down.frame,) if down else ()) + tuple(d.frame for d, _ in stray)

    up_expected = "the inner packet decapsulated by the device"
    if delivered:
        how = (
            f"frame {down.frame} echoes it back through the tunnel" if echoed else "the device reports it decapsulated"
        )
        if echoed_elsewhere:
            how = f"frame {stray[0][0].frame} echoes it back, though not to the tunnel endpoint"
        checks.append(Check("tunnel data MN->HA", up_expected, how, True, frames, "MUST"))
    elif delivered is False:
        checks.append(
            Check("tunnel data MN->HA", up_expected, "the device reports no such packet", False, frames, "MUST")
        )
    else:
        checks.append(
            Check(
                "tunnel data MN->HA",
                up_expected,
                "cannot observe: no echo came back and the device cannot be asked",
                None,
                frames,
            )
        )

    down_expected = f"a tunnel data message from the device carrying a packet for {home}"
    if down is not None:
        checks.append(Check("tunnel data HA->MN", down_expected, f"frame {down.frame}", True, frames, "MUST"))
    elif stray:
        # RFC 3519: tunnel data goes to the registered UDP endpoint (the NAT's public address and port).
        observed = "; ".join(
            f"frame {d.frame}: tunnel data for {home} sent to {d.dst[0]}:{d.dst[1]} ({n})" for d, n in stray
        )
        checks.append(
            Check(
                "tunnel data HA->MN",
                f"{down_expected}, at {ep.address}:{ep.port} (the registered UDP tunnel endpoint)",
                observed,
                False,
                frames,
                "MUST",
            )
        )
    elif asked:
        checks.append(
            Check(
                "tunnel data HA->MN",
                down_expected,
                f"nothing within {ctx.profile.reply_timeout:g} s after commands.send_to_home_address",
                False,
                frames,
                "MUST",
            )
        )
    else:
        checks.append(
            Check(
                "tunnel data HA->MN",
                down_expected,
                "cannot provoke one: no echo came back and the profile gives no commands.send_to_home_address",
                None,
                frames,
            )
        )

    if ctx.control.can_query_tunnel_route():
        route = ctx.control.tunnel_route(home)
        observed = "no UDP tunnel route" if route is None else f"{route[0]}:{route[1]}"
        checks.append(
            Check(
                "device's tunnel route for the home address",
                f"{ep.address}:{ep.port} (the NAT's public side)",
                observed,
                route == ep.local,
                (reply.frame,),
                "MUST",
            )
        )
    return checks


# ------------------------------------------------------------------ 4.2/4.3: any source port


def _high_port_endpoint(ctx: CaseContext, address: str):
    last: Exception | None = None
    for _ in range(20):
        try:
            return ctx.endpoint(address, random.randint(20000, 60999))
        except TesterError as exc:
            last = exc
    raise TesterError(f"no free high port on {address}: {last}")


def any_source_port(ctx: CaseContext) -> list[Check]:
    """A request from an arbitrary high source port is answered to that port, from the port it was sent to.

    Probes: the conforming request from an ordinary (kernel-chosen) port of
    the same source as the control, then from a random high port. A reply
    sent to port 434 instead is caught there (when the tester may bind it)
    and named. The control counts as answered wherever its reply went: only
    a device that denies or ignores the conforming request everywhere is
    inconclusive.
    """
    src = trusted_source(ctx)
    with probes.Places(ctx) as places:
        stray = places.add(src, probes.MIP_PORT, f"port 434 of {src}") if (src, probes.MIP_PORT) != ctx.target else None
        ordinary = ctx.endpoint(src)
        creq = new_request(ctx, care_of_address=src)
        csent, creply = ask(ctx, ordinary, creq, note="control: the conforming request from an ordinary port")
        if creply is not None:
            accepted = judge.check_accepted("control", csent, creply, creq)
            if not accepted.ok:
                raise Inconclusive(
                    f"control: the conforming request from {src}:{ordinary.port} was not accepted ({accepted.observed})"
                )
        elif stray is None or not stray.drain(0.05):
            raise Inconclusive(
                f"control: no reply to the conforming request from {src}:{ordinary.port} within "
                f"{ctx.profile.reply_timeout:g} s"
            )

        ep = _high_port_endpoint(ctx, src)
        req = new_request(ctx, care_of_address=src)
        sent, reply = ask(ctx, ep, req, note=f"request from source port {ep.port}")
        answered = judge.check_answered(
            f"reply at the request's source port {ep.port}", sent, reply, ctx.profile.reply_timeout, req
        )
        if reply is None and stray is not None:
            caught = stray.drain(0.05)
            if caught:
                answered = Check(
                    answered.what,
                    answered.expected,
                    f"reply sent to port 434 instead ({judge.describe(caught[0], req)})",
                    False,
                    (sent.frame, caught[0].frame),
                )
        checks = [answered]
        if reply is not None:
            checks.append(
                Check(
                    "reply source",
                    f"{ctx.target[0]}:{ctx.target[1]} (the request's destination)",
                    f"{reply.src[0]}:{reply.src[1]}",
                    reply.src == ctx.target,
                    (sent.frame, reply.frame),
                )
            )
            checks.append(judge.check_accepted("registration from a high source port", sent, reply, req))
    return checks
