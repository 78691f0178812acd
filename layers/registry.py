"""What the layers know, as rows: used by ``mipcheck layers`` and by tests."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from . import numbers as n
from .agent import AGENT_EXTENSION_CLASSES, AgentAdvertisement, AgentSolicitation
from .extensions import EXTENSION_CLASSES
from .messages import MESSAGE_CLASSES
from .minenc import MinimalEncapsulation


@dataclass(frozen=True)
class LayerInfo:
    kind: str  # message | extension | agent-extension | icmp | ip-protocol | tunnel-next-header
    number: int
    name: str
    rfc: str
    layer: str  # Scapy class name
    skippable: bool | None = None  # extensions only (RFC 5944 1.9)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def known_layers() -> list[LayerInfo]:
    rows: list[LayerInfo] = []
    for t, cls in sorted(MESSAGE_CLASSES.items()):
        name, rfc = n.MESSAGE_TYPES[t]
        rows.append(LayerInfo("message", t, name, rfc, cls.__name__))
    for t, cls in sorted(EXTENSION_CLASSES.items()):
        name, rfc = n.EXTENSION_TYPES[t]
        rows.append(LayerInfo("extension", t, name, rfc, cls.__name__, n.is_skippable(t)))
    rows.append(
        LayerInfo("icmp", n.ICMP_ROUTER_ADVERTISEMENT, "Agent Advertisement", "RFC 5944", AgentAdvertisement.__name__)
    )
    rows.append(
        LayerInfo("icmp", n.ICMP_ROUTER_SOLICITATION, "Agent Solicitation", "RFC 5944", AgentSolicitation.__name__)
    )
    for t, cls in sorted(AGENT_EXTENSION_CLASSES.items()):
        name, rfc = n.AGENT_EXTENSION_TYPES[t]
        rows.append(LayerInfo("agent-extension", t, name, rfc, cls.__name__))
    rows.append(
        LayerInfo("ip-protocol", n.IPPROTO_MINENC, "Minimal Encapsulation", "RFC 2004", MinimalEncapsulation.__name__)
    )
    for nh, cls_name in ((4, "IP"), (47, "GRE"), (55, MinimalEncapsulation.__name__)):
        rows.append(LayerInfo("tunnel-next-header", nh, n.NEXT_HEADERS[nh], "RFC 3519", cls_name))
    return rows
