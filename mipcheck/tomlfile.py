"""Read a TOML file (config, profile, keys) with one-line errors naming it.

Every file a user hands mipcheck goes through here, so a missing, unreadable
or broken one always reads the same way: ``FILE: KEY: problem``, exit 2.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from mipcheck.errors import ConfigError


def read_toml(path: str | os.PathLike[str], key: str) -> dict[str, Any]:
    """Parse ``path``; ``key`` says what the file is (``config``, ``--profile``, ...)."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(key, "file not found", source=source) from None
    except OSError as exc:
        raise ConfigError(key, f"cannot read: {exc.strerror or exc}", source=source) from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(key, "not UTF-8 text", source=source) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(key, f"not valid TOML: {exc}", source=source) from None
