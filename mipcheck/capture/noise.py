"""Library noise during one packet's dissection: collected as that packet's errors, never on stderr.

Scapy reports damage it meets while decoding (an ISAKMP transform with a bad
length, extra octets after a payload ...) through its ``scapy`` logger, whose
handler writes to stderr, and Python code reports through ``warnings``. On
the command line that text would land between packets with nothing saying
which packet it was about, so while a packet is dissected both are diverted
here and handed back as strings for the record's ``errors``.

Scapy's ``scapy.runtime`` logger drops a message repeated within a few
seconds (its ``ScapyFreqFilter``); that filter is lifted while collecting,
so every packet gets its own messages, not only the first few.
"""

from __future__ import annotations

import logging
import warnings
from types import TracebackType


class _Collector(logging.Handler):
    def __init__(self, messages: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string in a library is still its message
            text = str(record.msg)
        self.messages.append(f"{record.name} {record.levelname.lower()}: {text}")


class LibraryNoise:
    """``with LibraryNoise() as noise:`` ... then ``noise.messages`` (one string each)."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self._scapy = logging.getLogger("scapy")
        self._runtime = logging.getLogger("scapy.runtime")
        self._handlers: list[logging.Handler] = []
        self._filters: list = []
        self._warnings: warnings.catch_warnings | None = None
        self._caught: list[warnings.WarningMessage] | None = None

    def __enter__(self) -> LibraryNoise:
        self._handlers = self._scapy.handlers[:]
        self._scapy.handlers = [_Collector(self.messages)]
        self._filters = self._runtime.filters[:]
        self._runtime.filters = []
        self._warnings = warnings.catch_warnings(record=True)
        self._caught = self._warnings.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._warnings is not None
        self._warnings.__exit__(exc_type, exc, tb)
        self._scapy.handlers = self._handlers
        self._runtime.filters = self._filters
        for caught in self._caught or ():
            self.messages.append(f"{caught.category.__name__}: {caught.message}")
