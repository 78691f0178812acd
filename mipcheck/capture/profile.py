"""The site profile ``mipcheck analyze`` checks a capture against (TOML; examples/site.toml).

What a capture alone cannot tell: which addresses are the home agents, which
subnets the i-HA trusts, which are internal, T_MONITOR, and the mobile nodes'
home addresses. Every problem is a ``ConfigError`` naming the key.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from mipcheck.errors import ConfigError
from mipcheck.tomlfile import read_toml

T_MONITOR_DEFAULT = 60.0  # RFC 5265 3.2.4: "have the default value of 60 seconds"


@dataclass(frozen=True)
class MobileNode:
    home_address: str  # i-HoA
    external_home_address: str | None = None  # x-HoA
    nai: str | None = None


@dataclass(frozen=True)
class SiteProfile:
    internal_home_agents: frozenset[str]
    external_home_agents: frozenset[str]
    trusted_networks: tuple[ipaddress.IPv4Network, ...]
    internal_networks: tuple[ipaddress.IPv4Network, ...]
    t_monitor: float = T_MONITOR_DEFAULT
    mobile_nodes: tuple[MobileNode, ...] = field(default=())
    source: str = "<profile>"

    def trusted(self, address: str | None) -> bool:
        return _inside(address, self.trusted_networks)

    def internal(self, address: str | None) -> bool:
        return _inside(address, self.internal_networks)


def _inside(address: str | None, networks: tuple[ipaddress.IPv4Network, ...]) -> bool:
    if address is None:
        return False
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def _addresses(value: object, key: str, source: str, *, required: bool) -> frozenset[str]:
    if value is None:
        if required:
            raise ConfigError(key, "missing (a list of IPv4 addresses)", source=source)
        return frozenset()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(key, "expected a list of IPv4 addresses", source=source)
    out = set()
    for item in value:
        try:
            out.add(str(ipaddress.IPv4Address(item)))
        except (ValueError, TypeError):
            raise ConfigError(key, f"{item!r} is not an IPv4 address", source=source) from None
    return frozenset(out)


def _one_address(value: object, key: str, source: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, "missing or not a string (an IPv4 address)", source=source)
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ConfigError(key, f"{value!r} is not an IPv4 address", source=source) from None


def _networks(value: object, key: str, source: str) -> tuple[ipaddress.IPv4Network, ...]:
    if value is None:
        raise ConfigError(key, 'missing (a list of IPv4 subnets such as "10.0.0.0/8")', source=source)
    if not isinstance(value, list):
        raise ConfigError(key, "expected a list of IPv4 subnets", source=source)
    out = []
    for item in value:
        try:
            out.append(ipaddress.IPv4Network(item, strict=False))
        except (ValueError, TypeError):
            raise ConfigError(key, f"{item!r} is not an IPv4 subnet", source=source) from None
    return tuple(out)


def parse_profile(doc: dict, source: str = "<profile>") -> SiteProfile:
    known = {"home_agents", "networks", "timers", "mobile_node"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ConfigError(unknown[0], f"unknown key (expected {', '.join(sorted(known))})", source=source)
    agents = doc.get("home_agents")
    if not isinstance(agents, dict):
        raise ConfigError("home_agents", "missing table with 'internal' and 'external' address lists", source=source)
    nets = doc.get("networks")
    if not isinstance(nets, dict):
        raise ConfigError("networks", "missing table with 'trusted' and 'internal' subnet lists", source=source)
    timers = doc.get("timers", {})
    if not isinstance(timers, dict):
        raise ConfigError("timers", "expected a table", source=source)
    t_monitor = timers.get("t_monitor", T_MONITOR_DEFAULT)
    if isinstance(t_monitor, bool) or not isinstance(t_monitor, int | float) or t_monitor <= 0:
        raise ConfigError("timers.t_monitor", "expected a positive number of seconds", source=source)
    nodes = []
    for i, entry in enumerate(doc.get("mobile_node", []), start=1):
        key = f"mobile_node[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(key, "expected a table", source=source)
        unknown = sorted(set(entry) - {"home_address", "external_home_address", "nai"})
        if unknown:
            raise ConfigError(f"{key}.{unknown[0]}", "unknown key", source=source)
        hoa = _one_address(entry.get("home_address"), f"{key}.home_address", source)
        xhoa = entry.get("external_home_address")
        if xhoa is not None:
            xhoa = _one_address(xhoa, f"{key}.external_home_address", source)
        nai = entry.get("nai")
        if nai is not None and not isinstance(nai, str):
            raise ConfigError(f"{key}.nai", "expected a string", source=source)
        nodes.append(MobileNode(hoa, xhoa, nai))
    return SiteProfile(
        internal_home_agents=_addresses(agents.get("internal"), "home_agents.internal", source, required=True),
        external_home_agents=_addresses(agents.get("external"), "home_agents.external", source, required=False),
        trusted_networks=_networks(nets.get("trusted"), "networks.trusted", source),
        internal_networks=_networks(nets.get("internal"), "networks.internal", source),
        t_monitor=float(t_monitor),
        mobile_nodes=tuple(nodes),
        source=source,
    )


def load_profile(path: str) -> SiteProfile:
    doc = read_toml(path, "profile")
    return parse_profile(doc, path)
