"""Splitting tables by pupil: nothing lost or duplicated, each pupil in one chunk."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from cmerisk.errors import DataError
from cmerisk.scoring.chunks import (
    bucket_count,
    bucket_homes,
    check_inputs,
    combine_digests,
    connect,
    digest_files,
    find_inputs,
    split_by_pupil,
)


def _pupils(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pupil_id": [f"{i:024x}" for i in range(n)],
            "date_of_birth": pd.to_datetime("2012-01-01").date(),
            "sex": "F",
            "ethnicity_major": "White",
            "idaci_decile": 5,
        }
    )


def _census(n: int) -> pd.DataFrame:
    ids = [f"{i:024x}" for i in range(n)] * 2
    return pd.DataFrame(
        {
            "pupil_id": ids,
            "census_date": ["2024-10-03"] * n + ["2025-01-16"] * n,
            "school_urn": "100001",
            "school_phase": "primary",
            "nc_year": "6",
            "fsm_eligible": False,
            "sen_provision": "N",
            "sen_primary_need": None,
            "enrolment_status": "C",
        }
    )


def _write(folder: Path, fmt: str, n: int = 200) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in {"pupils": _pupils(n), "census": _census(n)}.items():
        if fmt == "csv":
            frame.to_csv(folder / f"{name}.csv", index=False)
        else:
            frame.to_parquet(folder / f"{name}.parquet")
    # a folder of parts, and a table with rows for only one pupil
    parts = folder / "exclusions"
    parts.mkdir()
    ex = pd.DataFrame(
        {
            "pupil_id": ["000000000000000000000003"] * 2,
            "school_urn": "100001",
            "start_date": ["2024-11-01", "2024-12-01"],
            "category": "suspension",
            "sessions": [2, 4],
        }
    )
    for i in range(2):
        part = ex.iloc[[i]]
        if fmt == "csv":
            part.to_csv(parts / f"part-{i}.csv", index=False)
        else:
            part.to_parquet(parts / f"part-{i}.parquet")


def _read(path: Path) -> pd.DataFrame:
    files = sorted(path.iterdir())
    if files[0].suffix == ".csv":
        return pd.concat([pd.read_csv(f, dtype=str) for f in files], ignore_index=True)
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("buckets", [1, 3, 8])
def test_every_row_lands_in_exactly_one_bucket_with_its_pupil(tmp_path, fmt, buckets):
    data = tmp_path / "la"
    _write(data, fmt)
    inputs = find_inputs(data)
    assert sorted(inputs) == ["census", "exclusions", "pupils"]
    folders = split_by_pupil(inputs, buckets=buckets, spill=tmp_path / "spill")
    assert len(folders) == buckets  # 200 pupils: no bucket is left empty
    seen: dict[str, int] = {}
    totals = {"pupils": 0, "census": 0, "exclusions": 0}
    for k, folder in enumerate(folders):
        # every bucket has every table, in the input's format
        assert sorted(p.name for p in folder.iterdir()) == sorted(totals)
        for name in totals:
            frame = _read(folder / name)
            totals[name] += len(frame)
            for pid in frame["pupil_id"].astype(str):
                assert seen.setdefault(pid, k) == k, "a pupil's records are split"
        for part in (folder / "census").iterdir():
            assert part.suffix == f".{fmt}"
    assert totals == {"pupils": 200, "census": 400, "exclusions": 2}
    assert len(seen) == 200


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_buckets_without_pupils_join_another_and_nothing_is_lost(tmp_path, fmt):
    """More buckets than pupils: no folder lacks a pupil; orphan rows are kept."""
    data = tmp_path / "la"
    _write(data, fmt, n=6)
    orphan = _census(1).assign(pupil_id="f" * 24).iloc[[0]]
    census = pd.concat([_census(6), orphan], ignore_index=True)
    if fmt == "csv":
        census.to_csv(data / "census.csv", index=False)
    else:
        census.to_parquet(data / "census.parquet")
    folders = split_by_pupil(find_inputs(data), buckets=40, spill=tmp_path / "spill")
    assert 1 < len(folders) <= 6
    got = {name: [] for name in ("pupils", "census", "exclusions")}
    for folder in folders:
        for name in got:
            got[name].append(_read(folder / name))
        assert len(got["pupils"][-1]) and len(got["census"][-1])
    assert [sum(map(len, got[n])) for n in got] == [6, 13, 2]
    assert "f" * 24 in set(pd.concat(got["census"])["pupil_id"].astype(str))


def test_bucket_homes():
    assert bucket_homes({0, 2}, buckets=4) == [0, 0, 2, 2]
    assert bucket_homes({3}, buckets=4) == [3, 3, 3, 3]
    assert bucket_homes(set(range(3)), buckets=3) == [0, 1, 2]
    assert bucket_homes(set(), buckets=3) == [0, 0, 0]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_small_tables_keep_their_original_row_numbers(tmp_path, fmt):
    data = tmp_path / "la"
    _write(data, fmt, n=50)
    original = _census(50)
    folders = split_by_pupil(find_inputs(data), buckets=4, spill=tmp_path / "spill")
    census = pd.concat([_read(f / "census") for f in folders], ignore_index=True)
    census["__row"] = census["__row"].astype(int)
    assert sorted(census["__row"]) == list(range(1, 101))
    for _, r in census.iterrows():
        o = original.iloc[r["__row"] - 1]
        assert (o["pupil_id"], str(o["census_date"])) == (
            r["pupil_id"],
            str(r["census_date"]),
        )


def test_windows_1252_csv_is_read(tmp_path):
    data = tmp_path / "la"
    _write(data, "csv", n=4)
    frame = pd.read_csv(data / "pupils.csv", dtype=str)
    frame["first_language"] = "Fran\xe7ais"
    frame.to_csv(data / "pupils.csv", index=False, encoding="cp1252")
    folders = split_by_pupil(find_inputs(data), buckets=2, spill=tmp_path / "spill")
    pupils = pd.concat([_read(f / "pupils") for f in folders])
    assert set(pupils["first_language"]) == {"Fran\xe7ais"}


def test_csv_values_pass_through_as_text(tmp_path):
    data = tmp_path / "la"
    _write(data, "csv", n=5)
    folders = split_by_pupil(find_inputs(data), buckets=2, spill=tmp_path / "spill")
    census = pd.concat([_read(f / "census") for f in folders])
    assert set(census["census_date"]) == {"2024-10-03", "2025-01-16"}
    assert set(census["school_urn"]) == {"100001"}


def test_a_pupil_stays_together_whatever_the_id_type(tmp_path):
    data = tmp_path / "la"
    data.mkdir()
    ids = [101, 202, 303, 404, 505]
    pd.DataFrame({"pupil_id": ids, "x": range(5)}).to_parquet(data / "pupils.parquet")
    pd.DataFrame({"pupil_id": [f" {i}" for i in ids] * 2, "y": range(10)}).to_csv(
        data / "census.csv", index=False
    )
    folders = split_by_pupil(find_inputs(data), buckets=3, spill=tmp_path / "spill")
    for folder in folders:
        pupils = set(_read(folder / "pupils")["pupil_id"].astype(str))
        census = set(_read(folder / "census")["pupil_id"].astype(str).str.strip())
        assert census == pupils


def test_find_inputs_ignores_other_files_and_refuses_duplicates(tmp_path):
    data = tmp_path / "la"
    _write(data, "parquet", n=3)
    (data / "manifest.json").write_text("{}")
    (data / "notes.csv").write_text("a\n1\n")
    assert sorted(find_inputs(data)) == ["census", "exclusions", "pupils"]
    _pupils(3).to_csv(data / "pupils.csv", index=False)
    with pytest.raises(DataError, match="pupils: more than one file"):
        find_inputs(data)


def test_find_inputs_needs_a_folder(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        find_inputs(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (lambda d: (d / "census.parquet").unlink(), "required table.*census"),
        (
            lambda d: (
                _census(3).drop(columns="nc_year").to_parquet(d / "census.parquet")
            ),
            "'census'.*lacks required column.*nc_year",
        ),
        (
            lambda d: _pupils(0).to_parquet(d / "pupils.parquet"),
            "'pupils'.*has no rows",
        ),
        (
            lambda d: (d / "pupils.parquet").write_bytes(b"not parquet"),
            "'pupils': cannot read",
        ),
    ],
)
def test_check_inputs_names_table_and_column(tmp_path, break_it, message):
    data = tmp_path / "la"
    _write(data, "parquet", n=3)
    break_it(data)
    con = connect(spill=tmp_path / "tmp")
    with pytest.raises(DataError, match=message):
        check_inputs(find_inputs(data), con=con, spill=tmp_path / "utf8")


def test_empty_csv_file_is_a_clear_error(tmp_path):
    data = tmp_path / "la"
    _write(data, "csv", n=3)
    (data / "census.csv").write_text("")
    con = connect(spill=tmp_path / "tmp")
    with pytest.raises(DataError, match=r"'census': census\.csv is empty"):
        check_inputs(find_inputs(data), con=con, spill=tmp_path / "utf8")


def test_bucket_count():
    assert bucket_count(1, chunk_size=10) == 1
    assert bucket_count(10, chunk_size=10) == 1
    assert bucket_count(11, chunk_size=10) == 2
    assert bucket_count(0, chunk_size=10) == 1


def test_digests_change_with_content(tmp_path):
    a = tmp_path / "a.csv"
    a.write_text("x\n1\n")
    d1 = digest_files([a])
    a.write_text("x\n2\n")
    assert digest_files([a]) != d1
    assert combine_digests({"p": "1", "c": "2"}) == combine_digests(
        {"c": "2", "p": "1"}
    )


def test_connection_spills_to_the_given_folder(tmp_path):
    con = connect(spill=tmp_path / "tmp", memory_limit="100MB")
    (setting,) = con.execute("SELECT current_setting('temp_directory')").fetchall()[0]
    assert Path(setting) == tmp_path / "tmp"
    assert isinstance(con, duckdb.DuckDBPyConnection)


@pytest.mark.slow
def test_a_large_csv_is_split_within_the_memory_limit(tmp_path):
    """DuckDB's partitioned CSV writer ran out of memory on a large CSV (a 1.8 GB
    attendance file at the 1 GB limit); 144 MB of marks at a 200 MB limit is the
    same failure in small. The split goes through Parquet and loses nothing."""
    data = tmp_path / "la"
    _write(data, "csv")
    marks = data / "attendance.csv"
    con = connect(spill=tmp_path / "duck", memory_limit="200MB")
    con.execute(
        "COPY (SELECT printf('%024x', i % 200) AS pupil_id, '100001' AS school_urn, "
        "DATE '2024-09-02' + (i // 10000)::INT AS date, "
        "CASE WHEN i % 2 = 0 THEN 'AM' ELSE 'PM' END AS session, '/' AS code "
        f"FROM range(3000000) t(i)) TO '{marks.as_posix()}' (FORMAT csv, HEADER)"
    )
    assert marks.stat().st_size > 140e6
    folders = split_by_pupil(
        find_inputs(data), buckets=2, spill=tmp_path / "spill", con=con
    )
    counts = con.execute(
        "SELECT count(*), count(DISTINCT pupil_id) FROM read_csv($files, header=true, "
        "all_varchar=true)",
        {"files": [str(f / "attendance" / "*.csv") for f in folders]},
    ).fetchall()[0]
    assert counts == (3_000_000, 200)
    per_bucket = [
        set(
            con.execute(
                "SELECT DISTINCT pupil_id FROM read_csv($f, header=true, "
                "all_varchar=true)",
                {"f": str(f / "attendance" / "*.csv")},
            ).fetchnumpy()["pupil_id"]
        )
        for f in folders
    ]
    assert not per_bucket[0] & per_bucket[1]  # each pupil's marks in one bucket
