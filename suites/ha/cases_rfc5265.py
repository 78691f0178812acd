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
from mipcheck.engine.profile import Profile
from mipcheck.engine.runner import CaseContext
from mipcheck.engine.verdicts import Check, Inconclusive, TesterError

from . import judge
from .exchange import (
    ask,
    control_exchange,
    listen,
    listen_all,
    new_request,
    register,
    trusted_source,
    untrusted_sources,
)
from .messages import flip_authenticator, icmp_echo, tunnel_data, udp_tunnel_request

# ------------------------------------------------------------------ applicability


def needs_trusted_networks(profile: Profile, _control: DeviceControl) -> str | None:
    if profile.flag("trusted_networks"):
        return None
    return "the profile says the device keeps no trusted-subnet list (dut.role / applicability.trusted_networks): RFC 5265 4.3 binds the i-HA"


def needs_unconfigured_start(profile: Profile, control: DeviceControl) -> str | None:
    why = needs_trusted_networks(profile, control)
    if why:
        return why
    if not control.can_start_unconfigured():
        return "the profile gives no way to bring the device up with no trusted subnet (commands.start_unconfigured / stop_unconfigured)"
    return None


def needs_nat_traversal(profile: Profile, _control: DeviceControl) -> str | None:
    if profile.flag("nat_traversal"):
        return None
    return "the profile declares no Mobile IPv4 NAT traversal (applicability.nat_traversal = false); RFC 5265 4.3 says SHOULD"


def unconfigured_exclusive(_profile: Profile, control: DeviceControl) -> bool:
    return not control.unconfigured_separate


# ------------------------------------------------------------------ 4.3: drop untrusted sources


def untrusted_drop(ctx: CaseContext) -> list[Check]:
    """A valid, correctly authenticated request from each untrusted source gets no reply at all."""
    sends = []
    for src in untrusted_sources(ctx):
        ep = ctx.endpoint(src)
        req = new_request(ctx, care_of_address=src)
        sends.append((ep, ep.send(req.data, ctx.target, note=f"valid request from untrusted {src}")))
    control = control_exchange(ctx)
    heard = listen_all(ctx, [ep for ep, _ in sends])
    checks = [
        judge.check_silent(f"reply to the untrusted source {ep.address}", sent, got, ctx.profile.silence)
        for (ep, sent), got in zip(sends, heard, strict=True)
    ]
    return [*checks, control]


def source_not_coa(ctx: CaseContext) -> list[Check]:
    """Trust is decided by the IP source, not by a trusted address in the Care-of Address field."""
    src = untrusted_sources(ctx)[0]
    ep = ctx.endpoint(src)
    coa = trusted_source(ctx)
    req = new_request(ctx, care_of_address=coa)
    sent = ep.send(req.data, ctx.target, note=f"untrusted source {src}, trusted CoA {coa}")
    control = control_exchange(ctx)
    got = listen(ctx, ep)
    return [judge.check_silent(f"reply to untrusted source {src} claiming CoA {coa}", sent, got, ctx.profile.silence), control]


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
    return [judge.check_silent(f"reply from the unconfigured device at {address}:{port}", sent, got, ctx.profile.silence)]


def _new_lines(before: str, after: str) -> list[str]:
    if after.startswith(before):
        return [line for line in after[len(before) :].splitlines() if line.strip()]
    old = set(before.splitlines())
    return [line for line in after.splitlines() if line.strip() and line not in old]


def names_address(line: str, address: str) -> bool:
    """``address`` appears in ``line`` as a whole address (127.0.0.6 is not in 127.0.0.66)."""
    return re.search(rf"(?<![\d.]){re.escape(address)}(?![\d])", line) is not None


