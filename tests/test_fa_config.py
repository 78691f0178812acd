"""The foreign agent's configuration: defaults, the TOML loader, and one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mipcheck.errors import ConfigError
from mipcheck.fa.config import FAConfig, HomeAgentPeer, fa_config_from_dict, load_fa_config
from mipcheck.fa.core import ForeignAgent

SECRET = "fa-config-secret-do-not-print"


def test_defaults() -> None:
    c = FAConfig()
    assert (c.address, c.port, c.care_of_addresses, c.flags) == ("127.0.0.1", 434, ("127.0.0.1",), "F")
    assert (c.max_lifetime, c.registration_lifetime, c.advertisement_lifetime) == (1800, 1800, 3)
    assert (c.reverse_tunneling, c.link, c.upstream, c.advertised_flags) == (False, None, None, 0x1000)
    assert c.home_agent("192.0.2.1") == HomeAgentPeer("192.0.2.1")  # none configured: any, port 434, no SA
    assert c.home_agent("0.0.0.0") is None


def test_toml_loader(tmp_path: Path) -> None:
    (tmp_path / "fa-ha.key").write_text(SECRET + "\n")
    (tmp_path / "fa.toml").write_text(
        """
address = "127.0.0.5"
port = 0
care_of_addresses = ["127.0.0.5", "127.0.0.6"]
flags = ["T", "F", "R"]
max_lifetime = 900
registration_lifetime = 600
advertise_interval = 2
link = "127.0.0.1:4340"
upstream = ["127.0.0.40", 5000]
log_file = "fa.log"
reverse_tunnel_required = true

[[home_agent]]
address = "127.0.0.2"
port = 4434
spi = 500
secret_file = "fa-ha.key"

[[home_agent]]
address = "127.0.0.3"

