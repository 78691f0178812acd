"""Cases for the base Mobile IPv4 rules a home agent must keep (RFC 5944, RFC 3024).

Authentication, replay protection, the Home Agent field, extension handling,
deregistration, lifetimes and reverse tunnelling: the rules an i-HA's trust
decision (RFC 5265 6.1) rests on.
"""

from __future__ import annotations

import random
import time

from mipcheck.engine.evidence import Datagram
from mipcheck.engine.runner import CaseContext
from mipcheck.engine.verdicts import Check, Inconclusive
from mipcheck.layers import MIPExtTNC, MIPExtUnknown
from mipcheck.layers.identification import timestamp_identification

from . import judge
from .exchange import ask, control_exchange, listen, new_request, register, trusted_source
from .messages import Request, flip_authenticator

AUTH_FAILED = 131  # RFC 5944 3.4: mobile node failed authentication
ID_MISMATCH = 133  # RFC 5944 3.4: registration Identification mismatch
UNKNOWN_HA = 136  # RFC 5944 3.4: unknown home agent address
REVERSE_TUNNEL_UNAVAILABLE = 137  # RFC 3024: requested reverse tunnel unavailable
REVERSE_TUNNEL_MANDATORY = 138  # RFC 3024: reverse tunnel is mandatory and 'T' bit not set

UNKNOWN_SKIPPABLE = 200  # unassigned, 128-255: skippable (RFC 5944 1.9)
UNKNOWN_NONSKIPPABLE = 100  # unassigned, 0-127: not skippable (RFC 5944 1.9)
STALE_AGE = 3600.0  # seconds: far outside any replay window
REPLAY_BACKDATE = 2.0  # seconds: inside the default 7 s window, yet a different second than the HA's clock


def auth_missing(ctx: CaseContext) -> list[Check]:
    ep = ctx.endpoint(trusted_source(ctx))
    req = new_request(ctx, care_of_address=ep.address, authenticate=False)
    sent, reply = ask(ctx, ep, req, note="request without an MN-HA authentication extension")
    return [
        judge.check_answered("reply to a request without authenticator", sent, reply, ctx.profile.reply_timeout),
        judge.check_code("request without authenticator", sent, reply, [AUTH_FAILED]),
    ]


def unknown_spi(ctx: CaseContext) -> int:
    known = {m.spi for m in ctx.profile.mobile_nodes}
    spi = (ctx.mn.spi ^ 0x00A5A500) | 0x100
    while spi in known:
        spi = (spi + 1) & 0xFFFFFFFF or 0x100
    return spi


def auth_bad(ctx: CaseContext) -> list[Check]:
    """A wrong authenticator at its first, a middle and its last octet, and an unknown SPI: all 131."""
    ep = ctx.endpoint(trusted_source(ctx))
    spi = unknown_spi(ctx)
    variants = [
        ("authenticator octet 1 inverted", lambda: flip_authenticator(new_request(ctx, care_of_address=ep.address), 0)),
        ("authenticator octet 9 inverted", lambda: flip_authenticator(new_request(ctx, care_of_address=ep.address), 8)),
        ("authenticator octet 16 inverted", lambda: flip_authenticator(new_request(ctx, care_of_address=ep.address), 15)),
        (f"unknown SPI {spi}", lambda: new_request(ctx, care_of_address=ep.address, spi=spi)),
    ]
    checks = []
    for label, build in variants:
        req = build()
        sent, reply = ask(ctx, ep, req, note=label)
        checks.append(judge.check_code(label, sent, reply, [AUTH_FAILED]))
    return checks


def id_stale(ctx: CaseContext) -> list[Check]:
    """A timestamp an hour old: 133, low-order bits copied, high-order bits the HA's own time (RFC 5944 5.7)."""
    ep = ctx.endpoint(trusted_source(ctx))
    ident = timestamp_identification(time.time() - STALE_AGE, low_bits=random.getrandbits(32))
    req = new_request(ctx, care_of_address=ep.address, identification=ident)
    sent, reply = ask(ctx, ep, req, note=f"identification {STALE_AGE:g} s old")
    return _identification_denied("stale identification", req, sent, reply)


def _identification_denied(what: str, req: Request, sent: Datagram, reply: Datagram | None) -> list[Check]:
    """Denied with 133 and, when it is, with the reply Identification of RFC 5944 5.7."""
    checks = [judge.check_code(what, sent, reply, [ID_MISMATCH])]
    if reply is not None and checks[0].ok:
        checks += judge.check_reply_identification(req, sent, reply)
    return checks


