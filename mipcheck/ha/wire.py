"""Struct-level codec of registration messages for the hot path.

The Scapy layers in :mod:`mipcheck.layers` stay the reference: dissecting and
building there costs about 100 microseconds a message, ten times a whole
registration here. tests/test_ha_core.py checks that every parse and build
in this module agrees octet for octet with the layers.

Layouts: RFC 5944 3.3 (Registration Request, 24 fixed octets), 3.4
(Registration Reply, 20), 1.10-1.12 (extensions: Type, Length; types 36 and
38 carry a sub-type/reserved octet and a 16-bit Length), 3.5.2 (MN-HA
authentication: SPI then authenticator), RFC 3519 3.1-3.3, RFC 5265 3.4.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import struct
from collections.abc import Callable
from typing import NamedTuple

from mipcheck.layers import numbers as n
from mipcheck.layers.auth import HMAC_MD5, PREFIX_SUFFIX_MD5

try:  # CPython's own MD5: its states copy in less than half the time of OpenSSL's (same digests)
    from _md5 import md5 as _md5_state
except ImportError:  # pragma: no cover - interpreters built without it
    _md5_state = hashlib.md5

# Registration Request flag bits, first octet after the type (RFC 5944 3.3).
FLAG_S = 0x80  # simultaneous bindings
FLAG_B = 0x40  # broadcast datagrams
FLAG_D = 0x20  # decapsulation by the mobile node (co-located care-of address)
FLAG_M = 0x10  # minimal encapsulation
FLAG_G = 0x08  # GRE encapsulation
FLAG_R = 0x04  # 'r': sent as zero, ignored on reception
FLAG_T = 0x02  # reverse tunnelling requested (RFC 3024)
FLAG_X = 0x01  # 'x': sent as zero, ignored on reception

RRQ_FIXED = struct.Struct("!BBH4s4s4sQ")
RRP_FIXED = struct.Struct("!BBH4s4sQ")
SPI = _SPI = struct.Struct("!I")  # the SPI field of an authentication extension
AUTH_HDR = _AUTH_HDR = struct.Struct("!BBI")  # Type, Length, SPI
_UDP_TUNNEL_REPLY = struct.Struct("!BBBBHH")
_UDP_TUNNEL_REQUEST = struct.Struct("!BBBBBBH")
TUNNEL_DATA_HEADER = 4  # RFC 3519 3.3: Type 4, Next Header, Reserved (16 bits)

LONG_EXTENSIONS = frozenset((n.EXT_GEN_AUTH, n.EXT_CVSE))
TNC_EXTENSION = bytes((n.EXT_TNC, 2, 0, 0))  # RFC 5265 3.4: Type 149, Length 2, Sub-Type 0, Reserved 0
DIGEST_SIZE = 16


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


_new_ext = tuple.__new__


def walk_extensions(data: bytes, start: int) -> tuple[list[Ext], str | None]:
    """Split the extension area; the error names the first extension that overruns the message."""
    exts: list[Ext] = []
    off = start
    end = len(data)
    while off < end:
        t = data[off]
        if t in LONG_EXTENSIONS:
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
            return exts, f"extension {t} at offset {off}: Length {length} runs past the end of the message"
        exts.append(_new_ext(Ext, (t, off, hdr, length)))
        off += hdr + length
    return exts, None


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

    def flag(self, bit: int) -> bool:
        return bool(self.flags & bit)


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
    if len(data) < RRP_FIXED.size or data[0] != n.MSG_RRP:
        return None
    _t, code, lifetime, hoa, ha, ident = RRP_FIXED.unpack_from(data)
    exts, err = walk_extensions(data, RRP_FIXED.size)
    return Reply(code, lifetime, socket.inet_ntoa(hoa), socket.inet_ntoa(ha), ident, tuple(exts), data, err)


# --------------------------------------------------------------------------- authentication


def keyed(algorithm: str, key: bytes) -> Callable[[bytes], bytes]:
    """The authenticator function of one key (RFC 5944 3.5.1: HMAC-MD5 by default, keyed prefix+suffix MD5 for old equipment).

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
        return lambda msg: hashlib.md5(key + msg + key).digest()
    raise ValueError(f"unknown authentication algorithm {algorithm!r}")


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


def spi_of(data: bytes, ext: Ext) -> int | None:
    """SPI of an authentication extension, None when its body is too short to hold one."""
    if ext.length < 4:
        return None
    return _SPI.unpack_from(data, ext.body)[0]


def check_authenticator(
    data: bytes, ext: Ext, algorithm: str, key: bytes, compare_octets: int | None = None, *, mac: Callable[[bytes], bytes] | None = None
) -> bool:
    """Verify an MN-HA style authenticator: it covers everything up to and including the SPI (RFC 5944 3.5.1).

    ``mac`` (from :func:`keyed`) saves the key lookup; ``compare_octets``
    exists for one fault profile only (truncated-auth-compare).
    """
    spi_end = ext.body + 4
    got = data[spi_end : ext.end]
    expected = (mac or _mac(algorithm, key))(data[:spi_end])
    if compare_octets is not None:
        return len(got) >= compare_octets and hmac.compare_digest(got[:compare_octets], expected[:compare_octets])
    return hmac.compare_digest(got, expected)


def append_mn_ha_auth(message: bytes, spi: int, algorithm: str, key: bytes, mac: Callable[[bytes], bytes] | None = None) -> bytes:
    """Append an MN-HA authentication extension (type 32) covering ``message`` (RFC 5944 3.5.2)."""
    covered = message + _AUTH_HDR.pack(n.EXT_MN_HA_AUTH, 4 + DIGEST_SIZE, spi)
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
    msg = RRQ_FIXED.pack(
        n.MSG_RRQ, flags, lifetime, socket.inet_aton(home_address), socket.inet_aton(home_agent),
        socket.inet_aton(care_of_address), identification,
    ) + extensions
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
