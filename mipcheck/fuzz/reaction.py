"""What the target did with a case, in a few words (the coverage key), and which reactions call for a health check.

Reactions: ``silent``, ``refused`` (ICMP port unreachable: nobody listens),
``accepted-<code>`` / ``denied-<code>`` (a Registration Reply), ``type-<n>``
(another message came back), ``garbled`` (octets that parse as nothing),
``multiple`` (more than one answer to one message). Replies to the valid
steps of a stateful case (known Identifications) are set aside first.
"""

from __future__ import annotations

from mipcheck.proto import numbers as n
from mipcheck.proto.codec import parse_reply
from mipcheck.proto.identification import low32

#: Reactions after which the campaign checks the target's health at once.
UNUSUAL = frozenset({"refused", "garbled", "multiple", "accepted-unsigned"})


def classify(replies: list[bytes], refused: bool, *, signed: bool, step_idents: frozenset[int] = frozenset()) -> str:
    if step_idents:
        replies = [r for r in replies if not _answers(r, step_idents)]
    if not replies:
        return "refused" if refused else "silent"
    if len(replies) > 1:
        return "multiple"
    data = replies[0]
    if not data:
        return "garbled"
    if data[0] != n.MSG_RRP:
        return f"type-{data[0]}"
    rep = parse_reply(data)
    if rep is None or rep.error:
        return "garbled"
    if n.reply_accepted(rep.code):
        return f"accepted-{rep.code}" if signed else "accepted-unsigned"
    return f"denied-{rep.code}"


def _answers(reply: bytes, idents: frozenset[int]) -> bool:
    rep = parse_reply(reply)
    return rep is not None and low32(rep.identification) in idents
