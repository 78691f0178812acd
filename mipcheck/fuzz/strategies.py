"""The fuzzing strategies: each a named, documented way to break a message, from :mod:`mipcheck.proto`.

:func:`generate` picks a strategy and everything else from the case's own
generator (:func:`~mipcheck.fuzz.case.case_rng`), so (seed, index) name the
case. Strategies build a valid base message and add mutations
(:mod:`mipcheck.fuzz.case` operations); about half the registration cases are
signed after mutation so that they pass authentication.

Identifications are derived from the index, not from the clock (the octets
must not depend on when they are generated): a device with strict
timestamp replay protection answers signed cases 133, which is why the
built-in target runs with its replay window opened (``mipcheck.fuzz.lab``)
and why ``--identification fresh`` (:mod:`mipcheck.fuzz.fresh`) re-stamps
requests at send time. A strategy that breaks the Identification itself
marks its case ``keeps_identification`` so that fresh mode leaves it alone.
"""

from __future__ import annotations

import random
import socket
import struct
from collections.abc import Callable

from mipcheck.proto import numbers as n
from mipcheck.proto.codec import (
    REVOCATION_ACK_FIXED,
    REVOCATION_FIXED,
    RRQ_FIXED,
    nai_extension,
    udp_tunnel_request,
)
from mipcheck.proto.extensions import EXTENSIONS, LONG_FORMAT_TYPES, TNC_EXTENSION
from mipcheck.proto.identification import NTP_UNIX_OFFSET

from .case import Case, Draft, Op, boundaries, case_rng
from .context import FuzzContext, Node

IDENT_EPOCH = 1_767_225_600 + NTP_UNIX_OFFSET  # 2026-01-01 in NTP seconds: identifications never read the clock
RRQ_FIELD_ENDS = (1, 2, 4, 8, 12, 16, 20)  # RFC 5944 3.3: Type | flags | Lifetime | HoA | HA | CoA | Identification
NONSKIPPABLE_UNKNOWN = (0, 1, 35, 39, 50, 100, 126, 127)  # RFC 5944 1.9: 0-127, none modelled
SKIPPABLE_UNKNOWN = (128, 150, 200, 254, 255)  # 128-255, none modelled
ADDRESS_EDGES = ("0.0.0.0", "255.255.255.255", "127.255.255.255", "224.0.0.1", "127.0.0.1")

StrategyFn = Callable[[random.Random, FuzzContext, int], Case]
STRATEGIES: dict[str, tuple[StrategyFn, int, str]] = {}  # name -> (function, weight, one line)


def strategy(name: str, weight: int = 10) -> Callable[[StrategyFn], StrategyFn]:
    def register(fn: StrategyFn) -> StrategyFn:
        STRATEGIES[name] = (fn, weight, (fn.__doc__ or "").strip().splitlines()[0])
        return fn

    return register


# ------------------------------------------------------------------ base messages


