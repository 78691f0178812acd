"""Configuration of the reference home agent: frozen dataclasses and a TOML loader.

Values are checked once, here, so the core never meets a bad one; every
problem becomes a :class:`~mipcheck.errors.ConfigError` naming the key. A
secret comes from exactly one of ``secret`` (inline, for labs), ``secret_hex``,
``secret_file`` (relative to the config file) or ``secret_env``, and is held
in a :class:`~mipcheck.proto.secret.Secret` whose repr never shows it.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any

from mipcheck import keysource
from mipcheck.errors import ConfigError
from mipcheck.fields import REPLAY_MODES, boolean, choice, integer, ipv4
from mipcheck.proto.codec import HMAC_MD5
from mipcheck.proto.numbers import INFINITE_LIFETIME
from mipcheck.proto.secret import Secret
from mipcheck.proto.security import SecurityAssociation, exposes_sa
from mipcheck.tomlfile import read_toml

ROLES = ("i-ha", "x-ha")
# Forward-tunnel encapsulations the home agent can offer (RFC 5944 4.1: IP-in-IP MUST be supported, minimal
# encapsulation, RFC 2004, MAY); a request asking for one not listed ('M', 'G') is denied with 139.
ENCAPSULATIONS = ("ipip", "minimal")


@exposes_sa
@dataclass(frozen=True)
class MobileNodeConfig:
    """A mobile node the home agent serves: its home address and the security association they share."""

    home_address: str
    spi: InitVar[int] = None  # InitVars, with secret and algorithm: they build sa
    secret: InitVar[Secret | bytes | str] = None
    algorithm: InitVar[str] = HMAC_MD5
    replay: str = "timestamp"
    nai: str | None = None
    sa: SecurityAssociation = field(init=False)

    def __post_init__(self, spi: int, secret: Secret | bytes | str, algorithm: str) -> None:
        where = f"mobile_node[{self.home_address}]"
        object.__setattr__(self, "home_address", ipv4(f"{where}.home_address", self.home_address, None))
        object.__setattr__(self, "sa", SecurityAssociation.checked(spi, secret, algorithm, where=where))
        choice(f"{where}.replay", self.replay, REPLAY_MODES, None)


@dataclass(frozen=True)
class HAConfig:
    """Everything the home agent core and its transport need; see docs/design/contracts.md."""

    address: str = "127.0.0.1"
    port: int = 434
    role: str = "i-ha"
    trusted_networks: tuple[ipaddress.IPv4Network, ...] = ()
    max_lifetime: int = 1800
    replay_skew: float = 7.0
    replay_strict: bool = True
    keepalive_interval: int = 110
    simultaneous_bindings: bool = False
    reverse_tunneling: bool = True
    udp_tunneling: bool = True
    log_file: str | None = None
    mobile_nodes: tuple[MobileNodeConfig, ...] = ()
    # Beyond the contract (all defaulted): policy knobs that select other reply codes.
    reverse_tunnel_required: bool = False  # RFC 3024: deny requests without 'T' with code 138
    max_simultaneous_bindings: int = 4  # RFC 5944 3.8.2.3: more than this -> code 135
    log_rate: float = 5.0  # unauthenticated drop/deny log lines per second (token bucket)
    log_burst: int = 20
    encapsulations: tuple[str, ...] = ("ipip",)  # ENCAPSULATIONS; "minimal": 'M' accepted, RFC 2004 both ways
    _by_home: Mapping[str, MobileNodeConfig] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", ipv4("address", self.address, None))
        if ipaddress.IPv4Address(self.address).is_unspecified:
            # The Home Agent field of every request is checked against this address
            # (RFC 5944 3.8.2.1, code 136), so it must be one the home agent owns.
            raise ConfigError("address", "must be a unicast address of the home agent, not 0.0.0.0")
        integer("port", self.port, 0, 65535, None)
        choice("role", self.role, ROLES, None)
        nets = []
        for i, net in enumerate(self.trusted_networks):
            try:
                nets.append(net if isinstance(net, ipaddress.IPv4Network) else ipaddress.IPv4Network(net))
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"trusted_networks[{i}]", f"{net!r} is not an IPv4 network ({exc})") from None
        object.__setattr__(self, "trusted_networks", tuple(nets))
        integer("max_lifetime", self.max_lifetime, 1, INFINITE_LIFETIME, None)
        if isinstance(self.replay_skew, bool) or not isinstance(self.replay_skew, int | float) or self.replay_skew < 0:
            raise ConfigError("replay_skew", f"expected a number of seconds >= 0, got {self.replay_skew!r}")
        object.__setattr__(self, "replay_skew", float(self.replay_skew))
        for key in (
            "replay_strict",
            "simultaneous_bindings",
            "reverse_tunneling",
            "udp_tunneling",
            "reverse_tunnel_required",
        ):
            boolean(key, getattr(self, key), None)
        integer("keepalive_interval", self.keepalive_interval, 0, 65535, None)
        integer("max_simultaneous_bindings", self.max_simultaneous_bindings, 1, 1 << 16, None)
        object.__setattr__(self, "encapsulations", _encapsulations(self.encapsulations, None))
        if self.reverse_tunnel_required and not self.reverse_tunneling:
            raise ConfigError("reverse_tunnel_required", "needs reverse_tunneling = true")
        if self.log_file is not None and not isinstance(self.log_file, str):
            raise ConfigError("log_file", "expected a path string")
        by_home: dict[str, MobileNodeConfig] = {}
        for mn in self.mobile_nodes:
            if not isinstance(mn, MobileNodeConfig):
                raise ConfigError("mobile_nodes", f"expected MobileNodeConfig, got {type(mn).__name__}")
            if mn.home_address in by_home:
                raise ConfigError("mobile_node.home_address", f"{mn.home_address} is configured twice")
            by_home[mn.home_address] = mn
        object.__setattr__(self, "mobile_nodes", tuple(self.mobile_nodes))
        object.__setattr__(self, "_by_home", by_home)

    def mobile_node(self, home_address: str) -> MobileNodeConfig | None:
        return self._by_home.get(home_address)


def _encapsulations(value: Any, source: str | None) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ConfigError("encapsulations", f'expected a list like ["ipip", "minimal"], got {value!r}', source=source)
    for v in value:
        choice("encapsulations", v, ENCAPSULATIONS, source)
    if "ipip" not in value:
        raise ConfigError(
            "encapsulations", 'must include "ipip": RFC 5944 4.1, IP-in-IP MUST be supported', source=source
        )
    if len(set(value)) != len(value):
        raise ConfigError("encapsulations", f"{list(value)!r} repeats a value", source=source)
    return tuple(e for e in ENCAPSULATIONS if e in value)


# --------------------------------------------------------------------------- loading

_HA_KEYS = {
    "address",
    "port",
    "role",
    "trusted_networks",
    "max_lifetime",
    "replay_skew",
    "replay_strict",
    "keepalive_interval",
    "simultaneous_bindings",
    "reverse_tunneling",
    "udp_tunneling",
    "log_file",
    "reverse_tunnel_required",
    "max_simultaneous_bindings",
    "encapsulations",
    "mobile_node",
}
_MN_KEYS = {"home_address", "spi", *keysource.TABLE_KEYS, "algorithm", "replay", "nai"}


def _mobile_node(i: int, table: Any, base_dir: Path, source: str | None) -> MobileNodeConfig:
    where = f"mobile_node[{i}]"
    if not isinstance(table, dict):
        raise ConfigError(where, "expected a table ([[mobile_node]])", source=source)
    for k in table:
        if k not in _MN_KEYS:
            raise ConfigError(f"{where}.{k}", "unknown key", source=source)
    if "home_address" not in table:
        raise ConfigError(f"{where}.home_address", "missing", source=source)
    home = ipv4(f"{where}.home_address", table["home_address"], source)
    replay = choice(f"{where}.replay", table.get("replay", "timestamp"), REPLAY_MODES, source)
    nai = table.get("nai")
    if nai is not None and not isinstance(nai, str):
        raise ConfigError(f"{where}.nai", "expected a string", source=source)
    sa, _origin = SecurityAssociation.from_table(table, where, base_dir=base_dir, source=source)
    return MobileNodeConfig(home, sa.spi, sa.secret, sa.algorithm, replay, nai)


def ha_config_from_dict(data: Mapping[str, Any], *, base_dir: Path = Path("."), source: str | None = None) -> HAConfig:
    for k in data:
        if k not in _HA_KEYS:
            raise ConfigError(k, "unknown key", source=source)
    kw: dict[str, Any] = {}
    if "address" in data:
        kw["address"] = ipv4("address", data["address"], source)
    if "port" in data:
        kw["port"] = integer("port", data["port"], 0, 65535, source)
    if "role" in data:
        kw["role"] = choice("role", data["role"], ROLES, source)
    if "trusted_networks" in data:
        nets = data["trusted_networks"]
        if not isinstance(nets, list):
            raise ConfigError("trusted_networks", 'expected a list of networks like ["127.0.0.0/24"]', source=source)
        parsed = []
        for i, net in enumerate(nets):
            try:
                parsed.append(ipaddress.IPv4Network(net))
            except (ValueError, TypeError) as exc:
                raise ConfigError(
                    f"trusted_networks[{i}]", f"{net!r} is not an IPv4 network ({exc})", source=source
                ) from None
        kw["trusted_networks"] = tuple(parsed)
    if "max_lifetime" in data:
        kw["max_lifetime"] = integer("max_lifetime", data["max_lifetime"], 1, INFINITE_LIFETIME, source)
    if "replay_skew" in data:
        v = data["replay_skew"]
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise ConfigError("replay_skew", f"expected a number of seconds >= 0, got {v!r}", source=source)
        kw["replay_skew"] = float(v)
    for key in (
        "replay_strict",
        "simultaneous_bindings",
        "reverse_tunneling",
        "udp_tunneling",
        "reverse_tunnel_required",
    ):
        if key in data:
            kw[key] = boolean(key, data[key], source)
    if "keepalive_interval" in data:
        kw["keepalive_interval"] = integer("keepalive_interval", data["keepalive_interval"], 0, 65535, source)
    if "max_simultaneous_bindings" in data:
        kw["max_simultaneous_bindings"] = integer(
            "max_simultaneous_bindings", data["max_simultaneous_bindings"], 1, 1 << 16, source
        )
    if "encapsulations" in data:
        kw["encapsulations"] = _encapsulations(data["encapsulations"], source)
    if "log_file" in data:
        lf = data["log_file"]
        if not isinstance(lf, str) or not lf:
            raise ConfigError("log_file", "expected a path string", source=source)
        kw["log_file"] = lf if os.path.isabs(lf) else str(base_dir / lf)
    mns = data.get("mobile_node", [])
    if not isinstance(mns, list):
        raise ConfigError("mobile_node", "expected [[mobile_node]] tables", source=source)
    nodes = [_mobile_node(i, t, base_dir, source) for i, t in enumerate(mns)]
    seen: dict[str, int] = {}
    for i, mn in enumerate(nodes):
        if mn.home_address in seen:
            raise ConfigError(
                f"mobile_node[{i}].home_address",
                f"{mn.home_address} already used by mobile_node[{seen[mn.home_address]}]",
                source=source,
            )
        seen[mn.home_address] = i
    kw["mobile_nodes"] = tuple(nodes)
    try:
        return HAConfig(**kw)
    except ConfigError as exc:
        raise ConfigError(exc.key, exc.problem, source=source) from None


def load_ha_config(path: str | os.PathLike[str]) -> HAConfig:
    """Read a home agent TOML config; raises ConfigError(key, problem, source=path)."""
    p = Path(path)
    return ha_config_from_dict(read_toml(p, "config"), base_dir=p.resolve().parent, source=str(path))
