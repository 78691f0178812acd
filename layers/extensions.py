"""Extensions of Mobile IPv4 registration messages, one class per type.

RFC 5944 section 1.9 gives the general Type-Length-Value form (one-octet
Length counting the octets after it); RFC 3012 (type 36) and RFC 3115
(type 38) use a four-octet header with a 16-bit Length. ``MIPExtension``
dispatches on the type octet; an unknown type, or a known one whose length
cannot hold its fixed body, becomes ``MIPExtUnknown`` with its octets kept
exactly, so re-serialising a dissected message is the identity.
"""

from __future__ import annotations

import struct
from typing import Any

from scapy.fields import (
    BitField,
    ByteEnumField,
    ByteField,
    IntField,
    ShortField,
    StrField,
    StrLenField,
    XByteField,
    XIntField,
    XShortField,
)
from scapy.packet import Packet

from . import numbers as n
from .auth import DIGEST_SIZE, HMAC_MD5
from .secret import SecretField, VirtualField

_EXT_NAMES = {t: name for t, (name, _rfc) in n.EXTENSION_TYPES.items()}


def _body_len(pkt: Any, fixed: int) -> int:
    length = pkt.length if pkt.length is not None else 0
    return max(0, length - fixed)


class MIPExtension(Packet):
    """Base of all registration-message extensions; dispatches on the type octet."""

    name = "MIP Extension"
    header_size = 2  # Type + Length
    min_body = 0  # octets of fixed body after the header
    long_length = False  # 16-bit Length at offset 2 (types 36, 38)

    fields_desc = [ByteEnumField("type", 0, _EXT_NAMES), ByteField("length", None)]

    @classmethod
    def dispatch_hook(cls, _pkt: bytes | None = None, *args: Any, **kargs: Any) -> type[Packet]:
        if cls is not MIPExtension or not _pkt:
            return cls
        target = EXTENSION_CLASSES.get(_pkt[0], MIPExtUnknown)
        hdr = target.header_size
        if len(_pkt) < hdr:
            return MIPExtTruncated
        length = struct.unpack_from("!H", _pkt, 2)[0] if target.long_length else _pkt[1]
        if length < target.min_body or len(_pkt) < hdr + target.min_body:
            # keep the type's own header layout so the next extension starts where it should
            return MIPExtUnknownLong if target.long_length else MIPExtUnknown
        return target

    def post_build(self, p: bytes, pay: bytes) -> bytes:
        if self.length is None:
            body = len(p) - self.header_size
            if self.long_length:
                p = p[:2] + struct.pack("!H", body & 0xFFFF) + p[4:]
            else:
                p = p[:1] + bytes([body & 0xFF]) + p[2:]
        return p + pay

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s

    @property
    def skippable(self) -> bool:
        return n.is_skippable(self.type)

    def mysummary(self) -> str:
        return f"{self.name}"


class MIPExtUnknown(MIPExtension):
    """Any extension this library does not model, or a malformed known one: octets kept as they are."""

    name = "MIP Extension (unrecognised)"
    fields_desc = [
        ByteEnumField("type", 255, _EXT_NAMES),
        ByteField("length", None),
        StrLenField("data", b"", length_from=lambda p: p.length or 0),
    ]

    @property
    def malformed(self) -> bool:
        """True when the type is one we model but its length could not hold it."""
        return self.type in EXTENSION_CLASSES

    def mysummary(self) -> str:
        kind = "skippable" if self.skippable else "non-skippable"
        return f"unknown extension {self.type} ({kind}, {len(self.data)} octets)"


class MIPExtUnknownLong(MIPExtUnknown):
    """A type 36 or 38 extension (16-bit Length at offset 2) too short for its fixed body."""

    header_size = 4
    long_length = True
    fields_desc = [
        ByteEnumField("type", n.EXT_GEN_AUTH, _EXT_NAMES),
        XByteField("subtype", 0),
        ShortField("length", None),
        StrLenField("data", b"", length_from=lambda p: p.length or 0),
    ]


class MIPExtTruncated(MIPExtUnknown):
    """The last octets of a message, fewer than an extension header: kept as they are."""

    name = "MIP Extension (truncated header)"
    fields_desc = [ByteEnumField("type", 255, _EXT_NAMES), StrField("data", b"")]

    def post_build(self, p: bytes, pay: bytes) -> bytes:
        return p + pay

    @property
    def malformed(self) -> bool:
        return True


