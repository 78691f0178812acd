"""The MN fuzzing strategies: each a named, documented way to break what a home agent sends a mobile node.

:func:`generate` picks a strategy and everything else from the case's own
generator (:func:`~mipcheck.fuzz.case.case_rng`), so (seed, index) name the
case for a given profile. Reply strategies start from the reply the
loopback stacks expect (docs/design/mn-loopback.md: code 0, the lifetime
asked for, a UDP Tunnel Reply, the i-HA's TNC extension, then the MN-HA
authenticator), from the i-HA or, in about one case in six, from the x-HA,
and add mutations (:mod:`mipcheck.fuzz.case` operations); about half of them
are signed after mutation with the sending party's key, so that they reach
what lies behind the device's authentication check. Tunnel-data strategies
build MIP Tunnel Data (RFC 3519 3.3) the i-HA sends after a valid
registration.
"""

from __future__ import annotations

import random
import socket
import struct
from collections.abc import Callable

from mipcheck.proto import codec
from mipcheck.proto import numbers as n
from mipcheck.proto.codec import RRP_FIXED
from mipcheck.proto.extensions import EXTENSIONS, LONG_FORMAT_TYPES, TNC_EXTENSION
from mipcheck.proto.ip import (
    ICMP_ECHO_REPLY,
    ICMP_ECHO_REQUEST,
    PROTO_ICMP,
    PROTO_IPIP,
    build_icmp_echo,
    build_ipv4,
    build_udp_ipv4,
    checksum,
)

from ..case import Draft, Op, boundaries, case_rng
from ..strategies import ADDRESS_EDGES, IDENT_EPOCH, NONSKIPPABLE_UNKNOWN, SKIPPABLE_UNKNOWN, identification
from .cases import COPY, DATA, HIGH_AHEAD, HIGH_ZERO, LOW_OFF, REPLY, MnCase
from .context import IHA, XHA, MnContext

RRP_FIELD_ENDS = (1, 2, 4, 8, 12, 20)  # RFC 5944 3.4: Type | Code | Lifetime | HoA | HA | Identification
XHA_SHARE = 1 / 6  # reply cases the x-HA sends (to the device's x-HA request)
REPLY_CODES = (0, 0, 1, 64, 65, 69, 70, 88, 128, 129, 130, 131, 133, 134, 136, 139, 194, 255)
ECHO_ID = 0x4D46  # "MF": identifier of the echo requests inside tunnel-data cases
ECHO_DATA = b"mipcheck fuzz"

MnStrategyFn = Callable[[random.Random, MnContext, int], MnCase]
STRATEGIES: dict[str, tuple[MnStrategyFn, int, str]] = {}  # name -> (function, weight, one line)


def strategy(name: str, weight: int = 10) -> Callable[[MnStrategyFn], MnStrategyFn]:
    def register(fn: MnStrategyFn) -> MnStrategyFn:
        STRATEGIES[name] = (fn, weight, (fn.__doc__ or "").strip().splitlines()[0])
        return fn

    return register


# ------------------------------------------------------------------ base messages


def base_reply(
    rng: random.Random, ctx: MnContext, index: int, *, party: str | None = None, signed: bool | None = None
) -> tuple[str, Draft]:
    """A valid reply of a played party (code 0, UDP Tunnel Reply, TNC from the i-HA); signed, or with an MN-HA
    authentication extension that does not verify (or none)."""
    if party is None:
        party = XHA if rng.random() < XHA_SHARE else IHA
    p = ctx.party(party)
    exts: list[bytes] = [codec.udp_tunnel_reply()]
    if party == IHA:
        exts.append(TNC_EXTENSION)
    signed = rng.random() < 0.5 if signed is None else signed
    if not signed:
        r = rng.random()
        if r < 0.8:  # right SPI, wrong authenticator: the authentication-failure path
            exts.append(struct.pack("!BBI", n.EXT_MN_HA_AUTH, 20, p.signer.spi) + rng.randbytes(16))
        elif r < 0.9:  # unknown SPI
            exts.append(struct.pack("!BBI", n.EXT_MN_HA_AUTH, 20, rng.getrandbits(32)) + rng.randbytes(16))
    fixed = RRP_FIXED.pack(n.MSG_RRP, 0, ctx.lifetime, p.hoa, p.ha, identification(index, rng))
    return party, Draft(fixed, tuple(exts), (), p.signer if signed else None)


