"""The health check of a mobile node: moved inside, it registers validly and answers an echo through the i-HA tunnel.

One check (docs/design/mn-loopback.md's stacks): move the device inside; an
authenticated Registration Request for its home address must reach the
played i-HA within the profile's timing (:attr:`MnContext.health_timeout
<mipcheck.fuzz.mn.context.MnContext.health_timeout>`: the detection period,
at least 2 s); the i-HA accepts it (code 0, UDP Tunnel Reply when asked,
TNC before the authenticator) and sends ``TD(IPv4(CN -> HoA)/ICMP echo
request)`` to where the request came from; ``TD(IPv4(HoA -> CN)/ICMP echo
reply)`` with the same identifier, sequence number and data must come back
to the i-HA within the same time. The echo request is sent again every
:data:`ECHO_EVERY` seconds meanwhile (a device may open its data path a
moment after the reply).

Outcomes are those of the home-agent check (:class:`~mipcheck.fuzz.health.HealthResult`):
``no-reply`` (the move failed, no request, no echo reply), ``wrong-reply``
(a request that is not a valid registration, an echo reply that does not
match), ``refused`` (ICMP unreachable from the device).
"""

from __future__ import annotations

import time

from mipcheck.mn.dataplane import echo_request, parse_echo, tunnel, untunnel
from mipcheck.proto import codec
from mipcheck.proto import numbers as n

from ..health import NO_REPLY, OK, REFUSED, WRONG_REPLY, HealthResult
from .cases import request_problem, valid_reply
from .context import IHA, MnContext
from .target import MoveFailed, Mover
from .wire import Datagram, Wire, wait_request

ECHO_ID = 0x4D48  # "MH": identifier of the health checks' echo requests
ECHO_DATA = b"mipcheck fuzz health check"
ECHO_EVERY = 0.1


class MnHealthChecker:
    def __init__(self, ctx: MnContext, wire: Wire, mover: Mover) -> None:
        self.ctx, self.wire, self.mover = ctx, wire, mover
        self.passed = 0
        self.failed = 0
        self.sequence = 0

    def check(self, timeout: float | None = None, *, counted: bool = True) -> HealthResult:
        """One blocking check; ``counted=False`` for the checks that only wait for a (re)started device to come up."""
        result = self._check(self.ctx.health_timeout if timeout is None else timeout)
        if counted:
            if result.ok:
                self.passed += 1
            else:
                self.failed += 1
        return result

    def _check(self, timeout: float) -> HealthResult:
        ctx, wire = self.ctx, self.wire
        wire.drain()
        try:
            self.mover.move("inside")
        except MoveFailed as exc:
            return HealthResult(NO_REPLY, f"the device could not be moved inside: {exc}")
        seen: list[Datagram] = []
        req = wait_request(wire, IHA, time.monotonic() + timeout, seen)
        if req is None:
            if wire.refused:
                return HealthResult(REFUSED, "ICMP unreachable from the device, and no registration request")
            return HealthResult(NO_REPLY, f"no registration request reached the i-HA within {timeout:g} s of the move")
        problem = request_problem(ctx, ctx.iha, req.data)
        if problem is not None:
            return HealthResult(WRONG_REPLY, f"moved inside, the device sent {problem}")
        parsed = codec.parse_request(req.data)
        assert parsed is not None
        wire.send(IHA, valid_reply(ctx, ctx.iha, parsed), req.src)
        self.sequence = (self.sequence + 1) & 0xFFFF
        ping = tunnel(echo_request(ctx.correspondent, ctx.home_address, ECHO_ID, self.sequence, ECHO_DATA))
        deadline = time.monotonic() + timeout
        wrong: str | None = None
        while (now := time.monotonic()) < deadline:
            wire.send(IHA, ping, req.src)
            for d in wire.collect(min(deadline, now + ECHO_EVERY)):
                if d.party != IHA or not d.data or d.data[0] != n.MSG_TUNNEL_DATA:
                    continue
                verdict = self._judge(d)
                if verdict is None:
                    return HealthResult(OK, "registered, echo answered through the i-HA tunnel")
                wrong = wrong or verdict or None
            if wrong is not None:
                return HealthResult(WRONG_REPLY, wrong)
        if wire.refused:
            return HealthResult(REFUSED, "ICMP unreachable from the device after its registration was accepted")
        return HealthResult(
            NO_REPLY, f"registered, but no echo reply came back through the i-HA tunnel within {timeout:g} s"
        )

    def _judge(self, d: Datagram) -> str | None:
        """None for the echo reply expected; '' for a packet that is not about this check (an earlier check's late
        reply, the device's own data); otherwise what is wrong with the answer."""
        inner = untunnel(d.data)
        echo = parse_echo(inner) if inner is not None else None
        if echo is None or echo.request or echo.identifier != ECHO_ID or echo.sequence != self.sequence:
            return ""
        if (echo.src, echo.dst, echo.payload) != (self.ctx.home_address, self.ctx.correspondent, ECHO_DATA):
            return (
                f"the echo reply came from {echo.src} to {echo.dst} with {len(echo.payload)} octets of data, not from "
                f"{self.ctx.home_address} to {self.ctx.correspondent} with the {len(ECHO_DATA)} sent"
            )
        return None
