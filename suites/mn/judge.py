"""Queries over the played parties' observation log, and the few steps every MN case shares.

Verdicts are judged from the wire only (the log of :mod:`.played`); a case
never reaches into the device. Helpers here answer "did X arrive between
t1 and t2", "what did arrive", "how long does this device wait before it
retransmits" (the tolerance every timer judged gets), and perform the
conforming steps cases start from (attach to a network, wait for the i-HA's
reply, show that the device answers a ping), raising ``Inconclusive`` with
what actually arrived when the device does not do the conforming thing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from mipcheck.engine.verdicts import Inconclusive
from mipcheck.mn.profile import DOWN

from .env import MnEnv
from .played import DIRECT, IHA, IN, OUT, VIA_VPN, VIA_XHA, XHA, Obs, Ping

DEFAULT_RETRANSMISSION = 1.0  # seconds, when the device has not yet shown its own interval
MAX_SHOWN = 4  # observations quoted in a reason


# ---------------------------------------------------------------- queries


def requests(
    log: Iterable[Obs],
    role: str,
    *,
    path: str | None = None,
    coa: str | None = None,
    since: float | None = None,
    until: float | None = None,
    lifetime: str = "any",  # any | zero | nonzero
    valid: bool = True,
) -> list[Obs]:
    """Registration requests the device sent to ``role`` (from ``coa``, in a time window)."""
    out = []
    for o in log:
        if o.direction != IN or o.kind != "request" or o.role != role:
            continue
        if path is not None and o.path != path:
            continue
        if coa is not None and (o.outer or o.peer)[0] != coa:
            continue
        if since is not None and o.at < since:
            continue
        if until is not None and o.at > until:
            continue
        if lifetime == "zero" and o.lifetime != 0 or lifetime == "nonzero" and not o.lifetime:
            continue
        if valid and o.auth != "valid":
            continue
        out.append(o)
    return out


def replies(
    log: Iterable[Obs],
    role: str,
    *,
    path: str | None = None,
    coa: str | None = None,
    since: float | None = None,
    until: float | None = None,
    accepted: bool | None = True,
    tnc: str | None | bool = False,  # False: any; None: without TNC; "before-auth" / "after-auth"
    lifetime: str = "any",
) -> list[Obs]:
    """Replies the played ``role`` sent (accepted or not, with or without TNC)."""
    out = []
    for o in log:
        if o.direction != OUT or o.kind != "reply" or o.role != role:
            continue
        if path is not None and o.path != path:
            continue
        if coa is not None and (o.outer or o.peer)[0] != coa:
            continue
        if since is not None and o.at < since or until is not None and o.at > until:
            continue
        if accepted is not None and o.accepted != accepted:
            continue
        if tnc is not False and o.tnc != tnc:
            continue
        if lifetime == "zero" and o.lifetime != 0 or lifetime == "nonzero" and not o.lifetime:
            continue
        out.append(o)
    return out


def echo_replies(log: Iterable[Obs], pings: Iterable[Ping], *, path: str | None = None) -> list[Obs]:
    """The device's echo replies to these pings (by identifier and sequence number)."""
    wanted = {p.echo for p in pings}
    return [
        o
        for o in log
        if o.direction == IN and o.kind == "echo-reply" and o.echo in wanted and (path is None or o.path == path)
    ]


def arrived(log: Iterable[Obs], since: float | None = None) -> list[Obs]:
    return [o for o in log if o.direction == IN and (since is None or o.at >= since)]


def frames(*groups: Iterable[Obs] | Obs | None) -> tuple[int, ...]:
    out: set[int] = set()
    for g in groups:
        if g is None:
            continue
        for o in [g] if isinstance(g, Obs) else g:
            out.add(o.frame)
    return tuple(sorted(out))


def show(obs: Sequence[Obs], origin: float, empty: str = "nothing arrived") -> str:
    """What arrived, for a reason: the first few observations, then a count."""
    if not obs:
        return empty
    shown = "; ".join(o.describe(origin) for o in obs[:MAX_SHOWN])
    more = f"; and {len(obs) - MAX_SHOWN} more" if len(obs) > MAX_SHOWN else ""
    return shown + more


# ---------------------------------------------------------------- the device's own timing


def retransmission_interval(log: Iterable[Obs]) -> float | None:
    """The shortest interval at which the device resent an unanswered request (its first retransmission timeout)."""
    last: dict[tuple[str, str, str, str], Obs] = {}
    best: float | None = None
    for o in log:
        if o.kind == "request" and o.direction == IN and o.lifetime:
            key = (o.role, o.path, (o.outer or o.peer)[0], o.home_address or "")
            prev = last.get(key)
            if prev is not None and prev.action != "answered":
                gap = o.at - prev.at
                if 0.05 <= gap <= 60 and (best is None or gap < best):
                    best = gap
            last[key] = o
        elif o.kind == "reply" and o.direction == OUT:
            for key in [k for k in last if k[0] == o.role and k[2] == (o.outer or o.peer)[0]]:
                del last[key]
    return best


class Timing:
    """The profile's timers and the tolerance every judged timer gets (one retransmission interval)."""

    def __init__(self, env: MnEnv) -> None:
        p = env.profile
        self.t_monitor = p.t_monitor
        self.grace = p.grace
        self.detection = p.detection_period
        seen = retransmission_interval(env.history())
        self.retransmission = seen if seen is not None else DEFAULT_RETRANSMISSION
        self.measured = seen is not None
        self.tol = max(env.min_tolerance, self.retransmission)
        self.crossing = env.crossing
        # how long a registration may take to show up after a move (a real device may need DHCP first)
        self.settle = self.detection + 3 * self.tol + 1.0

    def describe(self) -> str:
        how = "measured" if self.measured else "assumed (none seen yet)"
        return f"tolerance {self.tol:.2f} s (retransmission interval {self.retransmission:.2f} s, {how})"


