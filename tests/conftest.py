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


def pytest_ignore_collect(collection_path, config):
    """Do not collect the test folders' conftest.py files as doctest modules.

    ``--doctest-modules`` would import each as a module named ``conftest``, and
    two of them in one serial run collide ("import file mismatch"); they hold no
    doctests (pytest still loads them as conftests).
    """
    if collection_path.name == "conftest.py":
        return True
    return None
