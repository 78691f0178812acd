"""Lean ``struct``-level decoder for the packets captures are mostly made of.

Scapy builds several Python objects per header, about 200 µs a packet; this
module reads the same fields with ``struct`` and plain indexing, a few µs a
packet, for the common shapes only: Ethernet (optionally one 802.1Q tag),
Linux cooked (SLL) or raw IPv4; unfragmented IPv4, IP-in-IP, UDP, TCP and
ICMP; Mobile IP messages on UDP 434 (RRQ, RRP, revocation, revocation ack,
and tunnel data carrying IP-in-IP, RFC 3519 3.3) with well-formed extensions.

Anything else - malformed or truncated headers, fragments, ESP, NAT
traversal, IKE, minimal encapsulation, GRE, agent advertisements, SLL2,
IPv6 - makes ``decode`` return None and the caller hands the frame to
``layered``, which also writes the error messages. Whatever ``decode``
accepts, ``record_of`` and ``summary_of`` must give exactly what ``layered``
and ``record.summary_body`` give for it; tests/test_dissect_fastpath.py holds
them to that with generated and mutated packets.
"""

from __future__ import annotations

from hmac import compare_digest
from socket import inet_ntoa
from struct import Struct
from typing import Any

from mipcheck.proto import codec
from mipcheck.proto.extensions import AUTHENTICATOR_TYPES

from . import linktypes as lt
from .keys import MipKey
from .names import (
    EXTENSION_LABELS,
    IKE_PORT,
    MESSAGE_LAYER,
    MESSAGE_NAMES,
    MIP_PORT,
    NATT_PORT,
    extension_label,
    extension_name,
    numbers,
)
from .record import LINK_LAYERS, Record, text

_IPV4 = Struct("!BBHHHBBH4s4s")
_PORTS3 = Struct("!HHH")
_IPV4_UDP = Struct("!BHHHBBH4s4sHHH")  # IPv4 from its second octet, then UDP ports and length
_U16 = Struct("!H")
_U32 = Struct("!I")
# Message layouts (RFC 5944 3.3/3.4, RFC 3519 3.3, RFC 3543 3.1/3.2) come from the codec.
_RRQ = codec.RRQ_FIXED
_RRP = codec.RRP_FIXED
_REVOCATION = codec.REVOCATION_FIXED
_REVOCATION_ACK = codec.REVOCATION_ACK_FIXED
_FIXED = codec.FIXED_SIZES
_RRQ_SIZE = _RRQ.size
_RRP_SIZE = _RRP.size
# None unless the extensions tile the message and each holds its fixed body (as the layers model them).
_extensions = codec.modelled_extensions
_RRQ_FLAGS = numbers.RRQ_FLAG_LETTERS
_reply_code_name = numbers.reply_code_name

_addr_cache: dict[bytes, str] = {}


_cached = _addr_cache.get


def _ip(b: bytes) -> str:
    """Dotted quad; addresses repeat a lot in captures, so they are cached."""
    s = _cached(b)
    if s is None:
        if len(_addr_cache) > 65536:
            _addr_cache.clear()
        s = _addr_cache[b] = inet_ntoa(b)
    return s


def _letters(names: tuple[str, ...], top: int) -> tuple[str, ...]:
    """Flag letters set in each possible value of a flags field, "-" for none."""
    return tuple(
        "".join(name for i, name in enumerate(names) if value & (top >> i)) or "-" for value in range(top << 1)
    )


_RRQ_LETTERS = _letters(_RRQ_FLAGS, 0x80)
_REVOCATION_LETTERS = _letters(("A", "I"), 0x2)
_ACK_LETTERS = ("-", "I")


