"""What the data covers: derived from the tables, and features missing (not 0)
over windows that reach before it."""

from __future__ import annotations

import functools
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tiny_la_features as tiny
from hypothesis import given
from hypothesis import strategies as st

from cmerisk.data.school_calendar import term_dates
from cmerisk.data.tables import RawTables
from cmerisk.features import build_feature_frame
from cmerisk.features.attendance import aggregate_marks, attendance_features, connect
from cmerisk.features.coverage import data_coverage, first_mark
from cmerisk.features.exclusions import exclusion_features
from cmerisk.features.mobility import mobility_features
from cmerisk.features.needs import needs_features
from cmerisk.features.quality import DataQuality
from cmerisk.features.social_care import social_care_features
from cmerisk.features.window import Coverage, Windows, coverage_start

AUTUMN_2022 = term_dates(2022)["autumn"]  # (2022-09-07, 2022-12-16)
AFTER_SUMMER_2022 = date(2022, 7, 23)  # the day after the 2021/22 summer term
#: Marks from the spring term 2022/23: last school year is only partly there at AS_OF.
SPRING_2023 = date(2023, 1, 3)

LAST_YEAR = [
    "absence_rate_last_year",
    "authorised_absence_rate_last_year",
    "unauthorised_absence_rate_last_year",
    "absence_trend",
]


# --- coverage_start --------------------------------------------------------


@pytest.mark.parametrize(
    "first, start",
    [
        (AUTUMN_2022[0], AFTER_SUMMER_2022),  # the term's first day
        (date(2022, 9, 12), AFTER_SUMMER_2022),  # an LA starting a few days later
        (date(2022, 8, 15), AFTER_SUMMER_2022),  # in the holiday before
        (AUTUMN_2022[0] + timedelta(days=15), AUTUMN_2022[0] + timedelta(days=15)),
        (date(2022, 11, 14), date(2022, 11, 14)),  # mid-term: itself
        (SPRING_2023, AUTUMN_2022[1] + timedelta(days=1)),  # after Christmas
    ],
)
def test_coverage_starts_over_the_holiday_before_a_term(first: date, start: date):
    assert coverage_start(first) == start


@given(st.dates(min_value=date(2015, 1, 1), max_value=date(2030, 12, 31)))
def test_coverage_start_is_never_later_and_settles_at_once(first: date) -> None:
    start = coverage_start(first)
    assert start <= first
    assert coverage_start(start) == start


# --- Windows.covers --------------------------------------------------------


@pytest.mark.parametrize(
    "records, attendance, window, covered",
    [
        (None, None, "last_3_years", True),  # no claim: everything covered
        (AFTER_SUMMER_2022, None, "last_year_start", True),
        (AFTER_SUMMER_2022, None, "last_2_years", False),
        (date(2021, 7, 23), None, "last_2_years", True),
        (date(2021, 7, 23), None, "last_3_years", False),
    ],
)
def test_a_window_is_covered_when_it_starts_on_or_after_the_data(
    records, attendance, window: str, covered: bool
) -> None:
    w = Windows.at(tiny.AS_OF, coverage=Coverage(records, attendance))
    assert w.covers(getattr(w, window)) is covered


def test_attendance_windows_read_the_attendance_coverage() -> None:
    w = Windows.at(tiny.AS_OF, coverage=Coverage(date(2020, 1, 1), SPRING_2023))
    assert w.covers(w.last_year_start)
    assert not w.covers(w.last_year_start, attendance=True)
    assert w.covers(w.year_start, attendance=True)


# --- deriving the coverage from the tables ----------------------------------


def _census(*days: str) -> pd.DataFrame:
    return pd.DataFrame({"census_date": pd.to_datetime(list(days))})


