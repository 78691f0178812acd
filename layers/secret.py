"""A Scapy field that carries a shared key beside a packet, never on the wire.

The key lets an authentication extension compute its authenticator at build
time; it contributes no octets, and its value never appears in a repr, a
``show()`` or a log line (the guide: secrets are never printed).
:class:`Secret` itself lives in :mod:`mipcheck.proto.secret` (no Scapy) and
is re-exported here.
"""

from __future__ import annotations

from typing import Any

from scapy.fields import Field

from mipcheck.proto.secret import Secret

__all__ = ["Secret", "SecretField", "VirtualField"]


class VirtualField(Field[Any, Any]):
    """A field that exists on the packet object only: zero octets on the wire."""

    def __init__(self, name: str, default: Any = None) -> None:
        Field.__init__(self, name, default, fmt="0s")
        self.sz = 0

    def addfield(self, pkt: Any, s: bytes, val: Any) -> bytes:
        return s

    def getfield(self, pkt: Any, s: bytes) -> tuple[bytes, Any]:
        return s, self.default

    def i2len(self, pkt: Any, x: Any) -> int:
        return 0

    def randval(self) -> Any:  # fuzz() leaves virtual fields alone
        return self.default


class SecretField(VirtualField):
    """Virtual field holding a :class:`Secret`; accepts bytes or str."""

    def any2i(self, pkt: Any, x: Any) -> Any:
        if x is None or isinstance(x, Secret):
            return x
        return Secret(x)

    def i2repr(self, pkt: Any, x: Any) -> str:
        return "None" if x is None else "<hidden>"