def untrusted_log(ctx: CaseContext) -> list[Check]:
    """A dropped request from an untrusted source leaves a line naming that source in the device's log."""
    before = ctx.control.read_log()
    if before is None:
        raise Inconclusive("the profile gives no way to read the device's log (commands.read_log)")
    src = untrusted_sources(ctx)[0]
    ep = ctx.endpoint(src)
    req = new_request(ctx, care_of_address=src)
    sent = ep.send(req.data, ctx.target, note=f"request from untrusted {src}, to be dropped and logged")
    got = listen(ctx, ep)
    if got:
        raise Inconclusive(f"the device answered the untrusted request ({judge.describe(got[0])}), so nothing was dropped to log; see HA-UNTRUSTED-DROP")
    hits: list[str] = []
    new: list[str] = []
    for _ in range(3):  # logs may be written a moment after the drop
        new = _new_lines(before, ctx.control.read_log() or "")
        hits = [line for line in new if names_address(line, src)]
        if hits:
            break
        listen(ctx, ep)
    ctx.attach("log.txt", "\n".join(new) + "\n" if new else "(no new log lines)\n")
    observed = f"new log line: {hits[0][:200]}" if hits else f"{len(new)} new log line(s), none naming {src}"
    return [Check("log of the dropped request", f"a new log line naming the source {src}", observed, bool(hits), (sent.frame,))]


# ------------------------------------------------------------------ 4.3 and 3.4: the TNC extension


def tnc_included(ctx: CaseContext) -> list[Check]:
    ep = ctx.endpoint(trusted_source(ctx))
    _req, _sent, reply = register(ctx, ep, purpose="valid request from a trusted source")
    return [judge.check_tnc_present("TNC in the accepting reply to a trusted source", reply)]


def tnc_format(ctx: CaseContext) -> list[Check]:
    ep = ctx.endpoint(trusted_source(ctx))
    _req, _sent, reply = register(ctx, ep, purpose="valid request from a trusted source")
    return judge.check_tnc_format(reply)


def tnc_authenticated(ctx: CaseContext) -> list[Check]:
    ep = ctx.endpoint(trusted_source(ctx))
    _req, _sent, reply = register(ctx, ep, purpose="valid request from a trusted source")
    return [judge.check_tnc_before_auth(reply), judge.check_reply_authenticator(reply, ctx.mn)]


def tnc_on_denial(ctx: CaseContext) -> list[Check]:
    """4.3 read literally: every reply to a trusted source carries TNC, a denial too."""
    ep = ctx.endpoint(trusted_source(ctx))
    req = flip_authenticator(new_request(ctx, care_of_address=ep.address), 0)
    sent, reply = ask(ctx, ep, req, note="request with a wrong authenticator, to be denied")
    if reply is None:
        raise Inconclusive(f"no reply within {ctx.profile.reply_timeout:g} s to a request with a wrong authenticator: no denial to judge")
    accepted = judge.check_accepted("denial", sent, reply)
    if accepted.ok:
        raise Inconclusive("the device accepted a wrong authenticator (see MIP-AUTH-BAD): no denial to judge")
    return [judge.check_tnc_present("TNC in the denying reply to a trusted source", reply)]


# ------------------------------------------------------------------ 4.3 SHOULD: NAT traversal (RFC 3519)


