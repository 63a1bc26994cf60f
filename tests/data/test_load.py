from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from tiny_la import P1, P2, tiny_tables, write_folder

from cmerisk.data.load import (
    find_tables,
    load_tables,
    read_tables,
    validate_folder,
)
from cmerisk.errors import DataError

AS_OF = date(2024, 5, 16)


def _marks(tables) -> pd.DataFrame:
    with duckdb.connect() as con:
        frame = tables.attendance_relation(con).df()
    return frame.sort_values(["pupil_id", "date", "session"]).reset_index(drop=True)


@pytest.mark.parametrize("parts", [(), ("attendance", "census")])
def test_csv_and_parquet_folders_read_the_same(
    tmp_path: Path, parts: tuple[str, ...]
) -> None:
    csv = read_tables(
        write_folder(tiny_tables(), tmp_path / "csv", fmt="csv", parts=parts)
    )
    parquet = read_tables(
        write_folder(tiny_tables(), tmp_path / "pq", fmt="parquet", parts=parts)
    )
    assert csv.names == parquet.names == list(tiny_tables())  # contract order
    for name in csv.names:
        pd.testing.assert_frame_equal(csv[name], parquet[name], check_dtype=True)
    assert str(csv["census"]["census_date"].dtype) == "datetime64[us]"
    assert csv["census"]["fsm_eligible"].tolist() == [True, False, True, True]
    assert csv["pupils"]["idaci_decile"].tolist()[:2] == [1, 7]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_large_session_marks_stay_on_disk(tmp_path: Path, fmt: str) -> None:
    t = tiny_tables()
    if fmt == "parquet":  # typed as the contract says: dates as date32
        t["attendance"]["date"] = pd.to_datetime(t["attendance"]["date"]).dt.date
    folder = write_folder(t, tmp_path, fmt=fmt, parts=("attendance",))
    small = read_tables(folder)
    large = read_tables(folder, max_rows_in_memory=0)
    assert "attendance" in small.frames and not small.attendance_files
    assert "attendance" not in large.frames and len(large.attendance_files) == 2
    assert large.has("attendance")
    loaded = load_tables(folder, max_rows_in_memory=0, work_dir=tmp_path / "work")
    # CSV marks on disk are rewritten as typed Parquet; typed Parquet is used as it is.
    # (dates written as text in Parquet would be rewritten too)
    files = loaded.tables.attendance_files
    assert files and all(str(f).endswith(".parquet") for f in files)
    assert (str(files[0]).startswith(str(tmp_path / "work"))) == (fmt == "csv")
    pd.testing.assert_frame_equal(
        _marks(loaded.tables)[["pupil_id", "session", "code"]],
        _marks(small)[["pupil_id", "session", "code"]],
    )


def test_load_tables_sets_rejects_aside_and_says_why(tmp_path: Path) -> None:
    t = tiny_tables()
    t["census"].loc[1, "nc_year"] = "13"
    t["attendance"].loc[0, "code"] = "ZZ"
    folder = write_folder(t, tmp_path / "la", parts=("attendance",))
    result = load_tables(
        folder, as_of=AS_OF, max_rows_in_memory=0, work_dir=tmp_path / "w"
    )
    assert len(result.tables["census"]) == 3
    assert P2 not in set(result.tables["census"]["pupil_id"])
    rejects = result.rejects
    assert set(zip(rejects["table"], rejects["rule"], strict=True)) == {
        ("census", "unknown_code"),
        ("attendance", "unknown_code"),
    }
    assert rejects.loc[rejects["table"] == "census", "row"].tolist() == [2]
    assert set(rejects["pupil_id"]) == {P1, P2}
    assert len(_marks(result.tables)) == 5


def test_load_tables_raises_listing_every_error_or_reports_them(tmp_path: Path) -> None:
    t = tiny_tables()
    del t["census"]
    t["exclusions"] = t["exclusions"].drop(columns="category")
    folder = write_folder(t, tmp_path / "la")
    with pytest.raises(DataError) as e:
        load_tables(folder)
    assert "census: a required table is missing" in str(e.value)
    assert "exclusions.category: a required column is missing" in str(e.value)
    result = load_tables(folder, errors="report")
    assert not result.tables.has("exclusions") and result.tables.has("pupils")
    assert {f.rule for f in result.report.errors} == {"missing_table", "missing_column"}


@pytest.mark.parametrize(
    ("write", "problem"),
    [
        (lambda p: (p / "census.csv").write_bytes(b""), "empty file (0 bytes)"),
        (lambda p: (p / "census.csv").write_text('a,b\n1,2\n"3,4\n'), "not valid CSV"),
        (
            lambda p: (p / "census.parquet").write_bytes(b"PAR1 not really"),
            "not a readable Parquet",
        ),
        (lambda p: (p / "census").mkdir(), "has no .csv or .parquet parts"),
    ],
)
def test_unreadable_files_are_named_with_the_problem(
    tmp_path: Path, write, problem: str
) -> None:
    t = tiny_tables()
    del t["census"]
    folder = write_folder(t, tmp_path / "la")
    write(folder)
    with pytest.raises(DataError, match="census") as e:
        read_tables(folder)
    assert problem in str(e.value)
    report = validate_folder(folder)
    assert [(f.table, f.rule) for f in report.errors] == [("census", "unreadable_file")]


