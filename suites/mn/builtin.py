"""The MN suite's built-in default: the reference mobile node on loopback, and the profile to test it with.

``mipcheck run --suite mn`` with no ``--profile`` starts ``mipcheck mn run``
(the reference mobile node, :mod:`mipcheck.mn.runner`) as a subprocess on
free loopback addresses and ports, and tests it exactly as it would a vendor's
device: through the profile, its ``move`` command (``mipcheck mn ctl``) and
the wire. Nothing here reaches into the node.

The profile and the node's command line come from :mod:`mipcheck.mn.builtin`
(the MN fuzz campaign starts the same node): distinct 127.x addresses in a
/24 picked at random, so two runs on one machine do not collide, free high
ports, T_MONITOR 2 s and a detection period of 1 s so that the suite runs in
well under a minute; the node queues gated data (3.2.4's "queued"), so that
the queue case has something to judge. The keys are fixed, public and for
tests only.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from mipcheck.errors import MipcheckError
from mipcheck.mn.builtin import builtin_profile_text, reference_node_argv
from mipcheck.mn.faults import check_faults
from mipcheck.mn.profile import MobileNodeProfile, load_mobile_node_profile

from .env import LoopbackEnv

START_TIMEOUT = 20.0  # seconds for `mipcheck mn run` to open its control socket
PREFLIGHT_TIMEOUT = 5.0


class BuiltinMobileNode:
    """Context manager: the reference mobile node running on loopback, its profile and the suite's environment.

    ``faults`` are reference-MN fault names (``mipcheck mn faults``); the node is
    stopped on exit, also after an error or Ctrl-C.
    """

    def __init__(
        self,
        faults: Iterable[str] = (),
        *,
        interfaces: Iterable[str] = ("eth0", "eth1"),
        same_home_agent: bool = False,
    ) -> None:
        self.faults = check_faults(faults)
        self.interfaces = tuple(interfaces)
        self.same_home_agent = same_home_agent  # one address for the i-HA and the x-HA (RFC 5265 3.5)
        self.process: subprocess.Popen[bytes] | None = None
        self.profile: MobileNodeProfile | None = None
        self.env: LoopbackEnv | None = None
        self.preflight_timeout = PREFLIGHT_TIMEOUT
        self._tmp: str | None = None
        self._stderr: Path | None = None

    def __enter__(self) -> BuiltinMobileNode:
        self._tmp = tempfile.mkdtemp(prefix="mipcheck-mn-builtin-")
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        assert self._tmp is not None
        tmp = Path(self._tmp)
        sock = str(tmp / "mn.sock")
        path = tmp / "profile.toml"
        path.write_text(
            builtin_profile_text(sock, interfaces=self.interfaces, same_home_agent=self.same_home_agent),
            encoding="utf-8",
        )
        self.profile = load_mobile_node_profile(path)
        self._stderr = tmp / "mn.stderr"
        command = reference_node_argv(str(path), sock, self.faults)
        with open(self._stderr, "wb") as err:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not os.path.exists(sock):
            if self.process.poll() is not None:
                raise MipcheckError(
                    f"the built-in reference mobile node exited ({self.process.returncode}): {self._said()}"
                )
            if time.monotonic() > deadline:
                raise MipcheckError(f"the built-in reference mobile node did not start within {START_TIMEOUT:g} s")
            time.sleep(0.02)
        self.env = LoopbackEnv(self.profile)

    def _said(self) -> str:
        if self._stderr is None or not self._stderr.exists():
            return "no output"
        lines = [s for s in self._stderr.read_text(encoding="utf-8", errors="replace").splitlines() if s.strip()]
        return lines[-1].strip() if lines else "no output"

    def __exit__(self, *exc: object) -> None:
        try:
            if self.env is not None:
                self.env.close()
        finally:
            self._stop()
            if self._tmp:
                shutil.rmtree(self._tmp, ignore_errors=True)
                self._tmp = None

    def _stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


__all__ = ["BuiltinMobileNode", "builtin_profile_text"]
