"""Reference home agent: sans-IO core (core.py), config, fault profiles and a UDP transport (server.py)."""

from __future__ import annotations

from .config import HAConfig, MobileNodeConfig, load_ha_config
from .core import Decision, HomeAgent
from .faults import FAULTS, check_faults

__all__ = ["FAULTS", "Decision", "HAConfig", "HomeAgent", "MobileNodeConfig", "check_faults", "load_ha_config"]
