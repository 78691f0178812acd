"""The MN profile (issue 10's pinned keys): what it accepts, and one line naming the key for what it does not."""

from __future__ import annotations

import copy

import pytest

from mipcheck.errors import ConfigError
from mipcheck.mn.profile import (
    DEFAULT_MN_PORT,
    MIP_PORT,
    NATT_PORT,
    load_mobile_node_profile,
    parse_mobile_node_profile,
)

ENC, AUTH = "00112233445566778899aabbccddeeff", "0011223344556677889900112233445566778899"

PINNED = {
    "dut": {"role": "mn", "home_address": "10.20.0.50", "interfaces": ["eth0"], "t_monitor": 5.0},
    "i_ha": {"address": "127.0.1.1", "spi": 256, "secret_env": "MIPCHECK_TEST_IHA"},
    "x_ha": {"address": "127.0.1.2", "home_address": "198.51.100.50", "spi": 257, "secret_env": "MIPCHECK_TEST_XHA"},
    "vpn": {
        "gateway": "127.0.1.3",
        "inner_address": "10.20.9.50",
        "spi_in": 4097,
        "spi_out": 4098,
        "encryption": "AES-CBC",
        "encryption_key_env": "MIPCHECK_TEST_ENC",
        "integrity": "HMAC-SHA1-96",
        "integrity_key_env": "MIPCHECK_TEST_AUTH",
    },
    "networks": {"inside": "127.10.0.2", "outside": "127.20.0.2"},
    "commands": {"move": "ssh lab move-mn {interface} {network} {care_of_address}", "timeout": 30},
}


@pytest.fixture(autouse=True)
def _keys(monkeypatch):
    monkeypatch.setenv("MIPCHECK_TEST_IHA", "i-ha secret")
    monkeypatch.setenv("MIPCHECK_TEST_XHA", "x-ha secret")
    monkeypatch.setenv("MIPCHECK_TEST_ENC", ENC)
    monkeypatch.setenv("MIPCHECK_TEST_AUTH", AUTH)


def _with(path: str, value):
    doc = copy.deepcopy(PINNED)
    *parents, leaf = path.split(".")
    table = doc
    for p in parents:
        table = table.setdefault(p, {})
    if value is _DELETE:
        del table[leaf]
    else:
        table[leaf] = value
    return doc


_DELETE = object()


def test_the_pinned_profile_reads_with_its_defaults():
    p = parse_mobile_node_profile(PINNED)
    assert p.home_address == "10.20.0.50" and p.interfaces == ("eth0",) and p.t_monitor == 5.0
    assert p.i_ha.place == ("127.0.1.1", MIP_PORT) and p.x_ha.place == ("127.0.1.2", MIP_PORT)
    assert p.i_ha.home_address == "10.20.0.50" and p.x_ha.home_address == "198.51.100.50"
    assert p.i_ha.sa.spi == 256 and p.i_ha.sa.key == b"i-ha secret" and p.x_ha.sa.key == b"x-ha secret"
    assert p.vpn.place == ("127.0.1.3", NATT_PORT)
    assert p.vpn.encryption_key.reveal() == bytes.fromhex(ENC) and p.vpn.integrity_key.reveal() == bytes.fromhex(AUTH)
    assert p.port == DEFAULT_MN_PORT and p.detection_period == 3.0 and p.grace == pytest.approx(1.0)
    assert p.care_of_address("eth0", "inside") == "127.10.0.2" and p.care_of_address("eth0", "down") is None
    assert not p.same_home_agent
    assert p.i_ha.secret_from == "environment variable MIPCHECK_TEST_IHA"


def test_no_secret_shows_in_the_profile_repr():
    text = repr(parse_mobile_node_profile(PINNED))
    for secret in ("i-ha secret", "x-ha secret", ENC, AUTH, bytes.fromhex(ENC).hex()):
        assert secret not in text


def test_two_interfaces_take_their_own_care_of_addresses():
    doc = _with("dut.interfaces", ["eth0", "wlan0"])
    doc["networks"].update(inside_2="127.10.0.3", outside_2="127.20.0.3")
    p = parse_mobile_node_profile(doc)
    assert p.care_of_address("wlan0", "outside") == "127.20.0.3"


