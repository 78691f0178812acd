"""The reference mobile node's robustness faults: planted bugs for the MN fuzz campaign to find (issue 11).

Why apart from :mod:`mipcheck.mn.faults`: those break one RFC 5265 rule each
and the MN suite proves each of its checks with them; these break no rule a
conformance case judges. Each makes the node crash or hang after one
specific malformed input that no MN suite case sends, and a fuzz campaign
(``mipcheck fuzz run --device mn --fault NAME``) must find each one
(tests/test_fuzz_mn.py). They are not in the suite's fault table, its case
-> faults map or its fault-proof tests; ``mipcheck mn faults`` lists them in
a group of their own, and ``mipcheck mn run --fault`` takes them.

Each fault flips one :class:`Robustness` setting, read where the node handles
the input: :class:`~mipcheck.mn.node.ReferenceMobileNode` checks the replies
its registration clients accepted (behind the MN-HA authentication and
Identification checks, so only a signed case reaches it) and the MIP Tunnel
Data it receives. When a trigger goes off the sans-IO node raises
:class:`RobustnessFailure`; the shell carries it out (``mipcheck mn run``:
``crash`` ends the process with status :data:`CRASH_STATUS`, ``hang`` stops
reading and sending), never the node itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields, replace

from mipcheck.errors import ConfigError
from mipcheck.proto import codec
from mipcheck.proto import numbers as n

CRASH, HANG = "crash", "hang"
CRASH_STATUS = 70  # EX_SOFTWARE, as the reference home agent's robustness crashes


@dataclass(frozen=True)
class Robustness:
    """Conformant by default (every setting False); each robustness fault sets one to True."""

    crash_on_tnc_length_zero: bool = False
    crash_on_short_udp_tunnel_reply: bool = False
    hang_on_tunnel_next_header_zero: bool = False

    @property
    def planted(self) -> tuple[str, ...]:
        """The settings that are on."""
        return tuple(f.name for f in fields(self) if getattr(self, f.name))


class RobustnessFailure(Exception):
    """A robustness fault went off: the shell must crash or hang (``failure``) for ``reason``."""

    def __init__(self, failure: str, reason: str) -> None:
        super().__init__(f"{failure}: {reason}")
        self.failure = failure
        self.reason = reason


@dataclass(frozen=True)
class RobustnessFault:
    """One planted bug: its public name, the setting it flips, what a campaign reports, its trigger."""

    name: str
    setting: str
    finding: str  # crash | hang: what a fuzz campaign against the built-in reference MN reports
    trigger: str
    rule: str

    @property
    def summary(self) -> str:
        return f"{self.finding} after {self.trigger}: {self.rule}"

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "rule": self.rule,
            "setting": self.setting,
            "summary": self.summary,
            "robustness": True,
            "finding": self.finding,
            "trigger": self.trigger,
        }


TABLE: tuple[RobustnessFault, ...] = (
    RobustnessFault(
        "crash-tnc-length-zero",
        "crash_on_tnc_length_zero",
        CRASH,
        "an authentic Registration Reply (valid MN-HA authenticator, Identification copied) whose TNC extension "
        "(149) has Length 0 before the authenticator",
        f"the process exits (status {CRASH_STATUS}) instead of taking the reply for one without a usable TNC "
        "(RFC 5265 3.4)",
    ),
    RobustnessFault(
        "crash-short-udp-tunnel-reply",
        "crash_on_short_udp_tunnel_reply",
        CRASH,
        "an authentic Registration Reply whose UDP Tunnel Reply extension (44) before the authenticator is shorter "
        "than its fixed part (Length < 6)",
        f"the process exits (status {CRASH_STATUS}) instead of ignoring the short extension (RFC 3519 3.2)",
    ),
    RobustnessFault(
        "hang-tunnel-next-header-zero",
        "hang_on_tunnel_next_header_zero",
        HANG,
        "a MIP Tunnel Data message (type 4) with Next Header 0",
        "the node stops reading and sending (moves are refused) while the process lives, instead of dropping the "
        "message (RFC 3519 3.3)",
    ),
)

FAULTS: dict[str, RobustnessFault] = {f.name: f for f in TABLE}


def is_robustness_fault(name: str) -> bool:
    return name in FAULTS


def check_robustness(names: Iterable[str]) -> tuple[str, ...]:
    """The names, each known and given once; a :class:`ConfigError` names the first bad one."""
    seen: list[str] = []
    for name in names:
        if name not in FAULTS:
            raise ConfigError("fault", f"{name!r} is not a reference mobile node robustness fault (mipcheck mn faults)")
        if name not in seen:
            seen.append(name)
    return tuple(seen)


def robustness_for(names: Iterable[str]) -> Robustness:
    """The conformant node with each named robustness fault planted."""
    return replace(Robustness(), **{FAULTS[name].setting: True for name in check_robustness(names)})


# ---------------------------------------------------------------- the triggers, read by the node


def check_accepted_reply(robustness: Robustness, reply: bytes) -> None:
    """Raise :class:`RobustnessFailure` when a reply the node accepted (authentic) sets off a planted fault."""
    if not (robustness.crash_on_tnc_length_zero or robustness.crash_on_short_udp_tunnel_reply):
        return
    rep = codec.parse_reply(reply)
    if rep is None:
        return
    auth = next((e.offset for e in rep.extensions if e.type == n.EXT_MN_HA_AUTH), None)
    if auth is None:
        return
    for e in rep.extensions:
        if e.offset > auth:
            break
        if robustness.crash_on_tnc_length_zero and e.type == n.EXT_TNC and e.length == 0:
            raise RobustnessFailure(CRASH, f"TNC extension with Length 0 at offset {e.offset} of an authentic reply")
        if robustness.crash_on_short_udp_tunnel_reply and e.type == n.EXT_UDP_TUNNEL_REPLY and e.length < 6:
            raise RobustnessFailure(
                CRASH, f"UDP Tunnel Reply with Length {e.length} (< 6) at offset {e.offset} of an authentic reply"
            )


def check_tunnel_data(robustness: Robustness, data: bytes) -> None:
    """Raise :class:`RobustnessFailure` when a MIP Tunnel Data message sets off a planted fault."""
    if robustness.hang_on_tunnel_next_header_zero and len(data) >= 2 and data[0] == n.MSG_TUNNEL_DATA and not data[1]:
        raise RobustnessFailure(HANG, "MIP Tunnel Data with Next Header 0")
