"""Live campaign progress on stderr: cases/s, health checks passed, findings, reactions seen.

A rich live line on a terminal; otherwise one plain line every few seconds
(logs and CI), so a long campaign still shows it is alive.
"""

from __future__ import annotations

import time
from collections import Counter

from rich.console import Console
from rich.live import Live
from rich.text import Text

PLAIN_EVERY = 5.0


class Progress:
    def __init__(self, quiet: bool = False) -> None:
        self.console = Console(stderr=True)
        self.quiet = quiet
        self.live: Live | None = None
        self.started = time.monotonic()
        self.last_plain = self.started

    def __enter__(self) -> Progress:
        if not self.quiet and self.console.is_terminal:
            self.live = Live(Text(""), console=self.console, refresh_per_second=4, transient=False)
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()

    def line(self, workers: dict[int, dict]) -> str:
        cases = sum(w["cases"] for w in workers.values())
        passed = sum(w["health_passed"] for w in workers.values())
        failed = sum(w["health_failed"] for w in workers.values())
        findings = sum(w["findings"] for w in workers.values())
        reactions: Counter = Counter()
        for w in workers.values():
            reactions.update(w["reactions"])
        elapsed = max(time.monotonic() - self.started, 1e-9)
        top = ", ".join(f"{r} {c}" for r, c in reactions.most_common(5))
        notes = "; ".join(w["note"] for w in workers.values() if w.get("note"))
        return (
            f"fuzz: {cases} cases, {cases / elapsed:,.0f}/s, health {passed} ok / {failed} failed, "
            f"{findings} findings | {top}" + (f" | {notes}" if notes else "")
        )

    def update(self, workers: dict[int, dict]) -> None:
        if self.quiet:
            return
        if self.live is not None:
            self.live.update(Text(self.line(workers)))
        elif time.monotonic() - self.last_plain >= PLAIN_EVERY:
            self.last_plain = time.monotonic()
            self.console.print(Text(self.line(workers)), highlight=False)

    def final(self, text: str) -> None:
        if not self.quiet:
            self.console.print(Text(text), highlight=False)
