"""The few wire patterns every home-agent case uses: ask and wait, or send and hear nothing.

Glue between the pure parts (``messages``, ``judge``) and the engine's
sockets; identifications always come from the home address's monotonic
clock unless a case deliberately sends a stale or replayed one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from mipcheck.engine.evidence import Datagram
from mipcheck.engine.profile import MobileNode
from mipcheck.engine.runner import CaseContext
from mipcheck.engine.transport import Endpoint
from mipcheck.engine.verdicts import Check, Inconclusive
from mipcheck.layers.extensions import MIPExtension

from . import judge
from .messages import Request, build_request


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
    before_auth: Sequence[MIPExtension] = (),
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
        before_auth=before_auth,
        authenticate=authenticate,
        spi=spi,
    )


def ask(ctx: CaseContext, ep: Endpoint, req: Request, note: str = "", target: tuple[str, int] | None = None) -> tuple[Datagram, Datagram | None]:
    """Send a request and wait for its reply (matched by home address and identification)."""
    sent = ep.send(req.data, target or ctx.target, note)
    reply = ep.receive(ctx.profile.reply_timeout, lambda d: judge.is_reply_to(req, d))
    return sent, reply


def listen(ctx: CaseContext, ep: Endpoint) -> list[Datagram]:
    """Everything arriving at ``ep`` within the silence window."""
    return ep.drain(ctx.profile.silence)


def register(ctx: CaseContext, ep: Endpoint, *, mn: MobileNode | None = None, purpose: str, **kw) -> tuple[Request, Datagram, Datagram]:
    """A registration the case needs as a precondition; ends the case inconclusive if it is not accepted."""
    req = new_request(ctx, mn=mn, care_of_address=kw.pop("care_of_address", ep.address), **kw)
    sent, reply = ask(ctx, ep, req, note=purpose)
    check = judge.check_accepted(purpose, sent, reply)
    if not check.ok:
        raise Inconclusive(f"{purpose} was not accepted ({check.observed}), so the property cannot be judged")
    assert reply is not None
    return req, sent, reply


def control_exchange(ctx: CaseContext, purpose: str = "control: a valid request from a trusted source") -> Check:
    """Proves the device is alive and answering, so that silence elsewhere means something."""
    ep = ctx.endpoint(trusted_source(ctx))
    req = new_request(ctx, care_of_address=ep.address)
    sent, reply = ask(ctx, ep, req, note="control")
    check = judge.check_accepted(purpose, sent, reply)
    if not check.ok:
        raise Inconclusive(f"{purpose} was not accepted ({check.observed}): silence from the device proves nothing")
    return check


def listen_all(ctx: CaseContext, endpoints: Sequence[Endpoint]) -> list[list[Datagram]]:
    """One silence window shared by several sockets (not one window each)."""
    deadline = time.monotonic() + ctx.profile.silence
    return [ep.drain_until(deadline) for ep in endpoints]
