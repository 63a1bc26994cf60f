"""Session-mark aggregation: hand-checked rules, and DuckDB == plain pandas."""

from __future__ import annotations

import importlib.util
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cmerisk.data import codes
from cmerisk.data.school_calendar import school_days
from cmerisk.data.tables import RawTables
from cmerisk.features.attendance import aggregate_marks, attendance_features, connect
from cmerisk.features.attendance_sql import code_table, registration_intervals
from cmerisk.features.quality import DataQuality

_REF = Path(__file__).parents[2] / "benchmarks" / "features_reference.py"
_spec = importlib.util.spec_from_file_location("features_reference", _REF)
assert _spec is not None and _spec.loader is not None
reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)

AS_OF = date(2024, 5, 16)
DAYS = [d for d in school_days(2023) if d < AS_OF]  # this school year's days so far


def _marks(rows: list[tuple[str, str, date, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        rows, columns=["pupil_id", "school_urn", "date", "session", "code"]
    )
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def _days(codes_by_day: list[tuple[str, str]], *, pupil: str = "a", urn: str = "1"):
    """Marks on the last len(codes_by_day) school days before AS_OF: (AM, PM) codes."""
    chosen = DAYS[-len(codes_by_day) :]
    rows = []
    for d, (am, pm) in zip(chosen, codes_by_day, strict=True):
        if am:
            rows.append((pupil, urn, d, "AM", am))
        if pm:
            rows.append((pupil, urn, d, "PM", pm))
    return rows


def _agg(rows, *, roll: pd.DataFrame | None = None, as_of: date = AS_OF) -> pd.Series:
    out = aggregate_marks(
        RawTables({"attendance": _marks(rows)}), as_of=as_of, roll_changes=roll
    )
    return out.loc["a"]


@pytest.mark.parametrize(
    "days, longest, current",
    [
        ([("N", "N"), ("O", "G"), ("U", "N")], 3, 3),
        (
            [("N", "N"), ("/", "N"), ("N", "N")],
            1,
            1,
        ),  # a half-day present breaks the run
        (
            [("N", "N"), ("N", "D"), ("N", "N")],
            3,
            3,
        ),  # D is not counted: N alone decides
        (
            [("N", "N"), ("#", "#"), ("N", "N")],
            2,
            2,
        ),  # closure: neither breaks nor extends
        (
            [("N", "N"), ("N", "N"), ("/", "\\")],
            2,
            0,
        ),  # present on the last day: no current run
        ([("I", "I"), ("N", "N"), ("/", "/")], 1, 0),  # illness is explained
    ],
)
def test_runs_of_unexplained_days(days, longest: int, current: int) -> None:
    a = _agg(_days(days))
    assert (a["longest_run"], a["current_run"]) == (longest, current)


def test_a_day_without_marks_does_not_break_a_run() -> None:
    rows = _days([("N", "N"), ("N", "N"), ("N", "N")])
    rows = [r for r in rows if r[2] != DAYS[-2]]  # the middle day has no marks at all
    assert _agg(rows)["longest_run"] == 2


@pytest.mark.parametrize("age_in_days, unresolved", [(5, 0), (6, 2), (9, 2)])
def test_n_codes_are_unresolved_after_five_school_days(
    age_in_days: int, unresolved: int
) -> None:
    days = [("/", "\\")] * 10
    days[-age_in_days] = ("N", "N")
    assert _agg(_days(days))["unresolved_n"] == unresolved


@pytest.mark.parametrize(
    "codes_, kept, category",
    [
        (["/", "N"], "N", "conflicting"),  # unexplained beats present
        (["I", "O"], "O", "conflicting"),
        (["D", "N"], "N", "dual"),  # dual registration: the counted mark wins
        (["N", "N"], "N", "dup_identical"),
        (["/", "/", "D"], "/", None),  # one identical copy and one dual mark
    ],
)
def test_one_mark_per_session_by_precedence(codes_, kept, category) -> None:
    rows = [("a", str(i), DAYS[-1], "AM", c) for i, c in enumerate(codes_)]
    a = _agg(rows)
    assert a["possible_year"] == 1
    assert a["absent_year"] == (
        codes.ATTENDANCE_CATEGORY[kept] in ("authorised", "unauthorised")
    )
    extras = a[["dup_identical", "dual", "conflicting"]]
    assert extras.sum() == len(codes_) - 1  # every extra mark counted exactly once
    if category is not None:
        assert a[category] == len(codes_) - 1


def test_legacy_codes_map_to_their_current_meaning() -> None:
    a = _agg(_days([("H", "F"), ("J", "/")]))
    assert (a["authorised_year"], a["possible_year"]) == (3, 4)


def test_unknown_codes_and_sessions_are_counted_not_used() -> None:
    rows = [
        *_days([("/", "\\")]),
        ("a", "1", DAYS[-1], "AM", "ZZ"),
        ("a", "1", DAYS[-2], "XX", "N"),
    ]
    a = _agg(rows)
    assert (a["n_unknown"], a["n_bad_session"], a["possible_year"]) == (1, 1, 2)
    assert a["bad_code"] == "ZZ"


def test_marks_outside_registration_are_not_used() -> None:
    # Admitted on DAYS[-3]; deleted on DAYS[-2]: only DAYS[-3] and DAYS[-2] count.
    roll = pd.DataFrame(
        {
            "pupil_id": ["a", "a"],
            "school_urn": ["1", "1"],
            "date": pd.to_datetime([DAYS[-3], DAYS[-2]]),
            "change": ["admission", "deletion"],
        }
    )
    a = _agg(_days([("N", "N")] * 5), roll=roll)
    assert (a["possible_year"], a["n_outside"]) == (4, 6)


@pytest.mark.parametrize("readmitted", [0, 1])  # same day, next day
def test_deleted_and_readmitted_to_the_same_school_stays_registered(
    readmitted: int,
) -> None:
    roll = pd.DataFrame(
        {
            "pupil_id": ["a"] * 3,
            "school_urn": ["1"] * 3,
            "date": pd.to_datetime([DAYS[-6], DAYS[-4], DAYS[-4 + readmitted]]),
            "change": ["admission", "deletion", "admission"],
        }
    )
    rows = _days([("/", "\\")] * 6)
    assert _agg(rows, roll=roll)["n_outside"] == 0
    slow = reference.pandas_aggregate_marks(
        _marks(rows), as_of=AS_OF, roll_changes=roll
    )
    assert slow.loc["a", "n_outside"] == 0


def test_roll_changes_after_as_of_do_not_move_the_registration_check() -> None:
    roll = pd.DataFrame(
        {
            "pupil_id": ["a"],
            "school_urn": ["1"],
            "date": pd.to_datetime([AS_OF]),
            "change": ["admission"],
        }
    )
    assert _agg(_days([("/", "\\")] * 3), roll=roll)["n_outside"] == 0


def test_registration_intervals_merge_and_close() -> None:
    rc = pd.DataFrame(
        {
            "pupil_id": ["a"] * 4,
            "school_urn": ["1"] * 4,
            "date": pd.to_datetime(
                ["2023-09-06", "2023-10-01", "2024-01-10", "2024-01-10"]
            ),
            "change": ["admission", "admission", "deletion", "admission"],
        }
    )
    iv = registration_intervals(rc)
    assert iv[["reg_start", "reg_end"]].astype(str).values.tolist() == [
        ["2023-09-06", "2999-12-31"]
    ]


def test_code_table_covers_every_code_once_with_unique_precedence() -> None:
    t = code_table()
    assert set(t["code"]) == set(codes.ALL_ATTENDANCE_CODES)
    assert t["code"].is_unique
    per_norm = t.drop_duplicates("norm_code")
    assert per_norm["priority"].is_unique


@pytest.mark.parametrize("absent, persistent", [(37, 0.0), (38, 1.0), (190, 1.0)])
def test_persistent_absence_at_exactly_ten_percent(
    absent: int, persistent: float
) -> None:
    agg = pd.DataFrame(
        {
            c: [0]
            for c in [
                "n_marks",
                "n_unknown",
                "n_bad_session",
                "n_outside",
                "dup_identical",
                "dual",
                "conflicting",
                "counted_days_12m",
                "longest_run",
                "current_run",
                "unresolved_n",
                "c2",
                "e",
                "kb",
                "late",
            ]
        },
        index=pd.Index(["a"], name="pupil_id"),
    )
    for w in ("term", "year", "last_year"):
        agg[f"possible_{w}"] = 380
        agg[f"absent_{w}"] = absent
        agg[f"authorised_{w}"] = absent
        agg[f"unauthorised_{w}"] = 0
    agg["bad_code"] = None
    f = attendance_features(
        agg, pd.Series(["a"]), known_pupils={"a"}, quality=DataQuality()
    )
    assert f.loc["a", "persistent_absence_this_year"] == persistent
    assert f.loc["a", "severe_absence_this_year"] == float(absent >= 190)


def test_pupils_without_marks_get_missing_attendance() -> None:
    agg = aggregate_marks(
        RawTables({"attendance": _marks(_days([("/", "\\")]))}), as_of=AS_OF
    )
    f = attendance_features(
        agg, pd.Series(["a", "b"]), known_pupils={"a", "b"}, quality=DataQuality()
    )
    assert f.loc["b"].isna().all()
    assert f.loc["a", "absence_rate_this_year"] == 0.0


def test_marks_of_unknown_pupils_are_counted() -> None:
    agg = aggregate_marks(
        RawTables({"attendance": _marks(_days([("/", "\\")]))}), as_of=AS_OF
    )
    q = DataQuality()
    attendance_features(agg, pd.Series([], dtype=str), known_pupils=set(), quality=q)
    assert q.counts == {"attendance_without_pupil": 2}


def test_the_connection_spills_to_the_given_folder(tmp_path: Path) -> None:
    with connect(memory_limit="300MB", temp_directory=tmp_path, threads=1) as con:
        settings = dict(
            con.sql(
                "SELECT name, value FROM duckdb_settings() "
                "WHERE name IN ('memory_limit', 'temp_directory', 'threads')"
            ).fetchall()
        )
    assert settings["temp_directory"] == str(tmp_path)
    assert settings["threads"] == "1"
    assert settings["memory_limit"].startswith("28")  # 300 MB, shown in MiB


# --- DuckDB == plain pandas on random dirty marks -----------------------------


def _random_la(seed: int, n: int = 6000) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    days = np.array(school_days(2022) + school_days(2023), dtype="datetime64[D]")
    ids = [f"q{i}" for i in range(25)]
    code_pool = [
        "/",
        "\\",
        "/",
        "\\",
        "N",
        "O",
        "G",
        "U",
        "I",
        "D",
        "C2",
        "E",
        "K",
        "B",
        "L",
        "ZZ",
        "H",
        "J",
        "X",
        "#",
        "Y1",
        "M",
    ]
    marks = pd.DataFrame(
        {
            "pupil_id": rng.choice(ids, n),
            "school_urn": rng.choice(["1", "2", "3"], n),
            "date": pd.to_datetime(rng.choice(days, n)),
            "session": rng.choice(["AM", "PM", "XX"], n, p=[0.49, 0.49, 0.02]),
            "code": rng.choice(code_pool, n),
        }
    )
    roll = pd.DataFrame(
        {
            "pupil_id": rng.choice(ids, 30),
            "school_urn": rng.choice(["1", "2", "3"], 30),
            "date": pd.to_datetime(rng.choice(days, 30)),
            "change": rng.choice(["admission", "deletion"], 30),
        }
    )
    return marks, roll


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    "as_of", [date(2023, 10, 5), date(2024, 1, 3), AS_OF, date(2024, 8, 1)]
)
@pytest.mark.parametrize("with_roll", [True, False])
def test_duckdb_equals_plain_pandas(seed: int, as_of: date, with_roll: bool) -> None:
    marks, roll = _random_la(seed)
    roll_changes = roll if with_roll else None
    fast = aggregate_marks(
        RawTables({"attendance": marks}), as_of=as_of, roll_changes=roll_changes
    )
    slow = reference.pandas_aggregate_marks(
        marks, as_of=as_of, roll_changes=roll_changes
    )
    cols = reference.COUNT_COLUMNS
    pd.testing.assert_frame_equal(fast.sort_index()[cols].astype("int64"), slow[cols])
    assert (
        fast.sort_index()["bad_code"].fillna("").tolist()
        == slow["bad_code"].fillna("").tolist()
    )


def test_marks_on_disk_give_the_same_counts_as_in_memory(tmp_path: Path) -> None:
    marks, roll = _random_la(7)
    half = len(marks) // 2
    files = [tmp_path / "part-0.parquet", tmp_path / "part-1.parquet"]
    marks.iloc[:half].to_parquet(files[0])
    marks.iloc[half:].to_parquet(files[1])
    on_disk = aggregate_marks(
        RawTables({}, attendance_files=files), as_of=AS_OF, roll_changes=roll
    )
    in_memory = aggregate_marks(
        RawTables({"attendance": marks}), as_of=AS_OF, roll_changes=roll
    )
    pd.testing.assert_frame_equal(on_disk.sort_index(), in_memory.sort_index())


@pytest.mark.parametrize("pupils_per_pass", [1, 4, 7])
def test_splitting_the_pupils_into_passes_changes_nothing(pupils_per_pass: int) -> None:
    marks, roll = _random_la(3)
    tables = RawTables({"attendance": marks})
    whole = aggregate_marks(tables, as_of=AS_OF, roll_changes=roll)
    split = aggregate_marks(
        tables, as_of=AS_OF, roll_changes=roll, pupils_per_pass=pupils_per_pass
    )
    pd.testing.assert_frame_equal(whole, split)
