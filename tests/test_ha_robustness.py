"""Robustness faults (fuzz targets): the core reports a crash or hang, or keeps the lasting misbehaviour; the server
carries a crash or hang out (`mipcheck ha serve`: exit 70 and one stderr line; alive but deaf), a home agent on a
thread of the tester never ends the tester's process. tests/test_fuzz_robustness_faults.py has campaigns find them.
"""

from __future__ import annotations

import select
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mipcheck.fuzz.context import context_from_profile
from mipcheck.fuzz.lab import config, profile_for
from mipcheck.fuzz.strategies import rrq_fixed
from mipcheck.ha.core import HomeAgent
from mipcheck.ha.faults import ROBUSTNESS
from mipcheck.ha.server import CRASH_STATUS, format_record, run_home_agent, text_line
from mipcheck.proto import codec

CTX = context_from_profile(profile_for("127.0.0.1", 40434))
SRC, LOCAL, NOW = ("127.0.0.1", 40000), ("127.0.0.1", 40434), 1.9e9
NODE = CTX.health
BAD_AUTH = struct.pack("!BBI", 32, 20, NODE.spi) + bytes(16)  # right SPI, wrong authenticator: 131


def _fixed(ident: int = 1 << 40) -> bytes:
    return rrq_fixed(CTX, NODE, ident)


def _valid(ident: int) -> bytes:
    return NODE.signer.sign(_fixed(ident))


# fault -> (a request that sets it off, the Decision.failure it reports)
REQUEST_TRIGGERS = {
    "crash-unknown-nonskippable-first": (_fixed() + bytes((100, 2, 0, 0)) + BAD_AUTH, "crash"),
    "crash-long-length-overrun": (_fixed() + bytes((38, 0)) + struct.pack("!H", 64) + bytes(6), "crash"),
    "hang-tnc-length-zero": (NODE.signer.sign(_fixed() + bytes((149, 0))), "hang"),
    "hang-two-mn-ha-auth": (_fixed() + BAD_AUTH + BAD_AUTH, "hang"),
}
STATE_TRIGGERS = {  # fault -> (a message that sets it off, the code a valid registration gets afterwards)
    "wrong-reply-after-bad-tunnel-data": (codec.tunnel_data(bytes(10)), 128),
    "silent-after-revocation": (codec.REVOCATION_FIXED.pack(7, 0, 0, NODE.hoa, NODE.ha, CTX.coa, 1), None),
}


def test_every_robustness_fault_is_set_off_here() -> None:
    assert set(REQUEST_TRIGGERS) | set(STATE_TRIGGERS) == set(ROBUSTNESS)


@pytest.mark.parametrize("fault", sorted(REQUEST_TRIGGERS))
def test_core_reports_the_failure_and_never_acts_on_it(fault: str) -> None:
    data, failure = REQUEST_TRIGGERS[fault]
    ha = HomeAgent(config(40434), (fault,))
    assert ha.handle(_valid(1 << 40), SRC, LOCAL, NOW).code == 0  # before: as conformant
    d = ha.handle(data, SRC, LOCAL, NOW)
    assert (d.outcome, d.failure, d.reply, d.log) == ("dropped", failure, None, True)
    assert d.as_log()["failure"] == failure
    stamp = "2027-01-15T08:00:00.000Z"
    assert text_line(d, stamp) == format_record({"time": stamp, **d.as_log()}, False)
    assert f"failure={failure}" in text_line(d, stamp)
    assert ha.handle(_valid((1 << 40) + 1), SRC, LOCAL, NOW).code == 0  # the core itself goes on
    conformant = HomeAgent(config(40434)).handle(data, SRC, LOCAL, NOW)
    assert conformant.failure is None and "failure" not in conformant.as_log()