def decode(data: bytes, linktype: int) -> tuple | None:
    """Structure of one frame, or None when ``layered`` must handle it.

    Returns (layers, ips, src, dst, ports, mip) with ``mip`` = (type, data,
    start, end, extensions) of the innermost Mobile IP message or None.
    """
    n = len(data)
    if linktype == 1 and n >= 43 and data[12] == 0x08 and data[13] == 0x00 and data[14] == 0x45:
        # The shape of nearly every registration: Ethernet, 20-octet IPv4 header, UDP, RRQ/RRP.
        _tos, total, _ident, frag, _ttl, proto, _ck, src_b, dst_b, sport, dport, ulen = _IPV4_UDP.unpack_from(data, 15)
        end = 34 + ulen
        if (
            proto == 17
            and not frag & 0x3FFF
            and 14 + total <= n
            and 28 <= ulen + 20 <= total
            and (sport == MIP_PORT or dport == MIP_PORT)
        ):
            mtype = data[42]
            fixed = _RRQ_SIZE if mtype == 1 else _RRP_SIZE if mtype == 3 else 0
            if fixed and end - 42 >= fixed:
                exts = _extensions(data, 42 + fixed, end)
                if exts is not None:
                    src, dst = _cached(src_b) or _ip(src_b), _cached(dst_b) or _ip(dst_b)
                    return (
                        ["Ethernet", "IP", "UDP", "RRQ" if mtype == 1 else "RRP"],
                        [(src, dst, 17)],
                        src,
                        dst,
                        (sport, dport),
                        (mtype, data, 42, end, exts),
                    )
    if linktype == lt.ETHERNET:
        if n < 34:
            return None
        ethertype = (data[12] << 8) | data[13]
        if ethertype == 0x0800:
            layers, off = ["Ethernet"], 14
        elif ethertype == 0x8100 and n >= 38 and data[16] == 0x08 and data[17] == 0x00:
            layers, off = ["Ethernet", "802.1Q"], 18
        else:
            return None
    elif linktype == lt.LINUX_SLL:
        if n < 36 or data[14] != 0x08 or data[15] != 0x00:
            return None
        layers, off = ["SLL"], 16
    elif linktype in lt.RAW:
        layers, off = [], 0
    else:
        return None
    ips: list[tuple[str, str, int]] = []
    end = n
    ports = None
    mip = None
    mip_at = None
    for _depth in range(16):
        # IPv4 header at off, datagram bounded by end
        if end - off < 20:
            return None
        vihl, _tos, total, _ident, frag, _ttl, proto, _ck, src_b, dst_b = _IPV4.unpack_from(data, off)
        ihl = (vihl & 0x0F) << 2
        if vihl >> 4 != 4 or ihl < 20 or total < ihl or off + total > end or frag & 0x3FFF:
            return None
        src, dst = _ip(src_b), _ip(dst_b)
        layers.append("IP")
        ips.append((src, dst, proto))
        ports = None
        end = off + total
        off += ihl
        if proto == 4:
            continue
        if proto == 17:
            if end - off < 8:
                return None
            sport, dport, ulen = _PORTS3.unpack_from(data, off)
            if ulen < 8 or off + ulen > end:
                return None
            layers.append("UDP")
            ports = (sport, dport)
            body, end = off + 8, off + ulen
            if sport == MIP_PORT or dport == MIP_PORT:
                if body >= end:
                    return None
                mtype = data[body]
                if mtype == numbers.MSG_TUNNEL_DATA:
                    # RFC 3519 3.3: Type, Next Header, Reserved, then the tunnelled packet
                    if end - body < 4 or data[body + 1] != 4:
                        return None
                    layers.append("Tunnel Data")
                    mip = (mtype, data, body, body + 4, None)
                    mip_at = (src, dst, ports)
                    off = body + 4
                    continue
                fixed = _FIXED.get(mtype)
                if fixed is None or end - body < fixed:
                    return None
                exts = _extensions(data, body + fixed, end)
                if exts is None:
                    return None
                layers.append(MESSAGE_LAYER[mtype])
                mip = (mtype, data, body, end, exts)
                mip_at = (src, dst, ports)
                break
            if sport in (NATT_PORT, IKE_PORT) or dport in (NATT_PORT, IKE_PORT):
                return None
            break
        if proto == 6:
            if end - off < 20:
                return None
            sport, dport, _ = _PORTS3.unpack_from(data, off)
            layers.append("TCP")
            ports = (sport, dport)
            break
        if proto == 1:
            if end - off < 8 or data[off] in (numbers.ICMP_ROUTER_ADVERTISEMENT, numbers.ICMP_ROUTER_SOLICITATION):
                return None
            layers.append("ICMP")
            break
        if proto in (47, 50, 51, numbers.IPPROTO_MINENC):
            return None
        break
    else:
        return None
    if mip_at is not None:
        src, dst, ports = mip_at
    return layers, ips, src, dst, ports, mip


