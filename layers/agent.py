"""Agent Advertisement and Agent Solicitation (RFC 5944 section 2).

An agent advertisement is an ICMP Router Advertisement (RFC 1256: type 9,
Num Addrs, Addr Entry Size, Lifetime, router address/preference pairs)
followed by Mobile IP extensions: Mobility Agent Advertisement (16),
Prefix-Lengths (19), One-byte Padding (0) and the FA Challenge of RFC 3012
(24). Scapy's ICMP class folds the Router Advertisement header into an
opaque ``unused`` field, so these classes model the whole ICMP message and a
dispatcher picks them for ICMP types 9 and 10, leaving every other type to
Scapy's ``ICMP``.
"""

from __future__ import annotations

import struct
from typing import Any

from scapy.fields import (
    BitField,
    ByteEnumField,
    ByteField,
    FieldListField,
    IPField,
    PacketListField,
    ShortField,
    SignedIntField,
    StrField,
    StrLenField,
    XIntField,
    XShortField,
)
from scapy.layers.inet import ICMP, IP
from scapy.packet import Packet, bind_layers
from scapy.utils import checksum

from . import numbers as n

_AGENT_EXT_NAMES = {t: name for t, (name, _rfc) in n.AGENT_EXTENSION_TYPES.items()}


class RouterAddress(Packet):
    """One (Router Address, Preference Level) pair of RFC 1256."""

    name = "Router Address"
    fields_desc = [IPField("address", "0.0.0.0"), SignedIntField("preference", 0)]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


class AgentExtension(Packet):
    """Base of agent-advertisement extensions; dispatches on the type octet."""

    name = "Agent Advertisement Extension"
    min_body = 0
    fields_desc = [ByteEnumField("type", 0, _AGENT_EXT_NAMES), ByteField("length", None)]

    @classmethod
    def dispatch_hook(cls, _pkt: bytes | None = None, *args: Any, **kargs: Any) -> type[Packet]:
        if cls is not AgentExtension or not _pkt:
            return cls
        if _pkt[0] == n.AGENT_EXT_PADDING:
            return AgentExtPadding
        if len(_pkt) < 2:
            return AgentExtTruncated
        target = AGENT_EXTENSION_CLASSES.get(_pkt[0], AgentExtUnknown)
        if _pkt[1] < target.min_body or len(_pkt) < 2 + target.min_body:
            return AgentExtUnknown
        return target

    def post_build(self, p: bytes, pay: bytes) -> bytes:
        if self.length is None:
            p = p[:1] + bytes([(len(p) - 2) & 0xFF]) + p[2:]
        return p + pay

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


class AgentExtPadding(AgentExtension):
    """One-byte Padding (RFC 5944 2.1.3): a lone zero octet, no Length."""

    name = "One-byte Padding"
    fields_desc = [ByteEnumField("type", 0, _AGENT_EXT_NAMES)]

    def post_build(self, p: bytes, pay: bytes) -> bytes:
        return p + pay


class AgentExtUnknown(AgentExtension):
    name = "Agent Extension (unrecognised)"
    fields_desc = [
        ByteEnumField("type", 255, _AGENT_EXT_NAMES),
        ByteField("length", None),
        StrLenField("data", b"", length_from=lambda p: p.length or 0),
    ]


class AgentExtTruncated(AgentExtUnknown):
    """A last octet that starts an extension but has no Length: kept as it is."""

    name = "Agent Extension (truncated header)"
    fields_desc = [ByteEnumField("type", 255, _AGENT_EXT_NAMES), StrField("data", b"")]

    def post_build(self, p: bytes, pay: bytes) -> bytes:
        return p + pay


class MobilityAgentAdvertisement(AgentExtension):
    """Mobility Agent Advertisement extension (RFC 5944 2.1.1), with U (RFC 3519), X (RFC 3543), I (RFC 4857)."""

    name = "Mobility Agent Advertisement"
    min_body = 6
    fields_desc = [
        ByteEnumField("type", n.AGENT_EXT_MOBILITY, _AGENT_EXT_NAMES),
        ByteField("length", None),
        ShortField("sequence", 0),
        ShortField("registration_lifetime", 1800),
        BitField("R", 0, 1),  # registration required
        BitField("B", 0, 1),  # busy
        BitField("H", 0, 1),  # home agent
        BitField("F", 0, 1),  # foreign agent
        BitField("M", 0, 1),  # minimal encapsulation
        BitField("G", 0, 1),  # GRE
        BitField("r", 0, 1),  # sent as zero
        BitField("T", 0, 1),  # reverse tunneling (RFC 3024)
        BitField("U", 0, 1),  # UDP tunnelling (RFC 3519)
        BitField("X", 0, 1),  # revocation support (RFC 3543)
        BitField("I", 0, 1),  # regional registration (RFC 4857)
        BitField("reserved", 0, 5),
        FieldListField(
            "care_of_addresses",
            [],
            IPField("", "0.0.0.0"),
            length_from=lambda p: max(0, (p.length or 0) - 6),
            max_count=255,
        ),
    ]


