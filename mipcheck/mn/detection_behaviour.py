"""How the reference mobile node's RFC 5265 detection behaves: one switch per mobile-node rule.

Why: the MN suite (issue 10) must prove that each of its checks catches the
rule it names. Every field of :class:`DetectionBehaviour` is one MN rule of
RFC 5265; its default is conformant, and flipping it breaks exactly the rule
that :data:`BROKEN_RULES` names (an id of the requirement catalogue), nothing
else. The detection core reads these fields where it enforces the rule.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class DetectionBehaviour:
    """Conformant by default; ``DetectionBehaviour.breaking("t_monitor_gate")`` gives a faulty one."""

    track_interfaces_separately: bool = True  # 3.2.1: inside on X says nothing about Y
    stop_data_on_status_change: bool = True  # 3.2.2: stop relaying at once on a link change
    require_tnc: bool = True  # 3.2.3: no inside without a TNC extension
    trust_tnc_after_auth: bool = False  # 4.1: a TNC outside the authenticated part is not the i-HA's
    t_monitor_reregistration: bool = True  # 3.3: re-register every T_MONITOR - N whatever the lifetime
    rereg_while_data_flows: bool = True  # 3.2.4: data is no substitute for a re-registration
    t_monitor_gate: bool = True  # 3.2.4: no data once T_MONITOR has passed
    hold_queue_until_rereg: bool = True  # 3.2.4: queues wait for a completed re-registration
    keep_iha_retransmit_after_xha: bool = True  # 3.3: keep asking the i-HA after the x-HA answered
    stop_retransmit_on_iha_reply: bool = True  # 3.3: an i-HA reply stops both retransmissions
    inside_on_tnc: bool = True  # 3.3 SHOULD: a TNC reply means inside
    deregister_xha_when_inside: bool = True  # 3.3 SHOULD: de-register with the x-HA once inside
    stop_plaintext_on_rereg_failure: bool = True  # 3.3: a failed re-registration stops plaintext
    restart_on_rereg_failure: bool = True  # 3.3: ... and restarts detection
    switch_to_iha_on_late_reply: bool = True  # 3.3 last paragraph, 3.5: a late i-HA reply wins
    same_ha_goes_outside: bool = True  # 3.5: i-HA = x-HA address means outside, no detection
    skip_vpn: bool = False  # 2.3: the VPN layer is never skipped
    inner_reverse_tunnel: bool = True  # 2.3 SHOULD: 'T' bit on the inner registration
    parallel_detection: bool = True  # 3.3: "two simultaneous registration requests" (faulty: x-HA after the i-HA)

    @classmethod
    def breaking(cls, *settings: str) -> DetectionBehaviour:
        """The conformant behaviour with each named setting flipped (unknown names raise KeyError)."""
        conformant = cls()
        changes = {}
        for name in settings:
            if name not in BROKEN_RULES:
                raise KeyError(f"no behaviour setting {name!r}")
            changes[name] = not getattr(conformant, name)
        return replace(conformant, **changes)

    @property
    def broken(self) -> tuple[str, ...]:
        """The settings that differ from the conformant defaults."""
        conformant = DetectionBehaviour()
        return tuple(f.name for f in fields(self) if getattr(self, f.name) != getattr(conformant, f.name))

    @property
    def broken_rules(self) -> tuple[str, ...]:
        """Catalogue ids of the rules this behaviour breaks."""
        return tuple(BROKEN_RULES[name] for name in self.broken)


#: setting -> the id (mipcheck/catalogue_data/requirements/rfc5265.toml) of the one rule it breaks when flipped.
BROKEN_RULES: dict[str, str] = {
    "track_interfaces_separately": "5265-3.2.1-PER-INTERFACE",
    "stop_data_on_status_change": "5265-3.2.2-STATUS-CHANGE",
    "require_tnc": "5265-3.2.3-TNC-BEFORE-INSIDE",
    "trust_tnc_after_auth": "5265-4.1-KEEP-IPSEC-WITHOUT-TNC",
    "t_monitor_reregistration": "5265-3.3-INSIDE-REREGISTER",
    "rereg_while_data_flows": "5265-3.2.4-REREG-DESPITE-TRAFFIC",
    "t_monitor_gate": "5265-3.2.4-NO-DATA-AFTER-TMONITOR",
    "hold_queue_until_rereg": "5265-3.2.4-QUEUE-HELD",
    "keep_iha_retransmit_after_xha": "5265-3.3-KEEP-RETRANSMITTING-IHA",
    "stop_retransmit_on_iha_reply": "5265-3.3-STOP-RETRANSMITTING",
    "inside_on_tnc": "5265-3.3-TNC-MEANS-INSIDE",
    "deregister_xha_when_inside": "5265-3.3-DEREGISTER-XHA",
    "stop_plaintext_on_rereg_failure": "5265-3.3-REREG-FAIL-STOP-PLAINTEXT",
    "restart_on_rereg_failure": "5265-3.3-REREG-FAIL-RESTART-DETECTION",
    "switch_to_iha_on_late_reply": "5265-3.3-LATE-IHA-REPLY",
    "same_ha_goes_outside": "5265-3.5-SAME-ADDRESS-MEANS-OUTSIDE",
    "skip_vpn": "5265-2.3-NO-VPN-SKIP",
    "inner_reverse_tunnel": "5265-2.3-IMIP-TBIT",
    "parallel_detection": "5265-3-DETECTION-MECHANISM",
}
