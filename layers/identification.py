"""Identification values of registration messages (RFC 5944 section 5.7).

The helpers live in :mod:`mipcheck.proto.identification` (no Scapy); this
module re-exports them so ``mipcheck.layers.identification`` keeps working.
"""

from __future__ import annotations

from mipcheck.proto.identification import (
    NTP_UNIX_OFFSET,
    high32,
    identification_time,
    low32,
    nonce_identification,
    split_nonce_identification,
    timestamp_identification,
)

__all__ = [
    "NTP_UNIX_OFFSET",
    "high32",
    "identification_time",
    "low32",
    "nonce_identification",
    "split_nonce_identification",
    "timestamp_identification",
]