class PrefixLengths(AgentExtension):
    """Prefix-Lengths extension (RFC 5944 2.1.2): one octet per router address."""

    name = "Prefix-Lengths"
    fields_desc = [
        ByteEnumField("type", n.AGENT_EXT_PREFIX_LENGTHS, _AGENT_EXT_NAMES),
        ByteField("length", None),
        FieldListField("prefix_lengths", [], ByteField("", 0), length_from=lambda p: p.length or 0, max_count=255),
    ]


class AgentChallenge(AgentExtension):
    """Challenge extension of agent advertisements (RFC 3012 section 2)."""

    name = "Challenge"
    fields_desc = [
        ByteEnumField("type", n.AGENT_EXT_CHALLENGE, _AGENT_EXT_NAMES),
        ByteField("length", None),
        StrLenField("challenge", b"", length_from=lambda p: p.length or 0),
    ]


AGENT_EXTENSION_CLASSES: dict[int, type[AgentExtension]] = {
    n.AGENT_EXT_PADDING: AgentExtPadding,
    n.AGENT_EXT_MOBILITY: MobilityAgentAdvertisement,
    n.AGENT_EXT_PREFIX_LENGTHS: PrefixLengths,
    n.AGENT_EXT_CHALLENGE: AgentChallenge,
}


class _ICMPChecksummed(Packet):
    def post_build(self, p: bytes, pay: bytes) -> bytes:
        p += pay
        if self.chksum is None:
            ck = checksum(p)
            p = p[:2] + struct.pack("!H", ck) + p[4:]
        return p


class AgentAdvertisement(_ICMPChecksummed):
    """ICMP Router Advertisement (type 9) carrying Mobile IP agent extensions.

    Code 16 means the agent does not route common traffic (RFC 5944 2.1).
    """

    name = "Agent Advertisement"
    fields_desc = [
        ByteEnumField("type", n.ICMP_ROUTER_ADVERTISEMENT, {9: "router-advertisement"}),
        ByteEnumField("code", 0, {0: "normal", 16: "does not route common traffic"}),
        XShortField("chksum", None),
        ByteField("num_addrs", None),
        ByteField("addr_entry_size", 2),
        ShortField("lifetime", 1800),
        # max_count: beyond Scapy's default of 100 items, which raises (255 addresses, 1-octet paddings)
        PacketListField("addresses", [], RouterAddress, count_from=lambda p: p.num_addrs or 0, max_count=255),
        PacketListField("extensions", [], AgentExtension, max_count=65535),
    ]

    def post_build(self, p: bytes, pay: bytes) -> bytes:
        if self.num_addrs is None:
            p = p[:4] + bytes([len(self.addresses) & 0xFF]) + p[5:]
        return super().post_build(p, pay)

    @property
    def mobility(self) -> MobilityAgentAdvertisement | None:
        for ext in self.extensions:
            if isinstance(ext, MobilityAgentAdvertisement):
                return ext
        return None

    def mysummary(self) -> str:
        mob = self.mobility
        if mob is None:
            return "Router Advertisement"
        roles = "".join(c for c in "HF" if getattr(mob, c))
        return f"Agent Advertisement seq={mob.sequence} {roles} CoAs={','.join(mob.care_of_addresses)}"


class AgentSolicitation(_ICMPChecksummed):
    """Agent Solicitation (RFC 5944 2.2): an ICMP Router Solicitation (type 10)."""

    name = "Agent Solicitation"
    fields_desc = [
        ByteEnumField("type", n.ICMP_ROUTER_SOLICITATION, {10: "router-solicitation"}),
        ByteField("code", 0),
        XShortField("chksum", None),
        XIntField("reserved", 0),
    ]


class ICMPRouterDiscovery(Packet):
    """Chooses the agent classes for ICMP types 9 and 10 and Scapy's ICMP otherwise."""

    name = "ICMP"
    fields_desc = [ByteField("type", 0)]

    @classmethod
    def dispatch_hook(cls, _pkt: bytes | None = None, *args: Any, **kargs: Any) -> type[Packet]:
        if not _pkt:
            return ICMP
        if _pkt[0] == n.ICMP_ROUTER_ADVERTISEMENT and len(_pkt) >= 8:
            return AgentAdvertisement
        if _pkt[0] == n.ICMP_ROUTER_SOLICITATION and len(_pkt) >= 8:
            return AgentSolicitation
        return ICMP


def _bind() -> None:
    bind_layers(IP, AgentAdvertisement, proto=1)
    bind_layers(IP, AgentSolicitation, proto=1)
    entry = ({"proto": 1}, ICMPRouterDiscovery)
    IP.payload_guess = [entry] + [
        g for g in IP.payload_guess if g[1] not in (AgentAdvertisement, AgentSolicitation, ICMPRouterDiscovery)
    ]


_bind()

__all__ = [
    "AGENT_EXTENSION_CLASSES",
    "AgentAdvertisement",
    "AgentChallenge",
    "AgentExtPadding",
    "AgentExtTruncated",
    "AgentExtUnknown",
    "AgentExtension",
    "AgentSolicitation",
    "MobilityAgentAdvertisement",
    "PrefixLengths",
    "RouterAddress",
]