@pytest.mark.parametrize(
    "frames, marks_start, data_start, expected",
    [
        # census alone: the term of the first census day
        (
            {"census": _census("2023-01-19", "2022-10-06")},
            None,
            None,
            (AFTER_SUMMER_2022,) * 2,
        ),
        # marks earlier than the census: the records start with them
        (
            {"census": _census("2023-05-18")},
            AUTUMN_2022[0],
            None,
            (AFTER_SUMMER_2022, AFTER_SUMMER_2022),
        ),
        # marks later than the census: attendance starts with its first mark
        (
            {"census": _census("2022-10-06")},
            date(2023, 2, 27),
            None,
            (AFTER_SUMMER_2022, date(2023, 2, 27)),
        ),
        # termly totals, for LAs without marks
        (
            {
                "census": _census("2023-05-18"),
                "attendance_termly": pd.DataFrame(
                    {"term_start": pd.to_datetime(["2023-01-03", "2023-04-17"])}
                ),
            },
            None,
            None,
            (AUTUMN_2022[1] + timedelta(days=1),) * 2,
        ),
        # a caller's data_start replaces the census; never attendance's first mark
        (
            {"census": _census("2022-10-06")},
            date(2023, 2, 27),
            date(2020, 9, 1),
            (date(2020, 7, 23), date(2023, 2, 27)),
        ),
        (
            {"census": _census("2022-10-06")},
            None,
            date(2023, 11, 13),
            (date(2023, 11, 13),) * 2,
        ),
    ],
)
def test_coverage_is_read_from_the_tables(
    frames, marks_start, data_start, expected
) -> None:
    got = data_coverage(frames, marks_start=marks_start, data_start=data_start)
    assert (got.records, got.attendance) == expected


@pytest.mark.parametrize("kind", ["memory", "parquet dates", "parquet timestamps"])
def test_first_mark_from_memory_or_parquet_metadata(kind: str, tmp_path: Path) -> None:
    marks = tiny.attendance()
    expected = marks["date"].min().date()
    if kind == "memory":
        tables = RawTables({"attendance": marks})
    else:
        if kind == "parquet dates":
            marks = marks.assign(date=marks["date"].dt.date)
        shuffled = marks.sample(frac=1, random_state=0)
        files = []
        for i in range(3):
            files.append(tmp_path / f"part-{i}.parquet")
            shuffled.iloc[i::3].to_parquet(files[-1], row_group_size=500)
        tables = RawTables({}, attendance_files=files)
    with connect() as con:
        assert first_mark(tables, con=con) == expected


def test_first_mark_of_text_dates_compares_dates_and_skips_unreadable_ones(
    tmp_path: Path,
) -> None:
    """Marks read as text: '2022-10-01' < '2022-9-30' as strings; a bad date
    ('2021-13-45') is not the start and does not stop the build."""
    marks = tiny.attendance()
    expected = marks["date"].min().date()
    text = marks.assign(date=marks["date"].dt.strftime("%Y-%m-%d"))
    text.loc[text.index[0], "date"] = "2021-13-45"
    path = tmp_path / "marks.parquet"
    text.to_parquet(path)  # a string column: no date statistics to read
    with connect() as con:
        assert first_mark(RawTables({}, attendance_files=[path]), con=con) == expected


def test_the_build_reads_the_coverage_from_the_tables() -> None:
    r = build_feature_frame(tiny.tiny_tables(), as_of=tiny.AS_OF)
    # marks from 1 September 2022, census from May 2023: the marks start the data
    assert r.coverage == Coverage(AFTER_SUMMER_2022, AFTER_SUMMER_2022)
    assert r.frame.attrs["coverage"] == {
        "records": "2022-07-23",
        "attendance": "2022-07-23",
    }


# --- features over windows the data does not cover ---------------------------


def _late_marks() -> RawTables:
    """The tiny LA with session marks only from the spring term 2022/23."""
    t = tiny.tiny_tables()
    marks = t["attendance"]
    return t.with_frames(attendance=marks[marks["date"] >= pd.Timestamp(SPRING_2023)])


@functools.cache
def _frame(which: str, data_start: date | None = None) -> pd.DataFrame:
    tables = {"tiny": tiny.tiny_tables, "late marks": _late_marks}[which]()
    r = build_feature_frame(tables, as_of=tiny.AS_OF, data_start=data_start)
    return r.frame.set_index("pupil_id")


def test_a_pupil_with_no_admission_in_the_data_has_no_days_since_admission() -> None:
    f = _frame("tiny")
    assert f["days_since_admission"].isna()[["p1", "p2", "p6"]].all()
    assert f.loc["p5", "days_since_admission"] == (tiny.AS_OF - date(2024, 2, 5)).days


