"""The plaintext safety invariant of RFC 5265, judged from the detection core's events alone.

Why separate from the core: an oracle that reuses the core's own gate would
agree with every bug in it. This one keeps its own record per interface,
built only from what the core reports (status changes, the direct i-HA
client's replies, data decisions and releases), and states the invariant
once: user data may leave an interface in plaintext only if the interface's
last direct i-HA registration since its last status change was accepted
with an authenticated TNC extension (3.2.3, 4.1) and is at most T_MONITOR
old (3.2.4), and no re-registration failed since (3.3). Each violation names
the rule it breaks, as a :class:`mipcheck.outcomes.Violation`.
"""

from __future__ import annotations

from dataclasses import dataclass

from mipcheck.outcomes import Party, Violation

from .core import Denied, Registered, TimedOut
from .detection_events import (
    ClientEvent,
    DataDecision,
    DataReleased,
    DetectionEvent,
    LinkChanged,
    Role,
)

CHECK_ID = "MN-PLAINTEXT-SAFETY"
STATUS_CHANGE = "5265-3.2.2-STATUS-CHANGE"
QUEUE_HELD = "5265-3.2.4-QUEUE-HELD"


@dataclass
class _Record:
    changed_at: float | None = None  # last status change seen
    registered_at: float | None = None  # last direct i-HA outcome since then
    tnc: bool = False
    tnc_issue: str | None = None
    failed: str | None = None


class PlaintextSafetyChecker:
    """Feed it every event (:meth:`observe`) and every data decision (:meth:`data`); read :attr:`violations`."""

    def __init__(self, t_monitor: float) -> None:
        self.t_monitor = t_monitor
        self.records: dict[str, _Record] = {}
        self.violations: list[Violation] = []
        self.plaintext_checked = 0

    def observe(self, event: DetectionEvent) -> None:
        rec = self.records.setdefault(event.interface, _Record())
        if isinstance(event, LinkChanged):
            self.records[event.interface] = _Record(changed_at=event.at)
        elif isinstance(event, ClientEvent) and event.role is Role.IHA:
            ev = event.event
            if isinstance(ev, Registered):
                rec.registered_at, rec.tnc, rec.tnc_issue, rec.failed = event.at, ev.tnc, ev.tnc_issue, None
            elif isinstance(ev, Denied | TimedOut):
                rec.failed = type(ev).__name__
        elif isinstance(event, DataReleased):
            v = self.data(event.interface, event.decision, event.at, what="queued packet released")
            if v is not None:  # 3.2.4: queues wait for a successful re-registration
                self.violations[-1] = Violation(QUEUE_HELD, v.party, v.code, v.detail)

    def data(self, interface: str, decision: DataDecision, now: float, *, what: str = "user data") -> Violation | None:
        """Judge one decision; a violation is recorded and returned."""
        if decision is not DataDecision.PLAINTEXT:
            return None
        self.plaintext_checked += 1
        rule, detail = self._broken(interface, now)
        if rule is None:
            return None
        v = Violation(rule, Party.MOBILE_NODE, CHECK_ID, f"{what} in plaintext on {interface} at {now:.3f}: {detail}")
        self.violations.append(v)
        return v

    def _broken(self, interface: str, now: float) -> tuple[str | None, str]:
        rule, detail = self._own(self.records.get(interface, _Record()), now)
        if rule == STATUS_CHANGE and any(
            self._own(rec, now)[0] is None for other, rec in self.records.items() if other != interface
        ):
            return "5265-3.2.1-PER-INTERFACE", "only another interface is registered with the i-HA"
        return rule, detail

    def _own(self, rec: _Record, now: float) -> tuple[str | None, str]:
        if rec.registered_at is None:
            return STATUS_CHANGE, "no i-HA registration since the last connection status change"
        if rec.failed is not None:
            return "5265-3.3-REREG-FAIL-STOP-PLAINTEXT", f"the last re-registration failed ({rec.failed})"
        if not rec.tnc:
            if rec.tnc_issue is not None:
                return "5265-4.1-KEEP-IPSEC-WITHOUT-TNC", f"the i-HA reply's TNC cannot be relied on ({rec.tnc_issue})"
            return "5265-3.2.3-TNC-BEFORE-INSIDE", "the i-HA reply carried no Trusted Networks Configured extension"
        age = now - rec.registered_at
        if age > self.t_monitor:
            return (
                "5265-3.2.4-NO-DATA-AFTER-TMONITOR",
                f"last i-HA registration {age:.1f} s ago > T_MONITOR {self.t_monitor} s",
            )
        return None, ""
