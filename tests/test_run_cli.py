"""``mipcheck run`` end to end: the built-in default, a vendor-style profile, exit codes, secrets."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from mipcheck.cli import cli, main
from mipcheck.suites.ha import CASES, FAULTS

SECRET = "vendor-secret-7f3a9c"


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        rc = main(["run", *args])
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def test_builtin_default_passes_and_writes_every_report(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    rc, stdout, stderr = _run(
        [
            "--out",
            str(out),
            "--report-json",
            str(tmp_path / "r.json"),
            "--junit",
            str(tmp_path / "j.xml"),
            "--html",
            str(tmp_path / "r.html"),
        ],
        capsys,
    )
    assert rc == 0, stdout + stderr
    total = len(CASES)
    assert "built-in i-HA" in stderr and f"[{total}/{total}]" in stderr  # live progress on stderr
    assert "HA-TNC-FORMAT" in stdout and f"{total} pass" in stdout
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["summary"]["pass"] == total and doc["target"]["builtin"] is True
    assert doc["preflight"]["status"] == "accepted"
    assert all((tmp_path / c["evidence"]["pcap"]).exists() for c in doc["cases"])
    for name in ("report.json", "junit.xml", "report.html"):
        assert (out / name).exists()
    assert len(list((out / "pcaps").glob("*.pcap"))) == total + 1  # each case's, and the pre-flight's
    assert ET.parse(tmp_path / "j.xml").getroot().find("testsuite").get("failures") == "0"


@pytest.mark.parametrize(
    ("args", "rc", "verdict"),
    [
        (["--fault", "omit-tnc", "--case", "HA-TNC-INCLUDED"], 1, "fail"),
        (["--fault", "no-udp-tunnel", "--case", "HA-NATT-UDP-TUNNEL"], 0, "warn"),  # a SHOULD: warns, exit 0
        (["--fault", "answer-untrusted", "--level", "should", "--case", "HA-UNTRUSTED-*"], 0, "inconclusive"),
    ],
)
def test_exit_code_follows_must_failures(tmp_path: Path, capsys, args, rc, verdict) -> None:
    got, stdout, stderr = _run(["-q", "--out", str(tmp_path), *args], capsys)
    assert got == rc, stdout + stderr
    doc = json.loads((tmp_path / "report.json").read_text())
    assert [c["verdict"] for c in doc["cases"]] == [verdict]


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["--case", "NOPE-*"], "--case"),
        (["--target", "127.0.0.1"], "--profile"),
        (["--profile", "/nonexistent/p.toml"], "--profile"),
        (["--fault", "no-such-fault"], "--fault"),
        (["--fault", "omit-tnc", "--target", "127.0.0.1", "--profile", "x.toml"], "--fault"),
    ],
)
def test_usage_errors_are_one_line_exit_2(tmp_path: Path, capsys, args, key) -> None:
    rc, stdout, stderr = _run(["--out", str(tmp_path), *args], capsys)
    assert rc == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mipcheck: error: ") and key in lines[0]
    assert "Traceback" not in stderr


def test_bad_profile_names_the_key(tmp_path: Path, capsys) -> None:
    p = tmp_path / "p.toml"
    p.write_text(
        '[dut]\naddress = "127.0.0.1"\n[mn]\nhome_address = "10.0.0.1"\nspi = 12\nsecret = "x"\n'
        '[tester]\ntrusted_sources = ["127.0.0.2"]\n'
    )
    rc, _, stderr = _run(["--profile", str(p), "--out", str(tmp_path)], capsys)
    assert rc == 2 and stderr.strip() == (
        f"mipcheck: error: {p}: mn.spi: 12 is out of range 256..4294967295 (0-255 reserved)"
    )


def test_list_shows_cases_and_faults(capsys) -> None:
    rc, stdout, _ = _run(["--list", "--json"], capsys)
    assert rc == 0
    rows = {r["id"]: r for r in json.loads(stdout)}
    assert rows["MIP-AUTH-BAD"]["faults"] == list(FAULTS["MIP-AUTH-BAD"])
    assert len(rows) == len(CASES)


def test_list_off_a_terminal_keeps_each_case_on_one_line() -> None:
    """Piped or in CI, rich used to wrap at 80 columns and split IDs like HA-TRUST-NONE-DEFAULT."""
    from mipcheck.suites.ha import CASES

    result = CliRunner().invoke(cli, ["run", "--list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert CASES
    for case in CASES:
        whole = [case.id, case.requirement, *case.faults]
        assert any(all(word in line for word in whole) for line in lines), (whole, result.output)


@pytest.fixture
def vendor_lab(tmp_path: Path):
    """The reference HA, configured like a vendor box with its own key, reached only by --target."""
    from mipcheck.builtin import ha_config
    from mipcheck.engine.profile import MobileNode
    from mipcheck.ha.server import run_home_agent
    from mipcheck.layers.secret import Secret

    nodes = [
        MobileNode(f"127.3.0.{i}", None, 8193, Secret(SECRET)) for i in range(1, 9)
    ]  # one SPI, as [mn] home_addresses gives
    log = tmp_path / "ha.log"
    with run_home_agent(ha_config(nodes, log_file=str(log))) as ha:
        yield ha, log


def _vendor_profile(tmp_path: Path, log: Path, untrusted: str = "127.0.0.66") -> Path:
    p = tmp_path / "vendor.toml"
    p.write_text(
        f"""
