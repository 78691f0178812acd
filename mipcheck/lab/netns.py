"""Network namespaces, veth pairs, bridges and routes through ``ip``; processes inside namespaces.

Every system change goes through :func:`run`, which turns a failing command
into one :class:`~mipcheck.errors.MipcheckError` line naming the command and
what it printed. Tearing down is idempotent and works from names alone (the
namespaces of a lab share a prefix), so it also cleans up after a crashed
``up``: processes are found by the network namespace they live in
(``/proc/PID/ns/net``, what ``ip netns pids`` reads) or by the state
directory named on their command line.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from mipcheck.errors import MipcheckError

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
NEEDS = "mipcheck lab needs root and network namespaces"


class LabError(MipcheckError):
    """A system command of the lab failed; one line, exit 2."""


def run(argv: Sequence[str], *, input: str | None = None, check: bool = True, timeout: float = 20.0) -> str:
    """Run a command, return its stdout; a failure becomes one line: the command and its first error line."""
    try:
        proc = subprocess.run(
            list(argv),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if input else subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise LabError(f"{argv[0]}: command not found") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(argv)}: no answer after {timeout:g} s") from None
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)}: {_error_line(proc.stderr, proc.stdout) or f'exit {proc.returncode}'}")
    return proc.stdout


_NOISE = ("plugin '", "opening directory", "loaded ", "no authorities", "no pools", "successfully loaded")


def _error_line(stderr: str, stdout: str) -> str | None:
    """The line that says what went wrong: the first error-looking one, else the first on stderr.

    swanctl prints plugin-loading chatter on stderr before its own verdict (on stdout).
    """
    lines = [ln.strip() for ln in (stderr + "\n" + stdout).splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(_NOISE)]
    for ln in lines:
        if "fail" in ln.lower() or "error" in ln.lower():
            return ln
    return lines[0] if lines else None


def ip(*args: str, ns: str | None = None, check: bool = True) -> str:
    return run(["ip", *(("-n", ns) if ns else ()), *args], check=check)


def in_ns(ns: str, argv: Sequence[str]) -> list[str]:
    """The command line that runs ``argv`` inside namespace ``ns``."""
    return ["ip", "netns", "exec", ns, *argv]


def preflight() -> None:
    """Root and ``ip netns``, or one line and exit 2."""
    if os.geteuid() != 0:
        raise MipcheckError(f"{NEEDS} (not running as root)")
    if shutil.which("ip") is None:
        raise MipcheckError(f"{NEEDS} (no 'ip' command: install iproute2)")
    if not Path("/proc/self/ns/net").exists():
        raise MipcheckError(f"{NEEDS} (this kernel has no network namespaces)")


def namespaces(prefix: str = "") -> list[str]:
    """Names of the existing network namespaces starting with ``prefix``."""
    try:
        names = [p.name for p in NETNS_DIR.iterdir()]
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(prefix))


def add_namespace(name: str) -> None:
    try:
        ip("netns", "add", name)
    except LabError as exc:
        raise MipcheckError(f"{NEEDS} ({exc})") from None
    ip("link", "set", "lo", "up", ns=name)


def namespace_inode(name: str) -> tuple[int, int] | None:
    try:
        st = os.stat(NETNS_DIR / name)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _process_netns(pid: int) -> tuple[int, int] | None:
    try:
        st = os.stat(f"/proc/{pid}/ns/net")
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _ancestors() -> set[int]:
    """This process and its parents (never killed: ``sudo mipcheck lab down`` names the state directory)."""
    found, pid = set(), os.getpid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return found


def _all_pids() -> list[int]:
    mine = _ancestors()
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in mine]


def pids_in(inodes: Iterable[tuple[int, int]]) -> list[int]:
    """Processes whose network namespace is one of ``inodes`` (``ip netns pids``, for many at once)."""
    wanted = set(inodes)
    if not wanted:
        return []
    return [pid for pid in _all_pids() if _process_netns(pid) in wanted]


def pids_naming(text: str) -> list[int]:
    """Processes whose command line contains ``text`` (a lab's state directory)."""
    found = []
    needle = text.encode()
    for pid in _all_pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline:
            found.append(pid)
    return found


def pid_alive_in(pid: int, ns: str) -> bool:
    """Whether ``pid`` runs (not a zombie) inside namespace ``ns``."""
    inode = namespace_inode(ns)
    if inode is None or _process_netns(pid) != inode:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def kill_all(pids: Iterable[int], grace: float = 2.0) -> None:
    """SIGTERM, then SIGKILL whatever still runs after ``grace`` seconds; reap our own children."""
    pids = sorted(set(pids))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    alive = pids
    while alive and time.monotonic() < deadline:
        for pid in alive:
            _reap(pid)
        alive = [pid for pid in alive if _running(pid)]
        if alive:
            time.sleep(0.02)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    for pid in pids:
        _reap(pid)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def delete_namespaces(names: Iterable[str]) -> list[str]:
    """Kill every process in them, then delete them; returns what could not be deleted."""
    names = list(names)
    inodes = {name: namespace_inode(name) for name in names}
    kill_all(pids_in(i for i in inodes.values() if i))
    left = []
    for name in names:
        ip("netns", "delete", name, check=False)
        if namespace_inode(name) is not None:
            left.append(name)
    # a process that entered a namespace while we looked keeps it alive after its name is gone
    stragglers = pids_in(i for i in inodes.values() if i)
    if stragglers:
        kill_all(stragglers, grace=0.5)
    return left


def veth(ns_a: str, name_a: str, ns_b: str, name_b: str) -> None:
    """A veth pair with one end in each namespace (never in the host's)."""
    ip("link", "add", name_a, "type", "veth", "peer", "name", name_b, "netns", ns_b, ns=ns_a)


def bridge(ns: str, name: str) -> None:
    ip("link", "add", name, "type", "bridge", "stp_state", "0", "forward_delay", "0", ns=ns)
    ip("link", "set", name, "up", ns=ns)


def enslave(ns: str, port: str, bridge_name: str) -> None:
    ip("link", "set", port, "master", bridge_name, "up", ns=ns)


def address(ns: str, dev: str, cidr: str) -> None:
    ip("address", "add", cidr, "dev", dev, ns=ns)
    ip("link", "set", dev, "up", ns=ns)


def route(ns: str, destination: str, gateway: str) -> None:
    ip("route", "replace", destination, "via", gateway, ns=ns)


# ------------------------------------------------------------------ working inside a namespace from Python

_libc = None


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def call_in(ns: str, func, *args):  # type: ignore[no-untyped-def]
    """Run ``func(*args)`` in a fresh thread that has entered namespace ``ns``; return its result.

    Network namespaces are per thread: a socket created there stays in ``ns``
    for its whole life, whoever uses it later, and ``/proc/sys/net`` opened
    there is the namespace's. The caller's own thread never moves.
    """
    result: list = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            fd = os.open(NETNS_DIR / ns, os.O_RDONLY)
        except OSError as exc:
            failure.append(LabError(f"namespace {ns}: {exc.strerror or exc}"))
            return
        try:
            _setns(fd)
            result.append(func(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            failure.append(exc)
        finally:
            os.close(fd)

    t = threading.Thread(target=body, name=f"netns-{ns}", daemon=True)
    t.start()
    t.join()
    if failure:
        raise failure[0]
    return result[0]


def socket_in(ns: str, kind: int = socket.SOCK_DGRAM, proto: int = 0) -> socket.socket:
    """A socket living in namespace ``ns`` (IPv4)."""
    return call_in(ns, socket.socket, socket.AF_INET, kind, proto)


def _write_sysctls(values: dict[str, str]) -> None:
    for key, value in values.items():
        path = Path("/proc/sys") / key.replace(".", "/")
        path.write_text(value)


def sysctl(ns: str, values: dict[str, str]) -> None:
    try:
        call_in(ns, _write_sysctls, values)
    except OSError as exc:
        raise LabError(f"sysctl in {ns}: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None
