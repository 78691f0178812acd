"""Cases for the base Mobile IPv4 rules a home agent must keep (RFC 5944, RFC 3024).

Authentication, replay protection, the Home Agent field, extension handling,
deregistration, lifetimes, reverse tunnelling and the reply itself
(Identification, authenticator): the rules an i-HA's trust decision
(RFC 5265 6.1) rests on.

Every case that judges a deviation first sends the conforming request from
the same socket with the same mobile node and flags (``exchange.control``):
a device that denies that too cannot be judged, and the case ends
inconclusive with the control's outcome. Rejections follow RFC 5944 3.8.2.1
as worded: the home agent MUST reject and SHOULD reply with the named code,
so accepting fails and a silent or differently coded rejection warns
(``judge.check_rejected``).
"""

from __future__ import annotations

import random

from mipcheck.clock import Clock
from mipcheck.engine.evidence import Datagram
from mipcheck.engine.runner import CaseContext
from mipcheck.engine.verdicts import Check, Inconclusive
from mipcheck.layers import MIPExtTNC, MIPExtUnknown
from mipcheck.layers import numbers as n
from mipcheck.layers.auth import compute_authenticator
from mipcheck.layers.identification import NTP_UNIX_OFFSET, high32, low32, timestamp_identification
from mipcheck.proto.numbers import FLAG_T

from . import judge
from .exchange import ask, control, control_exchange, listen, new_request, register, trusted_source
from .messages import Request, flip_authenticator, with_authenticator
from .preflight import DENIAL_HINTS

AUTH_FAILED = 131  # RFC 5944 3.4: mobile node failed authentication
ID_MISMATCH = 133  # RFC 5944 3.4: registration Identification mismatch
UNKNOWN_HA = 136  # RFC 5944 3.4: unknown home agent address
REVERSE_TUNNEL_UNAVAILABLE = 137  # RFC 3024: requested reverse tunnel unavailable
REVERSE_TUNNEL_MANDATORY = 138  # RFC 3024: reverse tunnel is mandatory and 'T' bit not set

UNKNOWN_SKIPPABLE = 200  # unassigned, 128-255: skippable (RFC 5944 1.9)
UNKNOWN_NONSKIPPABLE = 100  # unassigned, 0-127: not skippable (RFC 5944 1.9)
STALE_AGE = 3600.0  # seconds: far outside any replay window, either side of the device's clock
CLOCK_TOLERANCE = 2  # seconds: a 133's time of day against the device's clock as its replies showed it


# ------------------------------------------------------------------ authentication (RFC 5944 3.8.2.1 (a))


def auth_missing(ctx: CaseContext) -> list[Check]:
    """No authorization-enabling extension at all: rejected (MUST), code 131 (SHOULD).

    Probes: the conforming request first (control), then the same request
    with the MN-HA authentication extension left out, which an HA that only
    verifies authenticators it finds (instead of requiring one) accepts.
    """
    ep = ctx.endpoint(trusted_source(ctx))
    control(ctx, ep)
    req = new_request(ctx, care_of_address=ep.address, authenticate=False)
    sent, reply = ask(ctx, ep, req, note="request without an MN-HA authentication extension")
    return judge.check_rejected(
        "request without authenticator", sent, reply, req, AUTH_FAILED, ctx.profile.reply_timeout
    )


def unknown_spi(ctx: CaseContext) -> int:
    known = {m.spi for m in ctx.profile.mobile_nodes}
    spi = (ctx.mn.spi ^ 0x00A5A500) | 0x100
    while spi in known:
        spi = (spi + 1) & 0xFFFFFFFF or 0x100
    return spi