[dut]
address = "127.0.0.250"   # overridden by --target
[mn]
home_addresses = ["127.3.0.1-127.3.0.8"]
spi = 8193
secret_env = "MIPCHECK_TEST_VENDOR_SECRET"
[tester]
trusted_sources = ["127.0.0.2"]
untrusted_sources = ["{untrusted}"]
reply_timeout = 0.4
nat_care_of_address = "127.0.0.44"
[commands]
read_log = "cat {log}"
"""
    )
    return p


def test_vendor_profile_via_target_and_no_secret_anywhere(tmp_path: Path, capsys, monkeypatch, vendor_lab) -> None:
    ha, log = vendor_lab
    monkeypatch.setenv("MIPCHECK_TEST_VENDOR_SECRET", SECRET)
    out = tmp_path / "out"
    profile = _vendor_profile(tmp_path, log)
    rc, stdout, stderr = _run(
        [
            "--profile",
            str(profile),
            "--target",
            f"{ha.address}:{ha.port}",
            "--out",
            str(out),
            "--html",
            str(tmp_path / "v.html"),
        ],
        capsys,
    )
    doc = json.loads((out / "report.json").read_text())
    verdicts = {c["id"]: c["verdict"] for c in doc["cases"]}
    assert doc["target"] == {"address": ha.address, "port": ha.port, "role": "i-ha", "builtin": False}
    assert verdicts["HA-UNTRUSTED-LOG"] == "pass"  # read through commands.read_log
    assert verdicts["HA-TRUST-NONE-DEFAULT"] == "not-applicable"
    reason = next(c["reason"] for c in doc["cases"] if c["id"] == "HA-TRUST-NONE-DEFAULT")
    assert "commands.start_unconfigured" in reason
    assert rc == 0, {k: v for k, v in verdicts.items() if v != "pass"}
    blobs = [stdout.encode(), stderr.encode()] + [
        p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p != profile
    ]
    assert not any(SECRET.encode() in b for b in blobs)
    assert '"secret": "<hidden: environment variable MIPCHECK_TEST_VENDOR_SECRET>"' in (out / "report.json").read_text()


def test_unbindable_tester_source_is_a_tester_error(tmp_path: Path, capsys, monkeypatch, vendor_lab) -> None:
    ha, log = vendor_lab
    monkeypatch.setenv("MIPCHECK_TEST_VENDOR_SECRET", SECRET)
    profile = _vendor_profile(
        tmp_path, log, untrusted="192.0.2.77"
    )  # not an address of this machine: bind fails, nothing is sent
    rc, _, _ = _run(
        [
            "-q",
            "--profile",
            str(profile),
            "--target",
            f"{ha.address}:{ha.port}",
            "--out",
            str(tmp_path),
            "--case",
            "HA-UNTRUSTED-DROP",
        ],
        capsys,
    )
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["cases"][0]["verdict"] == "error" and "cannot bind tester source 192.0.2.77" in doc["cases"][0]["reason"]
    assert rc == 2


def test_sim_runs_the_built_in_suite_in_virtual_time(tmp_path: Path, capsys) -> None:
    rc, stdout, stderr = _run(["--sim", "--out", str(tmp_path)], capsys)
    assert rc == 0, stdout + stderr
    assert "simulated network" in stderr and f"{len(CASES)} pass" in stdout
    rc, stdout, _ = _run(["--sim", "--fault", "omit-tnc", "--case", "HA-TNC-INCLUDED", "--out", str(tmp_path)], capsys)
    assert rc == 1 and "fail" in stdout
    rc, _, stderr = _run(["--sim", "--target", "127.0.0.1", "--profile", "x.toml"], capsys)
    assert rc == 2 and "--sim" in stderr


def test_site_suite_lists_its_cases_and_needs_a_profile(capsys) -> None:
    rc, out, _err = _run(["--suite", "site", "--list", "--json"], capsys)
    assert rc == 0 and "SITE-FW-IHA-UNREACHABLE" in out
    rc, _out, err = _run(["--suite", "site"], capsys)
    assert rc == 2 and "--profile" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    rc, _out, err = _run(["--suite", "site", "--profile", "x.toml", "--fault", "skip-vpn"], capsys)
    assert rc == 2 and "site takes only" in err
