"""Sans-IO RFC 5265 internal network detection of the reference mobile node (section 3, access mode cvc).

Why sans-IO: the detection rules are about time (detection period,
T_MONITOR) and about what the mobile node may send; with time as an argument
and datagrams and data decisions as return values, every rule is checkable
in virtual time, and the same core runs over the simulated network, real
sockets or a test driving it by hand.

:class:`MobileNodeDetection` is an actor (``receive_datagram``,
``datagrams_to_send``, ``next_event``, ``get_timer``, ``handle_timer``) over
several interfaces, each an :class:`InterfaceDetector` with its own mode
(3.2.1) and three registration clients: direct to the i-HA, to the x-HA, and
to the i-HA through the VPN. Datagrams that must go through the VPN are kept
apart: ``vpn_datagrams_to_send`` / ``receive_vpn_datagram``, with the VPN
tunnel inner address as local address; whoever runs the VPN carries them.
Every mode change goes through :mod:`mipcheck.mn.detection_table`; each
behaviour setting of :mod:`mipcheck.mn.detection_behaviour` is read where
its rule is enforced.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace

from mipcheck.proto import codec
from mipcheck.proto import numbers as n

from .config import MNConfig
from .core import Denied, Event, Ignored, Registered, RegistrationClient, TimedOut
from .core import State as ClientState
from .detection_behaviour import DetectionBehaviour
from .detection_config import QUEUE, DetectionConfig, ForeignAgentLink, InterfaceConfig
from .detection_events import (
    ClientEvent,
    DataDecision,
    DataDiscarded,
    DataGated,
    DataReleased,
    DataResumed,
    DetectionEvent,
    DetectionStarted,
    Direction,
    Inside,
    Isolated,
    LinkChanged,
    ModeChanged,
    Outside,
    ReregistrationFailed,
    Role,
    TentativelyOutside,
    UntrustedReply,
    VpnReleased,
    VpnRequested,
)
from .detection_table import Mode, Stimulus, transitions_for

Address = tuple[str, int]
UP, DOWN = "up", "down"
_DETECTION_MODES = (Mode.DETECTING, Mode.TENTATIVELY_OUTSIDE, Mode.XHA_REGISTERING)
_OUTSIDE_PATH = (Mode.VPN_SETUP, Mode.INNER_REGISTERING, Mode.OUTSIDE)
_MONITORED = (Mode.INSIDE, Mode.LAPSED)
_FAILED = (Denied, TimedOut)


def _failure(ev: Event) -> str:
    if isinstance(ev, Denied):
        return f"denied with code {ev.code} ({ev.reason})"
    if isinstance(ev, TimedOut):
        return f"no reply after {ev.attempts} attempts"
    return type(ev).__name__


def _tnc_after_authenticator(reply: bytes) -> bool:
    """A well-formed TNC extension sits after the MN-HA authenticator (not covered by it)."""
    rep = codec.parse_reply(reply)
    if rep is None:
        return False
    auth = [e.offset for e in rep.extensions if e.type == n.EXT_MN_HA_AUTH]
    return bool(auth) and any(e.type == n.EXT_TNC and e.offset > auth[0] and e.length == 2 for e in rep.extensions)


class InterfaceDetector:
    """Detection, monitoring and the data gate of one interface (RFC 5265 3.2.1: nothing shared)."""

    def __init__(
        self,
        config: InterfaceConfig,
        settings: DetectionConfig,
        behaviour: DetectionBehaviour,
        emit: Callable[[DetectionEvent], None],
    ) -> None:
        self.config = config
        self.name = config.name
        self.settings = settings
        self.behaviour = behaviour
        self.table = transitions_for(behaviour)
        self._emit = emit
        self.mode = Mode.DOWN
        self.care_of_address: str | None = None
        self.foreign_agent: ForeignAgentLink | None = None  # registering through a foreign agent (RFC 5944 3.7)
        self.tunnel_inner_address: str | None = None  # VPN-TIA while the VPN is up
        self.iha: RegistrationClient | None = None
        self.xha: RegistrationClient | None = None
        self.inner: RegistrationClient | None = None
        self.last_trusted_at: float | None = None  # last direct i-HA registration with authenticated TNC
        self.last_relayed_at: float | None = None
        self.queue: deque[tuple[Direction, bytes, bool]] = deque()
        self._iha_done = self._xha_done = False  # detection: this home agent will not make us inside/outside
        self._xha_leave_pending = False
        self._xha_deferred = False  # parallel_detection=False only: the x-HA waits for the i-HA to time out
        self._vpn_requested = False
        self._plaintext_until: float | None = None  # only ever set by a faulty behaviour
        self._decide_at: float | None = None
        self._monitor_at: float | None = None
        self._rereg_at: float | None = None
        self._retry_at: float | None = None
        self._clock_offset = 0.0  # carried from one client generation to the next
        self._ha_nonce: dict[str, int | None] = {}

    # ---------------------------------------------------------------- the table

    def _move(self, stimulus: Stimulus, now: float, reason: str, *, was_open: DataDecision | None = None) -> None:
        """Every mode change; ``was_open`` when the gate's state before the cause is not the one now."""
        old = self.mode
        was_open = was_open or self.gate(now)
        try:
            new = self.table[(old, stimulus)]
        except KeyError:
            raise RuntimeError(f"detection on {self.name}: {stimulus.value} in mode {old.value}") from None
        self.mode = new
        if new not in _DETECTION_MODES:
            self._plaintext_until = None
        self._emit(ModeChanged(self.name, now, old, new, stimulus))
        self._gate_changed(was_open, now, reason)

    def _gate_changed(self, was_open: DataDecision | None, now: float, reason: str) -> None:
        is_open = self.gate(now)
        if was_open is not None and is_open is None:
            self._emit(DataGated(self.name, now, reason))
        elif is_open is not None and is_open != was_open:
            self._emit(DataResumed(self.name, now, is_open))
            self._release_queue(is_open, now)

    def can(self, stimulus: Stimulus) -> bool:
        return (self.mode, stimulus) in self.table

    # ---------------------------------------------------------------- the data gate

    def fresh(self, now: float) -> bool:
        """3.2.4: the last successful i-HA registration is younger than T_MONITOR."""
        return self.last_trusted_at is not None and now - self.last_trusted_at < self.settings.t_monitor

    def gate(self, now: float) -> DataDecision | None:
        """How user data may flow now, or None when it must be dropped or queued."""
        if self.mode is Mode.INSIDE:
            # 3.2.4: no user data once T_MONITOR has passed since the last registration.
            if self.fresh(now) or not self.behaviour.t_monitor_gate:
                return DataDecision.PLAINTEXT
            return None
        if self.mode is Mode.OUTSIDE:
            # 2.3: never without the VPN (only skip_vpn reaches OUTSIDE without it).
            return DataDecision.VIA_VPN if self.tunnel_inner_address is not None else DataDecision.PLAINTEXT
        if self._plaintext_until is not None and now <= self._plaintext_until:
            return DataDecision.PLAINTEXT  # faulty behaviours only (3.2.2, 3.3)
        return None

    def data(
        self,
        direction: Direction,
        packet: bytes,
        now: float,
        *,
        via_vpn: bool = False,
        borrowed: DataDecision | None = None,
    ) -> DataDecision:
        decision = self.gate(now) or borrowed
        if decision is not None:
            if direction is Direction.RECEIVE and via_vpn != (decision is DataDecision.VIA_VPN):
                return DataDecision.DROPPED  # 4.1: arrived on the wrong side of the VPN
            self.last_relayed_at = now
            return decision
        if self.settings.when_gated == QUEUE and len(self.queue) < self.settings.max_queue:
            self.queue.append((direction, packet, via_vpn))
            return DataDecision.QUEUED
        return DataDecision.DROPPED

    def _release_queue(self, decision: DataDecision, now: float) -> None:
        discarded = 0
        while self.queue:
            direction, packet, via_vpn = self.queue.popleft()
            if direction is Direction.RECEIVE and via_vpn != (decision is DataDecision.VIA_VPN):
                discarded += 1
                continue
            self.last_relayed_at = now
            self._emit(DataReleased(self.name, now, direction, packet, decision))
        if discarded:
            self._emit(DataDiscarded(self.name, now, discarded, "received on the other side of the VPN"))

    def _discard_queue(self, now: float, reason: str) -> None:
        if self.queue:
            self._emit(DataDiscarded(self.name, now, len(self.queue), reason))
            self.queue.clear()

    # ---------------------------------------------------------------- stimuli from outside

    @property
    def local_address(self) -> str | None:
        """Where this interface's registrations leave from: the co-located care-of address, or its address on a
        foreign agent's link."""
        return self.foreign_agent.source if self.foreign_agent is not None else self.care_of_address

    def link_change(
        self,
        network_state: str,
        care_of_address: str | None,
        now: float,
        foreign_agent: ForeignAgentLink | None = None,
    ) -> None:
        """3.2.2: stop relaying at once, detect, resume only when registrations and tunnels are up.

        ``foreign_agent``: the new attachment is a foreign agent's link and ``care_of_address`` the agent's.
        """
        if network_state not in (UP, DOWN):
            raise ValueError(f"network_state must be {UP!r} or {DOWN!r}, not {network_state!r}")
        if network_state == UP and not care_of_address:
            raise ValueError("a link that comes up needs a care-of address")
        carried = self.gate(now) is DataDecision.PLAINTEXT and not self.behaviour.stop_data_on_status_change
        self._emit(LinkChanged(self.name, now, care_of_address if network_state == UP else None))
        # 3.2.4: a queue is processed only after a registration without a status change.
        self._discard_queue(now, "connection status changed")
        self._plaintext_until = math.inf if carried else None  # faulty: the old verdict outlives the change
        was_open = self.gate(now)
        self.last_trusted_at = None  # 3.2.3: "the connection status ... has not changed since"
        if network_state == DOWN:
            self._move(Stimulus.LINK_DOWN, now, "link down", was_open=was_open)
            self._reset(now)
            self.care_of_address = None
            self.foreign_agent = None
            return
        self.care_of_address = care_of_address
        self.foreign_agent = foreign_agent
        self._move(Stimulus.LINK_UP, now, "connection status changed", was_open=was_open)
        self._start_detection(now)

    def vpn_up(self, inner_address: str, now: float) -> bool:
        """2.3: the VPN from the x-HoA is up; register the VPN-TIA with the i-HA through it ('T' bit)."""
        if not self.can(Stimulus.VPN_UP):
            return False
        self.tunnel_inner_address = inner_address
        self._move(Stimulus.VPN_UP, now, "vpn up")
        cfg = replace(
            self.config.iha,
            local_address=inner_address,
            care_of_address=inner_address,
            colocated=True,
            reverse_tunnel=self.behaviour.inner_reverse_tunnel,  # 2.3: T-bit SHOULD be set
        )
        self.inner = self._client(cfg, inner_address)
        self.inner.register(now)
        return True

    def vpn_down(self, now: float) -> bool:
        if not self.can(Stimulus.VPN_DOWN):
            return False
        self._drop_inner()
        self._move(Stimulus.VPN_DOWN, now, "vpn down")
        self._request_vpn(now)
        return True

    # ---------------------------------------------------------------- detection (3.3)

    def _client(self, cfg: MNConfig, address: str) -> RegistrationClient:
        client = RegistrationClient(cfg, interface=self.name)
        client.local = (address, self.config.port)
        client.clock_offset = self._clock_offset
        client.ha_nonce = self._ha_nonce.get(client.config.home_agent)
        return client

    def _retire(self, client: RegistrationClient | None) -> None:
        if client is not None:
            client.abandon()
            self._clock_offset = client.clock_offset
            self._ha_nonce[client.config.home_agent] = client.ha_nonce

    def _drop_inner(self) -> None:
        self._retire(self.inner)
        self.inner = None
        self.tunnel_inner_address = None

    def _reset(self, now: float) -> None:
        """Forget every registration of the previous attachment."""
        for client in (self.iha, self.xha):
            self._retire(client)
        self.iha = self.xha = None
        self._drop_inner()
        if self._vpn_requested:
            self._vpn_requested = False
            self._emit(VpnReleased(self.name, now))
        self._decide_at = self._monitor_at = self._rereg_at = self._retry_at = None
        self._iha_done = self._xha_done = self._xha_leave_pending = self._xha_deferred = False

    def _attached(self, cfg: MNConfig) -> MNConfig:
        """A home agent's registration settings for the current attachment: co-located, or via a foreign agent."""
        coa = self.care_of_address
        fa = self.foreign_agent
        if fa is None:
            return replace(cfg, local_address=coa, care_of_address=coa)
        # RFC 5944 3.6.1.1, 3.7: to the agent, from our address on its link, its care-of address, 'D' clear;
        # no UDP Tunnel Request: the agent, not the mobile node, is the tunnel's end (RFC 3519 3.1).
        return replace(
            cfg,
            local_address=fa.source,
            care_of_address=coa,
            colocated=False,
            udp_tunnel=False,
            force_udp=False,
            reverse_tunnel=fa.reverse_tunnel,
            minimal_encapsulation=fa.minimal,
            foreign_agent=fa.address,
            fa_port=fa.port,
        )

    def _start_detection(self, now: float) -> None:
        """Mode is DETECTING: fresh requests from the current care-of address (3.3, 3.5)."""
        assert self.care_of_address is not None and self.mode is Mode.DETECTING
        self._reset(now)
        source = self.local_address
        assert source is not None
        local = (source, self.config.port)
        self.xha = self._client(self._attached(self.config.xha), source)
        if self.config.iha.home_agent == self.config.xha.home_agent:
            # 3.5: same address: assume outside and bypass detection.
            self._move(Stimulus.SAME_HA_ADDRESS, now, "same home agent address")
        if self.mode is Mode.XHA_REGISTERING:
            self._emit(DetectionStarted(self.name, now, local, (self.config.xha.home_agent,), same_address=True))
            self.xha.register(now)
            return
        self.iha = self._client(self._attached(self.config.iha), source)
        if not self.behaviour.parallel_detection:  # faulty (3.3): the i-HA first, the x-HA once it gave up
            self._xha_deferred = True
            self._emit(DetectionStarted(self.name, now, local, (self.config.iha.home_agent,)))
            self.iha.register(now)
            return
        self._emit(DetectionStarted(self.name, now, local, (self.config.iha.home_agent, self.config.xha.home_agent)))
        self.iha.register(now)  # 3.3: two simultaneous registration requests
        self.xha.register(now)

    def _trusted(self, ev: Registered) -> tuple[bool, str]:
        """Whether an accepted direct i-HA reply makes the interface inside (3.2.3, 3.3, 4.1)."""
        b = self.behaviour
        if not b.inside_on_tnc:
            return False, "configured never to trust the i-HA directly"
        if ev.tnc or not b.require_tnc:
            return True, ""
        if b.trust_tnc_after_auth and _tnc_after_authenticator(ev.reply):
            return True, ""
        return False, ev.tnc_issue or "no Trusted Networks Configured extension"

    def _on_client_event(self, role: Role, ev: Event, now: float) -> None:
        self._emit(ClientEvent(self.name, now, role, ev))
        if isinstance(ev, Ignored):
            return
        if role is Role.IHA:
            self._on_iha(ev, now)
        elif role is Role.XHA:
            self._on_xha(ev, now)
        else:
            self._on_inner(ev, now)

    def _on_iha(self, ev: Event, now: float) -> None:
        m = self.mode
        if isinstance(ev, Registered):
            trusted, why = self._trusted(ev)
            if m in _MONITORED:
                if trusted:
                    self._reregistered(now)
                else:
                    self._rereg_failed(now, why)
            elif m in (Mode.DETECTING, Mode.TENTATIVELY_OUTSIDE, *_OUTSIDE_PATH):
                if trusted:
                    self._go_inside(now, late=m in _OUTSIDE_PATH)
                else:
                    # 3.2.3, 4.1: reachable, but no proof of a trusted network: not inside.
                    self._emit(UntrustedReply(self.name, now, why))
                    assert self.iha is not None
                    self.iha.quiesce()  # no plaintext renewals to an i-HA we do not use
                    self._iha_finished(now)
        elif isinstance(ev, _FAILED):
            if m in _MONITORED:
                self._rereg_failed(now, _failure(ev))
            elif m in (Mode.DETECTING, Mode.TENTATIVELY_OUTSIDE):
                self._iha_finished(now)

    def _iha_finished(self, now: float) -> None:
        self._iha_done = True
        if self._xha_deferred and self.mode is Mode.DETECTING and self.xha is not None:
            self._xha_deferred = False  # faulty sequential detection: only now the x-HA is asked
            self.xha.register(now)
            return
        if self.mode is Mode.DETECTING and self._xha_done:
            self._isolated(now)
        elif self.mode is Mode.TENTATIVELY_OUTSIDE:
            self._period_over(now)  # nothing left to wait for

    def _on_xha(self, ev: Event, now: float) -> None:
        m = self.mode
        if self._xha_leave_pending and m in _MONITORED and not (self.xha and self.xha.waiting):
            self._leave_xha(now)
            return
        if isinstance(ev, Registered):
            if m is Mode.DETECTING:
                self._move(Stimulus.XHA_REGISTERED, now, "x-HA answered")
                # 3.3: stop retransmitting to the x-HA (done by its reply); keep asking the i-HA.
                if not self.behaviour.keep_iha_retransmit_after_xha and self.iha is not None:
                    self.iha.stop_retransmitting()
                period = self.settings.detection_period
                if period <= 0 or self._iha_done:
                    self._period_over(now)
                else:
                    self._decide_at = now + period
                    self._emit(TentativelyOutside(self.name, now, self._decide_at))
            elif m is Mode.XHA_REGISTERING:
                self._move(Stimulus.XHA_REGISTERED, now, "x-HA answered")
                self._outside(now, "i-HA and x-HA share an address (3.5)")
        elif isinstance(ev, _FAILED):
            if m is Mode.DETECTING:
                self._xha_done = True
                if self._iha_done:
                    self._isolated(now)
            elif m is Mode.XHA_REGISTERING:
                self._isolated(now)
            elif m in _OUTSIDE_PATH:
                self._outer_lost(now, f"x-HA registration {_failure(ev)}")

    def _on_inner(self, ev: Event, now: float) -> None:
        if isinstance(ev, Registered) and self.mode is Mode.INNER_REGISTERING:
            self._move(Stimulus.INNER_REGISTERED, now, "inner registration through the VPN")
        elif isinstance(ev, _FAILED) and self.mode in (Mode.INNER_REGISTERING, Mode.OUTSIDE):
            self._outer_lost(now, f"i-HA registration through the VPN {_failure(ev)}")

    def _period_over(self, now: float) -> None:
        """3.3: the detection period is over without a trusted i-HA reply: outside."""
        self._decide_at = None
        self._move(Stimulus.DETECTION_PERIOD_OVER, now, "outside")
        if self.iha is not None:
            self.iha.stop_retransmitting()  # a late reply is still accepted (3.3 last paragraph)
        self._outside(now, "x-HA answered, no trusted i-HA reply")

    def _outside(self, now: float, reason: str) -> None:
        self._emit(Outside(self.name, now, reason))
        if self.mode is Mode.VPN_SETUP:
            self._request_vpn(now)

    def _request_vpn(self, now: float) -> None:
        """2.3: IKE from the x-HoA; the VPN layer is never skipped."""
        assert self.xha is not None
        self._vpn_requested = True
        self._emit(VpnRequested(self.name, now, self.xha.config.home_address, self.xha.config.home_agent))

    def _isolated(self, now: float) -> None:
        self._move(Stimulus.NO_HA_ANSWERED, now, "no home agent answered")
        self._reset(now)
        self._retry_at = now + self.settings.retry_interval
        self._emit(Isolated(self.name, now, self._retry_at))

    def _outer_lost(self, now: float, reason: str) -> None:
        self._move(Stimulus.OUTER_LOST, now, reason)
        self._start_detection(now)

    # ---------------------------------------------------------------- inside (3.2.4, 3.3)

    def _go_inside(self, now: float, *, late: bool) -> None:
        self._decide_at = None
        self._move(Stimulus.IHA_TRUSTED, now, "inside")
        if self.mode is not Mode.INSIDE:
            return  # switch_to_iha_on_late_reply=False: the late reply is ignored
        self._emit(Inside(self.name, now, late))
        if late:
            self._drop_inner()  # the direct registration replaces the one through the VPN
            if self._vpn_requested:
                self._vpn_requested = False
                self._emit(VpnReleased(self.name, now))
        self._trusted_now(now)
        # 3.3: an i-HA reply stops the retransmissions to both; then de-register with the x-HA.
        if self.xha is not None and self.xha.waiting and not self.behaviour.stop_retransmit_on_iha_reply:
            self._xha_leave_pending = True  # faulty: the x-HA request runs its course first
        else:
            self._leave_xha(now)

    def _leave_xha(self, now: float) -> None:
        """3.3 SHOULD: de-register with the x-HA once registered with the i-HA directly."""
        self._xha_leave_pending = False
        if self.xha is None:
            return
        if self.behaviour.deregister_xha_when_inside and self.xha.state in (
            ClientState.REGISTERING,
            ClientState.REGISTERED,
        ):
            self.xha.deregister(now)
        else:
            self.xha.abandon()

    def _trusted_now(self, now: float) -> None:
        self.last_trusted_at = now
        self._monitor_at = now + self.settings.t_monitor
        # 3.3, 3.2.4: re-register every T_MONITOR - N, whatever the binding lifetime.
        self._rereg_at = now + self.settings.reregister_interval if self.behaviour.t_monitor_reregistration else None

    def _reregistered(self, now: float) -> None:
        self._trusted_now(now)
        self._move(Stimulus.REREG_SUCCEEDED, now, "re-registered")

    def _rereg_failed(self, now: float, reason: str) -> None:
        """3.3: stop plaintext and restart detection."""
        self._emit(ReregistrationFailed(self.name, now, reason))
        if not self.behaviour.hold_queue_until_rereg:
            self._release_queue(DataDecision.PLAINTEXT, now)  # faulty: processed without a successful one
        if not self.behaviour.stop_plaintext_on_rereg_failure and self.last_trusted_at is not None:
            self._plaintext_until = self.last_trusted_at + self.settings.t_monitor  # faulty
        self._monitor_at = None
        self.last_trusted_at = None if self.behaviour.stop_plaintext_on_rereg_failure else self.last_trusted_at
        self._move(Stimulus.REREG_FAILED, now, f"re-registration failed: {reason}")
        if self.mode is Mode.DETECTING:
            self._start_detection(now)
        else:  # restart_on_rereg_failure=False: the i-HA alone is asked again
            self._rereg_at = now + self.settings.reregister_interval

    def _reregister(self, now: float) -> None:
        self._rereg_at = None
        if self.mode not in _MONITORED or self.iha is None:
            return
        interval = self.settings.reregister_interval
        if (
            not self.behaviour.rereg_while_data_flows
            and self.last_relayed_at is not None
            and now - self.last_relayed_at < interval
        ):
            self._rereg_at = now + interval  # faulty: data taken for proof of being inside
            return
        if not self.iha.waiting:
            self.iha.register(now)

    # ---------------------------------------------------------------- the actor side

    def clients(self) -> list[tuple[Role, RegistrationClient]]:
        pairs = ((Role.IHA, self.iha), (Role.XHA, self.xha), (Role.INNER, self.inner))
        return [(role, c) for role, c in pairs if c is not None]

    def receive(self, data: bytes, src: Address, local: Address, now: float, *, via_vpn: bool) -> None:
        roles = (Role.INNER,) if via_vpn else (Role.IHA, Role.XHA)
        # the agent that answers: the home agent, or the foreign agent a registration went through
        candidates = [
            (r, c)
            for r, c in self.clients()
            if r in roles and (c.config.foreign_agent or c.config.home_agent) == src[0]
        ]
        for i, (role, client) in enumerate(candidates):
            client.receive_datagram(data, src, local, now)
            events = []
            while (ev := client.next_event()) is not None:
                events.append(ev)
            # Same address for both (only when 3.5 is broken): the one that recognises the reply takes it.
            if i == len(candidates) - 1 or any(not isinstance(e, Ignored) for e in events):
                for ev in events:
                    self._on_client_event(role, ev, now)
                return

    def datagrams(self, now: float, *, via_vpn: bool) -> list[tuple[bytes, Address | None, Address]]:
        out = []
        for role, client in self.clients():
            if (role is Role.INNER) == via_vpn:
                out.extend(client.datagrams_to_send(now))
        return out

    def timer(self) -> float | None:
        times = [c.get_timer() for _r, c in self.clients()]
        times += [self._decide_at, self._monitor_at, self._rereg_at, self._retry_at]
        present = [t for t in times if t is not None]
        return min(present) if present else None

    def handle_timer(self, now: float) -> None:
        for _ in range(64):  # each step clears or postpones what it handled
            if not self._step(now):
                return
        raise RuntimeError(f"detection on {self.name}: timers keep firing at {now}")

    def _step(self, now: float) -> bool:
        for role, client in self.clients():
            at = client.get_timer()
            if at is not None and at <= now:
                client.handle_timer(now)
                while (ev := client.next_event()) is not None:
                    self._on_client_event(role, ev, now)
                return True
        if self._decide_at is not None and self._decide_at <= now:
            self._period_over(now)
        elif self._monitor_at is not None and self._monitor_at <= now:
            self._monitor_at = None
            was_open = DataDecision.PLAINTEXT if self.mode is Mode.INSIDE else None
            self._move(Stimulus.MONITOR_EXPIRED, now, "T_MONITOR passed without a re-registration", was_open=was_open)
        elif self._rereg_at is not None and self._rereg_at <= now:
            self._reregister(now)
        elif self._retry_at is not None and self._retry_at <= now:
            self._retry_at = None
            self._move(Stimulus.RETRY, now, "retry")
            self._start_detection(now)
        else:
            return False
        return True


