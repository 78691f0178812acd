"""Struct-level codec of Mobile IPv4 registration messages: parse, build, authenticate.

The home agent, the mobile node and the fast dissector use it: dissecting and
building with the Scapy layers in :mod:`mipcheck.layers` costs about 100
microseconds a message, ten times a whole registration here. The layers stay
the independent reference: tests/test_ha_core.py and
tests/test_dissect_fastpath.py check that parses and builds here agree octet
for octet with them.

Layouts: RFC 5944 3.3 (Registration Request, 24 fixed octets), 3.4
(Registration Reply, 20), 1.9 (extensions; the long format of types 36 and
38 is in :mod:`mipcheck.proto.extensions`), 3.5.1-3.5.2 (authenticators:
SPI then authenticator), RFC 3519 3.1-3.3, RFC 3543 3.1-3.2, RFC 5265 3.4.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import struct
from collections.abc import Callable
from typing import NamedTuple

from . import numbers as n
from .extensions import LONG_FORMAT_TYPES, MIN_BODY
from .extensions import TNC_EXTENSION as TNC_EXTENSION

try:  # CPython's own MD5: its states copy in less than half the time of OpenSSL's (same digests)
    from _md5 import md5 as _md5_state
except ImportError:  # pragma: no cover - interpreters built without it
    _md5_state = hashlib.md5

# Authentication algorithms of a mobility security association (RFC 5944 3.5.1).
HMAC_MD5 = "hmac-md5"  # the default (RFC 2104)
PREFIX_SUFFIX_MD5 = "prefix-suffix-md5"  # keyed MD5 of RFC 2002 3.5.1, still deployed
ALGORITHMS = (HMAC_MD5, PREFIX_SUFFIX_MD5)
DIGEST_SIZE = 16

# Fixed parts of the messages on UDP 434.
RRQ_FIXED = struct.Struct("!BBH4s4s4sQ")  # RFC 5944 3.3: Type, flags, Lifetime, HoA, HA, CoA, Identification
RRP_FIXED = struct.Struct("!BBH4s4sQ")  # RFC 5944 3.4: Type, Code, Lifetime, HoA, HA, Identification
REVOCATION_FIXED = struct.Struct(
    "!BBH4s4s4sI"
)  # RFC 3543 3.1: Type, Reserved, A I Reserved, HoA, HDA, FDA, Revocation ID
REVOCATION_ACK_FIXED = struct.Struct("!BBH4sI")  # RFC 3543 3.2: Type, Reserved, I Reserved, HoA, Revocation ID
TUNNEL_DATA_HEADER = 4  # RFC 3519 3.3: Type 4, Next Header, Reserved (16 bits)
FIXED_SIZES: dict[int, int] = {
    n.MSG_RRQ: RRQ_FIXED.size,
    n.MSG_RRP: RRP_FIXED.size,
    n.MSG_TUNNEL_DATA: TUNNEL_DATA_HEADER,
    n.MSG_REVOCATION: REVOCATION_FIXED.size,
    n.MSG_REVOCATION_ACK: REVOCATION_ACK_FIXED.size,
}
SPI = struct.Struct("!I")  # the SPI field of an authentication extension
AUTH_HDR = struct.Struct("!BBI")  # Type, Length, SPI of a short-format authentication extension
_UDP_TUNNEL_REPLY = struct.Struct("!BBBBHH")
_UDP_TUNNEL_REQUEST = struct.Struct("!BBBBBBH")


class UnknownAlgorithm(ValueError):
    pass


# --------------------------------------------------------------------------- extensions


class Ext(NamedTuple):
    """Where one extension sits: type, first octet, header size, body length."""

    type: int
    offset: int
    header: int
    length: int

    @property
    def body(self) -> int:
        return self.offset + self.header

    @property
    def end(self) -> int:
        return self.offset + self.header + self.length


_new_ext = tuple.__new__  # builds an Ext from its fields in order, skipping the generated __new__


def walk_extensions(
    data: bytes, start: int, end: int | None = None, *, include_overrun: bool = False
) -> tuple[list[Ext], str | None]:
    """Split the extension area ``data[start:end]`` (RFC 5944 1.9); the error names the first that overruns it.

    The extensions before the error are returned. ``include_overrun`` also
    returns the one whose Length runs past the end (its header is whole), for
    dissectors that report how much of it is missing.
    """
    exts: list[Ext] = []
    off = start
    if end is None:
        end = len(data)
    while off < end:
        t = data[off]
        if t in LONG_FORMAT_TYPES:
            if off + 4 > end:
                return exts, f"extension {t} at offset {off}: header truncated"
            length = (data[off + 2] << 8) | data[off + 3]
            hdr = 4
        else:
            if off + 2 > end:
                return exts, f"extension {t} at offset {off}: header truncated"
            length = data[off + 1]
            hdr = 2
        if off + hdr + length > end:
            if include_overrun:
                exts.append(_new_ext(Ext, (t, off, hdr, length)))
            return exts, f"extension {t} at offset {off}: Length {length} runs past the end of the message"
        exts.append(_new_ext(Ext, (t, off, hdr, length)))
        off += hdr + length
    return exts, None


def modelled_extensions(data: bytes, start: int, end: int) -> list[Ext] | None:
    """The extensions of ``data[start:end]`` when they tile it exactly and each holds its fixed body, else None.

    That is when the Scapy layers dissect every one of them to its own class
    (a shorter Length makes them fall back to an "unrecognised" extension).
    """
    exts, error = walk_extensions(data, start, end)
    if error is not None:
        return None
    need = MIN_BODY.get
    for e in exts:
        if e[3] < need(e[0], 0):
            return None
    return exts


def spi_of(data: bytes, ext: Ext) -> int | None:
    """SPI of an authentication extension, None when its body is too short to hold one."""
    if ext.length < 4:
        return None
    return SPI.unpack_from(data, ext.body)[0]


# --------------------------------------------------------------------------- messages


class Request(NamedTuple):
    """A Registration Request's fixed part and its extension layout (RFC 5944 3.3)."""

    flags: int
    lifetime: int
    home_address: str
    home_agent: str
    care_of_address: str
    identification: int
    extensions: tuple[Ext, ...]
    data: bytes
    error: str | None  # the extension area is malformed


