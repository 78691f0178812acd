"""RFC 5265 packets, built for real: one test topology, its keys, and each access mode's encapsulation.

The golden captures (``pcaps/make_pcaps.py``), ``mipcheck overhead`` and the
tests all build packets here, so the overhead figures come out of the same
octets the captures hold. Everything is deterministic: fixed addresses, keys,
identifications and ESP initialisation vectors (derived from SPI and sequence
number), so a rebuild gives the same bytes.

Topology (RFC 5265 section 2, figure 1; addresses from RFC 1918 and RFC 5737)::

    MN i-HoA 10.20.0.50 (home address at the i-HA)      i-HA 10.20.0.1
    internal co-CoA 10.30.0.50, internal FA (i-FA) 10.40.0.1
    external co-CoA 192.0.2.10, external FA (x-FA) 192.0.2.1
    x-HA 198.51.100.1, x-HoA 198.51.100.50, VPN gateway 198.51.100.2
    VPN-TIA 10.99.0.50 (VPN tunnel inner address)       CN 203.0.113.7
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from mipcheck.layers import (
    AgentAdvertisement,
    MIPExtMNHAAuth,
    MIPExtNAI,
    MIPExtTNC,
    MIPExtUDPTunnelReply,
    MIPExtUDPTunnelRequest,
    MobilityAgentAdvertisement,
    RegistrationReply,
    RegistrationRequest,
    RouterAddress,
    TunnelData,
    timestamp_identification,
)

from .keys import ESP_CIPHERS, ESP_INTEGRITY, EspSA, MipKey


@dataclass(frozen=True)
class Topology:
    i_hoa: str = "10.20.0.50"
    i_ha: str = "10.20.0.1"
    internal_coa: str = "10.30.0.50"
    i_fa: str = "10.40.0.1"
    external_coa: str = "192.0.2.10"
    x_fa: str = "192.0.2.1"
    x_ha: str = "198.51.100.1"
    x_hoa: str = "198.51.100.50"
    vpn_gw: str = "198.51.100.2"
    vpn_tia: str = "10.99.0.50"
    cn: str = "203.0.113.7"
    nai: bytes = b"mn1@example.com"


NET = Topology()

# Test keys: documented in pcaps/README.md and pcaps/keys.toml. Never use them for anything real.
I_HA_KEY = MipKey(256, bytes.fromhex("6d6970636865636b2d692d68612d6b65"), "hmac-md5")  # "mipcheck-i-ha-ke"
X_HA_KEY = MipKey(257, bytes.fromhex("6d6970636865636b2d782d68612d6b65"), "hmac-md5")  # "mipcheck-x-ha-ke"
ESP_OUT = EspSA(  # MN -> VPN gateway
    0x00001001,
    "3des-cbc",
    bytes.fromhex("0123456789abcdef23456789abcdef01456789abcdef0123"),
    "hmac-sha1-96",
    bytes.fromhex("00112233445566778899aabbccddeeff01234567"),
)
ESP_IN = EspSA(  # VPN gateway -> MN
    0x00002001,
    "3des-cbc",
    bytes.fromhex("fedcba9876543210edcba9876543210fdcba9876543210fe"),
    "hmac-sha1-96",
    bytes.fromhex("ffeeddccbbaa99887766554433221100fedcba98"),
)

T0 = 1212278400.0  # 2008-06-01 00:00:00 UTC, the month RFC 5265 was published
LIFETIME = 1800
MN_PORT = 49152  # "ANY" source port of the mobile node (RFC 5265 appendix A)
USER_PORT = 7  # user protocol: UDP echo


def esp_iv(spi: int, seq: int, size: int) -> bytes:
    """Deterministic, per-packet IV: reproducible captures need it (RFC 4303 wants unpredictable ones in real use)."""
    return hashlib.sha256(f"mipcheck-iv:{spi}:{seq}".encode()).digest()[:size]


def security_association(spec: EspSA, src: str, dst: str, natt: bool = False) -> SecurityAssociation:
    """Tunnel-mode SA between two addresses; with ``natt`` ESP rides in UDP 4500 (RFC 3948 2.1)."""
    return SecurityAssociation(
        ESP,
        spi=spec.spi,
        crypt_algo=ESP_CIPHERS[spec.encryption],
        crypt_key=spec.encryption_key or None,
        auth_algo=ESP_INTEGRITY[spec.authentication],
        auth_key=spec.authentication_key or None,
        tunnel_header=IP(src=src, dst=dst),
        nat_t_header=UDP(sport=4500, dport=4500) if natt else None,
    )


def esp_tunnel(inner: Packet, spec: EspSA, src: str, dst: str, seq: int, natt: bool = False) -> Packet:
    """IP(src, dst) / ESP(inner) - with UDP 4500 between them when ``natt`` (RFC 3948)."""
    sa = security_association(spec, src, dst, natt)
    iv = esp_iv(spec.spi, seq, sa.crypt_algo.iv_size)
    return IP(bytes(sa.encrypt(IP(bytes(inner)), seq_num=seq, iv=iv)))


def ipip(src: str, dst: str, inner: Packet) -> Packet:
    """IP-in-IP (RFC 2003), as Mobile IP tunnels use by default."""
    return IP(bytes(IP(src=src, dst=dst, proto=4, id=0) / inner))


def udp_tunnel(src: str, dst: str, inner: Packet, sport: int = MN_PORT, dport: int = 434) -> Packet:
    """Mobile IP UDP tunnelling (RFC 3519 3.3): IP / UDP / tunnel data (type 4, next header 4) / inner."""
    return IP(bytes(IP(src=src, dst=dst, id=0) / UDP(sport=sport, dport=dport) / TunnelData(next_header=4) / inner))


def user_packet(src: str = NET.i_hoa, dst: str = NET.cn, size: int = 84, reply: bool = False) -> Packet:
    """{3a}/{3e}: the application's own datagram; ``size`` octets including its IP and UDP headers."""
    data = bytes((i * 7 + 1) & 0xFF for i in range(max(0, size - 28)))
    ports = (USER_PORT, MN_PORT) if reply else (MN_PORT, USER_PORT)
    return IP(bytes(IP(src=src, dst=dst, id=0) / UDP(sport=ports[0], dport=ports[1]) / Raw(data)))