def auth_bad(ctx: CaseContext) -> list[Check]:
    """Every wrong authenticator is rejected (MUST), with 131 (SHOULD).

    Probes, each a place where a C comparison goes wrong:
    - one octet inverted at the first, a middle and the last position
      (a memcmp over fewer than 16 octets, or an early exit);
    - shortened to 8 octets and empty, the Length shrunk to match
      (a compare over "as many octets as the packet claims");
    - all zero (an uninitialised expected-value buffer);
    - computed with another key, and over the octets without the SPI
      (a MAC over the wrong span);
    - an SPI that names no security association (a lookup that falls back
      to a default key).
    """
    ep = ctx.endpoint(trusted_source(ctx))
    control(ctx, ep)
    spi = unknown_spi(ctx)

    def fresh() -> Request:
        return new_request(ctx, care_of_address=ep.address)

    def shortened() -> Request:
        # The right MAC over the octets as sent (Length 12), cut to 8 octets: only a compare
        # over fewer than 16 octets accepts it.
        req = with_authenticator(fresh(), bytes(8))
        return with_authenticator(
            req, compute_authenticator(ctx.mn.algorithm, ctx.mn.secret.reveal(), req.data[: len(req.data) - 8])[:8]
        )

    def other_key() -> Request:
        req = fresh()
        wrong = ctx.mn.secret.reveal() + b"-not-the-key"
        return with_authenticator(req, compute_authenticator(ctx.mn.algorithm, wrong, req.data[: len(req.data) - 16]))

    def without_spi() -> Request:
        req = fresh()
        return with_authenticator(
            req, compute_authenticator(ctx.mn.algorithm, ctx.mn.secret.reveal(), req.data[: len(req.data) - 20])
        )

    variants = [
        ("authenticator octet 1 inverted", lambda: flip_authenticator(fresh(), 0)),
        ("authenticator octet 9 inverted", lambda: flip_authenticator(fresh(), 8)),
        ("authenticator octet 16 inverted", lambda: flip_authenticator(fresh(), 15)),
        ("authenticator shortened to its first 8 octets (Length 12)", shortened),
        ("empty authenticator (Length 4: the SPI only)", lambda: with_authenticator(fresh(), b"")),
        ("all-zero authenticator", lambda: with_authenticator(fresh(), bytes(16))),
        ("authenticator computed with another key", other_key),
        ("authenticator computed without the SPI", without_spi),
        (f"unknown SPI {spi}", lambda: new_request(ctx, care_of_address=ep.address, spi=spi)),
    ]
    checks: list[Check] = []
    for label, build in variants:
        req = build()
        sent, reply = ask(ctx, ep, req, note=label)
        checks += judge.check_rejected(label, sent, reply, req, AUTH_FAILED, ctx.profile.reply_timeout)
    return checks


# ------------------------------------------------------------------ Identification (RFC 5944 3.8.2.1 (b), 5.7)


class DeviceClock:
    """The device's time of day as its 133 replies show it (RFC 5944 5.7.1: high-order 32 bits)."""

    def __init__(self, tester: Clock) -> None:
        self.tester = tester  # the tester's wall clock (virtual over the simulated network)
        self.offset: float | None = None  # device seconds minus tester seconds
        self.source: int | None = None  # the frame it was learned from

    def learn(self, reply: Datagram | None) -> None:
        rrp = judge.parse_reply(reply.payload) if reply is not None else None
        if rrp is not None and rrp.code == ID_MISMATCH and self.offset is None:
            self.offset = (high32(rrp.identification) - NTP_UNIX_OFFSET) - reply.time
            self.source = reply.frame

    def now(self) -> float:
        return self.tester.time() + (self.offset or 0.0)

    def check(self, what: str, sent: Datagram, reply: Datagram | None) -> list[Check]:
        """The 133's high-order bits are the device's time of day, as an earlier 133 showed it."""
        rrp = judge.parse_reply(reply.payload) if reply is not None else None
        if rrp is None or rrp.code != ID_MISMATCH or self.offset is None or self.source == reply.frame:
            return []
        shown = high32(rrp.identification) - NTP_UNIX_OFFSET
        expected = reply.time + self.offset
        return [
            Check(
                f"{what}: Identification high-order 32 bits",
                f"the device's time of day (about {int(expected) + NTP_UNIX_OFFSET:#010x}, as its 133 in frame "
                f"{self.source} showed it)",
                f"{high32(rrp.identification):#010x} ({shown - expected:+.0f} s from it)",
                abs(shown - expected) <= CLOCK_TOLERANCE,
                (sent.frame, reply.frame),
            )
        ]


def _identification_rejected(
    what: str,
    ctx: CaseContext,
    req: Request,
    sent: Datagram,
    reply: Datagram | None,
    clock: DeviceClock,
    *,
    far: bool = False,
) -> list[Check]:
    """Rejected (MUST) with 133 (SHOULD); a 133 copies the low-order bits and tells the device's time (5.7).

    ``far``: the request's timestamp is far from any clock, so a 133 whose
    high-order bits equal the request's cannot be the device's time of day.
    """
    checks = judge.check_rejected(what, sent, reply, req, ID_MISMATCH, ctx.profile.reply_timeout)
    rrp = judge.parse_reply(reply.payload) if reply is not None else None
    if reply is not None and rrp is not None and rrp.code == ID_MISMATCH:
        checks += judge.check_reply_identification(req, sent, reply, high_differs=far)
        checks += clock.check(what, sent, reply)
    return checks


