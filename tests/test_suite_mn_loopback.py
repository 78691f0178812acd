"""``mipcheck run --suite mn`` on loopback: the built-in reference mobile node, faults, and tester errors.

The built-in default starts ``mipcheck mn run`` as a subprocess and moves it
with ``mipcheck mn ctl``, as a vendor's device would be moved by its profile's
command; it must pass every applicable case and exit 0. A fault makes its case
fail (exit 1) or warn (exit 0). A move command that fails, nothing listening,
or a played party that cannot bind are the tester's problem: ``error``, exit 2.
"""

from __future__ import annotations

import json
import socket
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mipcheck.cli import main
from mipcheck.suites.mn import CASES

SECRET = "vendor-mn-secret-5a1e"
NOT_APPLICABLE_ON_THE_BUILTIN: set[str] = set()  # the 3.5 cases run against a second, one-address node


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        rc = main(["run", "--suite", "mn", *args])
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def _profile(tmp_path: Path, move: str, *, i_ha: str = "127.0.66.1") -> Path:
    """A vendor-style profile on 127.0.66.0/24 (no device behind it)."""
    path = tmp_path / "mn.toml"
    path.write_text(
        f"""
[dut]
home_address = "10.1.9.9"
interfaces = ["eth0"]
t_monitor = 2
detection_period = 1
[i_ha]
address = "{i_ha}"
port = {_free_port("127.0.66.1")}
spi = 8193
secret = "{SECRET}"
[x_ha]
address = "127.0.66.2"
port = {_free_port("127.0.66.2")}
home_address = "192.0.2.99"
spi = 8194
secret = "{SECRET}"
[vpn]
gateway = "127.0.66.3"
port = {_free_port("127.0.66.3")}
inner_address = "10.8.0.5"
spi_in = 4097
spi_out = 4098
encryption = "AES-CBC"
encryption_key_hex = "000102030405060708090a0b0c0d0e0f"
integrity = "HMAC-SHA1-96"
integrity_key_hex = "000102030405060708090a0b0c0d0e0f10111213"
[networks]
inside = "127.0.66.10"
outside = "127.0.66.20"
[commands]
move = {json.dumps(move)}
timeout = 5
"""
    )
    return path