def test_a_table_in_two_files_is_ambiguous(tmp_path: Path) -> None:
    folder = write_folder(tiny_tables(), tmp_path / "la")
    tiny_tables()["ehe"].to_parquet(folder / "ehe.parquet")
    with pytest.raises(
        DataError, match=r"ehe: more than one file .*ehe\.csv, ehe\.parquet"
    ):
        read_tables(folder)


def test_other_files_are_ignored_and_unknown_tables_warned(tmp_path: Path) -> None:
    folder = write_folder(tiny_tables(), tmp_path / "la")
    (folder / "manifest.json").write_text("{}")
    (folder / "_rejects.csv").write_text("a\n1\n")
    (folder / "school_meals.csv").write_text("a\n1\n")
    located, findings = find_tables(folder)
    assert "manifest" not in located and "_rejects" not in located
    assert [(f.table, f.rule) for f in findings] == [("school_meals", "unknown_file")]
    assert validate_folder(folder, as_of=AS_OF).ok


def test_read_only_the_tables_asked_for(tmp_path: Path) -> None:
    folder = write_folder(tiny_tables(), tmp_path / "la", parts=("attendance",))
    tables = read_tables(folder, tables=["pupils", "ehe"])
    assert tables.names == ["pupils", "ehe"]
    with pytest.raises(ValueError, match="unknown table"):
        read_tables(folder, tables=["pupil"])


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is not a folder"):
        read_tables(tmp_path / "nowhere")


def test_windows_1252_csv_and_uk_dates_are_read(tmp_path: Path) -> None:
    folder = write_folder(tiny_tables(), tmp_path / "la")
    text = (
        "pupil_id,start_date,end_date,note\n" + f"{P1},01/02/2024,30/06/2024,caf\xe9\n"
    )
    (folder / "ehe.csv").write_bytes(text.encode("cp1252"))
    tables = read_tables(folder)
    assert tables["ehe"]["start_date"].iloc[0] == pd.Timestamp("2024-02-01")
    assert tables["ehe"]["note"].iloc[0] == "caf\xe9"


def test_unreadable_values_are_kept_as_written_for_validation_to_name(
    tmp_path: Path,
) -> None:
    t = tiny_tables()
    t["ehe"].loc[0, "end_date"] = "31/13/2024"
    folder = write_folder(t, tmp_path / "la")
    tables = read_tables(folder)
    assert tables["ehe"]["end_date"].tolist() == ["31/13/2024"]
    report = validate_folder(folder)
    (finding,) = [f for f in report.findings if f.table == "ehe"]
    assert (finding.rule, finding.examples) == (
        "unreadable_value",
        ("row 1: '31/13/2024'",),
    )
    assert load_tables(folder).tables["ehe"].empty


def test_uk_dates_in_large_csv_marks_are_day_first(tmp_path: Path) -> None:
    t = tiny_tables()
    t["attendance"]["date"] = ["04/09/2023"] * 4 + ["09/09/2024"] * 2
    folder = write_folder(t, tmp_path / "la", parts=("attendance",))
    loaded = load_tables(folder, max_rows_in_memory=0, work_dir=tmp_path / "w")
    days = sorted(set(_marks(loaded.tables)["date"].dt.strftime("%Y-%m-%d")))
    assert days == ["2023-09-04", "2024-09-09"]


def test_csv_marks_on_disk_are_parsed_once_and_the_copy_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checking and cleaning CSV marks on disk parse them into a temporary
    Parquet copy each (not on every scan), and leave no copy behind, even when
    the marks hold rejects."""
    import tempfile

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    made: list[Path] = []
    real = tempfile.mkdtemp

    def mkdtemp(*args, **kwargs):
        path = real(*args, **kwargs)
        made.append(Path(path))
        return path

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    t = tiny_tables()
    t["attendance"].loc[0, "code"] = "ZZ"
    folder = write_folder(t, tmp_path / "la", fmt="csv", parts=("attendance",))
    result = load_tables(
        folder, as_of=AS_OF, max_rows_in_memory=0, work_dir=tmp_path / "w"
    )
    assert "'ZZ'" in " ".join(result.rejects["detail"].astype(str))
    copies = [p for p in made if p.name.startswith("cmerisk-marks-csv-")]
    assert len(copies) == 2  # one for the checks, one for the cleaning
    assert not any(p.exists() for p in copies)