def id_stale(ctx: CaseContext) -> list[Check]:
    """Timestamps far outside the window, late and early, judged against the device's own clock.

    Probes: the conforming request (control); a timestamp an hour behind the
    tester's clock, whose 133 shows the device's time of day; then a
    timestamp an hour ahead of that device time (an HA that only refuses late
    timestamps accepts it). Each 133 must copy the low-order 32 bits and
    carry the device's time in the high-order 32 bits (RFC 5944 5.7.1), not
    the request's.
    """
    ep = ctx.endpoint(trusted_source(ctx))
    control(ctx, ep)
    clock = DeviceClock(ctx.time)
    checks: list[Check] = []
    for label, seconds in (("late", -STALE_AGE), ("early", +STALE_AGE)):
        ident = timestamp_identification(clock.now() + seconds, low_bits=random.getrandbits(32))
        req = new_request(ctx, care_of_address=ep.address, identification=ident)
        sent, reply = ask(ctx, ep, req, note=f"identification {abs(seconds):g} s {label}")
        clock.learn(reply)
        checks += _identification_rejected(
            f"identification {abs(seconds):g} s {label}", ctx, req, sent, reply, clock, far=True
        )
        if label == "late" and clock.offset is None:
            ctx.note(
                "the device did not answer the late timestamp with 133, so its clock is unknown: the early probe uses "
                "the tester's clock"
            )
    return checks


def replay(ctx: CaseContext) -> list[Check]:
    """Replays of accepted registrations and of a de-registration are rejected, whatever the device's history.

    Probes, in one sequence on one home address: a stale timestamp (its 133
    tells the device's clock); registrations R1 and R2, both accepted (the
    control); R2 replayed (an HA that compares with the first Identification
    ever accepted lets it through); R1 replayed; a de-registration D,
    accepted, then R3, then D replayed (an HA that checks only
    registrations lets it through and drops the binding). Every 133 is
    judged for the low-order bits and against the device's clock.
    """
    ep = ctx.endpoint(trusted_source(ctx))
    clock = DeviceClock(ctx.time)
    stale = new_request(
        ctx,
        care_of_address=ep.address,
        identification=timestamp_identification(ctx.time.time() - STALE_AGE, low_bits=random.getrandbits(32)),
    )
    _sent, stale_reply = ask(ctx, ep, stale, note="stale identification: the device's clock from its 133")
    clock.learn(stale_reply)

    def accepted(purpose: str, **kw) -> Request:
        req = new_request(ctx, care_of_address=ep.address, **kw)
        sent, reply = ask(ctx, ep, req, note=purpose)
        check = judge.check_accepted(purpose, sent, reply, req)
        if not check.ok:
            hint = ""
            rrp = judge.parse_reply(reply.payload) if reply is not None else None
            if rrp is not None and rrp.code == ID_MISMATCH:
                hint = "; a 133 to a fresh timestamp: is the device's clock within a few seconds of the tester's?"
            raise Inconclusive(f"{purpose} was not accepted ({check.observed}){hint}")
        return req

    r1 = accepted("control: registration R1")
    r2 = accepted("control: registration R2")
    checks: list[Check] = []
    for label, req in (("R2 (the last accepted) replayed", r2), ("R1 replayed", r1)):
        sent, reply = ask(ctx, ep, req, note=label)
        checks += _identification_rejected(label, ctx, req, sent, reply, clock)
    dereg = accepted("control: de-registration D", lifetime=0)
    accepted("control: registration R3")
    sent, reply = ask(ctx, ep, dereg, note="de-registration D replayed")
    checks += _identification_rejected("de-registration D replayed", ctx, dereg, sent, reply, clock)
    if clock.offset is None:
        ctx.note("no 133 showed the device's clock, so the high-order bits of its 133s were not judged against it")
    return checks


# ------------------------------------------------------------------ the reply itself (RFC 5944 5.7, 3.5)


def _nothing_to_judge(label: str, sent: Datagram, window: float) -> Check:
    """No reply arrived: the property of the reply cannot be judged (silence is another case's business)."""
    return Check(label, "a Registration Reply to judge", f"no reply within {window:g} s", None, (sent.frame,))