def identification(index: int, rng: random.Random) -> int:
    return ((IDENT_EPOCH + index // 64) << 32) | rng.getrandbits(32)


def rrq_fixed(ctx: FuzzContext, node: Node, ident: int, lifetime: int | None = None, flags: int | None = None) -> bytes:
    return RRQ_FIXED.pack(
        n.MSG_RRQ,
        node.flags if flags is None else flags,
        ctx.lifetime if lifetime is None else lifetime,
        node.hoa,
        node.ha,
        ctx.coa,
        ident,
    )


def base_rrq(rng: random.Random, ctx: FuzzContext, index: int, *, signed: bool | None = None) -> Draft:
    """A valid request of the fuzzed node; signed, or with an authentication extension that does not verify."""
    node = ctx.node
    exts: list[bytes] = []
    if node.nai or rng.random() < 0.3:
        exts.append(nai_extension(node.nai or "fuzz@mipcheck.invalid"))
    if rng.random() < 0.3:
        exts.append(udp_tunnel_request())
    signed = rng.random() < 0.5 if signed is None else signed
    if not signed:
        r = rng.random()
        if r < 0.8:  # right SPI, wrong authenticator: the authentication-failure path
            exts.append(struct.pack("!BBI", n.EXT_MN_HA_AUTH, 20, node.spi) + rng.randbytes(16))
        elif r < 0.9:  # unknown SPI
            exts.append(struct.pack("!BBI", n.EXT_MN_HA_AUTH, 20, rng.getrandbits(32)) + rng.randbytes(16))
    return Draft(rrq_fixed(ctx, node, identification(index, rng)), tuple(exts), (), node.signer if signed else None)


def _ext_count(draft: Draft) -> int:
    return len(draft.extensions)


def _random_ext(rng: random.Random, ext_type: int, body: int | None = None) -> bytes:
    size = rng.choice((0, 1, 2, 4, 6, 16)) if body is None else body
    if ext_type in LONG_FORMAT_TYPES:
        return bytes((ext_type, 0)) + struct.pack("!H", size) + rng.randbytes(size)
    return bytes((ext_type, size & 0xFF)) + rng.randbytes(size)


# ------------------------------------------------------------------ strategies


@strategy("field-boundaries")
def field_boundaries(rng: random.Random, ctx: FuzzContext, index: int) -> Case:
    """Fixed-part edges (RFC 5944 3.3): Lifetime 0/1/0xFFFE/0xFFFF, flags with the reserved r/x bits, Identification
    edges, addresses 0.0.0.0/broadcast/multicast/own.
    """
    draft = base_rrq(rng, ctx, index)
    ops: list[Op] = []
    keeps = False
    for _ in range(rng.randint(1, 3)):
        field = rng.choice(("lifetime", "flags", "identification", "home_address", "home_agent", "care_of_address"))
        if field == "lifetime":
            ops.append(("u16", 2, rng.choice((0, 1, 2, 0x7FFF, 0xFFFE, 0xFFFF))))
        elif field == "flags":
            ops.append(
                (
                    "u8",
                    1,
                    rng.choice(
                        (
                            0,
                            0xFF,
                            n.FLAG_R,
                            n.FLAG_X,
                            n.FLAG_R | n.FLAG_X,
                            n.FLAG_S,
                            n.FLAG_B,
                            n.FLAG_M | n.FLAG_G,
                            n.FLAG_T,
                            rng.getrandbits(8),
                        )
                    ),
                )
            )
        elif field == "identification":
            keeps = True  # the edge value is the point: fresh mode must not replace it
            ops.append(
                (
                    "u64",
                    16,
                    rng.choice(
                        (0, 1, (1 << 32) - 1, 1 << 32, 1 << 63, (1 << 64) - 1, IDENT_EPOCH << 32, rng.getrandbits(32))
                    ),
                )
            )
        else:
            off = {"home_address": 4, "home_agent": 8, "care_of_address": 12}[field]
            own = {4: ctx.node.home_agent, 8: ctx.node.home_address, 12: ctx.node.home_agent}[off]
            ops.append(("addr", off, socket.inet_aton(rng.choice((*ADDRESS_EDGES, own))).hex()))
    return Case(0, index, "field-boundaries", draft.with_ops(*ops), keeps_identification=keeps)


@strategy("extension-length-lies")
def length_lies(rng: random.Random, ctx: FuzzContext, index: int) -> Case:
    """An extension's Length lies: zero, one short of its fixed body, one or many long, past the end of the message,
    255/0xFFFF.
    """
    draft = base_rrq(rng, ctx, index)
    exts = list(draft.extensions) + [TNC_EXTENSION, udp_tunnel_request()][: rng.randint(0, 2)]
    draft = Draft(draft.fixed, tuple(exts), (), draft.signer)
    if not exts:
        draft = draft.with_ops(("ext_insert", 0, nai_extension("x@y").hex()))
        exts = [nai_extension("x@y")]
    i = rng.randrange(len(exts))
    t = exts[i][0]
    actual = len(exts[i]) - (4 if t in LONG_FORMAT_TYPES else 2)
    spec = EXTENSIONS.get(t)
    lie = rng.choice(
        (
            0,
            1,
            max(0, (spec.min_body if spec else 1) - 1),
            actual + 1,
            actual + rng.randint(2, 40),
            actual - 1,
            255,
            0xFFFF,
            0x100,
        )
    )
    return Case(0, index, "extension-length-lies", draft.with_ops(("ext_len", i, lie)))


@strategy("truncation")
def truncation(rng: random.Random, ctx: FuzzContext, index: int) -> Case:
    """The message cut at a field or extension boundary (and one octet either side), authenticator included."""
    draft = base_rrq(rng, ctx, index)
    payload = draft.render()
    cut = rng.choice(boundaries(payload, RRQ_FIXED.size, RRQ_FIELD_ENDS))
    return Case(0, index, "truncation", draft.with_ops(("cut", cut)))


@strategy("extension-order")
def extension_order(rng: random.Random, ctx: FuzzContext, index: int) -> Case:
    """Extensions reordered: the authenticator first or in the middle, NAI and UDP Tunnel Request after it."""
    draft = base_rrq(rng, ctx, index, signed=True)
    exts = list(draft.extensions) or [nai_extension("fuzz@mipcheck.invalid")]
    exts.append(rng.choice((udp_tunnel_request(), TNC_EXTENSION, nai_extension("late@mipcheck.invalid"))))
    draft = Draft(draft.fixed, tuple(exts), (), draft.signer)
    ops: list[Op] = [("auth_at", rng.randint(0, len(exts) - 1))]
    if len(exts) > 1 and rng.random() < 0.5:
        ops.append(("ext_move", rng.randrange(len(exts)), rng.randrange(len(exts))))
    return Case(0, index, "extension-order", draft.with_ops(*ops))


@strategy("duplication")
def duplication(rng: random.Random, ctx: FuzzContext, index: int) -> Case:
    """An extension repeated: NAI, UDP Tunnel Request, TNC, or the MN-HA authenticator itself (RFC 5944 3.8.2.1:
    exactly one).
    """
    draft = base_rrq(rng, ctx, index)
    exts = list(draft.extensions) + [
        rng.choice((udp_tunnel_request(), TNC_EXTENSION, nai_extension("dup@mipcheck.invalid")))
    ]
    draft = Draft(draft.fixed, tuple(exts), (), draft.signer)
    if draft.signer is not None and rng.random() < 0.4:
        return Case(0, index, "duplication", draft.with_ops(("auth_twice",)))
    i = rng.randrange(len(exts))
    return Case(0, index, "duplication", draft.with_ops(*[("ext_dup", i)] * rng.randint(1, 3)))


@strategy("type-confusion")
def type_confusion(rng: random.Random, ctx: FuzzContext, index: int) -> Case:
    """Short versus long format (RFC 3012 5, RFC 3115: types 36 and 38 carry a 16-bit Length): a type moved to the
    other format.
    """
    draft = base_rrq(rng, ctx, index)
    long_type = rng.choice(sorted(LONG_FORMAT_TYPES))
    r = rng.random()
    if r < 0.4 and draft.extensions:  # a short-format extension relabelled as a long-format type
        op: Op = ("ext_type", rng.randrange(len(draft.extensions)), long_type)
    elif r < 0.7:  # a long-format type written with a one-octet Length
        op = (
            "ext_insert",
            rng.randint(0, len(draft.extensions)),
            (bytes((long_type, rng.choice((0, 4, 20, 255)))) + rng.randbytes(rng.choice((0, 4, 20)))).hex(),
        )
    else:  # a short-format type written in the long layout
        t = rng.choice((n.EXT_NAI, n.EXT_TNC, n.EXT_UDP_TUNNEL_REQUEST, n.EXT_MN_HA_AUTH))
        op = (
            "ext_insert",
            rng.randint(0, len(draft.extensions)),
            (bytes((t, 0)) + struct.pack("!H", rng.choice((0, 2, 6, 20))) + rng.randbytes(rng.choice((0, 2, 6)))).hex(),
        )
    return Case(0, index, "type-confusion", draft.with_ops(op))


@strategy("unknown-extensions")
def unknown_extensions(rng: random.Random, ctx: FuzzContext, index: int) -> Case:
    """Unmodelled types (RFC 5944 1.9): non-skippable 0-127 must discard the message, skippable 128-255 be skipped;
    before or after the authenticator.
    """
    draft = base_rrq(rng, ctx, index)
    t = rng.choice(NONSKIPPABLE_UNKNOWN if rng.random() < 0.6 else SKIPPABLE_UNKNOWN)
    pos = rng.randint(0, len(draft.extensions))
    ops: list[Op] = [("ext_insert", pos, _random_ext(rng, t).hex())]
    if draft.signer is not None and rng.random() < 0.3:
        ops.append(("auth_at", pos))  # the unknown extension after the authenticator
    return Case(0, index, "unknown-extensions", draft.with_ops(*ops))


@strategy("tnc-variants")
def tnc_variants(rng: random.Random, ctx: FuzzContext, index: int) -> Case:
    """TNC extension (RFC 5265 3.4: type 149, Length 2, Sub-Type 0) with other Lengths/Sub-Types/Reserved, before or
    after the authenticator, repeated.
    """
    draft = base_rrq(rng, ctx, index)
    length = rng.choice((2, 2, 0, 1, 3, 4, 255))
    body = bytes((rng.choice((0, 0, 1, 255)), rng.choice((0, 0, 1, 0x80)))) + rng.randbytes(max(0, min(length, 8) - 2))
    tnc = bytes((n.EXT_TNC, length)) + body[: min(length, 8)]
    ops: list[Op] = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        ops.append(("ext_insert", rng.randint(0, len(draft.extensions) + len(ops)), tnc.hex()))
    if draft.signer is not None and rng.random() < 0.5:
        ops.append(("auth_at", 0))  # every extension, TNC included, after the authenticator
    return Case(0, index, "tnc-variants", draft.with_ops(*ops))


@strategy("udp-tunnel-request")
def udp_tunnel_variants(rng: random.Random, ctx: FuzzContext, index: int) -> Case:
    """UDP Tunnel Request (RFC 3519 3.1) with short/long Length, Sub-Type, F/R bits, encapsulation 4/47/55/other,
    reserved bits, repeated, NAT-ed care-of address.
    """
    draft = base_rrq(rng, ctx, index)
    length = rng.choice((6, 6, 0, 1, 5, 7, 255))
    body = bytes(
        (
            rng.choice((0, 0, 1, 255)),
            rng.choice((0, 0, 1)),
            rng.choice((0, 0x80, 0x40, 0xC0, 0x3F)),
            rng.choice((4, 47, 55, 0, 17, 255)),
            rng.choice((0, 0, 1)),
            rng.choice((0, 0, 1)),
        )
    ) + rng.randbytes(2)
    req = bytes((n.EXT_UDP_TUNNEL_REQUEST, length)) + body[: min(length, 8)]
    pos = rng.randint(0, len(draft.extensions))
    ops: list[Op] = [("ext_insert", pos, req.hex())]
    if rng.random() < 0.3:
        ops.append(("ext_dup", pos))
    if rng.random() < 0.3:  # care-of address "behind a NAT" (RFC 3519 3.1), D flag cleared
        ops += [("addr", 12, socket.inet_aton(ctx.nat_care_of).hex()), ("u8", 1, ctx.node.flags & ~n.FLAG_D)]
    return Case(0, index, "udp-tunnel-request", draft.with_ops(*ops))


@strategy("tunnel-data", weight=6)
def tunnel_data(rng: random.Random, ctx: FuzzContext, index: int) -> Case:
    """MIP Tunnel Data (RFC 3519 3.3, type 4): Next Header 4/47/55/other, reserved bits, empty, short or lying inner
    IPv4 headers.
    """
    nh = rng.choice((4, 4, 47, 55, 0, 17, 255))
    reserved = rng.choice((0, 0, 1, 0xFFFF))
    src = socket.inet_aton(ctx.node.home_address)
    dst = socket.inet_aton(rng.choice((ctx.target[0], "127.0.0.1", "0.0.0.0")))
    r = rng.random()
    if r < 0.2:
        inner = b""
    elif r < 0.4:
        inner = rng.randbytes(rng.randint(1, 19))
    else:
        ihl = rng.choice((5, 5, 0, 4, 15))
        total = rng.choice((28, 20, 0, 0xFFFF))
        proto = rng.choice((1, 1, 17, 4, 255))
        inner = (
            struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 0, 0, 64, proto, 0, src, dst)
            + bytes((8, 0, 0, 0, 0, 1, 0, 1))[: rng.choice((8, 8, 0, 3))]
        )
    fixed = bytes((n.MSG_TUNNEL_DATA, nh)) + struct.pack("!H", reserved)
    draft = Draft(fixed, (inner,) if inner else ())
    if rng.random() < 0.15:
        draft = draft.with_ops(("cut", rng.randint(0, 4)))
    return Case(0, index, "tunnel-data", draft)


@strategy("revocation", weight=6)
def revocation(rng: random.Random, ctx: FuzzContext, index: int) -> Case:
    """Registration Revocation and its Acknowledgment (RFC 3543 3.1-3.2, types 7 and 15) sent to the home agent: flags,
    addresses, truncated, signed or not.
    """
    node = ctx.node
    if rng.random() < 0.6:
        fixed = REVOCATION_FIXED.pack(
            n.MSG_REVOCATION,
            rng.choice((0, 0, 0xFF)),
            rng.choice((0, 0x8000, 0x4000, 0xC000, 0xFFFF)),
            node.hoa,
            node.ha,
            ctx.coa,
            rng.getrandbits(32),
        )
    else:
        fixed = REVOCATION_ACK_FIXED.pack(
            n.MSG_REVOCATION_ACK, 0, rng.choice((0, 0x8000, 0xFFFF)), node.hoa, rng.getrandbits(32)
        )
    exts = (bytes((n.EXT_REVOCATION_SUPPORT, 6)) + rng.randbytes(6),) if rng.random() < 0.3 else ()
    draft = Draft(fixed, exts, (), node.signer if rng.random() < 0.5 else None)
    if rng.random() < 0.3:
        draft = draft.with_ops(("cut", rng.randint(1, len(fixed))))
    return Case(0, index, "revocation", draft)


@strategy("message-type", weight=4)
def message_type(rng: random.Random, ctx: FuzzContext, index: int) -> Case:
    """A valid request body under another message type: 0, Registration Reply (3), unassigned 2/5/6/8/255."""
    draft = base_rrq(rng, ctx, index)
    return Case(0, index, "message-type", draft.with_ops(("u8", 0, rng.choice((0, 2, 3, 5, 6, 8, 255)))))


@strategy("byte-flips")
def byte_flips(rng: random.Random, ctx: FuzzContext, index: int) -> Case:
    """Random octets of a valid request overwritten before signing (so a signed case still authenticates), or flipped
    after it.
    """
    draft = base_rrq(rng, ctx, index)
    payload = draft.render()
    ops: list[Op] = []
    for _ in range(rng.randint(1, 4)):
        if rng.random() < 0.6:
            ops.append(("u8", rng.randrange(1, RRQ_FIXED.size), rng.getrandbits(8)))
        elif draft.extensions and rng.random() < 0.5:
            i = rng.randrange(len(draft.extensions))
            ops.append(("ext_byte", i, rng.randrange(len(draft.extensions[i])), rng.getrandbits(8)))
        else:
            ops.append(("flip", rng.randrange(len(payload)), 1 << rng.randrange(8)))
    return Case(0, index, "byte-flips", draft.with_ops(*ops))


@strategy("stateful-sequence", weight=5)
def stateful(rng: random.Random, ctx: FuzzContext, index: int) -> Case:
    """A mutated message in the middle of a valid sequence: register, renew, the mutated request, de-register."""
    inner_name = rng.choice(
        [name for name in STRATEGIES if name not in ("stateful-sequence", "tunnel-data", "revocation")]
    )
    inner = STRATEGIES[inner_name][0](rng, ctx, index)
    node = ctx.node
    base = identification(index, rng)

    def valid(k: int, lifetime: int | None) -> Draft:
        return Draft(rrq_fixed(ctx, node, base - 4 + k, lifetime), (), (), node.signer)

    return Case(
        0,
        index,
        f"stateful-sequence/{inner_name}",
        inner.draft,
        before=(valid(0, None), valid(1, None)),
        after=(valid(3, 0),),
        keeps_identification=inner.keeps_identification,
    )


_NAMES = tuple(STRATEGIES)
_WEIGHTS = tuple(STRATEGIES[name][1] for name in _NAMES)


def generate(seed: int, index: int, ctx: FuzzContext, only: tuple[str, ...] = ()) -> Case:
    """The case (seed, index): the same octets in every process, worker and shard for the same profile."""
    rng = case_rng(seed, index)
    names, weights = (_NAMES, _WEIGHTS) if not only else (only, tuple(STRATEGIES[s][1] for s in only))
    name = rng.choices(names, weights)[0]
    case = STRATEGIES[name][0](rng, ctx, index)
    return Case(seed, index, case.strategy, case.draft, case.before, case.after, case.keeps_identification)