# -- records ------------------------------------------------------------------


def _verify(data: bytes, start: int, exts: list, keys: dict[int, MipKey] | None) -> list[dict[str, Any]]:
    """RFC 5944 3.5.1: the authenticator covers the message up to and including this SPI."""
    out = []
    for t, eoff, hdr, length in exts:
        if t not in AUTHENTICATOR_TYPES:
            continue
        spi_end = eoff + hdr + 4
        spi = _U32.unpack_from(data, eoff + hdr)[0]
        key = keys.get(spi) if keys else None
        verified = None
        if key is not None:
            digest = codec.authenticator(key.algorithm, key.key, data[start:spi_end])
            verified = compare_digest(digest, data[spi_end : eoff + hdr + length])
        out.append({"type": t, "spi": spi, "verified": verified})
    return out


def _extension_dict(data: bytes, t: int, eoff: int, hdr: int, length: int) -> dict[str, Any]:
    b = eoff + hdr  # first body octet
    body_end = b + length
    out: dict[str, Any] = {"type": t, "name": extension_name(t)}
    if t in (numbers.EXT_MN_HA_AUTH, numbers.EXT_MN_FA_AUTH, numbers.EXT_FA_HA_AUTH):
        out["length"] = length
        out["spi"] = _U32.unpack_from(data, b)[0]
        out["authenticator"] = data[b + 4 : body_end].hex()
    elif t == numbers.EXT_GEN_AUTH:
        out["subtype"] = data[eoff + 1]
        out["length"] = length
        out["spi"] = _U32.unpack_from(data, b)[0]
        out["authenticator"] = data[b + 4 : body_end].hex()
    elif t == numbers.EXT_CVSE:
        out["reserved"] = data[eoff + 1]
        out["length"] = length
        out["vendor_id"] = _U32.unpack_from(data, b)[0]
        out["vendor_type"] = _U16.unpack_from(data, b + 4)[0]
        out["value"] = data[b + 6 : body_end].hex()
    elif t == numbers.EXT_NVSE:
        out["length"] = length
        out["reserved"] = _U16.unpack_from(data, b)[0]
        out["vendor_id"] = _U32.unpack_from(data, b + 2)[0]
        out["vendor_type"] = _U16.unpack_from(data, b + 6)[0]
        out["value"] = data[b + 8 : body_end].hex()
    elif t == numbers.EXT_NAI:
        out["length"] = length
        out["nai"] = text(data[b:body_end])
    elif t == numbers.EXT_MN_FA_CHALLENGE:
        out["length"] = length
        out["challenge"] = data[b:body_end].hex()
    elif t == numbers.EXT_REVOCATION_SUPPORT:
        word = _U16.unpack_from(data, b)[0]
        out["length"] = length
        out["flags"] = {"I": bool(word & 0x8000)}
        out["reserved"] = word & 0x7FFF
        out["timestamp"] = _U32.unpack_from(data, b + 2)[0]
        out["extra"] = data[b + 6 : body_end].hex()
    elif t == numbers.EXT_UDP_TUNNEL_REQUEST:
        flags = data[b + 2]
        out["length"] = length
        out["subtype"] = data[b]
        out["reserved1"] = data[b + 1]
        out["flags"] = {"F": bool(flags & 0x80), "R": bool(flags & 0x40)}
        out["reserved2"] = flags & 0x3F
        out["encapsulation"] = data[b + 3]
        out["reserved3"] = _U16.unpack_from(data, b + 4)[0]
        out["extra"] = data[b + 6 : body_end].hex()
    elif t == numbers.EXT_UDP_TUNNEL_REPLY:
        word = _U16.unpack_from(data, b + 2)[0]
        out["length"] = length
        out["subtype"] = data[b]
        out["code"] = data[b + 1]
        out["flags"] = {"F": bool(word & 0x8000)}
        out["reserved"] = word & 0x7FFF
        out["keepalive"] = _U16.unpack_from(data, b + 4)[0]
        out["extra"] = data[b + 6 : body_end].hex()
    elif t == numbers.EXT_MESSAGE_STRING:
        out["length"] = length
        out["subtype"] = data[b]
        out["text"] = text(data[b + 1 : body_end])
    elif t == numbers.EXT_TNC:
        out["length"] = length
        out["subtype"] = data[b]
        out["reserved"] = data[b + 1]
        out["extra"] = data[b + 2 : body_end].hex()
    else:
        out["length"] = length
        out["data"] = data[b:body_end].hex()
    return out


