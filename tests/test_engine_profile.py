"""The test profile: valid files load, every bad value names its key, secrets never show."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mipcheck.engine.profile import load_profile, parse_profile, parse_target
from mipcheck.errors import ConfigError

SECRET = "s3cr3t-do-not-print"

GOOD = f"""
[dut]
address = "127.0.0.1"
port = 4434
role = "i-ha"

[mn]
home_addresses = ["10.1.0.10", "10.1.0.20-10.1.0.22"]
spi = 4096
secret = "{SECRET}"

[tester]
trusted_sources = ["127.0.0.2"]
untrusted_sources = ["127.0.0.66"]
reply_timeout = 1.5

[applicability]
reverse_tunneling = false

[commands]
read_log = "cat /var/log/ha.log"
"""


def _doc(text: str = GOOD) -> dict:
    return tomllib.loads(text)


def test_good_profile() -> None:
    p = parse_profile(_doc(), "p.toml")
    assert p.target == ("127.0.0.1", 4434)
    assert [m.home_address for m in p.mobile_nodes] == ["10.1.0.10", "10.1.0.20", "10.1.0.21", "10.1.0.22"]
    assert all(m.spi == 4096 and m.secret.reveal() == SECRET.encode() for m in p.mobile_nodes)
    assert p.home_agent_of(p.mobile_nodes[0]) == "127.0.0.1"  # defaults to the device
    assert p.reply_timeout == 1.5
    assert p.flag("reverse_tunneling") is False
    assert p.flag("trusted_networks") is True  # role i-ha
    assert p.flag("nat_traversal") is True


def test_target_overrides_dut() -> None:
    p = parse_profile(_doc(), "p.toml", target="127.0.0.9:5000")
    assert p.target == ("127.0.0.9", 5000)
    assert p.home_agent_of(p.mobile_nodes[0]) == "127.0.0.9"
    assert parse_target("127.0.0.9") == ("127.0.0.9", 434)


def test_public_view_hides_secrets() -> None:
    p = parse_profile(_doc(), "p.toml")
    text = repr(p.public()) + repr(p)
    assert SECRET not in text
    assert p.public()["mn"][0]["secret"].startswith("<hidden")


def test_list_of_mobile_nodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "key").write_bytes(b"filekey\n")
    monkeypatch.setenv("MIPCHECK_TEST_KEY", "envkey")
    text = """