def parse_request(data: bytes) -> Request | None:
    """None when the octets cannot be a Registration Request (wrong type or shorter than 24 octets)."""
    if len(data) < RRQ_FIXED.size or data[0] != n.MSG_RRQ:
        return None
    _t, flags, lifetime, hoa, ha, coa, ident = RRQ_FIXED.unpack_from(data)
    exts, err = walk_extensions(data, RRQ_FIXED.size)
    ntoa = socket.inet_ntoa
    return tuple.__new__(Request, (flags, lifetime, ntoa(hoa), ntoa(ha), ntoa(coa), ident, tuple(exts), data, err))


class Reply(NamedTuple):
    """A Registration Reply's fixed part and its extension layout (RFC 5944 3.4)."""

    code: int
    lifetime: int
    home_address: str
    home_agent: str
    identification: int
    extensions: tuple[Ext, ...]
    data: bytes
    error: str | None


def parse_reply(data: bytes) -> Reply | None:
    """None when the octets cannot be a Registration Reply (wrong type or shorter than 20 octets)."""
    if len(data) < RRP_FIXED.size or data[0] != n.MSG_RRP:
        return None
    _t, code, lifetime, hoa, ha, ident = RRP_FIXED.unpack_from(data)
    exts, err = walk_extensions(data, RRP_FIXED.size)
    return Reply(code, lifetime, socket.inet_ntoa(hoa), socket.inet_ntoa(ha), ident, tuple(exts), data, err)


# --------------------------------------------------------------------------- authentication


def keyed(algorithm: str, key: bytes) -> Callable[[bytes], bytes]:
    """The authenticator function of one key (RFC 5944 3.5.1: HMAC-MD5 by default, keyed prefix+suffix MD5 for old
    equipment).

    For HMAC-MD5 the inner and outer hash states are computed once (RFC 2104
    section 4 suggests it) and kept in CPython's built-in MD5, whose states
    copy cheaply: about a quarter of the cost of ``hmac.digest`` per message.
    """
    if algorithm == HMAC_MD5:
        k = hashlib.md5(key).digest() if len(key) > 64 else key
        k = k.ljust(64, b"\0")
        inner_copy = _md5_state(bytes(b ^ 0x36 for b in k)).copy
        outer_copy = _md5_state(bytes(b ^ 0x5C for b in k)).copy

        def hmac_md5(msg: bytes) -> bytes:
            i = inner_copy()
            i.update(msg)
            o = outer_copy()
            o.update(i.digest())
            return o.digest()

        return hmac_md5
    if algorithm == PREFIX_SUFFIX_MD5:
        return lambda msg: hashlib.md5(key + msg + key).digest()  # RFC 2002 3.5.1: key, data, key
    raise UnknownAlgorithm(f"unknown authentication algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}")


_KEYED: dict[tuple[str, bytes], Callable[[bytes], bytes]] = {}
_KEYED_LIMIT = 1 << 16


def _mac(algorithm: str, key: bytes) -> Callable[[bytes], bytes]:
    f = _KEYED.get((algorithm, key))
    if f is None:
        if len(_KEYED) >= _KEYED_LIMIT:
            _KEYED.clear()
        f = _KEYED[(algorithm, key)] = keyed(algorithm, key)
    return f


def authenticator(algorithm: str, key: bytes, covered: bytes) -> bytes:
    """The 16-octet authenticator of ``covered`` (message through the SPI) under ``key``."""
    return _mac(algorithm, key)(covered)


def check_authenticator(
    data: bytes,
    ext: Ext,
    algorithm: str,
    key: bytes,
    compare_octets: int | None = None,
    *,
    mac: Callable[[bytes], bytes] | None = None,
) -> bool:
    """Verify an authenticator: it covers everything up to and including the SPI (RFC 5944 3.5.1).

    ``mac`` (from :func:`keyed`) saves the key lookup; ``compare_octets``
    exists for one fault profile only (truncated-auth-compare).
    """
    spi_end = ext.body + 4
    got = data[spi_end : ext.end]
    expected = (mac or _mac(algorithm, key))(data[:spi_end])
    if compare_octets is not None:
        return len(got) >= compare_octets and hmac.compare_digest(got[:compare_octets], expected[:compare_octets])
    return hmac.compare_digest(got, expected)


