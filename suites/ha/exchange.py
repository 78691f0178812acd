"""The few wire patterns every home-agent case uses: ask and wait, or send and hear nothing.

Glue between the pure parts (``messages``, ``judge``) and the engine's
sockets; identifications always come from the home address's monotonic
clock unless a case deliberately sends a stale or replayed one.
"""

from __future__ import annotations

from collections.abc import Sequence

from mipcheck.engine.evidence import Datagram
from mipcheck.engine.profile import MobileNode
from mipcheck.engine.runner import CaseContext
from mipcheck.engine.transport import Endpoint
from mipcheck.engine.verdicts import Check, Inconclusive
from mipcheck.layers.extensions import MIPExtension

from . import judge
from .messages import Request, build_request

#: After a reply whose Identification does not match, how long an exact one may still come.
MISMATCH_GRACE = 0.25


def source_phrase(ctx: CaseContext) -> str:
    """How reasons name the tester's ordinary source: an x-HA keeps no trust list (RFC 5265 3.7)."""
    return "a trusted source" if ctx.profile.flag("trusted_networks") else "the tester's source"


def trusted_source(ctx: CaseContext) -> str:
    return ctx.profile.trusted_sources[0]


def untrusted_sources(ctx: CaseContext) -> tuple[str, ...]:
    if not ctx.profile.untrusted_sources:
        raise Inconclusive("the profile lists no tester.untrusted_sources: no way to send from an untrusted address")
    return ctx.profile.untrusted_sources


def new_request(
    ctx: CaseContext,
    *,
    care_of_address: str,
    mn: MobileNode | None = None,
    lifetime: int | None = None,
    identification: int | None = None,
    home_agent: str | None = None,
    reverse_tunnel: bool = False,
    clear_flags: int = 0,
    before_auth: Sequence[MIPExtension] = (),
    after_auth: Sequence[MIPExtension] = (),
    authenticate: bool = True,
    spi: int | None = None,
    target: tuple[str, int] | None = None,
) -> Request:
    mn = mn or ctx.mn
    ident = identification if identification is not None else ctx.clock(mn, target).next()
    return build_request(
        mn,
        home_agent=home_agent or ctx.profile.home_agent_of(mn),
        care_of_address=care_of_address,
        identification=ident,
        lifetime=ctx.profile.lifetime if lifetime is None else lifetime,
        reverse_tunnel=reverse_tunnel,
        clear_flags=clear_flags,
        before_auth=before_auth,
        after_auth=after_auth,
        authenticate=authenticate,
        spi=spi,
    )


def ask(
    ctx: CaseContext, ep: Endpoint, req: Request, note: str = "", target: tuple[str, int] | None = None
) -> tuple[Datagram, Datagram | None]:
    """Send a request and return what came back for it: any reply counts, whatever its Identification.

    A reply is matched to its request by the socket it reaches (one per case)
    and its Home Address. One whose Identification does not copy the
    request's low-order 32 bits is still the device's answer: it is returned
    (and judged; the reason names the mismatch) when no exact match follows
    within a short grace. What was queued before the send cannot answer this
    request, so it is set aside first (it stays in the evidence).
    """
    ep.drain(0)
    sent = ep.send(req.data, target or ctx.target, note)
    timeout = ctx.profile.reply_timeout
    clock = ep.clock
    deadline = clock.monotonic() + timeout
    other: Datagram | None = None
    while (left := deadline - clock.monotonic()) > 0:
        d = ep.receive(left, lambda d: judge.is_reply_for(req, d))
        if d is None:
            break
        if judge.is_reply_to(req, d):
            return sent, d
        if other is None:
            other = d
            deadline = min(deadline, clock.monotonic() + max(MISMATCH_GRACE, 0.1 * timeout))
    return sent, other


def listen(ctx: CaseContext, ep: Endpoint) -> list[Datagram]:
    """Everything arriving at ``ep`` within the silence window."""
    return ep.drain(ctx.profile.silence)


def register(
    ctx: CaseContext, ep: Endpoint, *, mn: MobileNode | None = None, purpose: str, **kw
) -> tuple[Request, Datagram, Datagram]:
    """A registration the case needs as a precondition; ends the case inconclusive if it is not accepted.

    "Accepted" is the mobile node's judgement (:mod:`mipcheck.mn.acceptance`):
    code 0 or 1 and a reply an MN would act on (authenticator, Identification).
    """
    req = new_request(ctx, mn=mn, care_of_address=kw.pop("care_of_address", ep.address), **kw)
    sent, reply = ask(ctx, ep, req, note=purpose, target=kw.get("target"))
    check = judge.check_accepted(purpose, sent, reply, req)
    if not check.ok:
        raise Inconclusive(f"{purpose} was not accepted ({check.observed}), so the property cannot be judged")
    assert reply is not None
    return req, sent, reply


def control(ctx: CaseContext, ep: Endpoint, *, purpose: str | None = None, **kw) -> tuple[Request, Datagram, Datagram]:
    """The conforming request under the probe's own conditions (same socket, mobile node, flags), accepted first.

    Every case that judges a deviation calls this before it: a device that
    denies the conforming request too (it wants other flags, it has another
    key, its clock is off) cannot be judged on the deviation, so the case is
    inconclusive with the control's outcome as the reason.
    """
    what = purpose or f"control: the conforming request from {ep.address}:{ep.port}"
    req = new_request(ctx, mn=kw.pop("mn", None), care_of_address=kw.pop("care_of_address", ep.address), **kw)
    sent, reply = ask(ctx, ep, req, note="control", target=kw.get("target"))
    check = judge.check_accepted(what, sent, reply, req)
    if not check.ok:
        raise Inconclusive(f"{what} was not accepted ({check.observed}): the deviation cannot be judged")
    assert reply is not None
    return req, sent, reply


def control_exchange(ctx: CaseContext, purpose: str | None = None) -> Check:
    """Proves the device is alive and answering, so that silence elsewhere means something."""
    purpose = purpose or f"control: a valid request from {source_phrase(ctx)}"
    ep = ctx.endpoint(trusted_source(ctx))
    req = new_request(ctx, care_of_address=ep.address)
    sent, reply = ask(ctx, ep, req, note="control")
    check = judge.check_accepted(purpose, sent, reply, req)
    if not check.ok:
        raise Inconclusive(f"{purpose} was not accepted ({check.observed}): silence from the device proves nothing")
    return check


def listen_all(ctx: CaseContext, endpoints: Sequence[Endpoint]) -> list[list[Datagram]]:
    """One silence window shared by several sockets (not one window each)."""
    deadline = ctx.time.monotonic() + ctx.profile.silence
    return [ep.drain_until(deadline) for ep in endpoints]