# ---------------------------------------------------------------- shared steps


@dataclass(frozen=True)
class Attached:
    interface: str
    network: str
    coa: str
    at: float


def attach(env: MnEnv, interface: str, network: str, coa: str | None = None, *, fresh: bool = True) -> Attached:
    """Move ``interface`` to ``network``: a connection status change (down first when it may be there already)."""
    if fresh and env.networks.get(interface) in (None, network):
        env.move(interface, DOWN)
    got = env.move(interface, network, coa)
    assert got is not None
    return Attached(interface, network, got, env.moves[-1].at)


def detach(env: MnEnv, interface: str) -> None:
    if env.networks.get(interface) != DOWN:
        env.move(interface, DOWN)


def wait_for(env: MnEnv, query: Callable[[], list[Obs]], timeout: float) -> Obs | None:
    """The first observation ``query`` finds, waiting up to ``timeout`` seconds."""
    env.wait_until(lambda: bool(query()), timeout)
    found = query()
    return found[0] if found else None


def device_port(env: MnEnv, coa: str, since: float, timeout: float = 0.0) -> int:
    """The UDP port the device uses on ``coa`` (from its requests), else the profile's."""

    def seen() -> list[Obs]:
        return [o for o in arrived(env.observations(), since) if o.peer[0] == coa and o.outer is None]

    hit = wait_for(env, seen, timeout) if timeout else (seen() or [None])[0]
    return hit.peer[1] if hit is not None else env.profile.port


def inside_reply(env: MnEnv, a: Attached, t: Timing, *, tnc: str | None | bool = "before-auth") -> Obs:
    """The i-HA's accepted reply to a request from ``a.coa`` (Inconclusive with what arrived if none)."""

    def query() -> list[Obs]:
        return replies(env.observations(), IHA, path=DIRECT, coa=a.coa, since=a.at, tnc=tnc, lifetime="nonzero")

    got = wait_for(env, query, t.settle)
    if got is None:
        raise Inconclusive(
            f"after `move {a.interface} {a.network}` no registration from {a.coa} was accepted by the i-HA within "
            f"{t.settle:.1f} s; observed: {show(arrived(env.observations(), a.at), env.case_start)}"
        )
    return got


def ping_answered(
    env: MnEnv, path: str, t: Timing, *, to: tuple[str, int] | None = None, attempts: int = 3, window: float = 0.0
) -> tuple[list[Ping], Obs | None]:
    """Send up to ``attempts`` pings by ``path`` over ``window`` seconds; the first echo reply to any of them."""
    window = window or t.tol
    sent: list[Ping] = []
    for i in range(attempts):
        p = env.ping(path, to=to)
        if p is None:
            break
        sent.append(p)
        if env.wait_until(lambda: bool(echo_replies(env.observations(), sent)), window / attempts):
            break
        del i
    got = echo_replies(env.observations(), sent)
    return sent, (got[0] if got else None)


def control_inside(env: MnEnv, a: Attached, t: Timing, reply: Obs) -> Obs:
    """Control: the device at ``a.coa`` answers a ping through the direct i-HA tunnel (Inconclusive if not)."""
    sent, echo = ping_answered(env, DIRECT, t, to=reply.peer, window=t.detection + t.tol)
    if echo is None:
        raise Inconclusive(
            f"control: after the i-HA's TNC reply ({reply.describe(env.case_start)}) the device answered none of "
            f"{len(sent)} echo requests through the direct i-HA tunnel within {t.detection + t.tol:.1f} s; observed "
            f"since: {show(arrived(env.observations(), reply.at), env.case_start)}"
        )
    return echo


def vpn_up(env: MnEnv, a: Attached, t: Timing, since: float, timeout: float | None = None) -> Obs | None:
    """The i-HA's accepted reply to a registration through the VPN from the x-HA tunnel of ``a.coa``."""

    def query() -> list[Obs]:
        return replies(env.observations(), IHA, path=VIA_VPN, coa=a.coa, since=since, lifetime="nonzero")

    return wait_for(env, query, t.settle if timeout is None else timeout)


def xha_reply(env: MnEnv, a: Attached, t: Timing) -> Obs | None:
    def query() -> list[Obs]:
        return replies(env.observations(), XHA, path=VIA_XHA, coa=a.coa, since=a.at, lifetime="nonzero")

    return wait_for(env, query, t.settle)


def pings_over(
    env: MnEnv,
    path: str,
    duration: float,
    every: float,
    *,
    to: tuple[str, int] | None = None,
    stop: Callable[[], bool] | None = None,
) -> list[Ping]:
    """A ping by ``path`` every ``every`` seconds for ``duration`` seconds (or until ``stop()``)."""
    end = env.now() + duration
    sent: list[Ping] = []
    while env.now() < end:
        p = env.ping(path, to=to)
        if p is not None:
            sent.append(p)
        if stop is not None and stop():
            break
        left = end - env.now()
        if left <= 0:
            break
        if stop is not None:
            env.wait_until(stop, min(every, left))
        else:
            env.wait(min(every, left))
    return sent
