"""Shared test settings."""

from __future__ import annotations

import os

import matplotlib

# Rich wraps console output at the terminal width, which is 80 columns under
# pytest-xdist workers (no terminal) and wider elsewhere: fix it, so that tests
# asserting on CLI output see the same lines everywhere.
os.environ["COLUMNS"] = "200"

# Headless plotting everywhere in the tests.
matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")
