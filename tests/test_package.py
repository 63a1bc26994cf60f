"""Importing cmerisk: OpenMP threads sleep while waiting unless the user chose."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SHOW = "import cmerisk, os; print(os.environ.get('OMP_WAIT_POLICY'))"


@pytest.mark.parametrize(
    ("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")]
)
def test_import_sets_a_passive_openmp_wait_policy_unless_set(given, expected) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    out = subprocess.run(
        [sys.executable, "-c", SHOW],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == expected
