"""Test-wide settings: hypothesis draws the same examples on every run and every machine.

A property test that fails for one random draw in a hundred made CI flaky (issue 12); with
``derandomize=True`` the examples are a function of the test alone, and no example database is read or
written, so a clean clone and a developer's checkout run exactly the same cases. To search for new
failures, run with ``HYPOTHESIS_PROFILE=explore`` (random draws, more of them) and turn anything it finds
into an ``@example``.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("deterministic", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, max_examples=1000, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))
