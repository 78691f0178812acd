"""``mipcheck ha`` and ``mipcheck mn`` as a user runs them: subprocesses, signals, exit codes, logs."""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mipcheck.ha.faults import FAULTS, PASSING_FAULTS, ROBUSTNESS

SECRET = "cli-test-secret-do-not-print"
CLI = [sys.executable, "-m", "mipcheck.cli"]

HA_TOML = """
address = "127.0.0.1"
port = 0
role = "i-ha"
trusted_networks = ["127.0.0.0/28"]
reverse_tunneling = false
log_file = "ha.log"

[[mobile_node]]
home_address = "10.5.0.1"
spi = 4096
secret_file = "mn.key"
"""


def mn_toml(port: int, **over: object) -> str:
    kw: dict[str, object] = dict(
        home_address="10.5.0.1",
        home_agent="127.0.0.1",
        ha_port=port,
        local_address="127.0.0.10",
        spi=4096,
        secret_file="mn.key",
        lifetime=120,
        timeout=0.2,
        attempts=2,
    )
    kw.update(over)
    return "".join(f"{k} = {json.dumps(v)}\n" for k, v in kw.items())


def read_line(proc: subprocess.Popen[str], timeout: float = 10.0) -> str:
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            raise AssertionError("no output from mipcheck ha serve")
        return proc.stdout.readline()
    finally:
        sel.close()


class Served:
    def __init__(self, proc: subprocess.Popen[str], port: int, workdir: Path) -> None:
        self.proc, self.port, self.workdir = proc, port, workdir

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=10)
        return self.proc.returncode, out, err


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    (tmp_path / "mn.key").write_text(SECRET + "\n")
    (tmp_path / "ha.toml").write_text(HA_TOML)
    proc = subprocess.Popen(
        [*CLI, "ha", "serve", "--config", str(tmp_path / "ha.toml"), "--log-json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = json.loads(read_line(proc))
        assert first["event"] == "listening" and first["role"] == "i-ha"
        yield Served(proc, first["port"], tmp_path)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def mn_register(workdir: Path, port: int, **over: object) -> subprocess.CompletedProcess[str]:
    cfg = workdir / f"mn-{len(list(workdir.glob('mn-*.toml')))}.toml"
    cfg.write_text(mn_toml(port, **over))
    return subprocess.run([*CLI, "mn", "register", "--config", str(cfg)], capture_output=True, text=True, timeout=30)


def test_serve_register_exit_codes_and_sigterm(served: Served) -> None:
    ok = mn_register(served.workdir, served.port)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("accepted code=0") and "tnc=yes" in ok.stdout and "Registration Reply" in ok.stdout
    denied = mn_register(served.workdir, served.port, reverse_tunnel=True)
    assert denied.returncode == 1 and denied.stdout.startswith("denied code=137"), denied.stdout
    silent = mn_register(served.workdir, served.port, local_address="127.0.0.66")  # untrusted: no reply
    assert silent.returncode == 2 and silent.stdout.startswith("no-reply")
    rc, out, err = served.stop(signal.SIGTERM)
    assert rc == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r.get("outcome") for r in records if "outcome" in r] == ["accepted", "denied", "dropped", "dropped"]
    assert records[-1]["event"] == "stopped" and records[-1]["signal"] == "SIGTERM"
    assert any(r.get("source", "").startswith("127.0.0.66:") for r in records)
    log = (served.workdir / "ha.log").read_text()
    assert len(log.splitlines()) == len(records) + 1  # the listening line was read by the fixture
    for text in (out, err, log, ok.stdout, ok.stderr, denied.stdout, silent.stdout):
        assert SECRET not in text and SECRET.encode().hex() not in text


def test_sigint_stops_cleanly(served: Served) -> None:
    rc, out, err = served.stop(signal.SIGINT)
    assert rc == 0 and "Traceback" not in err
    assert json.loads(out.splitlines()[-1])["signal"] == "SIGINT"


def test_mn_register_without_a_home_agent_exits_2(tmp_path: Path) -> None:
    (tmp_path / "mn.key").write_text(SECRET)
    r = mn_register(tmp_path, 9)  # discard port on loopback: nothing answers
    assert r.returncode == 2 and SECRET not in r.stdout + r.stderr


@pytest.mark.parametrize(
    ("toml", "args", "expect"),
    [
        ("colour = 'blue'\n", [], "colour: unknown key"),
        ("address = '127.0.0.300'\n", [], "address: "),
        (
            '[[mobile_node]]\nhome_address = "10.0.0.1"\nspi = 300\nsecret_file = "nope.key"\n',
            [],
            "mobile_node[0].secret_file: cannot read",
        ),
        ("port = 0\n", ["--fault", "teleport"], "--fault: unknown fault 'teleport'"),
        ("port = 0\n", ["--address", "banana"], "--address: "),
        ("not toml at all", [], "config: not valid TOML"),
    ],
)
def test_bad_config_is_one_line_exit_2(tmp_path: Path, toml: str, args: list[str], expect: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml)
    r = subprocess.run([*CLI, "ha", "serve", "--config", str(cfg), *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_missing_config_file() -> None:
    r = subprocess.run(
        [*CLI, "ha", "serve", "--config", "/nonexistent/ha.toml"], capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "file not found" in r.stderr


def test_port_in_use_is_one_line(served: Served) -> None:
    r = subprocess.run(
        [*CLI, "ha", "serve", "--config", str(served.workdir / "ha.toml"), "--port", str(served.port)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2 and "cannot bind" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_faults_listing() -> None:
    r = subprocess.run([*CLI, "ha", "faults"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0
    faults, _, variants = r.stdout.partition("\nConformant variants")
    variants, _, robustness = variants.partition("\nRobustness (fuzz targets; no conformance case):")
    assert [line.split()[0] for line in faults.splitlines()] == list(FAULTS)
    assert [line.split()[0] for line in variants.strip().splitlines()[1:]] == list(PASSING_FAULTS)
    assert [line.split()[0] for line in robustness.strip().splitlines()] == list(ROBUSTNESS)
    j = subprocess.run([*CLI, "ha", "faults", "--json"], capture_output=True, text=True, timeout=30)
    data = json.loads(j.stdout)
    assert set(data) == set(FAULTS) | set(PASSING_FAULTS) | set(ROBUSTNESS)
    assert data["omit-tnc"]["cases"] == ["HA-TNC-INCLUDED"]
    for name, fault in ROBUSTNESS.items():
        assert data[name]["robustness"] is True and data[name]["cases"] == []
        assert (data[name]["trigger"], data[name]["finding"]) == (fault.trigger, fault.finding)


def test_serve_with_fault_changes_behaviour(tmp_path: Path) -> None:
    (tmp_path / "mn.key").write_text(SECRET)
    (tmp_path / "ha.toml").write_text(HA_TOML)
    proc = subprocess.Popen(
        [*CLI, "ha", "serve", "--config", str(tmp_path / "ha.toml"), "--fault", "omit-tnc"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = read_line(proc)
        assert "faults=omit-tnc" in first
        port = int(first.split("port=")[1].split()[0])
        r = mn_register(tmp_path, port)
        assert r.returncode == 0 and "tnc=no" in r.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert proc.returncode == 0
