"""The built-in lab: the reference i-HA on loopback, and the profile to test it with.

``mipcheck run`` with no target starts it, so the suite runs on a fresh
machine with nothing but ``pip install .``: an i-HA on 127.0.0.1 (a free
port), trusting 127.0.0.0/30, so the tester plays trusted sources from
127.0.0.2-127.0.0.3 and untrusted ones from 127.0.0.66 and 127.0.0.99. Its
keys are fixed, public and for tests only. Every address is in 127.0.0.0/8:
nothing leaves the machine.
"""

from __future__ import annotations

import ipaddress
import shutil
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mipcheck.engine.control import DeviceControl
from mipcheck.engine.profile import MobileNode, Profile
from mipcheck.proto.secret import Secret

HA_ADDRESS = "127.0.0.1"
TRUSTED_NETWORK = "127.0.0.0/30"
TRUSTED_SOURCES = ("127.0.0.2", "127.0.0.3")
UNTRUSTED_SOURCES = ("127.0.0.66", "127.0.0.99")
NAT_CARE_OF_ADDRESS = "127.0.0.44"  # a "private" CoA behind the pretend NAT; only ever a field value
HOME_NETWORK = ipaddress.IPv4Network("127.1.0.0/24")
MOBILE_NODES = 32  # more than the suite's cases, so concurrent cases never share a home address
SPI_BASE = 0x1000
REPLY_TIMEOUT = 2.0  # seconds: only a missing reply waits this long (a loaded CI machine stays correct)
SILENCE_WINDOW = 0.4  # seconds listened for "no reply"; loopback answers in well under a millisecond


def _secret(i: int) -> Secret:
    # Test-only keys: public by design, never to be configured on real equipment.
    return Secret(f"mipcheck-builtin-test-key-{i:02d}")


def mobile_nodes(count: int = MOBILE_NODES) -> tuple[MobileNode, ...]:
    hosts = list(HOME_NETWORK.hosts())[:count]
    return tuple(
        MobileNode(str(h), None, SPI_BASE + i, _secret(i), secret_from="built-in test key") for i, h in enumerate(hosts)
    )


def ha_config(
    nodes: Iterable[MobileNode],
    *,
    trusted: bool = True,
    replay_strict: bool = True,
    log_file: str | None = None,
    port: int = 0,
):
    from mipcheck.ha.config import HAConfig, MobileNodeConfig

    return HAConfig(
        address=HA_ADDRESS,
        port=port,
        role="i-ha",
        trusted_networks=(ipaddress.IPv4Network(TRUSTED_NETWORK),) if trusted else (),
        replay_strict=replay_strict,
        log_file=log_file,
        mobile_nodes=tuple(
            MobileNodeConfig(m.home_address, m.spi, m.secret, m.algorithm, m.replay, m.nai) for m in nodes
        ),
        log_rate=1000.0,  # the suite drops many requests on purpose; the log must keep them all
        log_burst=1000,
    )


def builtin_profile(
    address: str,
    port: int,
    nodes: tuple[MobileNode, ...],
    reply_timeout: float = REPLY_TIMEOUT,
    silence_window: float = SILENCE_WINDOW,
) -> Profile:
    return Profile(
        dut_address=address,
        dut_port=port,
        role="i-ha",
        mobile_nodes=nodes,
        trusted_sources=TRUSTED_SOURCES,
        untrusted_sources=UNTRUSTED_SOURCES,
        reply_timeout=reply_timeout,
        silence_window=silence_window,
        nat_care_of_address=NAT_CARE_OF_ADDRESS,
        jobs=32,
        lifetime=300,
        builtin=True,
    )


class BuiltinControl(DeviceControl):
    """Side channels into the built-in home agent: its log file and a second, unconfigured instance."""

    unconfigured_separate = True  # a second home agent on its own port: other cases may run meanwhile

    def __init__(self, lab: BuiltinLab) -> None:
        self.lab = lab
        self._lock = threading.Lock()
        self._unconfigured: Any = None

    def read_log(self) -> str | None:
        path = self.lab.ha.log_path
        return Path(path).read_text(encoding="utf-8") if path else None

    def can_start_unconfigured(self) -> bool:
        return True

    def start_unconfigured(self) -> tuple[str, int]:
        from mipcheck.ha.server import run_home_agent

        self._lock.acquire()
        try:
            cfg = ha_config(self.lab.nodes, trusted=False, replay_strict=self.lab.replay_strict)
            self._unconfigured = run_home_agent(cfg, self.lab.faults)
        except BaseException:
            self._lock.release()
            raise
        return self._unconfigured.address, self._unconfigured.port

    def stop_unconfigured(self) -> None:
        ha, self._unconfigured = self._unconfigured, None
        if ha is not None:
            try:
                ha.stop()
            finally:
                self._lock.release()

    def can_query_tunnel_route(self) -> bool:
        return True

    def tunnel_route(self, home_address: str) -> tuple[str, int] | None:
        """Where the core's encapsulate hook would send a packet for ``home_address`` (RFC 3519)."""
        from mipcheck.ha.tunnel import TunnelError

        out = self._on_core(lambda core: core.encapsulate(home_address, b""))
        return None if isinstance(out, TunnelError) else out[1]

    def bindings_of(self, home_address: str) -> tuple[tuple[str, str], ...] | None:
        """The built-in home agent's binding list for ``home_address`` (its management view)."""
        found = self._on_core(lambda core: core.bindings.get(home_address, ()))
        return tuple((b.care_of_address, b.source[0]) for b in found)

    def _on_core(self, fn: Any) -> Any:
        """Run ``fn(core)`` where the home agent core lives (its own thread and loop here)."""
        return self.lab.ha.call(fn)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "built-in",
            "log": "the home agent's log file",
            "unconfigured": "a second home agent with no trusted network",
        }


class BuiltinLab:
    """Context manager: the built-in i-HA running, with its profile and control."""

    def __init__(
        self, faults: Iterable[str] = (), *, replay_strict: bool = True, reply_timeout: float = REPLY_TIMEOUT
    ) -> None:
        from mipcheck.ha.faults import check_faults

        self.faults = tuple(sorted(check_faults(faults)))
        self.replay_strict = replay_strict
        self.reply_timeout = reply_timeout
        self.nodes = mobile_nodes()
        self.ha: Any = None
        self._tmp: str | None = None

    def __enter__(self) -> BuiltinLab:
        from mipcheck.ha.server import run_home_agent

        self._tmp = tempfile.mkdtemp(prefix="mipcheck-builtin-")
        log = str(Path(self._tmp) / "home-agent.log")
        try:
            self.ha = run_home_agent(ha_config(self.nodes, replay_strict=self.replay_strict, log_file=log), self.faults)
        except BaseException:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise
        self.profile = builtin_profile(self.ha.address, self.ha.port, self.nodes, self.reply_timeout)
        self.control = BuiltinControl(self)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.ha is not None:
                self.ha.stop()
        finally:
            if self._tmp:
                shutil.rmtree(self._tmp, ignore_errors=True)
