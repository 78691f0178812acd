"""Where the MN suite's cases run: the played parties on loopback sockets or on the simulated network.

A case sees one :class:`MnEnv`: ``move(interface, network)`` (the profile's
``[commands].move``, or a callable over the simulated network), ``now()``,
``wait(seconds)``, ``wait_until(predicate, timeout)``, ``ping(path)``,
``set(party, mode)``, ``observations()`` (what the played parties saw since
the case began) and the case's :class:`~mipcheck.engine.evidence.Capture`.
The same case code runs over both drivers:

* :class:`LoopbackEnv`: UDP sockets bound to each played party's exact
  address and port (never 0.0.0.0: the device must reach the party it
  addressed) and a pump thread that hands datagrams and timer expiries to the
  actor in real time; a port that cannot be bound is a tester error naming it.
* :class:`SimEnv`: the actor attached at its places on a
  :class:`~mipcheck.sim.network.SimNetwork`; ``wait`` runs the network in
  virtual time (T_MONITOR of 60 s costs milliseconds).

A tester-side failure (cannot bind, the move command fails or hangs) raises
:class:`~mipcheck.engine.verdicts.TesterError`: an ``error`` verdict, never
the device's fault.
"""

from __future__ import annotations

import errno
import selectors
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from mipcheck.clock import SYSTEM_CLOCK, Clock
from mipcheck.engine.evidence import Capture
from mipcheck.engine.verdicts import TesterError
from mipcheck.mn.profile import DOWN, MobileNodeProfile, move_command_line

from .played import IHA, Obs, Ping, PlayedParties

Address = tuple[str, int]
MoveFunction = Callable[[str, str, "str | None"], None]  # (interface, network, care-of address or None)
POLL = 0.01  # seconds between looks at a condition on loopback


@dataclass(frozen=True)
class Moved:
    """A move the suite made (``network``: inside | outside | down; ``at``: when the move began)."""

    interface: str
    network: str
    care_of_address: str | None
    at: float


class MnEnv:
    """What a case uses; the drivers below fill in time, sockets and moves."""

    min_tolerance = 0.0  # the least tolerance on any timer judged (loopback: 1 s of scheduling noise)
    #: case id -> why this environment cannot observe what the case judges (the case is inconclusive, not run)
    unobservable: dict[str, str] = {}  # noqa: RUF012 - read-only here; an environment sets its own
    crossing = 0.05  # seconds in which a datagram may have crossed one the suite sent (in flight both ways)
    clock: Clock = SYSTEM_CLOCK

    def __init__(self, profile: MobileNodeProfile) -> None:
        self.profile = profile
        self.played = PlayedParties(profile, recorder=self._record)
        self.capture: Capture | None = None
        self.spare = Capture(self.clock)  # between cases (never written out)
        self.case_start = 0.0
        self.case_mark = 0
        self.networks: dict[str, str] = {}  # interface -> where the suite last moved it
        self.moves: list[Moved] = []
        self.notes: list[str] = []

    # ---------------------------------------------------------------- driver hooks
    def start(self) -> None:
        """Bind what the played parties need (TesterError naming the address on failure)."""

    def close(self) -> None:
        """Release sockets and threads."""

    def now(self) -> float:
        return self.clock.time()

    def wait(self, seconds: float) -> None:
        raise NotImplementedError

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        raise NotImplementedError

    def kick(self) -> None:
        """Send what the actor queued after a case changed it (a ping, a released reply)."""

    def _move(self, interface: str, network: str, care_of_address: str | None) -> None:
        raise NotImplementedError

    # ---------------------------------------------------------------- case lifecycle
    def begin(self, capture: Capture) -> None:
        self.capture = capture
        self.notes = []
        now = self.now()
        self.played.reset(now)
        self.case_start = now
        self.case_mark = self.played.mark()
        self.kick()

    def end(self) -> None:
        self.played.reset(self.now())
        self.capture = None

    def _record(self, src: Address, dst: Address, data: bytes, direction: str, note: str) -> int:
        capture = self.capture if self.capture is not None else self.spare  # an empty Capture is falsy
        return capture.record(src, dst, data, direction, note).frame

    def note(self, text: str) -> None:
        self.notes.append(text)

    # ---------------------------------------------------------------- what cases do
    def move(self, interface: str, network: str, care_of_address: str | None = None) -> str | None:
        """Put ``interface`` on ``network`` (a connection status change); returns its care-of address."""
        coa = None if network == DOWN else (care_of_address or self.profile.care_of_address(interface, network))
        started = self.now()  # the device may act before the command returns: judge from here
        self._move(interface, network, coa)
        self.networks[interface] = network
        self.moves.append(Moved(interface, network, coa, started))
        return coa

    def observations(self, since: float | None = None) -> list[Obs]:
        """What the played parties saw and sent since the case began (or since ``since``)."""
        log = self.played.snapshot(self.case_mark)
        return log if since is None else [o for o in log if o.at >= since]

    def history(self) -> list[Obs]:
        """Everything the played parties saw in this run (earlier cases included)."""
        return self.played.snapshot(0)

    def set(self, party: str, mode: str, **kw) -> None:
        self.played.set_mode(party, mode, self.now(), **kw)
        self.kick()

    def release(self, party: str = IHA) -> bool:
        done = self.played.release(party, self.now())
        self.kick()
        return done

    def ping(self, path: str, to: Address | None = None) -> Ping | None:
        sent = self.played.ping(path, self.now(), to=to)
        self.kick()
        return sent


# ---------------------------------------------------------------- real sockets


