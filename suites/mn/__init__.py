"""The mobile-node suite (``mipcheck run --suite mn``): the tester plays the i-HA, the x-HA and the VPN gateway.

A vendor's mobile node is tested with a profile (``mipcheck.mn.profile``,
docs/design/mn-loopback.md) and a ``move`` command; the suite judges only
what the device puts on the wire. Case IDs are public interface (reports, CI
filters, the requirement catalogue). ``FAULTS`` maps each case to the
reference mobile node's faults (``mipcheck.mn.faults``) under which it must
fail, or warn for SHOULD-level cases (and the pairs in ``WARN_UNDER``): the
proof that the case can fail at all (``tests/test_suite_mn_sim.py``).
"""

from __future__ import annotations

from .cases import CASES, WARN_UNDER, MnCase, needs_same_address
from .env import LoopbackEnv, MnEnv, SimEnv
from .runner import preflight as PREFLIGHT  # noqa: N812 (a suite's hook, named like CASES)
from .runner import run_mn_suite

SUITE = "mn"

#: case id -> the reference-MN faults each of which must make it fail (or warn).
FAULTS: dict[str, tuple[str, ...]] = {case.id: case.faults for case in CASES}

CASES_BY_ID: dict[str, MnCase] = {case.id: case for case in CASES}

#: cases that apply only when the i-HA and the x-HA share an address (RFC 5265 3.5); the built-in default runs
#: them against a second reference mobile node configured that way.
SAME_ADDRESS_CASES: frozenset[str] = frozenset(case.id for case in CASES if case.applicable is needs_same_address)

__all__ = [
    "CASES",
    "CASES_BY_ID",
    "FAULTS",
    "PREFLIGHT",
    "SUITE",
    "WARN_UNDER",
    "SAME_ADDRESS_CASES",
    "LoopbackEnv",
    "MnCase",
    "MnEnv",
    "SimEnv",
    "run_mn_suite",
]
