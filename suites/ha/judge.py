"""Judging replies: pure functions from recorded datagrams to checks.

Every function here takes what was sent and what came back (with frame
numbers) and returns :class:`~mipcheck.engine.verdicts.Check` values; no
sockets, no clocks, so each rule is tested table-driven in
``tests/test_suite_ha_judge.py``. Extension checks read the raw octets, not
a parse, so a malformed extension cannot hide behind a lenient dissector.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from mipcheck.engine.evidence import Datagram
from mipcheck.engine.profile import MobileNode
from mipcheck.engine.verdicts import Check
from mipcheck.layers import Key, MobileIPMessage, RegistrationReply
from mipcheck.layers import numbers as n
from mipcheck.layers.auth import iter_extension_spans, verify_message
from mipcheck.layers.identification import high32, low32
from mipcheck.mn.acceptance import ReplyJudgement, judge_reply
from mipcheck.mn.acceptance import authentication_problem as mn_authentication_problem
from mipcheck.proto import codec

from .messages import Request

RRP_FIXED = RegistrationReply.fixed_size  # 20 octets (RFC 5944 3.4)
TNC_TYPE = n.EXT_TNC  # 149, RFC 5265 3.4
TNC_LENGTH = 2
TNC_SUBTYPE = 0
# Catalogue requirements of checks used by cases that test more than one rule, so a
# failed check names its own rule (Check.rule_id), not the case's first one.
RULE_AUTH_COVERS_PRECEDING = "5944-3.5-AUTH-COVERS-PRECEDING"
RULE_REPLY_MN_HA_AUTH = "5944-3.5.2-REPLY-MN-HA-AUTH"
RULE_REPLY_IDENTIFICATION = "5944-5.7-REPLY-IDENTIFICATION"


@dataclass(frozen=True)
class Ext:
    """One extension as it sits in the octets."""

    type: int
    offset: int
    header: int
    length: int
    body: bytes


def extensions(data: bytes, start: int = RRP_FIXED) -> list[Ext]:
    return [
        Ext(t, off, hdr, length, data[off + hdr : off + hdr + length])
        for t, off, hdr, length in iter_extension_spans(data, start)
    ]


def parse_reply(data: bytes) -> RegistrationReply | None:
    msg = MobileIPMessage(data)
    return msg if isinstance(msg, RegistrationReply) else None


def is_reply_for(req: Request, d: Datagram) -> bool:
    """A Registration Reply for the request's home address, whatever its Identification."""
    rrp = parse_reply(d.payload)
    return rrp is not None and rrp.home_address == req.home_address


def is_reply_to(req: Request, d: Datagram) -> bool:
    """RFC 5944 3.4, 5.7: same Home Address, low-order 32 bits of Identification copied."""
    rrp = parse_reply(d.payload)
    return (
        rrp is not None
        and rrp.home_address == req.home_address
        and low32(rrp.identification) == low32(req.identification)
    )


def describe(d: Datagram | None, req: Request | None = None) -> str:
    """What arrived, in words; given the request, a reply that did not copy its Identification says so."""
    if d is None:
        return "no reply"
    rrp = parse_reply(d.payload)
    if rrp is None:
        return f"frame {d.frame}: {len(d.payload)} octets that are not a Registration Reply"
    text = f"frame {d.frame}: reply code {rrp.code} ({n.reply_code_name(rrp.code)}), lifetime {rrp.lifetime}"
    if req is not None and low32(rrp.identification) != low32(req.identification):
        text += (
            f", whose Identification low-order 32 bits ({low32(rrp.identification):#010x}) were not copied"
            f" from the request ({low32(req.identification):#010x})"
        )
    return text


def authentication_problem(req: Request, reply: Datagram) -> str | None:
    """What is wrong with the reply's MN-HA authentication alone (None: valid, or not a reply to judge)."""
    mn = req.mn
    rrp = codec.parse_reply(reply.payload)
    if mn is None or rrp is None:
        return None if rrp is None else "cannot be judged: the request carries no mobile node"
    if rrp.error:
        return f"with a malformed extension area: {rrp.error}"
    # From a home agent, even a foreign agent's code without MN-HA authentication is a problem.
    return mn_authentication_problem(rrp, spi=mn.spi, algorithm=mn.algorithm, key=mn.secret.reveal())


