"""A registration client the detection core can silence: stop retransmitting, stop renewing, forget.

Why: RFC 5265 3.3 stops retransmissions on other events than the client's
own reply (an i-HA reply stops the x-HA's; the end of the detection period
stops the i-HA's while a late reply must still be accepted). The registration
client has no public way to do that yet, so this subclass adds it; the
methods belong in :class:`mipcheck.mn.core.RegistrationClient` (see the
issue 10 report) and this module goes when they are there.
"""

from __future__ import annotations

from .core import RegistrationClient


class DetectionClient(RegistrationClient):
    def stop_retransmitting(self) -> None:
        """No more retransmissions; a reply to what was sent is still accepted (3.3, 3.5 late reply)."""
        self._retransmit_at = None

    def quiesce(self) -> None:
        """No more retransmissions nor lifetime-based renewals."""
        self._retransmit_at = None
        self._reregister_at = None

    def abandon(self) -> None:
        """Quiesce, and ignore any reply to what was sent (a status change made it meaningless)."""
        self.quiesce()
        self._outstanding.clear()
