"""Side channels to the device that the wire does not give: its log, an unconfigured start.

A vendor device is driven by the profile's ``[commands]`` (shell command
lines, e.g. over ssh); the built-in home agent supplies its own control
(``mipcheck.builtin``). A case asks the control and, when it has no way,
ends inconclusive or not applicable instead of guessing.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping
from typing import Any

from .profile import parse_target
from .verdicts import TesterError


class DeviceControl:
    """No side channel at all: every question answers "cannot tell"."""

    #: True when the unconfigured device is a separate instance, so other cases may run meanwhile.
    unconfigured_separate = False

    def read_log(self) -> str | None:
        """The device's log as text, or None when there is no way to read it."""
        return None

    def can_start_unconfigured(self) -> bool:
        return False

    def start_unconfigured(self) -> tuple[str, int]:
        """Bring up the device with no trusted subnet; returns where it listens."""
        raise TesterError("the profile gives no way to start the device unconfigured")

    def stop_unconfigured(self) -> None:
        pass

    def can_send_to_home_address(self) -> bool:
        return False

    def send_to_home_address(self, home_address: str, payload: bytes) -> bool:
        """Make the device send an IP packet to ``home_address`` (through its tunnel)."""
        return False

    def tunnel_delivered(self, home_address: str, marker: bytes) -> bool | None:
        """Whether the device decapsulated a tunnelled packet carrying ``marker``; None: cannot tell."""
        return None

    def can_query_tunnel_route(self) -> bool:
        return False

    def tunnel_route(self, home_address: str) -> tuple[str, int] | None:
        """Where the device would tunnel a packet for ``home_address`` (None: no UDP tunnel route)."""
        return None

    def bindings_of(self, home_address: str) -> tuple[tuple[str, str], ...] | None:
        """(care-of address, registering source) of each binding the device holds; None: cannot tell."""
        return None

    def describe(self) -> dict[str, Any]:
        return {"kind": "none"}


class CommandControl(DeviceControl):
    """The profile's ``[commands]``: shell command lines run on the tester's machine."""

    def __init__(self, commands: Mapping[str, Any], target: tuple[str, int]) -> None:
        self.commands = dict(commands)
        self.target = target
        self.timeout = float(self.commands.get("timeout", 30))
        self.unconfigured_separate = bool(self.commands.get("unconfigured_separate", False))

    def _run(self, key: str, **fields: str) -> str:
        line = self.commands[key]
        if fields:
            line = line.format(**{k: shlex.quote(v) for k, v in fields.items()})
        try:
            done = subprocess.run(line, shell=True, capture_output=True, timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            raise TesterError(f"commands.{key} did not finish within {self.timeout:g} s") from None
        except OSError as exc:
            raise TesterError(f"commands.{key} could not start: {exc.strerror or exc}") from None
        if done.returncode != 0:
            raise TesterError(f"commands.{key} exited with status {done.returncode}")
        return done.stdout.decode("utf-8", "replace")

    def read_log(self) -> str | None:
        return self._run("read_log") if "read_log" in self.commands else None

    def can_start_unconfigured(self) -> bool:
        return "start_unconfigured" in self.commands

    def start_unconfigured(self) -> tuple[str, int]:
        if not self.can_start_unconfigured():
            return super().start_unconfigured()
        self._run("start_unconfigured")
        if "unconfigured_target" in self.commands:
            return parse_target(self.commands["unconfigured_target"], key="commands.unconfigured_target")
        return self.target

    def stop_unconfigured(self) -> None:
        if "stop_unconfigured" in self.commands:
            self._run("stop_unconfigured")

    def can_send_to_home_address(self) -> bool:
        return "send_to_home_address" in self.commands

    def send_to_home_address(self, home_address: str, payload: bytes) -> bool:
        if not self.can_send_to_home_address():
            return False
        self._run("send_to_home_address", home_address=home_address)
        return True

    def describe(self) -> dict[str, Any]:
        return {"kind": "commands", "commands": sorted(self.commands)}
