"""Configuration of the test mobile node (``mipcheck mn``): one home agent, one interface.

Same rules as the home agent's config: checked once, one-line errors naming
the key, the secret from ``secret``, ``secret_hex``, ``secret_file`` or ``secret_env``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any

from mipcheck import keysource
from mipcheck.errors import ConfigError
from mipcheck.fields import REPLAY_MODES, boolean, choice, integer, ipv4
from mipcheck.proto.codec import HMAC_MD5
from mipcheck.proto.secret import Secret
from mipcheck.proto.security import SecurityAssociation, exposes_sa
from mipcheck.tomlfile import read_toml


@exposes_sa
@dataclass(frozen=True)
class MNConfig:
    """A mobile node's side of one registration: addresses, security association, options."""

    home_address: str
    home_agent: str
    spi: InitVar[int] = None  # InitVars, with algorithm below: they build sa
    secret: InitVar[Secret | bytes | str] = None
    ha_port: int = 434
    local_address: str = "127.0.0.1"
    local_port: int = 0
    care_of_address: str | None = None  # default: local_address (co-located)
    colocated: bool = True  # 'D' bit (RFC 5944 3.3): the mobile node decapsulates itself
    lifetime: int = 1800
    algorithm: InitVar[str] = HMAC_MD5
    replay: str = "timestamp"
    nai: str | None = None
    reverse_tunnel: bool = False  # 'T' bit (RFC 3024)
    minimal_encapsulation: bool = False  # 'M' bit (RFC 5944 3.3, RFC 2004): tunnel to us with minimal encapsulation
    simultaneous: bool = False  # 'S' bit
    udp_tunnel: bool = False  # add a UDP Tunnel Request (RFC 3519 3.1)
    force_udp: bool = False  # its 'F' flag
    timeout: float = 1.0  # first retransmission timeout, seconds
    attempts: int = 4  # transmissions before giving up
    #: RFC 5944 3.6.1.1, 3.7: register through this foreign agent: the request goes to it (port ``fa_port``),
    #: which relays it; the reply (relayed, or the agent's own denial) comes from it. None: directly.
    foreign_agent: str | None = None
    fa_port: int = 434
    sa: SecurityAssociation = field(init=False)

    def __post_init__(self, spi: int, secret: Secret | bytes | str, algorithm: str) -> None:
        for key in ("home_address", "home_agent", "local_address"):
            object.__setattr__(self, key, ipv4(key, getattr(self, key), None))
        if self.care_of_address is not None:
            object.__setattr__(self, "care_of_address", ipv4("care_of_address", self.care_of_address, None))
        if self.foreign_agent is not None:
            object.__setattr__(self, "foreign_agent", ipv4("foreign_agent", self.foreign_agent, None))
        integer("fa_port", self.fa_port, 1, 65535, None)
        object.__setattr__(self, "sa", SecurityAssociation(spi, secret, algorithm))
        integer("ha_port", self.ha_port, 1, 65535, None)
        integer("local_port", self.local_port, 0, 65535, None)
        integer("lifetime", self.lifetime, 0, 0xFFFF, None)
        choice("replay", self.replay, REPLAY_MODES, None)
        for key in ("colocated", "reverse_tunnel", "simultaneous", "udp_tunnel", "force_udp", "minimal_encapsulation"):
            boolean(key, getattr(self, key), None)
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float) or self.timeout <= 0:
            raise ConfigError("timeout", f"expected seconds > 0, got {self.timeout!r}")
        integer("attempts", self.attempts, 1, 100, None)
        if self.force_udp and not self.udp_tunnel:
            raise ConfigError("force_udp", "needs udp_tunnel = true")

    @property
    def coa(self) -> str:
        return self.care_of_address or self.local_address


_KEYS = {
    "home_address",
    "home_agent",
    "ha_port",
    "local_address",
    "local_port",
    "care_of_address",
    "colocated",
    "lifetime",
    "spi",
    *keysource.TABLE_KEYS,
    "algorithm",
    "replay",
    "nai",
    "reverse_tunnel",
    "minimal_encapsulation",
    "simultaneous",
    "udp_tunnel",
    "force_udp",
    "timeout",
    "attempts",
    "foreign_agent",
    "fa_port",
}


def mn_config_from_dict(data: Mapping[str, Any], *, base_dir: Path = Path("."), source: str | None = None) -> MNConfig:
    for k in data:
        if k not in _KEYS:
            raise ConfigError(k, "unknown key", source=source)
    for k in ("home_address", "home_agent", "spi"):
        if k not in data:
            raise ConfigError(k, "missing", source=source)
    kw: dict[str, Any] = {k: v for k, v in data.items() if k not in (*keysource.TABLE_KEYS, "spi", "algorithm")}
    if "nai" in kw and not isinstance(kw["nai"], str):
        raise ConfigError("nai", "expected a string", source=source)
    sa, _origin = SecurityAssociation.from_table(
        data, "", base_dir=base_dir, source=source, secret_prefix="mobile node"
    )
    kw.update(spi=sa.spi, secret=sa.secret, algorithm=sa.algorithm)
    try:
        return MNConfig(**kw)
    except ConfigError as exc:
        raise ConfigError(exc.key, exc.problem, source=source) from None


def load_mn_config(path: str | os.PathLike[str]) -> MNConfig:
    p = Path(path)
    return mn_config_from_dict(read_toml(p, "config"), base_dir=p.resolve().parent, source=str(path))
