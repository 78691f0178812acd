"""What a fuzz case is: a base message, a list of named mutations, and how to render them to octets.

Mutations are plain data (``("ext_len", 1, 0)``), not closures, so a case can
be stored, shown, replayed and minimised by dropping mutations one by one
("fewest mutated fields"). A signed case gets a valid MN-HA authenticator
computed over the *mutated* octets (RFC 5944 3.5.1: everything up to and
including the SPI), so it reaches the code behind authentication.

The random generator of a case comes from (seed, index) through SHA-256, never
from Python's salted ``hash``: the same pair gives the same octets in any
process, worker or shard (given the same profile, whose keys sign).
"""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from mipcheck.proto import numbers as n
from mipcheck.proto.codec import AUTH_HDR, DIGEST_SIZE
from mipcheck.proto.extensions import LONG_FORMAT_TYPES

Op = tuple[Any, ...]  # (name, *arguments): ints and hex strings only, JSON-able

MESSAGE_KINDS = {
    n.MSG_RRQ: "rrq",
    n.MSG_RRP: "rrp",
    n.MSG_TUNNEL_DATA: "tunnel-data",
    n.MSG_REVOCATION: "revocation",
    n.MSG_REVOCATION_ACK: "revocation-ack",
}


def case_rng(seed: int, index: int) -> random.Random:
    """The generator of case (seed, index): a function of the pair only (SHA-256, not ``hash``)."""
    digest = hashlib.sha256(f"mipcheck-fuzz:{seed}:{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


@dataclass(frozen=True)
class Signer:
    """One mobility security association: appends a valid MN-HA authentication extension (type 32)."""

    spi: int
    mac: Callable[[bytes], bytes] = field(repr=False, compare=False)

    def sign(self, message: bytes) -> bytes:
        covered = message + AUTH_HDR.pack(n.EXT_MN_HA_AUTH, 4 + DIGEST_SIZE, self.spi)
        return covered + self.mac(covered)


@dataclass(frozen=True)
class Draft:
    """One message before rendering: fixed part, extensions (whole TLVs), mutations, optional signer."""

    fixed: bytes
    extensions: tuple[bytes, ...] = ()
    ops: tuple[Op, ...] = ()
    signer: Signer | None = None

    def with_ops(self, *ops: Op) -> Draft:
        return replace(self, ops=self.ops + tuple(ops))

    def render(self) -> bytes:
        return render(self)


@dataclass(frozen=True)
class Case:
    """A case: the mutated message, and the valid messages sent before and after it (stateful strategy).

    ``keeps_identification``: the strategy broke the Identification field on purpose, so
    ``--identification fresh`` must send the mutated message with it as generated (:mod:`.fresh`).
    """

    seed: int
    index: int
    strategy: str
    draft: Draft
    before: tuple[Draft, ...] = ()
    after: tuple[Draft, ...] = ()
    keeps_identification: bool = False

    @cached_property
    def payload(self) -> bytes:  # rendered once: the sender, the recorder and the reports all ask
        return self.draft.render()

    @property
    def signed(self) -> bool:
        return self.draft.signer is not None

    @property
    def kind(self) -> str:
        return message_kind(self.payload)

    def steps(self) -> list[bytes]:
        """Every datagram of the case in sending order."""
        if not self.before and not self.after:
            return [self.payload]
        return [d.render() for d in self.before] + [self.payload] + [d.render() for d in self.after]

    def parts(self) -> list[tuple[Draft, bool]]:
        """Every message of the case in sending order, each with whether its Identification must be kept."""
        return (
            [(d, False) for d in self.before]
            + [(self.draft, self.keeps_identification)]
            + [(d, False) for d in self.after]
        )


def message_kind(payload: bytes) -> str:
    if not payload:
        return "empty"
    return MESSAGE_KINDS.get(payload[0], f"type-{payload[0]}")


# ------------------------------------------------------------------ rendering


def _set_length(ext: bytearray, value: int) -> None:
    if ext and ext[0] in LONG_FORMAT_TYPES:
        if len(ext) >= 4:
            ext[2:4] = struct.pack("!H", value & 0xFFFF)
    elif len(ext) >= 2:
        ext[1] = value & 0xFF


_WIDTH = {"u8": "!B", "u16": "!H", "u32": "!I", "u64": "!Q"}


def render(draft: Draft) -> bytes:
    """Apply the mutations in order, sign, then apply the whole-message mutations (cut, append, flip).

    An operation whose target is out of range is skipped, so any subset of a
    case's mutations still renders (the minimiser relies on it).
    """
    fixed = bytearray(draft.fixed)
    exts = [bytearray(e) for e in draft.extensions]
    auth_at: int | None = None
    auth_twice = False
    after_sign: list[Op] = []
    for op in draft.ops:
        name = op[0]
        if name in _WIDTH:
            off, value = op[1], op[2]
            fmt = _WIDTH[name]
            size = struct.calcsize(fmt)
            if 0 <= off and off + size <= len(fixed):
                fixed[off : off + size] = struct.pack(fmt, value & ((1 << (8 * size)) - 1))
        elif name == "addr":
            off, quad = op[1], bytes.fromhex(op[2])
            if 0 <= off and off + 4 <= len(fixed):
                fixed[off : off + 4] = quad
        elif name == "ext_insert":
            exts.insert(max(0, min(op[1], len(exts))), bytearray.fromhex(op[2]))
        elif name == "ext_drop":
            if 0 <= op[1] < len(exts):
                del exts[op[1]]
        elif name == "ext_dup":
            if 0 <= op[1] < len(exts):
                exts.insert(op[1] + 1, bytearray(exts[op[1]]))
        elif name == "ext_move":
            if 0 <= op[1] < len(exts):
                ext = exts.pop(op[1])
                exts.insert(max(0, min(op[2], len(exts))), ext)
        elif name == "ext_len":
            if 0 <= op[1] < len(exts):
                _set_length(exts[op[1]], op[2])
        elif name == "ext_type":
            if 0 <= op[1] < len(exts) and exts[op[1]]:
                exts[op[1]][0] = op[2] & 0xFF
        elif name == "ext_byte":
            i, off, value = op[1], op[2], op[3]
            if 0 <= i < len(exts) and 0 <= off < len(exts[i]):
                exts[i][off] = value & 0xFF
        elif name == "ext_cut":
            if 0 <= op[1] < len(exts):
                del exts[op[1]][max(0, op[2]) :]
        elif name == "auth_at":
            auth_at = op[1]
        elif name == "auth_twice":
            auth_twice = True
        else:  # cut, append, flip: on the whole message, after signing
            after_sign.append(op)
    split = len(exts) if auth_at is None else max(0, min(auth_at, len(exts)))
    msg = bytes(fixed) + b"".join(exts[:split])
    if draft.signer is not None:
        signed = draft.signer.sign(msg)
        msg = signed + (signed[len(msg) :] if auth_twice else b"")
    msg += b"".join(exts[split:])
    for op in after_sign:
        if op[0] == "cut":
            msg = msg[: max(0, op[1])]
        elif op[0] == "append":
            msg += bytes.fromhex(op[1])
        elif op[0] == "flip" and 0 <= op[1] < len(msg):
            msg = msg[: op[1]] + bytes((msg[op[1]] ^ (op[2] & 0xFF),)) + msg[op[1] + 1 :]
    return msg


def boundaries(payload: bytes, fixed_size: int, field_ends: tuple[int, ...] = ()) -> list[int]:
    """Every length at which cutting ``payload`` splits it on a field or extension boundary (and one octet either
    side).
    """
    cuts = {0, 1, *field_ends, fixed_size}
    off = fixed_size
    while off < len(payload):
        t = payload[off]
        hdr = 4 if t in LONG_FORMAT_TYPES else 2
        if off + hdr > len(payload):
            break
        length = int.from_bytes(payload[off + 2 : off + 4], "big") if hdr == 4 else payload[off + 1]
        cuts.update((off, off + 1, off + hdr, off + hdr + 1, off + hdr + length - 1, off + hdr + 4))
        off += hdr + length
    cuts.update((len(payload) - 1, len(payload) - 16))
    return sorted(c for c in cuts if 0 <= c < len(payload))
