"""A TUN device (``/dev/net/tun``, IFF_TUN | IFF_NO_PI): one IPv4 packet per read and per write.

Why one module on the foundation floor: the home agent, the mobile node and
the foreign agent each hand packets to and take them from an IP stack through
a TUN device (``--tun NAME``), and they may not import each other (the cores
are peers), so this thin I/O wrapper lives below them. It never touches
addresses, link state or routes: those are set with ``ip`` by whoever runs it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct

from mipcheck.errors import MipcheckError

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFNAMSIZ = 16
MAX_PACKET = 65535


def check_interface_name(option: str, name: str) -> None:
    """A Linux interface name: 1-15 characters, no '/' and no space; one-line error naming ``option``."""
    if not name or len(name) >= IFNAMSIZ or "/" in name or " " in name:
        raise MipcheckError(f"{option} {name!r}: an interface name of 1-15 characters")


class TunDevice:
    """A TUN interface, non-blocking.

    Opening a name that does not exist creates the interface (it goes away with
    the file descriptor unless it was made persistent, e.g. ``ip tuntap add``).
    """

    def __init__(self, name: str, option: str = "--tun") -> None:
        check_interface_name(option, name)
        try:
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        except OSError as exc:
            raise MipcheckError(f"{option} {name}: cannot open /dev/net/tun: {exc.strerror or exc}") from None
        try:
            answer = fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI))
        except OSError as exc:
            os.close(fd)
            raise MipcheckError(f"{option} {name}: TUNSETIFF failed: {exc.strerror or exc}") from None
        self.fd = fd
        self.name = answer[:16].rstrip(b"\x00").decode()
        self.read_count = self.write_count = self.write_failures = 0

    def fileno(self) -> int:
        return self.fd

    def read(self) -> bytes | None:
        """One packet; None when there is none now; b"" when the device is gone (the reader stops)."""
        try:
            packet = os.read(self.fd, MAX_PACKET)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return b""
        self.read_count += 1
        return packet

    def write(self, packet: bytes) -> bool:
        """Hand one packet to the stack; False when it could not (interface down, queue full): dropped, as IP may."""
        try:
            os.write(self.fd, packet)
        except OSError:
            self.write_failures += 1
            return False
        self.write_count += 1
        return True

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