def _case(index: int, name: str, party: str, draft: Draft, *, ident: str = COPY, keeps: bool = False) -> MnCase:
    return MnCase(0, index, name, draft, keeps_identification=keeps, party=party, stage=REPLY, ident=ident)


def _data_case(index: int, name: str, draft: Draft) -> MnCase:
    return MnCase(0, index, name, draft, party=IHA, stage=DATA)


def random_extension(rng: random.Random, ext_type: int, body: int | None = None) -> bytes:
    size = rng.choice((0, 1, 2, 4, 6, 16)) if body is None else body
    if ext_type in LONG_FORMAT_TYPES:
        return bytes((ext_type, 0)) + struct.pack("!H", size) + rng.randbytes(size)
    return bytes((ext_type, size & 0xFF)) + rng.randbytes(size)


def _index_of(draft: Draft, ext_type: int) -> int | None:
    return next((i for i, e in enumerate(draft.extensions) if e and e[0] == ext_type), None)


# ------------------------------------------------------------------ reply strategies


@strategy("reply-code")
def reply_code(rng: random.Random, ctx: MnContext, index: int) -> MnCase:
    """Reply codes (RFC 5944 3.4): accepted 0/1, foreign-agent denials 64-127 (no MN-HA authenticator needed),
    home-agent denials 128-136, 133 with the home agent's time, unassigned ones; TNC kept or dropped.
    """
    party, draft = base_reply(rng, ctx, index)
    code = rng.choice((*REPLY_CODES, rng.randrange(256)))
    ops: list[Op] = [("u8", 1, code)]
    ident = HIGH_AHEAD if code == 133 and rng.random() < 0.6 else COPY
    if 64 <= code <= 127 and draft.signer is None and rng.random() < 0.5:
        ops.append(("ext_drop", len(draft.extensions) - 1))  # a foreign agent's denial carries no authenticator
    tnc = _index_of(draft, n.EXT_TNC)
    if tnc is not None and rng.random() < 0.3:
        ops.append(("ext_drop", tnc))
    return _case(index, "reply-code", party, draft.with_ops(*ops), ident=ident)


@strategy("reply-lifetime", weight=6)
def reply_lifetime(rng: random.Random, ctx: MnContext, index: int) -> MnCase:
    """Lifetime edges (RFC 5944 3.8.3.2): 0 on an accepted registration, 1, more than asked for, 0xFFFE, infinity."""
    party, draft = base_reply(rng, ctx, index)
    value = rng.choice((0, 1, 2, ctx.lifetime - 1, ctx.lifetime + 1, 0x7FFF, 0xFFFE, 0xFFFF))
    return _case(index, "reply-lifetime", party, draft.with_ops(("u16", 2, value)))


@strategy("reply-identification", weight=6)
def reply_identification(rng: random.Random, ctx: MnContext, index: int) -> MnCase:
    """Identification (RFC 5944 5.7): low-order 32 bits not copied, high-order bits zero or an hour ahead, edge
    values 0/1/all ones; with code 0 or 133.
    """
    party, draft = base_reply(rng, ctx, index)
    ops: list[Op] = []
    if rng.random() < 0.4:
        ops.append(("u8", 1, 133))
    r = rng.random()
    if r < 0.7:
        mode = rng.choice((LOW_OFF, HIGH_ZERO, HIGH_AHEAD))
        return _case(index, "reply-identification", party, draft.with_ops(*ops), ident=mode)
    edge = rng.choice((0, 1, (1 << 32) - 1, 1 << 32, (1 << 64) - 1, IDENT_EPOCH << 32))
    ops.append(("u64", 12, edge))
    return _case(index, "reply-identification", party, draft.with_ops(*ops), keeps=True)


@strategy("reply-addresses", weight=6)
def reply_addresses(rng: random.Random, ctx: MnContext, index: int) -> MnCase:
    """Home Address and Home Agent fields (RFC 5944 3.4): 0.0.0.0, broadcast, loopback, the other party's."""
    party, draft = base_reply(rng, ctx, index)
    other = ctx.party(XHA if party == IHA else IHA)
    off = rng.choice((4, 8))
    own = other.home_address if off == 4 else other.address
    quad = socket.inet_aton(rng.choice((*ADDRESS_EDGES, own)))
    return _case(index, "reply-addresses", party, draft.with_ops(("addr", off, quad.hex())))