def identification(at: float) -> int:
    return timestamp_identification(at, low_bits=int(at * 1000) & 0xFFFFFFFF)


def rrq(
    home_address: str,
    home_agent: str,
    care_of_address: str,
    key: MipKey,
    at: float,
    *,
    colocated: bool = True,
    udp_tunnel_request: bool = False,
) -> RegistrationRequest:
    """RRQ with reverse tunnelling (T, RFC 5265 2.3/2.4 'SHOULD be set'), NAI and MN-HA authentication."""
    extensions = [MIPExtNAI(nai=NET.nai)]
    if udp_tunnel_request:
        extensions.append(MIPExtUDPTunnelRequest(encapsulation=4))
    extensions.append(MIPExtMNHAAuth(spi=key.spi, key=key.secret, algorithm=key.algorithm))
    return RegistrationRequest(
        D=1 if colocated else 0,
        T=1,
        lifetime=LIFETIME,
        home_address=home_address,
        home_agent=home_agent,
        care_of_address=care_of_address,
        identification=identification(at),
        extensions=extensions,
    )


def rrp(
    request: RegistrationRequest,
    key: MipKey,
    *,
    tnc: bool,
    code: int = 0,
    udp_tunnel_reply: bool = False,
) -> RegistrationReply:
    """Reply; the i-HA puts TNC before the MN-HA authenticator (RFC 5265 3.4, 4.3) so it is covered."""
    extensions = []
    if udp_tunnel_reply:
        extensions.append(MIPExtUDPTunnelReply(code=0, keepalive=110))
    if tnc:
        extensions.append(MIPExtTNC())
    extensions.append(MIPExtMNHAAuth(spi=key.spi, key=key.secret, algorithm=key.algorithm))
    return RegistrationReply(
        code=code,
        lifetime=LIFETIME,
        home_address=request.home_address,
        home_agent=request.home_agent,
        identification=request.identification,
        extensions=extensions,
    )


def mip_datagram(src: str, dst: str, sport: int, dport: int, message: Packet) -> Packet:
    return IP(bytes(IP(src=src, dst=dst, id=0) / UDP(sport=sport, dport=dport) / message))


def agent_advertisement(fa: str, care_of: str, seq: int = 1) -> Packet:
    """RFC 5944 2.1: ICMP router advertisement with a Mobility Agent Advertisement extension (F, T set)."""
    adv = AgentAdvertisement(
        code=16,
        lifetime=1800,
        addresses=[RouterAddress(address=fa, preference=0)],
        extensions=[
            MobilityAgentAdvertisement(
                sequence=seq, registration_lifetime=LIFETIME, R=1, F=1, T=1, care_of_addresses=[care_of]
            )
        ],
    )
    return IP(bytes(IP(src=fa, dst="224.0.0.1", ttl=1, id=0) / adv))


def ethernet(packet: Packet, outbound: bool = True) -> bytes:
    """Frame an IP packet on the mobile node's access link (locally administered MACs)."""
    mn, router = "02:00:00:00:00:0a", "02:00:00:00:00:01"
    src, dst = (mn, router) if outbound else (router, mn)
    return bytes(Ether(src=src, dst=dst, type=0x0800) / packet)


def echo_probe(src: str, dst: str) -> Packet:
    return IP(bytes(IP(src=src, dst=dst, id=0) / ICMP(type=8, id=1, seq=1)))
