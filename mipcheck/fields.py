"""Checks of single TOML values, shared by the home agent config, the mobile node config and the test profile.

Here, on the foundation floor, so that no config borrows another's private
helpers and one rule gives one message: every failure is a
:class:`~mipcheck.errors.ConfigError` naming the key (and the file, when
``source`` is given). The security association's own fields (SPI, secret,
algorithm) are checked by :class:`mipcheck.proto.security.SecurityAssociation`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from mipcheck.errors import ConfigError

REPLAY_MODES = ("timestamp", "nonce")  # RFC 5944 5.7: timestamps or nonces


def ipv4(key: str, value: Any, source: str | None = None) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"expected an IPv4 address string, got {type(value).__name__}", source=source)
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ConfigError(key, f"{value!r} is not an IPv4 address", source=source) from None


def integer(key: str, value: Any, lo: int, hi: int, source: str | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, f"expected an integer, got {type(value).__name__}", source=source)
    if not lo <= value <= hi:
        raise ConfigError(key, f"{value} is out of range {lo}..{hi}", source=source)
    return value


def boolean(key: str, value: Any, source: str | None = None) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, f"expected true or false, got {value!r}", source=source)
    return value


def choice(key: str, value: Any, choices: Iterable[str], source: str | None = None) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(key, f"{value!r} is not one of {', '.join(choices)}", source=source)
    return value
