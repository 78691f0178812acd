"""Throw-away namespace labs for the data-plane root tests (tests/test_ha_ipip.py, tests/test_fa_link.py).

Namespaces are named ``mcx-<random>-<role>`` and deleted, with every process
in them, whatever happens (:func:`namespaces`); agents run as ``mipcheck``
subprocesses inside them (:class:`Agent`). ``WHY_NOT`` is why they cannot run
here (None: they can), for ``skipif`` reasons.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import selectors
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, TUN, raw sockets)"
    if shutil.which("ip") is None:
        return "needs ip (iproute2)"
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun"
    return None


WHY_NOT = _why_not()
needs_root = pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")


def ip(*args: str, ns: str | None = None, check: bool = True) -> str:
    argv = ["ip", *(("-n", ns) if ns else ()), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


def socket_in(ns: str, kind: int, proto: int = 0, family: int = socket.AF_INET) -> socket.socket:
    """A socket living in namespace ``ns``."""
    from mipcheck.lab.netns import call_in

    return call_in(ns, socket.socket, family, kind, proto)


@contextlib.contextmanager
def namespaces(*roles: str) -> Iterator[dict[str, str]]:
    """``mcx-<random>-<role>`` namespaces, deleted (with every process in them) whatever happens."""
    tag = f"mcx-{secrets.token_hex(3)}"
    names = {role: f"{tag}-{role}" for role in roles}
    try:
        for name in names.values():
            ip("netns", "add", name)
            ip("link", "set", "lo", "up", ns=name)
        yield names
    finally:
        for name in names.values():
            pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), 9)
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)


def veth(ns_a: str, a: str, addr_a: str, ns_b: str, b: str, addr_b: str) -> None:
    ip("link", "add", a, "netns", ns_a, "type", "veth", "peer", "name", b, "netns", ns_b)
    for ns, dev, addr in ((ns_a, a, addr_a), (ns_b, b, addr_b)):
        ip("addr", "add", addr, "dev", dev, ns=ns)
        ip("link", "set", dev, "up", ns=ns)


class Agent:
    """A ``mipcheck`` agent subprocess in a namespace; its stdout lines as they come."""

    def __init__(self, ns: str, argv: list[str], cwd: Path) -> None:
        cmd = ["ip", "netns", "exec", ns, sys.executable, "-m", "mipcheck.cli", *argv]
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ}
        )
        self.lines: list[str] = []

    def wait_for(self, text: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            for line in self.lines:
                if text in line:
                    return line
            while time.monotonic() < deadline:
                if not sel.select(max(0.0, deadline - time.monotonic())):
                    break
                line = self.proc.stdout.readline()
                if not line:
                    break
                self.lines.append(line)
                if text in line:
                    return line
        finally:
            sel.close()
        err = self.proc.stderr.read() if self.proc.poll() is not None else ""
        raise AssertionError(f"no {text!r} from the agent; output: {''.join(self.lines)} {err}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def wait_link(ns: str, dev: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(["ip", "-n", ns, "link", "show", dev], capture_output=True).returncode == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"{dev} did not appear in {ns}")
