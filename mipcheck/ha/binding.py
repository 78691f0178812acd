"""Mobility binding list of the home agent (RFC 5944 3.8.1), pure data and time as an argument.

One home address has one binding per care-of address; several only when
simultaneous bindings are in use. Expiry uses a heap with lazy deletion and
is compacted whenever stale entries outnumber live bindings, so memory stays
proportional to the bindings held, however many renewals arrive.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Mapping
from typing import NamedTuple

from mipcheck.proto.numbers import INFINITE_LIFETIME  # RFC 5944 3.3: all ones means infinity


class Binding(NamedTuple):
    """One mobility binding: home address -> care-of address until ``expires``.

    Immutable; a NamedTuple rather than a frozen dataclass because the home
    agent makes one per registration and a frozen dataclass costs eight times
    as much to build (every field goes through ``object.__setattr__``).
    """

    home_address: str
    care_of_address: str
    lifetime: int  # granted, seconds (65535: infinite)
    registered_at: float
    identification: int  # of the request that created or renewed it
    flags: int  # S B D M G r T x octet of that request
    source: tuple[str, int]  # IP source and UDP port of that request
    udp_tunnel: bool = False  # RFC 3519: tunnel data goes over UDP to tunnel_endpoint
    tunnel_endpoint: tuple[str, int] | None = None  # the NAT's public (address, port)
    keepalive: int | None = None  # interval announced in the UDP Tunnel Reply

    @property
    def expires(self) -> float:
        return math.inf if self.lifetime == INFINITE_LIFETIME else self.registered_at + self.lifetime

    def remaining(self, now: float) -> float:
        return self.expires - now

    @property
    def reverse_tunnel(self) -> bool:
        return bool(self.flags & 0x02)


class BindingView(Mapping[str, tuple[Binding, ...]]):
    """Read-only view: home address -> its bindings (oldest first)."""

    __slots__ = ("_d",)

    def __init__(self, d: dict[str, dict[str, Binding]]) -> None:
        self._d = d

    def __getitem__(self, key: str) -> tuple[Binding, ...]:
        return tuple(self._d[key].values())

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)


class BindingCache:
    """Bindings indexed by home address, care-of address and UDP tunnel endpoint."""

    def __init__(self) -> None:
        self._by_home: dict[str, dict[str, Binding]] = {}
        self._by_endpoint: dict[tuple[str, int], Binding] = {}
        self._heap: list[tuple[float, int, str, str]] = []  # (expires, seq, home, coa)
        self._seq = 0
        self._count = 0

    # ---- queries
    @property
    def view(self) -> BindingView:
        return BindingView(self._by_home)

    def __len__(self) -> int:
        return self._count

    def get(self, home_address: str) -> tuple[Binding, ...]:
        d = self._by_home.get(home_address)
        return tuple(d.values()) if d else ()

    def find(self, home_address: str, care_of_address: str) -> Binding | None:
        d = self._by_home.get(home_address)
        return d.get(care_of_address) if d else None

    def by_endpoint(self, endpoint: tuple[str, int]) -> Binding | None:
        return self._by_endpoint.get(endpoint)

    def __iter__(self) -> Iterator[Binding]:
        for d in self._by_home.values():
            yield from d.values()

    # ---- updates
    def add(self, binding: Binding, *, keep_others: bool) -> None:
        """RFC 5944 3.8.2.2: add the binding; previous ones stay only with simultaneous bindings."""
        home, coa, lifetime, registered_at, _ident, _flags, _source, _udp, endpoint, _keepalive = binding
        d = self._by_home.get(home)
        if d is None:
            d = self._by_home[home] = {}
        elif not keep_others and (len(d) > 1 or coa not in d):
            for old in list(d.values()):
                if old.care_of_address != coa:
                    self._drop(d, old)
        old = d.pop(coa, None)  # a renewal goes to the end: the newest binding is the last one
        if old is None:
            self._count += 1
        elif old.tunnel_endpoint is not None:
            self._unindex(old)
        d[coa] = binding
        if endpoint is not None:
            prev = self._by_endpoint.get(endpoint)
            if prev is not None:
                # The NAT mapping now belongs to another binding: the old one is no longer reachable there.
                pd = self._by_home[prev.home_address]
                pd[prev.care_of_address] = prev._replace(tunnel_endpoint=None)
            self._by_endpoint[endpoint] = binding
        if lifetime != INFINITE_LIFETIME:
            self._seq += 1
            heapq.heappush(self._heap, (registered_at + lifetime, self._seq, home, coa))  # == binding.expires
            if len(self._heap) > 2 * self._count + 1024:  # _maybe_compact's own test, saving a call
                self._maybe_compact()

    def remove(self, home_address: str, care_of_address: str) -> Binding | None:
        d = self._by_home.get(home_address)
        if not d or care_of_address not in d:
            return None
        b = d[care_of_address]
        self._drop(d, b)
        if not d:
            del self._by_home[home_address]
        self._maybe_compact()  # fewer live bindings: the stale-entry bound shrinks too
        return b

    def remove_all(self, home_address: str) -> tuple[Binding, ...]:
        d = self._by_home.pop(home_address, None)
        if not d:
            return ()
        out = tuple(d.values())
        for b in out:
            self._unindex(b)
        self._count -= len(out)
        self._maybe_compact()
        return out

    def expire(self, now: float) -> list[Binding]:
        """Remove and return every binding whose lifetime has run out at ``now``."""
        out: list[Binding] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            expires, _seq, home, coa = heapq.heappop(heap)
            d = self._by_home.get(home)
            b = d.get(coa) if d else None
            if b is None or b.expires != expires:
                continue  # stale entry: the binding was renewed or removed
            self._drop(d, b)
            if not d:
                del self._by_home[home]
            out.append(b)
        if out:
            self._maybe_compact()
        return out

    def next_expiry(self) -> float | None:
        """Earliest time at which expire() may remove something."""
        return self._heap[0][0] if self._heap else None

    # ---- internals
    def _drop(self, d: dict[str, Binding], b: Binding) -> None:
        del d[b.care_of_address]
        self._count -= 1
        self._unindex(b)

    def _unindex(self, b: Binding) -> None:
        if b.tunnel_endpoint is not None and self._by_endpoint.get(b.tunnel_endpoint) is b:
            del self._by_endpoint[b.tunnel_endpoint]

    def _maybe_compact(self) -> None:
        if len(self._heap) > 2 * self._count + 1024:
            # One entry per finite binding, numbered in iteration order. Runs about once per
            # 10,000 renewals with 10,000 bindings: no generator, no property in the loop.
            heap: list[tuple[float, int, str, str]] = []
            append = heap.append
            i = -1
            for d in self._by_home.values():
                for b in d.values():
                    i += 1
                    if b.lifetime != INFINITE_LIFETIME:
                        append((b.registered_at + b.lifetime, i, b.home_address, b.care_of_address))  # b.expires
            heapq.heapify(heap)
            self._heap = heap
            self._seq = len(heap)

    def check(self) -> None:
        """Assert internal consistency (used by the state-machine tests)."""
        count = 0
        for home, d in self._by_home.items():
            assert d, f"empty entry for {home}"
            for coa, b in d.items():
                assert b.home_address == home and b.care_of_address == coa
                count += 1
        assert count == self._count, (count, self._count)
        for ep, b in self._by_endpoint.items():
            assert b.tunnel_endpoint == ep
            assert self.find(b.home_address, b.care_of_address) is b, "endpoint index points at a removed binding"
        for b in self:
            if b.tunnel_endpoint is not None:
                assert self._by_endpoint.get(b.tunnel_endpoint) is b, (
                    "binding claims an endpoint the index gives to another"
                )
        live = {(b.home_address, b.care_of_address, b.expires) for b in self if b.lifetime != INFINITE_LIFETIME}
        in_heap = {(h, c, e) for e, _s, h, c in self._heap}
        assert live <= in_heap, "a binding has no expiry entry"
        assert len(self._heap) <= 2 * self._count + 1025
