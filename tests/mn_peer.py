"""A small scripted i-HA, x-HA and VPN gateway for the reference MN's tests, written with the Scapy layers.

Why Scapy: the reference node builds its stacks with mipcheck.proto and its
ESP with Scapy's SA; the played parties here parse and build everything with
the Scapy layers (mipcheck.layers, scapy.layers.inet/ipsec) from
docs/design/mn-loopback.md alone, so a codec bug cannot hide on both sides.
One actor on the SimNetwork at the i-HA's and the x-HA's places; the
gateway is reached through the x-HA (x-MIP Tunnel Data). :func:`describe`
turns a datagram of the network log into one line, for wire comparisons.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Any

from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.packet import Raw

from mipcheck.layers import (
    Key,
    MIPExtMNHAAuth,
    MIPExtTNC,
    MIPExtUDPTunnelReply,
    MIPExtUDPTunnelRequest,
    MobileIPMessage,
    RegistrationReply,
    RegistrationRequest,
    TunnelData,
)
from mipcheck.mn.profile import MobileNodeProfile, parse_mobile_node_profile

Address = tuple[str, int]
IHA, XHA, GW = "10.1.0.1", "192.0.2.1", "192.0.2.10"
HOA, XHOA, TIA, CN = "10.1.9.9", "192.0.2.99", "10.8.0.5", "192.0.2.7"
INSIDE, OUTSIDE, INSIDE_2, OUTSIDE_2 = "10.2.0.5", "198.51.100.5", "10.2.0.6", "198.51.100.6"
PORT = 49434
ENC_KEY, AUTH_KEY = bytes(range(16)), bytes(range(20))
SPI_IN, SPI_OUT = 0x1001, 0x1002


def profile_doc(x_ha: dict[str, Any] | None = None, **dut: Any) -> dict[str, Any]:
    """The profile both sides read (inline hex secrets); ``x_ha`` overrides keys of that section."""
    doc = {
        "dut": {"home_address": HOA, "interfaces": ["eth0"], "t_monitor": 60, "port": PORT, **dut},
        "i_ha": {"address": IHA, "spi": 0x5265, "secret_hex": "69696969"},
        "x_ha": {"address": XHA, "home_address": XHOA, "spi": 0x5266, "secret_hex": "78787878", **(x_ha or {})},
        "vpn": {
            "gateway": GW,
            "inner_address": TIA,
            "spi_in": SPI_IN,
            "spi_out": SPI_OUT,
            "encryption": "AES-CBC",
            "encryption_key_hex": ENC_KEY.hex(),
            "integrity": "HMAC-SHA1-96",
            "integrity_key_hex": AUTH_KEY.hex(),
        },
        "networks": {"inside": INSIDE, "outside": OUTSIDE, "inside_2": INSIDE_2, "outside_2": OUTSIDE_2},
    }
    return doc


def make_profile(x_ha: dict[str, Any] | None = None, **dut: Any) -> MobileNodeProfile:
    return parse_mobile_node_profile(profile_doc(x_ha, **dut))


def _sa(spi: int, src: str, dst: str, sport: int, dport: int, profile: MobileNodeProfile) -> SecurityAssociation:
    v = profile.vpn
    return SecurityAssociation(
        ESP,
        spi=spi,
        crypt_algo=v.encryption,
        crypt_key=v.encryption_key.reveal() or None,
        auth_algo=v.integrity,
        auth_key=v.integrity_key.reveal() or None,
        tunnel_header=IP(src=src, dst=dst),
        nat_t_header=UDP(sport=sport, dport=dport),
    )


@dataclass
class Played:
    """i-HA + x-HA + gateway. ``iha_mode``: tnc | omit-tnc | tnc-after-auth | deny | silent."""

    profile: MobileNodeProfile
    iha_mode: str = "tnc"
    inner_mode: str | None = None  # how the i-HA answers through the VPN (None: as iha_mode)
    iha_delay: float = 0.0  # the i-HA's replies leave this much later (a late reply, 3.3)
    xha_answers: bool = True
    received: list[tuple[float, str, Any]] = field(default_factory=list)  # (at, what, packet)
    _timers: list[tuple[float, int, bytes, Address, Address]] = field(default_factory=list)
    _out: list[tuple[bytes, Address, Address]] = field(default_factory=list)
    _seq: Any = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        p = self.profile
        self.iha, self.xha = p.i_ha.place, p.x_ha.place
        self.gw_rx = _sa(p.vpn.spi_out, p.x_ha.home_address, p.vpn.gateway, 4500, p.vpn.port, p)
        self.gw_tx = _sa(p.vpn.spi_in, p.vpn.gateway, p.x_ha.home_address, p.vpn.port, 4500, p)
        self.inside = {a for k, a in p.networks.items() if k.startswith("inside")} | {p.vpn.inner_address}

    def attach(self, network: Any) -> None:
        for place in {self.iha, self.xha}:
            network.attach(self, *place)

    # ---- what a scenario does
    def echo(self, coa: str, *, via_vpn: bool, ident: int = 7, seq: int = 1, payload: bytes = b"ping") -> None:
        """An echo request from CN to the home address, tunnelled to (coa, P) plaintext or through the VPN."""
        inner = bytes(TunnelData() / IP(src=CN, dst=self.profile.home_address) / ICMP(id=ident, seq=seq) / payload)
        if via_vpn:
            self._to_vpn(inner, coa)
        else:
            self._out.append((inner, self.iha, (coa, self.profile.port)))

    def of(self, what: str) -> list[Any]:
        return [pkt for _at, w, pkt in self.received if w == what]

    # ---- the parties
    def _to_vpn(self, payload: bytes, coa: str) -> None:
        p = self.profile
        inner = IP(src=p.i_ha.address, dst=p.vpn.inner_address) / UDP(sport=p.i_ha.port, dport=p.port) / Raw(payload)
        esp = self.gw_tx.encrypt(IP(bytes(inner)))
        self._out.append((bytes(TunnelData() / esp), self.xha, (coa, p.port)))

    def _reply(self, req: Any, key: bytes, spi: int, tnc: str | None, code: int = 0) -> bytes:
        exts: list[Any] = []
        if any(isinstance(e, MIPExtUDPTunnelRequest) for e in req.extensions):
            exts.append(MIPExtUDPTunnelReply())
        if tnc == "tnc":
            exts.append(MIPExtTNC())
        exts.append(MIPExtMNHAAuth(spi=spi, key=key))
        if tnc == "tnc-after-auth":
            exts.append(MIPExtTNC())
        lifetime = min(req.lifetime, 1800)
        return bytes(
            RegistrationReply(
                code=code,
                lifetime=lifetime if code < 64 else 0,
                home_address=req.home_address,
                home_agent=req.home_agent,
                identification=req.identification,
                extensions=exts,
            )
        )

    def _iha_answer(self, req: Any, source: str) -> bytes | None:
        sa = self.profile.i_ha.sa
        assert req.verify({sa.spi: Key(sa.key)})[0].valid
        mode = self.iha_mode
        if source == self.profile.vpn.inner_address and self.inner_mode is not None:
            mode = self.inner_mode
        if source not in self.inside or mode == "silent":
            return None  # 3.1: the firewall keeps the outside away from the i-HA
        return self._reply(req, sa.key, sa.spi, "tnc" if mode == "deny" else mode, code=129 if mode == "deny" else 0)

    def _xha_answer(self, req: Any) -> bytes | None:
        sa = self.profile.x_ha.sa
        assert req.verify({sa.spi: Key(sa.key)})[0].valid
        return self._reply(req, sa.key, sa.spi, None) if self.xha_answers else None

    def receive_datagram(self, data: bytes, src: Address, local: Address, now: float) -> None:
        msg = MobileIPMessage(data)
        if isinstance(msg, RegistrationRequest):
            self.received.append((now, "rrq", msg))
            if msg.home_address == self.profile.home_address and local == self.iha:
                reply = self._iha_answer(msg, src[0])
                delay = self.iha_delay
            else:
                reply, delay = self._xha_answer(msg), 0.0
            if reply is not None:
                heapq.heappush(self._timers, (now + delay, next(self._seq), reply, local, src))
        elif isinstance(msg, TunnelData) and local == self.xha and msg.haslayer(ESP):
            self._from_vpn(msg[IP], src, now)
        elif isinstance(msg, TunnelData) and msg.haslayer(ICMP):
            self.received.append((now, "echo-plaintext", msg[IP]))

    def _from_vpn(self, outer: Any, src: Address, now: float) -> None:
        inner = self.gw_rx.decrypt(IP(bytes(outer)))
        assert inner.src == self.profile.vpn.inner_address, "2.3: only the VPN-TIA inside the VPN"
        body = MobileIPMessage(bytes(inner[UDP].payload))
        if isinstance(body, RegistrationRequest):
            self.received.append((now, "inner-rrq", body))
            reply = self._iha_answer(body, inner.src)
            if reply is not None:
                self._to_vpn(reply, src[0])
        elif isinstance(body, TunnelData) and body.haslayer(ICMP):
            self.received.append((now, "echo-vpn", body[IP]))

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address, Address]]:
        out, self._out = self._out, []
        return out

    def get_timer(self) -> float | None:
        return self._timers[0][0] if self._timers else None

    def handle_timer(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            _at, _s, data, local, dst = heapq.heappop(self._timers)
            self._out.append((data, local, dst))


def describe(data: bytes, played: Played) -> str:
    """One line for a datagram between the node and the played parties (ESP opened with the gateway's SAs)."""
    msg = MobileIPMessage(data)
    if isinstance(msg, RegistrationRequest | RegistrationReply):
        return _registration(msg)
    if isinstance(msg, TunnelData) and msg.haslayer(ESP):
        sa = (
            played.gw_rx
            if msg[ESP].spi == played.profile.vpn.spi_out
            else _sa(played.profile.vpn.spi_in, GW, played.profile.x_ha.home_address, 4500, 4500, played.profile)
        )
        inner = sa.decrypt(IP(bytes(msg[IP])))
        return f"ESP[{describe(bytes(inner[UDP].payload), played)}]"
    if isinstance(msg, TunnelData) and msg.haslayer(ICMP):
        return f"TD(echo {'request' if msg[ICMP].type == 8 else 'reply'} {msg[IP].src}>{msg[IP].dst})"
    return f"other({data[:1].hex()})"


def _registration(msg: Any) -> str:
    if isinstance(msg, RegistrationReply):
        return f"RRP code={msg.code} hoa={msg.home_address}"
    flags = "".join(f for f in "SBDMGT" if getattr(msg, f))
    exts = ",".join(type(e).__name__.removeprefix("MIPExt") for e in msg.extensions)
    life = "dereg" if msg.lifetime == 0 else "reg"
    return f"RRQ {life} hoa={msg.home_address} coa={msg.care_of_address} flags={flags} [{exts}]"
