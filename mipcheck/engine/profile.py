"""The test profile (the PIXIT): how to reach the device and play its mobile nodes.

A TOML file with tables ``[dut]``, ``[mn]`` (or ``[[mn]]``, one per mobile
node), ``[tester]``, ``[applicability]`` and ``[commands]``; see
``examples/profile-vendor.toml``. Every bad value becomes a
:class:`~mipcheck.errors.ConfigError` naming its key; secrets are held as
:class:`~mipcheck.proto.secret.Secret` and :meth:`Profile.public` shows where
a secret comes from, never its value.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import InitVar, dataclass, field, replace
from pathlib import Path
from typing import Any

from mipcheck import fields
from mipcheck.errors import ConfigError
from mipcheck.proto.codec import HMAC_MD5
from mipcheck.proto.numbers import MIP_PORT
from mipcheck.proto.numbers import (
    RRQ_FLAG_LETTERS as FLAG_LETTERS,  # RFC 5944 3.3, most significant bit first
)
from mipcheck.proto.secret import Secret
from mipcheck.proto.security import SecurityAssociation, exposes_sa
from mipcheck.tomlfile import read_toml

ROLES = ("i-ha", "x-ha")
REPLAY_MODES = ("timestamp",)  # nonce replay protection: not supported by the suite yet
MAX_MOBILE_NODES = 256

#: PICS-like flags; None means "not declared" and lets a case accept either behaviour.
APPLICABILITY_FLAGS: dict[str, str] = {
    "trusted_networks": "the device is an i-HA with a trusted-subnet list (RFC 5265 4.3); default: role is i-ha",
    "nat_traversal": "the device implements Mobile IPv4 NAT traversal, RFC 3519 (RFC 5265 4.3 SHOULD); default true",
    "reverse_tunneling": "the device offers reverse tunnelling, RFC 3024; default: undeclared (accept or deny with "
    "137)",
    "reverse_tunnel_mandatory": "the device requires the T bit (RFC 3024 code 138); default false",
}

COMMAND_KEYS: dict[str, str] = {
    "read_log": "prints the device's log (HA-UNTRUSTED-LOG reads the lines it adds)",
    "start_unconfigured": "brings up the device with no trusted subnet configured (HA-TRUST-NONE-DEFAULT)",
    "stop_unconfigured": "restores the device after start_unconfigured",
    "unconfigured_target": "HOST[:PORT] of the unconfigured device; default: the device's own",
    "unconfigured_separate": "true when the unconfigured device is a separate instance (other cases may run meanwhile)",
    "send_to_home_address": "makes the device send an IP packet to {home_address} (HA-NATT-UDP-TUNNEL, HA to MN)",
    "timeout": "seconds a command may run; default 30",
}

_TABLES = {
    "dut": ("address", "port", "role"),
    "mn": (
        "home_address",
        "home_addresses",
        "home_agent",
        "spi",
        "secret",
        "secret_hex",
        "secret_file",
        "secret_env",
        "algorithm",
        "replay",
        "nai",
        "flags",
    ),
    "tester": (
        "trusted_sources",
        "untrusted_sources",
        "reply_timeout",
        "silence_window",
        "correspondent",
        "nat_care_of_address",
        "jobs",
        "lifetime",
    ),
    "applicability": tuple(APPLICABILITY_FLAGS),
    "commands": tuple(COMMAND_KEYS),
}


@exposes_sa
@dataclass(frozen=True)
class MobileNode:
    """A mobile node the tester may play: home address, home agent and their security association."""

    home_address: str
    home_agent: str | None  # None: the device's address
    spi: InitVar[int] = None  # InitVars, with secret and algorithm: they build sa
    secret: InitVar[Secret | bytes | str] = None
    algorithm: InitVar[str] = HMAC_MD5
    replay: str = "timestamp"
    nai: str | None = None
    secret_from: str = "inline"  # for reports: where the secret came from, never the secret
    flags: int = 0  # request flag bits set on every request (``[mn] flags``), besides D
    sa: SecurityAssociation = field(init=False)

    def __post_init__(self, spi: int, secret: Secret | bytes | str, algorithm: str) -> None:
        object.__setattr__(self, "sa", SecurityAssociation.checked(spi, secret, algorithm, where="mn"))

    @property
    def flag_letters(self) -> str:
        return "".join(letter for bit, letter in enumerate(FLAG_LETTERS) if self.flags >> (7 - bit) & 1)


@dataclass(frozen=True)
class Profile:
    dut_address: str
    dut_port: int = MIP_PORT
    role: str = "i-ha"
    mobile_nodes: tuple[MobileNode, ...] = ()
    trusted_sources: tuple[str, ...] = ()
    untrusted_sources: tuple[str, ...] = ()
    reply_timeout: float = 2.0  # longest wait for an expected reply (costs nothing when it comes)
    silence_window: float | None = None  # how long "no reply" is listened for; None: reply_timeout
    correspondent: str | None = None  # inner destination of tunnelled test packets; None: the device
    nat_care_of_address: str = (
        "192.0.2.1"  # Care-of Address "behind the NAT" (RFC 3519 tests); never sent to by the tester
    )
    jobs: int = 16
    lifetime: int = 300
    applicability: Mapping[str, bool] = field(default_factory=dict)
    commands: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None  # the file it came from
    builtin: bool = False

    @property
    def silence(self) -> float:
        return self.reply_timeout if self.silence_window is None else self.silence_window

    @property
    def target(self) -> tuple[str, int]:
        return (self.dut_address, self.dut_port)

    def home_agent_of(self, mn: MobileNode) -> str:
        return mn.home_agent or self.dut_address

    def flag(self, name: str) -> bool | None:
        """An applicability flag; None when the profile does not declare it (see defaults)."""
        if name in self.applicability:
            return self.applicability[name]
        if name == "trusted_networks":
            return self.role == "i-ha"
        if name == "nat_traversal":
            return True
        if name == "reverse_tunnel_mandatory":
            return False
        return None

    def public(self) -> dict[str, Any]:
        """The profile as reports show it: every value except secrets."""
        return {
            "source": self.source,
            "builtin": self.builtin,
            "dut": {"address": self.dut_address, "port": self.dut_port, "role": self.role},
            "mn": [
                {
                    "home_address": m.home_address,
                    "home_agent": self.home_agent_of(m),
                    "spi": m.spi,
                    "secret": f"<hidden: {m.secret_from}>",
                    "algorithm": m.algorithm,
                    "replay": m.replay,
                    "nai": m.nai,
                    "flags": list(m.flag_letters),
                }
                for m in self.mobile_nodes
            ],
            "tester": {
                "trusted_sources": list(self.trusted_sources),
                "untrusted_sources": list(self.untrusted_sources),
                "reply_timeout": self.reply_timeout,
                "silence_window": self.silence,
                "correspondent": self.correspondent,
                "nat_care_of_address": self.nat_care_of_address,
                "jobs": self.jobs,
                "lifetime": self.lifetime,
            },
            "applicability": {name: self.flag(name) for name in APPLICABILITY_FLAGS},
            "commands": dict(self.commands),
        }


# ------------------------------------------------------------------ parsing helpers


class _Reader:
    """Validates one profile document, remembering the file for error messages."""

    def __init__(self, source: str | None) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(key, problem, source=self.source)

    def table(self, doc: Mapping[str, Any], name: str) -> Mapping[str, Any]:
        value = doc.get(name, {})
        if not isinstance(value, Mapping):
            raise self.fail(name, "expected a table")
        self.known(value, name, _TABLES[name])
        return value

    def known(self, table: Mapping[str, Any], prefix: str, keys: tuple[str, ...]) -> None:
        for key in table:
            if key not in keys:
                raise self.fail(f"{prefix}.{key}", f"unknown key (known: {', '.join(keys)})")

    def address(self, key: str, value: Any) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"expected an IPv4 address as a string, got {type(value).__name__}")
        try:
            return str(ipaddress.IPv4Address(value.strip()))
        except ValueError:
            raise self.fail(key, f"{value!r} is not an IPv4 address") from None

    def addresses(self, key: str, value: Any, *, allow_ranges: bool = False) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise self.fail(key, "expected a list of IPv4 addresses")
        out: list[str] = []
        for item in value:
            if allow_ranges and isinstance(item, str) and "-" in item:
                out.extend(self._range(key, item))
            else:
                out.append(self.address(key, item))
        if len(set(out)) != len(out):
            raise self.fail(key, "lists an address twice")
        return tuple(out)

    def _range(self, key: str, text: str) -> list[str]:
        first, _, last = text.partition("-")
        a = ipaddress.IPv4Address(self.address(key, first))
        b = ipaddress.IPv4Address(self.address(key, last))
        if b < a or int(b) - int(a) >= MAX_MOBILE_NODES:
            raise self.fail(key, f"range {text!r} must go upwards and hold at most {MAX_MOBILE_NODES} addresses")
        return [str(ipaddress.IPv4Address(i)) for i in range(int(a), int(b) + 1)]

    def integer(self, key: str, value: Any, lo: int, hi: int) -> int:
        return fields.integer(key, value, lo, hi, self.source)

    def number(self, key: str, value: Any, lo: float, hi: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"expected a number of seconds, got {value!r}")
        if not lo <= value <= hi:
            raise self.fail(key, f"{value} is out of range {lo}..{hi}")
        return float(value)

    def choice(self, key: str, value: Any, choices: tuple[str, ...]) -> str:
        return fields.choice(key, value, choices, self.source)

    def sa(self, prefix: str, table: Mapping[str, Any]) -> tuple[SecurityAssociation, str]:
        base_dir = Path(self.source).parent if self.source else None
        return SecurityAssociation.from_table(table, prefix, base_dir=base_dir, source=self.source)


def _flags(r: _Reader, key: str, value: Any) -> int:
    """``["G", "T"]`` as the bits of the request's flags octet (RFC 5944 3.3)."""
    if isinstance(value, str):
        value = list(value)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise r.fail(key, f"expected a list of flag letters ({', '.join(FLAG_LETTERS)})")
    bits = 0
    for letter in value:
        if letter not in FLAG_LETTERS:
            raise r.fail(
                key,
                f"{letter!r} is not a Registration Request flag ({', '.join(FLAG_LETTERS)}; case matters: r and x are "
                "the reserved bits)",
            )
        bits |= 0x80 >> FLAG_LETTERS.index(letter)
    return bits


