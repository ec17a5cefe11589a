"""Test-wide settings."""

from __future__ import annotations

import os

from hypothesis import settings

# CI runs a fixed, reproducible set of examples (a red CI must mean a regression, not a new
# random draw); locally every run explores new inputs.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
