"""The one mobility security association type (RFC 5944 3.5.1, 1.2 "Mobility Security Association").

Why one type: every config, profile and keys file names the same three
things (SPI, shared key, algorithm), and a second copy of their validation
is a second place for a bug. Tables that add context (a home address, a
replay mode, where the secret came from) hold one of these rather than
repeating its fields. Scapy-free, so the cores can hold it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

from mipcheck import keysource
from mipcheck.errors import ConfigError

from .codec import ALGORITHMS, HMAC_MD5
from .secret import Secret

MIN_SPI = 256  # RFC 5944 1.2 / 3.5.1: SPIs 0-255 are reserved
MAX_SPI = 0xFFFFFFFF


@dataclass(frozen=True)
class SecurityAssociation:
    """SPI, shared key and algorithm; ``where`` names it in errors (e.g. ``"i_ha"``)."""

    spi: int
    secret: Secret
    algorithm: str = HMAC_MD5

    min_spi: ClassVar[int] = MIN_SPI  # AnalysisSA lowers it

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, where: str = "") -> None:
        prefix = f"{where}." if where else ""
        if isinstance(self.spi, bool) or not isinstance(self.spi, int):
            raise ConfigError(f"{prefix}spi", f"expected an integer, got {type(self.spi).__name__}")
        if not self.min_spi <= self.spi <= MAX_SPI:
            reserved = " (0-255 reserved)" if self.min_spi == MIN_SPI else ""
            raise ConfigError(f"{prefix}spi", f"{self.spi!r} is out of range {self.min_spi}..{MAX_SPI}{reserved}")
        if not isinstance(self.secret, Secret):
            if not isinstance(self.secret, bytes | bytearray | str):
                raise ConfigError(f"{prefix}secret", f"expected bytes or text, got {type(self.secret).__name__}")
            object.__setattr__(self, "secret", Secret(self.secret))
        if len(self.secret) == 0:
            raise ConfigError(f"{prefix}secret", "is empty")
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(f"{prefix}algorithm", f"{self.algorithm!r} is not one of {', '.join(ALGORITHMS)}")

    @classmethod
    def checked(
        cls, spi: Any, secret: Any, algorithm: Any = HMAC_MD5, *, where: str = "", source: str | None = None
    ) -> Self:
        """Construct; an error names ``where.spi`` (etc.) and the file, as config errors do."""
        try:
            return cls(spi, secret, algorithm)
        except ConfigError as exc:
            raise ConfigError(f"{where}.{exc.key}" if where else exc.key, exc.problem, source=source) from None

    @classmethod
    def from_table(
        cls,
        table: Mapping[str, Any],
        prefix: str,
        *,
        base_dir: Path | None,
        source: str | None,
        secret_prefix: str | None = None,
    ) -> tuple[Self, str]:
        """``spi``, ``algorithm`` and one secret source (:func:`mipcheck.keysource.from_table`) of a TOML table.

        Returns (SA, origin of the secret, for reports). Errors name
        ``prefix.spi`` etc.; ``secret_prefix`` (default ``prefix``) names the secret's keys.
        """
        if "spi" not in table:
            raise ConfigError(f"{prefix}.spi" if prefix else "spi", "missing", source=source)
        raw, origin = keysource.from_table(
            table, prefix if secret_prefix is None else secret_prefix, base_dir=base_dir, source=source
        )
        sa = cls.checked(table["spi"], raw, table.get("algorithm", HMAC_MD5), where=prefix, source=source)
        return sa, origin

    @property
    def key(self) -> bytes:
        return self.secret.reveal()

    def __eq__(self, other: object) -> bool:  # an AnalysisSA equals the SecurityAssociation it copies
        if not isinstance(other, SecurityAssociation):
            return NotImplemented
        return (self.spi, self.secret, self.algorithm) == (other.spi, other.secret, other.algorithm)

    def __hash__(self) -> int:
        return hash((self.spi, self.secret, self.algorithm))

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(spi={self.spi}, secret=<hidden>, algorithm={self.algorithm!r})"


class AnalysisSA(SecurityAssociation):
    """An SA for checking what a device sent: any 32-bit SPI, reserved ones included.

    Configs and profiles hold :class:`SecurityAssociation`: we never send a
    reserved SPI. A capture or a test vector may carry one, and its
    authenticator is still worth checking (the dissector's ``--key``, keys
    files, ``msg.verify()``).
    """

    min_spi: ClassVar[int] = 0


_Holder = TypeVar("_Holder", bound=type)


def exposes_sa(cls: _Holder) -> _Holder:
    """Give a record holding ``sa`` read-only ``spi``, ``secret``, ``algorithm`` and ``key`` properties.

    Apply above ``@dataclass``. The record takes the three as InitVars, so
    ``Record(..., spi=, secret=)`` calls and ``dataclasses.replace`` keep
    working; it builds its ``sa`` from them in ``__post_init__``, and these
    properties take the place of the InitVars' class defaults.
    """
    for name in ("spi", "secret", "algorithm", "key"):
        setattr(cls, name, property(lambda self, name=name: getattr(self.sa, name), doc=f"``sa.{name}``"))
    return cls