def reply_identification(ctx: CaseContext) -> list[Check]:
    """Every reply copies the request's low-order 32 Identification bits (RFC 5944 5.7).

    Probes: an accepting reply to a valid request and a denying one (a wrong
    authenticator). Whatever reply reaches the tester's socket for the home
    address is judged, so a device that alters the bits is named, not
    reported as silent.
    """
    ep = ctx.endpoint(trusted_source(ctx))
    checks: list[Check] = []
    for label, req in (
        ("accepting reply to a valid request", new_request(ctx, care_of_address=ep.address)),
        ("denying reply to a wrong authenticator", flip_authenticator(new_request(ctx, care_of_address=ep.address), 0)),
    ):
        sent, reply = ask(ctx, ep, req, note=label)
        if reply is None:
            checks.append(_nothing_to_judge(label, sent, ctx.profile.reply_timeout))
            continue
        rrp = judge.parse_reply(reply.payload)
        got, want = low32(rrp.identification), low32(req.identification)
        checks.append(
            Check(
                f"{label}: Identification low-order 32 bits",
                f"copied from the request ({want:#010x})",
                f"{judge.describe(reply)}; {got:#010x}",
                got == want,
                (sent.frame, reply.frame),
            )
        )
    return checks


def reply_authenticator(ctx: CaseContext) -> list[Check]:
    """Replies to authenticated requests carry one valid MN-HA authenticator (RFC 5944 3.5.2, 3.8.3.1).

    Probes: the accepting reply to a valid request, and the 133 denial of a
    stale timestamp (the home agent holds the key, so it can and must
    authenticate a denial too). Judged exactly as a mobile node judges them.
    The first is the control: a device that does not accept it (131: it
    does not share our key; 129: it does not know the home address) cannot
    be judged by a key it may not hold, so the case is inconclusive, never
    failed, saying what came back.
    """
    ep = ctx.endpoint(trusted_source(ctx))
    checks: list[Check] = []
    stale_id = timestamp_identification(ctx.time.time() - STALE_AGE, low_bits=random.getrandbits(32))
    for label, req in (
        ("accepting reply", new_request(ctx, care_of_address=ep.address)),
        ("133 denial of a stale timestamp", new_request(ctx, care_of_address=ep.address, identification=stale_id)),
    ):
        sent, reply = ask(ctx, ep, req, note=label)
        if reply is None:
            checks.append(_nothing_to_judge(label, sent, ctx.profile.reply_timeout))
            continue
        rrp = judge.parse_reply(reply.payload)
        if label == "accepting reply" and (rrp is None or not n.reply_accepted(rrp.code)):
            # the control: only the code counts here (an accepting reply is judged below, authenticator and all)
            hint = DENIAL_HINTS.get(rrp.code) if rrp is not None else None
            raise Inconclusive(
                f"the valid registration was not accepted ({judge.describe(reply, req)})"
                + (f"; {hint}" if hint else "")
                + ": the device's authenticator cannot be judged with a key it may not share"
            )
        problem = judge.authentication_problem(req, reply)
        observed = (
            f"frame {reply.frame}: reply {problem}"
            if problem
            else f"{judge.describe(reply)}, MN-HA authenticator valid"
        )
        expected = "exactly one MN-HA authentication extension that verifies with the mobile node's key"
        checks.append(
            Check(f"{label}: MN-HA authenticator", expected, observed, problem is None, (sent.frame, reply.frame))
        )
    return checks


# ------------------------------------------------------------------ Home Agent field (RFC 5944 3.8.2.1)


def ha_field(ctx: CaseContext) -> list[Check]:
    """A Home Agent field that is not the device's is denied with 136, whose reply names the device.

    Probes: the control; a documentation address far from the device; the
    address next to the device's (an HA that compares only the network part
    accepts it). Each 136 must carry the home agent's own address in its
    Home Agent field, not the request's.
    """
    ep = ctx.endpoint(trusted_source(ctx))
    control(ctx, ep)
    own = ctx.profile.home_agent_of(ctx.mn)
    octets = [int(x) for x in own.split(".")]
    neighbour = ".".join(map(str, [*octets[:3], octets[3] ^ 1 or 2]))
    far = "192.0.2.254" if own != "192.0.2.254" else "192.0.2.253"
    checks: list[Check] = []
    for wrong in dict.fromkeys((far, neighbour)):
        req = new_request(ctx, care_of_address=ep.address, home_agent=wrong)
        sent, reply = ask(ctx, ep, req, note=f"Home Agent field {wrong}, not the device's {own}")
        code = judge.check_code(f"Home Agent field {wrong}", sent, reply, [UNKNOWN_HA], req)
        checks.append(code)
        if code.ok and reply is not None:
            got = judge.parse_reply(reply.payload).home_agent
            checks.append(
                Check(
                    f"Home Agent field of the 136 reply to {wrong}",
                    f"the home agent's own address {ctx.target[0]}",
                    got,
                    got in (ctx.target[0], own),
                    (sent.frame, reply.frame),
                )
            )
    return checks


# ------------------------------------------------------------------ extensions (RFC 5944 1.9)