def acceptance(req: Request, reply: Datagram) -> ReplyJudgement:
    """The mobile node's judgement of ``reply`` (shared with the MN client: mipcheck.mn.acceptance)."""
    mn = req.mn
    if mn is None:
        raise ValueError("the request carries no mobile node to judge its reply with")
    return judge_reply(
        reply.payload,
        home_address=req.home_address,
        identifications=(low32(req.identification),),
        spi=mn.spi,
        algorithm=mn.algorithm,
        key=mn.secret.reveal(),
    )


def _frames(*ds: Datagram | None) -> tuple[int, ...]:
    return tuple(d.frame for d in ds if d is not None)


# ------------------------------------------------------------------ presence and silence


def check_silent(what: str, sent: Datagram, got: Iterable[Datagram], window: float) -> Check:
    """No datagram at all came back to the socket the request left from."""
    got = list(got)
    observed = f"nothing within {window:g} s" if not got else "; ".join(describe(d) for d in got)
    return Check(what, "no reply at all (silently dropped)", observed, not got, _frames(sent, *got))


def check_answered(
    what: str, sent: Datagram, reply: Datagram | None, window: float, req: Request | None = None
) -> Check:
    observed = describe(reply, req) if reply else f"no reply within {window:g} s"
    return Check(what, "a Registration Reply", observed, reply is not None, _frames(sent, reply))


def check_accepted(what: str, sent: Datagram, reply: Datagram | None, req: Request | None = None) -> Check:
    """Accepted as a mobile node sees it: code 0 or 1, and (given the request) a reply an MN would act on."""
    expected = "registration accepted (code 0 or 1)"
    rrp = parse_reply(reply.payload) if reply else None
    ok = rrp is not None and n.reply_accepted(rrp.code)
    observed = describe(reply, req)
    if reply is not None and req is not None and req.mn is not None:
        expected += ", in a reply the mobile node can act on"
        verdict = acceptance(req, reply)
        if verdict.problem is not None:
            ok, observed = False, f"frame {reply.frame}: {verdict.problem}"
    return Check(what, expected, observed, ok, _frames(sent, reply))


def check_code(
    what: str, sent: Datagram, reply: Datagram | None, codes: Iterable[int], req: Request | None = None
) -> Check:
    codes = tuple(codes)
    rrp = parse_reply(reply.payload) if reply else None
    expected = " or ".join(f"code {c} ({n.reply_code_name(c)})" for c in codes)
    return Check(what, expected, describe(reply, req), rrp is not None and rrp.code in codes, _frames(sent, reply))


def check_rejected(
    what: str, sent: Datagram, reply: Datagram | None, req: Request, code: int, window: float
) -> list[Check]:
    """RFC 5944 3.8.2.1 as worded: the home agent MUST reject the request and SHOULD reply with ``code``.

    Accepting it fails the MUST; rejecting it silently or with another code
    is a SHOULD deviation (a warning), never a failure.
    """
    rrp = parse_reply(reply.payload) if reply else None
    accepted = rrp is not None and n.reply_accepted(rrp.code)
    observed = describe(reply, req) if reply else f"no reply within {window:g} s (silently dropped)"
    frames = _frames(sent, reply)
    return [
        Check(f"{what}: rejected", "the request rejected, not accepted (MUST)", observed, not accepted, frames, "MUST"),
        Check(
            f"{what}: denial code",
            f"a Registration Reply with code {code} ({n.reply_code_name(code)}) (SHOULD)",
            observed,
            rrp is not None and rrp.code == code,
            frames,
            "SHOULD",
        ),
    ]


# ------------------------------------------------------------------ TNC (RFC 5265 3.4, 4.3)


def find_tnc(data: bytes) -> Ext | None:
    return next((e for e in extensions(data) if e.type == TNC_TYPE), None)


