"""The parties the MN suite plays: the i-HA, the x-HA and the VPN gateway, as ONE sans-IO actor.

Why one actor: a mobile node under test meets three parties of RFC 5265
Figure 1 at once (3.3 asks two home agents in parallel; 2.3 reaches the
i-HA through the VPN through the x-HA), and its verdicts depend on the order
of what it saw from them. One actor keeps one observation log in one time
order, and runs unchanged over real loopback sockets (real time) and over
the simulated network (virtual time): time is always an argument.

The wire stacks are docs/design/mn-loopback.md's, built and parsed with the
Scapy layers (``mipcheck.layers``) and Scapy's ESP, never with the codec the
reference mobile node uses, so tester and reference device share no codec bug.

What the actor does, per party (a case changes it at any time with
:meth:`PlayedParties.set_mode`):

* i-HA, direct path (requests from a care-of address): answered only from the
  profile's inside care-of addresses; a request from anywhere else is
  dropped unanswered, as RFC 5265 3.1's firewall does. Modes: ``answer``
  (code 0, TNC before the authenticator), ``no-tnc``, ``tnc-after-auth``,
  ``silent``, ``deny`` (a code, TNC before the authenticator), ``deny-once``
  (deny the next request, then ``silent`` at once: a device that restarts
  detection within a millisecond meets silence, not a second denial), ``delay`` (hold
  the reply N seconds, then answer the last pending request with TNC) and
  ``hold`` (keep it until :meth:`release`).
* i-HA through the VPN (requests from the VPN-TIA inside ESP): ``answer`` by
  default; same modes.
* x-HA (requests from any care-of address): ``answer`` (code 0, no TNC),
  ``silent``, ``deny``, ``delay``, ``hold``.
* VPN gateway: ESP in UDP inside the x-HA's tunnel (static SAs of the
  profile); forwards only inner packets from the VPN-TIA to the i-HA.

Accepted registrations get lifetime min(requested, 1800), a UDP Tunnel Reply
when asked, and become bindings (home address -> where the device is and by
which path), which :meth:`ping` uses to send an ICMP echo request to the
device's home address through the direct i-HA tunnel or through the VPN.
Every datagram in and out is an :class:`Obs` in :attr:`log`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from mipcheck.layers import (
    MIPExtMNHAAuth,
    MIPExtTNC,
    MIPExtUDPTunnelReply,
    MIPExtUDPTunnelRequest,
    MobileIPMessage,
    RegistrationReply,
    RegistrationRequest,
    TunnelData,
)
from mipcheck.layers.auth import verify_message
from mipcheck.mn.profile import NATT_PORT, MobileNodeProfile
from mipcheck.proto import numbers as n

Address = tuple[str, int]
Recorder = Callable[[Address, Address, bytes, str, str], int]  # (src, dst, data, direction, note) -> frame

# Roles (whose socket) and paths (how the device reached it).
IHA, XHA, GW = "i-ha", "x-ha", "gw"
DIRECT, VIA_XHA, VIA_VPN = "direct-iha", "xha", "via-vpn"
IHA_VPN = "i-ha-vpn"  # the knob of the i-HA for requests that came through the VPN

IN, OUT = "in", "out"
MODES = ("answer", "no-tnc", "tnc-after-auth", "silent", "deny", "deny-once", "delay", "hold")
MAX_LIFETIME = 1800
DEFAULT_DENIAL = 130  # insufficient resources: a denial any home agent may send
ECHO_ID = 0x6D63  # "mc": identifier of the suite's echo requests; the sequence number makes each unique
PING_MARK = b"mipcheck-mn-ping "


# ---------------------------------------------------------------- what was seen


@dataclass(frozen=True)
class Obs:
    """One datagram (or one packet inside a tunnel of it) in or out, as the played party understood it."""

    at: float
    frame: int
    direction: str  # IN (from the device) | OUT (to the device)
    role: str  # IHA | XHA | GW: whose place it went to or came from
    path: str  # DIRECT | VIA_XHA | VIA_VPN
    kind: str  # request | reply | echo-request | echo-reply | tunnel | data | other
    peer: Address  # the device's side: (CoA, port), or (VPN-TIA, port) inside the VPN
    outer: Address | None = None  # via the VPN: the device's (CoA, port) of the x-HA tunnel
    # registration requests (IN) and replies (OUT)
    home_address: str | None = None
    care_of_address: str | None = None
    lifetime: int | None = None
    flags: str = ""
    identification: int | None = None
    udp_tunnel: bool = False  # a UDP Tunnel Request was present
    udp_tunnel_f: bool = False
    udp_tunnel_before_auth: bool | None = None
    auth: str | None = None  # valid | invalid | missing | unknown-spi
    spi: int | None = None
    action: str = ""  # what the played party did: accepted | denied | silent | held | firewall | ...
    code: int | None = None  # replies
    tnc: str | None = None  # replies: before-auth | after-auth | None
    # echo requests and replies
    echo: tuple[int, int] | None = None
    # x-HA tunnel data
    esp_to_gateway: bool | None = None
    note: str = ""

    @property
    def t_bit(self) -> bool:
        return "T" in self.flags

    @property
    def accepted(self) -> bool:
        return self.kind == "reply" and self.code is not None and self.code in (0, 1)

    def describe(self, origin: float | None = None) -> str:
        """One line: frame, time, what it was (reasons quote this)."""
        when = f" at +{self.at - origin:.2f} s" if origin is not None else ""
        where = f"{self.peer[0]}:{self.peer[1]}"
        if self.outer is not None:
            where += f" (through the VPN from {self.outer[0]}:{self.outer[1]})"
        if self.kind == "request":
            what = (
                f"registration request to the {self.role} from {where}: HoA {self.home_address} CoA "
                f"{self.care_of_address} lifetime {self.lifetime} flags {self.flags or '-'}"
                f"{', UDP Tunnel Request' if self.udp_tunnel else ''}, authenticator {self.auth}"
            )
            if self.action:
                what += f" ({self.action})"
        elif self.kind == "reply":
            tnc = f", TNC {self.tnc}" if self.tnc else ", no TNC"
            what = f"{self.role} reply code {self.code} lifetime {self.lifetime}{tnc} to {where}"
        elif self.kind in ("echo-request", "echo-reply"):
            arrow = "to" if self.direction == OUT else "from"
            ident, seq = self.echo or (0, 0)
            what = f"{self.kind} id {ident} seq {seq} {arrow} {where} by {self.path}"
        else:
            what = f"{self.kind} {'to' if self.direction == OUT else 'from'} {where} at the {self.role}"
        if self.note:
            what += f"; {self.note}"
        return f"frame {self.frame}{when}: {what}"


@dataclass(frozen=True)
class Binding:
    """Where an accepted registration says the device is."""

    home_address: str
    role: str
    path: str
    dst: Address  # the request's source: where tunnel data goes (RFC 3519 3.1)
    outer: Address | None  # via the VPN: the x-HA binding that carries the ESP
    at: float


@dataclass(frozen=True)
class Ping:
    """An echo request the suite sent."""

    echo: tuple[int, int]
    path: str
    dst: Address
    at: float
    frame: int


@dataclass
class Knob:
    mode: str = "answer"
    code: int = DEFAULT_DENIAL
    delay: float = 0.0


@dataclass
class _Pending:
    knob: str  # IHA | IHA_VPN | XHA
    request: Any  # RegistrationRequest
    src: Address
    outer: Address | None
    at: float


def _flags(req: Any) -> str:
    return "".join(letter for letter in n.RRQ_FLAG_LETTERS if letter not in ("r", "x") and getattr(req, letter, 0))


def _authenticated(data: bytes, sa: Any) -> tuple[str, int | None]:
    """valid | invalid | unknown-spi | missing: the request's MN-HA authenticator checked with ``sa``.

    ``verify_message`` is ``msg.verify`` on the octets as they arrived (no re-build by Scapy).
    """
    checks = [
        c for c in verify_message(data, RegistrationRequest.fixed_size, {sa.spi: sa}) if c.ext_type == n.EXT_MN_HA_AUTH
    ]
    if not checks:
        return "missing", None
    first = checks[0]
    if first.valid is None:
        return "unknown-spi", first.spi
    return ("valid" if first.valid else "invalid"), first.spi


class PlayedParties:
    """The tester's i-HA, x-HA and VPN gateway; an actor (``receive_datagram``, ``datagrams_to_send``, timers)."""

    def __init__(self, profile: MobileNodeProfile, recorder: Recorder | None = None) -> None:
        self.profile = profile
        self.recorder = recorder
        self.iha_place: Address = profile.i_ha.place
        self.xha_place: Address = profile.x_ha.place
        self.gw_place: Address = profile.vpn.place
        self.inside = frozenset(a for k, a in profile.networks.items() if k.startswith("inside") and a)
        self.knobs: dict[str, Knob] = {IHA: Knob(), IHA_VPN: Knob(), XHA: Knob()}
        self.log: list[Obs] = []
        self.bindings: dict[tuple[str, str], Binding] = {}  # (role, path): the latest binding made that way
        self.vpn_port = NATT_PORT  # the device's UDP port of its ESP (learnt from what it sends)
        self._lock = threading.RLock()
        self._out: list[tuple[bytes, Address, Address]] = []
        self._pending: dict[str, _Pending] = {}
        self._release_at: dict[str, float] = {}
        self._frames = 0
        self._seq = 0
        self._esp_from_mn: Any = None
        self._esp_to_mn: Any = None

    # ---------------------------------------------------------------- what a case does

    def set_mode(
        self, knob: str, mode: str, now: float, *, code: int = DEFAULT_DENIAL, delay: float = 0.0, pending: bool = False
    ) -> None:
        """Change how a party answers from now on; ``pending``: also answer the request it holds now that way."""
        if knob not in self.knobs:
            raise ValueError(f"no party {knob!r} (one of {', '.join(self.knobs)})")
        if mode not in MODES:
            raise ValueError(f"no mode {mode!r} (one of {', '.join(MODES)})")
        with self._lock:
            self.knobs[knob] = Knob(mode, code, delay)
            if mode not in ("delay", "hold"):
                self._release_at.pop(knob, None)
            if pending and knob in self._pending and mode not in ("silent", "delay", "hold"):
                self._answer(self._pending.pop(knob), "deny" if mode == "deny-once" else mode, now)
                if mode == "deny-once":
                    self.knobs[knob] = Knob("silent", code, delay)

    def release(self, knob: str, now: float) -> bool:
        """Answer the request a ``delay``/``hold``/``silent`` party holds, accepted (with TNC at the i-HA)."""
        with self._lock:
            self._release_at.pop(knob, None)
            held = self._pending.pop(knob, None)
            if held is None:
                return False
            self._answer(held, "answer", now)
            return True

    def reset(self, now: float) -> None:
        """Every party answers again; nothing held. Bindings stay: they are the device's state."""
        with self._lock:
            self.knobs = {IHA: Knob(), IHA_VPN: Knob(), XHA: Knob()}
            self._pending.clear()
            self._release_at.clear()

    def ping(self, path: str, now: float, *, to: Address | None = None) -> Ping | None:
        """An ICMP echo request to the device's home address; None when there is no binding to send it by.

        ``path`` DIRECT: MIP Tunnel Data from the i-HA to ``to`` or the latest direct binding's (CoA, port).
        ``path`` VIA_VPN: Tunnel Data from the i-HA to the latest binding through the VPN (VPN-TIA, port), in ESP,
        in the x-HA's Tunnel Data to the x-HA binding. A binding made one way does not end one made the other
        way: the suite probes both paths whatever the device registered last.
        """
        from scapy.layers.inet import ICMP, IP
        from scapy.packet import Raw

        with self._lock:
            if path == DIRECT:
                binding = self.bindings.get((IHA, DIRECT))
                dst = to or (binding.dst if binding is not None else None)
                if dst is None:
                    return None
            elif path == VIA_VPN:
                binding, outer = self.bindings.get((IHA, VIA_VPN)), self.bindings.get((XHA, VIA_XHA))
                if binding is None or outer is None:
                    return None
                dst = binding.dst
            else:
                raise ValueError(f"no ping path {path!r}")
            self._seq = (self._seq + 1) & 0xFFFF
            echo = (ECHO_ID, self._seq)
            inner = bytes(
                IP(src=self.profile.correspondent, dst=self.profile.home_address, ttl=64)
                / ICMP(type=8, id=echo[0], seq=echo[1])
                / Raw(load=PING_MARK + str(self._seq).encode())
            )
            td = bytes(TunnelData(next_header=4)) + inner
            if path == DIRECT:
                frame = self._send(self.iha_place, dst, td, "echo request through the direct i-HA tunnel")
                self._observe(now, frame, OUT, IHA, DIRECT, "echo-request", dst, echo=echo)
            else:
                assert outer is not None
                frame = self._send_via_vpn(td, dst, outer.dst, "echo request through the VPN")
                self._observe(now, frame, OUT, IHA, VIA_VPN, "echo-request", dst, outer=outer.dst, echo=echo)
            return Ping(echo, path, dst, now, frame)

    def snapshot(self, start: int = 0) -> list[Obs]:
        with self._lock:
            return self.log[start:]

    def mark(self) -> int:
        with self._lock:
            return len(self.log)

    # ---------------------------------------------------------------- the actor interface

    def receive_datagram(self, data: bytes, src: Address, local: Address, now: float) -> None:
        with self._lock:
            local = (local[0], int(local[1]))
            frame = self._record(src, local, data, "received", "")
            try:
                self._receive(data, src, local, now, frame)
            except Exception as exc:  # a malformed datagram is an observation, never a crash of the tester
                self._observe(now, frame, IN, self._role_of(local), DIRECT, "other", src, note=f"unparsable: {exc}")

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address, Address]]:
        with self._lock:
            out, self._out = self._out, []
            return out

    def get_timer(self) -> float | None:
        with self._lock:
            return min(self._release_at.values()) if self._release_at else None

    def handle_timer(self, now: float) -> None:
        with self._lock:
            for knob, at in sorted(self._release_at.items(), key=lambda kv: kv[1]):
                if at <= now:
                    self.release(knob, now)

    # ---------------------------------------------------------------- plumbing

    def _record(self, src: Address, dst: Address, data: bytes, direction: str, note: str) -> int:
        if self.recorder is not None:
            return self.recorder(src, dst, data, direction, note)
        self._frames += 1
        return self._frames

    def _send(self, local: Address, dst: Address, data: bytes, note: str) -> int:
        self._out.append((data, local, dst))
        return self._record(local, dst, data, "sent", note)

    def _observe(self, now: float, frame: int, direction: str, role: str, path: str, kind: str, peer: Address, **kw):
        obs = Obs(now, frame, direction, role, path, kind, (peer[0], int(peer[1])), **kw)
        self.log.append(obs)
        return obs

    def _role_of(self, local: Address) -> str:
        if local == self.iha_place:
            return IHA
        if local == self.xha_place:
            return XHA
        return GW

    def _esp(self) -> tuple[Any, Any]:
        if self._esp_from_mn is None:
            from scapy.layers.inet import IP, UDP
            from scapy.layers.ipsec import ESP, SecurityAssociation

            vpn, x_hoa = self.profile.vpn, self.profile.x_ha.home_address

            def sa(spi: int, src: str, dst: str, sport: int, dport: int) -> Any:
                return SecurityAssociation(
                    ESP,
                    spi=spi,
                    crypt_algo=vpn.encryption,
                    crypt_key=vpn.encryption_key.reveal() or None,
                    auth_algo=vpn.integrity,
                    auth_key=vpn.integrity_key.reveal() or None,
                    tunnel_header=IP(src=src, dst=dst),
                    nat_t_header=UDP(sport=sport, dport=dport),
                )

            self._esp_from_mn = sa(vpn.spi_out, x_hoa, vpn.gateway, self.vpn_port, vpn.port)
            self._esp_to_mn = sa(vpn.spi_in, vpn.gateway, x_hoa, vpn.port, self.vpn_port)
        return self._esp_from_mn, self._esp_to_mn

    # ---------------------------------------------------------------- arrivals

    def _receive(self, data: bytes, src: Address, local: Address, now: float, frame: int) -> None:
        msg = MobileIPMessage(data)
        shared = self.iha_place == self.xha_place
        if local not in (self.iha_place, self.xha_place):
            note = "sent to the VPN gateway directly, not through the x-HA's tunnel (docs/design/mn-loopback.md)"
            self._observe(now, frame, IN, GW, DIRECT, "other", src, note=note)
            return
        if isinstance(msg, RegistrationRequest):
            role = IHA if local == self.iha_place else XHA
            if shared:  # 3.5: one address for both; the home address says which registration it is
                role = XHA if msg.home_address == self.profile.x_ha.home_address else IHA
            self._request(role, DIRECT if role == IHA else VIA_XHA, msg, data, src, None, now, frame)
        elif isinstance(msg, TunnelData):
            inner = data[TunnelData.fixed_size :]
            if local == self.xha_place and (not shared or not self._is_echo_to_us(inner)):
                self._xha_tunnel(inner, src, now, frame)
            else:
                self._data(IHA, DIRECT, inner, src, None, now, frame)
        else:
            what = msg.error or f"{type(msg).__name__} (not expected from a mobile node)"
            self._observe(now, frame, IN, self._role_of(local), DIRECT, "other", src, note=what)

    def _is_echo_to_us(self, inner: bytes) -> bool:
        from scapy.layers.inet import IP

        try:
            return IP(inner).dst == self.profile.correspondent
        except Exception:
            return False

    def _xha_tunnel(self, inner: bytes, src: Address, now: float, frame: int) -> None:
        """x-MIP tunnel data: ESP in UDP to the gateway (2.3), or something that should not be there."""
        from scapy.layers.inet import IP, UDP
        from scapy.layers.ipsec import ESP

        vpn = self.profile.vpn
        try:
            ip = IP(inner)
        except Exception as exc:
            self._observe(now, frame, IN, XHA, VIA_XHA, "tunnel", src, esp_to_gateway=False, note=f"not IPv4: {exc}")
            return
        udp = ip.getlayer(UDP)
        to_gateway = ip.dst == vpn.gateway and udp is not None and udp.dport == vpn.port
        payload = bytes(udp.payload) if udp is not None else b""
        if not to_gateway or len(payload) < 8 or payload[:4] == b"\0\0\0\0":
            summary = ip.summary()
            if ip.src == self.profile.home_address or ip.dst == self.profile.correspondent:
                # enterprise traffic in the x-HA's tunnel without ESP (2.3: the VPN layer is never skipped)
                self._observe(now, frame, IN, XHA, VIA_XHA, "tunnel", src, esp_to_gateway=False, note=summary)
                self._data(XHA, VIA_XHA, inner, src, None, now, frame)
                return
            self._observe(now, frame, IN, XHA, VIA_XHA, "tunnel", src, esp_to_gateway=False, note=summary)
            return
        if ip.src != self.profile.x_ha.home_address:
            note = f"ESP from {ip.src}, not from the x-HoA {self.profile.x_ha.home_address}"
            self._observe(now, frame, IN, XHA, VIA_XHA, "tunnel", src, esp_to_gateway=True, note=note)
            return
        if self.vpn_port != udp.sport:
            self.vpn_port = udp.sport
            self._esp_from_mn = self._esp_to_mn = None
        from_mn, _ = self._esp()
        try:
            outer = IP(src=ip.src, dst=ip.dst) / UDP(sport=udp.sport, dport=udp.dport, chksum=0) / ESP(payload)
            clear = IP(bytes(from_mn.decrypt(outer)))  # checks SPI and ICV
        except Exception as exc:
            note = f"ESP that does not open with [vpn] spi_out and keys: {type(exc).__name__}: {exc}"
            self._observe(now, frame, IN, GW, VIA_XHA, "tunnel", src, esp_to_gateway=True, note=note)
            return
        self._observe(now, frame, IN, XHA, VIA_XHA, "tunnel", src, esp_to_gateway=True, note="ESP to the gateway")
        cudp = clear.getlayer(UDP)
        if clear.src != vpn.inner_address:
            note = f"inside ESP from {clear.src}, not the VPN-TIA {vpn.inner_address}: dropped (2.3 selectors)"
            self._observe(now, frame, IN, GW, VIA_VPN, "other", (clear.src, 0), outer=src, note=note)
            return
        if cudp is None or (clear.dst, cudp.dport) != self.iha_place:
            note = f"inside ESP: {clear.summary()} (not to the i-HA)"
            self._observe(now, frame, IN, GW, VIA_VPN, "other", (clear.src, 0), outer=src, note=note)
            return
        peer = (clear.src, int(cudp.sport))
        data = bytes(cudp.payload)
        msg = MobileIPMessage(data)
        if isinstance(msg, RegistrationRequest):
            self._request(IHA, VIA_VPN, msg, data, peer, src, now, frame)
        elif isinstance(msg, TunnelData):
            self._data(IHA, VIA_VPN, data[TunnelData.fixed_size :], peer, src, now, frame)
        else:
            self._observe(now, frame, IN, IHA, VIA_VPN, "other", peer, outer=src, note=msg.summary())

    def _data(self, role: str, path: str, inner: bytes, src: Address, outer: Address | None, now: float, frame: int):
        from scapy.layers.inet import ICMP, IP

        try:
            ip = IP(inner)
        except Exception as exc:
            self._observe(now, frame, IN, role, path, "data", src, outer=outer, note=f"not IPv4: {exc}")
            return
        icmp = ip.getlayer(ICMP)
        if icmp is not None and icmp.type == 0:
            note = "" if ip.src == self.profile.home_address else f"from {ip.src}, not the home address"
            echo = (int(icmp.id), int(icmp.seq))
            self._observe(now, frame, IN, role, path, "echo-reply", src, outer=outer, echo=echo, note=note)
            return
        self._observe(now, frame, IN, role, path, "data", src, outer=outer, note=ip.summary())

    # ---------------------------------------------------------------- registrations

    def _request(
        self, role: str, path: str, req: Any, data: bytes, src: Address, outer: Address | None, now: float, frame: int
    ) -> None:
        peer = self.profile.i_ha if role == IHA else self.profile.x_ha
        auth, spi = _authenticated(data, peer.sa)
        kinds = [type(e) for e in req.extensions]
        utr = next((e for e in req.extensions if isinstance(e, MIPExtUDPTunnelRequest)), None)
        before = None
        if utr is not None and MIPExtMNHAAuth in kinds:
            before = kinds.index(MIPExtUDPTunnelRequest) < kinds.index(MIPExtMNHAAuth)
        obs = Obs(
            now,
            frame,
            IN,
            role,
            path,
            "request",
            (src[0], int(src[1])),
            outer=outer,
            home_address=req.home_address,
            care_of_address=req.care_of_address,
            lifetime=int(req.lifetime),
            flags=_flags(req),
            identification=int(req.identification),
            udp_tunnel=utr is not None,
            udp_tunnel_f=bool(utr is not None and utr.F),
            udp_tunnel_before_auth=before,
            auth=auth,
            spi=spi,
        )
        knob = XHA if role == XHA else (IHA_VPN if path == VIA_VPN else IHA)
        if req.home_address != peer.home_address:
            self.log.append(replace(obs, action="dropped", note=f"not the {role}'s home address {peer.home_address}"))
            return
        if role == IHA and path == DIRECT and src[0] not in self.inside:
            self.log.append(replace(obs, action="dropped: from outside (RFC 5265 3.1 firewall)"))
            return
        if auth != "valid":
            self.log.append(replace(obs, action=f"dropped: authenticator {auth} with the profile's key"))
            return
        mode = self.knobs[knob]
        pending = _Pending(knob, req, (src[0], int(src[1])), outer, now)
        if mode.mode == "silent":
            self._pending[knob] = pending
            self.log.append(replace(obs, action="silent"))
        elif mode.mode in ("delay", "hold"):
            self._pending[knob] = pending
            if mode.mode == "delay" and knob not in self._release_at:
                self._release_at[knob] = now + mode.delay
            self.log.append(replace(obs, action=f"held ({mode.mode})"))
        elif mode.mode == "deny-once":
            self._pending.pop(knob, None)
            self.log.append(replace(obs, action="answered"))
            self._answer(pending, "deny", now)
            self.knobs[knob] = Knob("silent", mode.code, mode.delay)
        else:
            self._pending.pop(knob, None)
            self.log.append(replace(obs, action="answered"))
            self._answer(pending, mode.mode, now)

    def _answer(self, held: _Pending, mode: str, now: float) -> None:
        """Build and send the reply to ``held`` in ``mode`` (answer | no-tnc | tnc-after-auth | deny)."""
        role = XHA if held.knob == XHA else IHA
        path = VIA_XHA if role == XHA else (VIA_VPN if held.knob == IHA_VPN else DIRECT)
        peer = self.profile.i_ha if role == IHA else self.profile.x_ha
        req = held.request
        code = self.knobs[held.knob].code if mode == "deny" else 0
        lifetime = min(int(req.lifetime), MAX_LIFETIME) if code == 0 else 0
        tnc = None
        if role == IHA and mode != "no-tnc":  # RFC 5265 4.3: the i-HA's replies to trusted sources carry TNC
            tnc = "after-auth" if mode == "tnc-after-auth" else "before-auth"
        exts: list[Any] = []
        if code == 0 and any(isinstance(e, MIPExtUDPTunnelRequest) for e in req.extensions):
            exts.append(MIPExtUDPTunnelReply(code=0))
        if tnc == "before-auth":
            exts.append(MIPExtTNC(subtype=0, reserved=0))
        exts.append(MIPExtMNHAAuth(spi=peer.sa.spi, key=peer.sa.secret, algorithm=peer.sa.algorithm))
        if tnc == "after-auth":
            exts.append(MIPExtTNC(subtype=0, reserved=0))
        reply = bytes(
            RegistrationReply(
                code=code,
                lifetime=lifetime,
                home_address=req.home_address,
                home_agent=peer.address,
                identification=req.identification,
                extensions=exts,
            )
        )
        note = f"{role} reply code {code}" + (f", TNC {tnc}" if tnc else "")
        if path == VIA_VPN:
            xb = self.bindings.get((XHA, VIA_XHA))
            if xb is None:
                return  # nothing to carry the VPN: the x-HA registration is gone
            frame = self._send_via_vpn(reply, held.src, xb.dst, note + " through the VPN")
        else:
            frame = self._send(self.iha_place if role == IHA else self.xha_place, held.src, reply, note)
        self._observe(
            now,
            frame,
            OUT,
            role,
            path,
            "reply",
            held.src,
            outer=held.outer,
            home_address=req.home_address,
            lifetime=lifetime,
            identification=int(req.identification),
            code=code,
            tnc=tnc,
        )
        if code == 0:
            if int(req.lifetime) == 0:
                self.bindings.pop((role, path), None)
            else:
                self.bindings[(role, path)] = Binding(req.home_address, role, path, held.src, held.outer, now)

    def _send_via_vpn(self, mip: bytes, dst: Address, xha_binding: Address, note: str) -> int:
        """i-HA -> (VPN-TIA, port) in IPv4/UDP, sealed in ESP (spi_in), in the x-HA's Tunnel Data."""
        from scapy.layers.inet import IP, UDP
        from scapy.packet import Raw

        _, to_mn = self._esp()
        inner = IP(src=self.iha_place[0], dst=dst[0], ttl=64) / UDP(sport=self.iha_place[1], dport=dst[1]) / Raw(mip)
        sealed = bytes(to_mn.encrypt(IP(bytes(inner))))
        return self._send(self.xha_place, xha_binding, bytes(TunnelData(next_header=4)) + sealed, note)


__all__ = [
    "DIRECT",
    "GW",
    "IHA",
    "IHA_VPN",
    "IN",
    "MODES",
    "OUT",
    "VIA_VPN",
    "VIA_XHA",
    "XHA",
    "Binding",
    "Knob",
    "Obs",
    "Ping",
    "PlayedParties",
]
