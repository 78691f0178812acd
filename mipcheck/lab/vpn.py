"""strongSwan in a namespace: the lab's VPN gateway (and a VPN client for the MN's namespace).

The kernel has no ESP, so charon runs with its user-space ``kernel-libipsec``
plugin: ESP is done in charon and packets reach the namespace's routing
through a TUN device (``ipsec0``); ``encap = yes`` forces ESP into UDP 4500
(RFC 3948), which libipsec needs anyway. IKEv2 with a pre-shared key; the
gateway hands out VPN-TIAs from the pool (a virtual IP per client) and its
child SA covers the enterprise's internal network.

charon writes its pid file to a fixed path (``/var/run/charon.pid``), so each
instance runs in a mount namespace of its own where its state directory is
bind-mounted over ``/run``: its pid file, vici socket and log land in that
directory (``<state>/vpn-gateway/``), which is where ``swanctl --uri`` finds it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import netns
from .topology import INTERNAL_NETWORK, VPN_GATEWAY_ADDRESS, VPN_POOL

CHARON_PATHS = ("/usr/lib/ipsec/charon", "/usr/libexec/ipsec/charon", "/usr/lib/strongswan/charon")
PLUGINS_DIRS = ("/usr/lib/ipsec/plugins", "/usr/libexec/ipsec/plugins", "/usr/lib/strongswan/plugins")
PLUGINS = (
    "random nonce kdf pem pkcs1 x509 pubkey revocation constraints sha1 sha2 md5 hmac aes gmp curve25519 "
    "kernel-libipsec kernel-netlink socket-default vici updown attr"
)
GATEWAY_ID = "vpn.lab.example"
CONNECTION = "rw"
CLIENT_CONNECTION = "vpn"
CHILD = "net"
PACKAGES = "strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-extra-plugins"
START_TIMEOUT = 5.0


@dataclass(frozen=True)
class Status:
    running: bool
    reason: str
    pid: int | None = None

    def __str__(self) -> str:
        return f"vpn: {'running' if self.running else 'not running'} ({self.reason})"


def find_charon() -> str | None:
    for path in CHARON_PATHS:
        if os.access(path, os.X_OK):
            return path
    return None


def missing() -> str | None:
    """Why strongSwan cannot run here (None: it can)."""
    if find_charon() is None:
        return f"strongSwan's charon not found; install {PACKAGES}"
    if shutil.which("swanctl") is None:
        return f"swanctl not found; install {PACKAGES}"
    if not any(Path(d, "libstrongswan-kernel-libipsec.so").exists() for d in PLUGINS_DIRS):
        return f"kernel-libipsec plugin not found; install {PACKAGES}"
    if not Path("/dev/net/tun").exists():
        return "no /dev/net/tun (kernel-libipsec needs TUN)"
    return None


def strongswan_conf(port_nat_t: int | None = None) -> str:
    """charon's settings inside its mount namespace, where the state directory is /run.

    ``port_nat_t`` moves charon's NAT-T port off 4500 (the lab break ``vpn-no-natt``).
    """
    extra = f"    port_nat_t = {port_nat_t}\n" if port_nat_t is not None else ""
    return f"""\
charon {{
    load = {PLUGINS}
    install_virtual_ip = yes
{extra}    plugins {{
        vici {{
            socket = unix:///run/charon.vici
        }}
    }}
    filelog {{
        log {{
            path = /run/charon.log
            time_format = %b %e %T
            flush_line = yes
            default = 1
            ike = 1
        }}
    }}
    syslog {{
        daemon {{
            default = -1
        }}
    }}
}}
"""


def gateway_conf(psk: str) -> str:
    return f"""\
connections {{
    {CONNECTION} {{
        version = 2
        local_addrs = {VPN_GATEWAY_ADDRESS}
        pools = tia
        encap = yes
        proposals = aes128-sha256-x25519
        local {{
            auth = psk
            id = {GATEWAY_ID}
        }}
        remote {{
            auth = psk
            id = %any
        }}
        children {{
            {CHILD} {{
                local_ts = {INTERNAL_NETWORK}
                esp_proposals = aes128-sha256
            }}
        }}
    }}
}}
pools {{
    tia {{
        addrs = {VPN_POOL}
    }}
}}
secrets {{
    ike-lab {{
        secret = "{psk}"
    }}
}}
"""


def client_conf(psk: str, identity: str, local_address: str | None = None) -> str:
    """A VPN client's swanctl.conf; ``local_address``: IKE and ESP from there (the MN's x-HoA in mode cvc, 2.3)."""
    local = f"        local_addrs = {local_address}\n" if local_address else ""
    return f"""\
