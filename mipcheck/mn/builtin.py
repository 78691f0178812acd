"""The built-in reference mobile node's profile and command line, for whoever starts one on loopback.

Two users, peers that may not import each other: the MN suite's built-in
default (``mipcheck run --suite mn`` with no ``--profile``) and the MN fuzz
campaign's built-in target (``mipcheck fuzz run --device mn``). Both write
the profile :func:`builtin_profile_text` makes, start ``mipcheck mn run``
(:func:`reference_node_argv`) on it and reach the node only through the
profile, its ``move`` command (or the control socket) and the wire.

The addresses are distinct 127.x addresses (i-HA, x-HA, VPN gateway, inside
and outside care-of addresses of up to two interfaces) in a /24 picked from
``seed`` (at random without one, so two runs on one machine do not collide);
the ports are free high ports. T_MONITOR is 2 s and the detection period 1 s
so that a suite runs in well under a minute; the node queues gated data
(3.2.4's "queued"). The keys are fixed, public and for tests only.
"""

from __future__ import annotations

import random
import shlex
import socket
import sys
from collections.abc import Iterable

from mipcheck.errors import MipcheckError

T_MONITOR = 2.0
DETECTION_PERIOD = 1.0
HOME_ADDRESS, X_HOME_ADDRESS, TUNNEL_INNER_ADDRESS = "10.1.9.9", "192.0.2.99", "10.8.0.5"
# Test-only keys: public by design, never to be configured on real equipment.
I_HA_SECRET, X_HA_SECRET = "mipcheck-builtin-mn-i-ha-key", "mipcheck-builtin-mn-x-ha-key"
ESP_ENCRYPTION_KEY = "6d697063686b2d6573702d6165732d31"  # 16 octets, AES-CBC
ESP_INTEGRITY_KEY = "6d697063686b2d6573702d686d61632d73686131"  # 20 octets, HMAC-SHA1-96
SPI_IN, SPI_OUT = 0x4D4E01, 0x4D4E02
HOSTS = {"i_ha": 1, "x_ha": 2, "gateway": 3, "inside": 10, "inside_2": 11, "outside": 20, "outside_2": 21}


def free_port(address: str, *also: str) -> int:
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


def addresses(rng: random.Random) -> dict[str, str]:
    """Every place of the built-in profile, by :data:`HOSTS` name, in one 127.x.y.0/24 drawn from ``rng``."""
    base = f"127.{rng.randrange(100, 250)}.{rng.randrange(0, 256)}"
    return {name: f"{base}.{host}" for name, host in HOSTS.items()}


def builtin_profile_text(
    socket_path: str,
    *,
    interfaces: Iterable[str] = ("eth0", "eth1"),
    seed: int | None = None,
    same_home_agent: bool = False,
) -> str:
    """The TOML profile of the built-in reference mobile node (both the node and its tester read it).

    ``seed`` fixes the addresses (the ports are always free ones); its ``move`` command is
    ``mipcheck mn ctl --socket SOCKET_PATH move ...``. ``same_home_agent``: the x-HA at the i-HA's
    address and port, the configuration RFC 5265 3.5 says means "outside" (MN-SAME-HA-OUTSIDE).
    """
    rng = random.Random(seed)
    a = addresses(rng)
    iha_port = free_port(a["i_ha"])
    xha_address, xha_port = (a["i_ha"], iha_port) if same_home_agent else (a["x_ha"], free_port(a["x_ha"]))
    names = list(interfaces)
    cares = [a["inside"], a["outside"], a["inside_2"], a["outside_2"]]
    mn_port = free_port(cares[0], *cares[1:])
    move = (
        f"{shlex.quote(sys.executable)} -m mipcheck mn ctl --socket {shlex.quote(socket_path)} "
        "move {interface} {network} {care_of_address}"
    )
    second = f'inside_2 = "{a["inside_2"]}"\noutside_2 = "{a["outside_2"]}"\n' if len(names) > 1 else ""
    return f"""# The built-in reference mobile node's profile (generated; test-only keys).
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
port = {iha_port}
spi = 8193
secret = "{I_HA_SECRET}"

[x_ha]
address = "{xha_address}"
port = {xha_port}
home_address = "{X_HOME_ADDRESS}"
spi = 8194
secret = "{X_HA_SECRET}"

[vpn]
gateway = "{a["gateway"]}"
port = {free_port(a["gateway"])}
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
move = {toml_string(move)}
timeout = 15
"""


def toml_string(text: str) -> str:
    return "'" + text + "'" if "'" not in text and "\n" not in text else '"' + text.replace('"', '\\"') + '"'


def reference_node_argv(profile_path: str, socket_path: str, faults: Iterable[str] = ()) -> list[str]:
    """``mipcheck mn run`` on ``profile_path`` with its control socket at ``socket_path``, quiet, with ``faults``."""
    argv = [sys.executable, "-m", "mipcheck", "mn", "run", "--profile", profile_path, "--socket", socket_path]
    argv.append("--quiet")
    for fault in faults:
        argv += ["--fault", fault]
    return argv
