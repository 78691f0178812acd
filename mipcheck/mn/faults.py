"""The reference mobile node's faults: one table, public kebab-case names (``mipcheck mn run --fault``).

Why a table: the MN suite proves each of its checks by running the reference
node with the fault that breaks the check's rule; so each fault flips exactly
one :class:`~mipcheck.mn.detection_behaviour.DetectionBehaviour` setting and
names the catalogue rule :data:`~mipcheck.mn.detection_behaviour.BROKEN_RULES`
gives for it. Everything else (the CLI's list, the check of names) is
derived from :data:`TABLE`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mipcheck.errors import ConfigError

from .detection_behaviour import BROKEN_RULES, DetectionBehaviour


@dataclass(frozen=True)
class Fault:
    """One fault: its public name, the behaviour setting it flips and what that does."""

    name: str
    setting: str
    summary: str

    @property
    def rule(self) -> str:
        return BROKEN_RULES[self.setting]

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "rule": self.rule, "setting": self.setting, "summary": self.summary}


TABLE: tuple[Fault, ...] = (
    Fault(
        "shared-interface-verdict",
        "track_interfaces_separately",
        "an inside verdict on one interface lets data through another (3.2.1)",
    ),
    Fault(
        "data-through-status-change",
        "stop_data_on_status_change",
        "plaintext keeps flowing after a connection status change (3.2.2)",
    ),
    Fault("inside-without-tnc", "require_tnc", "an i-HA reply without TNC is taken for inside (3.2.3)"),
    Fault("trust-unauthenticated-tnc", "trust_tnc_after_auth", "a TNC after the MN-HA authenticator is trusted (4.1)"),
    Fault(
        "no-tmonitor-rereg",
        "t_monitor_reregistration",
        "inside, re-registers by the binding lifetime only, not every T_MONITOR - N (3.3)",
    ),
    Fault("no-rereg-while-data", "rereg_while_data_flows", "no re-registration while user data flows (3.2.4)"),
    Fault("data-after-tmonitor", "t_monitor_gate", "user data still flows once T_MONITOR has passed (3.2.4)"),
    Fault(
        "release-queue-early",
        "hold_queue_until_rereg",
        "queued data is released although the re-registration failed (3.2.4)",
    ),
    Fault("stop-iha-after-xha", "keep_iha_retransmit_after_xha", "stops asking the i-HA once the x-HA answered (3.3)"),
    Fault(
        "keep-retransmitting",
        "stop_retransmit_on_iha_reply",
        "keeps retransmitting to the x-HA after the i-HA answered (3.3)",
    ),
    Fault("ignore-tnc", "inside_on_tnc", "never goes inside, even on a trusted i-HA reply with TNC (3.3)"),
    Fault("no-xha-dereg", "deregister_xha_when_inside", "does not de-register with the x-HA once inside (3.3)"),
    Fault(
        "plaintext-after-rereg-failure",
        "stop_plaintext_on_rereg_failure",
        "plaintext continues after a failed re-registration (3.3)",
    ),
    Fault(
        "no-restart-after-rereg-failure",
        "restart_on_rereg_failure",
        "a failed re-registration does not restart detection (3.3)",
    ),
    Fault(
        "ignore-late-iha", "switch_to_iha_on_late_reply", "a late i-HA reply does not switch the node inside (3.3, 3.5)"
    ),
    Fault(
        "detect-with-same-ha",
        "same_ha_goes_outside",
        "runs detection although the i-HA and the x-HA share an address (3.5)",
    ),
    Fault("skip-vpn", "skip_vpn", "outside without the VPN: enterprise traffic in plaintext (2.3)"),
    Fault("no-inner-t-bit", "inner_reverse_tunnel", "the inner registration through the VPN lacks the 'T' bit (2.3)"),
    Fault("sequential-detection", "parallel_detection", "asks the x-HA only after the i-HA request timed out (3.3)"),
)

FAULTS: dict[str, Fault] = {f.name: f for f in TABLE}


def check_faults(names: Iterable[str]) -> tuple[str, ...]:
    """The names, each known and given once; a :class:`ConfigError` names the first bad one."""
    seen: list[str] = []
    for name in names:
        if name not in FAULTS:
            raise ConfigError("fault", f"{name!r} is not a reference mobile node fault (see: mipcheck mn faults)")
        if name not in seen:
            seen.append(name)
    return tuple(seen)


def behaviour_for(names: Iterable[str]) -> DetectionBehaviour:
    """The conformant behaviour with each named fault's setting flipped."""
    return DetectionBehaviour.breaking(*(FAULTS[name].setting for name in check_faults(names)))