def test_last_year_attendance_is_missing_when_the_data_starts_within_it() -> None:
    late = _frame("late marks")
    full = _frame("tiny")
    assert late.loc[["p1", "p2", "p6"], LAST_YEAR].isna().all().all()
    assert full.loc[["p1", "p2", "p6"], LAST_YEAR].notna().all().all()
    # this school year and the last 12 months are covered: the same numbers
    this_year = ["absence_rate_this_year", "longest_unexplained_run_12m"]
    pd.testing.assert_frame_equal(late[this_year], full[this_year])


def test_an_earlier_data_start_does_not_invent_marks() -> None:
    """data_start speaks for the records; attendance still starts at its first mark."""
    late = _frame("late marks", date(2019, 9, 1))
    assert late.loc[["p1", "p2", "p6"], LAST_YEAR].isna().all().all()
    assert late.loc[["p1", "p2", "p6"], "school_moves_2y"].notna().all()


@pytest.mark.parametrize(
    "as_of, covered",
    [(date(2023, 7, 10), False), (date(2023, 9, 20), True), (tiny.AS_OF, True)],
)
def test_the_previous_school_year_is_there_only_once_the_data_covers_it(
    as_of: date, covered: bool
) -> None:
    """Marks from September 2022: 2021/22 is outside the data, 2022/23 inside."""
    frame = build_feature_frame(tiny.tiny_tables(), as_of=as_of).frame
    rates = frame.set_index("pupil_id").loc[["p1", "p2"], LAST_YEAR[:3]]
    assert bool(rates.notna().all().all()) is covered
    assert bool(rates.isna().all().all()) is not covered


# --- each group, on a window the data does and does not cover ----------------

W_AS_OF = date(2024, 5, 16)
COVERED = Coverage(date(2020, 7, 23), date(2020, 7, 23))
UNCOVERED = Coverage(date(2023, 7, 22), date(2023, 7, 22))  # only this school year


def _ids() -> pd.Series:
    return pd.Series(["a", "b"])


def _mobility(w: Windows) -> pd.DataFrame:
    census = pd.DataFrame(
        {
            "pupil_id": ["a", "a"],
            "census_date": pd.to_datetime(["2023-10-05", "2024-01-18"]),
            "school_urn": ["1", "2"],
            "school_phase": ["primary"] * 2,
            "enrolment_status": ["C", "C"],
        }
    )
    roll = pd.DataFrame(
        {
            "pupil_id": ["a", "a"],
            "school_urn": ["1", "2"],
            "date": pd.to_datetime(["2024-01-05", "2024-01-08"]),
            "change": ["deletion", "admission"],
            "deletion_ground": ["moved_school", None],
            "destination_known": [False, None],
        }
    )
    return mobility_features(_ids(), {"census": census, "roll_changes": roll}, w=w)


def _social_care(w: Windows) -> pd.DataFrame:
    care = pd.DataFrame(
        {
            "pupil_id": ["a"],
            "status": ["CIN"],
            "start_date": pd.to_datetime(["2023-11-01"]),
            "end_date": pd.to_datetime(["2024-02-01"]),
        }
    )
    return social_care_features(_ids(), care, w=w)


def _exclusions(w: Windows) -> pd.DataFrame:
    ex = pd.DataFrame(
        {
            "pupil_id": ["a"],
            "school_urn": ["1"],
            "start_date": pd.to_datetime(["2024-01-10"]),
            "category": ["suspension"],
            "sessions": [4],
        }
    )
    return exclusion_features(_ids(), ex, w=w)


def _needs(w: Windows) -> pd.DataFrame:
    cohort = pd.DataFrame(
        {
            "pupil_id": ["a", "b"],
            "sen_provision": ["K", "N"],
            "sen_primary_need": [None] * 2,
        }
    )
    census = pd.DataFrame(
        {
            "pupil_id": ["a", "b", "a", "b"],
            "census_date": pd.to_datetime(["2023-10-05"] * 2 + ["2024-01-18"] * 2),
            "enrolment_status": ["C"] * 4,
            "sen_provision": ["N", "N", "K", "N"],
        }
    )
    return needs_features(cohort, census, w=w)