@strategy("extension-length-lies")
def length_lies(rng: random.Random, ctx: MnContext, index: int) -> MnCase:
    """An extension's Length lies: zero, one short of its fixed body, one or many long, past the end, 255."""
    party, draft = base_reply(rng, ctx, index)
    i = rng.randrange(len(draft.extensions))
    ext = draft.extensions[i]
    t = ext[0]
    actual = len(ext) - (4 if t in LONG_FORMAT_TYPES else 2)
    spec = EXTENSIONS.get(t)
    lie = rng.choice(
        (0, 1, max(0, (spec.min_body if spec else 1) - 1), actual + 1, actual + rng.randint(2, 40), actual - 1, 255)
    )
    return _case(index, "extension-length-lies", party, draft.with_ops(("ext_len", i, lie)))


@strategy("truncation", weight=8)
def truncation(rng: random.Random, ctx: MnContext, index: int) -> MnCase:
    """The reply cut at a field or extension boundary (and one octet either side), authenticator included."""
    party, draft = base_reply(rng, ctx, index)
    cut = rng.choice(boundaries(draft.render(), RRP_FIXED.size, RRP_FIELD_ENDS))
    return _case(index, "truncation", party, draft.with_ops(("cut", cut)))


@strategy("extension-order", weight=8)
def extension_order(rng: random.Random, ctx: MnContext, index: int) -> MnCase:
    """Extensions reordered around a valid authenticator: it first or in the middle, TNC and UDP Tunnel Reply after
    it (RFC 5265 4.1: the TNC must be authenticated).
    """
    party, draft = base_reply(rng, ctx, index, signed=True)
    exts = list(draft.extensions)
    if rng.random() < 0.4:
        exts.append(rng.choice((codec.nai_extension("fuzz@mipcheck.invalid"), codec.udp_tunnel_reply(), TNC_EXTENSION)))
    draft = Draft(draft.fixed, tuple(exts), (), draft.signer)
    ops: list[Op] = [("auth_at", rng.randint(0, len(exts) - 1))]
    if len(exts) > 1 and rng.random() < 0.5:
        ops.append(("ext_move", rng.randrange(len(exts)), rng.randrange(len(exts))))
    return _case(index, "extension-order", party, draft.with_ops(*ops))


@strategy("duplication", weight=8)
def duplication(rng: random.Random, ctx: MnContext, index: int) -> MnCase:
    """An extension repeated: UDP Tunnel Reply, TNC, or the MN-HA authenticator itself (RFC 5944 3.5: one)."""
    party, draft = base_reply(rng, ctx, index)
    if draft.signer is not None and rng.random() < 0.4:
        return _case(index, "duplication", party, draft.with_ops(("auth_twice",)))
    i = rng.randrange(len(draft.extensions))
    return _case(index, "duplication", party, draft.with_ops(*[("ext_dup", i)] * rng.randint(1, 3)))


@strategy("type-confusion", weight=6)
def type_confusion(rng: random.Random, ctx: MnContext, index: int) -> MnCase:
    """Short versus long format (RFC 3012 5, RFC 3115: types 36 and 38 carry a 16-bit Length) in a reply."""
    party, draft = base_reply(rng, ctx, index)
    long_type = rng.choice(sorted(LONG_FORMAT_TYPES))
    r = rng.random()
    if r < 0.4:  # a short-format extension relabelled as a long-format type
        op: Op = ("ext_type", rng.randrange(len(draft.extensions)), long_type)
    elif r < 0.7:  # a long-format type written with a one-octet Length
        ext = bytes((long_type, rng.choice((0, 4, 20, 255)))) + rng.randbytes(rng.choice((0, 4, 20)))
        op = ("ext_insert", rng.randint(0, len(draft.extensions)), ext.hex())
    else:  # a short-format type written in the long layout
        t = rng.choice((n.EXT_TNC, n.EXT_UDP_TUNNEL_REPLY, n.EXT_MN_HA_AUTH, n.EXT_NAI))
        ext = bytes((t, 0)) + struct.pack("!H", rng.choice((0, 2, 6, 20))) + rng.randbytes(rng.choice((0, 2, 6)))
        op = ("ext_insert", rng.randint(0, len(draft.extensions)), ext.hex())
    return _case(index, "type-confusion", party, draft.with_ops(op))


