"""Shared test settings."""

from __future__ import annotations

import os

import matplotlib

# Headless plotting everywhere in the tests.
matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")
