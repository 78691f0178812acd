"""The site-audit profile (TOML): a site's addresses, a mobile node's keys, and the vantage points to probe from.

The audit judges a deployment (firewall, VPN gateway, home agents) from what
probes see, so the profile says where each probe runs. A vantage point has a
``role`` and one way to get there:

* ``namespace = "NAME"``: a network namespace on this machine (``ip netns``),
  e.g. one of ``mipcheck lab``'s; needs root;
* ``local = true``: this host itself, in the namespace mipcheck runs in;
* ``ssh = "user@host"``: not supported yet (a profile naming one is refused
  with that message, so no case silently probes from the wrong place).

Roles: ``outside`` (a host on an external network, not on the VPN),
``inside`` (a host on the internal network), ``vpn`` (a host connected to the
VPN gateway; ``interface`` names its outer interface for
SITE-VPN-ENCRYPT-ALL's capture) and ``i-ha`` (the i-HA's own host: raw
sockets there show what arrives, which nothing else can tell for IP-in-IP or
for requests the i-HA drops silently). Several vantage points may share a role
(e.g. the external network and the DMZ are both outside).

Format (``mipcheck lab up`` writes one for the lab, ``site-audit.toml``)::

    [site]
    name = "example"                       # for reports
    internal_home_agents = ["10.1.0.1"]    # i-HA address(es)
    external_home_agents = ["192.0.2.1"]   # x-HA address(es)
    vpn_gateways = ["192.0.2.2"]           # the VPN gateway's outside address(es)
    internal_networks = ["10.0.0.0/8"]     # the enterprise's internal network(s)
    enterprise_hosts = ["10.1.0.10"]       # optional: more destinations for SITE-VPN-ENCRYPT-ALL

    [timing]                               # optional
    reply_timeout = 2.0                    # longest wait for an expected answer
    silence = 1.0                          # how long "nothing arrives" is watched for

    [[mobile_node]]                        # keys to make *valid* registration requests
    home_agent = "internal"                # or "external": which home agents know it
    home_address = "10.1.0.100"
    spi = 1382350849
    secret_file = "secrets/mn1-inner.key"  # or secret / secret_hex / secret_env; paths relative to this file
    algorithm = "hmac-md5"                 # optional
    nai = "mn1@example.com"                # optional

    [[vantage]]
    name = "external"
    role = "outside"
    namespace = "mipcheck-lab-audit-out"

Every problem is a :class:`~mipcheck.errors.ConfigError` naming the key (exit 2).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mipcheck.errors import ConfigError
from mipcheck.proto.security import SecurityAssociation
from mipcheck.tomlfile import read_toml

ROLES = ("outside", "inside", "vpn", "i-ha")
HA_KINDS = ("internal", "external")
REPLY_TIMEOUT = 2.0
SILENCE = 1.0
SSH_NOT_SUPPORTED = (
    "ssh vantage points are not supported yet: run mipcheck on that host with a profile naming it `local = true`, "
    "or give a network namespace"
)

_SITE_KEYS = {
    "name",
    "internal_home_agents",
    "external_home_agents",
    "vpn_gateways",
    "internal_networks",
    "enterprise_hosts",
}
_VANTAGE_KEYS = {"name", "role", "namespace", "local", "ssh", "interface"}
_MN_KEYS = {"home_agent", "home_address", "spi", "algorithm", "nai"} | {
    "secret",
    "secret_hex",
    "secret_file",
    "secret_env",
}


@dataclass(frozen=True)
class Vantage:
    """A place to run probes from: a namespace on this machine, or this host itself."""

    name: str
    role: str
    namespace: str | None = None  # None: local
    interface: str | None = None  # the outer interface of a VPN host (for captures)

    @property
    def where(self) -> str:
        return f"namespace {self.namespace}" if self.namespace else "this host"

    def __str__(self) -> str:
        return f"{self.name} ({self.role}, {self.where})"


@dataclass(frozen=True)
class Identity:
    """A mobile node the tester plays: home address and its security association with a kind of home agent."""

    home_agent: str  # "internal" | "external"
    home_address: str
    sa: SecurityAssociation
    nai: str | None = None
    secret_from: str = "inline"

    @property
    def spi(self) -> int:
        return self.sa.spi


@dataclass(frozen=True)
class SiteProfile:
    name: str
    internal_home_agents: tuple[str, ...]
    external_home_agents: tuple[str, ...]
    vpn_gateways: tuple[str, ...]
    internal_networks: tuple[ipaddress.IPv4Network, ...]
    enterprise_hosts: tuple[str, ...] = ()
    vantages: tuple[Vantage, ...] = ()
    mobile_nodes: tuple[Identity, ...] = ()
    reply_timeout: float = REPLY_TIMEOUT
    silence: float = SILENCE
    source: str = "<profile>"
    notes: tuple[str, ...] = field(default=())

    def vantages_of(self, role: str) -> tuple[Vantage, ...]:
        return tuple(v for v in self.vantages if v.role == role)

    def identity(self, kind: str) -> Identity | None:
        return next((m for m in self.mobile_nodes if m.home_agent == kind), None)

    def in_enterprise(self, address: str) -> bool:
        ip = ipaddress.IPv4Address(address)
        return any(ip in net for net in self.internal_networks) or address in self.internal_home_agents

    def public(self) -> dict[str, Any]:
        """For reports: everything but the secrets (their origin is named instead)."""
        return {
            "source": self.source,
            "name": self.name,
            "internal_home_agents": list(self.internal_home_agents),
            "external_home_agents": list(self.external_home_agents),
            "vpn_gateways": list(self.vpn_gateways),
            "internal_networks": [str(n) for n in self.internal_networks],
            "enterprise_hosts": list(self.enterprise_hosts),
            "timing": {"reply_timeout": self.reply_timeout, "silence": self.silence},
            "mobile_nodes": [
                {
                    "home_agent": m.home_agent,
                    "home_address": m.home_address,
                    "spi": m.spi,
                    "algorithm": m.sa.algorithm,
                    "nai": m.nai,
                    "secret": f"<{m.secret_from}>",
                }
                for m in self.mobile_nodes
            ],
            "vantages": [
                {"name": v.name, "role": v.role, "namespace": v.namespace, "local": v.namespace is None}
                | ({"interface": v.interface} if v.interface else {})
                for v in self.vantages
            ],
        }


# ------------------------------------------------------------------ parsing


def _address(value: Any, key: str, source: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except (ValueError, TypeError):
        raise ConfigError(key, f"{value!r} is not an IPv4 address", source=source) from None


def _addresses(value: Any, key: str, source: str, *, required: bool) -> tuple[str, ...]:
    if value is None:
        if required:
            raise ConfigError(key, "missing (a list of IPv4 addresses)", source=source)
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(key, "expected a list of IPv4 addresses", source=source)
    out: list[str] = []
    for item in value:
        address = _address(item, key, source)
        if address not in out:
            out.append(address)
    if required and not out:
        raise ConfigError(key, "must name at least one address", source=source)
    return tuple(out)


def _networks(value: Any, key: str, source: str) -> tuple[ipaddress.IPv4Network, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(key, 'missing (a list of IPv4 subnets such as "10.0.0.0/8")', source=source)
    out = []
    for item in value:
        try:
            out.append(ipaddress.IPv4Network(item, strict=False))
        except (ValueError, TypeError):
            raise ConfigError(key, f"{item!r} is not an IPv4 subnet", source=source) from None
    return tuple(out)


def _positive(value: Any, key: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0 or value > 60:
        raise ConfigError(key, "expected a number of seconds above 0 and at most 60", source=source)
    return float(value)


def _unknown(table: dict[str, Any], known: set[str], prefix: str, source: str) -> None:
    extra = sorted(set(table) - known)
    if extra:
        raise ConfigError(f"{prefix}{extra[0]}", f"unknown key (expected {', '.join(sorted(known))})", source=source)


def _vantage(raw: Any, index: int, source: str, seen: set[str]) -> Vantage:
    key = f"vantage[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(key, "expected a table", source=source)
    _unknown(raw, _VANTAGE_KEYS, f"{key}.", source)
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{key}.name", "missing (a name for reports, e.g. 'external')", source=source)
    if name in seen:
        raise ConfigError(f"{key}.name", f"{name!r} names two vantage points", source=source)
    seen.add(name)
    role = raw.get("role")
    if role not in ROLES:
        raise ConfigError(f"{key}.role", f"{role!r} is not one of {', '.join(ROLES)}", source=source)
    ways = [w for w in ("namespace", "local", "ssh") if w in raw]
    if len(ways) != 1:
        raise ConfigError(
            f"{key}.namespace",
            f"give exactly one of namespace, local = true or ssh (found {', '.join(ways) or 'none'})",
            source=source,
        )
    if "ssh" in raw:
        raise ConfigError(f"{key}.ssh", SSH_NOT_SUPPORTED, source=source)
    namespace = None
    if "namespace" in raw:
        namespace = raw["namespace"]
        if not isinstance(namespace, str) or not namespace or "/" in namespace or namespace in (".", ".."):
            raise ConfigError(f"{key}.namespace", f"{namespace!r} is not a network namespace name", source=source)
    elif raw["local"] is not True:
        raise ConfigError(f"{key}.local", "expected true (or name a namespace instead)", source=source)
    interface = raw.get("interface")
    if interface is not None and (not isinstance(interface, str) or not interface or len(interface) > 15):
        raise ConfigError(f"{key}.interface", f"{interface!r} is not an interface name", source=source)
    return Vantage(name, role, namespace, interface)


def _identity(raw: Any, index: int, source: str, base_dir: Path | None) -> Identity:
    key = f"mobile_node[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(key, "expected a table", source=source)
    _unknown(raw, _MN_KEYS, f"{key}.", source)
    kind = raw.get("home_agent")
    if kind not in HA_KINDS:
        raise ConfigError(
            f"{key}.home_agent",
            f"{kind!r}: expected 'internal' or 'external' (which home agents know it)",
            source=source,
        )
    home = _address(raw.get("home_address"), f"{key}.home_address", source)
    sa, origin = SecurityAssociation.from_table(raw, key, base_dir=base_dir, source=source)
    nai = raw.get("nai")
    if nai is not None and (not isinstance(nai, str) or not nai):
        raise ConfigError(f"{key}.nai", "expected a non-empty string", source=source)
    return Identity(kind, home, sa, nai, origin)


def parse_site_profile(doc: dict[str, Any], source: str = "<profile>", base_dir: Path | None = None) -> SiteProfile:
    """Validate a parsed profile; secrets files are read relative to ``base_dir``."""
    _unknown(doc, {"site", "timing", "mobile_node", "vantage"}, "", source)
    site = doc.get("site")
    if not isinstance(site, dict):
        raise ConfigError("site", "missing table with the site's addresses", source=source)
    _unknown(site, _SITE_KEYS, "site.", source)
    name = site.get("name", Path(source).stem)
    if not isinstance(name, str):
        raise ConfigError("site.name", "expected a string", source=source)
    timing = doc.get("timing", {})
    if not isinstance(timing, dict):
        raise ConfigError("timing", "expected a table", source=source)
    _unknown(timing, {"reply_timeout", "silence"}, "timing.", source)
    vantages_raw = doc.get("vantage", [])
    if not isinstance(vantages_raw, list):
        raise ConfigError("vantage", "expected an array of tables ([[vantage]])", source=source)
    seen: set[str] = set()
    vantages = tuple(_vantage(raw, i, source, seen) for i, raw in enumerate(vantages_raw, start=1))
    nodes_raw = doc.get("mobile_node", [])
    if not isinstance(nodes_raw, list):
        raise ConfigError("mobile_node", "expected an array of tables ([[mobile_node]])", source=source)
    nodes = tuple(_identity(raw, i, source, base_dir) for i, raw in enumerate(nodes_raw, start=1))
    return SiteProfile(
        name=name,
        internal_home_agents=_addresses(
            site.get("internal_home_agents"), "site.internal_home_agents", source, required=True
        ),
        external_home_agents=_addresses(
            site.get("external_home_agents"), "site.external_home_agents", source, required=False
        ),
        vpn_gateways=_addresses(site.get("vpn_gateways"), "site.vpn_gateways", source, required=False),
        internal_networks=_networks(site.get("internal_networks"), "site.internal_networks", source),
        enterprise_hosts=_addresses(site.get("enterprise_hosts"), "site.enterprise_hosts", source, required=False),
        vantages=vantages,
        mobile_nodes=nodes,
        reply_timeout=_positive(timing.get("reply_timeout", REPLY_TIMEOUT), "timing.reply_timeout", source),
        silence=_positive(timing.get("silence", SILENCE), "timing.silence", source),
        source=source,
    )


def load_site_profile(path: str | Path) -> SiteProfile:
    doc = read_toml(path, "--profile")
    return parse_site_profile(doc, str(path), Path(path).resolve().parent)
