"""What the RFC 5265 detection core reports: frozen events, and the decision on each user packet.

Why values: the safety checker (:mod:`mipcheck.mn.detection_safety`), the
tests and the later MN runner judge the core only by what it reports, so
everything a rule is about is an event here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from .core import Event as RegistrationEvent
from .detection_table import Mode, Stimulus


class DataDecision(StrEnum):
    """What happens to one user data packet (3.2.2, 3.2.4, 2.3)."""

    PLAINTEXT = "plaintext"  # relayed directly: only when inside and monitored
    VIA_VPN = "via-vpn"  # relayed through the VPN tunnel
    QUEUED = "queued"  # held until the gate opens
    DROPPED = "dropped"


class Direction(StrEnum):
    SEND = "send"
    RECEIVE = "receive"


class Role(StrEnum):
    """Which of an interface's registration clients an event comes from."""

    IHA = "i-ha"  # direct, plaintext, to the i-HA (detection and monitoring)
    XHA = "x-ha"  # x-MIP, plaintext, to the x-HA
    INNER = "inner"  # i-MIP through the VPN (VPN-TIA as co-located care-of address)


@dataclass(frozen=True)
class DetectionEvent:
    interface: str
    at: float


@dataclass(frozen=True)
class LinkChanged(DetectionEvent):
    """3.2.2: a connection status change (up with ``care_of_address``, or down when it is None)."""

    care_of_address: str | None


@dataclass(frozen=True)
class ModeChanged(DetectionEvent):
    """One move of the transition table (also self-moves, so every stimulus shows)."""

    old: Mode
    new: Mode
    stimulus: Stimulus


@dataclass(frozen=True)
class DetectionStarted(DetectionEvent):
    """3.3 (or 3.5 when ``same_address``): registration requests are on their way."""

    local: tuple[str, int]
    home_agents: tuple[str, ...]
    same_address: bool = False


@dataclass(frozen=True)
class ClientEvent(DetectionEvent):
    """An event of one registration client (mipcheck.mn.core), labelled with its role."""

    role: Role
    event: RegistrationEvent = field(repr=True)


@dataclass(frozen=True)
class TentativelyOutside(DetectionEvent):
    """3.3: the x-HA answered; the i-HA is asked until ``decide_at``."""

    decide_at: float


@dataclass(frozen=True)
class Inside(DetectionEvent):
    """3.2.3: inside; ``late`` when the i-HA reply came after the outside path began (3.3, 3.5)."""

    late: bool = False


@dataclass(frozen=True)
class Outside(DetectionEvent):
    reason: str


@dataclass(frozen=True)
class UntrustedReply(DetectionEvent):
    """An accepted i-HA reply that does not make the interface inside (4.1): no TNC, or TNC unauthenticated."""

    reason: str


@dataclass(frozen=True)
class VpnRequested(DetectionEvent):
    """2.3: set up the VPN (IKE) from the x-HA home address; report it with ``vpn_up``."""

    x_home_address: str
    x_home_agent: str


@dataclass(frozen=True)
class VpnReleased(DetectionEvent):
    """The VPN is no longer needed on this interface (inside, or detection restarted)."""


@dataclass(frozen=True)
class ReregistrationFailed(DetectionEvent):
    """3.3: a re-registration with the i-HA while inside failed; plaintext stops, detection restarts."""

    reason: str


@dataclass(frozen=True)
class DataGated(DetectionEvent):
    """User data stops flowing on the interface (3.2.2, 3.2.4, 3.3)."""

    reason: str


@dataclass(frozen=True)
class DataResumed(DetectionEvent):
    decision: DataDecision


@dataclass(frozen=True)
class DataReleased(DetectionEvent):
    """A queued packet leaves the queue (3.2.4: only once the gate is open again)."""

    direction: Direction
    packet: bytes = field(repr=False)
    decision: DataDecision


@dataclass(frozen=True)
class DataDiscarded(DetectionEvent):
    """Queued packets thrown away (a status change, or a full queue)."""

    count: int
    reason: str


@dataclass(frozen=True)
class Isolated(DetectionEvent):
    """No home agent answered; detection restarts at ``retry_at``."""

    retry_at: float