def _mobile_nodes(r: _Reader, raw: Any) -> tuple[MobileNode, ...]:
    if isinstance(raw, Mapping):
        entries = [("mn", raw)]
    elif isinstance(raw, list) and raw and all(isinstance(e, Mapping) for e in raw):
        entries = [(f"mn[{i}]", e) for i, e in enumerate(raw)]
    else:
        raise r.fail("mn", "missing: give a [mn] table or [[mn]] tables (home_address, spi, secret...)")
    nodes: list[MobileNode] = []
    for prefix, table in entries:
        r.known(table, prefix, _TABLES["mn"])
        if "home_address" in table and "home_addresses" in table:
            raise r.fail(f"{prefix}.home_addresses", "give home_address or home_addresses, not both")
        if "home_address" in table:
            homes = (r.address(f"{prefix}.home_address", table["home_address"]),)
        elif "home_addresses" in table:
            homes = r.addresses(f"{prefix}.home_addresses", table["home_addresses"], allow_ranges=True)
            if not homes:
                raise r.fail(f"{prefix}.home_addresses", "is empty")
        else:
            raise r.fail(f"{prefix}.home_address", "missing")
        ha = r.address(f"{prefix}.home_agent", table["home_agent"]) if "home_agent" in table else None
        sa, secret_from = r.sa(prefix, table)
        if table.get("replay", "timestamp") == "nonce":
            raise r.fail(
                f"{prefix}.replay", "'nonce' is not supported by the suite yet; configure timestamp replay protection"
            )
        replay = r.choice(f"{prefix}.replay", table.get("replay", "timestamp"), REPLAY_MODES)
        nai = table.get("nai")
        if nai is not None and (not isinstance(nai, str) or not nai or len(nai.encode()) > 255):
            raise r.fail(f"{prefix}.nai", "expected a non-empty string of at most 255 octets")
        flags = _flags(r, f"{prefix}.flags", table.get("flags", []))
        for home in homes:
            nodes.append(MobileNode(home, ha, sa.spi, sa.secret, sa.algorithm, replay, nai, secret_from, flags))
    if len(nodes) > MAX_MOBILE_NODES:
        raise r.fail("mn", f"{len(nodes)} mobile nodes; at most {MAX_MOBILE_NODES}")
    seen: set[str] = set()
    for node in nodes:
        if node.home_address in seen:
            raise r.fail("mn", f"home address {node.home_address} is listed twice")
        seen.add(node.home_address)
    return tuple(nodes)


