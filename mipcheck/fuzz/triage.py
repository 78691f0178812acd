"""After a failed health check: which case did it, and the smallest form of it that still does.

The cases sent since the last passed check are replayed one at a time
against the (restarted) target, each followed by a blocking health check;
the first that fails it is the culprit. Minimising then keeps the failure
while removing, in this order, the valid steps around a stateful case, each
mutation (fewest mutated fields), each base extension and the authenticator
(shortest octets). Each probe that fails restarts the target, at once: a
target known to have failed is not asked again first (for a hang, asking
costs a whole reply timeout).
"""

from __future__ import annotations

import select
import socket
import time
from dataclasses import replace

from mipcheck.errors import MipcheckError

from .case import Case, Draft
from .context import FuzzContext
from .health import HealthChecker, HealthResult
from .target import Target

MAX_PROBES = 80


class TargetLost(MipcheckError):
    """The target cannot be brought back: the campaign stops after recording what it knows."""


class Prober:
    """Sends one case on its own and asks the health check whether the target survived it."""

    def __init__(
        self, ctx: FuzzContext, target: Target, health: HealthChecker, window: float, *, failed: bool = False
    ) -> None:
        self.ctx, self.target, self.health, self.window = ctx, target, health, window
        self.probes = 0
        self.failed = failed  # the target failed its last health check: restart it before the next probe

    def recover(self) -> None:
        """Make sure the target answers before a probe (restarting it when allowed)."""
        if not self.failed and not self.target.exited() and self.health.check().ok:
            return
        self.failed = False
        if not self.target.restart(lambda: self.health.check(min(self.ctx.reply_timeout, 0.5), counted=False).ok):
            raise TargetLost("the target stopped answering and cannot be restarted")

    def fails(self, steps: list[bytes]) -> HealthResult | None:
        self.recover()
        self.probes += 1
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((self.ctx.source, 0))
            s.connect(self.target_address)
            for data in steps:
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
    for case in candidates:
        result = prober.fails(case.steps())
        if result is not None:
            return case, result
    return None


def minimise(prober: Prober, case: Case) -> Case:
    """The smallest variant of ``case`` that still fails the health check."""

    def still_fails(c: Case) -> bool:
        return prober.probes < MAX_PROBES and prober.fails(c.steps()) is not None

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
