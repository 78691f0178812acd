"""Where a shared key comes from: one reader for configs, profiles and options.

Secrets should come from files or the environment. Config files and profiles
are files, so they may also hold a key inline (labs). A command line is not: it
shows in ``ps`` and shell history. Options therefore read ``env:NAME`` and
``file:PATH``; the inline ``hex:``/``text:`` forms stay accepted for published
test keys (e.g. the keys of ``pcaps/``), and the caller is told so that it can
warn. Every reader here returns the octets and
an *origin* ("file /etc/mip/mn1.key", "environment variable MN_KEY") that
reports may show instead of the key. Error messages name the key's source,
never its value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mipcheck.errors import ConfigError, InputError

# Config keys that give a secret, in the order they are documented.
TABLE_KEYS = ("secret", "secret_hex", "secret_file", "secret_env")

CLI_FORMS = "env:NAME (an environment variable) or file:PATH (a file)"


class SourceError(ValueError):
    """A secret source that cannot be read; the message never holds the secret."""


def from_env(name: str) -> bytes:
    value = os.environb.get(name.encode()) if name else None
    if not value:
        raise SourceError(f"environment variable {name} is not set or empty")
    return value


def from_file(path: str | os.PathLike[str], base_dir: Path | None = None) -> tuple[bytes, Path]:
    """The file's octets, one trailing line break dropped (editors add one).

    Every other octet is kept, so binary keys work (RFC 5944 5.1: a key is an
    arbitrary octet string).
    """
    p = Path(path).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read {p}: {exc.strerror or exc}") from None
    raw = raw.removesuffix(b"\n").removesuffix(b"\r")
    if not raw:
        raise SourceError(f"{p} is empty")
    return raw, p


def from_hex(text: str) -> bytes:
    text = text.strip()
    for prefix in ("hex:", "0x", "0X"):
        text = text.removeprefix(prefix)
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise SourceError("not valid hexadecimal") from None
    return raw


def from_table(
    table: Mapping[str, Any], prefix: str, *, base_dir: Path | None, source: str | None
) -> tuple[bytes, str]:
    """The secret of one security association in a config or profile table.

    Exactly one of ``secret`` (inline text), ``secret_hex``, ``secret_file``
    (relative to ``base_dir``) or ``secret_env``. Returns (octets, origin).
    """
    given = [k for k in TABLE_KEYS if k in table]
    if not given:
        raise ConfigError(f"{prefix}.secret", f"missing: give one of {', '.join(TABLE_KEYS)}", source=source)
    if len(given) > 1:
        raise ConfigError(f"{prefix}.{given[1]}", f"give only one of {', '.join(given)}", source=source)
    key = given[0]
    value = table[key]
    where = f"{prefix}.{key}"
    if not isinstance(value, str) or not value:
        raise ConfigError(where, "expected a non-empty string", source=source)
    try:
        if key == "secret":
            raw, origin = value.encode(), "inline"
        elif key == "secret_hex":
            raw, origin = from_hex(value), "inline hex"
        elif key == "secret_env":
            raw, origin = from_env(value), f"environment variable {value}"
        else:
            raw, path = from_file(value, base_dir)
            origin = f"file {path}"
    except SourceError as exc:
        raise ConfigError(where, str(exc), source=source) from None
    if not raw:
        raise ConfigError(where, "the secret is empty", source=source)
    return raw, origin


INLINE_WARNING = "a secret typed on the command line shows in ps and shell history; prefer env:NAME or file:PATH"


def from_option(text: str, what: str, *, decode_hex: bool = False) -> tuple[bytes, bool]:
    """A secret named on the command line; returns (octets, typed inline).

    ``env:NAME`` or ``file:PATH`` (read as hexadecimal text with ``decode_hex``,
    as ESP keys are usually written), or inline ``hex:...`` / ``text:...``
    (inline hex also bare with ``decode_hex``). Anything else is refused.
    """
    kind, colon, rest = text.partition(":")
    try:
        if colon and kind in ("env", "file") and rest:
            raw = from_env(rest) if kind == "env" else from_file(rest)[0]
            return (from_hex(raw.decode("ascii", "replace")) if decode_hex else raw), False
        if colon and kind == "hex" and rest:
            return from_hex(rest), True
        if colon and kind == "text" and rest and not decode_hex:
            return rest.encode(), True
        if decode_hex and text and not colon:
            return from_hex(text), True
    except SourceError as exc:
        raise InputError(f"{what}: {exc}") from None
    raise InputError(f"{what}: give the secret as {CLI_FORMS} (or hex:... for a published test key)")