@pytest.mark.parametrize("fault", sorted(STATE_TRIGGERS))
def test_core_keeps_the_lasting_misbehaviour_after_the_trigger(fault: str) -> None:
    data, code = STATE_TRIGGERS[fault]
    ha = HomeAgent(config(40434), (fault,))
    assert ha.handle(_valid(1 << 40), SRC, LOCAL, NOW).code == 0
    assert ha.handle(data, SRC, LOCAL, NOW).failure is None
    for k in range(1, 4):  # every later registration, valid or not
        d = ha.handle(_valid((1 << 40) + k), SRC, LOCAL, NOW)
        assert d.code == code and d.failure is None
        if code is not None:
            reply = codec.parse_reply(d.reply)
            assert reply.identification == (1 << 40) + k  # a reply to this request, only the wrong one
    fresh = HomeAgent(config(40434))
    fresh.handle(data, SRC, LOCAL, NOW)
    assert fresh.handle(_valid(1 << 40), SRC, LOCAL, NOW).code == 0  # the conformant one is unmoved


# ------------------------------------------------------------------ the server carries it out

HA_TOML = """
address = "127.0.0.1"
port = 0
role = "i-ha"
trusted_networks = ["127.0.0.0/28"]

[[mobile_node]]
home_address = "10.5.0.1"
spi = 4096
secret_file = "mn.key"
"""
HOA = socket.inet_aton("10.5.0.1")
HA_ADDR = socket.inet_aton("127.0.0.1")


def _request(*extensions: bytes) -> bytes:
    fixed = codec.RRQ_FIXED.pack(1, 0, 300, HOA, HA_ADDR, HA_ADDR, 1 << 40)
    return fixed + b"".join(extensions) + struct.pack("!BBI", 32, 20, 4096) + bytes(16)


def _serve(tmp_path: Path, fault: str) -> tuple[subprocess.Popen[str], int]:
    (tmp_path / "mn.key").write_text("robustness-test-secret\n")
    (tmp_path / "ha.toml").write_text(HA_TOML)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mipcheck.cli", "ha", "serve", "--config", str(tmp_path / "ha.toml"), "--fault", fault],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ready, _, _ = select.select([proc.stdout], [], [], 15)
    assert ready, "mipcheck ha serve did not start"
    first = proc.stdout.readline()
    assert f"faults={fault}" in first, first
    return proc, int(first.split("port=")[1].split()[0])


def _ask(port: int, data: bytes, timeout: float = 0.5) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.sendto(data, ("127.0.0.1", port))
        ready, _, _ = select.select([s], [], [], timeout)
        return s.recv(65535) if ready else None


def test_serve_crash_ends_the_process_with_status_70_and_one_line(tmp_path: Path) -> None:
    proc, port = _serve(tmp_path, "crash-unknown-nonskippable-first")
    try:
        assert _ask(port, _request())[1] == 131  # alive and answering
        assert _ask(port, _request(bytes((100, 2, 0, 0))), timeout=0.2) is None
        assert proc.wait(10) == CRASH_STATUS == 70
        err = proc.stderr.read()
        assert err.count("\n") == 1 and err.startswith("mipcheck ha: crash: unrecognised non-skippable extension 100")
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def test_serve_hang_lives_deaf_and_still_stops_on_sigterm(tmp_path: Path) -> None:
    proc, port = _serve(tmp_path, "hang-two-mn-ha-auth")
    try:
        assert _ask(port, _request())[1] == 131
        assert _ask(port, _request(struct.pack("!BBI", 32, 20, 4096) + bytes(16)), timeout=0.2) is None
        assert _ask(port, _request()) is None  # nothing more is answered ...
        assert proc.poll() is None  # ... while the process lives
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "stopped" in out
    assert err.count("\n") == 1 and err.startswith("mipcheck ha: hang: two MN-HA authentication extensions")


def test_a_home_agent_on_a_thread_never_ends_the_tester(tmp_path: Path) -> None:
    cfg = config(0)
    with run_home_agent(cfg, ("crash-unknown-nonskippable-first",)) as ha:
        trigger = REQUEST_TRIGGERS["crash-unknown-nonskippable-first"][0]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.sendto(trigger, (ha.address, ha.port))
        assert ha.wait_for(lambda r: r.get("failure") == "crash") is not None
        deadline = time.monotonic() + 5
        while ha._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not ha._thread.is_alive()  # the home agent stopped; this process goes on
