"""Identification values of registration messages (RFC 5944 section 5.7).

Timestamp replay protection puts a 64-bit NTP timestamp in the Identification
field (seconds since 1900 in the high 32 bits, fraction in the low 32 bits);
nonce replay protection puts the home agent's nonce in the high 32 bits and
the mobile node's nonce in the low 32 bits. Pure functions: the caller passes
the time, so nothing here reads a clock.
"""

from __future__ import annotations

NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01
_MASK32 = 0xFFFFFFFF


def timestamp_identification(unix_time: float, low_bits: int | None = None) -> int:
    """NTP-format identification for ``unix_time``; ``low_bits`` replaces the fraction.

    RFC 5944 5.7: bits not available from the time source should be random;
    callers that want that pass their own random ``low_bits``.
    """
    seconds = int(unix_time) + NTP_UNIX_OFFSET
    fraction = int((unix_time - int(unix_time)) * (1 << 32)) & _MASK32 if low_bits is None else low_bits & _MASK32
    return ((seconds & _MASK32) << 32) | fraction


def identification_time(identification: int) -> float:
    """Unix time encoded in an NTP-format identification."""
    seconds = (identification >> 32) & _MASK32
    fraction = identification & _MASK32
    return seconds - NTP_UNIX_OFFSET + fraction / (1 << 32)


def nonce_identification(ha_nonce: int, mn_nonce: int) -> int:
    return ((ha_nonce & _MASK32) << 32) | (mn_nonce & _MASK32)


def split_nonce_identification(identification: int) -> tuple[int, int]:
    """Return (home agent nonce, mobile node nonce)."""
    return (identification >> 32) & _MASK32, identification & _MASK32


def high32(identification: int) -> int:
    return (identification >> 32) & _MASK32


def low32(identification: int) -> int:
    return identification & _MASK32