class _AuthenticatorField(StrLenField):
    """Authenticator octets; None builds as a zero placeholder of the digest size.

    The enclosing message computes the real value once the octets it covers
    are known (see ``messages._apply_authenticators``).
    """

    def i2m(self, pkt: Any, x: Any) -> bytes:
        if x is None:
            return b"\x00" * DIGEST_SIZE
        return super().i2m(pkt, x)

    def i2len(self, pkt: Any, x: Any) -> int:
        return DIGEST_SIZE if x is None else len(x)


class MIPExtAuth(MIPExtension):
    """Common layout of types 32, 33, 34 (RFC 5944 3.5.2-3.5.4): SPI then authenticator."""

    min_body = 4
    fields_desc = [
        ByteEnumField("type", n.EXT_MN_HA_AUTH, _EXT_NAMES),
        ByteField("length", None),
        XIntField("spi", 256),
        _AuthenticatorField("authenticator", None, length_from=lambda p: _body_len(p, 4)),
        SecretField("key", None),
        VirtualField("algorithm", HMAC_MD5),
    ]

    def mysummary(self) -> str:
        return f"{self.name} SPI={self.spi:#x}"


class MIPExtMNHAAuth(MIPExtAuth):
    name = "Mobile-Home Authentication"


class MIPExtMNFAAuth(MIPExtAuth):
    name = "Mobile-Foreign Authentication"
    fields_desc = [ByteEnumField("type", n.EXT_MN_FA_AUTH, _EXT_NAMES), *MIPExtAuth.fields_desc[1:]]


class MIPExtFAHAAuth(MIPExtAuth):
    name = "Foreign-Home Authentication"
    fields_desc = [ByteEnumField("type", n.EXT_FA_HA_AUTH, _EXT_NAMES), *MIPExtAuth.fields_desc[1:]]


class MIPExtGenAuth(MIPExtension):
    """Generalized Mobile IP Authentication (RFC 3012 section 5): 16-bit length after a sub-type."""

    name = "Generalized Mobile IP Authentication"
    header_size = 4
    long_length = True
    min_body = 4
    fields_desc = [
        ByteEnumField("type", n.EXT_GEN_AUTH, _EXT_NAMES),
        ByteEnumField("subtype", 1, n.GEN_AUTH_SUBTYPES),
        ShortField("length", None),
        XIntField("spi", 256),
        _AuthenticatorField("authenticator", None, length_from=lambda p: _body_len(p, 4)),
        SecretField("key", None),
        VirtualField("algorithm", HMAC_MD5),
    ]


class MIPExtCVSE(MIPExtension):
    """Critical Vendor/Organization Specific Extension (RFC 3115 section 3.1)."""

    name = "Critical Vendor/Organization Specific"
    header_size = 4
    long_length = True
    min_body = 6
    fields_desc = [
        ByteEnumField("type", n.EXT_CVSE, _EXT_NAMES),
        XByteField("reserved", 0),
        ShortField("length", None),
        IntField("vendor_id", 0),
        ShortField("vendor_type", 0),
        StrLenField("value", b"", length_from=lambda p: _body_len(p, 6)),
    ]


class MIPExtNVSE(MIPExtension):
    """Normal Vendor/Organization Specific Extension (RFC 3115 section 3.2)."""

    name = "Normal Vendor/Organization Specific"
    min_body = 8
    fields_desc = [
        ByteEnumField("type", n.EXT_NVSE, _EXT_NAMES),
        ByteField("length", None),
        XShortField("reserved", 0),
        IntField("vendor_id", 0),
        ShortField("vendor_type", 0),
        StrLenField("value", b"", length_from=lambda p: _body_len(p, 8)),
    ]


class MIPExtNAI(MIPExtension):
    """Mobile Node NAI (RFC 2794 section 2)."""

    name = "Mobile Node NAI"
    fields_desc = [
        ByteEnumField("type", n.EXT_NAI, _EXT_NAMES),
        ByteField("length", None),
        StrLenField("nai", b"", length_from=lambda p: p.length or 0),
    ]

    def mysummary(self) -> str:
        return f"NAI {self.nai!r}"


class MIPExtMNFAChallenge(MIPExtension):
    """MN-FA Challenge (RFC 3012 section 3.1)."""

    name = "MN-FA Challenge"
    fields_desc = [
        ByteEnumField("type", n.EXT_MN_FA_CHALLENGE, _EXT_NAMES),
        ByteField("length", None),
        StrLenField("challenge", b"", length_from=lambda p: p.length or 0),
    ]


class MIPExtRevocationSupport(MIPExtension):
    """Revocation Support (RFC 3543 section 3.3): I bit, reserved, timestamp."""

    name = "Revocation Support"
    min_body = 6
    fields_desc = [
        ByteEnumField("type", n.EXT_REVOCATION_SUPPORT, _EXT_NAMES),
        ByteField("length", None),
        BitField("I", 0, 1),
        BitField("reserved", 0, 15),
        IntField("timestamp", 0),
        StrLenField("extra", b"", length_from=lambda p: _body_len(p, 6)),
    ]