@strategy("unknown-extensions")
def unknown_extensions(rng: random.Random, ctx: MnContext, index: int) -> MnCase:
    """Unmodelled types (RFC 5944 1.9): a non-skippable 0-127 must make the device discard the reply, a skippable
    128-255 be skipped; before or after the authenticator.
    """
    party, draft = base_reply(rng, ctx, index)
    t = rng.choice(NONSKIPPABLE_UNKNOWN if rng.random() < 0.5 else SKIPPABLE_UNKNOWN)
    pos = rng.randint(0, len(draft.extensions))
    ops: list[Op] = [("ext_insert", pos, random_extension(rng, t).hex())]
    if draft.signer is not None and rng.random() < 0.3:
        ops.append(("auth_at", pos))  # the unknown extension after the authenticator
    return _case(index, "unknown-extensions", party, draft.with_ops(*ops))


@strategy("tnc-variants", weight=12)
def tnc_variants(rng: random.Random, ctx: MnContext, index: int) -> MnCase:
    """TNC extension (RFC 5265 3.4: type 149, Length 2, Sub-Type 0) with other Lengths, Sub-Types and Reserved, in
    place of the valid one or besides it, missing, after the authenticator, repeated.
    """
    party, draft = base_reply(rng, ctx, index, party=IHA if rng.random() < 0.9 else XHA)
    tnc_at = _index_of(draft, n.EXT_TNC)
    ops: list[Op] = []
    mode = rng.choice(("replace", "replace", "add", "drop", "after-auth"))
    if mode in ("replace", "drop") and tnc_at is not None:
        ops.append(("ext_drop", tnc_at))
    if mode != "drop":
        pos = tnc_at if tnc_at is not None else len(draft.extensions)
        for _ in range(rng.choice((1, 1, 2, 3))):
            length = rng.choice((2, 0, 1, 3, 4, 255))
            body = bytes((rng.choice((0, 0, 1, 255)), rng.choice((0, 0, 1, 0x80)))) + rng.randbytes(6)
            ops.append(("ext_insert", pos, (bytes((n.EXT_TNC, length)) + body[: min(length, 8)]).hex()))
    if mode == "after-auth" and draft.signer is not None:
        ops.append(("auth_at", 0))  # every extension, TNC included, after the authenticator
    return _case(index, "tnc-variants", party, draft.with_ops(*ops))


@strategy("udp-tunnel-reply", weight=12)
def udp_tunnel_reply(rng: random.Random, ctx: MnContext, index: int) -> MnCase:
    """UDP Tunnel Reply (RFC 3519 3.2: type 44, Length 6) shorter or longer than its fixed part, Sub-Type, Reply
    Code 1/255, F and reserved bits, keepalive 0/1/0xFFFF; in place of the valid one, besides it, missing, after
    the authenticator.
    """
    party, draft = base_reply(rng, ctx, index)
    at = _index_of(draft, n.EXT_UDP_TUNNEL_REPLY)
    ops: list[Op] = []
    mode = rng.choice(("replace", "replace", "add", "drop", "after-auth"))
    if mode in ("replace", "drop") and at is not None:
        ops.append(("ext_drop", at))
    if mode != "drop":
        length = rng.choice((6, 6, 0, 1, 4, 5, 7, 255))
        body = (
            bytes((rng.choice((0, 0, 1, 255)), rng.choice((0, 0, 1, 255)), rng.choice((0, 0x80, 0x40, 0xFF)), 0))
            + struct.pack("!H", rng.choice((110, 0, 1, 0xFFFF)))
            + rng.randbytes(2)
        )
        ext = bytes((n.EXT_UDP_TUNNEL_REPLY, length)) + body[: min(length, 8)]
        ops.append(("ext_insert", at if at is not None else 0, ext.hex()))
        if rng.random() < 0.2:
            ops.append(("ext_dup", at if at is not None else 0))
    if mode == "after-auth" and draft.signer is not None:
        ops.append(("auth_at", 0))
    return _case(index, "udp-tunnel-reply", party, draft.with_ops(*ops))


