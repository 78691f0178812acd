"""Passive RFC 5265 checks: dissection records in, findings with requirement IDs out.

Each check is named by a ``PASSIVE-`` case ID of the requirement catalogue
(:mod:`mipcheck.catalogue`); the catalogue gives the requirements a finding
concerns, their text and level. Each finding also carries a
:class:`~mipcheck.outcomes.Violation`: the one rule it breaks and the party on
the wire that broke it (:data:`RULES`). The checks see only what is on the
wire, so each explanation says what was seen, not what the device intended.

Records come one at a time (``feed``); state is per mobile node and per
home-agent address, so memory does not grow with the capture's length.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from mipcheck.catalogue import by_case, level
from mipcheck.outcomes import Party, Violation

from .names import numbers
from .profile import SiteProfile

# Passive check IDs (the catalogue's case IDs), with the level to fall back on
# should the catalogue not be installed.
TNC_TO_UNTRUSTED = "PASSIVE-TNC-TO-UNTRUSTED"
IHA_UNTRUSTED_SOURCE = "PASSIVE-IHA-UNTRUSTED-SOURCE"
SAME_HA_ADDRESS = "PASSIVE-SAME-HA-ADDRESS"
TNC_AFTER_AUTH = "PASSIVE-TNC-AFTER-AUTH"
PLAINTEXT_AFTER_TMONITOR = "PASSIVE-PLAINTEXT-AFTER-TMONITOR"
PLAINTEXT_RRQ_EXTERNAL = "PASSIVE-PLAINTEXT-RRQ-EXTERNAL"
CHECKS: dict[str, str] = {
    TNC_TO_UNTRUSTED: "MUST",
    IHA_UNTRUSTED_SOURCE: "MUST",
    SAME_HA_ADDRESS: "MUST",
    TNC_AFTER_AUTH: "MUST",
    PLAINTEXT_AFTER_TMONITOR: "MUST",
    PLAINTEXT_RRQ_EXTERNAL: "MUST",
}
# The rule a finding of each check breaks, and who broke it; tests/test_analyze.py checks
# each id against the catalogue (kept static: no catalogue look-up per packet).
RULES: dict[str, tuple[str, Party]] = {
    TNC_TO_UNTRUSTED: ("5265-4.3-DROP-UNTRUSTED", Party.HOME_AGENT),
    IHA_UNTRUSTED_SOURCE: ("5265-4.3-DROP-UNTRUSTED", Party.HOME_AGENT),
    SAME_HA_ADDRESS: ("5265-3.5-HA-ADDRESSES-DIFFER", Party.HOME_AGENT),
    # a Registration Request with TNC after the authenticator is the mobile node's (see _extension_order)
    TNC_AFTER_AUTH: ("5944-3.5-AUTH-COVERS-PRECEDING", Party.HOME_AGENT),
    PLAINTEXT_AFTER_TMONITOR: ("5265-3.2.4-NO-DATA-AFTER-TMONITOR", Party.MOBILE_NODE),
    PLAINTEXT_RRQ_EXTERNAL: ("5265-3.1-FW-BLOCKS-IHA", Party.FIREWALL),
}
LEVEL_ORDER = {"MUST": 0, "SHOULD": 1, "MAY": 2}
MAX_FRAMES = 100  # frame numbers kept per finding; ``count`` has them all

RRQ_NAME = "Registration Request"
RRP_NAME = "Registration Reply"
MIP_SIGNALLING = frozenset(
    ("RRQ", "RRP", "Revocation", "Revocation Ack", "Agent Advertisement", "Agent Solicitation", "MIP")
)


@dataclass
class Requirement:
    id: str
    level: str
    text: str


@dataclass
class Finding:
    id: str
    level: str
    requirements: list[Requirement]
    frames: list[int]
    count: int
    explanation: str
    file: str | None = None
    violation: Violation | None = None  # the rule broken and by whom (RULES)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def requirements_of(case_id: str) -> list[Requirement]:
    """The catalogue's requirements for a passive check (empty when the catalogue cannot be read)."""
    try:
        return [Requirement(r.id, level(r), r.text) for r in by_case(case_id)]
    except Exception:  # noqa: BLE001 - a broken catalogue must not stop the analysis; levels fall back
        return []


def finding_level(case_id: str, requirements: list[Requirement]) -> str:
    if not requirements:
        return CHECKS[case_id]
    return min((r.level for r in requirements), key=lambda lv: LEVEL_ORDER.get(lv, 9))


