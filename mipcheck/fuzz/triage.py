"""After a failed health check: which case did it, and the smallest form of it that still does.

The cases sent since the last passed check are replayed one at a time
against the (restarted) target, each followed by a blocking health check;
the first that fails it is the culprit. Minimising then keeps the failure
while removing, in this order, the valid steps around a stateful case, each
mutation (fewest mutated fields), each base extension and the authenticator
(shortest octets). Each probe that fails restarts the target, at once: a
target known to have failed is not asked again first (for a hang, asking
costs a whole reply timeout).

Every probe sends the case as the campaign does (:class:`~mipcheck.fuzz.fresh.Stamper`):
with ``--identification fresh`` each message is stamped afresh right before
it goes out, so a target with strict replay protection judges the probe as
it judged the case. ``Prober.last_sent`` holds the datagrams of the last
probe as they went out.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable
from dataclasses import replace

from mipcheck.errors import MipcheckError

from .case import Case, Draft
from .context import FuzzContext
from .fresh import Stamper
from .health import HealthChecker, HealthResult
from .target import Target

MAX_PROBES = 80


class TargetLost(MipcheckError):
    """The target cannot be brought back: the campaign stops after recording what it knows."""


class Prober:
    """Sends one case on its own and asks the health check whether the target survived it."""

    def __init__(
        self,
        ctx: FuzzContext,
        target: Target,
        health: HealthChecker,
        window: float,
        *,
        failed: bool = False,
        stamper: Stamper | None = None,
    ) -> None:
        self.ctx, self.target, self.health, self.window = ctx, target, health, window
        self.stamper = stamper if stamper is not None else health.stamper
        self.last_sent: list[bytes] = []
        self.minimised_sent: list[bytes] = []
        self.probes = 0
        self.failed = failed  # the target failed its last health check: restart it before the next probe

    def recover(self) -> None:
        """Make sure the target answers before a probe (restarting it when allowed)."""
        if not self.failed and not self.target.exited() and self.health.check().ok:
            return
        self.failed = False
        if not self.target.restart(lambda: self.health.check(min(self.ctx.reply_timeout, 0.5), counted=False).ok):
            raise TargetLost("the target stopped answering and cannot be restarted")

    def fails_case(self, case: Case) -> HealthResult | None:
        """Send ``case`` as the campaign would (each message stamped right before it goes out), then check."""
        render = self.stamper.render
        return self.fails([lambda d=draft, k=keep: render(d, k) for draft, keep in case.parts()])

    def fails(self, steps: list[bytes | Callable[[], bytes]]) -> HealthResult | None:
        """Send ``steps`` one by one (a function makes its datagram just before sending), then a health check."""
        self.recover()
        self.probes += 1
        self.last_sent = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((self.ctx.source, 0))
            s.connect(self.target_address)
            for step in steps:
                with self.stamper.guard:
                    data = step() if callable(step) else step
                    self.last_sent.append(data)
                    try:
                        s.send(data)
                    except OSError:
                        pass
                select.select([s], [], [], self.window)  # let it answer (or not) before the next step
        if self.target.watched:
            time.sleep(self.window)  # a crash takes a moment to become an exit status
        result = self.health.check()
        self.failed = not result.ok
        return None if result.ok else result

    @property
    def target_address(self) -> tuple[str, int]:
        return (self.target.address, self.target.port)


def find_culprit(prober: Prober, candidates: list[Case]) -> tuple[Case, HealthResult] | None:
    """The first candidate after which the target fails its health check (``prober.last_sent``: as it went out)."""
    for case in candidates:
        result = prober.fails_case(case)
        if result is not None:
            return case, result
    return None


def minimise(prober: Prober, case: Case) -> Case:
    """The smallest variant of ``case`` that still fails the health check.

    ``prober.minimised_sent``: the datagrams of the last probe of the result that failed (as they went out).
    """
    prober.minimised_sent = list(prober.last_sent)

    def still_fails(c: Case) -> bool:
        if prober.probes >= MAX_PROBES or prober.fails_case(c) is None:
            return False
        prober.minimised_sent = list(prober.last_sent)
        return True

    if (case.before or case.after) and still_fails(replace(case, before=(), after=())):
        case = replace(case, before=(), after=())
    changed = True
    while changed:  # fewest mutations
        changed = False
        ops = case.draft.ops
        for i in range(len(ops)):
            trial = replace(case, draft=replace(case.draft, ops=ops[:i] + ops[i + 1 :]))
            if still_fails(trial):
                case, changed = trial, True
                break
    for i in reversed(range(len(case.draft.extensions))):  # shortest octets: base extensions, then the authenticator
        exts = case.draft.extensions
        trial = replace(case, draft=replace(case.draft, extensions=exts[:i] + exts[i + 1 :]))
        if len(trial.payload) < len(case.payload) and still_fails(trial):
            case = trial
    if case.draft.signer is not None:
        trial = replace(case, draft=Draft(case.draft.fixed, case.draft.extensions, case.draft.ops, None))
        if len(trial.payload) < len(case.payload) and still_fails(trial):
            case = trial
    return case
