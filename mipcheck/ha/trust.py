"""Who the i-HA trusts (RFC 5265 4.3) and how often it may say so in its log.

Trust is decided by the IP source address of the request, never by a field
inside it; no network is trusted unless configured. The log limiter is a
token bucket whose only clock is the ``now`` passed in, so a flood from
untrusted (or spoofed) sources cannot fill the log and tests need no sleeps.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


class TrustPolicy:
    """Membership of a source address in the configured trusted networks, with a bounded cache."""

    _CACHE_LIMIT = 4096

    def __init__(self, networks: Iterable[ipaddress.IPv4Network], *, trust_all: bool = False) -> None:
        self.networks = tuple(networks)
        self.trust_all = trust_all
        self._cache: dict[str, bool] = {}

    def is_trusted(self, address: str) -> bool:
        hit = self._cache.get(address)
        if hit is not None:
            return hit
        if self.trust_all:
            result = True
        else:
            try:
                ip = ipaddress.IPv4Address(address)
            except ValueError:
                result = False
            else:
                result = any(ip in net for net in self.networks)
        if len(self._cache) >= self._CACHE_LIMIT:
            self._cache.clear()
        self._cache[address] = result
        return result


class LogRateLimiter:
    """Token bucket: ``burst`` lines at once, then ``rate`` lines a second; counts what it held back."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = float(rate)
        self.burst = float(burst)
        self._tokens = float(burst)
        self._last: float | None = None
        self.suppressed = 0  # held back since the last line let through

    def allow(self, now: float) -> tuple[bool, int]:
        """(may log now, how many lines were held back before this one)."""
        if self._last is not None and now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        if self._last is None or now > self._last:
            self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            held, self.suppressed = self.suppressed, 0
            return True, held
        self.suppressed += 1
        return False, 0
