"""Whether a mobile node may act on a Registration Reply: one judgement for the MN client and the HA suite.

Why one: the HA suite calls a registration "accepted" only when a mobile
node would (issue: replies without an MN-HA authenticator passed the suite
while ``mipcheck mn register`` rejected them). The rules, in the order a
mobile node applies them (RFC 5944 3.6.2.1, 1.9, 3.5):

1. it is a Registration Reply whose extension area is well formed;
2. its Home Address is the mobile node's;
3. the low-order 32 bits of its Identification match a request sent
   (RFC 5944 5.7: the home agent copies them from the request);
4. it carries no unrecognised non-skippable extension (types 0-127, 1.9);
5. exactly one MN-HA authentication extension, with the mobile node's SPI,
   whose authenticator verifies over everything up to and including the
   SPI (3.5.1, 3.6.2.1); a foreign agent's denial (codes 64-127) carries
   none and is acted on without it.

Scapy-free on purpose: the reference MN's core uses it on every reply.
The HA suite's other checks judge with the Scapy layers, so the tester and
the reference devices share only these rules, not a codec.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from mipcheck.proto import codec
from mipcheck.proto import numbers as n
from mipcheck.proto.extensions import RECOGNISED_BY_MN
from mipcheck.proto.identification import low32

# Which rule a problem breaks: kept next to the text so callers can grade or filter by it.
NOT_A_REPLY = "not-a-reply"
MALFORMED = "malformed"
HOME_ADDRESS = "home-address"
IDENTIFICATION = "identification"
NONSKIPPABLE = "nonskippable"
AUTHENTICATION = "authentication"


@dataclass(frozen=True)
class ReplyJudgement:
    """What a mobile node makes of one reply: the first rule it breaks, if any."""

    code: int | None
    problem: str | None  # one line naming what arrived, e.g. "reply with code 0 whose ..."
    rule: str | None  # one of the constants above
    reply: codec.Reply | None = None
    foreign_agent_denial: bool = False  # codes 64-127 without MN-HA authentication: acted on as is

    @property
    def usable(self) -> bool:
        """The mobile node acts on it (an accepted reply registers, a denial denies)."""
        return self.problem is None

    @property
    def accepted(self) -> bool:
        return self.problem is None and self.code is not None and n.reply_accepted(self.code)


FOREIGN_AGENT_DENIAL = "is a foreign agent's denial without MN-HA authentication"


def authentication_problem(rep: codec.Reply, *, spi: int, algorithm: str, key: bytes) -> str | None:
    """Rule 5 alone (RFC 5944 3.5.2): what is wrong with the reply's MN-HA authentication, or None.

    Judged on its own so that a reply breaking an earlier rule too (an
    unknown non-skippable extension, say) is still judged for its
    authenticator. :data:`FOREIGN_AGENT_DENIAL` is returned (and is no
    problem) for a code 64-127 reply without one.
    """
    data = rep.data
    auths = [e for e in rep.extensions if e.type == n.EXT_MN_HA_AUTH]
    if not auths:
        if 64 <= rep.code <= 127:
            return FOREIGN_AGENT_DENIAL
        others = sorted({e.type for e in rep.extensions})
        carried = f" (extensions {others})" if others else ""
        return f"with no MN-HA authentication extension{carried}"
    if len(auths) > 1:
        return f"with {len(auths)} MN-HA authentication extensions"
    got_spi = codec.spi_of(data, auths[0])
    if got_spi != spi:
        shown = "no SPI" if got_spi is None else f"SPI {got_spi}"
        return f"whose MN-HA authentication extension has {shown}, not {spi}"
    if not codec.check_authenticator(data, auths[0], algorithm, key):
        return "whose MN-HA authenticator does not verify"
    return None


def _code(code: int) -> str:
    return f"code {code} ({n.reply_code_name(code)})"


def judge_reply(
    data: bytes,
    *,
    home_address: str,
    identifications: Collection[int],
    spi: int,
    algorithm: str,
    key: bytes,
) -> ReplyJudgement:
    """Judge ``data`` as the reply to requests whose Identifications' low-order 32 bits are ``identifications``."""
    rep = codec.parse_reply(data)
    if rep is None:
        return ReplyJudgement(None, f"{len(data)} octets that are not a Registration Reply", NOT_A_REPLY)
    what = f"reply with {_code(rep.code)}"
    if rep.error:
        return ReplyJudgement(rep.code, f"{what} with a malformed extension area: {rep.error}", MALFORMED, rep)
    if rep.home_address != home_address:
        return ReplyJudgement(
            rep.code, f"{what} for home address {rep.home_address}, not {home_address}", HOME_ADDRESS, rep
        )
    got = low32(rep.identification)
    if got not in identifications:
        sent = ", ".join(f"{i:#010x}" for i in sorted(identifications)) or "none outstanding"
        return ReplyJudgement(
            rep.code,
            f"{what} whose Identification low-order 32 bits ({got:#010x}) were not copied from the request ({sent})",
            IDENTIFICATION,
            rep,
        )
    for ext in rep.extensions:
        if ext.type < 128 and ext.type not in RECOGNISED_BY_MN:  # RFC 5944 1.9
            return ReplyJudgement(
                rep.code, f"{what} carrying the unrecognised non-skippable extension {ext.type}", NONSKIPPABLE, rep
            )
    problem = authentication_problem(rep, spi=spi, algorithm=algorithm, key=key)
    if problem is not None:
        if problem is FOREIGN_AGENT_DENIAL:
            # RFC 5944 3.4: a foreign agent's denial; it holds no MN-HA key.
            return ReplyJudgement(rep.code, None, None, rep, foreign_agent_denial=True)
        return ReplyJudgement(rep.code, f"{what} {problem}", AUTHENTICATION, rep)
    return ReplyJudgement(rep.code, None, None, rep)
