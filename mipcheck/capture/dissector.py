"""Per-packet choice between the fast decoder and the Scapy layers, and the record stream.

Every packet is offered to ``fastpath`` first; what it declines (or every
packet, with ``scapy_only`` or a tree) goes to ``layered``, imported only
when the first such packet arrives, so a capture of plain registrations never
pays for importing Scapy.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from mipcheck.errors import InputError

from . import fastpath
from .keys import KeyRing
from .reader import CaptureReader
from .record import new_record, safe_summary_line

Frame = tuple[float, int, bytes, int]  # time, linktype, data, wirelen (as the reader yields)


class Dissector:
    """Turns captured frames into records (see ``record``) or summary lines."""

    def __init__(self, ring: KeyRing | None = None, *, scapy_only: bool = False) -> None:
        self.ring = ring or KeyRing()
        self.keys = self.ring.mip or None
        self.scapy_only = scapy_only
        self._layered: Any = None
        self._esp: Any = None

    def _slow(self) -> Any:
        if self._layered is None:
            from . import layered

            self._layered = layered
            self._esp = layered.EspDecryptor(self.ring)
        return self._layered

    def record(self, frame: int, packet: Frame) -> dict[str, Any]:
        time, linktype, data, wirelen = packet
        record = new_record(frame, time, wirelen)
        if not self.scapy_only:
            decoded = fastpath.decode(data, linktype)
            if decoded is not None:
                return fastpath.record_of(decoded, record, self.keys)
        self._slow().dissect_frame(data, linktype, record, self.ring, self._esp)
        return record

    def safe_summary(self, frame: int, packet: Frame, t0: float) -> str:
        """Summary line that cannot fail: a bug in one packet's formatting is reported on that packet."""
        return safe_summary_line(self.record(frame, packet), t0)

    def tree(self, frame: int, packet: Frame) -> tuple[dict[str, Any], list]:
        time, linktype, data, wirelen = packet
        record = new_record(frame, time, wirelen)
        items = self._slow().dissect_frame(data, linktype, record, self.ring, self._esp, tree=True)
        return record, items or []

    def summaries(
        self, packets: Iterable[Frame], chunk: int = 2048, t0: float | None = None, first: int = 1
    ) -> Iterator[list[str]]:
        """Summary lines of a whole file, a chunk at a time (the hot loop of ``dissect``)."""
        decode, summary_of, keys = fastpath.decode, fastpath.summary_of, self.keys
        fast = not self.scapy_only
        lines: list[str] = []
        add = lines.append
        try:
            for frame, packet in enumerate(packets, start=first):
                time = packet[0]
                if t0 is None:
                    t0 = time
                decoded = decode(packet[2], packet[1]) if fast else None
                if decoded is not None:
                    add("%6d %11.6f %s" % (frame, time - t0, summary_of(decoded, keys)))  # noqa: UP031 - faster than an f-string here
                else:
                    add(self.safe_summary(frame, packet, t0))
                if len(lines) >= chunk:
                    yield lines
                    lines = []
                    add = lines.append
        except InputError as exc:
            # the file broke: hand out what was dissected before the damage, then report it
            exc.partial_lines = lines  # type: ignore[attr-defined]
            raise
        if lines:
            yield lines


def records(
    path: str, dissector: Dissector, on_progress: Callable[[int], None] | None = None
) -> Iterator[dict[str, Any]]:
    """Records of every packet of one file, in order; raises InputError when the file breaks."""
    with CaptureReader(path) as reader:
        for frame, packet in enumerate(reader, start=1):
            if on_progress is not None and not frame % 4096:
                on_progress(reader.position)
            yield dissector.record(frame, packet)


PARALLEL_MIN_SIZE = 4 << 20  # below this, forking costs more than it saves


def parallel_summaries(reader: CaptureReader, dissector: Dissector, write: Callable[[list[str]], None]) -> bool:
    """Summaries of a large classic pcap on two cores; False (nothing written) when it does not apply.

    A forked child dissects the second half of the file into a temporary file
    while this process dissects the first half and writes it; the child's lines
    follow. Frame numbers and relative times are those of one sequential run.
    A broken record in the second half is reported after everything before it.
    """
    if not hasattr(os, "fork") or (os.cpu_count() or 1) < 2 or reader.size < PARALLEL_MIN_SIZE or dissector.scapy_only:
        return False
    split = reader.pcap_split()
    if split is None:
        return False
    offset, before, t0 = split
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:  # child: the second half
        status = 0
        try:
            second = CaptureReader(reader.path)
            for lines in dissector.summaries(second.iter_from(offset, None, before), t0=t0, first=before + 1):
                out.write(("\n".join(lines) + "\n").encode("utf-8", "backslashreplace"))
        except InputError as exc:
            partial = getattr(exc, "partial_lines", [])
            if partial:
                out.write(("\n".join(partial) + "\n").encode("utf-8", "backslashreplace"))
            err.write(str(exc).encode("utf-8", "backslashreplace"))
        except BaseException as exc:  # noqa: BLE001 - report anything to the parent, never a traceback
            err.write(f"{reader.path}: dissection failed in the second half: {type(exc).__name__}: {exc}".encode())
            status = 1
        finally:
            out.flush()
            err.flush()
            os._exit(status)
    try:
        for lines in dissector.summaries(reader.iter_from(24, offset, 0), t0=t0):
            write(lines)
    except BaseException:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        raise
    os.waitpid(pid, 0)
    sys.stdout.flush()
    out.seek(0)
    shutil.copyfileobj(out, sys.stdout.buffer, 1 << 20)
    sys.stdout.buffer.flush()
    err.seek(0)
    message = err.read().decode("utf-8", "replace")
    if message:
        raise InputError(message)
    return True
