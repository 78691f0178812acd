"""What each modelled registration extension looks like on the wire: one table, the sets derived from it.

The codec, the home agent, the mobile node, the fast dissector and the Scapy
layers all ask this table (tests/test_proto_spec.py holds the layers to it),
so a new extension is described once. Names and RFCs come from
:data:`~mipcheck.proto.numbers.EXTENSION_TYPES`.

Formats: RFC 5944 1.9 (Type, one-octet Length counting the octets after it;
types 0-127 non-skippable, 128-255 skippable), RFC 3012 5 and RFC 3115 3.1
(types 36 and 38: Type, Sub-Type/Reserved, 16-bit Length).
"""

from __future__ import annotations

from typing import NamedTuple

from . import numbers as n


class ExtensionSpec(NamedTuple):
    """One extension type as the codec and the layers model it."""

    type: int
    min_body: int  # octets of fixed body the Length must cover
    long_length: bool = False  # 16-bit Length after a sub-type/reserved octet (RFC 3012 5, RFC 3115 3.1)
    authenticator: bool = False  # body is SPI then authenticator (RFC 5944 3.5.1, RFC 3012 5)
    authorization_enabling: bool = False  # may authorise a registration at the home agent (RFC 5944 3.5, 3.8.2.1)
    in_reply: bool = True  # a mobile node may meet it in a Registration Reply

    @property
    def name(self) -> str:
        return n.EXTENSION_TYPES[self.type][0]

    @property
    def rfc(self) -> str:
        return n.EXTENSION_TYPES[self.type][1]

    @property
    def header_size(self) -> int:
        """Type and Length octets (plus the sub-type/reserved octet of the long format)."""
        return 4 if self.long_length else 2

    @property
    def skippable(self) -> bool:
        """RFC 5944 1.9: an unrecognised extension of type 128-255 is skipped, 0-127 discards the message."""
        return n.is_skippable(self.type)


EXTENSIONS: dict[int, ExtensionSpec] = {
    s.type: s
    for s in (
        ExtensionSpec(n.EXT_MN_HA_AUTH, 4, authenticator=True, authorization_enabling=True),  # RFC 5944 3.5.2
        ExtensionSpec(n.EXT_MN_FA_AUTH, 4, authenticator=True),  # RFC 5944 3.5.3
        ExtensionSpec(n.EXT_FA_HA_AUTH, 4, authenticator=True),  # RFC 5944 3.5.4
        ExtensionSpec(
            n.EXT_GEN_AUTH, 4, long_length=True, authenticator=True, authorization_enabling=True
        ),  # RFC 3012 5
        ExtensionSpec(n.EXT_CVSE, 6, long_length=True),  # RFC 3115 3.1: Vendor-ID, Vendor-CVSE-Type
        ExtensionSpec(n.EXT_UDP_TUNNEL_REPLY, 6),  # RFC 3519 3.2
        ExtensionSpec(n.EXT_NAI, 0),  # RFC 2794 2
        ExtensionSpec(n.EXT_MN_FA_CHALLENGE, 0),  # RFC 3012 3.1
        ExtensionSpec(n.EXT_NVSE, 8),  # RFC 3115 3.2: Reserved, Vendor-ID, Vendor-NVSE-Type
        ExtensionSpec(n.EXT_REVOCATION_SUPPORT, 6),  # RFC 3543 3.3
        ExtensionSpec(n.EXT_UDP_TUNNEL_REQUEST, 6, in_reply=False),  # RFC 3519 3.1
        ExtensionSpec(n.EXT_MESSAGE_STRING, 1),  # RFC 4917 3: Sub-Type, then the text
        ExtensionSpec(n.EXT_TNC, 2),  # RFC 5265 3.4: Sub-Type, Reserved
    )
}

#: Types whose Length is 16 bits at offset 2 (everything else: one octet at offset 1).
LONG_FORMAT_TYPES = frozenset(t for t, s in EXTENSIONS.items() if s.long_length)
#: Types that carry an SPI and an authenticator.
AUTHENTICATOR_TYPES = frozenset(t for t, s in EXTENSIONS.items() if s.authenticator)
#: RFC 5944 3.8.2.1 (a): the home agent wants exactly one of these, and it must verify.
AUTHORIZATION_ENABLING_TYPES = frozenset(t for t, s in EXTENSIONS.items() if s.authorization_enabling)
#: What the reference home agent understands in a request: every modelled type.
RECOGNISED_BY_HA = frozenset(EXTENSIONS)
#: What the reference mobile node understands in a reply (RFC 5944 1.9 only asks about types 0-127).
RECOGNISED_BY_MN = frozenset(t for t, s in EXTENSIONS.items() if s.in_reply)
#: Smallest Length each modelled type needs for its fixed body.
MIN_BODY = {t: s.min_body for t, s in EXTENSIONS.items() if s.min_body}

TNC_EXTENSION = bytes((n.EXT_TNC, 2, 0, 0))  # RFC 5265 3.4: Type 149, Length 2, Sub-Type 0, Reserved 0


def header_size(ext_type: int) -> int:
    """Type+Length octets of any type: 4 for the long format (36, 38), else 2."""
    return 4 if ext_type in LONG_FORMAT_TYPES else 2
