"""The mobile-node profile: one TOML file read by both sides of an MN test.

Why one file for both: the MN suite (mipcheck plays the i-HA, the x-HA and
the VPN gateway) and the reference mobile node (``mipcheck mn run``) must
agree on every address, SPI and key; reading the same profile is how they do.
The keys under ``[dut]``, ``[i_ha]``, ``[x_ha]``, ``[vpn]``, ``[networks]``
and ``[commands]`` are pinned by issue 10 (docs/mn-suite.md shows a full
profile); optional keys have the defaults named here. Errors are one line
naming the key (:class:`~mipcheck.errors.ConfigError`); secrets come from
``secret``/``secret_hex``/``secret_file``/``secret_env`` (MN-HA keys) and
``*_key_env``/``*_key_hex``/``*_key_file`` (ESP keys, hexadecimal text) and
are never shown.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mipcheck import keysource
from mipcheck.errors import ConfigError
from mipcheck.proto.codec import ALGORITHMS, HMAC_MD5
from mipcheck.proto.secret import Secret
from mipcheck.proto.security import SecurityAssociation
from mipcheck.tomlfile import read_toml

MIP_PORT = 434  # RFC 5944 3.3
NATT_PORT = 4500  # RFC 3948 2.2: UDP-encapsulated ESP
DEFAULT_MN_PORT = 49434  # where the reference MN sends from on each care-of address
DEFAULT_CORRESPONDENT = "192.0.2.7"  # source of the suite's echo requests (TEST-NET-1, never sent to)
NETWORKS = ("inside", "outside")  # what ``move`` takes besides "down"
DOWN = "down"
#: Scapy SecurityAssociation algorithm names (crypt_algo / auth_algo) and their key sizes in octets.
ENCRYPTIONS: dict[str, tuple[int, ...]] = {
    "NULL": (0,),
    "AES-CBC": (16, 24, 32),
    "3DES": (24,),
    "AES-CTR": (20, 28, 36),
}
INTEGRITIES: dict[str, tuple[int, ...] | None] = {
    "NULL": (0,),
    "HMAC-SHA1-96": None,  # any length (RFC 2404 recommends 20)
    "SHA2-256-128": None,
    "SHA2-384-192": None,
    "SHA2-512-256": None,
    "HMAC-MD5-96": None,
}
_SECTIONS = {
    "dut": {"role", "home_address", "interfaces", "t_monitor", "detection_period", "rereg_grace", "port", "lifetime"}
    | {"correspondent", "when_gated"},
    "i_ha": {"address", "port", "spi", "algorithm", *keysource.TABLE_KEYS},
    "x_ha": {"address", "port", "home_address", "spi", "algorithm", *keysource.TABLE_KEYS},
    "vpn": {"gateway", "port", "inner_address", "spi_in", "spi_out", "encryption", "integrity"}
    | {f"{k}_key_{s}" for k in ("encryption", "integrity") for s in ("env", "hex", "file")},
    "networks": {"inside", "outside", "inside_2", "outside_2"},
    "commands": {"move", "timeout"},
}


@dataclass(frozen=True)
class HomeAgentPeer:
    """One home agent of the mobile node: where it is and the registration's security association."""

    address: str
    port: int
    home_address: str  # the mobile node's home address with this home agent
    sa: SecurityAssociation
    secret_from: str = "inline"  # for reports: where the secret came from, never the secret

    @property
    def place(self) -> tuple[str, int]:
        return (self.address, self.port)


@dataclass(frozen=True)
class VpnPeer:
    """The VPN gateway and the static ESP SAs (tunnel mode, in UDP; no IKE on loopback)."""

    gateway: str
    port: int
    inner_address: str  # VPN-TIA (RFC 5265 2.3)
    spi_in: int  # toward the mobile node
    spi_out: int  # from the mobile node
    encryption: str
    encryption_key: Secret = field(repr=False)
    integrity: str = "HMAC-SHA1-96"
    integrity_key: Secret = field(repr=False, default_factory=lambda: Secret(b""))

    @property
    def place(self) -> tuple[str, int]:
        return (self.gateway, self.port)


