"""Dissection with the Scapy layers: the reference path, and the one for anything unusual.

Walks a frame header by header, decoding each header with its Scapy class
(``Ether``, ``IP``, ``UDP``, ``MobileIPMessage``, ``MinimalEncapsulation``,
``AgentAdvertisement``, ``ESP`` ...), decrypting ESP with
``scapy.layers.ipsec.SecurityAssociation`` when an SA for its SPI is known,
and filling a record (see ``record``). The walk itself decides what follows
what, so a malformed header is reported in ``errors`` and dissection stops at
it instead of guessing; nothing here raises for bad packet octets.

``fastpath`` must agree with this module field for field on every packet it
accepts (tests/test_dissect_fastpath.py).
"""

from __future__ import annotations

import struct
from typing import Any

from scapy.fields import BitField, FieldListField, PacketListField
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import ESP, IPSecIntegrityError, SecurityAssociation
from scapy.layers.isakmp import ISAKMP
from scapy.layers.l2 import GRE, CookedLinux, CookedLinuxV2, Dot1Q, Ether, Loopback
from scapy.packet import Packet, Raw

from mipcheck.layers import (
    AgentAdvertisement,
    AgentSolicitation,
    MinimalEncapsulation,
    MIPTruncatedMessage,
    MIPUnknownMessage,
    MobileIPMessage,
    RegistrationReply,
    TunnelData,
)
from mipcheck.layers.agent import (
    AGENT_EXTENSION_CLASSES,
    AgentExtension,
    AgentExtPadding,
    AgentExtUnknown,
)
from mipcheck.layers.auth import iter_extension_spans, verify_message
from mipcheck.layers.extensions import EXTENSION_CLASSES, MIPExtension, MIPExtUnknown
from mipcheck.layers.secret import VirtualField

from . import linktypes as lt
from .keys import ESP_CIPHERS, ESP_INTEGRITY, EspSA, KeyRing, MipKey
from .names import (
    AGENT_ADVERTISEMENT,
    AGENT_SOLICITATION,
    IKE_PORT,
    MESSAGE_LAYER,
    MESSAGE_NAMES,
    MIP_PORT,
    NATT_PORT,
    extension_name,
    numbers,
    reply_code_name,
)
from .noise import LibraryNoise
from .record import TEXT_FIELDS, Record, text

MAX_DEPTH = 16  # nested tunnels before we call it a loop
IKE_HEADER = 28  # octets of the ISAKMP/IKE header (RFC 2408 3.1, RFC 7296 3.1)


# -- Scapy packet -> record values ------------------------------------------


def _value(field: Any, value: Any) -> Any:
    if isinstance(value, bytes):
        return text(value) if field.name in TEXT_FIELDS else value.hex()
    if isinstance(value, Packet):
        return fields_dict(value)
    if isinstance(value, list):
        return [_value(field, v) for v in value]
    if value is None or isinstance(value, bool | str | int):
        return value
    return int(value)  # FlagValue and friends


def _is_flag(field: Any) -> bool:
    return isinstance(field, BitField) and field.size == 1 and len(field.name) == 1


