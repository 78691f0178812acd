"""A shared key that never shows itself: configs, profiles and the layers hold keys in it.

Here rather than beside the Scapy fields so the home agent and the mobile
node can hold keys without importing Scapy.
"""

from __future__ import annotations


class Secret:
    """Opaque holder of a shared secret; its repr never shows the bytes."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes | str) -> None:
        self._value = value.encode() if isinstance(value, str) else bytes(value)

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return "Secret(<hidden>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))

    def __len__(self) -> int:
        return len(self._value)
