"""What an MN campaign knows about the device and the parties it plays, from the MN profile (``[dut] role = "mn"``).

Cases are built from these values (addresses, SPIs and keys), so (seed,
index) give the same octets for the same profile; the ports only say where
to listen and send.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from mipcheck.errors import ConfigError
from mipcheck.mn.profile import HomeAgentPeer, MobileNodeProfile
from mipcheck.proto.codec import keyed

from ..case import Signer

IHA, XHA = "iha", "xha"
PARTIES = (IHA, XHA)
MIN_HEALTH_TIMEOUT = 2.0  # a loaded machine may take over a second to answer; only a failing check waits it


@dataclass(frozen=True)
class Party:
    """One home agent mipcheck plays: where it listens, the device's home address with it, the MN-HA SA."""

    name: str  # iha | xha
    address: str
    port: int
    home_address: str
    peer: HomeAgentPeer
    signer: Signer

    @property
    def place(self) -> tuple[str, int]:
        return (self.address, self.port)

    @property
    def ha(self) -> bytes:
        return socket.inet_aton(self.address)

    @property
    def hoa(self) -> bytes:
        return socket.inet_aton(self.home_address)


def _party(name: str, peer: HomeAgentPeer) -> Party:
    sa = peer.sa
    mac = keyed(sa.algorithm, sa.secret.reveal())
    return Party(name, peer.address, peer.port, peer.home_address, peer, Signer(sa.spi, mac))


@dataclass(frozen=True)
class MnContext:
    profile: MobileNodeProfile
    iha: Party
    xha: Party
    interface: str  # the interface the campaign moves (the profile's first)
    care_of_address: str  # its inside care-of address
    lifetime: int  # what the device asks for ([dut].lifetime); replies grant it
    correspondent: str  # source of the health checks' echo requests ([dut].correspondent)
    health_timeout: float  # seconds for each step of a health check: max(detection period, 2 s)

    def party(self, name: str) -> Party:
        return self.iha if name == IHA else self.xha

    @property
    def home_address(self) -> str:
        return self.profile.home_address


def mn_context(profile: MobileNodeProfile) -> MnContext:
    if profile.same_home_agent:
        raise ConfigError(
            "x_ha.address", "is the i-HA's: the device would go outside at once (RFC 5265 3.5); fuzz it with two"
        )
    interface = profile.interfaces[0]
    coa = profile.care_of_address(interface, "inside")
    assert coa is not None
    return MnContext(
        profile=profile,
        iha=_party("iha", profile.i_ha),
        xha=_party("xha", profile.x_ha),
        interface=interface,
        care_of_address=coa,
        lifetime=profile.lifetime,
        correspondent=profile.correspondent,
        health_timeout=max(profile.detection_period, MIN_HEALTH_TIMEOUT),
    )