def parse_profile(doc: Mapping[str, Any], source: str | None = None, *, target: str | None = None) -> Profile:
    """Validate a profile document (already parsed TOML); ``target`` is ``--target``."""
    r = _Reader(source)
    for key in doc:
        if key not in _TABLES:
            raise r.fail(key, f"unknown table (known: {', '.join(_TABLES)})")
    dut = r.table(doc, "dut")
    if target is not None:
        address, port = parse_target(target)
    else:
        if "address" not in dut:
            raise r.fail("dut.address", "missing (or give --target HOST[:PORT])")
        address = r.address("dut.address", dut["address"])
        port = r.integer("dut.port", dut.get("port", MIP_PORT), 1, 65535)
    role = r.choice("dut.role", dut.get("role", "i-ha"), ROLES)
    mobile_nodes = _mobile_nodes(r, doc.get("mn"))

    tester = r.table(doc, "tester")
    trusted = r.addresses("tester.trusted_sources", tester.get("trusted_sources", []))
    untrusted = r.addresses("tester.untrusted_sources", tester.get("untrusted_sources", []))
    if not trusted and role == "i-ha":
        raise r.fail(
            "tester.trusted_sources", "missing: the tester needs at least one source address the device trusts"
        )
    if not trusted:
        # An x-HA keeps no trust list (RFC 5265 3.7): any address of the tester's will do.
        trusted = (route_source(address),)
    both = set(trusted) & set(untrusted)
    if both:
        raise r.fail("tester.untrusted_sources", f"{sorted(both)[0]} is also a trusted source")
    reply_timeout = r.number("tester.reply_timeout", tester.get("reply_timeout", 2.0), 0.05, 60.0)
    silence = (
        r.number("tester.silence_window", tester["silence_window"], 0.05, 60.0) if "silence_window" in tester else None
    )
    correspondent = r.address("tester.correspondent", tester["correspondent"]) if "correspondent" in tester else None
    nat_coa = (
        r.address("tester.nat_care_of_address", tester["nat_care_of_address"])
        if "nat_care_of_address" in tester
        else "192.0.2.1"
    )
    jobs = r.integer("tester.jobs", tester.get("jobs", 16), 1, 256)
    lifetime = r.integer("tester.lifetime", tester.get("lifetime", 300), 1, 65534)

    appl = r.table(doc, "applicability")
    flags: dict[str, bool] = {}
    for key, value in appl.items():
        flags[key] = fields.boolean(f"applicability.{key}", value, r.source)

    cmds = r.table(doc, "commands")
    commands: dict[str, Any] = {}
    for key, value in cmds.items():
        full = f"commands.{key}"
        if key == "timeout":
            commands[key] = r.number(full, value, 1, 3600)
        elif key == "unconfigured_separate":
            commands[key] = fields.boolean(full, value, r.source)
        elif key == "unconfigured_target":
            try:
                parse_target(value, key=full)
            except ConfigError as exc:
                raise r.fail(full, exc.problem) from None
            commands[key] = value
        else:
            if not isinstance(value, str) or not value.strip():
                raise r.fail(full, "expected a non-empty command line")
            commands[key] = value
    if ("start_unconfigured" in commands) != ("stop_unconfigured" in commands):
        missing = "stop_unconfigured" if "start_unconfigured" in commands else "start_unconfigured"
        raise r.fail(f"commands.{missing}", "missing: start_unconfigured and stop_unconfigured go together")

    return Profile(
        dut_address=address,
        dut_port=port,
        role=role,
        mobile_nodes=mobile_nodes,
        trusted_sources=trusted,
        untrusted_sources=untrusted,
        reply_timeout=reply_timeout,
        silence_window=silence,
        correspondent=correspondent,
        nat_care_of_address=nat_coa,
        jobs=jobs,
        lifetime=lifetime,
        applicability=flags,
        commands=commands,
        source=source,
    )