def skippable_ignored(ctx: CaseContext) -> list[Check]:
    """Unknown skippable extensions (200, and a 149 the MN has no business sending) are skipped."""
    ep = ctx.endpoint(trusted_source(ctx))
    control(ctx, ep)
    checks = []
    for label, ext in (
        (f"unknown skippable extension {UNKNOWN_SKIPPABLE}", MIPExtUnknown(type=UNKNOWN_SKIPPABLE, data=b"mipcheck")),
        ("TNC extension (149) sent by the mobile node", MIPExtTNC()),
    ):
        req = new_request(ctx, care_of_address=ep.address, before_auth=[ext])
        sent, reply = ask(ctx, ep, req, note=label)
        checks.append(judge.check_accepted(f"request with {label}", sent, reply, req))
    return checks


def nonskippable(ctx: CaseContext) -> list[Check]:
    """An unknown extension of type 0-127 anywhere in the message: the whole message is silently discarded.

    Probes: the control; the extension before the authenticator, and after it
    (RFC 5944 1.9 applies to every extension, covered or not; an HA that stops
    parsing at the authenticator never sees the second one).
    """
    ep = ctx.endpoint(trusted_source(ctx))
    control(ctx, ep)
    checks: list[Check] = []
    for where, kw in (("before", "before_auth"), ("after", "after_auth")):
        ext = MIPExtUnknown(type=UNKNOWN_NONSKIPPABLE, data=b"mipcheck")
        req = new_request(ctx, care_of_address=ep.address, **{kw: [ext]})
        ep.drain(0)
        label = f"unknown non-skippable extension {UNKNOWN_NONSKIPPABLE} {where} the authenticator"
        sent = ep.send(req.data, ctx.target, note=label)
        alive = control_exchange(ctx)
        got = listen(ctx, ep)
        checks += [judge.check_silent(f"reply to a request with {label}", sent, got, ctx.profile.silence), alive]
    return checks


# ------------------------------------------------------------------ bindings (RFC 5944 3.8.2.2, 3.8.3.2)


def dereg(ctx: CaseContext) -> list[Check]:
    ep = ctx.endpoint(trusted_source(ctx))
    register(ctx, ep, purpose="control: registration to deregister")
    req = new_request(ctx, care_of_address=ep.address, lifetime=0)
    sent, reply = ask(ctx, ep, req, note="deregistration (lifetime 0)")
    checks = [judge.check_accepted("deregistration", sent, reply, req)]
    if reply is not None:
        checks.append(judge.check_lifetime_zero(sent, reply))
    return checks


def lifetime(ctx: CaseContext) -> list[Check]:
    """The granted Lifetime never exceeds the requested one, whichever way the binding's lifetime moves.

    Probes: a fresh registration, a renewal asking for less than the binding
    holds (an HA that keeps the longer lifetime grants too much), and one
    asking for more again.
    """
    ep = ctx.endpoint(trusted_source(ctx))
    checks = []
    long = max(60, ctx.profile.lifetime)
    for asked in (long, 30, long):
        req, sent, reply = register(ctx, ep, purpose=f"registration for {asked} s", lifetime=asked)
        checks.append(judge.check_lifetime_at_most(req, sent, reply))
    return checks


# ------------------------------------------------------------------ reverse tunnelling (RFC 3024)


def reverse_tunnel(ctx: CaseContext) -> list[Check]:
    """The 'T' bit is accepted, or denied with 137 (RFC 3024); the profile may say which."""
    ep = ctx.endpoint(trusted_source(ctx))
    mandatory = ctx.profile.flag("reverse_tunnel_mandatory")
    control(ctx, ep, reverse_tunnel=bool(mandatory))
    req = new_request(ctx, care_of_address=ep.address, reverse_tunnel=True)
    sent, reply = ask(ctx, ep, req, note="request with the 'T' bit")
    offered = ctx.profile.flag("reverse_tunneling")
    if offered is True:
        codes = [0, 1]
    elif offered is False:
        codes = [REVERSE_TUNNEL_UNAVAILABLE]
    else:
        codes = [0, 1, REVERSE_TUNNEL_UNAVAILABLE]
    checks = [judge.check_code("request with the 'T' bit", sent, reply, codes, req)]
    if mandatory:
        req2 = new_request(ctx, care_of_address=ep.address, clear_flags=FLAG_T)
        sent2, reply2 = ask(ctx, ep, req2, note="request without the 'T' bit, reverse tunnel mandatory")
        checks.append(judge.check_code("request without the 'T' bit", sent2, reply2, [REVERSE_TUNNEL_MANDATORY], req2))
    return checks