[[mobile_node]]
home_address = "10.0.0.9"
spi = 400
secret_hex = "6b6579"
"""
    )
    c = load_fa_config(tmp_path / "fa.toml")
    assert c.flags == "RFT" and c.reverse_tunneling and c.reverse_tunnel_required
    assert (c.link, c.upstream, c.advertisement_lifetime) == (("127.0.0.1", 4340), ("127.0.0.40", 5000), 6)
    assert c.log_file == str(tmp_path / "fa.log")
    ha = c.home_agent("127.0.0.2")
    assert ha.place == ("127.0.0.2", 4434) and ha.sa.key == SECRET.encode() and ha.sa.spi == 500
    assert c.home_agent("127.0.0.3").sa is None and c.home_agent("127.0.0.4") is None
    assert c.mn_fa_sa("10.0.0.9").key == b"key"
    assert SECRET not in repr(c)
    ForeignAgent(c)  # the core takes it


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("address-zero", {"address": "0.0.0.0"}, "address: must be a unicast address"),
    ("address-text", {"address": "fa"}, "address: 'fa' is not an IPv4 address"),
    ("port", {"port": 70000}, "port: 70000 is out of range"),
    ("coa-list", {"care_of_addresses": "127.0.0.5"}, "care_of_addresses: expected a list"),
    ("coa-twice", {"care_of_addresses": ["127.0.0.5", "127.0.0.5"]}, "care_of_addresses: lists an address twice"),
    ("coa-broadcast", {"care_of_addresses": ["255.255.255.255"]}, "care_of_addresses[0]: 255.255.255.255 is not"),
    ("coa-too-many", {"care_of_addresses": [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(63)]}, "at most 62"),
    ("interval-zero", {"advertise_interval": 0}, "advertise_interval: expected seconds"),
    ("interval-bool", {"advertise_interval": True}, "advertise_interval: expected seconds"),
    (
        "adv-lifetime-short",
        {"advertise_interval": 10, "advertisement_lifetime": 5},
        "advertisement_lifetime: 5 s is shorter",
    ),
    ("max-lifetime-zero", {"max_lifetime": 0}, "max_lifetime: 0 is out of range 1..65535"),
    ("reg-lifetime-long", {"registration_lifetime": 2000}, "registration_lifetime: 2000 is longer than max_lifetime"),
    ("flag-h", {"flags": "FH"}, "flags: 'H' is not offered"),
    ("flag-g", {"flags": "FG"}, "flags: 'G' is not offered"),
    ("flag-unknown", {"flags": "FZ"}, "flags: 'Z' is not an advertisement flag"),
    ("flag-twice", {"flags": "FF"}, "flags: 'FF' repeats a letter"),
    ("flag-no-f", {"flags": "RT"}, "flags: must include 'F'"),
    ("flag-number", {"flags": 3}, "flags: expected advertisement letters"),
    ("rt-without-t", {"reverse_tunneling": True}, "reverse_tunneling: is true but flags do not advertise 'T'"),
    ("t-without-rt", {"flags": "FT", "reverse_tunneling": False}, "reverse_tunneling: is false but flags advertise"),
    ("required-without-t", {"reverse_tunnel_required": True}, "reverse_tunnel_required: needs reverse tunnelling"),
    ("rt-not-bool", {"flags": "FT", "reverse_tunneling": "yes"}, "reverse_tunneling: expected true or false"),
    ("visitors-zero", {"max_visitors": 0}, "max_visitors: 0 is out of range"),
    ("pending-timeout", {"pending_timeout": -1}, "pending_timeout: expected seconds"),
    ("link-port", {"link": "127.0.0.1:x"}, "link: '127.0.0.1:x': the port is not a number"),
    ("link-shape", {"link": 4340}, 'link: expected "address:port"'),
    ("upstream-port-zero", {"upstream": "127.0.0.1:0"}, "upstream: 0 is out of range"),
    ("adv-dst", {"advertisement_destination": "10.0.0.255"}, "advertisement_destination: '10.0.0.255' is not one"),
    ("log-file", {"log_file": ""}, "log_file: expected a path string"),
    ("unknown-key", {"colour": "blue"}, "colour: unknown key"),
    ("ha-not-table", {"home_agent": [1]}, "home_agent[0]: expected a table"),
    ("ha-not-list", {"home_agent": {"address": "127.0.0.2"}}, "home_agent: expected [[home_agent]] tables"),
    ("ha-unknown-key", {"home_agent": [{"address": "127.0.0.2", "colour": 1}]}, "home_agent[0].colour: unknown key"),
    ("ha-missing-address", {"home_agent": [{"port": 1}]}, "home_agent[0].address: missing"),
    ("ha-broadcast", {"home_agent": [{"address": "255.255.255.255"}]}, "home_agent[0].address: 255.255.255.255"),
    ("ha-twice", {"home_agent": [{"address": "127.0.0.2"}] * 2}, "home_agent.address: 127.0.0.2 is configured twice"),
    ("ha-spi-no-secret", {"home_agent": [{"address": "127.0.0.2", "spi": 500}]}, "home_agent[0].secret: missing"),
    (
        "ha-secret-no-spi",
        {"home_agent": [{"address": "127.0.0.2", "secret": "x"}]},
        "home_agent[0].spi: missing",
    ),
    ("mn-missing-home", {"mobile_node": [{"spi": 400, "secret": "x"}]}, "mobile_node[0].home_address: missing"),
    ("mn-no-sa", {"mobile_node": [{"home_address": "10.0.0.1"}]}, "mobile_node[0].spi: missing"),
    (
        "mn-twice",
        {"mobile_node": [{"home_address": "10.0.0.1", "spi": 400, "secret": "x"}] * 2},
        "mobile_node.home_address: 10.0.0.1 is configured twice",
    ),
]


@pytest.mark.parametrize(("name", "data", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_values_name_their_key(name: str, data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        fa_config_from_dict(data, source="fa.toml")
    text = str(info.value)
    assert message in text and text.startswith("fa.toml: ") and "\n" not in text, text


def test_missing_file_and_secret_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config: file not found"):
        load_fa_config(tmp_path / "none.toml")
    (tmp_path / "fa.toml").write_text('[[home_agent]]\naddress = "127.0.0.2"\nspi = 500\nsecret_file = "gone.key"\n')
    with pytest.raises(ConfigError, match=r"home_agent\[0\]\.secret_file: .*gone.key"):
        load_fa_config(tmp_path / "fa.toml")


def test_dataclass_errors_name_the_key_too() -> None:
    with pytest.raises(ConfigError, match="home_agents: expected HomeAgentPeer"):
        FAConfig(home_agents=("127.0.0.2",))
    with pytest.raises(ConfigError, match="home_agent.port: 0 is out of range"):
        HomeAgentPeer("127.0.0.2", 0)