[dut]
address = "127.0.0.1"
[[mn]]
home_address = "10.0.0.1"
spi = 300
secret_file = "key"
[[mn]]
home_address = "10.0.0.2"
spi = 301
secret_env = "MIPCHECK_TEST_KEY"
algorithm = "prefix-suffix-md5"
[[mn]]
home_address = "10.0.0.3"
spi = 302
secret_hex = "0x00ff10"
[tester]
trusted_sources = "127.0.0.2"
"""
    path = tmp_path / "p.toml"
    path.write_text(text)
    p = load_profile(path)
    assert [m.secret.reveal() for m in p.mobile_nodes] == [b"filekey", b"envkey", b"\x00\xff\x10"]
    assert p.mobile_nodes[1].algorithm == "prefix-suffix-md5"
    assert "envkey" not in repr(p.public()) and "filekey" not in repr(p.public())


BASE = {
    "dut": {"address": "127.0.0.1"},
    "mn": {"home_address": "10.0.0.1", "spi": 4096, "secret": "k"},
    "tester": {"trusted_sources": ["127.0.0.2"]},
}


def _with(table: str, key: str, value) -> dict:
    doc = {k: dict(v) for k, v in BASE.items()}
    doc.setdefault(table, {})
    if value is None:
        doc[table].pop(key, None)
    else:
        doc[table][key] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        (_with("dut", "address", None), "dut.address"),
        (_with("dut", "address", "ha.example"), "dut.address"),
        (_with("dut", "port", 70000), "dut.port"),
        (_with("dut", "role", "fa"), "dut.role"),
        (_with("dut", "colour", "red"), "dut.colour"),
        (_with("mn", "spi", 255), "mn.spi"),  # RFC 5944: SPIs 0-255 are reserved
        (_with("mn", "spi", None), "mn.spi"),
        (_with("mn", "secret", None), "mn.secret"),
        (_with("mn", "secret_env", "MIPCHECK_SURELY_UNSET_VARIABLE"), "mn.secret_env"),
        (_with("mn", "algorithm", "sha1"), "mn.algorithm"),
        (_with("mn", "replay", "nonce"), "mn.replay"),
        (_with("mn", "home_address", "10.0.0.300"), "mn.home_address"),
        (_with("mn", "home_addresses", ["10.0.0.1"]), "mn.home_addresses"),
        (_with("mn", "secret_hex", "zz"), "mn.secret_hex"),
        (_with("tester", "trusted_sources", None), "tester.trusted_sources"),
        (_with("tester", "untrusted_sources", ["127.0.0.2"]), "tester.untrusted_sources"),
        (_with("tester", "reply_timeout", "fast"), "tester.reply_timeout"),
        (_with("applicability", "nat_traversal", "yes"), "applicability.nat_traversal"),
        (_with("applicability", "nat_travresal", True), "applicability.nat_travresal"),
        (_with("commands", "start_unconfigured", "true"), "commands.stop_unconfigured"),
        (_with("commands", "unconfigured_target", "nowhere"), "commands.unconfigured_target"),
        ({**BASE, "extra": {}}, "extra"),
        ({k: v for k, v in BASE.items() if k != "mn"}, "mn"),
    ],
)
def test_bad_profile_names_the_key(doc: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_profile(doc, "bad.toml")
    assert info.value.key == key
    assert str(info.value).startswith("bad.toml: " + key)
    assert "\n" not in str(info.value)


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_profile(tmp_path / "missing.toml")
    assert info.value.key == "--profile"
    bad = tmp_path / "bad.toml"
    bad.write_text("[dut\naddress=")
    with pytest.raises(ConfigError) as info:
        load_profile(bad)
    assert "not valid TOML" in str(info.value)


@pytest.mark.parametrize("text", ["", "host", "127.0.0.1:0", "127.0.0.1:x", "::1"])
def test_bad_target(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_target(text)
    assert info.value.key == "--target"


def test_vendor_example_profile_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIPCHECK_MN_SECRET", "k3y-9f2e")
    path = Path(__file__).resolve().parent.parent / "examples" / "profile-vendor.toml"
    p = load_profile(path)
    assert p.target == ("192.0.2.10", 434) and len(p.mobile_nodes) == 24
    assert p.commands["read_log"].startswith("ssh ")
    assert "k3y-9f2e" not in repr(p.public())


def test_request_flags_are_letters_of_the_flags_octet() -> None:
    doc = _doc(GOOD.replace("spi = 4096", 'spi = 4096\nflags = ["G", "T"]'))
    p = parse_profile(doc, "p.toml")
    assert all(m.flags == 0x08 | 0x02 and m.flag_letters == "GT" for m in p.mobile_nodes)
    assert p.public()["mn"][0]["flags"] == ["G", "T"]


@pytest.mark.parametrize("bad", ['["g"]', '["Q"]', "[1]", "7"])
def test_unknown_request_flags_name_the_key(bad: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_profile(_doc(GOOD.replace("spi = 4096", f"spi = 4096\nflags = {bad}")), "p.toml")
    assert err.value.key == "mn.flags"


def test_profile_flags_reach_every_request() -> None:
    from mipcheck.layers import RegistrationRequest
    from mipcheck.suites.ha.messages import build_request

    p = parse_profile(_doc(GOOD.replace("spi = 4096", 'spi = 4096\nflags = ["G"]')), "p.toml")
    req = build_request(
        p.mobile_nodes[0], home_agent="127.0.0.1", care_of_address="127.0.0.2", identification=1, lifetime=30
    )
    pkt = RegistrationRequest(req.data)
    assert (pkt.G, pkt.D, pkt.T) == (1, 1, 0)
    cleared = build_request(
        p.mobile_nodes[0],
        home_agent="127.0.0.1",
        care_of_address="127.0.0.2",
        identification=1,
        lifetime=30,
        clear_flags=0x08,
    )
    assert RegistrationRequest(cleared.data).G == 0


def test_an_x_ha_profile_needs_no_trusted_sources() -> None:
    text = (
        GOOD.replace('role = "i-ha"', 'role = "x-ha"')
        .replace('trusted_sources = ["127.0.0.2"]\n', "")
        .replace('untrusted_sources = ["127.0.0.66"]\n', "")
    )
    p = parse_profile(_doc(text), "p.toml")
    assert p.trusted_sources == ("127.0.0.1",)  # the kernel's source towards the device on loopback
    with pytest.raises(ConfigError) as err:
        parse_profile(_doc(GOOD.replace('trusted_sources = ["127.0.0.2"]\n', "")), "p.toml")
    assert err.value.key == "tester.trusted_sources"
