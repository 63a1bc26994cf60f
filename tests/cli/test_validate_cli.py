from __future__ import annotations

import importlib.util
import json
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cmerisk.cli import app
from cmerisk.data.contract import TABLES
from cmerisk.errors import EXIT_DATA, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE

_spec = importlib.util.spec_from_file_location(
    "_tiny_la_for_cli", Path(__file__).parents[1] / "data" / "tiny_la.py"
)
tiny = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny)

runner = CliRunner()


def _run(*args: str):
    result = runner.invoke(app, ["validate", *args], env={"COLUMNS": "200"})
    assert "Traceback" not in result.output
    assert result.exit_code != EXIT_INTERNAL, result.output
    return result


def test_a_valid_folder_exits_0_with_row_counts_and_dates(tmp_path: Path) -> None:
    folder = tiny.write_folder(
        tiny.tiny_tables(), tmp_path / "la", parts=("attendance",)
    )
    result = _run(str(folder), "--as-of", "2024-05-16")
    assert result.exit_code == EXIT_OK, result.output
    assert "valid" in result.output and "Tables" in result.output
    assert "census_date" in result.output and "2023-10-05" in result.output
    assert "after_as_of" in result.output  # warnings are shown but do not fail


def test_bad_data_exits_1_naming_table_column_rule_without_identifiers(
    tmp_path: Path,
) -> None:
    t = tiny.tiny_tables()
    t["census"].loc[1, "nc_year"] = "13"
    t["pupils"] = pd.concat([t["pupils"], t["pupils"].iloc[[0]].assign(sex="M")])
    t["exclusions"] = t["exclusions"].drop(columns="category")
    folder = tiny.write_folder(t, tmp_path / "la")
    report = tmp_path / "report.json"
    result = _run(str(folder), "--json", str(report))
    assert result.exit_code == EXIT_DATA
    for text in (
        "census",
        "nc_year",
        "unknown_code",
        "'13'",
        "duplicate_key",
        "missing_column",
    ):
        assert text in result.output
    for pid in (tiny.P1, tiny.P2, tiny.P3):
        assert pid not in result.output and pid not in report.read_text()
    saved = json.loads(report.read_text())
    assert saved["ok"] is False
    assert {"table": "exclusions", "rule": "missing_column"}.items() <= next(
        f for f in saved["findings"] if f["table"] == "exclusions"
    ).items()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--as-of", "16/05/2024"], EXIT_USAGE, "--as-of must be a date"),
        ([], EXIT_DATA, "is not a folder"),
    ],
)
def test_bad_arguments_are_explained(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    result = _run(str(tmp_path / "nowhere"), *args)
    assert result.exit_code == code
    assert message in result.output


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00\x01garbage\xff", b"pupil_id\n", b'a,b\n"unterminated\n'],
    ids=["empty", "binary", "header-only", "bad-quote"],
)
def test_broken_files_exit_1_with_a_message(tmp_path: Path, content: bytes) -> None:
    t = tiny.tiny_tables()
    del t["census"]
    folder = tiny.write_folder(t, tmp_path / "la")
    (folder / "census.csv").write_bytes(content)
    result = _run(str(folder))
    assert result.exit_code == EXIT_DATA
    assert "census" in result.output


_CORRUPTIONS = st.sampled_from(
    [
        "unknown_code",
        "wrong_type",
        "duplicate",
        "empty_file",
        "missing_column",
        "late",
        "garbage",
    ]
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    table=st.sampled_from(list(TABLES)),
    kind=_CORRUPTIONS,
    fmt=st.sampled_from(["csv", "parquet"]),
)
def test_malformed_folders_never_give_a_traceback(
    table: str, kind: str, fmt: str
) -> None:
    t = {
        k: v for k, v in tiny.tiny_tables().items() if k in {"pupils", "census", table}
    }
    frame = t[table]
    column = next(c.name for c in TABLES[table].columns if c.kind == "date")
    if kind == "unknown_code":
        code_cols = [c.name for c in TABLES[table].columns if c.allowed]
        if code_cols:
            frame.loc[0, code_cols[0]] = "??"
    elif kind == "wrong_type":
        frame[column] = "not-a-value"
    elif kind == "duplicate":
        t[table] = pd.concat([frame, frame.iloc[[0]]])
    elif kind == "missing_column":
        t[table] = frame.drop(columns=column)
    elif kind == "late" and TABLES[table].event_date:
        frame.loc[0, TABLES[table].event_date] = "2030-01-01"
    with tempfile.TemporaryDirectory() as tmp:
        folder = tiny.write_folder(t, Path(tmp) / "la", fmt=fmt)
        target = folder / f"{table}.{fmt}"
        if kind == "empty_file":
            target.write_bytes(b"")
        elif kind == "garbage":
            target.write_bytes(b"\x89PNG\r\n\x1a\n not a table")
        result = _run(str(folder), "--as-of", "2024-05-16")
    assert result.exit_code in (EXIT_OK, EXIT_DATA), result.output
    if kind in ("wrong_type", "missing_column", "empty_file", "garbage", "duplicate"):
        assert result.exit_code == EXIT_DATA
        assert table in result.output
