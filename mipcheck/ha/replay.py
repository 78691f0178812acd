"""Identification checks and reply Identifications (RFC 5944 5.7), as pure functions.

Timestamps (5.7.1, mandatory): the Identification is a 64-bit NTP timestamp
that must lie within ``skew`` seconds of the home agent's clock. A valid one
is copied whole into the reply; an invalid one gets code 133 with the home
agent's time in the high-order 32 bits and the request's low-order 32 bits,
so the mobile node can correct its clock and match the reply to its request.

Nonces (5.7.2, optional): the high-order 32 bits carry the nonce the home
agent handed out in its previous reply, the low-order 32 bits the mobile
node's nonce. Every reply after the check carries a fresh home agent nonce in
the high-order bits and the mobile node's nonce copied in the low-order bits.
"""

from __future__ import annotations

from dataclasses import dataclass

from mipcheck.proto.identification import (
    NTP_UNIX_OFFSET,
    high32,
    identification_time,
    low32,
    nonce_identification,
)

MASK32 = 0xFFFFFFFF


@dataclass(slots=True)
class ReplayState:
    """What the home agent remembers per home address."""

    last_accepted: int | None = None  # timestamp mode: Identification of the last accepted request
    first_accepted: int | None = None  # timestamp mode: the first ever accepted (fault replay-first-only)
    ha_nonce: int | None = None  # nonce mode: the nonce the next request must carry in its high-order bits
    last_mn_nonce: int | None = None  # nonce mode: low-order bits of the last request that passed


def ntp_seconds(now: float) -> int:
    return (int(now) + NTP_UNIX_OFFSET) & MASK32


def check_timestamp(identification: int, now: float, skew: float, last: int | None, strict: bool) -> str | None:
    """None when acceptable, else why not (RFC 5944 5.7.1)."""
    offset = identification_time(identification) - now
    if abs(offset) > skew:
        return f"timestamp {offset:+.3f} s from the home agent's clock (allowed {skew:g} s)"
    if strict and last is not None and identification <= last:
        # RFC 5944 5.7.1 lets a node reject identifications that arrive out of order.
        return "identification not greater than the last accepted one"
    return None


def timestamp_denial_identification(identification: int, now: float) -> int:
    """RFC 5944 5.7.1: code 133 carries the home agent's time (high) and the request's low-order 32 bits."""
    return (ntp_seconds(now) << 32) | low32(identification)


def check_nonce(identification: int, state: ReplayState) -> str | None:
    """None when the high-order bits are the nonce the home agent last issued (RFC 5944 5.7.2)."""
    if state.ha_nonce is None:
        return "no home agent nonce issued yet"
    if high32(identification) != state.ha_nonce:
        return "high-order 32 bits are not the nonce the home agent issued"
    if state.last_mn_nonce is not None and low32(identification) == state.last_mn_nonce:
        return "mobile node nonce repeated"
    return None


def nonce_reply_identification(identification: int, new_ha_nonce: int) -> int:
    """RFC 5944 5.7.2: new home agent nonce high, the mobile node's nonce copied low."""
    return nonce_identification(new_ha_nonce, low32(identification))
