"""The HA suite's pre-flight: one conforming registration before any case runs.

Why: a typo in ``--target``, a dead host, a wrong key or a source the device
does not trust would otherwise read as a non-conformant device (cases
judging silence or denials would "fail"). If nothing answers at all, every
case is an ``error`` (exit 2) and one line says what to check; if the device
answers but denies, the code and what it usually means are said once, and
the cases run (their controls make them inconclusive).
"""

from __future__ import annotations

import socket

from mipcheck.engine.control import DeviceControl
from mipcheck.engine.evidence import SENT, Capture
from mipcheck.engine.profile import MobileNode, Profile
from mipcheck.engine.runner import Preflight
from mipcheck.engine.transport import UDP
from mipcheck.engine.verdicts import CaseOutcome
from mipcheck.layers import numbers as n

from . import judge
from .messages import build_request

MIP_PORT = 434

#: What a denial of the conforming request usually means on a real device.
DENIAL_HINTS: dict[int, str] = {
    128: (
        "the device gives no reason; some devices deny requests that lack flags they require"
        ' (set [mn] flags, e.g. ["G"])'
    ),
    129: "administratively prohibited: is this home address provisioned on the device?",
    131: "authentication failed: check [mn] spi, the secret and algorithm",
    133: "Identification mismatch: is the device's clock within a few seconds of the tester's, and replay = "
    '"timestamp"?',
    134: "poorly formed request: the device wants another extension or layout",
    136: "unknown home agent address: check [dut] address or [mn] home_agent",
    137: "reverse tunnelling unavailable: remove T from [mn] flags",
    138: "reverse tunnelling mandatory: add T to [mn] flags",
    139: "encapsulation unavailable: check M and G in [mn] flags",
}


def _port_unreachable(capture: Capture, source: str, target: tuple[str, int], data: bytes) -> bool:
    """Send the request once more from a connected socket, which is told of an ICMP port unreachable."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((source, 0))
        sock.connect(target)
        sock.settimeout(0.3)
        sock.send(data)
        capture.record(
            sock.getsockname(), target, data, SENT, "pre-flight: the same request, to hear an ICMP port unreachable"
        )
        sock.recv(65535)
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        sock.close()
    return False


def _port_434(transport, capture: Capture, source: str, target: tuple[str, int]):
    """A listener at port 434 of the source, where a sloppy device sends its reply; None if it cannot be bound."""
    if (source, MIP_PORT) == target:
        return None
    try:
        return transport.endpoint(capture, source, MIP_PORT)
    except CaseOutcome:
        return None  # binding 434 needs root; the case HA-ANY-SOURCE-PORT says so when it matters


def preflight(profile: Profile, control: DeviceControl, mn: MobileNode, transport=UDP) -> Preflight:
    """Send the conforming request from the first trusted source and classify what comes back."""
    del control  # the wire alone answers this
    capture = Capture(transport.clock)
    source = profile.trusted_sources[0]
    try:
        ep = transport.endpoint(capture, source)
    except CaseOutcome as exc:
        return Preflight("silent", f"{exc.reason}; check tester.trusted_sources")
    target = f"{profile.dut_address}:{profile.dut_port}"
    try:
        # From the home address's shared clock, so later requests stay above this Identification.
        req = build_request(
            mn,
            home_agent=profile.home_agent_of(mn),
            care_of_address=source,
            identification=transport.identification_clock(profile.target, mn.home_address).next(),
            lifetime=profile.lifetime,
        )
        stray = _port_434(transport, capture, source, profile.target)
        ep.send(req.data, profile.target, note="pre-flight: the conforming request")
        reply = ep.receive(profile.reply_timeout, lambda d: judge.is_reply_for(req, d))
        misdirected = (
            [d for d in stray.drain(0) if judge.is_reply_for(req, d)] if stray is not None and reply is None else []
        )
    except CaseOutcome as exc:
        ep.close()
        return Preflight(
            "silent", f"{exc.reason}; check --target/[dut] and tester.trusted_sources", tuple(capture.frames)
        )
    ep.close()
    if stray is not None:
        stray.close()
    frames = tuple(capture.frames)
    if misdirected:
        # RFC 5944 3.8.3.1: the reply goes to the request's source port. Cases that listen only at
        # their own sockets cannot see this device's replies; HA-ANY-SOURCE-PORT names it.
        return Preflight(
            "misdirected",
            f"the device answered at port 434 of {source}, not at the request's source port {ep.port} "
            f"({judge.describe(misdirected[0], req)}); "
            "cases whose control gets no reply end inconclusive",
            frames,
        )
    if reply is None:
        if ep.refused or (transport is UDP and _port_unreachable(capture, source, profile.target, req.data)):
            what = f"nothing is listening at {target} (ICMP port unreachable)"
        else:
            what = f"no reply from {target} within {profile.reply_timeout:g} s to a valid registration from {source}"
        check = (
            "check --target/[dut] address and port, that the device runs, [mn] keys, and that the device trusts "
            "tester.trusted_sources"
        )
        return Preflight("silent", f"{what}: {check}", frames)
    verdict = judge.acceptance(req, reply)
    if verdict.accepted:
        return Preflight("accepted", f"the conforming registration from {source} was accepted", frames)
    if verdict.problem is not None:
        rrp = judge.parse_reply(reply.payload)
        hint = DENIAL_HINTS.get(rrp.code, "") if rrp is not None else ""
        text = f"the device answered, but a mobile node cannot use the reply: {verdict.problem}"
        return Preflight("unusable", f"{text}{'; ' + hint if hint else ''}", frames)
    code = verdict.code if verdict.code is not None else -1
    hint = DENIAL_HINTS.get(code, "")
    text = f"the device denied the conforming registration from {source} with code {code} ({n.reply_code_name(code)})"
    return Preflight(
        "denied", f"{text}{': ' + hint if hint else ''}; cases whose control is denied too end inconclusive", frames
    )
