"""ESP in UDP between the mobile node's x-HoA and the VPN gateway (RFC 4303 tunnel mode, RFC 3948).

Why Scapy here: writing ESP ciphers twice is how a tester and a reference
device come to share a bug; Scapy's :class:`scapy.layers.ipsec.SecurityAssociation`
is independent of mipcheck's own code. Scapy is imported lazily, by this
module only, when a tunnel is made, so the detection core and the node's
plain code stay Scapy-free (tests/test_proto_imports.py). The SAs are
static (no IKE on loopback, docs/design/mn-loopback.md): SPI
``vpn.spi_out`` from the node, ``vpn.spi_in`` toward it, the profile's
algorithms (Scapy's names) and keys for both directions.
"""

from __future__ import annotations

import functools
from typing import Any

from mipcheck.errors import ConfigError
from mipcheck.proto.ip import PROTO_IPIP, PROTO_UDP, UDP_HEADER, parse_ipv4, parse_udp

from .profile import NATT_PORT, VpnPeer

_NON_ESP_MARKER = b"\0\0\0\0"  # RFC 3948 2.2: IKE on port 4500 starts with four zero octets


@functools.cache
def _opaque_ip() -> Any:
    """Scapy's IP whose payload stays raw octets.

    Scapy's SA re-dissects the packets it handles; the inner packet of ESP
    would be dissected down to Mobile IP messages (milliseconds each) only to
    be turned back into the octets it came from. An IP header that does not
    guess its payload keeps ESP the same on the wire, and what ``open``
    returns is exactly what was encrypted.
    """
    from scapy.config import conf
    from scapy.layers.inet import IP

    class OpaqueIP(IP):
        name = "IP (payload not dissected)"

        def guess_payload_class(self, payload: bytes) -> Any:
            return conf.raw_layer

    return OpaqueIP


class EspTunnel:
    """The node's end of the VPN: ``seal`` an inner IPv4 packet, ``open`` what the gateway sent."""

    def __init__(self, vpn: VpnPeer, outer_src: str, mn_port_4500: int = NATT_PORT) -> None:
        from scapy.layers.inet import UDP
        from scapy.layers.ipsec import ESP, SecurityAssociation

        ip = _opaque_ip()
        self.vpn = vpn
        self.outer_src = outer_src
        self.port = mn_port_4500
        self.sealed = self.opened = self.rejected = 0

        def sa(spi: int, src: str, dst: str, sport: int, dport: int) -> Any:
            try:
                return SecurityAssociation(
                    ESP,
                    spi=spi,
                    crypt_algo=vpn.encryption,
                    crypt_key=vpn.encryption_key.reveal() or None,
                    auth_algo=vpn.integrity,
                    auth_key=vpn.integrity_key.reveal() or None,
                    tunnel_header=ip(src=src, dst=dst),  # RFC 4303 tunnel mode: the outer header
                    nat_t_header=UDP(sport=sport, dport=dport),  # RFC 3948 2.1: UDP-encapsulated ESP
                )
            except (TypeError, ValueError) as exc:  # key sizes are checked by the profile; say which anyway
                raise ConfigError("vpn", f"Scapy refuses the ESP SA: {exc}") from None

        self._out = sa(vpn.spi_out, outer_src, vpn.gateway, mn_port_4500, vpn.port)
        self._in = sa(vpn.spi_in, vpn.gateway, outer_src, vpn.port, mn_port_4500)
        self._ip, self._udp, self._esp = ip, UDP, ESP

    def seal(self, inner_ipv4: bytes) -> bytes:
        """IPv4(x-HoA -> gateway)/UDP(4500 -> gateway port, checksum 0)/ESP(spi_out, next header 4)."""
        if parse_ipv4(inner_ipv4) is None:
            raise ValueError("ESP tunnel mode carries IPv4 packets only")
        packet = self._out.encrypt(self._ip(inner_ipv4))
        self.sealed += 1
        return bytes(packet)

    def open(self, ipv4_bytes: bytes) -> bytes | None:
        """The inner IPv4 packet of IPv4(gateway -> x-HoA)/UDP/ESP(spi_in); None for anything else."""
        ip = parse_ipv4(ipv4_bytes)
        if ip is None or ip.protocol != PROTO_UDP or ip.src != self.vpn.gateway or ip.dst != self.outer_src:
            return self._reject()
        udp = parse_udp(ip.payload, ip.src, ip.dst)
        if udp is None or (udp.src_port, udp.dst_port) != (self.vpn.port, self.port):
            return self._reject()
        esp = udp.payload
        if len(esp) < 8 or esp[:4] == _NON_ESP_MARKER or int.from_bytes(esp[:4], "big") != self.vpn.spi_in:
            return self._reject()
        try:
            outer = self._ip(ipv4_bytes[: ip.header_length])
            outer.remove_payload()
            udp_layer = self._udp(ip.payload[: UDP_HEADER.size])
            udp_layer.remove_payload()
            outer = outer / udp_layer / self._esp(esp)  # whatever the ports, the rest is ESP
            inner = self._in.decrypt(outer)  # verifies SPI and ICV; the payload comes back as raw octets
            data = bytes(inner)
        except Exception:  # anything Scapy raises on a bad packet means "not ours"
            return self._reject()
        if outer.proto != PROTO_IPIP or parse_ipv4(data) is None:
            return self._reject()
        self.opened += 1
        return data

    def _reject(self) -> None:
        self.rejected += 1
        return None