def _message_dict(mip: tuple, keys: dict[int, MipKey] | None) -> dict[str, Any]:
    mtype, data, start, end, exts = mip
    out: dict[str, Any] = {"type": mtype, "name": MESSAGE_NAMES[mtype]}
    if mtype == numbers.MSG_RRQ:
        _t, flags, life, hoa, ha, coa, ident = _RRQ.unpack_from(data, start)
        out["flags"] = {name: bool(flags & (0x80 >> i)) for i, name in enumerate(_RRQ_FLAGS)}
        out["lifetime"] = life
        out["home_address"] = _ip(hoa)
        out["home_agent"] = _ip(ha)
        out["care_of_address"] = _ip(coa)
        out["identification"] = ident
    elif mtype == numbers.MSG_RRP:
        _t, code, life, hoa, ha, ident = _RRP.unpack_from(data, start)
        out["code"] = code
        out["code_name"] = numbers.reply_code_name(code)
        out["flags"] = {}
        out["lifetime"] = life
        out["home_address"] = _ip(hoa)
        out["home_agent"] = _ip(ha)
        out["identification"] = ident
    elif mtype == numbers.MSG_TUNNEL_DATA:
        out["flags"] = {}
        out["next_header"] = data[start + 1]
        out["reserved"] = _U16.unpack_from(data, start + 2)[0]
        out["extensions"] = []
        out["auth"] = []
        return out
    elif mtype == numbers.MSG_REVOCATION:
        _t, reserved, word, hoa, hda, fda, rev_id = _REVOCATION.unpack_from(data, start)
        out["flags"] = {"A": bool(word & 0x8000), "I": bool(word & 0x4000)}
        out["reserved"] = reserved
        out["reserved2"] = word & 0x3FFF
        out["home_address"] = _ip(hoa)
        out["home_domain_address"] = _ip(hda)
        out["foreign_domain_address"] = _ip(fda)
        out["revocation_id"] = rev_id
    else:  # revocation acknowledgment
        _t, reserved, word, hoa, rev_id = _REVOCATION_ACK.unpack_from(data, start)
        out["flags"] = {"I": bool(word & 0x8000)}
        out["reserved"] = reserved
        out["reserved2"] = word & 0x7FFF
        out["home_address"] = _ip(hoa)
        out["revocation_id"] = rev_id
    out["extensions"] = [_extension_dict(data, *ext) for ext in exts]
    out["auth"] = _verify(data, start, exts, keys)
    return out