class MIPExtUDPTunnelRequest(MIPExtension):
    """UDP Tunnel Request (RFC 3519 section 3.1), skippable type 144."""

    name = "UDP Tunnel Request"
    min_body = 6
    fields_desc = [
        ByteEnumField("type", n.EXT_UDP_TUNNEL_REQUEST, _EXT_NAMES),
        ByteField("length", None),
        ByteField("subtype", 0),
        XByteField("reserved1", 0),
        BitField("F", 0, 1),
        BitField("R", 0, 1),
        BitField("reserved2", 0, 6),
        ByteEnumField("encapsulation", 4, n.NEXT_HEADERS),
        XShortField("reserved3", 0),
        StrLenField("extra", b"", length_from=lambda p: _body_len(p, 6)),
    ]


class MIPExtUDPTunnelReply(MIPExtension):
    """UDP Tunnel Reply (RFC 3519 section 3.2), non-skippable type 44."""

    name = "UDP Tunnel Reply"
    min_body = 6
    fields_desc = [
        ByteEnumField("type", n.EXT_UDP_TUNNEL_REPLY, _EXT_NAMES),
        ByteField("length", None),
        ByteField("subtype", 0),
        ByteEnumField("code", 0, n.UDP_TUNNEL_REPLY_CODES),
        BitField("F", 0, 1),
        BitField("reserved", 0, 15),
        ShortField("keepalive", 110),
        StrLenField("extra", b"", length_from=lambda p: _body_len(p, 6)),
    ]


class MIPExtMessageString(MIPExtension):
    """Message String (RFC 4917 section 3): sub-type, then UTF-8 text."""

    name = "Message String"
    min_body = 1
    fields_desc = [
        ByteEnumField("type", n.EXT_MESSAGE_STRING, _EXT_NAMES),
        ByteField("length", None),
        ByteEnumField("subtype", 1, {1: "from HA", 2: "from FA"}),
        StrLenField("text", b"", length_from=lambda p: _body_len(p, 1)),
    ]


class MIPExtTNC(MIPExtension):
    """Trusted Networks Configured (RFC 5265 section 3.4): short format, type 149, length 2.

    Sub-Type 0; Reserved set to 0 when sending and ignored when receiving.
    """

    name = "Trusted Networks Configured"
    min_body = 2
    fields_desc = [
        ByteEnumField("type", n.EXT_TNC, _EXT_NAMES),
        ByteField("length", None),
        ByteField("subtype", 0),
        XByteField("reserved", 0),
        StrLenField("extra", b"", length_from=lambda p: _body_len(p, 2)),
    ]


EXTENSION_CLASSES: dict[int, type[MIPExtension]] = {
    n.EXT_MN_HA_AUTH: MIPExtMNHAAuth,
    n.EXT_MN_FA_AUTH: MIPExtMNFAAuth,
    n.EXT_FA_HA_AUTH: MIPExtFAHAAuth,
    n.EXT_GEN_AUTH: MIPExtGenAuth,
    n.EXT_CVSE: MIPExtCVSE,
    n.EXT_UDP_TUNNEL_REPLY: MIPExtUDPTunnelReply,
    n.EXT_NAI: MIPExtNAI,
    n.EXT_MN_FA_CHALLENGE: MIPExtMNFAChallenge,
    n.EXT_NVSE: MIPExtNVSE,
    n.EXT_REVOCATION_SUPPORT: MIPExtRevocationSupport,
    n.EXT_UDP_TUNNEL_REQUEST: MIPExtUDPTunnelRequest,
    n.EXT_MESSAGE_STRING: MIPExtMessageString,
    n.EXT_TNC: MIPExtTNC,
}

AUTH_CLASSES = (MIPExtAuth, MIPExtGenAuth)

__all__ = [
    "AUTH_CLASSES",
    "EXTENSION_CLASSES",
    "MIPExtAuth",
    "MIPExtCVSE",
    "MIPExtFAHAAuth",
    "MIPExtGenAuth",
    "MIPExtMNFAAuth",
    "MIPExtMNFAChallenge",
    "MIPExtMNHAAuth",
    "MIPExtMessageString",
    "MIPExtNAI",
    "MIPExtNVSE",
    "MIPExtRevocationSupport",
    "MIPExtTNC",
    "MIPExtUDPTunnelReply",
    "MIPExtUDPTunnelRequest",
    "MIPExtTruncated",
    "MIPExtUnknown",
    "MIPExtUnknownLong",
    "MIPExtension",
]
