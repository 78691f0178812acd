"""Shared by the tests that build namespace labs (tests/test_lab_netns.py, tests/test_suite_site.py).

``WHY_NOT`` is why labs cannot be built here (None: they can), for
``skipif`` reasons; :func:`make_lab` is a fixture body (and :data:`lab_up`
the same as a context manager) that always runs ``down`` and then checks that
nothing of the lab is left: no namespace, process, veth or nftables table.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

from mipcheck.lab import control, firewall, netns
from mipcheck.lab.topology import namespace_prefix


def why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables"), ("unshare", "util-linux")):
        if shutil.which(tool) is None:
            return f"needs {tool} ({package})"
    probe_ns = f"mipchecktest{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe_ns], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe_ns], capture_output=True)
    return None


WHY_NOT = why_not()
_counter = iter(range(1000))


def lab_name(tag: str) -> str:
    return f"t{os.getpid() % 100000}{tag}{next(_counter)}"


def leftovers(name: str, state_dir: Path) -> list[str]:
    prefix = namespace_prefix(name)
    found = [f"namespace {n}" for n in netns.namespaces(prefix)]
    found += [f"process {p} naming {state_dir}" for p in netns.pids_naming(str(state_dir) + os.sep)]
    if state_dir.exists():
        found.append(f"state dir {state_dir}")
    # the lab never puts an interface or table into the host's namespace; make sure of it
    links = netns.run(["ip", "-o", "link", "show"])
    found += [f"host link {ln.split(':')[1].strip()}" for ln in links.splitlines() if prefix in ln]
    found += [f"host nft table {t}" for t in firewall.tables() if t.endswith(f" {firewall.TABLE}")]
    return found


def make_lab(tmp_path_factory, tag: str, **kwargs):
    """Fixture body: a lab that is always taken down again, leaving nothing behind."""
    name = lab_name(tag)
    state = tmp_path_factory.mktemp(f"lab-{name}") / "state"
    try:
        lab = control.up(name, state_dir=state, **kwargs)
        yield lab
    finally:
        control.down(name, state_dir=state)
        assert leftovers(name, state) == []


#: ``with lab_up(tmp_path_factory, tag, **kwargs) as lab:`` -- taken down as the block ends, failing or not.
lab_up = contextlib.contextmanager(make_lab)
