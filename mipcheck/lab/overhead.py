"""What tunnelling costs on the mobile node's link, measured on captured packets next to RFC 5265 5.2.

Pure functions over what :class:`~mipcheck.lab.capture.SegmentCapture` holds
(``(time, IPv4 packet, outgoing)``), so the arithmetic is tested without a lab.
Each layer is measured where it is added: a MIP tunnel as outer minus inner
IPv4 length; ESP by pairing each packet sent into the VPN's TUN with the ESP
packet that seals it (by sequence number, RFC 4303 3.3.3).
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from mipcheck.proto import minenc

from .topology import INNER_HOME_ADDRESS, OUTER_HOME_ADDRESS, XHA_ADDRESS

#: RFC 5265 5.2: maximum overhead per access mode (IP-in-IP; NAT traversal not included).
RFC5265_OVERHEAD = {"f": 0, "c": 20, "fvc": 77, "cvc": 97}
#: RFC 5265 5.2: "12 octets when MIP NAT traversal [RFC 3519] is used" (UDP 8 + Tunnel Data header 4).
MIP_NATT_OVERHEAD = 12
#: RFC 5265 5.2: the most NAT traversal adds per mode (MIP 12 per MIP layer, IPsec 8): "12+8+12 = 32" for cvc.
NAT_TRAVERSAL_OVERHEAD = {"f": 0, "c": 12, "fvc": 20, "cvc": 32}

Packets = list[tuple[float, bytes, bool]]  # (time, IPv4 packet, outgoing) as a segment capture holds them


def tunnel_overheads(packets: list[tuple[float, bytes, bool]]) -> list[dict[str, Any]]:
    """Each MIP Tunnel Data packet on a segment: outer and inner IPv4 lengths, their difference, direction."""
    found = []
    for _at, data, outgoing in packets:
        if len(data) < 20 or data[9] != 17:
            continue
        ihl = (data[0] & 0x0F) * 4
        udp = data[ihl : ihl + 8]
        if len(udp) < 8:
            continue
        sport, dport = struct.unpack("!HH", udp[:4])
        body = data[ihl + 8 :]
        if 434 not in (sport, dport) or len(body) < 24 or body[0] != 4 or body[4] >> 4 != 4:
            continue
        outer = struct.unpack("!H", data[2:4])[0]
        inner = struct.unpack("!H", body[6:8])[0]
        found.append(
            {
                "outer": outer,
                "inner": inner,
                "overhead": outer - inner,
                "direction": "mn->i-ha" if dport == 434 else "i-ha->mn",
                "outgoing": outgoing,
                "inner_protocol": body[4 + 9],
            }
        )
    return found


def _packets_of(packets: list[tuple[float, bytes, bool]], **match: Any) -> list[tuple[float, bytes]]:
    """(time, packet) of the IPv4 packets on a segment with the given source, destination, protocol, dport."""
    out = []
    for at, data, _outgoing in packets:
        if len(data) < 20:
            continue
        ihl = (data[0] & 0x0F) * 4
        if "src" in match and socket.inet_ntoa(data[12:16]) != match["src"]:
            continue
        if "dst" in match and socket.inet_ntoa(data[16:20]) != match["dst"]:
            continue
        if "protocol" in match and data[9] != match["protocol"]:
            continue
        if "dport" in match and (len(data) < ihl + 4 or struct.unpack_from("!H", data, ihl + 2)[0] != match["dport"]):
            continue
        out.append((at, data))
    return out


def _length(packet: bytes) -> int:
    return struct.unpack_from("!H", packet, 2)[0]


def ipip_overheads(packets: Packets, home_address: str) -> list[int]:
    """Outer minus inner IPv4 length of each IP-in-IP packet (RFC 2003) carrying ICMP from or to ``home_address``."""
    found = []
    for _at, p in _packets_of(packets, protocol=4):
        ihl = (p[0] & 0x0F) * 4
        inner = p[ihl:]
        if (
            len(inner) >= 21
            and inner[9] == 1
            and home_address in (socket.inet_ntoa(inner[12:16]), socket.inet_ntoa(inner[16:20]))
        ):
            found.append(_length(p) - _length(inner))
    return found


def minimal_overheads(packets: Packets, home_address: str) -> list[int]:
    """The forwarding header of each minimal encapsulation packet (RFC 2004: 8, or 12 with S) for ``home_address``."""
    found = []
    for _at, p in _packets_of(packets, protocol=55):
        original = minenc.decapsulate(p)
        if original and home_address in (
            socket.inet_ntoa(original.packet[12:16]),
            socket.inet_ntoa(original.packet[16:20]),
        ):
            found.append(original.overhead)
    return found


def _i_mip_inner(packet: bytes) -> bytes | None:
    """The user packet an i-MIP packet carries: in Tunnel Data (UDP, RFC 3519) or IP-in-IP (RFC 2003)."""
    ihl = (packet[0] & 0x0F) * 4 if packet else 0
    if len(packet) >= ihl + 8 + 4 + 20 and packet[9] == 17 and packet[ihl + 8] == 4:
        return packet[ihl + 12 :]
    if len(packet) >= ihl + 20 and packet[9] == 4:
        return packet[ihl:]
    return None


def _unrouted(packet: bytes) -> bytes:
    """The packet without TTL and checksums: the same packet before and after a router forwarded it.

    A UDP checksum too: a packet captured as it leaves a veth may still carry the partial checksum the
    kernel leaves to the (virtual) hardware.
    """
    ihl = (packet[0] & 0x0F) * 4
    if len(packet) >= ihl + 8 and packet[9] == 17:
        return packet[:8] + packet[9:10] + packet[12 : ihl + 6] + packet[ihl + 8 :]
    return packet[:8] + packet[9:10] + packet[12:]


def _carriers(packets: Packets, kind: str) -> dict[bytes, int]:
    """x-MIP packets to the x-HA by what they carry: ``udp`` Tunnel Data (RFC 3519) or ``ipip`` (RFC 2003)."""
    carried: dict[bytes, int] = {}
    if kind == "udp":
        for _at, p in _packets_of(packets, dst=XHA_ADDRESS, protocol=17, dport=434):
            if len(p) >= 28 + 4 + 20 and p[28] == 4:
                carried.setdefault(_unrouted(p[32:]), _length(p))
    else:
        for _at, p in _packets_of(packets, dst=XHA_ADDRESS, protocol=4):
            ihl = (p[0] & 0x0F) * 4
            if len(p) >= ihl + 20:
                carried.setdefault(_unrouted(p[ihl:]), _length(p))
        for _at, p in _packets_of(packets, dst=XHA_ADDRESS, protocol=55):  # minimal encapsulation (RFC 2004)
            original = minenc.decapsulate(p)
            if original:
                carried.setdefault(_unrouted(original.packet), _length(p))
    return carried


def vpn_overhead(xmip: Packets, esp_segment: Packets, ipsec0: Packets, *, xmip_kind: str = "udp") -> dict[str, Any]:
    """Modes cvc and fvc, per echo request the MN sent: i-MIP, ESP (in UDP) and x-MIP, each measured where added.

    i-MIP on ``ipsec0`` (Tunnel Data from the VPN-TIA, its inner packet the echo request); ESP where the
    VPN client's packets leave (cvc: ``tun0``, into the node's x-MIP; fvc: the MN's link, to the x-FA):
    charon seals what the kernel sends into ``ipsec0`` in order, one ESP packet each with the next sequence
    number (RFC 4303 3.3.3), so the n-th packet sent into ``ipsec0`` is the n-th ESP packet by sequence number
    (capture times on two interfaces are too close to pair by); x-MIP where it is added (cvc: the MN's link,
    Tunnel Data; fvc: between the x-FA and the x-HA, IP-in-IP): the packet whose inner packet is that ESP
    packet (compared without TTL and checksum, which a forwarding agent changes). ``on_mn_link``: what the
    MN's own link carries (fvc: without x-MIP, which the x-FA adds).
    """
    into_vpn = [p for _at, p, outgoing in ipsec0 if outgoing and len(p) >= 20]
    sealed: list[tuple[bytes, int, bytes]] = []  # (SPI, sequence number, packet)
    for _at, p in _packets_of(esp_segment, src=OUTER_HOME_ADDRESS, protocol=17, dport=4500):
        if len(p) > 36 and p[28:32] != bytes(4):  # ESP, not IKE (RFC 3948 2.2: the non-ESP marker is zeros)
            sealed.append((p[28:32], struct.unpack_from("!I", p, 32)[0], p))
    first_seen = {spi: i for i, (spi, _seq, _p) in reversed(list(enumerate(sealed)))}
    sealed.sort(key=lambda e: (first_seen[e[0]], e[1]))
    carried = _carriers(xmip, xmip_kind)
    layers: list[dict[str, int]] = []
    for imip, (_spi, _seq, esp) in zip(into_vpn, sealed, strict=False):
        inner = _i_mip_inner(imip)
        outer = carried.get(_unrouted(esp))
        is_echo_request = inner is not None and len(inner) > 20 and inner[9] == 1 and inner[(inner[0] & 0x0F) * 4] == 8
        if not is_echo_request or outer is None:
            continue
        assert inner is not None
        user = _length(inner)
        layer = {
            "user_packet": user,
            "i_mip": _length(imip) - user,
            "esp": _length(esp) - _length(imip),
            "x_mip": outer - _length(esp),
            "total": outer - user,
        }
        layer["on_mn_link"] = layer["total"] if xmip_kind == "udp" else layer["i_mip"] + layer["esp"]
        layers.append(layer)
    return {
        "per_packet": layers[:20],
        "measured": sorted({layer["on_mn_link"] for layer in layers}),
        "total": sorted({layer["total"] for layer in layers}),
    }


def cvc_overhead(eth0: Packets, tun0: Packets, ipsec0: Packets, *, ipip: bool = False) -> dict[str, Any]:
    """Mode cvc (:func:`vpn_overhead`): ESP on ``tun0``, x-MIP on the MN's link (Tunnel Data, or IP-in-IP)."""
    layers = vpn_overhead(eth0, tun0, ipsec0, xmip_kind="ipip" if ipip else "udp")
    for layer in layers["per_packet"]:  # x-MIP is the node's own here, on the MN's link either way
        layer["on_mn_link"] = layer["total"]
    layers["measured"] = sorted({layer["total"] for layer in layers["per_packet"]})
    return layers


