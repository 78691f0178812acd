"""``mipcheck mn run`` and ``mipcheck mn ctl`` as a user runs them: a subprocess on loopback, a played i-HA.

The i-HA is a UDP socket with the Scapy layers (docs/design/mn-loopback.md);
addresses are 127.x (no privileges needed on Linux), distinct per test, and
ports are picked free by binding port 0 first.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP

from mipcheck.layers import (
    Key,
    MIPExtMNHAAuth,
    MIPExtTNC,
    MIPExtUDPTunnelReply,
    MIPExtUDPTunnelRequest,
    MobileIPMessage,
    RegistrationReply,
    RegistrationRequest,
    TunnelData,
)

REPO = Path(__file__).resolve().parents[1]
HOA, CN, IHA_KEY = "10.1.9.9", "192.0.2.7", b"iiii"


def mipcheck(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mipcheck", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def free_port(*addresses: str) -> int:
    """A UDP port free on every one of ``addresses``."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((addresses[0], 0))
            port = s.getsockname()[1]
        try:
            for address in addresses[1:]:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.bind((address, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


@pytest.fixture
def net(request: pytest.FixtureRequest) -> str:
    """A 127.a.b prefix of this test's own (a from the test name, b from the process)."""
    return f"127.{zlib.crc32(request.node.name.encode()) % 200 + 20}.{os.getpid() % 250 + 1}"


def write_profile(path: Path, net: str, *, iha_port: int, mn_port: int) -> None:
    path.write_text(f"""
[dut]
home_address = "{HOA}"
port = {mn_port}
[i_ha]
address = "{net}.1"
port = {iha_port}
spi = 21093
secret_hex = "{IHA_KEY.hex()}"
[x_ha]
address = "{net}.2"
port = {iha_port}
home_address = "192.0.2.99"
spi = 21094
secret_hex = "78787878"
[vpn]
gateway = "192.0.2.10"
inner_address = "10.8.0.5"
spi_in = 4097
spi_out = 4098
encryption = "AES-CBC"
encryption_key_hex = "{bytes(range(16)).hex()}"
integrity_key_hex = "{bytes(20).hex()}"
[networks]
inside = "{net}.5"
outside = "{net}.6"
""")


@pytest.fixture
def node(tmp_path: Path, net: str) -> Iterator[tuple[subprocess.Popen[str], str, socket.socket, int]]:
    """A running ``mipcheck mn run`` and the played i-HA's socket; always stopped."""
    iha = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    iha.bind((f"{net}.1", 0))
    iha.settimeout(5)
    mn_port = free_port(f"{net}.5", f"{net}.6")
    write_profile(tmp_path / "mn.toml", net, iha_port=iha.getsockname()[1], mn_port=mn_port)
    ctl = str(tmp_path / "ctl.sock")
    args = ["mn", "run", "--profile", str(tmp_path / "mn.toml"), "--socket", ctl, "--log-json", str(tmp_path / "log")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mipcheck", *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 15
        while not os.path.exists(ctl):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "mipcheck mn run did not open its control socket"
            time.sleep(0.05)
        yield proc, ctl, iha, mn_port
    finally:
        iha.close()
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_inside_registration_echo_and_clean_stop(node, net: str) -> None:
    proc, ctl, iha, mn_port = node
    moved = mipcheck("mn", "ctl", "--socket", ctl, "move", "eth0", "inside")
    assert moved.returncode == 0 and moved.stdout.strip() == f"eth0: inside, care-of address {net}.5", moved
    # the registration: D, UDP Tunnel Request (F) before the authenticator; answered with TNC
    data, src = iha.recvfrom(2048)
    assert src == (f"{net}.5", mn_port)
    req = MobileIPMessage(data)
    assert isinstance(req, RegistrationRequest) and (req.home_address, req.care_of_address, req.D) == (HOA, src[0], 1)
    udp, auth = req.extensions
    assert isinstance(udp, MIPExtUDPTunnelRequest) and udp.F == 1 and isinstance(auth, MIPExtMNHAAuth)
    assert req.verify({21093: Key(IHA_KEY)})[0].valid
    exts = [MIPExtUDPTunnelReply(), MIPExtTNC(), MIPExtMNHAAuth(spi=21093, key=IHA_KEY)]
    reply = RegistrationReply(
        home_address=HOA, home_agent=req.home_agent, identification=req.identification, extensions=exts
    )
    iha.sendto(bytes(reply), src)
    # user data: a TD echo from the i-HA, answered with a TD echo reply to the i-HA
    iha.sendto(bytes(TunnelData() / IP(src=CN, dst=HOA) / ICMP(id=5, seq=6) / b"hi"), src)
    while True:
        data, back = iha.recvfrom(2048)
        msg = MobileIPMessage(data)
        if isinstance(msg, TunnelData):
            break
    assert back == src and (msg[IP].src, msg[IP].dst, msg[ICMP].type, msg[ICMP].id, msg[ICMP].seq) == (HOA, CN, 0, 5, 6)
    refused = mipcheck("mn", "ctl", "--socket", ctl, "move", "eth0", "inside", "192.0.2.55")
    assert refused.returncode == 2 and "cannot bind 192.0.2.55" in refused.stderr
    status = mipcheck("mn", "ctl", "--socket", ctl, "status")
    assert status.returncode == 0 and f"eth0: inside {net}.5 mode=inside data=plaintext" in status.stdout
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert not os.path.exists(ctl)


def test_bad_profile_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('[dut]\nhome_address = "10.1.9.9"\n')
    done = mipcheck("mn", "run", "--profile", str(tmp_path / "bad.toml"), "--socket", str(tmp_path / "s"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "i_ha: missing section" in done.stderr
    assert not (tmp_path / "s").exists()


def test_ctl_without_a_node_is_exit_2(tmp_path: Path) -> None:
    path = str(tmp_path / "nobody.sock")
    done = mipcheck("mn", "ctl", "--socket", path, "status", "--json")
    assert done.returncode == 2 and done.stderr.strip() == f"mipcheck: error: no reference mobile node at {path}"
