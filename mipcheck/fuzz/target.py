"""The device under test as a process the campaign may watch and restart.

* :class:`LabTarget`: the built-in i-HA (:mod:`mipcheck.fuzz.lab`) in a child process;
* :class:`CommandTarget`: ``--target-cmd``, one shell command line started in
  its own process group, waited for until a health check is answered, the
  whole group killed on restart;
* :class:`RemoteTarget`: ``--target`` alone; nothing to restart, only to wait for.

``exited()`` tells a crash (the process is gone) from a hang (it lives but
does not answer).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import IO

from mipcheck.errors import MipcheckError

Ready = Callable[[], bool]  # one health check: True when answered correctly


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the campaign dies (even by SIGKILL), so no target outlives it."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)


class Target:
    address: str
    port: int
    watched = False  # a process whose exit is a crash
    restartable = False

    def start(self, ready: Ready) -> None:  # pragma: no cover - interface
        pass

    def restart(self, ready: Ready) -> bool:
        """Bring the target back; False when it cannot be brought back."""
        return self.wait_ready(ready, 0.0)

    def exited(self) -> bool:
        return False

    def stop(self) -> None:
        pass

    @staticmethod
    def wait_ready(ready: Ready, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if ready():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


class RemoteTarget(Target):
    def __init__(self, address: str, port: int, restart_wait: float = 0.0) -> None:
        self.address, self.port, self.restart_wait = address, port, restart_wait

    def start(self, ready: Ready) -> None:
        pass

    def restart(self, ready: Ready) -> bool:
        return self.wait_ready(ready, self.restart_wait)


class _ProcessTarget(Target):
    watched = True
    restartable = True
    START_TIMEOUT = 15.0

    def __init__(self, log: IO[bytes] | None = None) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = log
        self.starts = 0

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()

    def restart(self, ready: Ready) -> bool:
        self.stop()
        self.start(ready)
        return True

    def _await(self, ready: Ready, what: str) -> None:
        deadline = time.monotonic() + self.START_TIMEOUT
        while time.monotonic() < deadline:
            if self.exited():
                raise MipcheckError(f"{what} exited with status {self.proc.returncode} before answering a health check")
            if ready():
                return
            time.sleep(0.02)  # refused at once while the target binds: do not spin
        self.stop()
        raise MipcheckError(f"{what} did not answer a health check within {self.START_TIMEOUT:.0f} s")


class CommandTarget(_ProcessTarget):
    def __init__(self, command: str, address: str, port: int, log: IO[bytes] | None = None) -> None:
        super().__init__(log)
        self.command, self.address, self.port = command, address, port

    def start(self, ready: Ready) -> None:
        out = self.log if self.log is not None else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            self.command,
            shell=True,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            preexec_fn=_die_with_parent,
        )
        self.starts += 1
        self._await(ready, "--target-cmd")


class LabTarget(_ProcessTarget):
    """The built-in i-HA in a child process; its port is chosen by the kernel and read from its first line.

    ``faults``: fault profiles it runs with (``mipcheck ha faults``; the robustness ones are fuzz targets).
    """

    def __init__(self, log: IO[bytes] | None = None, faults: tuple[str, ...] = ()) -> None:
        super().__init__(log)
        self.address, self.port = "127.0.0.1", 0
        self.faults = tuple(faults)

    def launch(self) -> tuple[str, int]:
        err = self.log if self.log is not None else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mipcheck.fuzz.lab", str(self.port), *(f"--fault={f}" for f in self.faults)],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            preexec_fn=_die_with_parent,
        )
        self.starts += 1
        line = self.proc.stdout.readline().decode().split() if self.proc.stdout else []
        if len(line) != 3 or line[0] != "READY":
            self.stop()
            raise MipcheckError("the built-in home agent did not start")
        self.address, self.port = line[1], int(line[2])  # a restart reuses the port: the profile stays valid
        return self.address, self.port

    def start(self, ready: Ready) -> None:
        if self.proc is None or self.exited():
            self.launch()
        self._await(ready, "the built-in home agent")
