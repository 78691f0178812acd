"""What the tester, as a mobile node, puts on the wire: registration requests and tunnel data.

Pure functions from parameters to octets, so every deliberately broken
variant (no authenticator, a flipped octet, an unknown SPI, a stray
extension) is one explicit argument and can be tested without a network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from mipcheck.engine.profile import MobileNode
from mipcheck.layers import (
    MIPExtMNHAAuth,
    MIPExtNAI,
    MIPExtUDPTunnelRequest,
    RegistrationRequest,
    TunnelData,
)
from mipcheck.layers.auth import auth_extension_spans
from mipcheck.layers.extensions import MIPExtension
from mipcheck.proto.numbers import FLAG_D, FLAG_T, RRQ_FLAG_LETTERS


@dataclass(frozen=True)
class Request:
    """A built registration request and the fields a judge needs to match its reply."""

    data: bytes
    home_address: str
    identification: int
    lifetime: int
    mn: MobileNode | None = field(default=None, compare=False, repr=False)  # whose key judges the reply


def build_request(
    mn: MobileNode,
    *,
    home_agent: str,
    care_of_address: str,
    identification: int,
    lifetime: int,
    reverse_tunnel: bool = False,
    clear_flags: int = 0,
    before_auth: Sequence[MIPExtension] = (),
    after_auth: Sequence[MIPExtension] = (),
    authenticate: bool = True,
    spi: int | None = None,
) -> Request:
    """A Registration Request (RFC 5944 3.3) with a co-located care-of address (D bit set).

    The mobile node's profile flags (``[mn] flags``, e.g. G for a device that
    requires GRE) are set on every request; ``clear_flags`` takes bits out
    again for the probes that vary them. ``before_auth`` extensions go before
    the MN-HA authentication extension so the authenticator covers them
    (RFC 5944 3.5.1), ``after_auth`` ones after it; ``spi`` overrides the SPI
    while the authenticator is still computed with the mobile node's key.
    """
    exts: list[MIPExtension] = []
    if mn.nai:
        exts.append(MIPExtNAI(nai=mn.nai.encode()))
    exts.extend(before_auth)
    if authenticate:
        exts.append(MIPExtMNHAAuth(spi=mn.spi if spi is None else spi, key=mn.secret, algorithm=mn.algorithm))
    exts.extend(after_auth)
    flags = (mn.flags | FLAG_D | (FLAG_T if reverse_tunnel else 0)) & ~clear_flags
    pkt = RegistrationRequest(
        **{name: (flags >> (7 - bit)) & 1 for bit, name in enumerate(RRQ_FLAG_LETTERS)},
        lifetime=lifetime,
        home_address=mn.home_address,
        home_agent=home_agent,
        care_of_address=care_of_address,
        identification=identification,
        extensions=exts,
    )
    return Request(bytes(pkt), mn.home_address, identification, lifetime, mn)


def flip_authenticator(req: Request, index: int) -> Request:
    """The same request with one octet of its (last) authenticator inverted."""
    spans = auth_extension_spans(req.data, RegistrationRequest.fixed_size)
    if not spans:
        raise ValueError("the request has no authentication extension")
    span = spans[-1]
    width = span.auth_end - span.spi_end
    pos = span.spi_end + (index % width)
    buf = bytearray(req.data)
    buf[pos] ^= 0xFF
    return replace(req, data=bytes(buf))


def udp_tunnel_request(force: bool = False) -> MIPExtUDPTunnelRequest:
    """RFC 3519 3.1 UDP Tunnel Request asking for IP-in-IP inside UDP."""
    return MIPExtUDPTunnelRequest(F=1 if force else 0, R=0, encapsulation=4)


def icmp_echo(src: str, dst: str, marker: bytes, ident: int = 0x4D49) -> bytes:
    """An ICMP echo request carrying ``marker``: the inner packet of tunnel tests."""
    from scapy.layers.inet import ICMP, IP
    from scapy.packet import Raw

    return bytes(IP(src=src, dst=dst, ttl=64) / ICMP(type=8, id=ident, seq=1) / Raw(load=marker))


def tunnel_data(inner: bytes) -> bytes:
    """RFC 3519 3.3 tunnel data message: type 4, Next Header 4 (IP-in-IP), then the packet."""
    return bytes(TunnelData(next_header=4)) + inner


def with_authenticator(req: Request, authenticator: bytes) -> Request:
    """The same request with its (last) authenticator replaced and the extension's Length made to fit.

    The variants a sloppy home agent accepts: shortened or empty (the Length
    shrinks with it, RFC 5944 3.5.1 fixes 16 octets for HMAC-MD5), all zero,
    or computed with the wrong key or over the wrong octets.
    """
    spans = auth_extension_spans(req.data, RegistrationRequest.fixed_size)
    if not spans:
        raise ValueError("the request has no authentication extension")
    span = spans[-1]
    buf = bytearray(req.data[: span.spi_end] + authenticator + req.data[span.auth_end :])
    buf[span.offset + 1] = 4 + len(authenticator)  # short extension format: Length covers SPI + authenticator
    return replace(req, data=bytes(buf))
