"""Minimal Encapsulation within IP (RFC 2004), IP protocol 55.

The minimal forwarding header replaces the outer IP header's addresses with
the original ones: Protocol, S bit (original source present), reserved,
Header Checksum (over this header only), Original Destination Address and,
when S is set, Original Source Address.
"""

from __future__ import annotations

from typing import Any

from scapy.fields import BitField, ByteEnumField, ConditionalField, IPField, XShortField
from scapy.layers.inet import IP
from scapy.packet import Packet, bind_layers
from scapy.utils import checksum

from .messages import TunnelData
from .numbers import IPPROTO_MINENC


def _ip_protocols() -> dict[int, str]:
    proto = IP.fields_desc[[f.name for f in IP.fields_desc].index("proto")]
    return dict(getattr(proto, "i2s", {}) or {})


class MinimalEncapsulation(Packet):
    name = "Minimal Encapsulation (RFC 2004)"
    fields_desc = [
        ByteEnumField("proto", 4, _ip_protocols()),
        BitField("S", 0, 1),
        BitField("reserved", 0, 7),
        XShortField("chksum", None),
        IPField("dst", "0.0.0.0"),
        ConditionalField(IPField("src", "0.0.0.0"), lambda p: p.S == 1),
    ]

    def post_build(self, p: bytes, pay: bytes) -> bytes:
        if self.chksum is None:
            ck = checksum(p[:2] + b"\x00\x00" + p[4:])
            p = p[:2] + ck.to_bytes(2, "big") + p[4:]
        return p + pay

    def checksum_ok(self) -> bool:
        raw = bytes(self)[: 12 if self.S else 8]
        return checksum(raw) == 0

    def guess_payload_class(self, payload: bytes) -> Any:
        # the class IP would choose for this protocol (its bindings also say frag=0)
        for fields, cls in IP.payload_guess:
            if fields.get("proto") == self.proto and all(
                k == "proto" or (k, v) == ("frag", 0) for k, v in fields.items()
            ):
                return cls
        return super().guess_payload_class(payload)

    def mysummary(self) -> str:
        return (
            self.sprintf("MinEnc %src% > %dst% proto=%proto%")
            if self.S
            else self.sprintf("MinEnc > %dst% proto=%proto%")
        )


bind_layers(IP, MinimalEncapsulation, proto=IPPROTO_MINENC)
bind_layers(TunnelData, MinimalEncapsulation, next_header=IPPROTO_MINENC)
