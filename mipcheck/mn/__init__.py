"""Test mobile node: sans-IO registration client (core.py), config, asyncio transport."""

from __future__ import annotations

from .config import MNConfig, load_mn_config
from .core import (
    Denied,
    Deregistered,
    Ignored,
    Registered,
    RegistrationClient,
    Resynchronised,
    TimedOut,
)

__all__ = [
    "Denied",
    "Deregistered",
    "Ignored",
    "MNConfig",
    "RegistrationClient",
    "Registered",
    "Resynchronised",
    "TimedOut",
    "load_mn_config",
]