@pytest.mark.parametrize(
    ("path", "value", "key"),
    [
        ("dut.role", "ha", "dut.role"),
        ("dut.home_address", "10.20.0", "dut.home_address"),
        ("dut.interfaces", [], "dut.interfaces"),
        ("dut.interfaces", ["eth0", "eth0"], "dut.interfaces"),
        ("dut.interfaces", ["eth0", "eth1"], "networks.inside_2"),
        ("dut.t_monitor", 0, "dut.t_monitor"),
        ("dut.t_monitor", "60", "dut.t_monitor"),
        ("dut.rereg_grace", 5.0, "dut.rereg_grace"),
        ("dut.when_gated", "buffer", "dut.when_gated"),
        ("dut.colour", "red", "dut.colour"),
        ("i_ha.spi", 255, "i_ha.spi"),
        ("i_ha.secret_env", _DELETE, "i_ha.secret"),
        ("i_ha.port", 0, "i_ha.port"),
        ("i_ha.algorithm", "sha1", "i_ha.algorithm"),
        ("x_ha.home_address", _DELETE, "x_ha.home_address"),
        ("x_ha.address", "127.0.1.1", None),  # same address, same port: allowed (3.5)
        ("vpn.encryption", "DES", "vpn.encryption"),
        ("vpn.spi_out", 4097, "vpn.spi_out"),
        ("vpn.encryption_key_env", _DELETE, "vpn.encryption_key_env"),
        ("vpn.integrity_key_hex", AUTH, "vpn.integrity_key_hex"),  # two sources
        ("networks.outside", "127.10.0.2", "networks"),
        ("networks.inside", _DELETE, "networks.inside"),
        ("commands.move", "", "commands.move"),
        ("extra", {}, "extra"),
    ],
)
def test_a_bad_key_is_named(path, value, key):
    doc = _with(path, value)
    if key is None:
        assert parse_mobile_node_profile(doc).same_home_agent
        return
    with pytest.raises(ConfigError) as exc:
        parse_mobile_node_profile(doc, source="p.toml")
    assert exc.value.key == key
    assert "\n" not in str(exc.value)


def test_esp_keys_must_be_hex_of_the_right_size(monkeypatch):
    monkeypatch.setenv("MIPCHECK_TEST_ENC", "not hex")
    with pytest.raises(ConfigError) as exc:
        parse_mobile_node_profile(PINNED)
    assert exc.value.key == "vpn.encryption_key_env"
    monkeypatch.setenv("MIPCHECK_TEST_ENC", "0011")
    with pytest.raises(ConfigError, match="AES-CBC needs 16 or 24 or 32"):
        parse_mobile_node_profile(PINNED)


def test_same_address_needs_the_same_port():
    doc = _with("x_ha.address", "127.0.1.1")
    doc["x_ha"]["port"] = 4340
    with pytest.raises(ConfigError) as exc:
        parse_mobile_node_profile(doc)
    assert exc.value.key == "x_ha.port"


def test_load_reads_a_file_with_relative_secret_files(tmp_path):
    (tmp_path / "iha.key").write_text("from a file")
    (tmp_path / "p.toml").write_text(
        """
[dut]
home_address = "10.20.0.50"
t_monitor = 2
[i_ha]
address = "127.0.1.1"
spi = 300
secret_file = "iha.key"
[x_ha]
address = "127.0.1.2"
home_address = "198.51.100.50"
spi = 301
secret = "inline"
[vpn]
gateway = "127.0.1.3"
inner_address = "10.20.9.50"
spi_in = 5000
spi_out = 5001
encryption = "NULL"
integrity = "SHA2-256-128"
integrity_key_hex = "00112233"
[networks]
inside = "127.10.0.2"
outside = "127.20.0.2"
"""
    )
    p = load_mobile_node_profile(tmp_path / "p.toml")
    assert p.i_ha.sa.key == b"from a file" and p.vpn.encryption_key.reveal() == b"" and p.move_command is None