def replay(ctx: CaseContext) -> list[Check]:
    """An accepted request sent again unchanged: 133 with the reply identification RFC 5944 5.7 prescribes."""
    ep = ctx.endpoint(trusted_source(ctx))
    try:
        ident = ctx.clock().backdated(REPLAY_BACKDATE)
    except TimeoutError as exc:
        raise Inconclusive(f"could not choose a fresh identification: {exc}") from None
    req = new_request(ctx, care_of_address=ep.address, identification=ident)
    sent, reply = ask(ctx, ep, req, note="registration to be replayed")
    first = judge.check_accepted("the registration to replay", sent, reply)
    if not first.ok:
        raise Inconclusive(f"the registration to replay was not accepted ({first.observed}); is the device's clock within a few seconds of the tester's?")
    sent2, reply2 = ask(ctx, ep, req, note="the same request replayed")
    return _identification_denied("replayed identification", req, sent2, reply2)


def ha_field(ctx: CaseContext) -> list[Check]:
    ep = ctx.endpoint(trusted_source(ctx))
    own = ctx.profile.home_agent_of(ctx.mn)
    wrong = "192.0.2.254" if own != "192.0.2.254" else "192.0.2.253"
    req = new_request(ctx, care_of_address=ep.address, home_agent=wrong)
    sent, reply = ask(ctx, ep, req, note=f"Home Agent field {wrong}, not the device's {own}")
    return [judge.check_code(f"Home Agent field {wrong}", sent, reply, [UNKNOWN_HA])]


def skippable_ignored(ctx: CaseContext) -> list[Check]:
    """Unknown skippable extensions (200, and a 149 the MN has no business sending) are skipped."""
    ep = ctx.endpoint(trusted_source(ctx))
    checks = []
    for label, ext in (
        (f"unknown skippable extension {UNKNOWN_SKIPPABLE}", MIPExtUnknown(type=UNKNOWN_SKIPPABLE, data=b"mipcheck")),
        ("TNC extension (149) sent by the mobile node", MIPExtTNC()),
    ):
        req = new_request(ctx, care_of_address=ep.address, before_auth=[ext])
        sent, reply = ask(ctx, ep, req, note=label)
        checks.append(judge.check_accepted(f"request with {label}", sent, reply))
    return checks


def nonskippable(ctx: CaseContext) -> list[Check]:
    """An unknown extension of type 0-127: the whole message is silently discarded (RFC 5944 1.9)."""
    ep = ctx.endpoint(trusted_source(ctx))
    ext = MIPExtUnknown(type=UNKNOWN_NONSKIPPABLE, data=b"mipcheck")
    req = new_request(ctx, care_of_address=ep.address, before_auth=[ext])
    sent = ep.send(req.data, ctx.target, note=f"unknown non-skippable extension {UNKNOWN_NONSKIPPABLE}")
    control = control_exchange(ctx)
    got = listen(ctx, ep)
    return [judge.check_silent(f"reply to a request with unknown extension {UNKNOWN_NONSKIPPABLE}", sent, got, ctx.profile.silence), control]


def dereg(ctx: CaseContext) -> list[Check]:
    ep = ctx.endpoint(trusted_source(ctx))
    register(ctx, ep, purpose="registration to deregister")
    req = new_request(ctx, care_of_address=ep.address, lifetime=0)
    sent, reply = ask(ctx, ep, req, note="deregistration (lifetime 0)")
    checks = [judge.check_accepted("deregistration", sent, reply)]
    if reply is not None:
        checks.append(judge.check_lifetime_zero(sent, reply))
    return checks


def lifetime(ctx: CaseContext) -> list[Check]:
    ep = ctx.endpoint(trusted_source(ctx))
    checks = []
    for asked in sorted({30, ctx.profile.lifetime}):
        req, sent, reply = register(ctx, ep, purpose=f"registration for {asked} s", lifetime=asked)
        checks.append(judge.check_lifetime_at_most(req, sent, reply))
    return checks


def reverse_tunnel(ctx: CaseContext) -> list[Check]:
    """The 'T' bit is accepted, or denied with 137 (RFC 3024); the profile may say which."""
    ep = ctx.endpoint(trusted_source(ctx))
    req = new_request(ctx, care_of_address=ep.address, reverse_tunnel=True)
    sent, reply = ask(ctx, ep, req, note="request with the 'T' bit")
    offered = ctx.profile.flag("reverse_tunneling")
    if offered is True:
        codes = [0, 1]
    elif offered is False:
        codes = [REVERSE_TUNNEL_UNAVAILABLE]
    else:
        codes = [0, 1, REVERSE_TUNNEL_UNAVAILABLE]
    checks = [judge.check_code("request with the 'T' bit", sent, reply, codes)]
    if ctx.profile.flag("reverse_tunnel_mandatory"):
        req2 = new_request(ctx, care_of_address=ep.address)
        sent2, reply2 = ask(ctx, ep, req2, note="request without the 'T' bit, reverse tunnel mandatory")
        checks.append(judge.check_code("request without the 'T' bit", sent2, reply2, [REVERSE_TUNNEL_MANDATORY]))
    return checks