@strategy("message-type", weight=4)
def message_type(rng: random.Random, ctx: MnContext, index: int) -> MnCase:
    """A valid reply body under another message type: 0, a Registration Request (1), Tunnel Data (4), revocation
    (7, 15), unassigned 2/5/255.
    """
    party, draft = base_reply(rng, ctx, index)
    return _case(index, "message-type", party, draft.with_ops(("u8", 0, rng.choice((0, 1, 2, 4, 5, 7, 15, 255)))))


@strategy("byte-flips", weight=8)
def byte_flips(rng: random.Random, ctx: MnContext, index: int) -> MnCase:
    """Random octets of a valid reply overwritten before signing (a signed case still authenticates), or flipped
    after it.
    """
    party, draft = base_reply(rng, ctx, index)
    size = len(draft.render())
    ops: list[Op] = []
    for _ in range(rng.randint(1, 4)):
        if rng.random() < 0.5:
            ops.append(("u8", rng.randrange(1, 12), rng.getrandbits(8)))  # code, lifetime, addresses
        elif rng.random() < 0.6:
            i = rng.randrange(len(draft.extensions))
            ops.append(("ext_byte", i, rng.randrange(len(draft.extensions[i])), rng.getrandbits(8)))
        else:
            ops.append(("flip", rng.randrange(size), 1 << rng.randrange(8)))
    return _case(index, "byte-flips", party, draft.with_ops(*ops))


# ------------------------------------------------------------------ tunnel data (after a valid registration)


def echo_request(ctx: MnContext, rng: random.Random, dst: str | None = None, src: str | None = None) -> bytes:
    icmp = build_icmp_echo(ICMP_ECHO_REQUEST, ECHO_ID, rng.randrange(1, 0x10000), ECHO_DATA)
    return build_ipv4(src or ctx.correspondent, dst or ctx.home_address, PROTO_ICMP, icmp)


def _reheader(packet: bytes, *, fix_checksum: bool, **fields: int) -> bytes:
    """``packet`` with IPv4 header fields replaced (offset -> value per name), its checksum recomputed or not."""
    at = {"vihl": (0, "!B"), "total": (2, "!H"), "frag": (6, "!H"), "ttl": (8, "!B"), "proto": (9, "!B")}
    out = bytearray(packet)
    for name, value in fields.items():
        off, fmt = at[name]
        struct.pack_into(fmt, out, off, value & ((1 << (8 * struct.calcsize(fmt))) - 1))
    if fix_checksum and len(out) >= 20:
        struct.pack_into("!H", out, 10, 0)
        struct.pack_into("!H", out, 10, checksum(bytes(out[:20])))
    return bytes(out)


def _td_header(rng: random.Random, next_header: int | None = None) -> bytes:
    nh = rng.choice((4, 4, 4, 4, 0, 47, 55, 17, 41, 255)) if next_header is None else next_header
    return bytes((n.MSG_TUNNEL_DATA, nh)) + struct.pack("!H", rng.choice((0, 0, 0, 1, 0x8000, 0xFFFF)))


@strategy("tunnel-data", weight=12)
def tunnel_data(rng: random.Random, ctx: MnContext, index: int) -> MnCase:
    """MIP Tunnel Data (RFC 3519 3.3) after a valid registration: Next Header 4/0/47/55/other, reserved bits, an
    echo request for the home address or another, the inner IPv4 truncated, with lying version/IHL/Total Length,
    fragments, other protocols, bad checksums, empty.
    """
    dst = rng.choice((None, None, None, ctx.xha.home_address, "0.0.0.0", "255.255.255.255"))
    echo = echo_request(ctx, rng, dst=dst)
    r = rng.random()
    if r < 0.25:
        inner = echo
    elif r < 0.45:  # truncated at a header or ICMP boundary
        inner = echo[: rng.choice((1, 4, 10, 19, 20, 21, 24, 27, 28, len(echo) - 1))]
    elif r < 0.8:  # header fields that lie
        name = rng.choice(("vihl", "vihl", "total", "total", "frag", "ttl", "proto"))
        value = {
            "vihl": rng.choice((0x40, 0x44, 0x46, 0x4F, 0x65, 0x05, 0xF5)),
            "total": rng.choice((0, 19, 20, 27, len(echo) + 1, 0xFFFF)),
            "frag": rng.choice((0x2000, 0x0001, 0x3FFF, 0x8000)),
            "ttl": 0,
            "proto": rng.choice((0, 4, 6, 17, 50, 255)),
        }[name]
        inner = _reheader(echo, fix_checksum=rng.random() < 0.7, **{name: value})
    elif r < 0.9:  # the ICMP message itself: bad checksum, an echo reply, a short one
        icmp = bytearray(echo[20:])
        what = rng.choice(("checksum", "reply", "short"))
        if what == "checksum":
            icmp[2] ^= 0xFF
        elif what == "reply":
            icmp = bytearray(build_icmp_echo(ICMP_ECHO_REPLY, ECHO_ID, 1, ECHO_DATA))
        else:
            icmp = icmp[: rng.choice((0, 1, 4, 7))]
        inner = build_ipv4(ctx.correspondent, ctx.home_address, PROTO_ICMP, bytes(icmp))
    elif r < 0.95:
        inner = b""
    else:
        inner = rng.randbytes(rng.randint(1, 40))
    draft = Draft(_td_header(rng), (inner,) if inner else ())
    if rng.random() < 0.1:
        draft = draft.with_ops(("cut", rng.randint(0, 4)))
    return _data_case(index, "tunnel-data", draft)


