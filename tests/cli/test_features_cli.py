"""`cmerisk features` end to end on the tiny LA written as Parquet."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cmerisk.cli import app

sys.path.insert(0, str(Path(__file__).parents[1] / "features"))
import tiny_la_features as tiny


@pytest.fixture
def la_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "la"
    folder.mkdir()
    t = tiny.tiny_tables()
    for name in t.names:
        t[name].to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def test_features_with_labels_written_as_parquet(
    la_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "features.parquet"
    result = CliRunner().invoke(
        app,
        [
            "features",
            "--data",
            str(la_folder),
            "--as-of",
            "2024-05-16",
            "--labels",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert frame["pupil_id"].tolist() == ["p1", "p2", "p5", "p6"]
    assert frame.set_index("pupil_id")["cme"].to_dict() == {
        "p1": 1,
        "p2": 0,
        "p5": 0,
        "p6": 0,
    }
    assert "4 pupils on roll at 2024-05-16" in result.output
    assert "census rows whose pupil is not in the pupils table" in result.output
    assert not list(out.parent.glob("*.tmp"))


def test_a_bad_date_is_a_message_not_a_traceback(
    la_folder: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        app,
        [
            "features",
            "--data",
            str(la_folder),
            "--as-of",
            "16/05/2024",
            "--out",
            str(tmp_path / "f.parquet"),
        ],
    )
    assert result.exit_code == 2
    assert "--as-of must be a date like" in result.output
    assert "Traceback" not in result.output


def test_labels_without_a_cme_register_are_refused(
    la_folder: Path, tmp_path: Path
) -> None:
    (la_folder / "cme_episodes.parquet").unlink()
    out = tmp_path / "f.parquet"
    result = CliRunner().invoke(
        app,
        [
            "features",
            "--data",
            str(la_folder),
            "--as-of",
            "2024-05-16",
            "--labels",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert result.exit_code == 1
    assert "cannot make CME labels without the cme_episodes table" in result.output
    assert not out.exists()
