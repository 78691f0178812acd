"""Sans-IO foreign agent: octets, source and time in; octets to send and decisions out.

No sockets, no sleeping, no clock: every call takes ``now``. It speaks the
actor interface of docs/design/contracts.md (``receive_datagram``,
``datagrams_to_send``, ``next_event``, ``get_timer``, ``handle_timer``), so
the simulated network and the asyncio shell (:mod:`mipcheck.fa.server`) drive
it alike. What arrives on its one UDP place is told apart by the first octet:
1 a Registration Request (from a mobile node), 3 a Registration Reply (from
a home agent), 4 RFC 3519 MIP Tunnel Data (from a home agent), 0x4_ an IPv4
packet carried over the loopback "link": an Agent Solicitation, an IP-in-IP
packet for a care-of address, or a visitor's own packet.

What it does, and where the RFCs say so:

* Agent advertisements (RFC 5944 2.1, 2.3.2) every ``advertise_interval`` to
  ``config.link`` and in answer to a solicitation (to the solicitor). The
  Sequence Number counts every advertisement sent, 0xffff then 256. 'B' is
  added while the visitor list and the pending requests fill ``max_visitors``.
* Registration Requests (3.7.2): the checks below, a denial (3.7.2.3: Home
  Address, Home Agent, Identification copied; Lifetime copied, or for 69 the
  longest accepted) or the relay (3.7.2.2: octets unchanged up to and
  including the authorization-enabling extension, the extensions after it
  removed, an FA-HA authentication extension appended when this agent shares
  a security association with the home agent). A relayed request is pending,
  keyed by (home address, Identification), until its reply or
  ``pending_timeout`` (then denied with 78 when ``reply_on_timeout``).
* Registration Replies (3.7.3): matched to a pending request by home address,
  the low-order 32 bits of the Identification and the home agent it was
  relayed to; anything else is silently discarded (3.7.3.1). The extensions
  after the MN-HA authentication extension are removed, an MN-FA
  authentication extension appended when there is an MN-FA association
  (3.7.3.2), and the reply goes to the address and port the request came from.
  An accepting reply adds or renews the visitor (Lifetime: the smaller of
  requested and granted, counted from the relay); a granted Lifetime 0 ends it.
* Data: IP-in-IP (RFC 2003) to a care-of address, or MIP Tunnel Data over UDP
  (RFC 3519 3.3, for loopback labs), and with "M" in the flags minimal
  encapsulation (RFC 2004, protocol 55), is decapsulated and the inner packet
  handed to the visitor whose home address it is for (sent to its link
  address and port); a packet for no visitor is discarded, never forwarded
  (RFC 5944 4.2.2: a routing loop). A visitor's own packet is reverse-tunnelled
  to its home agent when it registered with 'T' (RFC 3024; outer source the
  care-of address, Type of Service and DF copied from the inner header, RFC
  2003 3.1; minimally encapsulated instead when it also registered 'M': the
  reverse tunnel uses the encapsulation the registration asked for, RFC 3024
  5.2, foreign agent considerations, read in substance since the stored
  copies show only its first page; RFC 2004 3: S = 1, the original source in
  the forwarding header, 12 octets), else forwarded to ``config.upstream`` (the default router, RFC
  5944 2.1). On a real link (:mod:`mipcheck.fa.link`) the same datagrams are
  carried by raw sockets and a TUN device instead of the loopback stand-ins.

Checks of a Registration Request, in order; each denial names its code:

====  =================================================================  ==========================
code  when                                                               where
====  =================================================================  ==========================
 --   shorter than the 24-octet fixed part: dropped (nothing to copy)    5944 3.3, 3.7.2.3
 70   the extension area overruns the message                            5944 1.9, 3.7.2.1
 --   an unrecognised extension 0-127 meant for this agent: dropped      5944 1.9
 67   MN-FA authentication missing (when required) or not verifying     5944 3.7.2.1, 3.5.3
 97   Home Address 0.0.0.0 and no NAI extension                          RFC 2794, IANA registry
 98   Home Agent field not a unicast address                             IANA registry
 65   Home Agent not one this agent relays to                            5944 3.7.2.3 (policy)
 66   'B' advertised, or the visitor list is full, for a new visitor     5944 2.1.1
 69   Lifetime longer than ``max_lifetime``                              5944 3.7.2.3
 72   'G' requested, or 'M' without "M" in flags                         5944 3.7.2.3, 2.1.1
 74   'T' requested, reverse tunnelling not offered                      RFC 3024
 75   'T' not set, reverse tunnelling mandatory                          RFC 3024
 77   'D' not set and the Care-of Address is none of this agent's        5944 3.7.2.3
====  =================================================================  ==========================

At most one denial a second goes to the same mobile node (RFC 5944 3.7.2);
those beyond are dropped. Extensions before the authorization-enabling one
are the home agent's: relayed untouched, whatever their type.

The code numbers are the IANA registry's (:data:`mipcheck.proto.numbers.REPLY_CODES`).
The section numbers follow RFC 5944's table of contents; the stored copies of
RFC 5944, RFC 3344 and RFC 3024 that could be reached show only their first
pages, so the sentences of 3.7.2-3.7.3 are read here, not quoted (as in the
requirement catalogue's notes on 3.8.2.1). Checked again for issue 12: what
the search tool holds of 3.7 (its opening and 3.7.1's) agrees with this
agent (it originates a Reply only to deny); 3.7.2 itself still could not be
read, so the order above (the request's form, then MN-FA authentication, then
policy) stays this agent's choice, not a quotation.
"""