connections {{
    {CLIENT_CONNECTION} {{
        version = 2
{local}        remote_addrs = {VPN_GATEWAY_ADDRESS}
        vips = 0.0.0.0
        encap = yes
        proposals = aes128-sha256-x25519
        local {{
            auth = psk
            id = {identity}
        }}
        remote {{
            auth = psk
            id = {GATEWAY_ID}
        }}
        children {{
            {CHILD} {{
                remote_ts = {INTERNAL_NETWORK}
                esp_proposals = aes128-sha256
            }}
        }}
    }}
}}
secrets {{
    ike-lab {{
        secret = "{psk}"
    }}
}}
"""


def write_config(directory: Path, swanctl: str, settings: str | None = None) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    (directory / "strongswan.conf").write_text(settings if settings is not None else strongswan_conf())
    path = directory / "swanctl.conf"
    path.write_text(swanctl)
    os.chmod(path, 0o600)


def start(ns: str, directory: Path) -> subprocess.Popen:
    """Start charon in ``ns`` with ``directory`` as its /run; returns at once (see :func:`wait_ready`)."""
    charon = find_charon()
    assert charon is not None
    argv = netns.in_ns(
        ns,
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            'mount --bind "$0" /run && exec "$1"',
            str(directory),
            charon,
        ],
    )
    env = {**os.environ, "STRONGSWAN_CONF": "/run/strongswan.conf"}
    with open(directory / "charon.out", "ab") as out:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def swanctl(directory: Path, *args: str) -> str:
    return netns.run(["swanctl", *args, "--uri", f"unix://{directory / 'charon.vici'}"], timeout=15)


def wait_ready(proc: subprocess.Popen, directory: Path, timeout: float = START_TIMEOUT) -> None:
    """Until charon's vici socket answers; then load the connection with swanctl."""
    deadline = time.monotonic() + timeout
    sock = directory / "charon.vici"
    while not sock.exists():
        if proc.poll() is not None:
            raise netns.LabError(f"charon exited with {proc.returncode}: {_tail(directory)}")
        if time.monotonic() > deadline:
            raise netns.LabError(f"charon did not open its vici socket in {timeout:g} s: {_tail(directory)}")
        time.sleep(0.02)
    netns.run(
        ["swanctl", "--load-all", "--file", str(directory / "swanctl.conf"), "--uri", f"unix://{sock}"], timeout=15
    )


def _tail(directory: Path) -> str:
    for name in ("charon.out", "charon.log"):
        try:
            lines = [line for line in (directory / name).read_text().splitlines() if line.strip()]
        except OSError:
            continue
        if lines:
            return lines[-1].strip()
    return "no output"


def status(ns: str, directory: Path, pid: int | None, not_started: str | None = None) -> Status:
    if not_started:
        return Status(False, not_started)
    if pid is None or not netns.pid_alive_in(pid, ns):
        return Status(False, f"charon (pid {pid}) is gone; see {directory / 'charon.log'}")
    try:
        out = swanctl(directory, "--list-conns")
    except netns.LabError as exc:
        return Status(False, f"charon pid {pid} does not answer: {exc}", pid)
    if f"{CONNECTION}:" not in out and f"{CLIENT_CONNECTION}:" not in out:
        return Status(False, f"charon pid {pid} has no connection loaded", pid)
    return Status(True, f"charon pid {pid}, IKEv2 PSK, kernel-libipsec, ESP in UDP 4500", pid)


def initiate_command(directory: Path) -> str:
    """The shell command line that brings a client's child SA up (``mn run --vpn-up`` in mode cvc)."""
    return f"swanctl --initiate --child {CHILD} --timeout 10 --uri unix://{directory / 'charon.vici'}"


def terminate_command(directory: Path) -> str:
    """The shell command line that takes a client's IKE SA down (``mn run --vpn-down``)."""
    return f"swanctl --terminate --ike {CLIENT_CONNECTION} --timeout 10 --uri unix://{directory / 'charon.vici'}"


def initiate(directory: Path) -> str:
    """Bring up the client's child SA (blocks until IKE is done); returns swanctl's output."""
    return swanctl(directory, "--initiate", "--child", CHILD, "--timeout", "10")
