"""The modes of one interface under RFC 5265 detection and every move between them (h11 style).

Why a table: each move is a rule of RFC 5265 sections 2.3, 3.2 and 3.3, and
a table can be read against the RFC and tested as data. The detection core
moves only through :func:`transitions_for`'s dict; a pair missing from it is
a bug. A behaviour setting that changes a move (say ``t_monitor_gate=False``)
does so through :data:`FAULTY_MOVES`, so what a fault alters is data too.
"""

from __future__ import annotations

from enum import Enum

from .detection_behaviour import DetectionBehaviour


class Mode(Enum):
    DOWN = "down"  # no link, no address
    DETECTING = "detecting"  # 3.3: requests to the i-HA and the x-HA in parallel
    TENTATIVELY_OUTSIDE = "tentatively-outside"  # 3.3: x-HA answered, the i-HA is still asked
    XHA_REGISTERING = "xha-registering"  # 3.5: same i-HA and x-HA address: outside without detection
    VPN_SETUP = "vpn-setup"  # 2.3: x-MIP registered, waiting for the VPN from the x-HoA
    INNER_REGISTERING = "inner-registering"  # 2.3: i-MIP registration through the VPN
    OUTSIDE = "outside"  # 2.3 cvc: x-MIP, VPN, i-MIP all up; data through the VPN
    INSIDE = "inside"  # 3.2.3: registered with the i-HA directly, TNC authenticated
    LAPSED = "lapsed"  # 3.2.4: inside, but T_MONITOR passed without a re-registration
    ISOLATED = "isolated"  # neither home agent answered; detection is retried later


class Stimulus(Enum):
    LINK_UP = "link-up"  # new address on the interface (3.2.2)
    LINK_DOWN = "link-down"
    SAME_HA_ADDRESS = "same-ha-address"  # 3.5: the i-HA and the x-HA share an address
    IHA_TRUSTED = "iha-trusted"  # direct i-HA registration with an authenticated TNC (3.2.3)
    XHA_REGISTERED = "xha-registered"
    DETECTION_PERIOD_OVER = "detection-period-over"  # 3.3: stop waiting for the i-HA
    NO_HA_ANSWERED = "no-ha-answered"
    VPN_UP = "vpn-up"
    VPN_DOWN = "vpn-down"
    INNER_REGISTERED = "inner-registered"
    OUTER_LOST = "outer-lost"  # an x-MIP or i-MIP-through-VPN renewal failed
    MONITOR_EXPIRED = "monitor-expired"  # 3.2.4: T_MONITOR since the last i-HA registration
    REREG_SUCCEEDED = "rereg-succeeded"
    REREG_FAILED = "rereg-failed"  # 3.3: denial, timeout or no TNC
    RETRY = "retry"


M, S = Mode, Stimulus
_UP = (
    M.DETECTING,
    M.TENTATIVELY_OUTSIDE,
    M.XHA_REGISTERING,
    M.VPN_SETUP,
    M.INNER_REGISTERING,
    M.OUTSIDE,
    M.INSIDE,
    M.LAPSED,
    M.ISOLATED,
)
_OUTSIDE_PATH = (M.VPN_SETUP, M.INNER_REGISTERING, M.OUTSIDE)

#: (mode, stimulus) -> next mode, the conformant mobile node.
TRANSITIONS: dict[tuple[Mode, Stimulus], Mode] = {
    # 3.2.2: any status change restarts detection
    **{(m, S.LINK_UP): M.DETECTING for m in (M.DOWN, *_UP)},
    **{(m, S.LINK_DOWN): M.DOWN for m in (M.DOWN, *_UP)},
    # 3.3: the proposed algorithm
    (M.DETECTING, S.SAME_HA_ADDRESS): M.XHA_REGISTERING,  # 3.5: outside, detection bypassed
    (M.DETECTING, S.IHA_TRUSTED): M.INSIDE,
    (M.DETECTING, S.XHA_REGISTERED): M.TENTATIVELY_OUTSIDE,
    (M.DETECTING, S.NO_HA_ANSWERED): M.ISOLATED,
    (M.TENTATIVELY_OUTSIDE, S.IHA_TRUSTED): M.INSIDE,
    (M.TENTATIVELY_OUTSIDE, S.DETECTION_PERIOD_OVER): M.VPN_SETUP,
    (M.XHA_REGISTERING, S.XHA_REGISTERED): M.VPN_SETUP,
    (M.XHA_REGISTERING, S.NO_HA_ANSWERED): M.ISOLATED,
    (M.ISOLATED, S.RETRY): M.DETECTING,
    # 2.3: x-MIP, then the VPN, then i-MIP through it
    (M.VPN_SETUP, S.VPN_UP): M.INNER_REGISTERING,
    (M.INNER_REGISTERING, S.INNER_REGISTERED): M.OUTSIDE,
    (M.INNER_REGISTERING, S.VPN_DOWN): M.VPN_SETUP,
    (M.OUTSIDE, S.VPN_DOWN): M.VPN_SETUP,
    **{(m, S.OUTER_LOST): M.DETECTING for m in _OUTSIDE_PATH},
    # 3.3 last paragraph, 3.5: a late i-HA reply switches to the i-HA directly
    **{(m, S.IHA_TRUSTED): M.INSIDE for m in _OUTSIDE_PATH},
    # 3.2.4 and 3.3: monitoring while inside
    (M.INSIDE, S.MONITOR_EXPIRED): M.LAPSED,
    (M.INSIDE, S.REREG_SUCCEEDED): M.INSIDE,
    (M.LAPSED, S.REREG_SUCCEEDED): M.INSIDE,
    (M.INSIDE, S.REREG_FAILED): M.DETECTING,
    (M.LAPSED, S.REREG_FAILED): M.DETECTING,
}

#: setting (flipped from its default) -> the moves it replaces.
FAULTY_MOVES: dict[str, dict[tuple[Mode, Stimulus], Mode]] = {
    "t_monitor_gate": {(M.INSIDE, S.MONITOR_EXPIRED): M.INSIDE},
    "restart_on_rereg_failure": {(M.INSIDE, S.REREG_FAILED): M.LAPSED, (M.LAPSED, S.REREG_FAILED): M.LAPSED},
    "switch_to_iha_on_late_reply": {(m, S.IHA_TRUSTED): m for m in _OUTSIDE_PATH},
    "same_ha_goes_outside": {(M.DETECTING, S.SAME_HA_ADDRESS): M.DETECTING},
    "skip_vpn": {
        (M.TENTATIVELY_OUTSIDE, S.DETECTION_PERIOD_OVER): M.OUTSIDE,
        (M.XHA_REGISTERING, S.XHA_REGISTERED): M.OUTSIDE,
    },
}

#: Modes whose user data may flow (the gate's other conditions still apply).
DATA_MODES = frozenset({M.INSIDE, M.OUTSIDE})


def transitions_for(behaviour: DetectionBehaviour) -> dict[tuple[Mode, Stimulus], Mode]:
    """The table a mobile node with ``behaviour`` moves by."""
    table = dict(TRANSITIONS)
    for setting in behaviour.broken:
        table.update(FAULTY_MOVES.get(setting, {}))
    return table