WINDOWED = [
    (
        _mobility,
        [
            "school_moves_2y",
            "in_year_admissions_2y",
            "unknown_destination_deletions_2y",
        ],
    ),
    (_social_care, ["social_care_any_3y", "social_care_episodes_3y"]),
    (_exclusions, ["suspensions_1y", "suspension_sessions_1y"]),
    (_needs, ["sen_changed_1y"]),
]
#: Features over a fixed point or "ever": the same whatever the coverage.
TIMELESS = [
    (_social_care, ["cin_current", "cpp_current", "cla_current"]),
    (_exclusions, ["permanent_exclusion_ever"]),
    (_needs, ["sen_any", "ehc_plan", "semh_need"]),
]


@pytest.mark.parametrize("make, columns", WINDOWED)
def test_counts_over_an_uncovered_window_are_missing_not_zero(make, columns) -> None:
    covered = make(Windows.at(W_AS_OF, coverage=COVERED))[columns]
    uncovered = make(Windows.at(W_AS_OF, coverage=UNCOVERED))[columns]
    # the same records: counted (a has one event, b none) when covered, unknown when not
    assert (covered.loc["a"] > 0).all()
    assert (covered.loc["b"] == 0).all()
    assert uncovered.isna().all().all()


def test_days_since_admission_needs_the_2_years_only_when_none_is_seen() -> None:
    """An admission seen is counted either way; none seen is "2 years or more"
    (730) only when the data covers the last 2 years, else unknown."""
    covered = _mobility(Windows.at(W_AS_OF, coverage=COVERED))["days_since_admission"]
    uncovered = _mobility(Windows.at(W_AS_OF, coverage=UNCOVERED))[
        "days_since_admission"
    ]
    assert covered["a"] == uncovered["a"] < 730
    assert covered["b"] == 730 and pd.isna(uncovered["b"])


@pytest.mark.parametrize("make, columns", TIMELESS)
def test_features_without_a_window_do_not_depend_on_the_coverage(make, columns) -> None:
    pd.testing.assert_frame_equal(
        make(Windows.at(W_AS_OF, coverage=COVERED))[columns],
        make(Windows.at(W_AS_OF, coverage=UNCOVERED))[columns],
    )


# --- unexplained runs when the 12 months are not covered --------------------


def _runs(coverage: Coverage) -> pd.DataFrame:
    """a: unexplained on every school day of the data; b: present, then 3
    unexplained days. Marks from 2023/24 only, as_of in May 2024."""
    days = [d for d in pd.bdate_range("2023-09-11", "2024-05-15")]
    rows = []
    for i, d in enumerate(days):
        rows += [("a", "1", d, s, "O") for s in ("AM", "PM")]
        code = "N" if i >= len(days) - 3 else "/"
        rows += [("b", "1", d, s, code) for s in ("AM", "PM")]
    marks = pd.DataFrame(
        rows, columns=["pupil_id", "school_urn", "date", "session", "code"]
    )
    agg = aggregate_marks(RawTables({"attendance": marks}), as_of=W_AS_OF)
    return attendance_features(
        agg,
        pd.Series(["a", "b"]),
        known_pupils={"a", "b"},
        quality=DataQuality(),
        w=Windows.at(W_AS_OF, coverage=coverage),
    )


def test_a_run_that_may_have_begun_before_the_data_is_missing() -> None:
    covered, uncovered = _runs(COVERED), _runs(UNCOVERED)
    runs = ["longest_unexplained_run_12m", "current_unexplained_run"]
    assert covered.loc["b", runs].tolist() == [3.0, 3.0]
    assert covered.loc["a", "current_unexplained_run"] == len(
        pd.bdate_range("2023-09-11", "2024-05-15")
    )
    # 12 months not covered: the longest run is unknown; b's current run began
    # after a present day, so it is known; a's reaches the data's first day
    assert uncovered[runs[0]].isna().all()
    assert uncovered.loc["b", runs[1]] == 3.0
    assert np.isnan(uncovered.loc["a", runs[1]])
    # this school year is covered either way
    pd.testing.assert_series_equal(
        covered["absence_rate_this_year"], uncovered["absence_rate_this_year"]
    )