def check_tnc_present(what: str, reply: Datagram) -> Check:
    tnc = find_tnc(reply.payload)
    observed = (
        f"frame {reply.frame}: TNC at octet {tnc.offset}"
        if tnc
        else f"frame {reply.frame}: extensions {_types(reply.payload)}, no type 149"
    )
    return Check(what, "a Trusted Networks Configured extension (type 149)", observed, tnc is not None, (reply.frame,))


def _types(data: bytes) -> str:
    types = [str(e.type) for e in extensions(data)]
    return "[" + ", ".join(types) + "]" if types else "none"


def check_tnc_format(reply: Datagram) -> list[Check]:
    """Type 149, Length 2, Sub-Type 0, Reserved 0 (RFC 5265 3.4, short extension format)."""
    tnc = find_tnc(reply.payload)
    f = (reply.frame,)
    if tnc is None:
        return [Check("TNC extension", "present, to judge its format", f"frame {reply.frame}: none", None, f)]
    sub = tnc.body[0] if len(tnc.body) > 0 else None
    res = tnc.body[1] if len(tnc.body) > 1 else None
    return [
        Check("TNC Length", str(TNC_LENGTH), str(tnc.length), tnc.length == TNC_LENGTH, f),
        Check("TNC Sub-Type", str(TNC_SUBTYPE), "absent" if sub is None else str(sub), sub == TNC_SUBTYPE, f),
        Check("TNC Reserved", "0 (set to 0 when sending)", "absent" if res is None else str(res), res == 0, f),
    ]


# ------------------------------------------------------------------ authentication of replies


def mn_ha_auth(data: bytes) -> Ext | None:
    return next((e for e in extensions(data) if e.type == n.EXT_MN_HA_AUTH), None)


def check_tnc_before_auth(reply: Datagram) -> Check:
    """RFC 5944 3.5.1: only extensions before the MN-HA authenticator are covered by it."""
    tnc, auth = find_tnc(reply.payload), mn_ha_auth(reply.payload)
    f = (reply.frame,)
    if tnc is None or auth is None:
        missing = "TNC" if tnc is None else "MN-HA authentication extension"
        return Check(
            "TNC position",
            "TNC before the MN-HA authentication extension",
            f"no {missing}",
            False if auth is None else None,
            f,
            rule_id=RULE_AUTH_COVERS_PRECEDING,
        )
    observed = f"TNC at octet {tnc.offset}, MN-HA authentication at octet {auth.offset}"
    return Check(
        "TNC position",
        "TNC before the MN-HA authentication extension (covered by it)",
        observed,
        tnc.offset < auth.offset,
        f,
        rule_id=RULE_AUTH_COVERS_PRECEDING,
    )


def check_reply_authenticator(reply: Datagram, mn: MobileNode) -> Check:
    """The reply's MN-HA authenticator verifies with the mobile node's key (RFC 5944 3.5.2)."""
    f = (reply.frame,)
    results = [
        c
        for c in verify_message(reply.payload, RRP_FIXED, {mn.spi: Key(mn.secret.reveal(), mn.algorithm)})
        if c.ext_type == n.EXT_MN_HA_AUTH
    ]
    if not results:
        return Check(
            "reply authenticator",
            f"an MN-HA authentication extension with SPI {mn.spi}",
            "none",
            False,
            f,
            rule_id=RULE_REPLY_MN_HA_AUTH,
        )
    r = results[0]
    if r.valid is None:
        return Check("reply authenticator", f"SPI {mn.spi}", f"SPI {r.spi}", False, f, rule_id=RULE_REPLY_MN_HA_AUTH)
    return Check(
        "reply authenticator",
        "valid with the mobile node's key",
        "valid" if r.valid else "does not verify",
        r.valid,
        f,
        rule_id=RULE_REPLY_MN_HA_AUTH,
    )


# ------------------------------------------------------------------ identification (RFC 5944 5.7)


