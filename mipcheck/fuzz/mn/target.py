"""The mobile node under test as a process the campaign may watch and restart, and how it is moved.

* :class:`ReferenceMnTarget`: the built-in reference mobile node (``mipcheck
  mn run``) in a child process on a generated profile
  (:mod:`mipcheck.mn.builtin`) whose addresses are fixed (ports are free
  ones), so that (seed, index) give the same octets in every run; its exit is
  a crash, and it is restarted on the same profile;
* ``--target-cmd`` with an MN profile: :class:`~mipcheck.fuzz.target.CommandTarget`;
* an MN profile alone: :class:`~mipcheck.fuzz.target.RemoteTarget` (a
  device already running; nothing to restart, only to wait for).

Moves: :class:`CtlMover` asks the reference node's control socket directly
(well under a millisecond, against the hundreds of a ``mipcheck mn ctl``
process); :class:`CommandMover` runs the profile's ``[commands].move``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from mipcheck.errors import ConfigError, MipcheckError
from mipcheck.mn.builtin import builtin_profile_text, reference_node_argv
from mipcheck.mn.control import ask
from mipcheck.mn.profile import MobileNodeProfile, load_mobile_node_profile, move_command_line

from ..target import Ready, _die_with_parent, _ProcessTarget

BUILTIN_SEED = 5265  # fixes the built-in profile's addresses (127.x.y.0/24): the cases' octets depend on them
BUILTIN_INTERFACES = ("eth0",)
SOCKET_TIMEOUT = 20.0  # seconds for `mipcheck mn run` to open its control socket


class MoveFailed(MipcheckError):
    """The device could not be moved (the command failed, or the reference node refused)."""


class Mover:
    def move(self, network: str) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class CtlMover(Mover):
    """The built-in reference node: one JSON line to its control socket."""

    def __init__(self, socket_path: str, interface: str, timeout: float = 5.0) -> None:
        self.socket_path, self.interface, self.timeout = socket_path, interface, timeout

    def move(self, network: str) -> None:
        try:
            request = {"command": "move", "interface": self.interface, "network": network}
            answer = ask(self.socket_path, request, timeout=self.timeout)
        except MipcheckError as exc:
            raise MoveFailed(str(exc)) from None
        if not answer.get("ok"):
            raise MoveFailed(str(answer.get("error") or "move refused"))


class CommandMover(Mover):
    """A vendor device: the profile's ``[commands].move`` line, ``[commands].timeout`` at most."""

    def __init__(self, profile: MobileNodeProfile, interface: str) -> None:
        if not profile.move_command:
            raise ConfigError("commands.move", "missing: the campaign moves the device inside before every case")
        self.profile, self.interface = profile, interface

    def move(self, network: str) -> None:
        coa = self.profile.care_of_address(self.interface, network)
        assert self.profile.move_command is not None
        line = move_command_line(self.profile.move_command, self.interface, network, coa)
        timeout = self.profile.command_timeout
        try:
            done = subprocess.run(line, shell=True, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise MoveFailed(f"move command did not finish within {timeout:g} s: {line}") from None
        except OSError as exc:
            raise MoveFailed(f"move command cannot run: {exc.strerror or exc}: {line}") from None
        if done.returncode != 0:
            said = [s for s in (done.stderr or done.stdout or "").strip().splitlines() if s.strip()]
            raise MoveFailed(f"move command failed (exit {done.returncode}): {said[-1] if said else 'no output'}")


class ReferenceMnTarget(_ProcessTarget):
    """The built-in reference mobile node in a child process; ``faults`` as ``mipcheck mn run --fault``."""

    def __init__(self, log: IO[bytes] | None = None, faults: tuple[str, ...] = ()) -> None:
        super().__init__(log)
        self.faults = tuple(faults)
        self.dir = Path(tempfile.mkdtemp(prefix="mipcheck-fuzz-mn-"))
        self.socket_path = str(self.dir / "mn.sock")
        self.profile_path = str(self.dir / "profile.toml")
        text = builtin_profile_text(self.socket_path, interfaces=BUILTIN_INTERFACES, seed=BUILTIN_SEED)
        Path(self.profile_path).write_text(text, encoding="utf-8")
        self.profile = load_mobile_node_profile(self.profile_path)
        coa = self.profile.care_of_address(BUILTIN_INTERFACES[0], "inside")
        self.address, self.port = coa or "127.0.0.1", self.profile.port

    def mover(self) -> CtlMover:
        return CtlMover(self.socket_path, BUILTIN_INTERFACES[0])

    def launch(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)  # left by a node that was killed
        err = self.log if self.log is not None else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            reference_node_argv(self.profile_path, self.socket_path, self.faults),
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            preexec_fn=_die_with_parent,
        )
        self.starts += 1
        deadline = time.monotonic() + SOCKET_TIMEOUT
        while not os.path.exists(self.socket_path):
            if self.exited():
                raise MipcheckError(f"the built-in reference mobile node exited with status {self.proc.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise MipcheckError(f"the built-in reference mobile node did not start within {SOCKET_TIMEOUT:g} s")
            time.sleep(0.01)

    def start(self, ready: Ready) -> None:
        if self.proc is None or self.exited():
            self.launch()
        self._await(ready, "the built-in reference mobile node")

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
