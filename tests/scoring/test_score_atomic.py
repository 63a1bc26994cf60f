"""A failed or killed run leaves the previous outputs whole, never half a list."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import textwrap

import pytest
from scoring_la import AS_OF

from cmerisk.score import score_la
from cmerisk.scoring import outputs

OUTPUTS = (
    "risk_list.csv",
    "risk_list.parquet",
    "transition_list.csv",
    "rejects.csv",
    "summary.json",
)


def _fingerprint(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def previous_run(dirty_la, tiny_model, tmp_path):
    out = tmp_path / "out"
    score_la(dirty_la[0], model=tiny_model, as_of=AS_OF, out_dir=out, capacity=10)
    return out, _fingerprint(out)


@pytest.mark.parametrize(
    "fail_on",
    [
        pytest.param("risk_list.csv", marks=pytest.mark.slow),
        pytest.param("transition_list.csv", marks=pytest.mark.slow),
        "rejects.csv",  # the last list staged: every other output is staged by then
    ],
)
def test_failure_mid_write_keeps_every_previous_output(
    previous_run, dirty_la, tiny_model, monkeypatch, fail_on
):
    out, before = previous_run
    real = outputs.copy_query

    def failing(con, query, path, *, fmt):
        real(con, query, path, fmt=fmt)
        if path.name.startswith(f".{fail_on}."):
            with open(path, "r+b") as f:  # leave it half-written, then fail
                f.truncate(path.stat().st_size // 2)
            raise OSError("disk full")

    monkeypatch.setattr("cmerisk.scoring.outputs.copy_query", failing)
    with pytest.raises(OSError, match="disk full"):
        score_la(dirty_la[0], model=tiny_model, as_of=AS_OF, out_dir=out, capacity=25)
    assert _fingerprint(out) == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".cmerisk-score-")]


KILLER = textwrap.dedent("""
    import os, signal, sys
    from datetime import date
    from pathlib import Path
    import cmerisk.atomic as atomic

    real_replace = os.replace
    calls = []
    def replace(src, dst):
        calls.append(Path(dst).name)
        if len(calls) == int(sys.argv[5]):
            # killed while moving the outputs into place
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst)
    atomic.os.replace = replace

    from cmerisk.score import score_la
    as_of = date.fromisoformat(sys.argv[3])
    score_la(Path(sys.argv[1]), model=sys.argv[2], as_of=as_of,
             out_dir=Path(sys.argv[4]), capacity=25)
""")


def _complete(out):
    """Every output there, whole: parseable, lists consistent with each other."""
    import json

    import pandas as pd

    risk = pd.read_csv(out / "risk_list.csv")
    assert len(risk) == len(pd.read_parquet(out / "risk_list.parquet")) > 0
    pd.read_csv(out / "transition_list.csv")
    pd.read_csv(out / "rejects.csv")
    assert json.loads((out / "summary.json").read_text())["counts"]["scored"] > 0


# the commit moves: pupils/ aside (1), new pupils/ in (2), then the five files (3..7)
@pytest.mark.parametrize(
    "kill_at",
    [
        pytest.param(1, marks=pytest.mark.slow),
        pytest.param(2, marks=pytest.mark.slow),
        3,
        pytest.param(5, marks=pytest.mark.slow),
        pytest.param(7, marks=pytest.mark.slow),
    ],
)
def test_killed_run_leaves_no_half_written_file(
    previous_run, dirty_la, tiny_model, kill_at
):
    out, before = previous_run
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLER,
            str(dirty_la[0]),
            str(tiny_model),
            AS_OF.isoformat(),
            str(out),
            str(kill_at),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    after = {k: v for k, v in _fingerprint(out).items() if not k.startswith(".")}
    if kill_at == 1:  # nothing moved yet: exactly the previous run's outputs
        assert after == before
    _complete(out)
    # the next run cleans up what the killed one left (temporary files, spill folder)
    score_la(dirty_la[0], model=tiny_model, as_of=AS_OF, out_dir=out, capacity=25)
    _complete(out)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".cmerisk-score-")]
