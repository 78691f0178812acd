"""Capturing a segment of the lab: a raw ``AF_PACKET`` socket inside a namespace, written as a pcap.

Why not tcpdump: it is not installed everywhere, and a socket opened inside
the namespace (:func:`mipcheck.lab.netns.call_in`) needs no process. The
socket is bound to one interface with ``ETH_P_ALL`` (only taps of all
protocols see outgoing packets too) and ``SOCK_DGRAM`` (the link header is
cut off: veths and TUN devices give the same raw IPv4), so every pcap has
link type 228 (raw IPv4), which ``mipcheck dissect`` and Wireshark read.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from pathlib import Path

from mipcheck.capture.writer import PcapWriter

from . import netns

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
LINKTYPE_IPV4 = 228
SNAPLEN = 65535


class SegmentCapture:
    """Every IPv4 packet in or out of ``interface`` in namespace ``ns``, from :meth:`start` to :meth:`stop`."""

    def __init__(self, name: str, ns: str, interface: str) -> None:
        self.name, self.ns, self.interface = name, ns, interface
        self.packets: list[tuple[float, bytes, bool]] = []  # (time, IPv4 packet, outgoing)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    def start(self) -> SegmentCapture:
        def open_socket() -> socket.socket:
            s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
            try:
                s.bind((self.interface, ETH_P_ALL))
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            except OSError:
                s.close()
                raise
            return s

        try:
            self._sock = netns.call_in(self.ns, open_socket)
        except OSError as exc:
            raise netns.LabError(f"capture on {self.interface} in {self.ns}: {exc.strerror or exc}") from None
        self._thread = threading.Thread(target=self._read, name=f"capture-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        sock = self._sock
        assert sock is not None
        while not self._stop.is_set():
            ready, _, _ = select.select([sock], [], [], 0.05)
            if not ready:
                continue
            try:
                data, addr = sock.recvfrom(SNAPLEN)
            except OSError:
                continue
            if addr[1] != ETH_P_IP or not data or data[0] >> 4 != 4:
                continue
            self.packets.append((time.time(), data, addr[2] == socket.PACKET_OUTGOING))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def window(self, start: float, end: float | None = None) -> list[tuple[float, bytes, bool]]:
        """The packets captured from ``start`` on (and before ``end``): one step of a run."""
        return [p for p in self.packets if p[0] >= start and (end is None or p[0] < end)]

    def write(self, path: Path) -> Path:
        with open(path, "wb") as handle:
            writer = PcapWriter(handle, LINKTYPE_IPV4)
            for at, data, _out in self.packets:
                writer.write(data, at)
        return path