def fields_dict(pkt: Packet, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every wire field of one header, in order; one-bit letter fields go into ``flags``."""
    out: dict[str, Any] = {}
    for field in pkt.fields_desc:
        name = field.name
        if name in skip or isinstance(field, VirtualField):
            continue
        value = pkt.getfieldval(name)
        if _is_flag(field):
            out.setdefault("flags", {})[name] = bool(value)
        elif isinstance(field, PacketListField):
            out[name] = [_element(e) for e in value]
        elif isinstance(field, FieldListField):
            out[name] = [_value(field, v) for v in value]
        else:
            out[name] = _value(field, value)
    return out


def _element(pkt: Packet) -> dict[str, Any]:
    if isinstance(pkt, MIPExtension):
        return extension_dict(pkt)
    if isinstance(pkt, AgentExtension):
        return agent_extension_dict(pkt)
    return fields_dict(pkt)


def extension_dict(ext: MIPExtension) -> dict[str, Any]:
    out: dict[str, Any] = {"type": ext.type, "name": extension_name(ext.type)}
    out.update(fields_dict(ext, skip=("type",)))
    return out


def agent_extension_dict(ext: AgentExtension) -> dict[str, Any]:
    entry = numbers.AGENT_EXTENSION_TYPES.get(ext.type)
    out: dict[str, Any] = {"type": ext.type, "name": entry[0] if entry else f"Unassigned agent extension {ext.type}"}
    out.update(fields_dict(ext, skip=("type",)))
    return out


def message_dict(msg: Packet, raw: bytes, keys: dict[int, MipKey]) -> tuple[dict[str, Any], list[str]]:
    """Record form of a UDP/434 message, and what is malformed in it."""
    t = msg.type
    out: dict[str, Any] = {"type": t, "name": MESSAGE_NAMES.get(t, f"Unknown type {t}")}
    skip: tuple[str, ...] = ("type",)
    if isinstance(msg, RegistrationReply):
        out["code"] = msg.code
        out["code_name"] = reply_code_name(msg.code)
        skip = ("type", "code")
    out["flags"] = {}
    fields = fields_dict(msg, skip=skip)
    out["flags"].update(fields.pop("flags", {}))
    extensions = fields.pop("extensions", [])
    out.update(fields)
    errors: list[str] = []
    if isinstance(msg, MIPUnknownMessage | MIPTruncatedMessage):
        errors.append(msg.error)
        out["extensions"] = []
        out["auth"] = []
        return out, errors
    out["extensions"] = [e for e in extensions if "name" in e]
    if isinstance(msg, TunnelData):
        out["auth"] = []
        return out, errors
    errors.extend(extension_errors(raw, msg.fixed_size, msg.extensions))
    out["auth"] = [
        {"type": c.ext_type, "spi": c.spi, "verified": c.valid} for c in verify_message(raw, msg.fixed_size, keys)
    ]
    return out, errors


def extension_errors(raw: bytes, start: int, parsed: list[Packet]) -> list[str]:
    """Truncated or too-short extensions and stray octets (RFC 5944 1.9 framing)."""
    errors = []
    end = start
    for ext_type, off, hdr, length in iter_extension_spans(raw, start):
        if off + hdr + length > len(raw):
            errors.append(
                f"{extension_name(ext_type)} extension truncated: Length {length}, {len(raw) - off - hdr} octets "
                "present"
            )
        end = off + hdr + length
    if end < len(raw):
        errors.append(f"{len(raw) - end} stray octet(s) after the last extension")
    for ext in parsed:
        cls = EXTENSION_CLASSES.get(ext.type) if isinstance(ext, MIPExtension) else None
        length = getattr(ext, "length", None)
        if cls is not None and isinstance(ext, MIPExtUnknown) and length is not None and length < cls.min_body:
            need = cls.min_body
            errors.append(
                f"malformed {extension_name(ext.type)} extension: Length {length} is below its fixed {need} octets"
            )
    return errors


def agent_dict(msg: Packet) -> tuple[dict[str, Any], list[str]]:
    name = AGENT_ADVERTISEMENT if isinstance(msg, AgentAdvertisement) else AGENT_SOLICITATION
    out: dict[str, Any] = {"type": msg.type, "name": name, "flags": {}}
    fields = fields_dict(msg, skip=("type",))
    out.update(fields)
    out.setdefault("extensions", [])
    out["extensions"] = [e for e in out["extensions"] if "name" in e]
    out["auth"] = []
    errors = []
    for ext in getattr(msg, "extensions", []):
        length = getattr(ext, "length", None)
        if not isinstance(ext, AgentExtension) or (isinstance(ext, AgentExtUnknown) and length is None):
            errors.append("stray octet after the last agent advertisement extension")
        elif (
            isinstance(ext, AgentExtUnknown)
            and ext.type in AGENT_EXTENSION_CLASSES
            and not isinstance(ext, AgentExtPadding)
        ):
            errors.append(f"malformed agent advertisement extension {ext.type}: Length {length}")
    return out, errors


# -- ESP ------------------------------------------------------------------


class EspDecryptor:
    """Scapy SecurityAssociations built once per SPI from the key ring."""

    def __init__(self, ring: KeyRing) -> None:
        self._sas: dict[int, SecurityAssociation] = {}
        self._specs = ring.esp

    def get(self, spi: int) -> SecurityAssociation | None:
        if spi not in self._specs:
            return None
        if spi not in self._sas:
            self._sas[spi] = make_sa(self._specs[spi])
        return self._sas[spi]


def make_sa(spec: EspSA) -> SecurityAssociation:
    return SecurityAssociation(
        ESP,
        spi=spec.spi,
        crypt_algo=ESP_CIPHERS[spec.encryption],
        crypt_key=spec.encryption_key or None,
        auth_algo=ESP_INTEGRITY[spec.authentication],
        auth_key=spec.authentication_key or None,
    )


# -- the walk ---------------------------------------------------------------


class _Walk:
    def __init__(self, record: Record, ring: KeyRing | None, esp: EspDecryptor | None, tree: bool) -> None:
        self.r = record
        self.layers: list[str] = record["layers"]
        self.errors: list[str] = record["errors"]
        self.keys: dict[int, MipKey] = dict(ring.mip) if ring else {}
        self.esp = esp
        self.tree: list[tuple[str, Packet | None, str]] | None = [] if tree else None
        self.src: str | None = None
        self.dst: str | None = None
        self.ports: tuple[int, int] | None = None
        self.mip_at: tuple[str | None, str | None, tuple[int, int] | None] | None = None
        self.depth = 0

    def add(self, name: str, pkt: Packet | None = None, note: str = "") -> None:
        self.layers.append(name)
        if self.tree is not None:
            self.tree.append((name, pkt, note))

    def finish(self) -> None:
        src, dst, ports = self.mip_at if self.mip_at is not None else (self.src, self.dst, self.ports)
        self.r["src"], self.r["dst"] = src, dst
        if ports is not None:
            self.r["sport"], self.r["dport"] = ports

    # link layer ------------------------------------------------------------

    def link(self, data: bytes, linktype: int) -> None:
        if linktype == lt.ETHERNET:
            if len(data) < 14:
                self.errors.append(f"truncated Ethernet header: {len(data)} octets")
                return
            self.add("Ethernet", Ether(data[:14]))
            ethertype, off = struct.unpack_from("!H", data, 12)[0], 14
            if ethertype == 0x8100:
                if len(data) < 18:
                    self.errors.append("truncated 802.1Q tag")
                    return
                self.add("802.1Q", Dot1Q(data[14:18]))
                ethertype, off = struct.unpack_from("!H", data, 16)[0], 18
            self.network(ethertype, data, off)
        elif linktype == lt.LINUX_SLL:
            if len(data) < 16:
                self.errors.append(f"truncated Linux cooked (SLL) header: {len(data)} octets")
                return
            sll = CookedLinux(data[:16])
            self.add("SLL", sll)
            self.network(sll.proto, data, 16)
        elif linktype == lt.LINUX_SLL2:
            if len(data) < 20:
                self.errors.append(f"truncated Linux cooked (SLL2) header: {len(data)} octets")
                return
            sll2 = CookedLinuxV2(data[:20])
            self.add("SLL2", sll2)
            self.network(sll2.proto, data, 20)
        elif linktype in lt.RAW:
            version = data[0] >> 4 if data else 0
            self.network(0x86DD if version == 6 else 0x0800, data, 0)
        elif linktype == lt.NULL:
            if len(data) < 4:
                self.errors.append("truncated loopback header")
                return
            family = struct.unpack_from("<I", data, 0)[0]
            if family > 0xFFFF:
                family = struct.unpack_from(">I", data, 0)[0]
            self.add("Loopback", Loopback(data[:4]))
            self.network(0x0800 if family == 2 else 0x86DD if family in lt.BSD_AF_INET6 else -1, data, 4)
        else:
            self.errors.append(f"unsupported link type {linktype}")

    def network(self, ethertype: int, data: bytes, off: int) -> None:
        if ethertype == 0x0800:
            self.ipv4(data, off, len(data))
        elif ethertype == 0x86DD:
            if len(data) - off < 40:
                self.errors.append(f"truncated IPv6 header: {len(data) - off} octets")
                return
            ip6 = IPv6(data[off : off + 40])
            self.add("IPv6", ip6)
            self.src, self.dst, self.ports = ip6.src, ip6.dst, None
        elif ethertype == 0x0806:
            self.add("ARP")
        else:
            self.add(f"ethertype 0x{ethertype & 0xFFFF:04x}")

    # IPv4 and what it carries ------------------------------------------------

    def ipv4(self, data: bytes, off: int, end: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.errors.append(f"more than {MAX_DEPTH} nested headers; stopped")
            return
        avail = end - off
        if avail < 20:
            self.errors.append(f"truncated IPv4 header: {avail} octets")
            return
        version, ihl = data[off] >> 4, (data[off] & 0x0F) * 4
        if version != 4:
            self.errors.append(f"IP version {version} where IPv4 was expected")
            return
        if ihl < 20 or ihl > avail:
            self.errors.append(f"bad IPv4 header length {ihl}")
            return
        ip = IP(data[off : off + ihl])
        self.add("IP", ip)
        self.r["ip"].append({"src": ip.src, "dst": ip.dst, "proto": ip.proto})
        self.src, self.dst, self.ports = ip.src, ip.dst, None
        total = ip.len
        if total < ihl:
            self.errors.append(f"IPv4 total length {total} is shorter than its header ({ihl})")
            return
        if total > avail:
            self.errors.append(f"IPv4 packet truncated: total length {total}, {avail} octets captured")
            total = avail
        if ip.frag or ip.flags.MF:
            self.add("Fragment")
            return
        self.payload(ip.proto, data, off + ihl, off + total)

    def payload(self, proto: int, data: bytes, off: int, end: int) -> None:
        if proto == 4:
            self.ipv4(data, off, end)
        elif proto == 17:
            self.udp(data, off, end)
        elif proto == 6:
            if end - off < 20:
                self.errors.append(f"truncated TCP header: {end - off} octets")
                return
            tcp = TCP(data[off : off + 20])
            self.add("TCP", tcp)
            self.ports = (tcp.sport, tcp.dport)
        elif proto == 1:
            self.icmp(data, off, end)
        elif proto == 50:
            self.esp_payload(data[off:end])
        elif proto == 51:
            self.add("AH")
        elif proto == numbers.IPPROTO_MINENC:
            self.minenc(data, off, end)
        elif proto == 47:
            self.gre(data, off, end)

    def udp(self, data: bytes, off: int, end: int) -> None:
        if end - off < 8:
            self.errors.append(f"truncated UDP header: {end - off} octets")
            return
        udp = UDP(data[off : off + 8])
        self.add("UDP", udp)
        self.ports = (udp.sport, udp.dport)
        length = udp.len
        if length < 8:
            self.errors.append(f"UDP length {length} is below the 8-octet header")
            return
        if off + length > end:
            self.errors.append(f"UDP datagram truncated: length {length}, {end - off} octets captured")
            length = end - off
        body = data[off + 8 : off + length]
        ports = (udp.sport, udp.dport)
        if MIP_PORT in ports:
            self.mip(body, data, off + 8, off + length)
        elif NATT_PORT in ports:
            self.natt(body)
        elif IKE_PORT in ports:
            self.ike(body)

    def mip(self, body: bytes, data: bytes, off: int, end: int) -> None:
        if not body:
            self.errors.append("empty Mobile IP message (UDP port 434 with no payload)")
            return
        self.mip_at = (self.src, self.dst, self.ports)
        if body[0] == numbers.MSG_TUNNEL_DATA and len(body) >= TunnelData.fixed_size:
            msg = TunnelData(body[:4])
            self.add(MESSAGE_LAYER[numbers.MSG_TUNNEL_DATA], msg)
            self.r["mip"], _ = message_dict(msg, body[:4], self.keys)
            nh = msg.next_header
            if nh in (4, numbers.IPPROTO_MINENC, 47):
                self.payload(nh, data, off + 4, end)
            else:
                self.errors.append(f"tunnel data with unknown next header {nh}")
            return
        msg = MobileIPMessage(body)
        self.add(
            MESSAGE_LAYER.get(msg.type, "MIP")
            if not isinstance(msg, MIPUnknownMessage | MIPTruncatedMessage)
            else "MIP",
            msg,
        )
        self.r["mip"], errors = message_dict(msg, body, self.keys)
        self.errors.extend(errors)

    def icmp(self, data: bytes, off: int, end: int) -> None:
        body = data[off:end]
        if len(body) >= 8 and body[0] in (numbers.ICMP_ROUTER_ADVERTISEMENT, numbers.ICMP_ROUTER_SOLICITATION):
            cls = AgentAdvertisement if body[0] == numbers.ICMP_ROUTER_ADVERTISEMENT else AgentSolicitation
            msg = cls(body)
            self.add(AGENT_ADVERTISEMENT if cls is AgentAdvertisement else AGENT_SOLICITATION, msg)
            self.mip_at = (self.src, self.dst, None)
            self.r["mip"], errors = agent_dict(msg)
            self.errors.extend(errors)
            return
        if len(body) < 4:
            self.errors.append(f"truncated ICMP header: {len(body)} octets")
            return
        self.add("ICMP", _icmp_header(body[:8]) if len(body) >= 8 else None)

    def natt(self, body: bytes) -> None:
        """RFC 3948 2.1-2.3: 0xFF keepalive, zero Non-ESP Marker before IKE, else ESP."""
        if body == b"\xff":
            self.add("NAT-Keepalive")
        elif len(body) >= 4 and body[:4] == b"\x00\x00\x00\x00":
            self.add("Non-ESP Marker")
            self.ike(body[4:])
        else:
            self.esp_payload(body)

    def ike(self, body: bytes) -> None:
        """RFC 7296 3.1 (RFC 2408 3.1): a 28-octet header, then payloads Scapy decodes for --tree."""
        if len(body) < IKE_HEADER:
            self.add("IKE")
            self.errors.append(f"truncated IKE header: {len(body)} octets, needs {IKE_HEADER}")
            return
        try:
            header = ISAKMP(body)
        except Exception as exc:  # noqa: BLE001 - Scapy's payload layouts raise struct.error and others on damage
            self.add("IKE", Raw(body))
            self.errors.append(f"malformed IKE message: {type(exc).__name__}: {exc}")
            return
        self.add("IKE", header)

    def esp_payload(self, body: bytes) -> None:
        if len(body) < 8:
            self.errors.append(f"truncated ESP header: {len(body)} octets")
            return
        spi, seq = struct.unpack_from("!II", body, 0)
        entry = {"spi": spi, "seq": seq, "decrypted": False}
        self.r["esp"].append(entry)
        esp = ESP(body)
        sa = self.esp.get(spi) if self.esp is not None else None
        if sa is None:
            self.add("ESP", esp)
            return
        try:
            outer = IP(src=self.src or "0.0.0.0", dst=self.dst or "0.0.0.0", proto=50) / esp
            plain = sa.decrypt(IP(bytes(outer)))
        except IPSecIntegrityError:
            self.add("ESP", esp)
            self.errors.append(f"ESP SPI 0x{spi:08x}: integrity check failed (wrong key, or the packet was altered)")
            return
        except Exception as exc:  # noqa: BLE001 - any decryption failure is a packet error, not a crash
            self.add("ESP", esp)
            self.errors.append(f"ESP SPI 0x{spi:08x}: cannot decrypt ({type(exc).__name__})")
            return
        entry["decrypted"] = True
        self.add("ESP", esp, note=f"decrypted, next header {plain.proto}")
        inner = bytes(plain.payload)
        self.payload(plain.proto, inner, 0, len(inner))

    def minenc(self, data: bytes, off: int, end: int) -> None:
        """RFC 2004 3.1: 8-octet header, 12 with the original source (S bit)."""
        avail = end - off
        if avail < 8:
            self.errors.append(f"truncated minimal encapsulation header: {avail} octets")
            return
        size = 12 if data[off + 1] & 0x80 else 8
        if avail < size:
            self.errors.append(f"truncated minimal encapsulation header: {avail} octets, needs {size}")
            return
        hdr = MinimalEncapsulation(data[off : off + size])
        self.add("MinEnc", hdr)
        if not hdr.checksum_ok():
            self.errors.append("minimal encapsulation header checksum is wrong")
        src = hdr.src if hdr.S else self.src
        self.r["ip"].append({"src": src, "dst": hdr.dst, "proto": hdr.proto})
        self.src, self.dst, self.ports = src, hdr.dst, None
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.errors.append(f"more than {MAX_DEPTH} nested headers; stopped")
            return
        self.payload(hdr.proto, data, off + size, end)

    def gre(self, data: bytes, off: int, end: int) -> None:
        """RFC 2784/2890: 4 octets, plus checksum, key and sequence words when flagged."""
        if end - off < 4:
            self.errors.append(f"truncated GRE header: {end - off} octets")
            return
        flags = data[off]
        size = 4 + 4 * bool(flags & 0xC0) + 4 * bool(flags & 0x20) + 4 * bool(flags & 0x10)
        if end - off < size:
            self.errors.append(f"truncated GRE header: {end - off} octets, needs {size}")
            return
        gre = GRE(data[off : off + size])
        self.add("GRE", gre)
        if gre.proto == 0x0800:
            self.ipv4(data, off + size, end)


def _icmp_header(head: bytes) -> Packet:
    """The first 8 octets of an ICMP message other than agent discovery, for --tree.

    Mobile IP is not about these, and the fast path does not judge them, so
    neither does this one: Scapy's ICMP raises on some types when the octets
    after the first 8 are absent (address mask, type 17/18), and then the
    header is shown raw instead of calling the packet malformed.
    """
    try:
        return ICMP(head)
    except Exception:  # noqa: BLE001 - Scapy's per-type layouts raise struct.error and others
        return Raw(head)


def dissect_frame(
    data: bytes,
    linktype: int,
    record: Record,
    ring: KeyRing | None = None,
    esp: EspDecryptor | None = None,
    tree: bool = False,
) -> list[tuple[str, Packet | None, str]] | None:
    """Fill ``record`` from one captured frame; with ``tree`` also return the decoded headers."""
    walk = _Walk(record, ring, esp if esp is not None else (EspDecryptor(ring) if ring else None), tree)
    with LibraryNoise() as noise:
        try:
            walk.link(data, linktype)
        except Exception as exc:  # noqa: BLE001 - a layer bug must not end the run; report it on the packet
            walk.errors.append(f"dissection failed: {type(exc).__name__}: {exc}")
    walk.errors.extend(noise.messages)
    walk.finish()
    return walk.tree


__all__ = ["EspDecryptor", "dissect_frame", "extension_dict", "fields_dict", "make_sa", "message_dict"]