def test_builtin_default_passes_every_applicable_case(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    t0 = time.monotonic()
    rc, stdout, stderr = _run(["--out", str(out)], capsys)
    duration = time.monotonic() - t0
    print(f"mipcheck run --suite mn (built-in reference mobile node on loopback): {duration:.1f} s")
    doc = json.loads((out / "report.json").read_text())
    verdicts = {c["id"]: c["verdict"] for c in doc["cases"]}
    assert rc == 0, {c["id"]: c["reason"] for c in doc["cases"] if c["verdict"] != "pass"}
    assert "built-in reference mobile node" in stderr
    assert verdicts == {c.id: "not-applicable" if c.id in NOT_APPLICABLE_ON_THE_BUILTIN else "pass" for c in CASES}
    assert list(verdicts) == [c.id for c in CASES]  # the two reference nodes' results, in the suite's order
    assert doc["suite"] == "mn" and doc["target"]["role"] == "mn" and doc["target"]["builtin"] is True
    assert doc["preflight"]["status"] == "accepted" and doc["preflight"]["datagrams"]
    for case in doc["cases"]:
        if case["verdict"] == "pass":
            assert (out / case["evidence"]["pcap"]).stat().st_size > 24, case["id"]  # more than a pcap header
            assert case["evidence"]["judged"], case["id"]  # every verdict points at frames
    assert (out / "pcaps" / "PREFLIGHT.pcap").exists()
    assert ET.parse(out / "junit.xml").getroot().find("testsuite").get("failures") == "0"
    assert "built-in reference mobile node" in (out / "report.html").read_text()
    assert "<hidden" in json.dumps(doc["profile"]) and "mipcheck-builtin-mn" not in (out / "report.json").read_text()
    assert duration < 90


@pytest.mark.parametrize(
    ("fault", "case", "rc", "verdict"),
    [
        ("inside-without-tnc", "MN-TNC-REQUIRED", 1, "fail"),
        ("no-xha-dereg", "MN-XHA-DEREG", 0, "warn"),
        ("detect-with-same-ha", "MN-SAME-HA-OUTSIDE", 1, "fail"),  # against the second, one-address node
    ],
)
def test_a_fault_of_the_builtin_fails_its_case(tmp_path: Path, capsys, fault, case, rc, verdict) -> None:
    got, stdout, stderr = _run(["-q", "--out", str(tmp_path), "--fault", fault, "--case", case], capsys)
    doc = json.loads((tmp_path / "report.json").read_text())
    assert [c["verdict"] for c in doc["cases"]] == [verdict], doc["cases"][0]["reason"]
    assert got == rc, stdout + stderr
    assert doc["cases"][0]["violation"]["party"] == "device"


def test_a_failing_move_command_is_a_tester_error(tmp_path: Path, capsys) -> None:
    profile = _profile(tmp_path, "echo no such lab port {interface} >&2; exit 3")
    rc, stdout, stderr = _run(
        ["-q", "--profile", str(profile), "--out", str(tmp_path / "out"), "--case", "MN-TNC-*"], capsys
    )
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rc == 2
    assert {c["verdict"] for c in doc["cases"]} == {"error"}
    assert "move command failed (exit 3): no such lab port eth0" in doc["cases"][0]["reason"]
    assert doc["preflight"]["status"] == "error" and doc["cases"][0]["violation"]["party"] == "tester"
    blobs = [stdout, stderr] + [p.read_text(errors="replace") for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert not any(SECRET in b for b in blobs)


def test_nothing_listening_is_a_tester_error(tmp_path: Path, capsys) -> None:
    profile = _profile(tmp_path, "true")  # the move "works", but no device is there
    rc, stdout, _ = _run(["-q", "--profile", str(profile), "--out", str(tmp_path), "--case", "MN-XHA-DEREG"], capsys)
    doc = json.loads((tmp_path / "report.json").read_text())
    assert rc == 2
    assert doc["cases"][0]["verdict"] == "error"
    assert doc["preflight"]["status"] == "silent" and "nothing arrived from the device" in doc["preflight"]["detail"]
    assert "pre-flight: nothing arrived" in stdout


def test_a_party_that_cannot_bind_is_a_tester_error(tmp_path: Path, capsys) -> None:
    profile = _profile(tmp_path, "true", i_ha="192.0.2.1")  # not an address of this machine
    rc, _, _ = _run(["-q", "--profile", str(profile), "--out", str(tmp_path), "--case", "MN-XHA-DEREG"], capsys)
    doc = json.loads((tmp_path / "report.json").read_text())
    assert rc == 2 and doc["cases"][0]["verdict"] == "error"
    assert "cannot bind 192.0.2.1:" in doc["cases"][0]["reason"]


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["--target", "127.0.0.1"], "--target"),
        (["--fault", "no-such-fault"], "fault"),
        (["--profile", "x.toml", "--fault", "skip-vpn"], "--fault"),
        (["--sim"], "--sim"),
        (["--case", "NOPE-*"], "--case"),
    ],
)
def test_usage_errors_are_one_line_exit_2(tmp_path: Path, capsys, args, key) -> None:
    rc, _, stderr = _run(["--out", str(tmp_path), *args], capsys)
    lines = stderr.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("mipcheck: error: ") and key in lines[0], stderr


def test_list_shows_each_case_with_its_reference_mn_fault(capsys) -> None:
    rc, stdout, _ = _run(["--list", "--json"], capsys)
    rows = {r["id"]: r["faults"] for r in json.loads(stdout)}
    assert rc == 0 and rows == {c.id: list(c.faults) for c in CASES}
