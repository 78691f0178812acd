"""The host's IPsec client as the reference mobile node's VPN (``mipcheck mn run --host-vpn IFACE``).

Why: on loopback the node seals ESP itself with static SAs (there is no IKE
to talk to); a real VPN gateway (the lab's strongSwan) speaks IKEv2, which
the host's own client (charon, with ``kernel-libipsec`` its ``ipsec0``)
already does well. RFC 5265 2.3 only asks that the VPN runs from the x-HoA
and that i-MIP goes through it with the VPN-TIA as care-of address, so the
node leaves IKE and ESP to that client:

- when the detection core asks for the VPN (:class:`VpnRequested`), the shell
  runs the user's ``--vpn-up`` command (e.g. ``swanctl --initiate``) and waits
  until IFACE has an IPv4 address: that is the VPN-TIA, given to the node
  (``vpn_established``);
- when the core lets the VPN go (:class:`VpnReleased`: the node is inside
  again), the shell runs ``--vpn-down``.

The client must send from the x-HoA (its local address), which the host
routes into the node's TUN device; the node carries it in x-MIP.
"""

from __future__ import annotations

import asyncio
import fcntl
import ipaddress
import socket
import struct
from dataclasses import dataclass

from mipcheck.errors import MipcheckError

SIOCGIFADDR = 0x8915
COMMAND_TIMEOUT = 30.0  # the longest an up or down command may take
ADDRESS_WAIT = 10.0  # after the up command: how long IFACE may take to get its address
POLL = 0.05


def interface_address(name: str) -> str | None:
    """The IPv4 address of interface ``name`` in this network namespace, None without one (or no such interface)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            answer = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
        except OSError:
            return None
    address = str(ipaddress.IPv4Address(answer[20:24]))
    return None if address == "0.0.0.0" else address


@dataclass(frozen=True)
class HostVpn:
    """What ``--host-vpn``, ``--vpn-up`` and ``--vpn-down`` say."""

    interface: str
    up_command: str | None = None
    down_command: str | None = None

    async def run(self, command: str | None, what: str) -> None:
        """Run a shell command line; a failure is one-line :class:`MipcheckError` naming ``what``."""
        if not command:
            return
        try:
            proc = await asyncio.create_subprocess_shell(
                command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
        except OSError as exc:
            raise MipcheckError(f"{what}: cannot run: {exc.strerror or exc}") from None
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), COMMAND_TIMEOUT)
        except TimeoutError:
            proc.kill()
            raise MipcheckError(f"{what}: still running after {COMMAND_TIMEOUT:g} s") from None
        if proc.returncode != 0:
            lines = [line for line in out.decode(errors="replace").splitlines() if line.strip()]
            last = lines[-1].strip() if lines else "no output"
            raise MipcheckError(f"{what}: exit status {proc.returncode}: {last}")

    async def bring_up(self) -> str:
        """Run the up command, then wait for the VPN-TIA on the interface; returns it."""
        await self.run(self.up_command, "--vpn-up")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ADDRESS_WAIT
        while (address := interface_address(self.interface)) is None:
            if loop.time() > deadline:
                raise MipcheckError(f"--host-vpn {self.interface}: no IPv4 address {ADDRESS_WAIT:g} s after --vpn-up")
            await asyncio.sleep(POLL)
        return address

    async def take_down(self) -> None:
        await self.run(self.down_command, "--vpn-down")
