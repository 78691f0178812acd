"""mipcheck.keysource: one reading of secrets for configs, profiles and options."""

from __future__ import annotations

from pathlib import Path

import pytest

from mipcheck import keysource
from mipcheck.errors import ConfigError, InputError

KEY = b"\x00binary\r\nkey\xff"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "mn.key"
    path.write_bytes(KEY + b"\n")
    return path


@pytest.mark.parametrize(
    "table, octets, origin",
    [
        ({"secret": "lab-secret"}, b"lab-secret", "inline"),
        ({"secret_hex": "0x00ff10"}, b"\x00\xff\x10", "inline hex"),
        ({"secret_env": "T_KS_KEY"}, b"from-env", "environment variable T_KS_KEY"),
        ({"secret_file": "mn.key"}, KEY, "file"),  # relative to base_dir; only one trailing newline dropped
    ],
)
def test_from_table_reads_each_source(table, octets, origin, key_file, monkeypatch):
    monkeypatch.setenv("T_KS_KEY", "from-env")
    raw, got_origin = keysource.from_table(table, "mn", base_dir=key_file.parent, source="p.toml")
    assert raw == octets and got_origin.startswith(origin)
    assert "from-env" not in got_origin and "lab-secret" not in got_origin


@pytest.mark.parametrize(
    "table, key, problem",
    [
        ({}, "mn.secret", "missing"),
        ({"secret": "a", "secret_env": "B"}, "mn.secret_env", "give only one"),
        ({"secret": ""}, "mn.secret", "non-empty"),
        ({"secret": 5}, "mn.secret", "non-empty"),
        ({"secret_hex": "zz"}, "mn.secret_hex", "hexadecimal"),
        ({"secret_env": "T_KS_UNSET"}, "mn.secret_env", "not set"),
        ({"secret_file": "absent.key"}, "mn.secret_file", "cannot read"),
    ],
)
def test_from_table_errors_name_the_key(table, key, problem, tmp_path, monkeypatch):
    monkeypatch.delenv("T_KS_UNSET", raising=False)
    with pytest.raises(ConfigError) as info:
        keysource.from_table(table, "mn", base_dir=tmp_path, source="p.toml")
    assert info.value.key == key and problem in info.value.problem


def test_empty_file_is_an_error(tmp_path):
    (tmp_path / "empty.key").write_bytes(b"\n")
    with pytest.raises(ConfigError, match="empty"):
        keysource.from_table({"secret_file": "empty.key"}, "mn", base_dir=tmp_path, source=None)


def test_from_option_reads_env_and_file_and_flags_typed_secrets(key_file, monkeypatch):
    monkeypatch.setenv("T_KS_HEX", "00 11 22")
    assert keysource.from_option(f"file:{key_file}", "--key") == (KEY, False)
    assert keysource.from_option("env:T_KS_HEX", "--esp-sa", decode_hex=True) == (b"\x00\x11\x22", False)
    assert keysource.from_option("hex:0011", "--key") == (b"\x00\x11", True)
    assert keysource.from_option("text:lab", "--key") == (b"lab", True)
    assert keysource.from_option("0011", "--esp-sa", decode_hex=True) == (b"\x00\x11", True)
    for refused in ("typed-key", "env:", "file:", "ftp:typed-key", "text:", "hex:"):
        with pytest.raises(InputError, match="env:NAME") as info:
            keysource.from_option(refused, "--key")
        assert "typed-key" not in str(info.value)
    with pytest.raises(InputError, match="hexadecimal") as info:
        keysource.from_option("hex:zz-typed-key", "--key")
    assert "typed-key" not in str(info.value)
