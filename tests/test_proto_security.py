"""One security association type: its checks, and every config, profile and keys file holding it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from mipcheck.capture.keys import load_keys_file, parse_key_option
from mipcheck.engine.profile import MobileNode, load_profile
from mipcheck.errors import ConfigError
from mipcheck.ha.config import MobileNodeConfig, load_ha_config
from mipcheck.mn.config import MNConfig, load_mn_config
from mipcheck.proto.secret import Secret
from mipcheck.proto.security import MIN_SPI, AnalysisSA, SecurityAssociation

KEY = b"Sup3r-Secret-SA-Key"


@pytest.mark.parametrize(
    ("spi", "secret", "algorithm", "key"),
    [
        (255, KEY, "hmac-md5", "spi"),  # RFC 5944 1.2: 0-255 reserved
        (0, KEY, "hmac-md5", "spi"),
        (2**32, KEY, "hmac-md5", "spi"),
        (-1, KEY, "hmac-md5", "spi"),
        (True, KEY, "hmac-md5", "spi"),  # a bool is not an SPI, though it is an int
        ("256", KEY, "hmac-md5", "spi"),
        (None, KEY, "hmac-md5", "spi"),
        (256, b"", "hmac-md5", "secret"),
        (256, "", "hmac-md5", "secret"),
        (256, Secret(b""), "hmac-md5", "secret"),
        (256, None, "hmac-md5", "secret"),
        (256, KEY, "sha1", "algorithm"),
        (256, KEY, "HMAC-MD5", "algorithm"),
        (256, KEY, None, "algorithm"),
    ],
)
def test_bad_values_are_refused_naming_the_key(spi: Any, secret: Any, algorithm: Any, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        SecurityAssociation(spi, secret, algorithm)
    assert err.value.key == key and "\n" not in str(err.value)
    assert KEY.decode() not in str(err.value)
    with pytest.raises(ConfigError) as err:
        SecurityAssociation.checked(spi, secret, algorithm, where="mobile_node[3]", source="ha.toml")
    assert err.value.key == f"mobile_node[3].{key}" and str(err.value).startswith(f"ha.toml: mobile_node[3].{key}: ")


@pytest.mark.parametrize(
    ("spi", "secret", "algorithm"),
    [
        (MIN_SPI, KEY, "hmac-md5"),
        (256, "text key", "prefix-suffix-md5"),
        (2**32 - 1, Secret(KEY), "hmac-md5"),
        (0x1000, b"\x00", "hmac-md5"),  # one octet, even a zero, is a key
    ],
)
def test_good_values_are_held(spi: int, secret: Any, algorithm: str) -> None:
    sa = SecurityAssociation(spi, secret, algorithm)
    assert (sa.spi, sa.algorithm) == (spi, algorithm) and isinstance(sa.secret, Secret)
    raw = secret.reveal() if isinstance(secret, Secret) else secret.encode() if isinstance(secret, str) else secret
    assert sa.key == raw
    assert SecurityAssociation(spi, secret).algorithm == "hmac-md5"


def test_validate_names_where() -> None:
    sa = SecurityAssociation(256, KEY)
    sa.validate("i_ha")  # a valid SA stays valid
    object.__setattr__(sa, "spi", 7)  # only to reach validate() with a bad value
    with pytest.raises(ConfigError) as err:
        sa.validate("i_ha")
    assert err.value.key == "i_ha.spi" and "0-255 reserved" in err.value.problem


def test_repr_and_str_hide_the_key() -> None:
    for sa in (SecurityAssociation(256, KEY), AnalysisSA(7, KEY), MobileNodeConfig("10.0.0.1", 256, KEY)):
        for text in (repr(sa), str(sa)):
            assert KEY.decode() not in text and KEY.hex() not in text and repr(KEY) not in text
            assert "<hidden>" in text
    assert repr(SecurityAssociation(300, KEY, "prefix-suffix-md5")) == (
        "SecurityAssociation(spi=300, secret=<hidden>, algorithm='prefix-suffix-md5')"
    )


def test_equality_and_hash() -> None:
    a = SecurityAssociation(256, KEY)
    for same in (SecurityAssociation(256, KEY.decode()), SecurityAssociation(256, Secret(KEY), "hmac-md5")):
        assert a == same and hash(a) == hash(same)
    for other in (
        SecurityAssociation(257, KEY),
        SecurityAssociation(256, KEY + b"!"),
        SecurityAssociation(256, KEY, "prefix-suffix-md5"),
    ):
        assert a != other
    assert a != (256, KEY, "hmac-md5") and len({a, SecurityAssociation(256, KEY)}) == 1
    assert AnalysisSA(256, KEY) == a  # the same association, whichever constructor checked it
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.spi = 300  # type: ignore[misc]


def test_analysis_sa_takes_any_32_bit_spi() -> None:
    """A capture may carry a reserved SPI; its authenticator is still checked."""
    assert [AnalysisSA(spi, KEY).spi for spi in (0, 7, 255, 2**32 - 1)] == [0, 7, 255, 2**32 - 1]
    for bad in (-1, 2**32, True):
        with pytest.raises(ConfigError, match="spi"):
            AnalysisSA(bad, KEY)
    with pytest.raises(ConfigError, match="secret"):
        AnalysisSA(7, b"")
    assert isinstance(AnalysisSA(7, KEY), SecurityAssociation)


def test_verify_takes_security_associations() -> None:
    from mipcheck.layers import Key, MIPExtMNHAAuth, MobileIPMessage, RegistrationRequest

    sa = SecurityAssociation(0x1000, KEY, "prefix-suffix-md5")
    raw = bytes(RegistrationRequest(extensions=[MIPExtMNHAAuth(spi=sa.spi, key=sa.secret, algorithm=sa.algorithm)]))
    assert [c.valid for c in MobileIPMessage(raw).verify({sa.spi: sa})] == [True]
    key = Key(KEY, "prefix-suffix-md5")  # the call form of the layers' API
    assert isinstance(key, SecurityAssociation) and key.key == KEY and KEY.decode() not in repr(key)
    assert [c.valid for c in MobileIPMessage(raw).verify({sa.spi: key})] == [True]
    assert [c.valid for c in MobileIPMessage(raw).verify({sa.spi: Key(KEY)})] == [False]  # other algorithm


# ------------------------------------------------------------------ the holders


def test_every_holder_holds_the_one_type() -> None:
    holders = {
        "MobileNodeConfig": MobileNodeConfig("10.0.0.1", 300, KEY, "prefix-suffix-md5"),
        "MNConfig": MNConfig(
            home_address="10.0.0.1", home_agent="127.0.0.1", spi=300, secret=KEY, algorithm="prefix-suffix-md5"
        ),
        "MobileNode": MobileNode("10.0.0.1", None, 300, Secret(KEY), "prefix-suffix-md5"),
    }
    expected = SecurityAssociation(300, KEY, "prefix-suffix-md5")
    for name, holder in holders.items():
        assert isinstance(holder.sa, SecurityAssociation) and holder.sa == expected, name
        assert (holder.spi, holder.secret, holder.algorithm, holder.key) == (300, Secret(KEY), "prefix-suffix-md5", KEY)
        with pytest.raises(dataclasses.FrozenInstanceError):
            holder.spi = 301  # type: ignore[misc]
        moved = dataclasses.replace(holder, spi=301)  # replace() rebuilds the SA, checked again
        assert moved.sa == SecurityAssociation(301, KEY, "prefix-suffix-md5") and moved.sa is not holder.sa
        with pytest.raises(ConfigError, match="spi"):
            dataclasses.replace(holder, spi=255)
        assert dataclasses.replace(holder).sa == expected
    key = parse_key_option("300=prefix-suffix-md5:hex:" + KEY.hex())
    assert isinstance(key, SecurityAssociation) and key == expected


@pytest.mark.parametrize(
    ("make", "key"),
    [
        (lambda **kw: MobileNodeConfig("10.0.0.1", **kw), "mobile_node[10.0.0.1]."),
        (lambda **kw: MNConfig(home_address="10.0.0.1", home_agent="127.0.0.1", **kw), ""),
        (lambda **kw: MobileNode("10.0.0.1", None, **kw), "mn."),
    ],
)
def test_holders_check_through_the_sa(make, key: str) -> None:
    for kw, field in (
        ({"spi": 255, "secret": KEY}, "spi"),
        ({"spi": 2**32, "secret": KEY}, "spi"),
        ({"spi": 256, "secret": b""}, "secret"),
        ({"spi": 256, "secret": KEY, "algorithm": "sha1"}, "algorithm"),
        ({"secret": KEY}, "spi"),
    ):
        with pytest.raises(ConfigError) as err:
            make(**kw)
        assert err.value.key == key + field


# ------------------------------------------------------------------ the loaders agree

SA_TOML = 'spi = 300\nalgorithm = "prefix-suffix-md5"\n'


def _load_all(tmp_path: Path, sa_toml: str, secret: bytes) -> dict[str, Any]:
    """The SA each loader reads from the same TOML values (the keys file writes its secret in its own form)."""
    (tmp_path / "mn.key").write_bytes(secret + b"\n")
    given = 'secret_file = "mn.key"\n'
    ha = tmp_path / "ha.toml"
    ha.write_text('[[mobile_node]]\nhome_address = "10.0.0.1"\n' + sa_toml + given)
    mn = tmp_path / "mn.toml"
    mn.write_text('home_address = "10.0.0.1"\nhome_agent = "127.0.0.1"\n' + sa_toml + given)
    profile = tmp_path / "profile.toml"
    profile.write_text(
        '[dut]\naddress = "127.0.0.1"\n[mn]\nhome_address = "10.0.0.1"\n'
        + sa_toml
        + given
        + '[tester]\ntrusted_sources = ["127.0.0.2"]\n'
    )
    keys = tmp_path / "keys.toml"
    keys.write_text("[[mip]]\n" + sa_toml + 'secret = "file:mn.key"\n')
    return {
        "ha config": lambda: load_ha_config(ha).mobile_nodes[0].sa,
        "mn config": lambda: load_mn_config(mn).sa,
        "profile": lambda: load_profile(profile).mobile_nodes[0].sa,
        "keys file": lambda: next(iter(load_keys_file(str(keys)).mip.values())),
    }


def test_the_loaders_give_equal_sas(tmp_path: Path) -> None:
    loaded = {name: load() for name, load in _load_all(tmp_path, SA_TOML, KEY).items()}
    expected = SecurityAssociation(300, KEY, "prefix-suffix-md5")
    for name, sa in loaded.items():
        assert isinstance(sa, SecurityAssociation) and sa == expected, name
    hex_keys = tmp_path / "hex-keys.toml"
    hex_keys.write_text("[[mip]]\n" + SA_TOML + f'secret = "hex:{KEY.hex()}"\n')
    assert load_keys_file(str(hex_keys)).mip[300] == expected


@pytest.mark.parametrize(
    ("sa_toml", "keys"),
    [
        (
            'spi = 255\nalgorithm = "hmac-md5"\n',
            {"ha config": "mobile_node[0].spi", "mn config": "spi", "profile": "mn.spi", "keys file": None},
        ),
        (
            'spi = 300\nalgorithm = "sha1"\n',
            {
                "ha config": "mobile_node[0].algorithm",
                "mn config": "algorithm",
                "profile": "mn.algorithm",
                "keys file": "mip[1].algorithm",
            },
        ),
        (
            'spi = true\nalgorithm = "hmac-md5"\n',
            {"ha config": "mobile_node[0].spi", "mn config": "spi", "profile": "mn.spi", "keys file": "mip[1].spi"},
        ),
    ],
)
def test_the_loaders_refuse_alike(tmp_path: Path, sa_toml: str, keys: dict[str, str | None]) -> None:
    """Same check, key named in each file's own terms; a keys file may name a reserved SPI (AnalysisSA)."""
    for name, load in _load_all(tmp_path, sa_toml, KEY).items():
        if keys[name] is None:
            assert load().spi == 255
            continue
        with pytest.raises(ConfigError) as err:
            load()
        assert err.value.key == keys[name] and err.value.source is not None, name
        assert KEY.decode() not in str(err.value)


def test_an_empty_key_in_a_keys_file_names_it(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text('[[mip]]\nspi = 256\nsecret = "hex:"\n')
    with pytest.raises(ConfigError) as err:
        load_keys_file(str(keys))
    assert err.value.key == "mip[1].secret" and "empty" in err.value.problem