def check_reply_identification(
    req: Request, sent: Datagram, reply: Datagram, *, high_differs: bool = True
) -> list[Check]:
    """A 133 reply: low-order 32 bits copied; with ``high_differs``, high-order 32 bits not the request's.

    ``high_differs`` only where the request's timestamp is far from any
    clock (a stale probe): for a replay of a fresh request the device's time
    of day may well be the same second, which is judged against the
    device's clock instead (``cases_base.DeviceClock``).
    """
    rrp = parse_reply(reply.payload)
    f = (sent.frame, reply.frame)
    if rrp is None:
        return [
            Check(
                "reply identification",
                "a Registration Reply",
                describe(reply),
                False,
                f,
                rule_id=RULE_REPLY_IDENTIFICATION,
            )
        ]
    got, want = rrp.identification, req.identification
    checks = [
        Check(
            "reply identification, low-order 32 bits",
            f"copied from the request ({low32(want):#010x})",
            f"{low32(got):#010x}",
            low32(got) == low32(want),
            f,
            rule_id=RULE_REPLY_IDENTIFICATION,
        ),
    ]
    if high_differs:
        checks.append(
            Check(
                "reply identification, high-order 32 bits",
                f"the home agent's time of day, not the request's ({high32(want):#010x})",
                f"{high32(got):#010x}",
                high32(got) != high32(want),
                f,
                rule_id=RULE_REPLY_IDENTIFICATION,
            )
        )
    return checks


# ------------------------------------------------------------------ lifetime


def check_lifetime_at_most(req: Request, sent: Datagram, reply: Datagram) -> Check:
    rrp = parse_reply(reply.payload)
    granted = None if rrp is None else rrp.lifetime
    return Check(
        "granted lifetime",
        f"at most the requested {req.lifetime} s",
        "no reply" if granted is None else f"{granted} s",
        granted is not None and granted <= req.lifetime,
        (sent.frame, reply.frame),
    )


def check_lifetime_zero(sent: Datagram, reply: Datagram) -> Check:
    rrp = parse_reply(reply.payload)
    got = None if rrp is None else rrp.lifetime
    return Check(
        "deregistration lifetime",
        "0 (binding removed)",
        "no reply" if got is None else f"{got} s",
        got == 0,
        (sent.frame, reply.frame),
    )


# ------------------------------------------------------------------ RFC 3519 NAT traversal


def udp_tunnel_reply(data: bytes) -> Ext | None:
    return next((e for e in extensions(data) if e.type == n.EXT_UDP_TUNNEL_REPLY), None)


def check_udp_tunnel_reply(reply: Datagram) -> list[Check]:
    """RFC 3519 3.2: a UDP Tunnel Reply (type 44) with code 0, before the MN-HA authenticator."""
    ext = udp_tunnel_reply(reply.payload)
    f = (reply.frame,)
    if ext is None:
        return [
            Check(
                "UDP Tunnel Reply",
                "a UDP Tunnel Reply extension (type 44)",
                f"frame {reply.frame}: extensions {_types(reply.payload)}",
                False,
                f,
            )
        ]
    code = ext.body[1] if len(ext.body) > 1 else None
    checks = [
        Check("UDP Tunnel Reply code", "0 (will do tunneling)", "absent" if code is None else str(code), code == 0, f)
    ]
    auth = mn_ha_auth(reply.payload)
    if auth is not None:
        checks.append(
            Check(
                "UDP Tunnel Reply position",
                "before the MN-HA authentication extension",
                f"octet {ext.offset} vs {auth.offset}",
                ext.offset < auth.offset,
                f,
            )
        )
    return checks


def tunnelled_ip(d: Datagram) -> bytes | None:
    """The inner IPv4 packet of an RFC 3519 tunnel data message (type 4, next header 4)."""
    p = d.payload
    if len(p) < 4 + 20 or p[0] != n.MSG_TUNNEL_DATA or p[1] != n.IPPROTO_IPIP or p[4] >> 4 != 4:
        return None
    return p[4:]


def inner_addresses(ip: bytes) -> tuple[str, str]:
    src, dst = struct.unpack_from("!4s4s", ip, 12)
    return ".".join(map(str, src)), ".".join(map(str, dst))
