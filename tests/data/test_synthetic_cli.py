"""`cmerisk synth` end to end: key handling, --raw-upn, --report, --like."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cmerisk.cli import app
from cmerisk.data.pseudonymise import (
    DEMO_KEY,
    DEMO_KEY_WARNING,
    KEY_ENV_VAR,
    looks_pseudonymised,
    pseudonymise_upn,
)
from cmerisk.data.upn import is_valid_upn
from cmerisk.errors import EXIT_CONFIG, EXIT_DATA, EXIT_KEY, EXIT_OK

runner = CliRunner()
SMALL = ["--pupils", "600", "--years", "1", "--quiet"]


def _synth(*args: str, key: str | None = None):
    env = {"COLUMNS": "200", KEY_ENV_VAR: key or ""}
    return runner.invoke(app, ["synth", *args], env=env)


def _ids(folder: Path) -> list[str]:
    return pq.read_table(folder / "pupils.parquet")["pupil_id"].to_pylist()


def test_refuses_without_a_key(tmp_path: Path) -> None:
    res = _synth("--out", str(tmp_path / "la"), *SMALL)
    assert res.exit_code == EXIT_KEY
    assert "No pseudonymisation key" in res.output and "--demo" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "la").exists()


def test_demo_key_only_when_asked_and_loudly(tmp_path: Path) -> None:
    res = _synth("--out", str(tmp_path / "la"), "--demo", *SMALL)
    assert res.exit_code == EXIT_OK, res.output
    assert DEMO_KEY_WARNING.split(":")[0] in " ".join(res.output.split())
    ids = _ids(tmp_path / "la")
    assert all(looks_pseudonymised(i) for i in ids)
    raw = _synth("--out", str(tmp_path / "raw"), "--raw-upn", *SMALL)
    assert raw.exit_code == EXIT_OK
    assert ids == [pseudonymise_upn(u, key=DEMO_KEY) for u in _ids(tmp_path / "raw")]


def test_the_las_own_key_wins_over_demo(tmp_path: Path) -> None:
    key = "an-la-secret-key-0123456789"
    res = _synth("--out", str(tmp_path / "la"), "--demo", *SMALL, key=key)
    assert res.exit_code == EXIT_OK
    assert DEMO_KEY_WARNING.split(":")[0] not in res.output
    raw = _synth("--out", str(tmp_path / "raw"), "--raw-upn", *SMALL)
    assert raw.exit_code == EXIT_OK
    expected = [pseudonymise_upn(u, key=key.encode()) for u in _ids(tmp_path / "raw")]
    assert _ids(tmp_path / "la") == expected


def test_raw_upn_says_so_and_writes_valid_upns(tmp_path: Path) -> None:
    res = _synth("--out", str(tmp_path / "la"), "--raw-upn", *SMALL)
    assert res.exit_code == EXIT_OK
    assert "RAW UPNs" in res.output
    assert all(is_valid_upn(u) for u in _ids(tmp_path / "la"))
    manifest = json.loads((tmp_path / "la" / "manifest.json").read_text())
    assert manifest["arguments"]["raw_upn"] is True


def test_report_after_writing_and_alone_on_an_existing_folder(tmp_path: Path) -> None:
    out = tmp_path / "la"
    res = _synth("--out", str(out), "--demo", "--report", *SMALL)
    assert res.exit_code == EXIT_OK, res.output
    assert "target vs achieved" in res.output and "targets met" in res.output
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}
    again = _synth(
        "--out", str(out), "--report"
    )  # measures; writes nothing, needs no key
    assert again.exit_code == EXIT_OK, again.output
    assert "Persistent absence" in again.output
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")} == before


def test_like_reports_against_that_las_rates(tmp_path: Path) -> None:
    out = tmp_path / "la"
    res = _synth("--out", str(out), "--demo", "--like", "330", "--report", *SMALL)
    assert res.exit_code == EXIT_OK, res.output
    assert "like LA 330" in res.output and "Birmingham" in res.output
    assert json.loads((out / "manifest.json").read_text())["arguments"]["like"] == "330"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--like", "999"], EXIT_CONFIG, "no such LA"),
        (["--pupils", "10"], EXIT_CONFIG, "at least 500"),
        (["--history-years", "20"], EXIT_CONFIG, "--history-years 20"),
    ],
)
def test_bad_options_are_clear_errors(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    res = _synth("--out", str(tmp_path / "la"), "--demo", *SMALL, *args)
    assert res.exit_code == code
    assert message in res.output and "Traceback" not in res.output


def test_history_years_adds_records_before_the_marks(tmp_path: Path) -> None:
    res = _synth(
        "--out", str(tmp_path / "la"), "--demo", *SMALL, "--history-years", "2"
    )
    assert res.exit_code == EXIT_OK, res.output
    assert "records from 2019-09-01, session marks from 2021-09-01" in res.output
    manifest = json.loads((tmp_path / "la" / "manifest.json").read_text())
    assert manifest["arguments"]["history_years"] == 2
    census = pq.read_table(tmp_path / "la" / "census.parquet")["census_date"]
    assert str(min(census.to_pylist())) < "2020"


def test_refuses_to_overwrite_a_folder_that_is_not_a_synthetic_la(
    tmp_path: Path,
) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    res = _synth("--out", str(tmp_path), "--demo", *SMALL)
    assert res.exit_code == EXIT_DATA
    assert "refusing to overwrite" in res.output
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_report_alone_on_a_folder_without_the_tables_says_what_is_missing(
    tmp_path: Path,
) -> None:
    (tmp_path / "pupils.csv").write_text("pupil_id\n")
    res = _synth("--out", str(tmp_path), "--report")
    assert res.exit_code == EXIT_DATA
    assert "missing" in res.output and "census.parquet" in res.output
    assert "Traceback" not in res.output