def record_of(decoded: tuple, record: Record, keys: dict[int, MipKey] | None = None) -> Record:
    """Fill ``record`` (from ``record.new_record``) with what ``decode`` found."""
    layers, ips, src, dst, ports, mip = decoded
    record["layers"] = layers
    record["ip"] = [{"src": s, "dst": d, "proto": p} for s, d, p in ips]
    record["src"], record["dst"] = src, dst
    if ports is not None:
        record["sport"], record["dport"] = ports
    if mip is not None:
        record["mip"] = _message_dict(mip, keys)
    return record


# -- summary ------------------------------------------------------------------


def _ext_labels(data: bytes, start: int, exts: list, keys: dict[int, MipKey] | None) -> str:
    """`` ext=[NAI, MN-HA Auth(256) ok]`` as ``record.extension_list`` writes it."""
    if not exts:
        return ""
    labels = []
    add = labels.append
    checks = iter(_verify(data, start, exts, keys)) if keys else None
    for t, eoff, hdr, _length in exts:
        label = EXTENSION_LABELS.get(t) or extension_label(t)
        if t in AUTHENTICATOR_TYPES:
            label = f"{label}({_U32.unpack_from(data, eoff + hdr)[0]})"
            if checks is not None:
                verdict = next(checks)["verified"]
                if verdict is not None:
                    label += " ok" if verdict else " BAD"
        add(label)
    return " ext=[" + ", ".join(labels) + "]"


def summary_of(decoded: tuple, keys: dict[int, MipKey] | None = None) -> str:
    """The summary line after frame and time: the same text as ``record.summary_body``."""
    layers, ips, src, dst, ports, mip = decoded
    addr = f"{src} -> {dst}" if ports is None else f"{src}:{ports[0]} -> {dst}:{ports[1]}"
    if mip is None:
        what = layers[-1]
    else:
        mtype, data, start, end, exts = mip
        ip = _cached
        if mtype == 1:  # RRQ
            _t, flags, life, hoa, ha, coa, ident = _RRQ.unpack_from(data, start)
            what = (
                f"RRQ flags={_RRQ_LETTERS[flags]} life={life} HoA={ip(hoa) or _ip(hoa)} "
                f"HA={ip(ha) or _ip(ha)} CoA={ip(coa) or _ip(coa)} "
                f"id=0x{ident:016x}{_ext_labels(data, start, exts, keys)}"
            )
        elif mtype == 3:  # RRP
            _t, code, life, hoa, ha, ident = _RRP.unpack_from(data, start)
            what = (
                f"RRP code={code} ({_reply_code_name(code)}) life={life} HoA={ip(hoa) or _ip(hoa)} "
                f"HA={ip(ha) or _ip(ha)} id=0x{ident:016x}{_ext_labels(data, start, exts, keys)}"
            )
        elif mtype == numbers.MSG_TUNNEL_DATA:
            nh = data[start + 1]
            what = f"Tunnel Data next={numbers.NEXT_HEADERS.get(nh, nh)}"
        elif mtype == numbers.MSG_REVOCATION:
            _t, _r, word, hoa, hda, fda, rev_id = _REVOCATION.unpack_from(data, start)
            what = (
                f"Revocation flags={_REVOCATION_LETTERS[word >> 14]} HoA={_ip(hoa)} HDA={_ip(hda)} "
                f"FDA={_ip(fda)} id={rev_id}{_ext_labels(data, start, exts, keys)}"
            )
        else:
            _t, _r, word, hoa, rev_id = _REVOCATION_ACK.unpack_from(data, start)
            what = (
                f"Revocation Ack flags={_ACK_LETTERS[word >> 15]} HoA={_ip(hoa)} "
                f"id={rev_id}{_ext_labels(data, start, exts, keys)}"
            )
    if len(ips) >= 2:
        nesting = "/".join(name for name in layers if name not in LINK_LAYERS)
        return f"{addr} {what} [{ips[0][0]} -> {ips[0][1]}: {nesting}]"
    return f"{addr} {what}"