def natt_udp_tunnel(ctx: CaseContext) -> list[Check]:
    """UDP Tunnel Request behind a "NAT" (source differs from CoA): Tunnel Reply, then data both ways."""
    src = trusted_source(ctx)
    ep = ctx.endpoint(src)
    coa = ctx.profile.nat_care_of_address
    if coa == src:
        raise TesterError("tester.nat_care_of_address must differ from the trusted source, or no NAT is seen")
    req = new_request(ctx, care_of_address=coa, before_auth=[udp_tunnel_request()])
    sent, reply = ask(ctx, ep, req, note=f"UDP Tunnel Request, CoA {coa} behind a NAT at {src}")
    checks = [judge.check_accepted("registration with a UDP Tunnel Request", sent, reply)]
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

    home = ctx.mn.home_address
    cn = ctx.profile.correspondent or ctx.profile.dut_address
    marker = b"mipcheck-" + os.urandom(6).hex().encode()
    # An echo request to the device itself: a home agent answers it through the tunnel
    # (RFC 3519 keepalives are ICMP echoes), which shows both directions at once.
    up = ep.send(tunnel_data(icmp_echo(home, cn, marker, ident=random.getrandbits(16))), ctx.target, note="tunnel data MN->HA (ICMP echo)")

    def tunnelled_to_home(d) -> bool:
        ip = judge.tunnelled_ip(d)
        return ip is not None and judge.inner_addresses(ip)[1] == home

    down = ep.receive(ctx.profile.reply_timeout, tunnelled_to_home)
    asked = False
    if down is None and ctx.control.can_send_to_home_address():
        asked = ctx.control.send_to_home_address(home, icmp_echo(cn, home, marker))
        down = ep.receive(ctx.profile.reply_timeout, tunnelled_to_home)
    echoed = down is not None and marker in down.payload
    delivered = True if echoed else ctx.control.tunnel_delivered(home, marker)
    frames = (up.frame,) + ((down.frame,) if down else ())

    up_expected = "the inner packet decapsulated by the device"
    if delivered:
        how = f"frame {down.frame} echoes it back through the tunnel" if echoed else "the device reports it decapsulated"
        checks.append(Check("tunnel data MN->HA", up_expected, how, True, frames, "MUST"))
    elif delivered is False:
        checks.append(Check("tunnel data MN->HA", up_expected, "the device reports no such packet", False, frames, "MUST"))
    else:
        checks.append(Check("tunnel data MN->HA", up_expected, "cannot observe: no echo came back and the device cannot be asked", None, frames))

    down_expected = f"a tunnel data message from the device carrying a packet for {home}"
    if down is not None:
        checks.append(Check("tunnel data HA->MN", down_expected, f"frame {down.frame}", True, frames, "MUST"))
    elif asked:
        checks.append(Check("tunnel data HA->MN", down_expected, f"nothing within {ctx.profile.reply_timeout:g} s after commands.send_to_home_address", False, frames, "MUST"))
    else:
        checks.append(Check("tunnel data HA->MN", down_expected, "cannot provoke one: no echo came back and the profile gives no commands.send_to_home_address", None, frames))

    if ctx.control.can_query_tunnel_route():
        route = ctx.control.tunnel_route(home)
        observed = "no UDP tunnel route" if route is None else f"{route[0]}:{route[1]}"
        checks.append(Check("device's tunnel route for the home address", f"{ep.address}:{ep.port} (the NAT's public side)", observed, route == ep.local, (reply.frame,), "MUST"))
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
    """A request from an arbitrary high source port is answered to that port, from the port it was sent to."""
    src = trusted_source(ctx)
    ep = _high_port_endpoint(ctx, src)
    stray = None
    if (src, 434) != ctx.target:
        try:  # best effort: catch a reply misdirected to port 434 as evidence
            stray = ctx.endpoint(src, 434)
        except TesterError:
            stray = None
    req = new_request(ctx, care_of_address=src)
    sent, reply = ask(ctx, ep, req, note=f"request from source port {ep.port}")
    answered = judge.check_answered(f"reply at the request's source port {ep.port}", sent, reply, ctx.profile.reply_timeout)
    if reply is None and stray is not None:
        caught = stray.drain(0.05)
        if caught:
            answered = Check(answered.what, answered.expected, f"reply sent to port 434 instead ({judge.describe(caught[0])})", False, (sent.frame, caught[0].frame))
    checks = [answered]
    if reply is not None:
        checks.append(Check("reply source", f"{ctx.target[0]}:{ctx.target[1]} (the request's destination)", f"{reply.src[0]}:{reply.src[1]}", reply.src == ctx.target, (sent.frame, reply.frame)))
        checks.append(judge.check_accepted("registration from a high source port", sent, reply))
    return checks