def run_move_command(template: str, interface: str, network: str, coa: str | None, timeout: float) -> None:
    """``[commands].move`` with its three substitutions (:func:`~mipcheck.mn.profile.move_command_line`);
    TesterError (with its stderr) when it fails.
    """
    line = move_command_line(template, interface, network, coa)
    try:
        done = subprocess.run(line, shell=True, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise TesterError(f"move command did not finish within {timeout:g} s ([commands].timeout): {line}") from None
    except OSError as exc:
        raise TesterError(f"move command cannot run: {exc.strerror or exc}: {line}") from None
    if done.returncode != 0:
        said = [s for s in (done.stderr or done.stdout or "").strip().splitlines() if s.strip()]
        why = said[-1].strip() if said else "no output"
        raise TesterError(f"move command failed (exit {done.returncode}): {why}: {line}")


def _bind_hint(section: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EACCES and port < 1024:
        return f" (port {port} needs root; set [{section}] port)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return " (not an address of this machine; check the profile or add it to an interface)"
    if exc.errno == errno.EADDRINUSE:
        return " (in use: is another home agent or mipcheck running there?)"
    return ""


class LoopbackEnv(MnEnv):
    """The played parties on real UDP sockets, in real time."""

    min_tolerance = 1.0
    crossing = 0.2

    def __init__(self, profile: MobileNodeProfile, move: MoveFunction | None = None) -> None:
        super().__init__(profile)
        self._move_function = move
        self._sockets: dict[Address, socket.socket] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._send_lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.send_errors: list[str] = []

    def start(self) -> None:
        if self._thread is not None:
            return
        places = {
            self.played.iha_place: "i_ha",
            self.played.xha_place: "x_ha",
            self.played.gw_place: "vpn",
        }
        for place, section in places.items():
            if place in self._sockets:
                continue
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind(place)
            except OSError as exc:
                sock.close()
                self.close()
                why = exc.strerror.lower() if exc.strerror else str(exc)
                raise TesterError(
                    f"cannot bind {place[0]}:{place[1]}: {why}{_bind_hint(section, place[1], exc)}"
                ) from None
            sock.setblocking(False)
            self._sockets[place] = sock
        self._thread = threading.Thread(target=self._pump, name="mipcheck-mn-played", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    def wait(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            if predicate():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return predicate()
            time.sleep(min(POLL, left))

    def kick(self) -> None:
        self._flush()
        self._wake()  # the pump re-reads the actor's timer

    def _move(self, interface: str, network: str, care_of_address: str | None) -> None:
        if self._move_function is not None:
            self._move_function(interface, network, care_of_address)
            return
        command = self.profile.move_command
        if not command:
            raise TesterError("the profile has no [commands].move: the suite cannot move the device between networks")
        run_move_command(command, interface, network, care_of_address, self.profile.command_timeout)

    def _flush(self) -> None:
        with self._send_lock:
            for data, local, dst in self.played.datagrams_to_send(self.now()):
                sock = self._sockets.get(local)
                if sock is None:
                    continue
                try:
                    sock.sendto(data, dst)
                except OSError as exc:  # e.g. the device's port closed: the device's matter, seen as silence
                    self.send_errors.append(f"{local[0]}:{local[1]} -> {dst[0]}:{dst[1]}: {exc.strerror or exc}")

    def _pump(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ, None)
        for place, sock in self._sockets.items():
            sel.register(sock, selectors.EVENT_READ, place)
        try:
            while not self._stop.is_set():
                timer = self.played.get_timer()
                timeout = 0.5 if timer is None else min(0.5, max(0.0, timer - self.now()))
                for key, _ in sel.select(timeout):
                    if key.data is None:
                        try:
                            while self._wake_r.recv(4096):
                                pass
                        except OSError:
                            pass
                        continue
                    self._read(key.fileobj, key.data)  # type: ignore[arg-type]
                timer = self.played.get_timer()
                if timer is not None and timer <= self.now():
                    self.played.handle_timer(self.now())
                self._flush()
        finally:
            sel.close()

    def _read(self, sock: socket.socket, place: Address) -> None:
        for _ in range(256):
            try:
                data, src = sock.recvfrom(65535)
            except BlockingIOError:
                return
            except OSError:  # an ICMP error for something we sent earlier: nothing to read
                continue
            self.played.receive_datagram(data, (src[0], src[1]), place, self.now())


# ---------------------------------------------------------------- the simulated network


class SimEnv(MnEnv):
    """The played parties on a :class:`~mipcheck.sim.network.SimNetwork`, in virtual time."""

    min_tolerance = 0.0
    crossing = 0.05

    def __init__(self, profile: MobileNodeProfile, network, move: MoveFunction) -> None:
        self.network = network
        self.clock = network.clock
        super().__init__(profile)
        self._move_function = move
        self._attached = False

    def start(self) -> None:
        if self._attached:
            return
        for place in dict.fromkeys((self.played.iha_place, self.played.xha_place, self.played.gw_place)):
            try:
                self.network.attach(self.played, *place)
            except OSError as exc:
                raise TesterError(f"cannot bind {place[0]}:{place[1]} on the simulated network: {exc}") from None
        self._attached = True

    def close(self) -> None:
        for place in (self.played.iha_place, self.played.xha_place, self.played.gw_place):
            self.network.release(place)
        self._attached = False

    def wait(self, seconds: float) -> None:
        self.network.run_for(max(seconds, 0.0))

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        self.network.run_for(max(timeout, 0.0), stop=predicate)
        return predicate()

    def kick(self) -> None:
        self.network.wake(self.played)

    def _move(self, interface: str, network: str, care_of_address: str | None) -> None:
        try:
            self._move_function(interface, network, care_of_address)
        except (ValueError, OSError) as exc:
            raise TesterError(f"move {interface} {network} failed: {exc}") from None