def plain_overhead(mn_link: Packets, fa_ha: Packets, home_address: str) -> dict[str, Any]:
    """Mode f: the MN's echo requests cross its link as they are (0); the i-FA tunnels them IP-in-IP (20)."""
    plain = [p for _at, p in _packets_of(mn_link, src=home_address, protocol=1) if p[(p[0] & 0x0F) * 4] == 8]
    tunnelled = []
    for _at, p in _packets_of(fa_ha, protocol=4):
        ihl = (p[0] & 0x0F) * 4
        inner = p[ihl:]
        if len(inner) >= 21 and inner[9] == 1 and socket.inet_ntoa(inner[12:16]) == home_address:
            tunnelled.append(_length(p) - _length(inner))
    minimal = minimal_overheads(fa_ha, home_address)
    return {
        "measured": [0] if plain else [],
        "mn_link_echo_requests": len(plain),
        "fa_to_ha_ip_in_ip": sorted(set(tunnelled)),
        "fa_to_ha_minimal": sorted(set(minimal)),
        "fa_to_ha_packets": len(tunnelled) + len(minimal),
    }


def overhead(
    mode: str, captures: dict[str, list[tuple[float, bytes, bool]]], encapsulation: str = "udp"
) -> dict[str, Any]:
    """What each user packet costs on the MN's link, next to RFC 5265 5.2 (``encapsulation``: the node's tunnels)."""
    rfc = {
        "rfc5265_5_2": RFC5265_OVERHEAD[mode],
        "rfc5265_5_2_with_nat_traversal": RFC5265_OVERHEAD[mode] + NAT_TRAVERSAL_OVERHEAD[mode],
    }
    if mode == "c" and encapsulation == "ipip":
        found = ipip_overheads(captures["mn-eth0"], INNER_HOME_ADDRESS)
        return {
            "segment": "mn-eth0 (MN - i-HA, internal network), IP-in-IP",
            "measured": sorted(set(found)),
            "tunnel_data_packets": len(found),
            **rfc,
            "rfc5265_5_2_with_mip_nat_traversal": RFC5265_OVERHEAD[mode] + MIP_NATT_OVERHEAD,
            "why": "IP-in-IP (RFC 2003): one IPv4 header, 20 octets, as RFC 5265 5.2 counts it",
        }
    if mode == "c":
        overheads = tunnel_overheads(captures["mn-eth0"])
        data = [o for o in overheads if o["inner_protocol"] == 1]
        return {
            "segment": "mn-eth0 (MN - i-HA, internal network)",
            "measured": sorted({o["overhead"] for o in data}),
            "tunnel_data_packets": len(data),
            "packets": overheads[:20],
            **rfc,
            "rfc5265_5_2_with_mip_nat_traversal": RFC5265_OVERHEAD[mode] + MIP_NATT_OVERHEAD,
            "why": "the reference agents tunnel in UDP (RFC 3519: IPv4 20 + UDP 8 + Tunnel Data header 4 = 32), "
            "RFC 5265 5.2 counts IP-in-IP (20) and adds 12 for MIP NAT traversal",
        }
    if mode == "f":
        return {
            "segment": "mn-eth0 (MN - i-FA, the i-FA's link); i-fa-int (i-FA - i-HA, IP-in-IP)",
            **plain_overhead(captures["mn-eth0"], captures["i-fa-int"], INNER_HOME_ADDRESS),
            **rfc,
            "why": "the foreign agent is the tunnel's end: the MN's link carries its packets as they are (5.2: 0); "
            "the i-FA reverse-tunnels them to the i-HA in IP-in-IP (RFC 2003, RFC 3024: 20 octets, not on the "
            "MN's link)",
        }
    if mode == "fvc":
        layers = vpn_overhead(captures["x-fa-ext"], captures["mn-eth0"], captures["mn-ipsec0"], xmip_kind="ipip")
        return {
            "segment": "mn-eth0 (MN - x-FA); layers: mn-ipsec0 (i-MIP), mn-eth0 (ESP), x-fa-ext (x-MIP IP-in-IP)",
            **layers,
            **rfc,
            "why": "on the MN's link: i-MIP in UDP (RFC 3519: 32 where 5.2 counts IP-in-IP 20 + 12 for MIP NAT "
            "traversal) in ESP in UDP 4500 (the lab's AES-128-CBC and HMAC-SHA-256-128: see cvc); x-MIP is the "
            "x-FA's IP-in-IP (20) beyond the MN's link. 5.2: 77, 97 with NAT traversal",
        }
    layers = cvc_overhead(captures["mn-eth0"], captures["mn-tun0"], captures["mn-ipsec0"], ipip=encapsulation == "ipip")
    return {
        "segment": "mn-eth0 (MN - x-HA, external network); layers measured on mn-ipsec0 (i-MIP), mn-tun0 (ESP)",
        **layers,
        **rfc,
        "why": "i-MIP and x-MIP in UDP (RFC 3519: 32 each where 5.2 counts IP-in-IP 20 + 12 for MIP NAT "
        "traversal); ESP in UDP 4500 (RFC 3948: 8 more than 5.2's ESP) with the lab's AES-128-CBC (16-octet IV, "
        "padding to 16) and HMAC-SHA-256-128 (16-octet ICV) where 5.2 assumes a 64-bit block cipher (8-octet IV, "
        "7 octets of padding) and a 12-octet ICV: 5.2's 97 + 32 = 129 is its worst case with NAT traversal",
    }
