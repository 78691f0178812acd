"""Health checks: a valid, authenticated registration of the health node must be answered with code 0 in time.

A check can run in the background (send it, keep fuzzing, look at its socket
between cases) or blocking. It has its own socket, so its reply is never
mistaken for a case's. The reply is judged as a mobile node would
(:func:`mipcheck.mn.acceptance.judge_reply`: Identification copied, MN-HA
authenticator valid).

Its Identification comes from the campaign's :class:`~mipcheck.fuzz.fresh.Stamper`:
in ``--identification fresh`` mode that is the clock the cases are stamped
from (shared by the workers fuzzing one target), so a check is never older
than a case just sent; in ``case`` mode a clock of its own.
"""

from __future__ import annotations

import select
import socket
import time
from dataclasses import dataclass

from mipcheck.mn.acceptance import judge_reply
from mipcheck.proto.identification import low32

from .context import FuzzContext
from .fresh import Stamper
from .strategies import rrq_fixed

OK, NO_REPLY, WRONG_REPLY, REFUSED = "ok", "no-reply", "wrong-reply", "refused"


@dataclass(frozen=True)
class HealthResult:
    status: str  # ok | no-reply | wrong-reply | refused
    detail: str

    @property
    def ok(self) -> bool:
        return self.status == OK


class HealthChecker:
    def __init__(self, ctx: FuzzContext, target: tuple[str, int], stamper: Stamper | None = None) -> None:
        self.ctx = ctx
        self.target = target
        self.stamper = stamper if stamper is not None else Stamper()
        self.sock: socket.socket | None = None
        self.outstanding: int | None = None  # Identification of the check in flight
        self.sent_at = 0.0
        self._resent = False  # the check in flight is the one retry after a 133 (RFC 5944 5.7.1)
        self.passed = 0
        self.failed = 0
        self.reopen(target)

    def reopen(self, target: tuple[str, int]) -> None:
        if self.sock is not None:
            self.sock.close()
        self.target = target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.ctx.source, 0))
        self.sock.connect(target)
        self.sock.setblocking(False)
        self.outstanding = None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def send(self, *, resent: bool = False) -> None:
        node = self.ctx.health
        self._resent = resent
        self._drain()
        with self.stamper.health_guard:  # stamped and sent in one go: strictly increasing on the wire (RFC 5944 5.7)
            ident = self.stamper.identification()
            payload = node.signer.sign(rrq_fixed(self.ctx, node, ident))
            self.outstanding = ident
            self.sent_at = time.monotonic()
            try:
                self.sock.send(payload)
            except OSError:
                pass  # ECONNREFUSED of an earlier datagram: the receive below reports it

    def _drain(self) -> None:
        while True:
            try:
                self.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue

    def poll(self) -> HealthResult | None:
        """The outcome of the check in flight once its reply is here (or refused), None while waiting."""
        if self.outstanding is None:
            return None
        while True:
            try:
                data = self.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return None
            except ConnectionRefusedError:
                return self._done(HealthResult(REFUSED, "port unreachable (ICMP) for the health check"))
            except OSError:
                continue
            result = self._judge(data)
            if result is not None:
                return self._done(result)

    def overdue(self, timeout: float) -> bool:
        return self.outstanding is not None and time.monotonic() - self.sent_at > timeout

    def timed_out(self) -> HealthResult:
        return self._done(
            HealthResult(NO_REPLY, f"no reply to a valid registration within {self.ctx.reply_timeout:g} s")
        )

    def check(self, timeout: float | None = None, *, counted: bool = True) -> HealthResult:
        """One blocking check; ``counted=False`` for the checks that only wait for a (re)started target to come up."""
        if not counted:
            passed, failed = self.passed, self.failed
            result = self.check(timeout)
            self.passed, self.failed = passed + result.ok, failed
            return result
        timeout = self.ctx.reply_timeout if timeout is None else timeout
        self.send()
        deadline = self.sent_at + timeout
        while True:
            result = self.poll()
            if result is not None:
                return result
            left = deadline - time.monotonic()
            if left <= 0:
                return self.timed_out()
            select.select([self.sock], [], [], left)

    def _judge(self, data: bytes) -> HealthResult | None:
        node = self.ctx.health
        mn = node.mn
        j = judge_reply(
            data,
            home_address=node.home_address,
            identifications=(low32(self.outstanding),),
            spi=mn.spi,
            algorithm=mn.algorithm,
            key=mn.secret.reveal(),
        )
        if j.rule == "identification" or (j.reply is not None and j.reply.home_address != node.home_address):
            return None  # a late reply to an earlier check
        if j.problem is None and j.code == 0:
            return HealthResult(OK, "accepted")
        if j.problem is None and j.code == 133 and j.reply is not None and not self._resent:
            # RFC 5944 5.7.1: an authenticated 133 carries the device's clock; a mobile node resynchronises and asks
            # again. Our clock may be behind a value the device accepted earlier (another campaign, a mutated case).
            with self.stamper.health_guard:
                self.stamper.clock.resync(j.reply.identification)
            self.send(resent=True)
            return None
        return HealthResult(WRONG_REPLY, j.problem or f"reply code {j.code}, not 0")

    def _done(self, result: HealthResult) -> HealthResult:
        self.outstanding = None
        if result.ok:
            self.passed += 1
        else:
            self.failed += 1
        return result
