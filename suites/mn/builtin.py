"""The MN suite's built-in default: the reference mobile node on loopback, and the profile to test it with.

``mipcheck run --suite mn`` with no ``--profile`` starts ``mipcheck mn run``
(the reference mobile node, :mod:`mipcheck.mn.runner`) as a subprocess on
free loopback addresses and ports, and tests it exactly as it would a vendor's
device: through the profile, its ``move`` command (``mipcheck mn ctl``) and
the wire. Nothing here reaches into the node.

The addresses are distinct 127.x addresses (i-HA, x-HA, VPN gateway, inside
and outside care-of addresses of two interfaces) in a /24 picked at random,
so two runs on one machine do not collide; the ports are free high ports.
T_MONITOR is 2 s and the detection period 1 s so that the suite runs in well
under a minute; the node queues gated data (3.2.4's "queued"), so that the
queue case has something to judge. The keys are fixed, public and for tests
only.
"""

from __future__ import annotations

import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from mipcheck.errors import MipcheckError
from mipcheck.mn.faults import check_faults
from mipcheck.mn.profile import MobileNodeProfile, load_mobile_node_profile

from .env import LoopbackEnv

T_MONITOR = 2.0
DETECTION_PERIOD = 1.0
START_TIMEOUT = 20.0  # seconds for `mipcheck mn run` to open its control socket
PREFLIGHT_TIMEOUT = 5.0
HOME_ADDRESS, X_HOME_ADDRESS, TUNNEL_INNER_ADDRESS = "10.1.9.9", "192.0.2.99", "10.8.0.5"
# Test-only keys: public by design, never to be configured on real equipment.
I_HA_SECRET, X_HA_SECRET = "mipcheck-builtin-mn-i-ha-key", "mipcheck-builtin-mn-x-ha-key"
ESP_ENCRYPTION_KEY = "6d697063686b2d6573702d6165732d31"  # 16 octets, AES-CBC
ESP_INTEGRITY_KEY = "6d697063686b2d6573702d686d61632d73686131"  # 20 octets, HMAC-SHA1-96
SPI_IN, SPI_OUT = 0x4D4E01, 0x4D4E02
HOSTS = {"i_ha": 1, "x_ha": 2, "gateway": 3, "inside": 10, "inside_2": 11, "outside": 20, "outside_2": 21}


def _free_port(address: str, *also: str) -> int:
    """A UDP port free on ``address`` (and on every address of ``also``)."""
    for _ in range(64):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((address, 0))
            port = s.getsockname()[1]
        ok = True
        for other in also:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind((other, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise MipcheckError(f"no free UDP port on {address} and {', '.join(also)}")


def _addresses(rng: random.Random) -> dict[str, str]:
    base = f"127.{rng.randrange(100, 250)}.{rng.randrange(0, 256)}"
    return {name: f"{base}.{host}" for name, host in HOSTS.items()}


def builtin_profile_text(
    socket_path: str, *, interfaces: Iterable[str] = ("eth0", "eth1"), seed: int | None = None
) -> str:
    """The TOML profile of the built-in default (both the node and the suite read it)."""
    rng = random.Random(seed)
    a = _addresses(rng)
    names = list(interfaces)
    cares = [a["inside"], a["outside"], a["inside_2"], a["outside_2"]]
    mn_port = _free_port(cares[0], *cares[1:])
    move = (
        f"{shlex.quote(sys.executable)} -m mipcheck mn ctl --socket {shlex.quote(socket_path)} "
        "move {interface} {network} {care_of_address}"
    )
    second = f'inside_2 = "{a["inside_2"]}"\noutside_2 = "{a["outside_2"]}"\n' if len(names) > 1 else ""
    return f"""# The built-in default of `mipcheck run --suite mn` (generated; test-only keys).
[dut]
role = "mn"
home_address = "{HOME_ADDRESS}"
interfaces = [{", ".join(f'"{n}"' for n in names)}]
t_monitor = {T_MONITOR}
detection_period = {DETECTION_PERIOD}
port = {mn_port}
when_gated = "queue"

[i_ha]
address = "{a["i_ha"]}"
port = {_free_port(a["i_ha"])}
spi = 8193
secret = "{I_HA_SECRET}"

[x_ha]
address = "{a["x_ha"]}"
port = {_free_port(a["x_ha"])}
home_address = "{X_HOME_ADDRESS}"
spi = 8194
secret = "{X_HA_SECRET}"

[vpn]
gateway = "{a["gateway"]}"
port = {_free_port(a["gateway"])}
inner_address = "{TUNNEL_INNER_ADDRESS}"
spi_in = {SPI_IN}
spi_out = {SPI_OUT}
encryption = "AES-CBC"
encryption_key_hex = "{ESP_ENCRYPTION_KEY}"
integrity = "HMAC-SHA1-96"
integrity_key_hex = "{ESP_INTEGRITY_KEY}"

[networks]
inside = "{a["inside"]}"
outside = "{a["outside"]}"
{second}
[commands]
move = {_toml_string(move)}
timeout = 15
"""


def _toml_string(text: str) -> str:
    return "'" + text + "'" if "'" not in text and "\n" not in text else '"' + text.replace('"', '\\"') + '"'


class BuiltinMobileNode:
    """Context manager: the reference mobile node running on loopback, its profile and the suite's environment.

    ``faults`` are reference-MN fault names (``mipcheck mn faults``); the node is
    stopped on exit, also after an error or Ctrl-C.
    """

    def __init__(self, faults: Iterable[str] = (), *, interfaces: Iterable[str] = ("eth0", "eth1")) -> None:
        self.faults = check_faults(faults)
        self.interfaces = tuple(interfaces)
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
        path.write_text(builtin_profile_text(sock, interfaces=self.interfaces), encoding="utf-8")
        self.profile = load_mobile_node_profile(path)
        self._stderr = tmp / "mn.stderr"
        command = [sys.executable, "-m", "mipcheck", "mn", "run", "--profile", str(path), "--socket", sock, "--quiet"]
        for fault in self.faults:
            command += ["--fault", fault]
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
