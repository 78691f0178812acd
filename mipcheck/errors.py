"""Errors as data: every failure says whose fault it is and maps to an exit code.

Exit codes used by every command: 0 success, 1 the thing checked is at fault
(a MUST-level failure, a denial, a MUST-level finding), 2 bad input or a fault
of the tester (usage, config, profile, unreadable file, no reply where one was
needed by the tester itself).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2


class MipcheckError(Exception):
    """An error to report as one line, with the exit code it maps to."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(MipcheckError):
    """A config or profile value is wrong; names the key so the user can fix it."""

    def __init__(self, key: str, problem: str, *, source: str | None = None) -> None:
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{key}: {problem}")
        self.key = key
        self.problem = problem
        self.source = source


class InputError(MipcheckError):
    """A file or packet given by the user cannot be read."""