def protection(record: dict[str, Any]) -> tuple[list[bool], int | None]:
    """Per IP entry: was it inside ESP on the wire? And the index of the IP entry carrying the innermost MIP message."""
    protected: list[bool] = []
    esp_seen = False
    carrier = None
    for name in record["layers"]:
        if name == "ESP":
            esp_seen = True
        elif name in ("IP", "MinEnc"):
            protected.append(esp_seen)
        elif name in MIP_SIGNALLING or name == "Tunnel Data":
            carrier = len(protected) - 1 if protected else None
    return protected, carrier


def _has_tnc(mip: dict[str, Any]) -> bool:
    return any(e.get("type") == numbers.EXT_TNC for e in mip.get("extensions") or [])


@dataclass
class _Open:
    frames: list[int] = field(default_factory=list)
    count: int = 0
    explanation: str = ""
    party: Party | None = None  # overrides RULES' party for this finding


class Analyzer:
    """Feed it every record of a capture in order, then ask for ``findings()``."""

    def __init__(self, profile: SiteProfile, file: str | None = None) -> None:
        self.profile = profile
        self.file = file
        self.packets = 0
        self._open: dict[tuple[str, str], _Open] = {}
        self._last_inside_registration: dict[str, float] = {}
        self._node_of: dict[str, str] = {}
        for node in profile.mobile_nodes:
            ident = node.nai or node.home_address
            self._node_of[node.home_address] = ident
            if node.external_home_address:
                self._node_of[node.external_home_address] = ident
        self._monitored = {node.home_address for node in profile.mobile_nodes}
        self._monitor_all = not profile.mobile_nodes  # no MNs listed: watch every i-HoA that registers
        # identity -> home agent address -> {home address: first frame}
        self._registrations: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))

    def _report(self, case_id: str, subject: str, frame: int, explanation: str, party: Party | None = None) -> None:
        entry = self._open.setdefault((case_id, subject), _Open(explanation=explanation, party=party))
        entry.count += 1
        if len(entry.frames) < MAX_FRAMES:
            entry.frames.append(frame)

    def feed(self, record: dict[str, Any]) -> None:
        self.packets += 1
        mip = record["mip"]
        protected, carrier = protection(record)
        carried_in_esp = carrier is not None and protected[carrier]
        if mip is not None:
            name = mip["name"]
            if name == RRP_NAME:
                self._reply(record, mip, carried_in_esp)
            elif name == RRQ_NAME:
                self._request(record, mip, carried_in_esp)
            if name in (RRQ_NAME, RRP_NAME):
                self._extension_order(record, mip)
        if mip is None or mip["name"] == "Tunnel Data":
            self._user_data(record, protected)

    # -- the checks ------------------------------------------------------------

    def _reply(self, record: dict[str, Any], mip: dict[str, Any], in_esp: bool) -> None:
        p = self.profile
        src, dst, frame = record["src"], record["dst"], record["frame"]
        trusted = p.trusted(dst)
        if _has_tnc(mip) and not trusted:
            # RFC 5265 4.3: no reply at all may go to an untrusted source; one with TNC tells the MN to drop IPsec
            self._report(
                TNC_TO_UNTRUSTED,
                f"{src}>{dst}",
                frame,
                f"{src} sent a Registration Reply with the Trusted Networks Configured extension to {dst}, "
                "outside the trusted networks: a mobile node there would conclude it is inside and stop using IPsec",
            )
        if src in p.internal_home_agents and not trusted:
            self._report(
                IHA_UNTRUSTED_SOURCE,
                f"{src}>{dst}",
                frame,
                f"the i-HA {src} answered {dst}, which is outside its trusted networks; RFC 5265 4.3 requires it to "
                "drop such registration requests silently",
            )
        code = mip.get("code")  # absent when the reply was cut inside its fixed part: neither accepted nor denied
        accepted = code is not None and numbers.reply_accepted(code)
        hoa = mip.get("home_address")
        if accepted and src in p.internal_home_agents and not in_esp and hoa:
            # a plaintext, accepted i-HA registration: the MN may now be inside (RFC 5265 3.2.3, 3.2.4)
            self._last_inside_registration[hoa] = record["time"]
            if self._monitor_all:
                self._monitored.add(hoa)

    def _request(self, record: dict[str, Any], mip: dict[str, Any], in_esp: bool) -> None:
        p = self.profile
        src, dst, frame = record["src"], record["dst"], record["frame"]
        if dst in p.internal_home_agents and not in_esp and not p.internal(src):
            self._report(
                PLAINTEXT_RRQ_EXTERNAL,
                f"{src}>{dst}",
                frame,
                f"plaintext Registration Request from external address {src} to the i-HA {dst}: the firewall must "
                "block "
                "it (RFC 5265 3.1); on the wire it reveals the i-HA address, the home address, NAI and authenticator "
                "(6.1)",
            )
        hoa, ha = mip.get("home_address"), mip.get("home_agent")
        if hoa and ha and ha != "0.0.0.0":
            nai = next((e.get("nai") for e in mip.get("extensions") or [] if e.get("type") == numbers.EXT_NAI), None)
            ident = nai or self._node_of.get(hoa) or hoa
            self._registrations[ident][ha].setdefault(hoa, frame)

    def _extension_order(self, record: dict[str, Any], mip: dict[str, Any]) -> None:
        types = [e.get("type") for e in mip.get("extensions") or []]
        if numbers.EXT_TNC in types and numbers.EXT_MN_HA_AUTH in types:
            if types.index(numbers.EXT_TNC) > types.index(numbers.EXT_MN_HA_AUTH):
                kind = "Reply" if mip["name"] == RRP_NAME else "Request"
                self._report(
                    TNC_AFTER_AUTH,
                    f"{record['src']}",
                    record["frame"],
                    f"Registration {kind} from {record['src']} carries the TNC extension after the Mobile-Home "
                    "Authentication extension, so the authenticator does not cover it and anyone on the path "
                    "could have added it",
                    Party.HOME_AGENT if mip["name"] == RRP_NAME else Party.MOBILE_NODE,
                )

    def _user_data(self, record: dict[str, Any], protected: list[bool]) -> None:
        if not self._last_inside_registration:
            return
        t_monitor = self.profile.t_monitor
        for ip, in_esp in zip(record["ip"], protected, strict=False):
            if in_esp:
                continue
            hoa = ip["src"]
            last = self._last_inside_registration.get(hoa)
            if last is None or hoa not in self._monitored:
                continue
            elapsed = record["time"] - last
            if elapsed > t_monitor:
                self._report(
                    PLAINTEXT_AFTER_TMONITOR,
                    hoa,
                    record["frame"],
                    f"mobile node {hoa} sent plaintext user data {elapsed:.1f} s after its last successful i-HA "
                    f"registration, more than T_MONITOR = {t_monitor:g} s (RFC 5265 3.2.4)",
                )
            return

    # -- results ---------------------------------------------------------------

    def findings(self) -> list[Finding]:
        p = self.profile
        same = sorted(p.internal_home_agents & p.external_home_agents)
        if same:
            self._report(
                SAME_HA_ADDRESS,
                "profile",
                0,
                f"the site profile gives {', '.join(same)} as both i-HA and x-HA address; RFC 5265 3.5 requires them "
                "to differ",
            )
            self._open[(SAME_HA_ADDRESS, "profile")].frames.clear()
        for ident, by_ha in self._registrations.items():
            for ha, homes in by_ha.items():
                if len(homes) > 1:
                    self._report(
                        SAME_HA_ADDRESS,
                        f"{ident}@{ha}",
                        min(homes.values()),
                        f"mobile node {ident} registered home addresses {', '.join(sorted(homes))} with one home agent "
                        f"address {ha}: its i-HA and x-HA share an address (RFC 5265 3.5)",
                    )
                    entry = self._open[(SAME_HA_ADDRESS, f"{ident}@{ha}")]
                    entry.frames = sorted(homes.values())
                    entry.count = len(homes)
        out = []
        for (case_id, _subject), entry in self._open.items():
            reqs = requirements_of(case_id)
            rule_id, party = RULES[case_id]
            violation = Violation(rule_id, entry.party or party, case_id, entry.explanation)
            out.append(
                Finding(
                    case_id,
                    finding_level(case_id, reqs),
                    reqs,
                    entry.frames,
                    entry.count,
                    entry.explanation,
                    self.file,
                    violation,
                )
            )
        out.sort(key=lambda f: (LEVEL_ORDER.get(f.level, 9), f.frames[0] if f.frames else 0, f.id))
        return out