from __future__ import annotations

import ipaddress
import socket
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mipcheck.errors import ConfigError
from mipcheck.proto import codec, minenc
from mipcheck.proto import numbers as n
from mipcheck.proto.agent import FLAG_BITS, build_advertisement, next_sequence, solicitation
from mipcheck.proto.extensions import AUTHORIZATION_ENABLING_TYPES, EXTENSIONS
from mipcheck.proto.identification import low32
from mipcheck.proto.ip import PROTO_ICMP, PROTO_IPIP, build_ipv4, parse_ipv4
from mipcheck.proto.security import SecurityAssociation

from .behaviour import Behaviour
from .config import FAConfig, HomeAgentPeer
from .faults import behaviour_for, check_faults

Address = tuple[str, int]

# Decision.outcome values.
RELAYED, DENIED, DROPPED, IGNORED = "relayed", "denied", "dropped", "ignored"
ADVERTISED, DELIVERED, TUNNELLED, FORWARDED = "advertised", "delivered", "tunnelled", "forwarded"
EXPIRED, TIMED_OUT = "expired", "timed-out"
OUTCOMES = (RELAYED, DENIED, DROPPED, IGNORED, ADVERTISED, DELIVERED, TUNNELLED, FORWARDED, EXPIRED, TIMED_OUT)

# Decision.kind values: what the decision was about.
REQUEST, REPLY, SOLICITATION, ADVERTISEMENT = "request", "reply", "solicitation", "advertisement"
TUNNEL, VISITOR_DATA, VISITOR, PENDING, OTHER = "tunnel", "visitor-data", "visitor", "pending", "other"

RECOGNISED = frozenset(EXTENSIONS)  # every extension mipcheck.proto models
DENIAL_INTERVAL = 1.0  # RFC 5944 3.7.2: no more than one denial a second to the same mobile node
TIMER_SLACK = 1e-6  # virtual clocks may hand back a due time a rounding step early
_RRQ_SIZE = codec.RRQ_FIXED.size
_RRP_SIZE = codec.RRP_FIXED.size
_IPPROTO_OTHER_TUNNELS = {n.IPPROTO_MINENC: "minimal encapsulation", n.IPPROTO_GRE: "GRE"}  # when not offered


