"""Shared test settings.

Hypothesis explores new random examples on every local run, which is how it
finds bugs; CI (``HYPOTHESIS_PROFILE=ci``, set by ``.ci/run``) runs a fixed,
derandomized sequence so that a landing is decided by the code, not by the
seed. Every bug a random run finds is kept as an ``@example`` next to its test.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
