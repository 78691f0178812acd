"""Per-layer packet overhead of each RFC 5265 access mode, measured on built packets.

RFC 5265 section 5.2 gives f 0, c 20, fvc 77 and cvc 97 octets (129 for cvc
with MIP, IPsec and MIP NAT traversal) for a 64-bit block cipher with an
8-octet IV, HMAC-SHA1-96 and 7 octets of padding. Here nothing is a constant:
each mode's packet is built with the Scapy layers around the same user packet
({3a} of appendix A), ESP by ``scapy.layers.ipsec``, and every figure is a
difference of ``len(bytes(...))``. The ESP breakdown (SPI and sequence number,
IV, padding, ICV) is read back from the built ESP packet.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from . import scenarios as s
from .keys import EspSA

CIPHERS: dict[str, tuple[bytes, str]] = {
    # name -> (test key, scapy name); block and IV sizes come from scapy's CryptAlgo
    "des-cbc": (bytes(range(1, 9)), "DES"),  # RFC 2405: 64-bit block, 8-octet IV
    "3des-cbc": (bytes(range(1, 25)), "3DES"),  # RFC 2451: 64-bit block, 8-octet IV
    "aes-cbc": (bytes(range(1, 17)), "AES-CBC"),  # RFC 3602: 128-bit block, 16-octet IV
}
INTEGRITY = "hmac-sha1-96"  # RFC 2404: 12-octet ICV, as RFC 5265 5.2 assumes
INTEGRITY_KEY = bytes(range(100, 120))
USER_HEADERS = 28  # the user packet's own IPv4 + UDP headers

MODES = ("f", "c", "fvc", "cvc", "cvc-natt")
DESCRIPTIONS = {
    "f": "i-MIP with FA-CoA: the MN sends the plain user packet to the FA",
    "c": "i-MIP with co-CoA: IP-in-IP reverse tunnel to the i-HA",
    "fvc": "x-MIP with FA-CoA, VPN-TIA as i-MIP co-CoA: IP-in-IP inside ESP",
    "cvc": "x-MIP with co-CoA, VPN-TIA as i-MIP co-CoA: IP-in-IP inside ESP inside IP-in-IP",
    "cvc-natt": "cvc with MIP (RFC 3519), IPsec (RFC 3948) and MIP NAT traversal",
}


@dataclass
class Layer:
    name: str
    octets: int
    detail: dict[str, int] = field(default_factory=dict)


@dataclass
class ModeOverhead:
    mode: str
    description: str
    payload: int  # octets of the user packet {3a}, headers included
    packet: int  # octets of the packet the MN sends
    layers: list[Layer]
    total: int

    def as_dict(self) -> dict:
        return asdict(self)


def esp_spec(cipher: str) -> EspSA:
    key, _name = CIPHERS[cipher]
    return EspSA(0x5265, cipher, key, INTEGRITY, INTEGRITY_KEY)


def block_and_iv(cipher: str) -> tuple[int, int]:
    from scapy.layers.ipsec import CRYPT_ALGOS

    algo = CRYPT_ALGOS[CIPHERS[cipher][1]]
    return algo.block_size, algo.iv_size


def worst_case_payload(mode: str, cipher: str, minimum: int = 64) -> int:
    """Smallest user packet >= ``minimum`` whose ESP padding is block size - 1 (RFC 5265 5.2: 7 for 64-bit ciphers)."""
    if mode in ("f", "c"):
        return minimum
    block, _iv = block_and_iv(cipher)
    inner = 20 if mode in ("fvc", "cvc") else 32  # i-MIP header inside ESP: IP-in-IP, or IP/UDP/tunnel data
    size = minimum
    while (inner + size + 2 + block - 1) % block:  # RFC 4303 2.4: payload + padding + 2 fills whole blocks
        size += 1
    return size


def _esp_layer(inner_len: int, esp_len: int, cipher: str, natt: bool) -> Layer:
    """Octets ESP adds, split as RFC 5265 5.2 splits them."""
    _block, iv = block_and_iv(cipher)
    icv = 12
    header = 20 + (8 if natt else 0)
    padding = esp_len - header - 8 - iv - inner_len - 2 - icv
    detail = {"ip": 20}
    if natt:
        detail["udp_4500"] = 8
    detail.update({"spi_and_sequence": 8, "iv": iv, "padding": padding, "pad_length_and_next_header": 2, "icv": icv})
    name = "ESP in UDP 4500 (RFC 3948)" if natt else "ESP, tunnel mode"
    return Layer(name, esp_len - inner_len, detail)


def measure(mode: str, cipher: str = "3des-cbc", payload: int | None = None) -> ModeOverhead:
    if mode not in MODES:
        raise ValueError(f"unknown access mode {mode!r}")
    if cipher not in CIPHERS:
        raise ValueError(f"unknown cipher {cipher!r}")
    size = worst_case_payload(mode, cipher) if payload is None else payload
    net = s.NET
    user = s.user_packet(net.i_hoa, net.cn, size)
    user_len = len(bytes(user))
    layers: list[Layer] = []
    if mode == "f":
        packet = user
    elif mode == "c":
        packet = s.ipip(net.internal_coa, net.i_ha, user)
        layers.append(Layer("i-MIP IP-in-IP", len(bytes(packet)) - user_len))
    else:
        natt = mode == "cvc-natt"
        spec = esp_spec(cipher)
        if natt:
            i_mip = s.udp_tunnel(net.vpn_tia, net.i_ha, user)
            layers.append(Layer("i-MIP UDP tunnel (RFC 3519)", len(bytes(i_mip)) - user_len))
        else:
            i_mip = s.ipip(net.vpn_tia, net.i_ha, user)
            layers.append(Layer("i-MIP IP-in-IP", len(bytes(i_mip)) - user_len))
        esp = s.esp_tunnel(i_mip, spec, net.x_hoa, net.vpn_gw, 1, natt=natt)
        layers.append(_esp_layer(len(bytes(i_mip)), len(bytes(esp)), cipher, natt))
        if mode == "fvc":
            packet = esp
        elif natt:
            packet = s.udp_tunnel(net.external_coa, net.x_ha, esp)
            layers.append(Layer("x-MIP UDP tunnel (RFC 3519)", len(bytes(packet)) - len(bytes(esp))))
        else:
            packet = s.ipip(net.external_coa, net.x_ha, esp)
            layers.append(Layer("x-MIP IP-in-IP", len(bytes(packet)) - len(bytes(esp))))
    packet_len = len(bytes(packet))
    return ModeOverhead(mode, DESCRIPTIONS[mode], user_len, packet_len, layers, packet_len - user_len)


def measure_all(cipher: str = "3des-cbc", payload: int | None = None) -> list[ModeOverhead]:
    return [measure(mode, cipher, payload) for mode in MODES]
