"""What a campaign knows about its target, from the test profile: addresses, the fuzzed and the health-check MN.

Cases are built from these values, so (seed, index) give the same octets for
the same profile. The health check uses the profile's first mobile node and
the cases its second when there is one, so a case that changes the fuzzed
node's binding or replay state cannot fail a health check by itself.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from mipcheck.engine.profile import MobileNode, Profile
from mipcheck.proto.codec import keyed
from mipcheck.proto.numbers import FLAG_D

from .case import Signer


@dataclass(frozen=True)
class Node:
    """One mobile node as the fuzzer plays it."""

    home_address: str
    home_agent: str
    spi: int
    signer: Signer
    flags: int
    nai: str | None
    mn: MobileNode  # the profile's entry: key and algorithm, to judge replies

    @property
    def hoa(self) -> bytes:
        return socket.inet_aton(self.home_address)

    @property
    def ha(self) -> bytes:
        return socket.inet_aton(self.home_agent)


@dataclass(frozen=True)
class FuzzContext:
    target: tuple[str, int]
    source: str  # a trusted source address of the tester (RFC 5265 4.3)
    care_of: str  # co-located care-of address: the source itself
    node: Node  # the mobile node the cases play
    health: Node  # the mobile node the health checks play
    lifetime: int
    reply_timeout: float
    nat_care_of: str

    @property
    def coa(self) -> bytes:
        return socket.inet_aton(self.care_of)


def _node(profile: Profile, mn: MobileNode) -> Node:
    mac = keyed(mn.algorithm, mn.secret.reveal())
    return Node(mn.home_address, profile.home_agent_of(mn), mn.spi, Signer(mn.spi, mac), mn.flags | FLAG_D, mn.nai, mn)


def context_from_profile(profile: Profile) -> FuzzContext:
    if not profile.mobile_nodes:
        from mipcheck.errors import ConfigError

        raise ConfigError("mn", "the profile names no mobile node to play")
    nodes = profile.mobile_nodes
    health = _node(profile, nodes[0])
    node = _node(profile, nodes[1]) if len(nodes) > 1 else health
    source = profile.trusted_sources[0]
    return FuzzContext(
        target=profile.target,
        source=source,
        care_of=source,
        node=node,
        health=health,
        lifetime=profile.lifetime,
        reply_timeout=profile.reply_timeout,
        nat_care_of=profile.nat_care_of_address,
    )