class MobileNodeDetection:
    """The detection core of a mobile node with one or more interfaces, as one actor."""

    def __init__(
        self,
        interfaces: Iterable[InterfaceConfig],
        config: DetectionConfig | None = None,
        behaviour: DetectionBehaviour | None = None,
    ) -> None:
        self.config = config or DetectionConfig()
        self.behaviour = behaviour or DetectionBehaviour()
        self._events: list[DetectionEvent] = []
        self.interfaces: dict[str, InterfaceDetector] = {}
        for ic in interfaces:
            if ic.name in self.interfaces:
                raise ValueError(f"interface {ic.name!r} configured twice")
            self.interfaces[ic.name] = InterfaceDetector(ic, self.config, self.behaviour, self._events.append)

    def interface(self, name: str) -> InterfaceDetector:
        try:
            return self.interfaces[name]
        except KeyError:
            raise KeyError(f"no interface {name!r}") from None

    def mode(self, name: str) -> Mode:
        return self.interface(name).mode

    def _catch_up(self, now: float) -> None:
        """Time passed since the last call: run the timers that are due first."""
        at = self.get_timer()
        if at is not None and at <= now:
            self.handle_timer(now)

    # ---- stimuli
    def link_change(
        self,
        interface: str,
        network_state: str,
        care_of_address: str | None,
        now: float,
        foreign_agent: ForeignAgentLink | None = None,
    ) -> None:
        self._catch_up(now)
        self.interface(interface).link_change(network_state, care_of_address, now, foreign_agent)

    def vpn_up(self, interface: str, inner_address: str, now: float) -> bool:
        """The VPN this interface asked for (:class:`VpnRequested`) is up with ``inner_address`` (VPN-TIA)."""
        self._catch_up(now)
        return self.interface(interface).vpn_up(inner_address, now)

    def vpn_down(self, interface: str, now: float) -> bool:
        self._catch_up(now)
        return self.interface(interface).vpn_down(now)

    # ---- user data
    def _data(self, interface: str, direction: Direction, packet: bytes, now: float, via_vpn: bool) -> DataDecision:
        self._catch_up(now)
        det = self.interface(interface)
        borrowed = None
        if not self.behaviour.track_interfaces_separately and det.gate(now) is None:
            # faulty (3.2.1): another interface's inside verdict is taken for this one
            if any(o.gate(now) is DataDecision.PLAINTEXT for o in self.interfaces.values() if o is not det):
                borrowed = DataDecision.PLAINTEXT
        return det.data(direction, packet, now, via_vpn=via_vpn, borrowed=borrowed)

    def send_user_data(self, interface: str, packet: bytes, now: float) -> DataDecision:
        """What to do with an outgoing user packet on ``interface`` (queued ones come back as DataReleased)."""
        return self._data(interface, Direction.SEND, packet, now, False)

    def receive_user_data(self, interface: str, packet: bytes, now: float, *, via_vpn: bool = False) -> DataDecision:
        """Whether an arrived user packet (plaintext, or out of the VPN) may be delivered."""
        return self._data(interface, Direction.RECEIVE, packet, now, via_vpn)

    # ---- the actor interface
    def _route(self, local: Address | None, *, via_vpn: bool) -> InterfaceDetector | None:
        if local is None:
            return None
        for det in self.interfaces.values():
            address = det.tunnel_inner_address if via_vpn else det.local_address
            if address == local[0] and local[1] == det.config.port:
                return det
        return None

    def receive_datagram(self, data: bytes, src: Address, local: Address | None, now: float) -> None:
        """A datagram that arrived in plaintext at ``local`` (an interface's care-of address)."""
        self._catch_up(now)
        det = self._route(local, via_vpn=False)
        if det is not None and local is not None:
            det.receive(data, src, local, now, via_vpn=False)

    def receive_vpn_datagram(self, data: bytes, src: Address, local: Address | None, now: float) -> None:
        """A datagram that came out of the VPN tunnel at ``local`` (an interface's VPN-TIA)."""
        self._catch_up(now)
        det = self._route(local, via_vpn=True)
        if det is not None and local is not None:
            det.receive(data, src, local, now, via_vpn=True)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address | None, Address]]:
        """Plaintext ``(data, local, dst)`` from the interfaces' care-of addresses."""
        return [d for det in self.interfaces.values() for d in det.datagrams(now, via_vpn=False)]

    def vpn_datagrams_to_send(self, now: float) -> list[tuple[bytes, Address | None, Address]]:
        """``(data, local, dst)`` that must go through the VPN; ``local`` is the VPN-TIA (2.3)."""
        return [d for det in self.interfaces.values() for d in det.datagrams(now, via_vpn=True)]

    def next_event(self) -> DetectionEvent | None:
        return self._events.pop(0) if self._events else None

    def get_timer(self) -> float | None:
        times = [t for det in self.interfaces.values() if (t := det.timer()) is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        for det in self.interfaces.values():
            at = det.timer()
            if at is not None and at <= now:
                det.handle_timer(now)