@strategy("nested-tunnel-data", weight=6)
def nested_tunnel_data(rng: random.Random, ctx: MnContext, index: int) -> MnCase:
    """Tunnels in tunnels: IP-in-IP inside the MIP tunnel (two or three deep), Tunnel Data inside Tunnel Data, a
    whole IPv4/UDP/MIP Tunnel Data packet inside it, minimal encapsulation (55) and GRE (47) headers.
    """
    echo = echo_request(ctx, rng)
    kind = rng.choice(("ipip", "ipip3", "td-in-td", "udp-td", "minenc", "gre"))
    nh = 4
    pieces: list[bytes]
    if kind in ("ipip", "ipip3"):
        depth = 1 if kind == "ipip" else 2
        pieces = [echo]
        for _ in range(depth):
            size = 20 + sum(map(len, pieces))
            outer = build_ipv4(ctx.iha.address, ctx.home_address, PROTO_IPIP, b"")
            pieces.insert(0, _reheader(outer, fix_checksum=True, total=size))
    elif kind == "td-in-td":
        pieces = [_td_header(rng, 4), echo]
    elif kind == "udp-td":
        # port 434 at both ends, not the profile's: a built-in profile's ports change from run to run, the octets not
        packet = build_udp_ipv4((ctx.iha.address, n.MIP_PORT), (ctx.home_address, n.MIP_PORT), codec.tunnel_data(echo))
        pieces = [packet[:28], packet[28:]]
    elif kind == "minenc":  # RFC 2004: protocol, S bit, checksum, original destination
        nh = n.IPPROTO_MINENC
        pieces = [struct.pack("!BBH4s", PROTO_ICMP, 0, 0, socket.inet_aton(ctx.home_address)), echo[20:]]
    else:  # RFC 2784 GRE carrying IPv4
        nh = n.IPPROTO_GRE
        pieces = [struct.pack("!HH", 0, 0x0800), echo]
    draft = Draft(_td_header(rng, nh if rng.random() < 0.8 else rng.choice((0, 4, 47, 55))), tuple(pieces))
    if rng.random() < 0.2:
        draft = draft.with_ops(("cut", rng.randrange(4, len(draft.render()))))
    return _data_case(index, f"nested-tunnel-data/{kind}", draft)


_NAMES = tuple(STRATEGIES)
_WEIGHTS = tuple(STRATEGIES[name][1] for name in _NAMES)


def generate(seed: int, index: int, ctx: MnContext, only: tuple[str, ...] = ()) -> MnCase:
    """The MN case (seed, index): the same octets in every process, worker and shard for the same profile."""
    rng = case_rng(seed, index)
    names, weights = (_NAMES, _WEIGHTS) if not only else (only, tuple(STRATEGIES[s][1] for s in only))
    name = rng.choices(names, weights)[0]
    case = STRATEGIES[name][0](rng, ctx, index)
    return MnCase(
        seed,
        index,
        case.strategy,
        case.draft,
        keeps_identification=case.keeps_identification,
        party=case.party,
        stage=case.stage,
        ident=case.ident,
    )
