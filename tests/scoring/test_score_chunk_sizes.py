"""Any chunk size gives the same list: one pupil per chunk, the whole LA, more than it.

A run whose chunk holds the whole LA once failed with "Failed to create
directory .../marks/00000/duckdb": the features' DuckDB spill folder sat in a
chunk work folder that was only made when session marks had to be rewritten,
so a clean LA large enough to spill could not be scored in one chunk. Each
call to ``build_features`` here first makes DuckDB spill into the folder it is
given, as a large chunk does.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from scoring_la import AS_OF, make_tables, write_tables

import cmerisk.scoring.prepare as prepare
from cmerisk import duck
from cmerisk.score import score_la

PUPILS = 40


def _spill_into(temp_directory: Path) -> None:
    """Make DuckDB write to ``temp_directory`` (a sort larger than its memory)."""
    con = duck.connect(
        config={
            "temp_directory": str(temp_directory),
            "memory_limit": "20MB",
            "threads": 1,
        }
    )
    try:
        con.sql(
            "SELECT count(*) FROM (SELECT md5(range::VARCHAR) AS m FROM range(600000) "
            "ORDER BY m)"
        ).fetchall()
    finally:
        con.close()


@pytest.fixture
def spilling_features(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """``build_features`` as scoring calls it, after a forced spill; its folders."""
    real = prepare.build_features
    used: list[Path] = []

    def build_features(*args, temp_directory=None, **kwargs):
        used.append(Path(temp_directory))
        _spill_into(temp_directory)
        return real(*args, temp_directory=temp_directory, **kwargs)

    monkeypatch.setattr(prepare, "build_features", build_features)
    return used


@pytest.fixture(scope="module")
def clean_la(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small LA with nothing to reject, marks typed as the contract says.

    So nothing makes scoring rewrite the session marks, as in a real extract.
    """
    root = tmp_path_factory.mktemp("clean-la")
    tables = make_tables(PUPILS, seed=5)
    marks = tables["attendance"]
    tables["attendance"] = marks.assign(date=pd.to_datetime(marks["date"]).dt.date)
    return write_tables(tables, root / "la")


@pytest.fixture(scope="module")
def one_pupil_chunks(clean_la, tiny_model, tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("one-pupil") / "out"
    summary = score_la(
        clean_la, model=tiny_model, as_of=AS_OF, out_dir=out, chunk_size=1
    )
    # about one pupil a chunk (buckets the hash leaves without a pupil join another)
    assert PUPILS // 2 < summary.report["chunks"]["count"] <= PUPILS
    return pd.read_parquet(out / "risk_list.parquet")


@pytest.mark.parametrize("chunk_size", [PUPILS, PUPILS + 1, 50_000])
def test_one_chunk_for_the_whole_la_spills_and_matches_one_pupil_chunks(
    clean_la, tiny_model, tmp_path, spilling_features, one_pupil_chunks, chunk_size
):
    summary = score_la(
        clean_la,
        model=tiny_model,
        as_of=AS_OF,
        out_dir=tmp_path / "out",
        chunk_size=chunk_size,
    )
    assert summary.report["chunks"]["count"] == 1
    assert len(spilling_features) == 1
    c = summary.counts
    assert c["rejected"] == 0 and c["scored"] == c["pupils_in"] == PUPILS
    risk = pd.read_parquet(tmp_path / "out" / "risk_list.parquet")
    pd.testing.assert_frame_equal(risk, one_pupil_chunks)
    # the spill folders are gone with the run
    assert not list(tmp_path.glob(".cmerisk-score-*"))


def test_every_chunk_can_spill(clean_la, tiny_model, tmp_path, spilling_features):
    summary = score_la(
        clean_la, model=tiny_model, as_of=AS_OF, out_dir=tmp_path, chunk_size=15
    )
    n = summary.report["chunks"]["count"]
    assert n == 3 and len(spilling_features) == n
    assert len(set(spilling_features)) == n  # a spill folder of its own per chunk


def test_every_chunk_is_given_the_whole_las_coverage(
    clean_la, tiny_model, tmp_path, monkeypatch
):
    """Chunks share the LA's coverage: a chunk of pupils who all joined late must
    not read its windows as reaching before the data (features/coverage.py)."""
    from cmerisk.data.load import read_tables
    from cmerisk.features import build_features

    real = prepare.build_features
    given = []

    def spy(*args, coverage=None, **kwargs):
        given.append(coverage)
        return real(*args, coverage=coverage, **kwargs)

    monkeypatch.setattr(prepare, "build_features", spy)
    summary = score_la(
        clean_la, model=tiny_model, as_of=AS_OF, out_dir=tmp_path / "out", chunk_size=5
    )
    whole = build_features(read_tables(clean_la), as_of=AS_OF).attrs["coverage"]
    assert len(given) == summary.report["chunks"]["count"] > 1
    assert all(c is not None and c.as_dict() == whole for c in given)
    assert summary.report["coverage"] == whole  # and summary.json says what it was
