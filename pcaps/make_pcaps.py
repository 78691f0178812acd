#!/usr/bin/env python3
"""Write the golden captures of pcaps/ (see pcaps/README.md for what each holds).

Deterministic: fixed addresses, keys, timestamps, identifications and ESP IVs
(mipcheck.capture.scenarios), so running it again gives byte-identical files;
tests/test_pcaps.py regenerates into a temporary folder and compares.

    python pcaps/make_pcaps.py [--out DIR]
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable
from pathlib import Path

from mipcheck.layers import (
    MinimalEncapsulation,
    MIPExtMNHAAuth,
    MIPExtTNC,
    RegistrationReply,
    RegistrationRequest,
    TunnelData,
)
from scapy.layers.inet import IP, UDP
from scapy.layers.isakmp import ISAKMP
from scapy.layers.l2 import CookedLinux, CookedLinuxV2
from scapy.packet import Packet, Raw

from mipcheck.capture import scenarios as s
from mipcheck.capture.writer import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    PcapngWriter,
    PcapWriter,
)

N = s.NET
ANY = s.MN_PORT
FA_PORT = 49153  # source port a foreign agent relays from


# -- framing -----------------------------------------------------------------


def sll(packet: Packet, outbound: bool = True) -> bytes:
    """Linux cooked v1 (LINKTYPE_LINUX_SLL): packet type 4 = sent by us, 0 = to us."""
    head = CookedLinux(pkttype=4 if outbound else 0, lladdrtype=1, lladdrlen=6, src=bytes.fromhex("02000000000a0000"), proto=0x0800)
    return bytes(head) + bytes(packet)


def sll2(packet: Packet, outbound: bool = True) -> bytes:
    """Linux cooked v2 (LINKTYPE_LINUX_SLL2)."""
    head = CookedLinuxV2(proto=0x0800, ifindex=2, lladdrtype=1, pkttype=4 if outbound else 0, lladdrlen=6, src=bytes.fromhex("02000000000a0000"))
    return bytes(head) + bytes(packet)


def write_pcap(path: Path, linktype: int, frames: list[tuple[float, bytes]]) -> None:
    buf = io.BytesIO()
    writer = PcapWriter(buf, linktype)
    for at, data in frames:
        writer.write(data, at)
    path.write_bytes(buf.getvalue())


def write_pcapng(path: Path, linktype: int, frames: list[tuple[float, bytes]]) -> None:
    buf = io.BytesIO()
    writer = PcapngWriter(buf)
    for at, data in frames:
        writer.write(data, at, linktype)
    path.write_bytes(buf.getvalue())


# -- common pieces -------------------------------------------------------------


def i_ha_registration(at: float, coa: str, *, colocated: bool = True) -> tuple[RegistrationRequest, RegistrationReply]:
    request = s.rrq(N.i_hoa, N.i_ha, coa, s.I_HA_KEY, at, colocated=colocated)
    return request, s.rrp(request, s.I_HA_KEY, tnc=True)


def x_ha_registration(at: float, coa: str, *, colocated: bool = True, natt: bool = False) -> tuple[RegistrationRequest, RegistrationReply]:
    request = s.rrq(N.x_hoa, N.x_ha, coa, s.X_HA_KEY, at, colocated=colocated, udp_tunnel_request=natt)
    return request, s.rrp(request, s.X_HA_KEY, tnc=False, udp_tunnel_reply=natt)


def vpn_out(inner: Packet, seq: int, natt: bool = False) -> Packet:
    """x-HoA -> VPN gateway, ESP tunnel mode (MN's outbound SA)."""
    return s.esp_tunnel(inner, s.ESP_OUT, N.x_hoa, N.vpn_gw, seq, natt)


def vpn_in(inner: Packet, seq: int, natt: bool = False) -> Packet:
    """VPN gateway -> x-HoA (gateway's outbound SA)."""
    return s.esp_tunnel(inner, s.ESP_IN, N.vpn_gw, N.x_hoa, seq, natt)


def ike_main_mode() -> Packet:
    """First IKEv1 main-mode header (RFC 2408 3.1), no payloads: the {1a} stand-in."""
    return ISAKMP(init_cookie=bytes.fromhex("6d69706368656b31"), resp_cookie=bytes(8), next_payload=0, exch_type=2)


# -- captures ------------------------------------------------------------------


def access_mode_c() -> list[tuple[float, bytes]]:
    """Inside, co-located care-of address: register with the i-HA directly, reverse-tunnel user data."""
    t = s.T0
    request, reply = i_ha_registration(t, N.internal_coa)
    user_out = s.user_packet(N.i_hoa, N.cn)
    user_in = s.user_packet(N.cn, N.i_hoa, reply=True)
    return [
        (t, s.ethernet(s.mip_datagram(N.internal_coa, N.i_ha, ANY, 434, request))),
        (t + 0.002, s.ethernet(s.mip_datagram(N.i_ha, N.internal_coa, 434, ANY, reply), outbound=False)),
        (t + 1.0, s.ethernet(s.ipip(N.internal_coa, N.i_ha, user_out))),
        (t + 1.010, s.ethernet(s.ipip(N.i_ha, N.internal_coa, user_in), outbound=False)),
    ]


def access_mode_f() -> list[tuple[float, bytes]]:
    """Inside, through the internal FA: advertisement, RRQ/RRP on both legs, user data on both legs."""
    t = s.T0
    request, reply = i_ha_registration(t + 0.5, N.i_fa, colocated=False)
    user_out = s.user_packet(N.i_hoa, N.cn)
    user_in = s.user_packet(N.cn, N.i_hoa, reply=True)
    return [
        (t, s.ethernet(s.agent_advertisement(N.i_fa, N.i_fa), outbound=False)),
        (t + 0.5, s.ethernet(s.mip_datagram(N.i_hoa, N.i_fa, ANY, 434, request))),
        (t + 0.501, s.ethernet(s.mip_datagram(N.i_fa, N.i_ha, FA_PORT, 434, request))),
        (t + 0.503, s.ethernet(s.mip_datagram(N.i_ha, N.i_fa, 434, FA_PORT, reply), outbound=False)),
        (t + 0.504, s.ethernet(s.mip_datagram(N.i_fa, N.i_hoa, 434, ANY, reply), outbound=False)),
        (t + 1.5, s.ethernet(user_out)),
        (t + 1.501, s.ethernet(s.ipip(N.i_fa, N.i_ha, user_out))),
        (t + 1.510, s.ethernet(s.ipip(N.i_ha, N.i_fa, user_in), outbound=False)),
        (t + 1.511, s.ethernet(user_in, outbound=False)),
    ]


def access_mode_cvc() -> list[tuple[float, bytes]]:
    """Outside, co-located: x-MIP registration, then i-MIP through the VPN inside x-MIP (packets {2a}, {3b})."""
    t = s.T0
    x_req, x_rep = x_ha_registration(t, N.external_coa)
    i_req, i_rep = i_ha_registration(t + 2.0, N.vpn_tia)
    rrq_2c = s.mip_datagram(N.vpn_tia, N.i_ha, ANY, 434, i_req)
    rrp_back = s.mip_datagram(N.i_ha, N.vpn_tia, 434, ANY, i_rep)
    out_3d = s.ipip(N.vpn_tia, N.i_ha, s.user_packet(N.i_hoa, N.cn))
    in_3d = s.ipip(N.i_ha, N.vpn_tia, s.user_packet(N.cn, N.i_hoa, reply=True))
    x = s.ipip
    return [
        (t, sll(s.mip_datagram(N.external_coa, N.x_ha, ANY, 434, x_req))),
        (t + 0.040, sll(s.mip_datagram(N.x_ha, N.external_coa, 434, ANY, x_rep), outbound=False)),
        (t + 2.0, sll(x(N.external_coa, N.x_ha, vpn_out(rrq_2c, 1)))),
        (t + 2.080, sll(x(N.x_ha, N.external_coa, vpn_in(rrp_back, 1)), outbound=False)),
        (t + 3.0, sll(x(N.external_coa, N.x_ha, vpn_out(out_3d, 2)))),
        (t + 3.090, sll(x(N.x_ha, N.external_coa, vpn_in(in_3d, 2)), outbound=False)),
    ]


def access_mode_fvc() -> list[tuple[float, bytes]]:
    """Outside, through an external FA: x-MIP via the FA, then i-MIP through the VPN with the VPN-TIA as co-CoA."""
    t = s.T0
    x_req, x_rep = x_ha_registration(t + 0.5, N.x_fa, colocated=False)
    i_req, i_rep = i_ha_registration(t + 2.0, N.vpn_tia)
    rrq_2c = s.mip_datagram(N.vpn_tia, N.i_ha, ANY, 434, i_req)
    rrp_back = s.mip_datagram(N.i_ha, N.vpn_tia, 434, ANY, i_rep)
    out_3d = s.ipip(N.vpn_tia, N.i_ha, s.user_packet(N.i_hoa, N.cn))
    in_3d = s.ipip(N.i_ha, N.vpn_tia, s.user_packet(N.cn, N.i_hoa, reply=True))
    return [
        (t, sll2(s.agent_advertisement(N.x_fa, N.x_fa), outbound=False)),
        (t + 0.5, sll2(s.mip_datagram(N.x_hoa, N.x_fa, ANY, 434, x_req))),
        (t + 0.560, sll2(s.mip_datagram(N.x_fa, N.x_hoa, 434, ANY, x_rep), outbound=False)),
        (t + 2.0, sll2(vpn_out(rrq_2c, 1))),
        (t + 2.080, sll2(vpn_in(rrp_back, 1), outbound=False)),
        (t + 3.0, sll2(vpn_out(out_3d, 2))),
        (t + 3.090, sll2(vpn_in(in_3d, 2), outbound=False)),
    ]


def appendix_a() -> list[tuple[float, bytes]]:
    """RFC 5265 appendix A, packet by packet: {1a} {2a} {2b} {2c} {3a} {3b} {3c} {3d} {3e}, then {3b} with NAT traversal."""
    t = s.T0
    ike_1a = s.ipip(N.external_coa, N.x_ha, IP(bytes(IP(src=N.x_hoa, dst=N.vpn_gw, id=0) / UDP(sport=500, dport=500) / ike_main_mode())))
    i_req, _ = i_ha_registration(t + 2.0, N.vpn_tia)
    p2c = s.mip_datagram(N.vpn_tia, N.i_ha, ANY, 434, i_req)
    p2b = vpn_out(p2c, 1)
    p2a = s.ipip(N.external_coa, N.x_ha, p2b)
    p3a = s.user_packet(N.i_hoa, N.cn)
    p3d = s.ipip(N.vpn_tia, N.i_ha, p3a)
    p3c = vpn_out(p3d, 2)
    p3b = s.ipip(N.external_coa, N.x_ha, p3c)
    natt_inner = s.udp_tunnel(N.vpn_tia, N.i_ha, p3a)
    natt_esp = vpn_out(natt_inner, 3, natt=True)
    p3b_natt = s.udp_tunnel(N.external_coa, N.x_ha, natt_esp)
    frames = [ike_1a, p2a, p2b, p2c, p3a, p3b, p3c, p3d, p3a, p3b_natt]
    return [(t + i, bytes(p)) for i, p in enumerate(frames)]


def nat_traversal() -> list[tuple[float, bytes]]:
    """cvc with every NAT traversal layer: x-MIP and i-MIP UDP tunnelling (RFC 3519), ESP in UDP 4500 (RFC 3948)."""
    t = s.T0
    x_req, x_rep = x_ha_registration(t, N.external_coa, natt=True)
    i_req = s.rrq(N.i_hoa, N.i_ha, N.vpn_tia, s.I_HA_KEY, t + 2.0, udp_tunnel_request=True)
    i_rep = s.rrp(i_req, s.I_HA_KEY, tnc=True, udp_tunnel_reply=True)
    ike = IP(bytes(IP(src=N.x_hoa, dst=N.vpn_gw, id=0) / UDP(sport=4500, dport=4500) / Raw(b"\x00\x00\x00\x00") / ike_main_mode()))
    keepalive = IP(bytes(IP(src=N.x_hoa, dst=N.vpn_gw, id=0) / UDP(sport=4500, dport=4500) / Raw(b"\xff")))
    rrq_2c = s.mip_datagram(N.vpn_tia, N.i_ha, ANY, 434, i_req)
    rrp_back = s.mip_datagram(N.i_ha, N.vpn_tia, 434, ANY, i_rep)
    out_inner = s.udp_tunnel(N.vpn_tia, N.i_ha, s.user_packet(N.i_hoa, N.cn))
    in_inner = s.udp_tunnel(N.i_ha, N.vpn_tia, s.user_packet(N.cn, N.i_hoa, reply=True), sport=434, dport=ANY)
    xt = s.udp_tunnel

    def back(inner: Packet) -> Packet:
        return xt(N.x_ha, N.external_coa, inner, sport=434, dport=ANY)

    frames = [
        (t, s.mip_datagram(N.external_coa, N.x_ha, ANY, 434, x_req), True),
        (t + 0.040, s.mip_datagram(N.x_ha, N.external_coa, 434, ANY, x_rep), False),
        (t + 1.0, xt(N.external_coa, N.x_ha, ike), True),
        (t + 1.5, xt(N.external_coa, N.x_ha, keepalive), True),
        (t + 2.0, xt(N.external_coa, N.x_ha, vpn_out(rrq_2c, 1, natt=True)), True),
        (t + 2.080, back(vpn_in(rrp_back, 1, natt=True)), False),
        (t + 3.0, xt(N.external_coa, N.x_ha, vpn_out(out_inner, 2, natt=True)), True),
        (t + 3.090, back(vpn_in(in_inner, 2, natt=True)), False),
    ]
    return [(at, s.ethernet(p, outbound)) for at, p, outbound in frames]


def malformed() -> list[tuple[float, bytes]]:
    """Broken packets the dissector must report and step over; each is described in README.md."""
    t = s.T0
    request, reply = i_ha_registration(t, N.internal_coa)
    good = bytes(s.mip_datagram(N.internal_coa, N.i_ha, ANY, 434, request))

    def set_udp_payload(payload: bytes) -> bytes:
        return bytes(IP(src=N.internal_coa, dst=N.i_ha, id=0) / UDP(sport=ANY, dport=434) / Raw(payload))

    rrq = bytes(request)
    long_ext = bytearray(rrq)
    long_ext[24 + 1] = 200  # NAI claims 200 octets
    short_tnc = bytes(RegistrationReply(home_address=N.i_hoa, home_agent=N.i_ha)) + b"\x95\x01\x00"
    minenc = IP(bytes(IP(src=N.i_ha, dst=N.internal_coa, id=0) / MinimalEncapsulation(proto=17, dst=N.i_hoa, chksum=0x1234) / UDP(sport=7, dport=ANY) / Raw(b"x")))
    tnc_after_auth = s.rrp(request, s.I_HA_KEY, tnc=False)
    tnc_after_auth.extensions = [MIPExtMNHAAuth(spi=256, key=s.I_HA_KEY.secret), MIPExtTNC()]
    frames = [
        good[:40],  # 1: cut inside the RRQ: IP total length beyond the capture
        set_udp_payload(rrq[:10]),  # 2: RRQ shorter than its 24-octet fixed part
        set_udp_payload(bytes(long_ext)),  # 3: NAI extension runs past the message
        set_udp_payload(short_tnc),  # 4: TNC with Length 1
        set_udp_payload(b"\x09" + bytes(23)),  # 5: unknown message type 9
        set_udp_payload(b""),  # 6: empty UDP/434
        bytes(minenc),  # 7: minimal encapsulation with a wrong header checksum
        good,  # 8: a good RRQ, to show dissection went on
        bytes(s.mip_datagram(N.i_ha, N.internal_coa, 434, ANY, tnc_after_auth)),  # 9: TNC after the authenticator
        bytes(s.mip_datagram(N.internal_coa, N.i_ha, ANY, 434, TunnelData(next_header=99) / Raw(b"abc"))),  # 10: tunnel data, unknown next header
    ]
    return [(t + i * 0.1, s.ethernet(Raw(data))) for i, data in enumerate(frames)]


def analyze_findings() -> list[tuple[float, bytes]]:
    """One example of each passive finding for examples/site.toml (see README.md)."""
    t = s.T0
    outside = N.external_coa
    # i-HA answers a plaintext RRQ from an external address, with TNC, TNC placed after the authenticator
    request = s.rrq(N.i_hoa, N.i_ha, outside, s.I_HA_KEY, t)
    bad_reply = s.rrp(request, s.I_HA_KEY, tnc=False)
    bad_reply.extensions = [MIPExtMNHAAuth(spi=256, key=s.I_HA_KEY.secret), MIPExtTNC()]
    # inside registration, then plaintext data long after T_MONITOR without re-registering
    in_req, in_rep = i_ha_registration(t + 10.0, N.internal_coa)
    user = s.user_packet(N.i_hoa, N.cn)
    # the MN registers its x-HoA with the i-HA's address (same address used as both home agents)
    same_ha = s.rrq(N.x_hoa, N.i_ha, N.internal_coa, s.X_HA_KEY, t + 200.0)
    frames = [
        (t, s.mip_datagram(outside, N.i_ha, ANY, 434, request)),
        (t + 0.002, s.mip_datagram(N.i_ha, outside, 434, ANY, bad_reply)),
        (t + 10.0, s.mip_datagram(N.internal_coa, N.i_ha, ANY, 434, in_req)),
        (t + 10.002, s.mip_datagram(N.i_ha, N.internal_coa, 434, ANY, in_rep)),
        (t + 20.0, s.ipip(N.internal_coa, N.i_ha, user)),  # within T_MONITOR: fine
        (t + 100.0, s.ipip(N.internal_coa, N.i_ha, user)),  # 90 s after the registration: finding
        (t + 101.0, user),  # plaintext, not even tunnelled: finding
        (t + 200.0, s.mip_datagram(N.internal_coa, N.i_ha, ANY, 434, same_ha)),
    ]
    return [(at, s.ethernet(p)) for at, p in frames]


CAPTURES: dict[str, tuple[Callable[[Path, int, list], None], int, Callable[[], list]]] = {
    "access-mode-c.pcap": (write_pcap, LINKTYPE_ETHERNET, access_mode_c),
    "access-mode-f.pcap": (write_pcap, LINKTYPE_ETHERNET, access_mode_f),
    "access-mode-cvc.pcap": (write_pcap, LINKTYPE_LINUX_SLL, access_mode_cvc),
    "access-mode-fvc.pcapng": (write_pcapng, LINKTYPE_LINUX_SLL2, access_mode_fvc),
    "rfc5265-appendix-a.pcapng": (write_pcapng, LINKTYPE_RAW, appendix_a),
    "nat-traversal.pcap": (write_pcap, LINKTYPE_ETHERNET, nat_traversal),
    "malformed.pcap": (write_pcap, LINKTYPE_ETHERNET, malformed),
    "analyze-findings.pcap": (write_pcap, LINKTYPE_ETHERNET, analyze_findings),
}


def write_all(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (write, linktype, build) in CAPTURES.items():
        path = out / name
        write(path, linktype, build())
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="folder to write into (default: pcaps/)")
    args = parser.parse_args(argv)
    for path in write_all(args.out):
        print(f"{path} ({path.stat().st_size} octets)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
