"""Authenticators of the Mobile IPv4 authentication extensions.

RFC 5944 section 3.5.1: the authenticator is computed over the registration
message (the UDP payload), all prior extensions in their entirety, and the
Type, Length and SPI of this extension; the authenticator itself and the UDP
header are not covered. The default algorithm is HMAC-MD5 (RFC 2104); the
older keyed "prefix+suffix" MD5 of RFC 2002 section 3.5.1 is kept as an option
because deployed equipment still uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from hmac import compare_digest

from mipcheck.proto.codec import (
    ALGORITHMS,
    DIGEST_SIZE,
    HMAC_MD5,
    PREFIX_SUFFIX_MD5,
    SPI,
    Ext,
    UnknownAlgorithm,
    authenticator,
    walk_extensions,
)
from mipcheck.proto.extensions import AUTHENTICATOR_TYPES, header_size
from mipcheck.proto.secret import Secret
from mipcheck.proto.security import AnalysisSA, SecurityAssociation

__all__ = [
    "ALGORITHMS",
    "AUTH_EXTENSION_TYPES",
    "DIGEST_SIZE",
    "HMAC_MD5",
    "PREFIX_SUFFIX_MD5",
    "AuthCheck",
    "AuthExtensionSpan",
    "Key",
    "UnknownAlgorithm",
    "auth_extension_spans",
    "compute_authenticator",
    "extension_header_size",
    "iter_extension_spans",
    "verify_message",
]

AUTH_EXTENSION_TYPES = tuple(sorted(AUTHENTICATOR_TYPES))
extension_header_size = header_size  # Type+Length octets of a type (mipcheck.proto.extensions)


def compute_authenticator(algorithm: str, key: bytes, data: bytes) -> bytes:
    """Return the 16-octet authenticator of ``data`` (message through the SPI); the codec's MAC."""
    return authenticator(algorithm, key, data)


def Key(secret: bytes | str | Secret, algorithm: str = HMAC_MD5, spi: int = 0) -> SecurityAssociation:
    """The SA of ``msg.verify({spi: Key(secret)})``.

    verify() finds a key by the mapping's SPI, so none is needed here (0 by
    default). An :class:`~mipcheck.proto.security.AnalysisSA`: a message may
    carry a reserved SPI, and its authenticator is still checked.
    """
    return AnalysisSA(spi, secret, algorithm)


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


def iter_extension_spans(data: bytes, start: int) -> list[Ext]:
    """(type, offset, header_size, body_length) of each extension from ``start``.

    Stops quietly at a truncated header; the last one may run past the end
    of ``data`` (callers report that as malformed).
    """
    return walk_extensions(data, start, include_overrun=True)[0]


def auth_extension_spans(data: bytes, start: int) -> list[AuthExtensionSpan]:
    spans = []
    for t, off, hdr, length in walk_extensions(data, start)[0]:
        if t not in AUTHENTICATOR_TYPES or length < 4:
            continue
        spi = SPI.unpack_from(data, off + hdr)[0]
        spans.append(AuthExtensionSpan(t, off, off + hdr + 4, off + hdr + length, spi))
    return spans


def verify_message(data: bytes, start: int, keys: Mapping[int, SecurityAssociation]) -> list[AuthCheck]:
    """Check every authentication extension of a message against keys by SPI (the mapping's, not ``key.spi``)."""
    out = []
    for span in auth_extension_spans(data, start):
        key = keys.get(span.spi)
        if key is None:
            out.append(AuthCheck(span.ext_type, span.spi, None, span.offset))
            continue
        expected = authenticator(key.algorithm, key.key, data[: span.spi_end])
        got = data[span.spi_end : span.auth_end]
        out.append(AuthCheck(span.ext_type, span.spi, compare_digest(expected, got), span.offset))
    return out
