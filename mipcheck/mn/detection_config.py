"""Parameters of RFC 5265 detection: the MN-wide timers and the home agents of each interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from mipcheck.errors import ConfigError

from .config import MNConfig

DROP, QUEUE = "drop", "queue"


class ForeignAgentLink(NamedTuple):
    """RFC 5944 3.7: an interface registers through a foreign agent; its care-of address is the agent's.

    Requests go to ``address`` (the agent's advertisement's source, port ``port``) from ``source`` (the mobile
    node's address on the link, to which the agent answers and delivers); ``reverse_tunnel`` asks for 'T'
    (RFC 3024: only when the agent advertises it); ``minimal`` asks for 'M' (RFC 2004 between the home agent and
    the agent; only when the agent advertises it).
    """

    address: str
    source: str
    reverse_tunnel: bool = False
    port: int = 434
    minimal: bool = False


def _seconds(key: str, value: object, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(key, f"expected seconds, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ConfigError(key, f"expected seconds {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class DetectionConfig:
    """The mobile node's detection parameters (one set for all its interfaces)."""

    t_monitor: float = 60.0  # RFC 5265 3.2.4: configurable, default 60 s
    rereg_grace: float | None = None  # N of 3.2.4; None: 20% of t_monitor
    detection_period: float = 3.0  # 3.3: how long the i-HA is still asked after the x-HA answered
    when_gated: str = DROP  # 3.2.4: user data is "dropped" or "queued" while the gate is shut
    max_queue: int = 256  # queued packets per interface; more are dropped
    retry_interval: float = 30.0  # when no home agent answered: restart detection after this

    def __post_init__(self) -> None:
        _seconds("t_monitor", self.t_monitor, positive=True)
        if self.rereg_grace is not None:
            _seconds("rereg_grace", self.rereg_grace, positive=True)
            if self.rereg_grace >= self.t_monitor:
                raise ConfigError("rereg_grace", f"must be shorter than t_monitor ({self.t_monitor} s)")
        _seconds("detection_period", self.detection_period, positive=False)
        _seconds("retry_interval", self.retry_interval, positive=True)
        if self.when_gated not in (DROP, QUEUE):
            raise ConfigError("when_gated", f"{self.when_gated!r} is not one of {DROP}, {QUEUE}")
        if isinstance(self.max_queue, bool) or not isinstance(self.max_queue, int) or self.max_queue < 0:
            raise ConfigError("max_queue", f"expected a count >= 0, got {self.max_queue!r}")

    @property
    def grace(self) -> float:
        return 0.2 * self.t_monitor if self.rereg_grace is None else self.rereg_grace

    @property
    def reregister_interval(self) -> float:
        """T_MONITOR - N (3.2.4): how often an inside interface re-registers with the i-HA."""
        return self.t_monitor - self.grace


@dataclass(frozen=True)
class InterfaceConfig:
    """One interface and the two home agents it detects with (3.2.1: each interface on its own).

    ``iha`` and ``xha`` are the mobile node's registrations with the internal and
    the external home agent; their local and care-of addresses are replaced by
    the address each link change brings. ``port`` is the UDP port the interface
    sends its registrations from (the same on the care-of address and on the VPN
    tunnel inner address).
    """

    name: str
    iha: MNConfig
    xha: MNConfig
    port: int = 49434

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("name", "an interface needs a name")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise ConfigError("port", f"{self.port!r} is out of range 1..65535")
