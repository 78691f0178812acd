"""Authenticators of the Mobile IPv4 authentication extensions.

RFC 5944 section 3.5.1: the authenticator is computed over the registration
message (the UDP payload), all prior extensions in their entirety, and the
Type, Length and SPI of this extension; the authenticator itself and the UDP
header are not covered. The default algorithm is HMAC-MD5 (RFC 2104); the
older keyed "prefix+suffix" MD5 of RFC 2002 section 3.5.1 is kept as an option
because deployed equipment still uses it.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from .numbers import EXT_FA_HA_AUTH, EXT_GEN_AUTH, EXT_MN_FA_AUTH, EXT_MN_HA_AUTH

HMAC_MD5 = "hmac-md5"
PREFIX_SUFFIX_MD5 = "prefix-suffix-md5"
ALGORITHMS = (HMAC_MD5, PREFIX_SUFFIX_MD5)
DIGEST_SIZE = 16

AUTH_EXTENSION_TYPES = (EXT_MN_HA_AUTH, EXT_MN_FA_AUTH, EXT_FA_HA_AUTH, EXT_GEN_AUTH)


class UnknownAlgorithm(ValueError):
    pass


def compute_authenticator(algorithm: str, key: bytes, data: bytes) -> bytes:
    """Return the 16-octet authenticator of ``data`` (message through the SPI)."""
    if algorithm == HMAC_MD5:
        return hmac.new(key, data, hashlib.md5).digest()
    if algorithm == PREFIX_SUFFIX_MD5:
        return hashlib.md5(key + data + key).digest()
    raise UnknownAlgorithm(f"unknown authentication algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}")


@dataclass(frozen=True)
class Key:
    """A mobility security association as far as authentication needs it."""

    secret: bytes
    algorithm: str = HMAC_MD5

    def __repr__(self) -> str:  # never show the secret
        return f"Key(secret=<hidden>, algorithm={self.algorithm!r})"


@dataclass(frozen=True)
class AuthExtensionSpan:
    """Where an authentication extension sits inside a message's octets."""

    ext_type: int
    offset: int  # first octet of the extension
    spi_end: int  # first octet after the SPI: the covered data is message[:spi_end]
    auth_end: int  # first octet after the authenticator
    spi: int


@dataclass(frozen=True)
class AuthCheck:
    """Outcome of checking one authentication extension."""

    ext_type: int
    spi: int
    valid: bool | None  # None: no key for this SPI
    offset: int


def extension_header_size(ext_type: int) -> int:
    """Type+Length octets; 36 (RFC 3012) and 38 (RFC 3115) carry a 16-bit length after a sub-type/reserved octet."""
    return 4 if ext_type in (EXT_GEN_AUTH, 38) else 2


def iter_extension_spans(data: bytes, start: int):
    """Yield (type, offset, header_size, body_length) for each extension from ``start``.

    Stops quietly at a truncated extension: callers treat the rest as malformed.
    """
    off = start
    n = len(data)
    while off < n:
        t = data[off]
        hdr = extension_header_size(t)
        if off + hdr > n:
            return
        if hdr == 2:
            length = data[off + 1]
        else:
            length = struct.unpack_from("!H", data, off + 2)[0]
        yield t, off, hdr, length
        off += hdr + length


def auth_extension_spans(data: bytes, start: int) -> list[AuthExtensionSpan]:
    spans = []
    for t, off, hdr, length in iter_extension_spans(data, start):
        if t not in AUTH_EXTENSION_TYPES or length < 4 or off + hdr + length > len(data):
            continue
        spi = struct.unpack_from("!I", data, off + hdr)[0]
        spans.append(AuthExtensionSpan(t, off, off + hdr + 4, off + hdr + length, spi))
    return spans


def verify_message(data: bytes, start: int, keys: Mapping[int, Key]) -> list[AuthCheck]:
    """Check every authentication extension of a message against keys by SPI."""
    out = []
    for span in auth_extension_spans(data, start):
        key = keys.get(span.spi)
        if key is None:
            out.append(AuthCheck(span.ext_type, span.spi, None, span.offset))
            continue
        expected = compute_authenticator(key.algorithm, key.secret, data[: span.spi_end])
        got = data[span.spi_end : span.auth_end]
        out.append(AuthCheck(span.ext_type, span.spi, hmac.compare_digest(expected, got), span.offset))
    return out
