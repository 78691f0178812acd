"""``mipcheck dissect``: output formats, keys, filters, bad input, and the pcap/pcapng reader."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from mipcheck.capture.dissector import Dissector, records
from mipcheck.capture.keys import build_keyring, parse_esp_sa_option, parse_key_option
from mipcheck.capture.reader import CaptureReader
from mipcheck.capture.writer import PcapngWriter, PcapWriter
from mipcheck.errors import InputError

PCAPS = Path(__file__).resolve().parent.parent / "pcaps"
KEYS = str(PCAPS / "keys.toml")
I_HA_SECRET = "6d6970636865636b2d692d68612d6b65"
ESP_KEY = "0123456789abcdef23456789abcdef01456789abcdef0123"
ESP_AUTH = "00112233445566778899aabbccddeeff01234567"


# Secrets reach the command through the environment, as users must give them.
SECRET_ENV = {
    "T_I_HA_KEY": bytes.fromhex(I_HA_SECRET).decode(),
    "T_WRONG_KEY": "not-the-secret",
    "T_PLAIN_KEY": "plain-text-secret",
    "T_ESP_KEY": ESP_KEY,
    "T_ESP_AUTH": ESP_AUTH,
    "T_ZERO_AUTH": "00" * 20,
    "T_BAD_HEX": "zz-very-secret",
}


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **SECRET_ENV}
    return subprocess.run(
        [sys.executable, "-m", "mipcheck.cli", "dissect", *args], capture_output=True, text=True, env=env
    )


def json_lines(*args: str) -> list[dict]:
    result = run("--json", *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_summary_has_one_line_per_packet_with_addresses_message_and_extensions():
    result = run(str(PCAPS / "access-mode-c.pcap"))
    assert result.returncode == 0 and not result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    assert lines[0].split()[:2] == ["1", "0.000000"]
    assert "10.30.0.50:49152 -> 10.20.0.1:434 RRQ" in lines[0]
    assert "HoA=10.20.0.50" in lines[0] and "CoA=10.30.0.50" in lines[0] and "ext=[NAI, MN-HA Auth(256)]" in lines[0]
    assert "RRP code=0 (registration accepted)" in lines[1] and "ext=[TNC, MN-HA Auth(256)]" in lines[1]
    assert "[10.30.0.50 -> 10.20.0.1: IP/IP/UDP]" in lines[2]


def test_json_records_have_the_documented_fields():
    first = json_lines(str(PCAPS / "access-mode-c.pcap"))[0]
    for key in ("frame", "time", "src", "dst", "sport", "dport", "mip", "errors"):
        assert key in first
    assert first["frame"] == 1 and first["time"] == pytest.approx(1212278400.0)
    mip = first["mip"]
    assert (mip["type"], mip["name"]) == (1, "Registration Request")
    assert mip["flags"] == {
        "S": False,
        "B": False,
        "D": True,
        "M": False,
        "G": False,
        "r": False,
        "T": True,
        "x": False,
    }
    assert (mip["home_address"], mip["home_agent"], mip["care_of_address"], mip["lifetime"]) == (
        "10.20.0.50",
        "10.20.0.1",
        "10.30.0.50",
        1800,
    )
    assert [(e["type"], e["name"], e["length"]) for e in mip["extensions"]] == [
        (131, "Mobile Node NAI", 15),
        (32, "Mobile-Home Authentication", 20),
    ]
    assert mip["extensions"][0]["nai"] == "mn1@example.com"
    assert mip["auth"] == [{"type": 32, "spi": 256, "verified": None}]
    reply = json_lines(str(PCAPS / "access-mode-c.pcap"))[1]["mip"]
    assert reply["code"] == 0 and reply["code_name"] == "registration accepted"


@pytest.mark.parametrize(
    "key_args, verdict, mark",
    [
        (["--key", "256=env:T_I_HA_KEY"], True, "MN-HA Auth(256) ok"),
        (["--key", "0x100=hmac-md5:env:T_I_HA_KEY"], True, "MN-HA Auth(256) ok"),
        (["--key", "256=env:T_WRONG_KEY"], False, "MN-HA Auth(256) BAD"),
        (["--key", "256=prefix-suffix-md5:env:T_I_HA_KEY"], False, "MN-HA Auth(256) BAD"),
        (["--keys", KEYS], True, "MN-HA Auth(256) ok"),
    ],
)
def test_keys_verify_authenticators(key_args, verdict, mark):
    path = str(PCAPS / "access-mode-c.pcap")
    assert json_lines(*key_args, path)[0]["mip"]["auth"] == [{"type": 32, "spi": 256, "verified": verdict}]
    assert mark in run(*key_args, path).stdout


def test_esp_sa_option_decrypts_like_the_keys_file():
    path = str(PCAPS / "access-mode-fvc.pcapng")
    sa = "0x1001,3des-cbc,env:T_ESP_KEY,hmac-sha1-96,env:T_ESP_AUTH"
    got = json_lines("--esp-sa", sa, path)
    assert got[3]["layers"] == ["SLL2", "IP", "ESP", "IP", "UDP", "RRQ"]
    assert got[3]["esp"] == [{"spi": 0x1001, "seq": 1, "decrypted": True}]
    assert got[4]["layers"] == ["SLL2", "IP", "ESP"] and got[4]["esp"][0]["decrypted"] is False  # other SPI, no key
    wrong = json_lines("--esp-sa", "0x1001,3des-cbc,env:T_ESP_KEY,hmac-sha1-96,env:T_ZERO_AUTH", path)[3]
    assert wrong["errors"] == ["ESP SPI 0x00001001: integrity check failed (wrong key, or the packet was altered)"]


def test_secrets_never_appear_in_any_output(tmp_path):
    path = str(PCAPS / "access-mode-cvc.pcap")
    key_file = tmp_path / "x-ha.key"
    key_file.write_text("plain-text-secret\n")
    args = [
        "--key",
        "256=env:T_I_HA_KEY",
        "--key",
        f"257=file:{key_file}",
        "--esp-sa",
        "0x1001,3des-cbc,env:T_ESP_KEY,hmac-sha1-96,env:T_ESP_AUTH",
    ]
    for mode in ([], ["--json"], ["--tree"]):
        result = run(*mode, *args, path)
        assert result.returncode == 0, result.stderr
        for secret in (I_HA_SECRET, "plain-text-secret", ESP_KEY, ESP_AUTH, bytes.fromhex(I_HA_SECRET).decode()):
            assert secret not in result.stdout and secret not in result.stderr
    bad = run("--esp-sa", "0x1001,3des-cbc,env:T_BAD_HEX,hmac-sha1-96,env:T_ESP_AUTH", path)
    assert bad.returncode == 2 and "zz-very-secret" not in bad.stderr and bad.stderr.count("\n") == 1
    assert "Traceback" not in bad.stderr
    key = parse_key_option(f"1=file:{key_file}")
    assert "hidden" in repr(key) and "plain-text-secret" not in repr(key) and key.key == b"plain-text-secret"
    os.environ["T_ESP_KEY"] = ESP_KEY
    try:
        assert ESP_KEY not in repr(parse_esp_sa_option("1,3des-cbc,env:T_ESP_KEY,null,"))
    finally:
        del os.environ["T_ESP_KEY"]


@pytest.mark.parametrize(
    "option, value",
    [
        ("--key", f"256=hex:{I_HA_SECRET}"),
        ("--esp-sa", f"0x1001,3des-cbc,{ESP_KEY},hmac-sha1-96,env:T_ESP_AUTH"),
        ("--esp-sa", f"0x1001,3des-cbc,env:T_ESP_KEY,hmac-sha1-96,hex:{ESP_AUTH}"),
    ],
)
def test_secrets_typed_on_the_command_line_work_with_a_warning(option, value):
    result = run(option, value, str(PCAPS / "access-mode-c.pcap"))
    assert result.returncode == 0 and result.stdout.count("\n") == 4
    (warning,) = result.stderr.splitlines()
    assert warning.startswith("mipcheck: warning: ") and "env:NAME" in warning
    for secret in (I_HA_SECRET, ESP_KEY, ESP_AUTH):
        assert secret not in result.stderr and secret not in result.stdout


@pytest.mark.parametrize("value", ["256=typed-secret", "256=text:", "256=env:", "256=ftp:typed-secret"])
def test_key_without_a_known_source_is_refused(value):
    result = run("--key", value, str(PCAPS / "access-mode-c.pcap"))
    assert result.returncode == 2 and not result.stdout
    assert "env:NAME" in result.stderr and "file:PATH" in result.stderr and result.stderr.count("\n") == 1
    assert "typed-secret" not in result.stderr


def test_secrets_from_env_or_file_give_no_warning():
    result = run("--key", "256=env:T_I_HA_KEY", str(PCAPS / "access-mode-c.pcap"))
    assert result.returncode == 0 and not result.stderr


def test_unset_environment_variable_or_missing_file_is_one_line(tmp_path):
    for value in ("256=env:T_NOT_SET_ANYWHERE", f"256=file:{tmp_path / 'none.key'}"):
        result = run("--key", value, str(PCAPS / "access-mode-c.pcap"))
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_tree_shows_every_field():
    result = run("--tree", "--keys", KEYS, str(PCAPS / "access-mode-cvc.pcap"))
    assert result.returncode == 0, result.stderr
    for field in (
        "home_address",
        "care_of_address",
        "identification",
        "spi",
        "authenticator",
        "ttl",
        "chksum",
        "decrypted",
    ):
        assert field in result.stdout


def test_filters_by_type_and_home_address():
    path = str(PCAPS / "access-mode-f.pcap")
    assert [r["frame"] for r in json_lines("--type", "rrp", path)] == [4, 5]
    assert [r["frame"] for r in json_lines("--type", "advertisement", "--type", "rrq", path)] == [1, 2, 3]
    assert [r["frame"] for r in json_lines("--home-address", "10.40.0.1", "--type", "other", path)] == [7, 8]
    summary = run("--type", "rrq", path).stdout.splitlines()
    assert [line.split()[0] for line in summary] == ["2", "3"]
    bad = run("--home-address", "not-an-address", path)
    assert bad.returncode == 2 and "--home-address" in bad.stderr


def test_malformed_packets_are_reported_and_dissection_goes_on():
    result = run(str(PCAPS / "malformed.pcap"))
    assert result.returncode == 0 and "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 10
    broken = {int(line.split()[0]) for line in lines if " !! " in line}
    assert broken == {1, 2, 3, 4, 5, 6, 7, 10}
    assert "truncated Registration Request: 10 octets, fixed part needs 24" in lines[1]
    assert "Mobile Node NAI extension truncated: Length 200" in lines[2]
    assert "malformed Trusted Networks Configured (TNC) extension" in lines[3]
    assert "unknown Mobile IP message type 9" in lines[4]
    assert "minimal encapsulation header checksum is wrong" in lines[6]
    assert "RRQ" in lines[7]


def test_unreadable_file_exits_2_after_processing_the_others(tmp_path):
    missing = tmp_path / "missing.pcap"
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"this is not a capture file")
    good = str(PCAPS / "access-mode-c.pcap")
    result = run(good, str(missing), str(junk), good)
    assert result.returncode == 2
    assert result.stdout.count("RRQ") == 2  # both good files were dissected
    errors = result.stderr.splitlines()
    assert len(errors) == 2 and "Traceback" not in result.stderr
    assert str(missing) in errors[0] and "cannot read" in errors[0]
    assert str(junk) in errors[1] and "not a pcap or pcapng file" in errors[1]


def test_a_capture_cut_short_keeps_what_was_read(tmp_path):
    data = (PCAPS / "access-mode-c.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:-30])
    result = run(str(cut))
    assert result.returncode == 2
    assert len(result.stdout.splitlines()) == 3
    assert result.stderr.count("\n") == 1 and "packet 4 is incomplete" in result.stderr


def _frames() -> list[tuple[float, int, bytes, int]]:
    return [tuple(p) for p in CaptureReader(str(PCAPS / "access-mode-c.pcap"))]


def test_reader_handles_big_endian_and_nanosecond_pcap(tmp_path):
    frames = _frames()
    path = tmp_path / "be-nsec.pcap"
    with path.open("wb") as f:
        f.write(struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1))
        for t, _lt, data, wirelen in frames:
            sec = int(t)
            f.write(struct.pack(">IIII", sec, 123456789, len(data), wirelen) + data)
    got = list(CaptureReader(str(path)))
    assert [g[2] for g in got] == [f[2] for f in frames]
    assert got[0][0] == pytest.approx(int(frames[0][0]) + 0.123456789)


def test_reader_handles_pcapng_sections_interfaces_and_resolution(tmp_path):
    frames = _frames()
    buf = io.BytesIO()
    writer = PcapngWriter(buf)
    writer.write(frames[0][2], 1000.25, 1)
    writer.write(frames[1][2][14:], 1001.5, 101)  # raw IP on a second interface
    buf.write(buf.getvalue()[:28])  # a second section header (little-endian, same layout)
    writer.interfaces.clear()
    writer.write(frames[2][2], 1002.0, 1)
    path = tmp_path / "multi.pcapng"
    path.write_bytes(buf.getvalue())
    got = list(records(str(path), Dissector()))
    assert [r["time"] for r in got] == [1000.25, 1001.5, 1002.0]
    assert [r["layers"][0] for r in got] == ["Ethernet", "IP", "Ethernet"]
    assert got[1]["mip"]["name"] == "Registration Reply"


def test_large_files_stream_in_constant_memory(tmp_path):
    frame = _frames()[0][2]
    path = tmp_path / "big.pcap"
    with path.open("wb") as f:
        writer = PcapWriter(f)
        for i in range(60000):
            writer.write(frame, 1e9 + i)
    assert path.stat().st_size > 6_000_000
    tracemalloc.start()
    count = sum(1 for _ in records(str(path), Dissector()))
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 60000
    assert peak < 4_000_000, f"peak {peak} octets for a {path.stat().st_size}-octet file"


def test_key_option_errors_are_one_line_input_errors():
    for bad in ("256", "x=abc", "256=", "256=env:", "256=abc", "256=hex:zz", "4294967296=env:HOME"):
        with pytest.raises(InputError):
            parse_key_option(bad)
    for bad in ("1,2,3", "1,rot13,00,null,", "1,aes-cbc,0011,null,", "1,null,,hmac-sha1-96,"):
        with pytest.raises(InputError):
            parse_esp_sa_option(bad)
    ring = build_keyring(("0x10=env:HOME",), (), KEYS)
    assert sorted(ring.mip) == [16, 256, 257] and sorted(ring.esp) == [0x1001, 0x2001]


def test_bad_keys_file_names_the_key(tmp_path):
    path = tmp_path / "keys.toml"
    path.write_text('[[esp]]\nspi = 5\nencryption = "rot13"\n')
    result = run("--keys", str(path), str(PCAPS / "access-mode-c.pcap"))
    assert result.returncode == 2 and "esp[1]" in result.stderr and result.stderr.count("\n") == 1


def test_scapy_path_gives_the_same_records_as_the_default():
    for name in ("access-mode-c.pcap", "access-mode-f.pcap", "analyze-findings.pcap"):
        path = str(PCAPS / name)
        assert json_lines(path) == json_lines("--scapy", path)


def test_broken_pipe_is_quiet(tmp_path):
    proc = subprocess.run(
        f"{sys.executable} -m mipcheck.cli dissect {PCAPS / 'access-mode-f.pcap'} | head -n 1",
        shell=True,
        capture_output=True,
        text=True,
    )
    assert proc.stdout.count("\n") == 1 and "Traceback" not in proc.stderr


def _big_capture(path: Path, packets: int) -> None:
    frames = _frames()
    with path.open("wb") as f:
        writer = PcapWriter(f)
        for i in range(packets):
            t, _lt, data, _wl = frames[i % len(frames)]
            writer.write(data, t + i * 0.001)


def test_two_core_summary_equals_the_sequential_one(tmp_path):
    from mipcheck.capture.dissector import PARALLEL_MIN_SIZE, parallel_summaries

    path = tmp_path / "big.pcap"
    _big_capture(path, 50000)
    assert path.stat().st_size > PARALLEL_MIN_SIZE
    split = CaptureReader(str(path)).pcap_split()
    assert split is not None and 0 < split[1] < 50000  # the two-core path really applies
    assert parallel_summaries.__name__  # imported from where dissect uses it
    sequential = []
    for lines in Dissector().summaries(CaptureReader(str(path))):
        sequential.extend(lines)
    result = run(str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == sequential


def test_two_core_summary_of_a_cut_file_keeps_everything_before_the_cut(tmp_path):
    path = tmp_path / "big-cut.pcap"
    _big_capture(path, 50000)
    data = path.read_bytes()
    path.write_bytes(data[:-40])
    result = run(str(path))
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert len(lines) == 49999 and [int(line.split()[0]) for line in lines[-2:]] == [49998, 49999]
    assert result.stderr.count("\n") == 1 and "packet 50000 is incomplete" in result.stderr