def load_profile(path: str | os.PathLike[str], *, target: str | None = None) -> Profile:
    """Read and validate a profile file; ``target`` (``--target``) overrides ``[dut]``."""
    source = str(path)
    doc = read_toml(path, "--profile")
    return parse_profile(doc, source, target=target)


def route_source(address: str) -> str:
    """The source address the kernel would use towards ``address`` (a route lookup; nothing is sent)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((address, MIP_PORT))
        except OSError as exc:
            raise ConfigError(
                "tester.trusted_sources",
                f"no route to {address} to choose a source address from ({exc.strerror or exc}); give "
                "tester.trusted_sources",
            ) from None
        return s.getsockname()[0]


def parse_target(text: Any, *, key: str = "--target") -> tuple[str, int]:
    """``HOST[:PORT]`` with HOST an IPv4 address (no name lookups: traffic goes only where told)."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(key, "expected HOST[:PORT]")
    host, sep, port_text = text.strip().partition(":")
    try:
        host = str(ipaddress.IPv4Address(host))
    except ValueError:
        raise ConfigError(key, f"{text!r}: HOST must be an IPv4 address") from None
    port = MIP_PORT
    if sep:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ConfigError(key, f"{text!r}: PORT must be 1..65535")
        port = int(port_text)
    return host, port


def with_target(profile: Profile, address: str, port: int) -> Profile:
    return replace(profile, dut_address=address, dut_port=port)
