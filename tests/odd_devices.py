"""Scripted odd home agents: the reference core behind a script that behaves like a picky or buggy real device.

Why: our reference HA is conformant or broken in exactly one rule; real
devices are picky (they require flags) and buggy in ways that break several
things at once (they answer with the wrong authentication extension). The
suite's verdicts must hold against those too. Each device here is the
sans-IO core plus a ``script`` that rewrites requests before it and replies
after it, on a UDP socket of its own on loopback.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from mipcheck.builtin import HA_ADDRESS, builtin_profile, ha_config, mobile_nodes
from mipcheck.engine.profile import MobileNode, Profile
from mipcheck.ha.core import HomeAgent
from mipcheck.layers import numbers as n
from mipcheck.proto import codec

#: A script sees the request (and may answer it itself); then the core's reply (and may rewrite it).
Before = Callable[[bytes], "bytes | tuple[str, bytes]"]  # new request octets, or ("reply", octets)
After = Callable[[bytes], bytes]


class ScriptedHomeAgent:
    """The reference i-HA core on 127.0.0.1 (a free port) with a request/reply script around it."""

    def __init__(self, before: Before | None = None, after: After | None = None, *, clock_offset: float = 0.0) -> None:
        self.nodes = mobile_nodes()
        self.core = HomeAgent(ha_config(self.nodes))
        self.keys = {m.home_address: m for m in self.nodes}
        self.before, self.after = before, after
        self.clock_offset = clock_offset  # the device's clock minus the real one (a lagging device: < 0)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HA_ADDRESS, 0))
        self.sock.settimeout(0.05)
        self.address, self.port = self.sock.getsockname()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def profile(self, **changes) -> Profile:
        return replace(builtin_profile(self.address, self.port, self.nodes), **changes)

    def __enter__(self) -> ScriptedHomeAgent:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def _serve(self) -> None:
        local = (self.address, self.port)
        while not self._stop.is_set():
            try:
                data, src = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if self.before is not None:
                data = self.before(data)
                if isinstance(data, tuple):
                    self.sock.sendto(data[1], src)
                    continue
            d = self.core.handle(data, src, local, time.time() + self.clock_offset)
            if d.reply is not None and d.reply_to is not None:
                reply = self.after(d.reply) if self.after is not None else d.reply
                self.sock.sendto(reply, d.reply_to)

    # ---- helpers for scripts: re-sign what the script changed, as the device would
    def mn_of(self, home_address: str) -> MobileNode | None:
        return self.keys.get(home_address)

    def verifies(self, req: codec.Request) -> bool:
        """The request's (one) MN-HA authenticator verifies with the home address's key."""
        mn = self.mn_of(req.home_address)
        auths = [e for e in req.extensions if e.type == n.EXT_MN_HA_AUTH]
        return (
            mn is not None
            and len(auths) == 1
            and codec.spi_of(req.data, auths[0]) == mn.spi
            and codec.check_authenticator(req.data, auths[0], mn.algorithm, mn.secret.reveal())
        )

    def resign(self, data: bytes, fixed: int, home_address: str) -> bytes:
        """Recompute the MN-HA authenticator over changed octets (a device computes it over what it sends)."""
        mn = self.mn_of(home_address)
        exts, _err = codec.walk_extensions(data, fixed)
        auth = next((e for e in exts if e.type == n.EXT_MN_HA_AUTH), None)
        if mn is None or auth is None:
            return data
        covered = data[: auth.body + 4]
        return covered + codec.authenticator(mn.algorithm, mn.secret.reveal(), covered) + data[auth.end :]


def requires_gre(ha: ScriptedHomeAgent) -> Before:
    """A device that denies with 128 every request without the G flag; with it, it registers normally."""

    def before(data: bytes) -> bytes | tuple[str, bytes]:
        req = codec.parse_request(data)
        if req is None:
            return data
        if not req.flags & n.FLAG_G:
            mn = ha.mn_of(req.home_address)
            auth = None if mn is None else (mn.spi, mn.algorithm, mn.secret.reveal())
            return ("reply", codec.build_reply(128, 0, req.home_address, req.home_agent, req.identification, auth=auth))
        # It tunnels GRE itself; our core only does IP-in-IP, so hand it the request without G,
        # re-signed only if the original authenticator verified (a bad one must stay bad).
        stripped = data[:1] + bytes((data[1] & ~n.FLAG_G,)) + data[2:]
        return ha.resign(stripped, codec.RRQ_FIXED.size, req.home_address) if ha.verifies(req) else stripped

    return before


def fa_ha_auth_only(data: bytes) -> bytes:
    """Replies carry a Foreign-Home authentication extension and an unknown non-skippable one, no MN-HA."""
    exts, _err = codec.walk_extensions(data, codec.RRP_FIXED.size)
    auth = next((e for e in exts if e.type == n.EXT_MN_HA_AUTH), None)
    if auth is None:
        return data
    fa_ha = bytes((n.EXT_FA_HA_AUTH, 20)) + data[auth.body : auth.body + 4] + bytes(16)
    return data[: auth.offset] + bytes((100, 2, 0, 0)) + fa_ha + data[auth.end :]


def answers_missing_auth_with_134(data: bytes) -> bytes | tuple[str, bytes]:
    """A device that calls a request without an authenticator poorly formed (134) instead of 131."""
    req = codec.parse_request(data)
    if req is not None and not any(e.type == n.EXT_MN_HA_AUTH for e in req.extensions):
        return ("reply", codec.build_reply(134, 0, req.home_address, req.home_agent, req.identification))
    return data
