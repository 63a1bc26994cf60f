"""The point-in-time cut: strictly before as_of, unknown ends null, ended terms."""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pytest

from cmerisk.data.contract import EVENT_TABLES, TABLES
from cmerisk.features.window import (
    Windows,
    attendance_known_at,
    events_between,
    known_at,
    term_end_of,
)

AS_OF = date(2024, 5, 16)
SMALL_EVENT_TABLES = [
    t for t in EVENT_TABLES if t not in ("attendance", "attendance_termly")
]


def _dated(table: str, days: list[str]) -> pd.DataFrame:
    spec = TABLES[table]
    frame = pd.DataFrame({"pupil_id": [f"p{i}" for i in range(len(days))]})
    frame[spec.event_date] = pd.to_datetime(days)
    if spec.end_date:
        frame[spec.end_date] = pd.NaT
    return frame


@pytest.mark.parametrize("table", SMALL_EVENT_TABLES)
def test_only_records_strictly_before_as_of_are_known(table: str) -> None:
    frame = _dated(table, ["2024-05-15", "2024-05-16", "2024-05-17", None])
    assert known_at(frame, table=table, as_of=AS_OF)["pupil_id"].tolist() == ["p0"]


@pytest.mark.parametrize("table", [t for t in SMALL_EVENT_TABLES if TABLES[t].end_date])
@pytest.mark.parametrize(
    "end, still_open",
    [("2024-05-15", False), ("2024-05-16", True), ("2025-01-01", True), (None, True)],
)
def test_end_dates_on_or_after_as_of_are_not_known(
    table: str, end, still_open: bool
) -> None:
    frame = _dated(table, ["2023-01-01"])
    frame[TABLES[table].end_date] = pd.to_datetime([end])
    known = known_at(frame, table=table, as_of=AS_OF)
    assert known[TABLES[table].end_date].isna().item() is still_open


def test_dates_as_strings_or_objects_are_accepted() -> None:
    frame = pd.DataFrame(
        {
            "pupil_id": ["a", "b"],
            "start_date": [date(2024, 1, 1), "2024-06-01"],
            "end_date": [None, None],
        }
    )
    assert known_at(frame, table="ehe", as_of=AS_OF)["pupil_id"].tolist() == ["a"]


@pytest.mark.parametrize(
    "term_start, as_of, known",
    [
        ("2024-01-03", date(2024, 3, 22), False),  # the spring term's last day
        ("2024-01-03", date(2024, 3, 23), True),
        ("2024-04-08", AS_OF, False),  # this term has not ended
    ],
)
def test_a_term_is_known_once_it_has_ended(
    term_start: str, as_of: date, known: bool
) -> None:
    frame = pd.DataFrame(
        {"pupil_id": ["a"], "term_start": pd.to_datetime([term_start])}
    )
    assert len(known_at(frame, table="attendance_termly", as_of=as_of)) == int(known)


def test_term_end_of_each_term() -> None:
    starts = pd.Series(pd.to_datetime(["2023-09-06", "2024-01-03", "2024-04-08"]))
    assert term_end_of(starts).dt.date.astype(str).tolist() == [
        "2023-12-22",
        "2024-03-22",
        "2024-07-22",
    ]


@pytest.mark.parametrize(
    "as_of",
    [date(2023, 9, 1), date(2023, 10, 5), date(2024, 1, 18), AS_OF, date(2024, 8, 31)],
)
def test_windows_end_before_as_of_and_nest(as_of: date) -> None:
    w = Windows.at(as_of)
    assert w.last_year_start < w.year_start <= as_of
    assert (
        w.year_start <= w.term_start
    )  # after as_of in a holiday: an empty "this term"
    assert w.last_3_years < w.last_2_years < w.last_12_months < as_of
    assert w.earliest_mark <= w.last_12_months


def test_attendance_cut_works_on_dates_and_timestamps() -> None:
    con = duckdb.connect()
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(
                ["2023-08-31", "2023-09-01", "2024-05-15 10:00", "2024-05-16"],
                format="ISO8601",
            )
        }
    )
    rel = con.from_df(frame)
    kept = attendance_known_at(rel, as_of=AS_OF, since=date(2023, 9, 1)).fetchall()
    assert len(kept) == 2
    as_dates = con.sql("SELECT CAST(date AS DATE) AS date FROM rel")
    assert len(attendance_known_at(as_dates, as_of=AS_OF).fetchall()) == 3


def test_events_between_is_open_at_the_start_and_closed_at_the_end() -> None:
    frame = _dated(
        "cme_episodes", ["2024-05-16", "2024-05-17", "2024-06-01", "2024-06-02"]
    )
    got = events_between(frame, table="cme_episodes", start=AS_OF, end=date(2024, 6, 1))
    assert got["pupil_id"].tolist() == ["p1", "p2"]


def test_a_coverage_given_only_as_records_also_bounds_the_attendance() -> None:
    from cmerisk.features.window import Coverage

    start = date(2022, 9, 1)
    w = Windows.at(date(2023, 5, 18), coverage=Coverage(records=start))
    assert not w.covers(date(2022, 5, 18), attendance=True)
    assert w.covers(date(2022, 9, 1), attendance=True)