@dataclass(frozen=True, slots=True)
class Decision:
    """What the foreign agent did with one datagram or timer, and why."""

    outcome: str
    kind: str
    reason: str
    code: int | None = None
    home_address: str | None = None
    home_agent: str | None = None
    source: Address | None = None
    sent_to: Address | None = None
    lifetime: int | None = None

    def as_log(self) -> dict[str, Any]:
        """One log record (no secrets: no octets at all)."""
        d: dict[str, Any] = {"outcome": self.outcome, "kind": self.kind}
        if self.code is not None:
            d["code"] = self.code
            d["code_name"] = n.reply_code_name(self.code)
        for key in ("home_address", "home_agent"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        for key in ("source", "sent_to"):
            value = getattr(self, key)
            if value is not None:
                d[key] = f"{value[0]}:{value[1]}"
        if self.lifetime is not None:
            d["lifetime"] = self.lifetime
        d["reason"] = self.reason
        return d


@dataclass(frozen=True, slots=True)
class Pending:
    """A relayed Registration Request waiting for its reply (RFC 5944 3.7.1's visitor list entry, pending)."""

    home_address: str
    home_agent: str
    identification: int
    care_of_address: str
    flags: int
    lifetime: int  # requested
    link: Address  # the mobile node's source address and port: where the reply goes (3.7.3.2)
    local: Address  # where the request arrived: the reply leaves from here
    relayed_at: float
    expires: float
    nai: bool  # the request carried a Mobile Node NAI extension (a dynamic home address, RFC 2794)


@dataclass(frozen=True, slots=True)
class Visitor:
    """A current registration through this foreign agent (RFC 5944 3.7.1)."""

    home_address: str
    home_agent: str
    care_of_address: str
    link: Address  # the mobile node's link-layer address stands in as its UDP address and port
    local: Address
    flags: int
    identification: int
    lifetime: int  # granted
    registered_at: float  # when the request was relayed (the lifetime counts from there)
    expires: float | None  # None: infinite Lifetime (0xffff)
    home_agent_port: int = 434

    @property
    def reverse_tunnel(self) -> bool:
        return bool(self.flags & n.FLAG_T)


class ForeignAgent:
    """The reference foreign agent (RFC 5944 2, 3.7, 4.2.2; RFC 3024; RFC 3519 tunnel data)."""

    def __init__(
        self,
        config: FAConfig,
        faults: Iterable[str] = frozenset(),
        behaviour: Behaviour | None = None,
        *,
        start: float = 0.0,
        local: Address | None = None,
    ) -> None:
        self.config = config
        self.faults = check_faults(faults)
        if behaviour is None:
            behaviour = behaviour_for(self.faults)
        elif self.faults:
            raise ConfigError("--fault", "give fault names or a behaviour record, not both")
        self.behaviour = behaviour
        #: Where this agent's own datagrams (advertisements, timeouts) leave from.
        self.local: Address = local or (config.address, config.port)
        self._coas = frozenset(config.care_of_addresses)
        self._minimal = "M" in config.flags  # RFC 2004 offered besides IP-in-IP
        self._visitors: dict[tuple[str, str], Visitor] = {}  # (home address, home agent) -> entry
        self._pending: dict[tuple[str, int], Pending] = {}  # (home address, Identification) -> entry
        self._last_denial: dict[tuple[str, str], float] = {}  # (mobile node address, home address) -> time
        self._sequence = 0  # RFC 5944 2.3.2: zero at initialisation
        self._next_advertisement = start
        self._outbox: list[tuple[bytes, Address, Address]] = []
        self._events: deque[Decision] = deque()
        self.counters: dict[str, int] = dict.fromkeys(OUTCOMES, 0)

    # ------------------------------------------------------------------ queries

    @property
    def visitors(self) -> tuple[Visitor, ...]:
        return tuple(self._visitors.values())

    @property
    def pending(self) -> tuple[Pending, ...]:
        return tuple(self._pending.values())

    def visitor(self, home_address: str, home_agent: str | None = None) -> Visitor | None:
        for v in self._visitors.values():
            if v.home_address == home_address and (home_agent is None or v.home_agent == home_agent):
                return v
        return None

    @property
    def sequence(self) -> int:
        """The Sequence Number the next advertisement carries."""
        return self._sequence

    @property
    def busy(self) -> bool:
        """'B' (RFC 5944 2.1.1): configured, or no room for another visitor."""
        return "B" in self.config.flags or len(self._visitors) + len(self._pending) >= self.config.max_visitors

    # ------------------------------------------------------------------ the actor interface

    def receive_datagram(self, data: bytes, src: Address, local: Address, now: float) -> None:
        """One UDP payload from ``src`` received on ``local`` at ``now``."""
        self._expire(now)
        data = bytes(data)
        if not data:
            d = Decision(DROPPED, OTHER, "empty datagram", source=src)
        elif data[0] == n.MSG_RRQ:
            d = self._request(data, src, local, now)
        elif data[0] == n.MSG_RRP:
            d = self._reply(data, src)
        elif data[0] == n.MSG_TUNNEL_DATA:
            d = self._tunnel_data(data, src, local)
        elif data[0] >> 4 == 4:
            d = self._ip_packet(data, src, local)
        else:
            d = Decision(IGNORED, OTHER, f"message type {data[0]} is not one a foreign agent handles", source=src)
        self._decide(d)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address, Address]]:
        out, self._outbox = self._outbox, []
        return out

    def next_event(self) -> Decision | None:
        """The decisions taken, one at a time, oldest first."""
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """The next advertisement, visitor expiry or pending timeout."""
        times: list[float] = [p.expires for p in self._pending.values()]
        if self.behaviour.visitor_expiry:
            times.extend(v.expires for v in self._visitors.values() if v.expires is not None)
        if self.config.link is not None:
            times.append(self._next_advertisement)
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        self._expire(now + TIMER_SLACK)
        if self.config.link is not None and self._next_advertisement <= now + TIMER_SLACK:
            self._next_advertisement = now + self.config.advertise_interval
            self._advertise(self.config.advertisement_destination, self.config.link, self.local, None)

    # ------------------------------------------------------------------ shared plumbing

    def _decide(self, d: Decision) -> None:
        self.counters[d.outcome] += 1
        self._events.append(d)

    def _send(self, data: bytes, local: Address, dst: Address) -> None:
        self._outbox.append((data, local, dst))

    def _expire(self, now: float) -> None:
        """Drop visitors whose Lifetime ran out and pending requests nobody answered (RFC 5944 3.7.1)."""
        if self.behaviour.visitor_expiry:
            for key, v in list(self._visitors.items()):
                if v.expires is not None and v.expires <= now:
                    del self._visitors[key]
                    self._decide(
                        Decision(
                            EXPIRED,
                            VISITOR,
                            "registration Lifetime ran out",
                            home_address=v.home_address,
                            home_agent=v.home_agent,
                            source=v.link,
                        )
                    )
        for key, p in list(self._pending.items()):
            if p.expires > now:
                continue
            del self._pending[key]
            reason = f"no reply from the home agent within {self.config.pending_timeout:g} s"
            sent_to = None
            if self.config.reply_on_timeout and self._may_deny(p.link[0], p.home_address, now):
                reply = self._fa_reply(78, p.lifetime, p.home_address, p.home_agent, p.identification)
                self._send(reply, p.local, p.link)
                sent_to = p.link
                reason += "; denied with 78 (registration timeout)"
            self._decide(
                Decision(
                    TIMED_OUT,
                    PENDING,
                    reason,
                    code=78 if sent_to else None,
                    home_address=p.home_address,
                    home_agent=p.home_agent,
                    source=p.link,
                    sent_to=sent_to,
                )
            )

    # ------------------------------------------------------------------ advertisements (RFC 5944 2)

    def advertisement(self, destination: str) -> bytes:
        """The next Agent Advertisement as a whole IPv4 packet to ``destination``; consumes a Sequence Number."""
        b, config = self.behaviour, self.config
        coas = config.care_of_addresses
        if b.advertised_coa == "off-by-one":
            coas = tuple(_off_by_one(a) for a in coas)
        flags = config.advertised_flags | (FLAG_BITS["B"] if self.busy else 0)
        packet = build_advertisement(
            source=config.address,
            destination=destination,
            sequence=self._sequence,
            registration_lifetime=config.registration_lifetime,
            flags=flags,
            care_of_addresses=coas,
            lifetime=config.advertisement_lifetime,
            code=0 if config.routes_common_traffic else 16,
            ttl=b.advertisement_ttl,
        )
        self._sequence = next_sequence(self._sequence) if self._sequence < 0xFFFF else b.sequence_wrap
        return packet

    def _advertise(self, destination: str, to: Address, local: Address, source: Address | None) -> Decision:
        sequence = self._sequence
        self._send(self.advertisement(destination), local, to)
        kind = SOLICITATION if source is not None else ADVERTISEMENT
        why = "answering a solicitation" if source is not None else "periodic"
        d = Decision(ADVERTISED, kind, f"agent advertisement {sequence} ({why})", source=source, sent_to=to)
        if source is None:
            self._decide(d)
        return d

    # ------------------------------------------------------------------ Registration Requests (RFC 5944 3.7.2)

    def _request(self, data: bytes, src: Address, local: Address, now: float) -> Decision:
        if len(data) < _RRQ_SIZE:
            return Decision(
                DROPPED,
                REQUEST,
                f"truncated Registration Request: {len(data)} octets, the fixed part is 24 (RFC 5944 3.3)",
                source=src,
            )
        rq = codec.parse_request(data)
        assert rq is not None  # the type octet and the length were checked above
        checks = self.behaviour.request_checks == "all"
        if rq.error and checks:
            return self._deny(rq, src, local, now, 70, f"poorly formed Request: {rq.error}")
        auth = next((e for e in rq.extensions if e.type in AUTHORIZATION_ENABLING_TYPES), None)
        mine = rq.extensions[rq.extensions.index(auth) + 1 :] if auth is not None else ()
        if checks:
            for ext in mine:
                if ext.type < 128 and ext.type not in RECOGNISED:
                    return Decision(
                        DROPPED,
                        REQUEST,
                        f"unrecognised non-skippable extension {ext.type}: message silently discarded (RFC 5944 1.9)",
                        home_address=rq.home_address,
                        home_agent=rq.home_agent,
                        source=src,
                    )
            denial = self._check_request(rq, mine)
            if denial is not None:
                return self._deny(rq, src, local, now, *denial)
        return self._relay_request(rq, auth, src, local, now)

    def _check_request(self, rq: codec.Request, mine: tuple[codec.Ext, ...]) -> tuple[int, str] | None:
        """The denials of RFC 5944 3.7.2 and RFC 3024 in the order of the module docstring, or None."""
        config, hoa, ha = self.config, rq.home_address, rq.home_agent
        sa = config.mn_fa_sa(hoa)
        if sa is not None or config.require_mn_fa_auth:
            why = self._mn_fa_failure(rq.data, mine, sa)
            if why is not None:
                return 67, f"mobile node failed authentication: {why} (RFC 5944 3.5.3)"
        if hoa == "0.0.0.0" and not any(e.type == n.EXT_NAI for e in rq.extensions):
            return 97, "Home Address 0.0.0.0 and no Mobile Node NAI extension (RFC 2794)"
        if not _unicast(ha):
            return 98, f"Home Agent field {ha} is not a home agent's unicast address"
        if config.home_agent(ha) is None:
            return 65, f"home agent {ha} is not one this foreign agent relays to"
        if self._new_visitor(hoa, ha, rq.identification) and self.busy:
            return 66, "busy: no room for another visitor" + (" ('B' advertised)" if "B" in config.flags else "")
        if rq.lifetime > config.max_lifetime and self.behaviour.lifetime_over_max == "deny-69":
            return 69, f"requested Lifetime {rq.lifetime} is longer than {config.max_lifetime} (RFC 5944 3.7.2.3)"
        if rq.flags & n.FLAG_G or (rq.flags & n.FLAG_M and not self._minimal):
            which = "GRE ('G')" if rq.flags & n.FLAG_G else "minimal encapsulation ('M')"
            offered = "IP-in-IP and minimal encapsulation" if self._minimal else "IP-in-IP"
            return 72, f"requested encapsulation unavailable: {which}; this foreign agent decapsulates {offered} only"
        if rq.flags & n.FLAG_T and not config.reverse_tunneling:
            return 74, "requested reverse tunnel unavailable (RFC 3024)"
        if not rq.flags & n.FLAG_T and config.reverse_tunnel_required:
            return 75, "reverse tunnel is mandatory and 'T' bit not set (RFC 3024)"
        if not rq.flags & n.FLAG_D and rq.care_of_address not in self._coas:
            return 77, f"Care-of Address {rq.care_of_address} is not one this foreign agent offers"
        return None

    def _mn_fa_failure(self, data: bytes, mine: tuple[codec.Ext, ...], sa: SecurityAssociation | None) -> str | None:
        """RFC 5944 3.5.3: the MN-FA authenticator covers the message up to and including its SPI."""
        exts = [e for e in mine if e.type == n.EXT_MN_FA_AUTH]
        if not exts:
            return "no MN-FA authentication extension after the MN-HA authentication extension"
        if sa is None:
            return "no MN-FA security association for this home address"
        if len(exts) > 1:
            return f"{len(exts)} MN-FA authentication extensions"
        ext = exts[0]
        spi = codec.spi_of(data, ext)
        if spi != sa.spi:
            return "MN-FA authentication extension too short" if spi is None else f"unknown SPI {spi:#x}"
        if not codec.check_authenticator(data, ext, sa.algorithm, sa.key):
            return "MN-FA authenticator does not verify"
        return None

    def _new_visitor(self, hoa: str, ha: str, ident: int) -> bool:
        return (hoa, ha) not in self._visitors and (hoa, ident) not in self._pending

    def _may_deny(self, mn: str, hoa: str, now: float) -> bool:
        last = self._last_denial.get((mn, hoa))
        if last is not None and now - last < DENIAL_INTERVAL:
            return False
        if len(self._last_denial) > 4 * self.config.max_visitors:
            cutoff = now - DENIAL_INTERVAL
            self._last_denial = {k: t for k, t in self._last_denial.items() if t > cutoff}
        self._last_denial[(mn, hoa)] = now
        return True

    def _deny(self, rq: codec.Request, src: Address, local: Address, now: float, code: int, reason: str) -> Decision:
        """RFC 5944 3.7.2.3: Home Address, Home Agent, Identification copied; Lifetime copied, or the maximum for 69."""
        if not self._may_deny(src[0], rq.home_address, now):
            return Decision(
                DROPPED,
                REQUEST,
                f"{reason}; denial {code} withheld: one a second to a mobile node (RFC 5944 3.7.2)",
                code=code,
                home_address=rq.home_address,
                home_agent=rq.home_agent,
                source=src,
            )
        lifetime = rq.lifetime
        if code == 69 and self.behaviour.lifetime_in_69 == "max":
            lifetime = self.config.max_lifetime
        reply = self._fa_reply(code, lifetime, rq.home_address, rq.home_agent, rq.identification)
        self._send(reply, local, src)
        return Decision(
            DENIED,
            REQUEST,
            reason,
            code=code,
            home_address=rq.home_address,
            home_agent=rq.home_agent,
            source=src,
            sent_to=src,
            lifetime=lifetime,
        )

    def _fa_reply(self, code: int, lifetime: int, hoa: str, ha: str, ident: int) -> bytes:
        """A Registration Reply this agent originates (a denial), MN-FA authenticated when it can be (3.5.3)."""
        reply = codec.build_reply(code, lifetime, hoa, ha, ident)
        sa = self.config.mn_fa_sa(hoa)
        return reply if sa is None else _append_auth(reply, n.EXT_MN_FA_AUTH, sa)

    def _relay_request(
        self, rq: codec.Request, auth: codec.Ext | None, src: Address, local: Address, now: float
    ) -> Decision:
        """RFC 5944 3.7.2.2: unchanged through the authorization-enabling extension, FA-HA auth appended."""
        config, b, data = self.config, self.behaviour, rq.data
        hoa, ha = rq.home_address, rq.home_agent
        peer = config.home_agent(ha)
        if peer is None:  # relay-without-checks to an address no peer has: port 434, no SA
            if not _unicast(ha):
                return Decision(
                    DROPPED, REQUEST, f"Home Agent field {ha} cannot be relayed to", home_address=hoa, source=src
                )
            peer = HomeAgentPeer(ha)
        keep = auth.end if auth is not None and b.fa_extensions == "remove" else len(data)
        relayed = data[:keep]
        lifetime = rq.lifetime
        if lifetime > config.max_lifetime and b.lifetime_over_max == "clamp-in-relay":
            lifetime = config.max_lifetime
            relayed = relayed[:2] + lifetime.to_bytes(2, "big") + relayed[4:]
        if peer.sa is not None:
            relayed = _append_auth(relayed, n.EXT_FA_HA_AUTH, peer.sa)
        self._send(relayed, local, peer.place)
        key = (hoa, rq.identification)
        retransmission = key in self._pending
        self._pending[key] = Pending(
            home_address=hoa,
            home_agent=ha,
            identification=rq.identification,
            care_of_address=rq.care_of_address,
            flags=rq.flags,
            lifetime=rq.lifetime,
            link=src,
            local=local,
            relayed_at=now,
            expires=now + config.pending_timeout,
            nai=any(e.type == n.EXT_NAI for e in rq.extensions),
        )
        what = "retransmitted request relayed again" if retransmission else "relayed to the home agent"
        return Decision(
            RELAYED,
            REQUEST,
            what + (" (no checks: relay-without-checks)" if b.request_checks == "none" else ""),
            home_address=hoa,
            home_agent=ha,
            source=src,
            sent_to=peer.place,
            lifetime=lifetime,
        )

    # ------------------------------------------------------------------ Registration Replies (RFC 5944 3.7.3)

    def _reply(self, data: bytes, src: Address) -> Decision:
        if len(data) < _RRP_SIZE:
            return Decision(
                DROPPED,
                REPLY,
                f"truncated Registration Reply: {len(data)} octets, the fixed part is 20 (RFC 5944 3.4)",
                source=src,
            )
        rp = codec.parse_reply(data)
        assert rp is not None
        p = self._match(rp, src)
        if p is None:
            return Decision(
                DROPPED,
                REPLY,
                "no pending request matches its Home Address, Identification and source: silently discarded "
                "(RFC 5944 3.7.3.1)",
                code=rp.code,
                home_address=rp.home_address,
                home_agent=rp.home_agent,
                source=src,
            )
        if rp.error:
            del self._pending[(p.home_address, p.identification)]
            reply = self._fa_reply(71, p.lifetime, p.home_address, p.home_agent, p.identification)
            self._send(reply, p.local, p.link)
            return Decision(
                DENIED,
                REPLY,
                f"poorly formed Reply from the home agent: {rp.error}; the mobile node is told so",
                code=71,
                home_address=p.home_address,
                home_agent=p.home_agent,
                source=src,
                sent_to=p.link,
            )
        auth = next((e for e in rp.extensions if e.type in AUTHORIZATION_ENABLING_TYPES), None)
        peer = self.config.home_agent(p.home_agent)
        if peer is not None and peer.sa is not None:
            why = _fa_ha_failure(data, rp.extensions, auth, peer.sa)
            if why is not None:
                return Decision(
                    DROPPED,
                    REPLY,
                    f"home agent failed authentication: {why}; silently discarded (RFC 5944 3.7.3.1)",
                    code=rp.code,
                    home_address=p.home_address,
                    home_agent=p.home_agent,
                    source=src,
                )
        del self._pending[(p.home_address, p.identification)]
        if self.behaviour.fa_extensions == "relay":
            relayed = data
        elif auth is not None:
            relayed = data[: auth.end]
        else:  # no MN-HA authenticator (e.g. a denial for an unknown home address): drop only FA-HA ones
            relayed = data[:_RRP_SIZE] + b"".join(
                data[e.offset : e.end] for e in rp.extensions if e.type != n.EXT_FA_HA_AUTH
            )
        sa = self.config.mn_fa_sa(rp.home_address)
        if sa is not None:
            relayed = _append_auth(relayed, n.EXT_MN_FA_AUTH, sa)
        self._send(relayed, p.local, p.link)
        reason = f"reply relayed to the mobile node ({n.reply_code_name(rp.code)})"
        if n.reply_accepted(rp.code):
            reason += "; " + self._accepted(p, rp, src)
        return Decision(
            RELAYED,
            REPLY,
            reason,
            code=rp.code,
            home_address=rp.home_address,
            home_agent=p.home_agent,
            source=src,
            sent_to=p.link,
            lifetime=rp.lifetime,
        )

    def _match(self, rp: codec.Reply, src: Address) -> Pending | None:
        """RFC 5944 3.7.3.1: the pending request for this home address whose Identification's low 32 bits match,
        relayed to the home agent the reply comes from (a dynamic home address, RFC 2794: pending as 0.0.0.0)."""
        full = self.behaviour.reply_match == "all-64-bits"
        want = rp.identification if full else low32(rp.identification)
        found = None
        for p in self._pending.values():
            if p.home_agent != src[0] or (p.identification if full else low32(p.identification)) != want:
                continue
            if p.home_address == rp.home_address:
                return p
            if p.home_address == "0.0.0.0" and p.nai and found is None:
                found = p
        return found

    def _accepted(self, p: Pending, rp: codec.Reply, src: Address) -> str:
        """RFC 5944 3.7.3.2: the visitor list follows an accepting reply."""
        key = (rp.home_address, p.home_agent)
        if rp.lifetime == 0 or p.lifetime == 0:
            gone = self._visitors.pop(key, None)
            return "visitor removed (deregistered)" if gone else "deregistered (no visitor entry)"
        granted = min(rp.lifetime, p.lifetime)
        expires = None if granted == n.INFINITE_LIFETIME else p.relayed_at + granted
        peer = self.config.home_agent(p.home_agent)
        self._visitors[key] = Visitor(
            home_address=rp.home_address,
            home_agent=p.home_agent,
            care_of_address=p.care_of_address,
            link=p.link,
            local=p.local,
            flags=p.flags,
            identification=p.identification,
            lifetime=granted,
            registered_at=p.relayed_at,
            expires=expires,
            home_agent_port=peer.port if peer is not None else src[1],
        )
        return f"visitor for {granted} s" if expires is not None else "visitor with infinite Lifetime"

    # ------------------------------------------------------------------ data (RFC 2003, RFC 3519 3.3, RFC 3024)

    def _tunnel_data(self, data: bytes, src: Address, local: Address) -> Decision:
        """RFC 3519 3.3 MIP Tunnel Data from a home agent: Type 4, Next Header, Reserved, then the packet."""
        if len(data) < codec.TUNNEL_DATA_HEADER:
            return Decision(DROPPED, TUNNEL, "MIP Tunnel Data shorter than its 4-octet header", source=src)
        if data[1] != n.IPPROTO_IPIP:
            return Decision(DROPPED, TUNNEL, f"MIP Tunnel Data with Next Header {data[1]}: IPv4 (4) only", source=src)
        return self._deliver(data[codec.TUNNEL_DATA_HEADER :], src[0], src, local)

    def _ip_packet(self, data: bytes, src: Address, local: Address) -> Decision:
        ip = parse_ipv4(data)
        if ip is None:
            return Decision(DROPPED, OTHER, "not a valid IPv4 packet", source=src)
        if ip.protocol == PROTO_ICMP and solicitation(ip.payload):
            # RFC 5944 2.3.2 / RFC 1256: answer to the soliciting node (broadcast when it has no address yet).
            dst = ip.src if ip.src != "0.0.0.0" else self.config.advertisement_destination
            return self._advertise(dst, src, local, src)
        if ip.dst in self._coas and ip.protocol == PROTO_IPIP:
            return self._deliver(ip.payload, ip.src, src, local)
        if ip.dst in self._coas and ip.protocol == n.IPPROTO_MINENC and self._minimal:
            out = minenc.decapsulate(data)
            if not out:
                return Decision(DROPPED, TUNNEL, f"minimal encapsulation from {ip.src}: {out.reason}", source=src)
            return self._deliver(out.packet, out.tunnel_source, src, local)
        if ip.dst in self._coas and ip.protocol in _IPPROTO_OTHER_TUNNELS:
            return Decision(
                DROPPED, TUNNEL, f"{_IPPROTO_OTHER_TUNNELS[ip.protocol]} is not offered (IP-in-IP only)", source=src
            )
        visitor = next((v for v in self._visitors.values() if v.link == src and v.home_address == ip.src), None)
        if visitor is None:
            return Decision(
                DROPPED,
                VISITOR_DATA,
                f"IPv4 packet from {ip.src} via {src[0]}:{src[1]}: no visitor, no care-of address of this agent",
                source=src,
            )
        return self._visitor_packet(visitor, data, src, local)

    def _deliver(self, inner: bytes, tunnel_source: str, src: Address, local: Address) -> Decision:
        """Decapsulated: to the visitor whose home address the inner packet is for (RFC 5944 4.2.2)."""
        ip = parse_ipv4(inner)
        if ip is None:
            return Decision(DROPPED, TUNNEL, "the tunnelled packet is not a valid IPv4 packet", source=src)
        matches = [v for v in self._visitors.values() if v.home_address == ip.dst]
        if not matches:
            return Decision(
                DROPPED,
                TUNNEL,
                f"tunnelled packet for {ip.dst}, no visitor: discarded, not forwarded (RFC 5944 4.2.2)",
                source=src,
            )
        # Two registrations of one home address (RFC 5265 3.5: i-HA and x-HA through one FA): by tunnel source.
        visitor = next((v for v in matches if v.home_agent == tunnel_source), matches[0])
        self._send(inner, visitor.local, visitor.link)
        return Decision(
            DELIVERED,
            TUNNEL,
            f"decapsulated and delivered ({len(inner)} octets)",
            home_address=visitor.home_address,
            home_agent=visitor.home_agent,
            source=src,
            sent_to=visitor.link,
        )

    def _visitor_packet(self, v: Visitor, packet: bytes, src: Address, local: Address) -> Decision:
        """A registered visitor's own packet: reverse tunnel (RFC 3024) or the default router (RFC 5944 2.1)."""
        if v.reverse_tunnel and self.behaviour.reverse_tunnel == "tunnel":
            try:
                if v.flags & n.FLAG_M:
                    # RFC 3024 5.2: the encapsulation registered; RFC 2004 3: S = 1 (this agent is not the source).
                    outer = minenc.encapsulate(packet, v.care_of_address, v.home_agent)
                    how = "reverse-tunnelled to the home agent, minimal encapsulation (RFC 3024, RFC 2004)"
                else:
                    # RFC 2003 3.1: Type of Service and DF copied from the inner header, the inner header unchanged.
                    df = bool(packet[6] & 0x40)
                    outer = build_ipv4(
                        v.care_of_address, v.home_agent, PROTO_IPIP, packet, tos=packet[1], dont_fragment=df
                    )
                    how = "reverse-tunnelled to the home agent (RFC 3024)"
            except ValueError as exc:
                return Decision(DROPPED, VISITOR_DATA, f"cannot encapsulate: {exc}", home_address=v.home_address)
            to = (v.home_agent, v.home_agent_port)
            self._send(outer, local, to)
            return Decision(
                TUNNELLED,
                VISITOR_DATA,
                how,
                home_address=v.home_address,
                home_agent=v.home_agent,
                source=src,
                sent_to=to,
            )
        if self.config.upstream is None:
            return Decision(
                DROPPED,
                VISITOR_DATA,
                "no default router (upstream) configured",
                home_address=v.home_address,
                home_agent=v.home_agent,
                source=src,
            )
        self._send(packet, local, self.config.upstream)
        return Decision(
            FORWARDED,
            VISITOR_DATA,
            "forwarded to the default router" + (" although 'T' was registered" if v.reverse_tunnel else ""),
            home_address=v.home_address,
            home_agent=v.home_agent,
            source=src,
            sent_to=self.config.upstream,
        )


