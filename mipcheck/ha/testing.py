"""Crafting registration messages with the Scapy layers (the reference), for tests and suites.

The home agent parses with its own struct-level codec; building test input
with the independent Scapy layers keeps the two honest against each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mipcheck.layers import (
    MIPExtMNHAAuth,
    MIPExtTNC,
    MobileIPMessage,
    RegistrationReply,
    RegistrationRequest,
)
from mipcheck.layers.auth import HMAC_MD5, Key
from mipcheck.layers.extensions import MIPExtension


def request(
    *,
    home_address: str,
    home_agent: str,
    care_of_address: str,
    identification: int,
    lifetime: int = 1800,
    spi: int | None = 0x100,
    key: bytes | None = None,
    algorithm: str = HMAC_MD5,
    before: Sequence[MIPExtension] = (),
    after: Sequence[MIPExtension] = (),
    **flags: Any,
) -> bytes:
    """A Registration Request; ``key`` set adds an MN-HA authentication extension after ``before``."""
    exts: list[MIPExtension] = list(before)
    if key is not None and spi is not None:
        exts.append(MIPExtMNHAAuth(spi=spi, key=key, algorithm=algorithm))
    exts.extend(after)
    pkt = RegistrationRequest(
        home_address=home_address,
        home_agent=home_agent,
        care_of_address=care_of_address,
        identification=identification,
        lifetime=lifetime,
        extensions=exts,
        **flags,
    )
    return bytes(pkt)


def dissect_reply(data: bytes) -> RegistrationReply:
    msg = MobileIPMessage(data)
    if not isinstance(msg, RegistrationReply):
        raise AssertionError(f"not a Registration Reply: {msg.summary()}")
    return msg


def reply_auth_valid(data: bytes, spi: int, key: bytes, algorithm: str = HMAC_MD5) -> bool | None:
    """True/False for the reply's MN-HA authenticator, None when there is none."""
    checks = [c for c in MobileIPMessage(data).verify({spi: Key(key, algorithm)}) if c.ext_type == 32]
    if not checks:
        return None
    return all(c.valid for c in checks)


def extension_types(data: bytes) -> list[int]:
    return [e.type for e in dissect_reply(data).extensions]


def tnc_covered(data: bytes) -> bool:
    """True when a TNC extension sits before the MN-HA authentication extension."""
    types = extension_types(data)
    return 149 in types and 32 in types and types.index(149) < types.index(32)


__all__ = ["MIPExtTNC", "dissect_reply", "extension_types", "reply_auth_valid", "request", "tnc_covered"]
