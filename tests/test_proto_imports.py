"""The Scapy-free cores stay Scapy-free.

The home agent and the mobile node exist to avoid Scapy's cost (about 0.4 s
to import, 100 microseconds a message); ``mipcheck.proto`` is their codec. A
stray import of ``mipcheck.layers`` anywhere below them would pull Scapy back
in without failing anything else, so a fresh interpreter checks it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = (
    "import {modules}, sys; assert not any(m.startswith('scapy') for m in sys.modules), sorted(m for m in "
    "sys.modules if m.startswith('scapy'))[:5]"
)


def _imports_without_scapy(*modules: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHECK.format(modules=", ".join(modules))], capture_output=True, text=True, timeout=60
    )


def test_ha_and_mn_cores_do_not_import_scapy() -> None:
    done = _imports_without_scapy("mipcheck.ha.core", "mipcheck.mn.core", "mipcheck.mn.acceptance")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "module",
    [
        "mipcheck.proto.numbers",
        "mipcheck.proto.extensions",
        "mipcheck.proto.codec",
        "mipcheck.proto.identification",
        "mipcheck.proto.secret",
        "mipcheck.proto.security",
        "mipcheck.proto.minenc",
        "mipcheck.fields",
        "mipcheck.ha.server",
        "mipcheck.mn.transport",
        "mipcheck.capture.fastpath",
    ],
)
def test_proto_and_its_fast_users_do_not_import_scapy(module: str) -> None:
    done = _imports_without_scapy(module)
    assert done.returncode == 0, done.stderr


def test_ha_wire_is_gone() -> None:
    """The codec moved to mipcheck.proto.codec; nothing may import the old module."""
    done = subprocess.run([sys.executable, "-c", "import mipcheck.ha.wire"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr
