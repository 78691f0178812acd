"""Configuration of the reference foreign agent: frozen dataclasses and a TOML loader.

Values are checked once, here, so the core never meets a bad one; every
problem is a one-line :class:`~mipcheck.errors.ConfigError` naming the key.
Security associations (FA-HA, RFC 5944 3.5.4; MN-FA, 3.5.3) are the one
:class:`~mipcheck.proto.security.SecurityAssociation` type, their secrets read
by :mod:`mipcheck.keysource` (``secret``, ``secret_hex``, ``secret_file``,
``secret_env``).

Choices where the RFCs leave room (docs/design/contracts.md, "Reference foreign agent"):

* ``max_lifetime`` is the longest Lifetime a request may ask for (code 69
  above it, RFC 5944 3.7.2.3); ``registration_lifetime``, the value the
  Mobility Agent Advertisement carries (2.1.1), defaults to it and may not
  exceed it: a mobile node asking for what was advertised is never denied 69.
* ``flags`` are the advertisement's letters. F is required (this is a foreign
  agent); R and B are policy; T means reverse tunnelling (RFC 3024) and must
  agree with ``reverse_tunneling``. M offers minimal encapsulation (RFC 2004)
  besides IP-in-IP, which is always decapsulated (RFC 5944 4.1): protocol 55 to
  a care-of address is decapsulated, and a visitor registered with 'M' and 'T'
  is reverse-tunnelled with it (RFC 3024). G (GRE), H (home agent service) and
  U, X, I are not offered.
* ``link`` is where unsolicited advertisements go: a loopback UDP address and
  port standing in for the link's broadcast (ICMP broadcast needs raw sockets).
  Without it only solicited advertisements are sent. On a real link
  (``mipcheck fa serve --link IFACE``, :mod:`mipcheck.fa.link`) it is replaced
  by the link itself and ``upstream`` by the host's routing.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mipcheck.errors import ConfigError
from mipcheck.fields import boolean, integer, ipv4
from mipcheck.proto.agent import FLAG_BITS
from mipcheck.proto.numbers import INFINITE_LIFETIME
from mipcheck.proto.security import SecurityAssociation
from mipcheck.tomlfile import read_toml

Address = tuple[str, int]

#: Advertisement letters this foreign agent can honour (RFC 5944 2.1.1, RFC 3024).
OFFERED_FLAGS = "RBFMT"
#: Advertisement letters it cannot: why, for the error message.
NOT_OFFERED = {
    "H": "this agent offers no home agent service",
    "G": "this agent decapsulates IP-in-IP (RFC 2003) and minimal encapsulation (RFC 2004 with 'M'), not GRE",
    "r": "'r' is sent as zero (RFC 5944 2.1.1)",
    "U": "UDP tunnelling (RFC 3519) is not offered to mobile nodes",
    "X": "registration revocation (RFC 3543) is not supported",
    "I": "regional registration (RFC 4857) is not supported",
}
ADVERTISEMENT_DESTINATIONS = ("255.255.255.255", "224.0.0.1")  # RFC 5944 2.1: limited broadcast or all-systems
MAX_ICMP_LIFETIME = 0xFFFF


def _address_pair(key: str, value: Any, source: str | None = None) -> Address:
    """``"a.b.c.d:port"`` or a two-item list ``["a.b.c.d", port]``."""
    if isinstance(value, str) and value.count(":") == 1:
        host, _, port_text = value.partition(":")
        if not port_text.isdigit():
            raise ConfigError(key, f"{value!r}: the port is not a number", source=source)
        return ipv4(key, host, source), integer(key, int(port_text), 1, 65535, source)
    if isinstance(value, list | tuple) and len(value) == 2:
        return ipv4(key, value[0], source), integer(key, value[1], 1, 65535, source)
    raise ConfigError(key, f'expected "address:port", got {value!r}', source=source)


@dataclass(frozen=True)
class HomeAgentPeer:
    """A home agent this foreign agent relays to, and their FA-HA security association (RFC 5944 3.5.4)."""

    address: str
    port: int = 434  # RFC 5944 3.7.2.2: UDP Destination Port 434; another for loopback labs
    sa: SecurityAssociation | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", ipv4("home_agent.address", self.address))
        integer("home_agent.port", self.port, 1, 65535)
        if self.sa is not None and not isinstance(self.sa, SecurityAssociation):
            raise ConfigError("home_agent.sa", f"expected a SecurityAssociation, got {type(self.sa).__name__}")

    @property
    def place(self) -> Address:
        return (self.address, self.port)


@dataclass(frozen=True)
class VisitorSA:
    """A mobile node this foreign agent shares a mobility security association with (MN-FA, RFC 5944 3.5.3)."""

    home_address: str
    sa: SecurityAssociation

    def __post_init__(self) -> None:
        object.__setattr__(self, "home_address", ipv4("mobile_node.home_address", self.home_address))
        if not isinstance(self.sa, SecurityAssociation):
            raise ConfigError("mobile_node.sa", f"expected a SecurityAssociation, got {type(self.sa).__name__}")


@dataclass(frozen=True)
class FAConfig:
    """Everything the foreign agent core and its transport need."""

    address: str = "127.0.0.1"  # where mobile nodes send requests, and the source of relayed ones
    port: int = 434  # RFC 5944 1.8; 0 in tests: any free port
    care_of_addresses: tuple[str, ...] = ()  # () -> (address,); RFC 5944 3.7.1: at least one
    advertise_interval: float = 1.0  # seconds between unsolicited advertisements
    advertisement_lifetime: int | None = None  # ICMP Lifetime; None -> 3 x advertise_interval (RFC 1256)
    registration_lifetime: int | None = None  # advertised (2.1.1); None -> max_lifetime
    max_lifetime: int = 1800  # longest Lifetime accepted in a request, else code 69
    flags: str = "F"  # advertisement letters, from OFFERED_FLAGS
    reverse_tunneling: bool | None = None  # RFC 3024; None -> as flags say ('T')
    reverse_tunnel_required: bool = False  # RFC 3024: deny requests without 'T' with code 75
    home_agents: tuple[HomeAgentPeer, ...] = ()  # () -> relay to any home agent, port 434, no FA-HA SA
    mobile_nodes: tuple[VisitorSA, ...] = ()  # MN-FA security associations
    require_mn_fa_auth: bool = False  # deny (67) requests without a valid MN-FA authenticator
    max_visitors: int = 1024  # visitor list and pending requests together, else code 66
    pending_timeout: float = 7.0  # seconds a relayed request waits for its reply
    reply_on_timeout: bool = True  # then deny it with code 78 (registration timeout)
    link: Address | None = None  # loopback stand-in for the link's broadcast; None: solicited only
    advertisement_destination: str = "255.255.255.255"  # IP destination written in unsolicited advertisements
    routes_common_traffic: bool = False  # ICMP code 0; False -> 16 (RFC 5944 2.1)
    upstream: Address | None = None  # loopback stand-in for the default router (visitor traffic, no 'T')
    log_file: str | None = None
    _home_agents: Mapping[str, HomeAgentPeer] = field(init=False, repr=False, compare=False)
    _mn_fa: Mapping[str, SecurityAssociation] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", ipv4("address", self.address))
        if ipaddress.IPv4Address(self.address).is_unspecified:
            raise ConfigError("address", "must be a unicast address of the foreign agent, not 0.0.0.0")
        integer("port", self.port, 0, 65535)
        coas = tuple(ipv4(f"care_of_addresses[{i}]", a) for i, a in enumerate(self.care_of_addresses))
        if not coas:
            coas = (self.address,)
        if len(set(coas)) != len(coas):
            raise ConfigError("care_of_addresses", "lists an address twice")
        if len(coas) > 62:  # 6 + 4N must fit the one-octet Length (RFC 5944 2.1.1)
            raise ConfigError("care_of_addresses", f"{len(coas)} addresses; at most 62 fit one advertisement")
        for i, a in enumerate(coas):
            ip = ipaddress.IPv4Address(a)
            if ip.is_unspecified or ip.is_multicast or a == "255.255.255.255":
                raise ConfigError(f"care_of_addresses[{i}]", f"{a} is not a unicast address")
        object.__setattr__(self, "care_of_addresses", coas)
        interval = self.advertise_interval
        if isinstance(interval, bool) or not isinstance(interval, int | float) or not 0 < interval <= 0x5555:
            raise ConfigError("advertise_interval", f"expected seconds in (0, {0x5555}], got {interval!r}")
        object.__setattr__(self, "advertise_interval", float(interval))
        if self.advertisement_lifetime is None:
            object.__setattr__(self, "advertisement_lifetime", min(MAX_ICMP_LIFETIME, math.ceil(3 * interval)))
        integer("advertisement_lifetime", self.advertisement_lifetime, 1, MAX_ICMP_LIFETIME)
        if self.advertisement_lifetime < interval:
            raise ConfigError(
                "advertisement_lifetime",
                f"{self.advertisement_lifetime} s is shorter than advertise_interval ({interval} s): "
                "every advertisement would expire before the next",
            )
        integer("max_lifetime", self.max_lifetime, 1, INFINITE_LIFETIME)
        if self.registration_lifetime is None:
            object.__setattr__(self, "registration_lifetime", self.max_lifetime)
        integer("registration_lifetime", self.registration_lifetime, 1, INFINITE_LIFETIME)
        if self.registration_lifetime > self.max_lifetime:
            raise ConfigError(
                "registration_lifetime",
                f"{self.registration_lifetime} is longer than max_lifetime ({self.max_lifetime}): a request for the "
                "advertised lifetime would be denied with 69",
            )
        object.__setattr__(self, "flags", _flags(self.flags))
        rt = self.reverse_tunneling
        if rt is None:
            object.__setattr__(self, "reverse_tunneling", "T" in self.flags)
        else:
            boolean("reverse_tunneling", rt)
            if rt != ("T" in self.flags):
                raise ConfigError(
                    "reverse_tunneling",
                    f"is {str(rt).lower()} but flags {'do not ' if rt else ''}advertise 'T' (RFC 3024)",
                )
        boolean("reverse_tunnel_required", self.reverse_tunnel_required)
        if self.reverse_tunnel_required and not self.reverse_tunneling:
            raise ConfigError("reverse_tunnel_required", "needs reverse tunnelling ('T' in flags)")
        by_address: dict[str, HomeAgentPeer] = {}
        for peer in self.home_agents:
            if not isinstance(peer, HomeAgentPeer):
                raise ConfigError("home_agents", f"expected HomeAgentPeer, got {type(peer).__name__}")
            if peer.address in by_address:
                raise ConfigError("home_agent.address", f"{peer.address} is configured twice")
            by_address[peer.address] = peer
        object.__setattr__(self, "home_agents", tuple(self.home_agents))
        object.__setattr__(self, "_home_agents", by_address)
        mn_fa: dict[str, SecurityAssociation] = {}
        for mn in self.mobile_nodes:
            if not isinstance(mn, VisitorSA):
                raise ConfigError("mobile_nodes", f"expected VisitorSA, got {type(mn).__name__}")
            if mn.home_address in mn_fa:
                raise ConfigError("mobile_node.home_address", f"{mn.home_address} is configured twice")
            mn_fa[mn.home_address] = mn.sa
        object.__setattr__(self, "mobile_nodes", tuple(self.mobile_nodes))
        object.__setattr__(self, "_mn_fa", mn_fa)
        boolean("require_mn_fa_auth", self.require_mn_fa_auth)
        integer("max_visitors", self.max_visitors, 1, 1 << 20)
        timeout = self.pending_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 3600:
            raise ConfigError("pending_timeout", f"expected seconds in (0, 3600], got {timeout!r}")
        object.__setattr__(self, "pending_timeout", float(timeout))
        boolean("reply_on_timeout", self.reply_on_timeout)
        for key in ("link", "upstream"):
            value = getattr(self, key)
            if value is not None:
                object.__setattr__(self, key, _address_pair(key, value))
        if self.advertisement_destination not in ADVERTISEMENT_DESTINATIONS:
            raise ConfigError(
                "advertisement_destination",
                f"{self.advertisement_destination!r} is not one of {', '.join(ADVERTISEMENT_DESTINATIONS)} "
                "(RFC 5944 2.1)",
            )
        boolean("routes_common_traffic", self.routes_common_traffic)
        if self.log_file is not None and not isinstance(self.log_file, str):
            raise ConfigError("log_file", "expected a path string")

    # ---- queries the core asks
    def home_agent(self, address: str) -> HomeAgentPeer | None:
        """The configured peer; with no ``home_agents`` configured every address is a peer without an SA."""
        if not self.home_agents:
            return HomeAgentPeer(address) if _unicast(address) else None
        return self._home_agents.get(address)

    def mn_fa_sa(self, home_address: str) -> SecurityAssociation | None:
        return self._mn_fa.get(home_address)

    @property
    def advertised_flags(self) -> int:
        """The 16-bit flags field of the Mobility Agent Advertisement extension (RFC 5944 2.1.1)."""
        bits = 0
        for letter in self.flags:
            bits |= FLAG_BITS[letter]
        return bits


def _unicast(address: str) -> bool:
    ip = ipaddress.IPv4Address(address)
    return not (ip.is_unspecified or ip.is_multicast or address == "255.255.255.255")


def _flags(value: Any, source: str | None = None) -> str:
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        value = "".join(value)
    if not isinstance(value, str):
        raise ConfigError("flags", f'expected advertisement letters like "RFT", got {value!r}', source=source)
    for letter in value:
        if letter in NOT_OFFERED:
            raise ConfigError("flags", f"{letter!r} is not offered: {NOT_OFFERED[letter]}", source=source)
        if letter not in OFFERED_FLAGS:
            raise ConfigError("flags", f"{letter!r} is not an advertisement flag ({OFFERED_FLAGS})", source=source)
    if len(set(value)) != len(value):
        raise ConfigError("flags", f"{value!r} repeats a letter", source=source)
    if "F" not in value:
        raise ConfigError("flags", "must include 'F': this is a foreign agent (RFC 5944 2.1.1)", source=source)
    return "".join(letter for letter in OFFERED_FLAGS if letter in value)


# --------------------------------------------------------------------------- loading

_FA_KEYS = {
    "address",
    "port",
    "care_of_addresses",
    "advertise_interval",
    "advertisement_lifetime",
    "registration_lifetime",
    "max_lifetime",
    "flags",
    "reverse_tunneling",
    "reverse_tunnel_required",
    "home_agent",
    "mobile_node",
    "require_mn_fa_auth",
    "max_visitors",
    "pending_timeout",
    "reply_on_timeout",
    "link",
    "advertisement_destination",
    "routes_common_traffic",
    "upstream",
    "log_file",
}
_SA_KEYS = {"spi", "algorithm", "secret", "secret_hex", "secret_file", "secret_env"}


def _table(where: str, table: Any, keys: set[str], source: str | None) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(where, f"expected a table ([[{where.split('[')[0]}]])", source=source)
    for k in table:
        if k not in keys:
            raise ConfigError(f"{where}.{k}", "unknown key", source=source)
    return table


def _home_agent(i: int, table: Any, base_dir: Path, source: str | None) -> HomeAgentPeer:
    where = f"home_agent[{i}]"
    table = _table(where, table, {"address", "port"} | _SA_KEYS, source)
    if "address" not in table:
        raise ConfigError(f"{where}.address", "missing", source=source)
    address = ipv4(f"{where}.address", table["address"], source)
    if not _unicast(address):
        raise ConfigError(f"{where}.address", f"{address} is not a unicast address", source=source)
    port = integer(f"{where}.port", table.get("port", 434), 1, 65535, source)
    sa = None
    if _SA_KEYS & set(table):  # an FA-HA security association is optional
        sa, _origin = SecurityAssociation.from_table(table, where, base_dir=base_dir, source=source)
    return HomeAgentPeer(address, port, sa)


def _mobile_node(i: int, table: Any, base_dir: Path, source: str | None) -> VisitorSA:
    where = f"mobile_node[{i}]"
    table = _table(where, table, {"home_address"} | _SA_KEYS, source)
    if "home_address" not in table:
        raise ConfigError(f"{where}.home_address", "missing", source=source)
    home = ipv4(f"{where}.home_address", table["home_address"], source)
    sa, _origin = SecurityAssociation.from_table(table, where, base_dir=base_dir, source=source)
    return VisitorSA(home, sa)


def fa_config_from_dict(data: Mapping[str, Any], *, base_dir: Path = Path("."), source: str | None = None) -> FAConfig:
    for k in data:
        if k not in _FA_KEYS:
            raise ConfigError(k, "unknown key", source=source)
    kw: dict[str, Any] = {}
    simple = {
        "address",
        "port",
        "advertise_interval",
        "advertisement_lifetime",
        "registration_lifetime",
        "max_lifetime",
        "reverse_tunneling",
        "reverse_tunnel_required",
        "require_mn_fa_auth",
        "max_visitors",
        "pending_timeout",
        "reply_on_timeout",
        "advertisement_destination",
        "routes_common_traffic",
    }
    for key in simple & set(data):
        kw[key] = data[key]
    if "care_of_addresses" in data:
        coas = data["care_of_addresses"]
        if not isinstance(coas, list):
            raise ConfigError("care_of_addresses", 'expected a list like ["127.0.0.1"]', source=source)
        kw["care_of_addresses"] = tuple(coas)
    if "flags" in data:
        kw["flags"] = _flags(data["flags"], source)
    for key in ("link", "upstream"):
        if key in data:
            kw[key] = _address_pair(key, data[key], source)
    if "log_file" in data:
        lf = data["log_file"]
        if not isinstance(lf, str) or not lf:
            raise ConfigError("log_file", "expected a path string", source=source)
        kw["log_file"] = lf if os.path.isabs(lf) else str(base_dir / lf)
    for key, name in (("home_agent", "home_agents"), ("mobile_node", "mobile_nodes")):
        tables = data.get(key, [])
        if not isinstance(tables, list):
            raise ConfigError(key, f"expected [[{key}]] tables", source=source)
        reader = _home_agent if key == "home_agent" else _mobile_node
        kw[name] = tuple(reader(i, t, base_dir, source) for i, t in enumerate(tables))
    try:
        return FAConfig(**kw)
    except ConfigError as exc:
        raise ConfigError(exc.key, exc.problem, source=source) from None


def load_fa_config(path: str | os.PathLike[str]) -> FAConfig:
    """Read a foreign agent TOML config; raises ConfigError(key, problem, source=path)."""
    p = Path(path)
    return fa_config_from_dict(read_toml(p, "config"), base_dir=p.resolve().parent, source=str(path))
