"""Home agent and mobile node configs: good files load, every bad value names its key."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from mipcheck.errors import ConfigError
from mipcheck.ha.config import HAConfig, MobileNodeConfig, load_ha_config
from mipcheck.layers.secret import Secret
from mipcheck.mn.config import load_mn_config

EXAMPLES = Path(__file__).parents[1] / "examples"
MN = '[[mobile_node]]\nhome_address = "10.0.0.1"\nspi = 256\nsecret = "inline-lab-secret"\n'


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "ha.toml"
    p.write_text(text)
    return p


def test_examples_load() -> None:
    i = load_ha_config(EXAMPLES / "ha-i.toml")
    x = load_ha_config(EXAMPLES / "ha-x.toml")
    assert (i.role, x.role) == ("i-ha", "x-ha")
    assert i.address != x.address  # RFC 5265 3.5: i-HA and x-HA addresses MUST differ
    assert i.trusted_networks == (ipaddress.IPv4Network("127.0.0.0/28"),) and x.trusted_networks == ()
    assert [m.replay for m in i.mobile_nodes] == ["timestamp", "nonce"]
    assert i.mobile_nodes[0].secret.reveal() == b"example-only-mn1-key"  # trailing newline dropped
    m = load_mn_config(EXAMPLES / "mn.toml")
    assert m.secret == i.mobile_nodes[0].secret and m.home_agent == i.address and m.ha_port == i.port


def test_defaults_match_the_contract() -> None:
    c = HAConfig()
    assert (c.address, c.port, c.role, c.trusted_networks, c.max_lifetime, c.replay_skew, c.replay_strict) == (
        "127.0.0.1",
        434,
        "i-ha",
        (),
        1800,
        7.0,
        True,
    )
    assert (
        c.keepalive_interval,
        c.simultaneous_bindings,
        c.reverse_tunneling,
        c.udp_tunneling,
        c.log_file,
        c.mobile_nodes,
    ) == (110, False, True, True, None, ())


def test_secret_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "k").write_bytes(b"\x00\xffbinary\n")
    monkeypatch.setenv("MIPCHECK_TEST_KEY", "from-env")
    p = write(
        tmp_path,
        MN.replace('secret = "inline-lab-secret"', 'secret_file = "k"')
        + MN.replace("10.0.0.1", "10.0.0.2").replace(
            'secret = "inline-lab-secret"', 'secret_env = "MIPCHECK_TEST_KEY"'
        ),
    )
    a, b = load_ha_config(p).mobile_nodes
    assert a.secret.reveal() == b"\x00\xffbinary" and b.secret.reveal() == b"from-env"
    assert "binary" not in repr(a) and "from-env" not in repr(b)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("address = 'nowhere'\n", "address"),
        ("address = '0.0.0.0'\n", "address"),
        ("port = 70000\n", "port"),
        ("port = 'x'\n", "port"),
        ("role = 'f-ha'\n", "role"),
        ("trusted_networks = '127.0.0.0/8'\n", "trusted_networks"),
        ("trusted_networks = ['127.0.0.1/8']\n", "trusted_networks[0]"),
        ("max_lifetime = 0\n", "max_lifetime"),
        ("max_lifetime = 65536\n", "max_lifetime"),
        ("replay_skew = -1\n", "replay_skew"),
        ("replay_strict = 'yes'\n", "replay_strict"),
        ("colour = 'blue'\n", "colour"),
        ("this is not toml", "config"),
        (MN.replace("spi = 256", "spi = 255"), "mobile_node[0].spi"),
        (MN.replace('home_address = "10.0.0.1"', 'home_address = "10.0.0"'), "mobile_node[0].home_address"),
        (MN.replace('secret = "inline-lab-secret"\n', ""), "mobile_node[0].secret"),
        (MN + 'secret_env = "X"\n', "mobile_node[0].secret_env"),  # the second of two sources is named
        (MN.replace('secret = "inline-lab-secret"', 'secret_file = "missing.key"'), "mobile_node[0].secret_file"),
        (
            MN.replace('secret = "inline-lab-secret"', 'secret_env = "MIPCHECK_SURELY_UNSET"'),
            "mobile_node[0].secret_env",
        ),
        (MN + 'algorithm = "sha1"\n', "mobile_node[0].algorithm"),
        (MN + 'replay = "counter"\n', "mobile_node[0].replay"),
        (MN + "favourite = 1\n", "mobile_node[0].favourite"),
        (MN + MN, "mobile_node[1].home_address"),
    ],
)
def test_bad_values_name_their_key(tmp_path: Path, text: str, key: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_ha_config(p)
    assert err.value.key == key
    msg = str(err.value)
    assert msg.startswith(f"{p}: {key}: ") and "\n" not in msg
    assert "inline-lab-secret" not in msg


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_ha_config("/nonexistent/ha.toml")


def test_direct_construction_validates() -> None:
    with pytest.raises(ConfigError, match="trusted_networks"):
        HAConfig(trusted_networks=("not a net",))
    with pytest.raises(ConfigError, match="configured twice"):
        HAConfig(mobile_nodes=(MobileNodeConfig("10.0.0.1", 256, b"k"), MobileNodeConfig("10.0.0.1", 257, b"k")))
    with pytest.raises(ConfigError, match="spi"):
        MobileNodeConfig("10.0.0.1", 1, b"k")
    c = HAConfig(trusted_networks=("127.0.0.0/24",), mobile_nodes=(MobileNodeConfig("10.0.0.1", 256, "text-secret"),))
    assert isinstance(c.mobile_nodes[0].secret, Secret) and c.mobile_node("10.0.0.1") is c.mobile_nodes[0]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('home_agent = "127.0.0.1"\nspi = 256\nsecret = "s"\n', "home_address"),
        (
            'home_address = "10.0.0.1"\nhome_agent = "127.0.0.1"\nspi = 256\nsecret = "s"\nlifetime = 70000\n',
            "lifetime",
        ),
        (
            'home_address = "10.0.0.1"\nhome_agent = "127.0.0.1"\nspi = 256\nsecret = "s"\nforce_udp = true\n',
            "force_udp",
        ),
        ('home_address = "10.0.0.1"\nhome_agent = "127.0.0.1"\nspi = 256\nsecret = "s"\ntimeout = 0\n', "timeout"),
        ('home_address = "10.0.0.1"\nhome_agent = "127.0.0.1"\nspi = 256\n', "mobile node.secret"),
        (
            'home_address = "10.0.0.1"\nhome_agent = "127.0.0.1"\nspi = 256\nsecret = "s"\nlocal_address = "here"\n',
            "local_address",
        ),
    ],
)
def test_mn_bad_values(tmp_path: Path, text: str, key: str) -> None:
    p = tmp_path / "mn.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_mn_config(p)
    assert err.value.key == key
