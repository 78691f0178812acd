"""An MN fuzz case: what the played party sends, to which request, and how its Identification follows the device.

:class:`MnCase` is a :class:`~mipcheck.fuzz.case.Case` (same draft, mutations,
signer, rendering, minimisation) with three more fields:

* ``party``: who sends it, ``iha`` or ``xha`` (the x-HA's replies are signed
  with the x-HA's key and carry the x-HoA);
* ``stage``: ``reply`` answers the device's first Registration Request to
  that party after the move; ``data`` is sent by the i-HA after a valid
  registration (code 0, UDP Tunnel Reply, TNC), e.g. mutated MIP Tunnel Data;
* ``ident``: how a reply's Identification follows the request it answers
  (RFC 5944 5.7): ``copy`` (all 64 bits), ``low-off`` (low-order 32 bits not
  copied), ``high-zero`` (only the low-order bits), ``high-ahead`` (the high
  bits an hour ahead, as a 133 carries the home agent's time). An
  Identification operation of the case (``u64`` at offset 12) applies on top.

The case's own octets (``payload``: ``show``, ``case_hex``) carry the
Identification derived from the index; :func:`sent_octets` puts the device's
in before rendering, so a signed case is signed over what is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mipcheck.proto import codec
from mipcheck.proto import numbers as n
from mipcheck.proto.identification import high32, low32

from ..case import Case, Draft, message_kind
from .context import IHA, MnContext, Party

REPLY, DATA = "reply", "data"
COPY, LOW_OFF, HIGH_ZERO, HIGH_AHEAD = "copy", "low-off", "high-zero", "high-ahead"
IDENT_MODES = (COPY, LOW_OFF, HIGH_ZERO, HIGH_AHEAD)
IDENT_AT = slice(12, 20)  # RFC 5944 3.4: Identification, octets 12-19 of a Registration Reply
AHEAD = 3600  # seconds the high-order bits of a high-ahead Identification are ahead of the request's


@dataclass(frozen=True)
class MnCase(Case):
    party: str = IHA
    stage: str = REPLY
    ident: str = COPY

    @property
    def kind(self) -> str:
        """The coverage key's message half: party and message, e.g. ``iha-rrp``, ``xha-rrp``, ``iha-tunnel-data``."""
        return f"{self.party}-{message_kind(self.payload)}"

    @property
    def restamped(self) -> bool:
        """The octets sent carry the device's Identification (a reply to its request), not the case's own."""
        return self.stage == REPLY and is_reply_draft(self.draft)


def is_reply_draft(draft: Draft) -> bool:
    return len(draft.fixed) >= IDENT_AT.stop and draft.fixed[0] == n.MSG_RRP


def reply_identification(mode: str, request_identification: int) -> int:
    """The Identification a reply in ``mode`` carries for a request with ``request_identification``."""
    low, high = low32(request_identification), high32(request_identification)
    if mode == LOW_OFF:
        return (high << 32) | (low ^ 0x00010001)
    if mode == HIGH_ZERO:
        return low
    if mode == HIGH_AHEAD:
        return (((high + AHEAD) & 0xFFFFFFFF) << 32) | low
    return request_identification


def sent_octets(case: MnCase, request_identification: int | None) -> bytes:
    """The octets of ``case`` as sent in answer to a request with ``request_identification`` (None: as generated)."""
    return render_for(case.draft, case, request_identification)


def render_for(draft: Draft, case: MnCase, request_identification: int | None) -> bytes:
    if request_identification is None or not case.restamped or not is_reply_draft(draft):
        return draft.render()
    ident = reply_identification(case.ident, request_identification).to_bytes(8, "big")
    fixed = draft.fixed[: IDENT_AT.start] + ident + draft.fixed[IDENT_AT.stop :]
    return replace(draft, fixed=fixed).render()


# ------------------------------------------------------------------ valid messages (setup and health checks)


def valid_reply(ctx: MnContext, party: Party, request: codec.Request, *, tnc: bool | None = None) -> bytes:
    """Code 0 to ``request``: lifetime as asked (at most the profile's), UDP Tunnel Reply when asked, TNC (i-HA),
    then the MN-HA authenticator (docs/design/mn-loopback.md)."""
    exts = b""
    if any(e.type == n.EXT_UDP_TUNNEL_REQUEST for e in request.extensions):
        exts += codec.udp_tunnel_reply()
    with_tnc = party.name == IHA if tnc is None else tnc
    if with_tnc:
        exts += codec.TNC_EXTENSION
    sa = party.peer.sa
    lifetime = min(request.lifetime, ctx.lifetime) if request.lifetime != n.INFINITE_LIFETIME else ctx.lifetime
    return codec.build_reply(
        0,
        lifetime,
        party.home_address,
        party.address,
        request.identification,
        exts,
        auth=(sa.spi, sa.algorithm, sa.secret.reveal(), party.signer.mac),
    )


def request_problem(ctx: MnContext, party: Party, data: bytes) -> str | None:
    """What makes ``data`` no valid registration of the device with ``party`` (None: valid).

    RFC 5944 3.3, 3.5.2 and the loopback stacks: a Registration Request with a non-zero lifetime for the
    device's home address with that party, exactly one MN-HA authentication extension with the party's SPI,
    whose authenticator verifies.
    """
    req = codec.parse_request(data)
    if req is None:
        return f"{len(data)} octets that are no Registration Request"
    if req.error:
        return f"a Registration Request with a malformed extension area ({req.error})"
    if req.home_address != party.home_address or req.home_agent != party.address:
        return f"a Registration Request for {req.home_address} at {req.home_agent}, not {party.home_address} at " + (
            party.address
        )
    auths = [e for e in req.extensions if e.type == n.EXT_MN_HA_AUTH]
    sa = party.peer.sa
    if len(auths) != 1:
        return f"a Registration Request with {len(auths)} MN-HA authentication extensions"
    if codec.spi_of(data, auths[0]) != sa.spi:
        return f"a Registration Request whose MN-HA authentication extension does not name SPI {sa.spi}"
    if not codec.check_authenticator(data, auths[0], sa.algorithm, b"", mac=party.signer.mac):
        return "a Registration Request whose MN-HA authenticator does not verify"
    return None
