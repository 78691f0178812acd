"""Mobile IPv4 control messages on UDP port 434.

Registration Request and Reply (RFC 5944 sections 3.3, 3.4), Tunnel Data
(RFC 3519 section 3.3), Registration Revocation and Revocation
Acknowledgment (RFC 3543 sections 3.1, 3.2). ``MobileIPMessage`` chooses the
class by the type octet; an unknown type, or a message shorter than its fixed
header, dissects to ``MIPUnknownMessage`` / ``MIPTruncatedMessage`` holding the
octets and an ``error`` string, never an exception.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

from scapy.fields import (
    BitField,
    ByteEnumField,
    IntField,
    IPField,
    PacketListField,
    ShortField,
    StrField,
    XByteField,
    XLongField,
    XShortField,
)
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import GRE
from scapy.packet import Packet, bind_layers, bind_top_down

from mipcheck.proto.security import SecurityAssociation

from . import numbers as n
from .auth import AuthCheck, compute_authenticator, verify_message
from .extensions import AUTH_CLASSES, MIPExtension
from .identification import low32

_MSG_NAMES = {t: name for t, (name, _rfc) in n.MESSAGE_TYPES.items()}


def _apply_authenticators(pkt: Packet, p: bytes) -> bytes:
    """Fill each authenticator left unset (None) whose extension carries a key.

    RFC 5944 3.5.1: covered data is the message and all prior extensions
    through this extension's SPI. Extensions are processed in order, so an
    MN-FA authenticator covers the already-computed MN-HA one. Each
    extension's place comes from the octets its object built (recorded by
    ``_ExtensionListField``), not from re-reading Length octets, which a test
    may have set to a wrong value on purpose.
    """
    sizes = pkt.__dict__.pop("_mip_ext_sizes", None)
    exts = getattr(pkt, "extensions", None) or []
    if sizes is None or len(sizes) != len(exts):
        return p
    if not any(isinstance(e, AUTH_CLASSES) and e.authenticator is None and e.key is not None for e in exts):
        return p
    buf = bytearray(p)
    off = len(p) - sum(sizes)
    for ext, size in zip(exts, sizes, strict=True):
        if isinstance(ext, AUTH_CLASSES) and ext.authenticator is None and ext.key is not None:
            spi_end = off + ext.header_size + 4
            width = off + size - spi_end
            if width > 0:
                digest = compute_authenticator(ext.algorithm, ext.key.reveal(), bytes(buf[:spi_end]))
                buf[spi_end : spi_end + width] = digest[:width].ljust(width, b"\x00")
        off += size
    return bytes(buf)


class _ExtensionListField(PacketListField):
    """The extension list of a message; remembers the size each extension built to."""

    def addfield(self, pkt: Packet, s: bytes, val: Any) -> bytes:
        parts = [self.i2m(pkt, v) for v in val]
        pkt.__dict__["_mip_ext_sizes"] = [len(b) for b in parts]
        return s + b"".join(parts)


class MobileIPMessage(Packet):
    """Dispatcher for UDP/434 payloads: picks the message class by its type octet."""

    name = "Mobile IP"
    fixed_size = 1
    fields_desc = [ByteEnumField("type", 0, _MSG_NAMES)]

    @classmethod
    def dispatch_hook(cls, _pkt: bytes | None = None, *args: Any, **kargs: Any) -> type[Packet]:
        if cls is not MobileIPMessage or not _pkt:
            return cls
        target = MESSAGE_CLASSES.get(_pkt[0])
        if target is None:
            return MIPUnknownMessage
        if len(_pkt) < target.fixed_size:
            return MIPTruncatedMessage
        return target

    def verify(self, keys: Mapping[int, SecurityAssociation]) -> list[AuthCheck]:
        """Check every authentication extension against ``keys`` (SPI -> SecurityAssociation, e.g. ``Key(secret)``)."""
        return verify_message(bytes(self), self.fixed_size, keys)

    def post_build(self, p: bytes, pay: bytes) -> bytes:
        return _apply_authenticators(self, p) + pay

    @property
    def error(self) -> str | None:
        return None


class MIPUnknownMessage(MobileIPMessage):
    name = "Mobile IP (unknown type)"
    fields_desc = [ByteEnumField("type", 0, _MSG_NAMES), StrField("data", b"")]

    @property
    def error(self) -> str:
        return f"unknown Mobile IP message type {self.type}"


class MIPTruncatedMessage(MobileIPMessage):
    name = "Mobile IP (truncated)"
    fields_desc = [ByteEnumField("type", 0, _MSG_NAMES), StrField("data", b"")]

    @property
    def error(self) -> str:
        cls = MESSAGE_CLASSES.get(self.type)
        need = cls.fixed_size if cls else 1
        return f"truncated {_MSG_NAMES.get(self.type, self.type)}: {1 + len(self.data)} octets, fixed part needs {need}"


def _registration_hash(pkt: Packet) -> bytes:
    """Requests and their replies share home address and low-order Identification bits."""
    return socket.inet_aton(pkt.home_address) + low32(pkt.identification).to_bytes(4, "big")


# Scapy stops a packet list at conf.max_list_count (100) items by raising; a UDP
# payload can hold far more (two-octet extensions), and dissection must not raise.
MAX_EXTENSIONS = 65535


def _ext_list() -> PacketListField:
    return _ExtensionListField("extensions", [], MIPExtension, max_count=MAX_EXTENSIONS)


class RegistrationRequest(MobileIPMessage):
    """Registration Request (RFC 5944 3.3): flags S B D M G r T x, lifetime, addresses, identification."""

    name = "Registration Request"
    fixed_size = 24
    fields_desc = [
        ByteEnumField("type", n.MSG_RRQ, _MSG_NAMES),
        BitField("S", 0, 1),  # simultaneous bindings
        BitField("B", 0, 1),  # broadcast datagrams
        BitField("D", 0, 1),  # decapsulation by mobile node (co-located CoA)
        BitField("M", 0, 1),  # minimal encapsulation
        BitField("G", 0, 1),  # GRE encapsulation
        BitField("r", 0, 1),  # sent as zero, ignored on reception
        BitField("T", 0, 1),  # reverse tunneling requested (RFC 3024)
        BitField("x", 0, 1),  # sent as zero, ignored on reception
        ShortField("lifetime", 1800),
        IPField("home_address", "0.0.0.0"),
        IPField("home_agent", "0.0.0.0"),
        IPField("care_of_address", "0.0.0.0"),
        XLongField("identification", 0),
        _ext_list(),
    ]

    def hashret(self) -> bytes:
        return _registration_hash(self)

    def mysummary(self) -> str:
        return self.sprintf("RRQ HoA=%home_address% HA=%home_agent% CoA=%care_of_address% life=%lifetime%")


class RegistrationReply(MobileIPMessage):
    """Registration Reply (RFC 5944 3.4)."""

    name = "Registration Reply"
    fixed_size = 20
    fields_desc = [
        ByteEnumField("type", n.MSG_RRP, _MSG_NAMES),
        ByteEnumField("code", 0, n.REPLY_CODES),
        ShortField("lifetime", 1800),
        IPField("home_address", "0.0.0.0"),
        IPField("home_agent", "0.0.0.0"),
        XLongField("identification", 0),
        _ext_list(),
    ]

    @property
    def accepted(self) -> bool:
        return n.reply_accepted(self.code)

    def hashret(self) -> bytes:
        return _registration_hash(self)

    def answers(self, other: Packet) -> int:
        """RFC 5944 3.4 / 5.7: same home address, low-order 32 bits of Identification copied."""
        return int(
            isinstance(other, RegistrationRequest)
            and other.home_address == self.home_address
            and low32(other.identification) == low32(self.identification)
        )

    def mysummary(self) -> str:
        return self.sprintf("RRP code=%code% HoA=%home_address% HA=%home_agent% life=%lifetime%")


class TunnelData(MobileIPMessage):
    """RFC 3519 3.3 tunnel data: type 4, Next Header, reserved; then the tunnelled packet."""

    name = "MIP Tunnel Data"
    fixed_size = 4
    fields_desc = [
        ByteEnumField("type", n.MSG_TUNNEL_DATA, _MSG_NAMES),
        ByteEnumField("next_header", 4, n.NEXT_HEADERS),
        XShortField("reserved", 0),
    ]

    def post_build(self, p: bytes, pay: bytes) -> bytes:
        return p + pay


class RegistrationRevocation(MobileIPMessage):
    """Registration Revocation (RFC 3543 3.1)."""

    name = "Registration Revocation"
    fixed_size = 20
    fields_desc = [
        ByteEnumField("type", n.MSG_REVOCATION, _MSG_NAMES),
        XByteField("reserved", 0),
        BitField("A", 0, 1),  # sent by the home domain (home agent)
        BitField("I", 0, 1),  # inform the mobile node
        BitField("reserved2", 0, 14),
        IPField("home_address", "0.0.0.0"),
        IPField("home_domain_address", "0.0.0.0"),
        IPField("foreign_domain_address", "0.0.0.0"),
        IntField("revocation_id", 0),
        _ext_list(),
    ]

    def hashret(self) -> bytes:
        return self.revocation_id.to_bytes(4, "big")


class RevocationAcknowledgment(MobileIPMessage):
    """Revocation Acknowledgment (RFC 3543 3.2)."""

    name = "Revocation Acknowledgment"
    fixed_size = 12
    fields_desc = [
        ByteEnumField("type", n.MSG_REVOCATION_ACK, _MSG_NAMES),
        XByteField("reserved", 0),
        BitField("I", 0, 1),
        BitField("reserved2", 0, 15),
        IPField("home_address", "0.0.0.0"),
        IntField("revocation_id", 0),
        _ext_list(),
    ]

    def hashret(self) -> bytes:
        return self.revocation_id.to_bytes(4, "big")

    def answers(self, other: Packet) -> int:
        return int(
            isinstance(other, RegistrationRevocation)
            and other.revocation_id == self.revocation_id
            and other.home_address == self.home_address
        )


MESSAGE_CLASSES: dict[int, type[MobileIPMessage]] = {
    n.MSG_RRQ: RegistrationRequest,
    n.MSG_RRP: RegistrationReply,
    n.MSG_TUNNEL_DATA: TunnelData,
    n.MSG_REVOCATION: RegistrationRevocation,
    n.MSG_REVOCATION_ACK: RevocationAcknowledgment,
}


def _bind() -> None:
    """UDP/434 both ways, ahead of Scapy's own scapy.layers.mobileip binding."""
    for field in ("dport", "sport"):
        entry = ({field: n.MIP_PORT}, MobileIPMessage)
        UDP.payload_guess = [entry] + [g for g in UDP.payload_guess if g != entry]
    bind_top_down(UDP, RegistrationRequest, dport=n.MIP_PORT)
    bind_top_down(UDP, RegistrationReply, sport=n.MIP_PORT)
    for cls in (TunnelData, RegistrationRevocation, RevocationAcknowledgment):
        bind_top_down(UDP, cls, sport=n.MIP_PORT, dport=n.MIP_PORT)
    bind_layers(TunnelData, IP, next_header=n.IPPROTO_IPIP)
    bind_layers(TunnelData, GRE, next_header=n.IPPROTO_GRE)


_bind()

__all__ = [
    "MESSAGE_CLASSES",
    "MIPTruncatedMessage",
    "MIPUnknownMessage",
    "MobileIPMessage",
    "RegistrationReply",
    "RegistrationRequest",
    "RegistrationRevocation",
    "RevocationAcknowledgment",
    "TunnelData",
]