@dataclass(frozen=True)
class MobileNodeProfile:
    """Everything both sides of an MN test agree on."""

    home_address: str
    interfaces: tuple[str, ...]
    t_monitor: float
    i_ha: HomeAgentPeer
    x_ha: HomeAgentPeer
    vpn: VpnPeer
    networks: Mapping[str, str]  # inside, outside, inside_2, outside_2 -> care-of address
    detection_period: float = 3.0
    rereg_grace: float | None = None  # N of RFC 5265 3.2.4; None: 20% of t_monitor
    port: int = DEFAULT_MN_PORT  # the reference MN's UDP port (a vendor device may use any)
    lifetime: int = 1800
    correspondent: str = DEFAULT_CORRESPONDENT
    when_gated: str = "drop"  # reference MN: "drop" or "queue" user data while the gate is shut
    move_command: str | None = None
    command_timeout: float = 30.0
    source: str | None = None

    @property
    def same_home_agent(self) -> bool:
        """RFC 5265 3.5: i-HA and x-HA share an address (the device must go outside without detection)."""
        return self.i_ha.address == self.x_ha.address

    @property
    def grace(self) -> float:
        return 0.2 * self.t_monitor if self.rereg_grace is None else self.rereg_grace

    def care_of_address(self, interface: str, network: str) -> str | None:
        """The care-of address ``interface`` gets on ``network`` ("inside"/"outside"), None for "down"."""
        if network == DOWN:
            return None
        if network not in NETWORKS:
            raise ConfigError("network", f"{network!r} is not one of inside, outside, down")
        index = self.interfaces.index(interface)
        key = network if index == 0 else f"{network}_{index + 1}"
        try:
            return self.networks[key]
        except KeyError:
            raise ConfigError(f"networks.{key}", f"missing: needed for interface {interface}") from None


# ---------------------------------------------------------------- reading


class _Reader:
    def __init__(self, source: str | None, base_dir: Path) -> None:
        self.source, self.base_dir = source, base_dir

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(key, problem, source=self.source)

    def table(self, doc: Mapping[str, Any], name: str, *, required: bool = True) -> Mapping[str, Any]:
        value = doc.get(name)
        if value is None:
            if required:
                raise self.fail(name, "missing section")
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(name, "expected a table")
        for key in value:
            if key not in _SECTIONS[name]:
                raise self.fail(f"{name}.{key}", "unknown key")
        return value

    def ipv4(self, table: Mapping[str, Any], section: str, key: str, default: str | None = None) -> str:
        value = table.get(key, default)
        if value is None:
            raise self.fail(f"{section}.{key}", "missing")
        try:
            return str(ipaddress.IPv4Address(value))
        except (ipaddress.AddressValueError, ValueError, TypeError):
            raise self.fail(f"{section}.{key}", f"{value!r} is not an IPv4 address") from None

    def integer(self, table: Mapping[str, Any], section: str, key: str, lo: int, hi: int, default: int | None) -> int:
        value = table.get(key, default)
        if value is None:
            raise self.fail(f"{section}.{key}", "missing")
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.fail(f"{section}.{key}", f"expected an integer in {lo}..{hi}, got {value!r}")
        return value

    def seconds(self, table: Mapping[str, Any], section: str, key: str, default: float | None) -> float | None:
        value = table.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self.fail(f"{section}.{key}", f"expected seconds >= 0, got {value!r}")
        return float(value)

    def sa(self, table: Mapping[str, Any], section: str) -> tuple[SecurityAssociation, str]:
        raw, origin = keysource.from_table(table, section, base_dir=self.base_dir, source=self.source)
        algorithm = table.get("algorithm", HMAC_MD5)
        if algorithm not in ALGORITHMS:
            raise self.fail(f"{section}.algorithm", f"{algorithm!r} is not one of {', '.join(ALGORITHMS)}")
        spi = self.integer(table, section, "spi", 0, 0xFFFFFFFF, None)
        try:
            return SecurityAssociation(spi, Secret(raw), algorithm), origin
        except ConfigError as exc:
            raise self.fail(f"{section}.{exc.key}", exc.problem) from None

    def esp_key(self, table: Mapping[str, Any], name: str, sizes: tuple[int, ...] | None, algorithm: str) -> Secret:
        given = [f"{name}_key_{s}" for s in ("env", "hex", "file") if f"{name}_key_{s}" in table]
        if not given:
            if sizes == (0,):
                return Secret(b"")
            raise self.fail(f"vpn.{name}_key_env", f"missing: give one of {name}_key_env, _hex or _file")
        if len(given) > 1:
            raise self.fail(f"vpn.{given[1]}", f"give only one of {', '.join(given)}")
        key = given[0]
        value = table[key]
        if not isinstance(value, str) or not value:
            raise self.fail(f"vpn.{key}", "expected a non-empty string")
        try:
            if key.endswith("_env"):
                text = keysource.from_env(value).decode("ascii", "replace")
            elif key.endswith("_file"):
                text = keysource.from_file(value, self.base_dir)[0].decode("ascii", "replace")
            else:
                text = value
            raw = keysource.from_hex(text)
        except keysource.SourceError as exc:
            raise self.fail(f"vpn.{key}", f"{exc} (ESP keys are hexadecimal text)") from None
        if sizes is not None and len(raw) not in sizes:
            want = " or ".join(str(s) for s in sizes)
            raise self.fail(f"vpn.{key}", f"{len(raw)} octets; {algorithm} needs {want}")
        return Secret(raw)