# --------------------------------------------------------------------------- helpers


def _unicast(address: str) -> bool:
    ip = ipaddress.IPv4Address(address)
    return not (ip.is_unspecified or ip.is_multicast or address == "255.255.255.255")


def _off_by_one(address: str) -> str:
    octets = bytearray(socket.inet_aton(address))
    octets[3] = (octets[3] + 1) & 0xFF
    return socket.inet_ntoa(bytes(octets))


def _append_auth(message: bytes, ext_type: int, sa: SecurityAssociation) -> bytes:
    """An authentication extension (RFC 5944 3.5.1: Type, Length 20, SPI, authenticator over all before it)."""
    covered = message + codec.AUTH_HDR.pack(ext_type, 4 + codec.DIGEST_SIZE, sa.spi)
    return covered + codec.authenticator(sa.algorithm, sa.key, covered)


def _fa_ha_failure(
    data: bytes, exts: tuple[codec.Ext, ...], auth: codec.Ext | None, sa: SecurityAssociation
) -> str | None:
    """RFC 5944 3.5.4, 3.7.3.1: the FA-HA authentication extension after the MN-HA one must verify."""
    after = exts[exts.index(auth) + 1 :] if auth is not None else exts
    found = [e for e in after if e.type == n.EXT_FA_HA_AUTH]
    if not found:
        return "no FA-HA authentication extension"
    ext = found[0]
    spi = codec.spi_of(data, ext)
    if spi != sa.spi:
        return "FA-HA authentication extension too short" if spi is None else f"unknown SPI {spi:#x}"
    if not codec.check_authenticator(data, ext, sa.algorithm, sa.key):
        return "FA-HA authenticator does not verify"
    return None


__all__ = [
    "ADVERTISED",
    "DELIVERED",
    "DENIED",
    "DROPPED",
    "EXPIRED",
    "FORWARDED",
    "IGNORED",
    "RELAYED",
    "TIMED_OUT",
    "TUNNELLED",
    "Decision",
    "ForeignAgent",
    "Pending",
    "Visitor",
]