def append_mn_ha_auth(
    message: bytes, spi: int, algorithm: str, key: bytes, mac: Callable[[bytes], bytes] | None = None
) -> bytes:
    """Append an MN-HA authentication extension (type 32) covering ``message`` (RFC 5944 3.5.2)."""
    covered = message + AUTH_HDR.pack(n.EXT_MN_HA_AUTH, 4 + DIGEST_SIZE, spi)
    return covered + (mac or _mac(algorithm, key))(covered)


# --------------------------------------------------------------------------- building


def build_reply(
    code: int,
    lifetime: int,
    home_address: str | bytes,
    home_agent: str | bytes,
    identification: int,
    extensions: bytes = b"",
    *,
    auth: tuple[int, str, bytes] | tuple[int, str, bytes, Callable[[bytes], bytes]] | None = None,
    trailing: bytes = b"",
) -> bytes:
    """Registration Reply: fixed part, ``extensions``, then MN-HA auth when ``auth`` = (spi, algorithm, key[, mac]).

    Addresses are dotted quads or their four octets (as sliced from a request).
    """
    hoa = home_address if isinstance(home_address, bytes) else socket.inet_aton(home_address)
    ha = home_agent if isinstance(home_agent, bytes) else socket.inet_aton(home_agent)
    msg = RRP_FIXED.pack(n.MSG_RRP, code, lifetime, hoa, ha, identification) + extensions
    if auth is not None:
        msg = append_mn_ha_auth(msg, *auth)
    return msg + trailing


def build_request(
    flags: int,
    lifetime: int,
    home_address: str,
    home_agent: str,
    care_of_address: str,
    identification: int,
    extensions: bytes = b"",
    *,
    auth: tuple[int, str, bytes] | None = None,
    trailing: bytes = b"",
) -> bytes:
    """Registration Request: fixed part, ``extensions``, then MN-HA auth when ``auth`` = (spi, algorithm, key)."""
    msg = (
        RRQ_FIXED.pack(
            n.MSG_RRQ,
            flags,
            lifetime,
            socket.inet_aton(home_address),
            socket.inet_aton(home_agent),
            socket.inet_aton(care_of_address),
            identification,
        )
        + extensions
    )
    if auth is not None:
        msg = append_mn_ha_auth(msg, *auth)
    return msg + trailing


def udp_tunnel_reply(code: int = 0, keepalive: int = 110, force: bool = False) -> bytes:
    """RFC 3519 3.2: Type 44, Length 6, Sub-Type 0, Reply Code, F + reserved, Keepalive Interval."""
    return _UDP_TUNNEL_REPLY.pack(n.EXT_UDP_TUNNEL_REPLY, 6, 0, code, 0x8000 if force else 0, keepalive)


def udp_tunnel_request(force: bool = False, fa_required: bool = False, encapsulation: int = n.IPPROTO_IPIP) -> bytes:
    """RFC 3519 3.1: Type 144, Length 6, Sub-Type 0, Reserved 1, F R Reserved 2, Encapsulation, Reserved 3."""
    bits = (0x80 if force else 0) | (0x40 if fa_required else 0)
    return _UDP_TUNNEL_REQUEST.pack(n.EXT_UDP_TUNNEL_REQUEST, 6, 0, 0, bits, encapsulation, 0)


def parse_udp_tunnel_request(data: bytes, ext: Ext) -> tuple[bool, bool, int] | None:
    """(F, R, encapsulation) of a UDP Tunnel Request; None when its body is shorter than 6 octets."""
    if ext.length < 6:
        return None
    b = ext.body
    return bool(data[b + 2] & 0x80), bool(data[b + 2] & 0x40), data[b + 3]


def parse_udp_tunnel_reply(data: bytes, ext: Ext) -> tuple[int, bool, int] | None:
    """(Reply Code, F, Keepalive Interval) of a UDP Tunnel Reply; None when too short."""
    if ext.length < 6:
        return None
    b = ext.body
    return data[b + 1], bool(data[b + 2] & 0x80), (data[b + 4] << 8) | data[b + 5]


def nai_extension(nai: str | bytes) -> bytes:
    """RFC 2794 2: Mobile Node NAI, type 131."""
    raw = nai.encode() if isinstance(nai, str) else nai
    if len(raw) > 255:
        raise ValueError("NAI longer than 255 octets")
    return bytes((n.EXT_NAI, len(raw))) + raw


def tunnel_data(inner: bytes, next_header: int = n.IPPROTO_IPIP) -> bytes:
    """RFC 3519 3.3 MIP Tunnel Data message carrying ``inner``."""
    return bytes((n.MSG_TUNNEL_DATA, next_header, 0, 0)) + inner