def parse_mobile_node_profile(
    doc: Mapping[str, Any], *, source: str | None = None, base_dir: Path = Path(".")
) -> MobileNodeProfile:
    """Check every key once; a :class:`ConfigError` names the first bad one."""
    r = _Reader(source, base_dir)
    for name in doc:
        if name not in _SECTIONS:
            raise r.fail(name, f"unknown section (known: {', '.join(_SECTIONS)})")
    dut = r.table(doc, "dut")
    if dut.get("role", "mn") != "mn":
        raise r.fail("dut.role", f'{dut.get("role")!r}: this profile is for a mobile node (role = "mn")')
    home_address = r.ipv4(dut, "dut", "home_address")
    interfaces = dut.get("interfaces", ["eth0"])
    if (
        not isinstance(interfaces, list)
        or not 1 <= len(interfaces) <= 2
        or not all(isinstance(i, str) and i and i.isprintable() and " " not in i for i in interfaces)
        or len(set(interfaces)) != len(interfaces)
    ):
        raise r.fail("dut.interfaces", f"expected one or two distinct interface names, got {interfaces!r}")
    t_monitor = r.seconds(dut, "dut", "t_monitor", 60.0)
    assert t_monitor is not None
    if t_monitor <= 0:
        raise r.fail("dut.t_monitor", "must be > 0")
    grace = r.seconds(dut, "dut", "rereg_grace", None)
    if grace is not None and not 0 < grace < t_monitor:
        raise r.fail("dut.rereg_grace", f"must be > 0 and shorter than t_monitor ({t_monitor} s)")
    detection_period = r.seconds(dut, "dut", "detection_period", 3.0)
    assert detection_period is not None
    when_gated = dut.get("when_gated", "drop")
    if when_gated not in ("drop", "queue"):
        raise r.fail("dut.when_gated", f"{when_gated!r} is not one of drop, queue")

    i_table, x_table = r.table(doc, "i_ha"), r.table(doc, "x_ha")
    i_sa, i_from = r.sa(i_table, "i_ha")
    x_sa, x_from = r.sa(x_table, "x_ha")
    i_ha = HomeAgentPeer(
        r.ipv4(i_table, "i_ha", "address"),
        r.integer(i_table, "i_ha", "port", 1, 65535, MIP_PORT),
        home_address,
        i_sa,
        i_from,
    )
    x_ha = HomeAgentPeer(
        r.ipv4(x_table, "x_ha", "address"),
        r.integer(x_table, "x_ha", "port", 1, 65535, MIP_PORT),
        r.ipv4(x_table, "x_ha", "home_address"),
        x_sa,
        x_from,
    )
    if i_ha.address == x_ha.address and i_ha.port != x_ha.port:
        raise r.fail("x_ha.port", "the i-HA and the x-HA share an address, so they must share the port too")

    v = r.table(doc, "vpn")
    encryption = v.get("encryption", "AES-CBC")
    if encryption not in ENCRYPTIONS:
        raise r.fail("vpn.encryption", f"{encryption!r} is not one of {', '.join(ENCRYPTIONS)}")
    integrity = v.get("integrity", "HMAC-SHA1-96")
    if integrity not in INTEGRITIES:
        raise r.fail("vpn.integrity", f"{integrity!r} is not one of {', '.join(INTEGRITIES)}")
    vpn = VpnPeer(
        r.ipv4(v, "vpn", "gateway"),
        r.integer(v, "vpn", "port", 1, 65535, NATT_PORT),
        r.ipv4(v, "vpn", "inner_address"),
        r.integer(v, "vpn", "spi_in", 256, 0xFFFFFFFF, None),
        r.integer(v, "vpn", "spi_out", 256, 0xFFFFFFFF, None),
        encryption,
        r.esp_key(v, "encryption", ENCRYPTIONS[encryption], encryption),
        integrity,
        r.esp_key(v, "integrity", INTEGRITIES[integrity], integrity),
    )
    if vpn.spi_in == vpn.spi_out:
        raise r.fail("vpn.spi_out", "must differ from spi_in (one SA per direction)")

    nets = r.table(doc, "networks")
    networks = {key: r.ipv4(nets, "networks", key) for key in nets}
    for name in NETWORKS:
        if name not in networks:
            raise r.fail(f"networks.{name}", "missing")
    if len(interfaces) == 2:
        for name in NETWORKS:
            networks.setdefault(f"{name}_2", "")
            if not networks[f"{name}_2"]:
                raise r.fail(f"networks.{name}_2", "missing: the second interface needs its own care-of addresses")
    addresses = [a for a in networks.values() if a]
    if len(set(addresses)) != len(addresses):
        raise r.fail("networks", "every care-of address must be different")

    commands = r.table(doc, "commands", required=False)
    move = commands.get("move")
    if move is not None and (not isinstance(move, str) or not move.strip()):
        raise r.fail("commands.move", "expected a shell command line")
    timeout = r.seconds(commands, "commands", "timeout", 30.0)
    assert timeout is not None
    return MobileNodeProfile(
        home_address=home_address,
        interfaces=tuple(interfaces),
        t_monitor=t_monitor,
        i_ha=i_ha,
        x_ha=x_ha,
        vpn=vpn,
        networks=networks,
        detection_period=detection_period,
        rereg_grace=grace,
        port=r.integer(dut, "dut", "port", 1, 65535, DEFAULT_MN_PORT),
        lifetime=r.integer(dut, "dut", "lifetime", 1, 0xFFFE, 1800),
        correspondent=r.ipv4(dut, "dut", "correspondent", DEFAULT_CORRESPONDENT),
        when_gated=when_gated,
        move_command=move,
        command_timeout=timeout or 30.0,
        source=source,
    )


def move_command_line(template: str, interface: str, network: str, care_of_address: str | None) -> str:
    """``[commands].move`` with its three substitutions (``{care_of_address}`` is empty for ``down``).

    The values are the profile's (interface names without spaces, IPv4 addresses) and the fixed network
    names, so they are put in as they are.
    """
    return (
        template.replace("{interface}", interface)
        .replace("{network}", network)
        .replace("{care_of_address}", care_of_address or "")
    )


def load_mobile_node_profile(path: str | os.PathLike[str]) -> MobileNodeProfile:
    p = Path(path)
    return parse_mobile_node_profile(read_toml(p, "profile"), source=str(path), base_dir=p.resolve().parent)
