"""Stacked (pupil, as-of) rows of features and labels."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from cmerisk.data.school_calendar import census_date
from cmerisk.data.tables import RawTables
from cmerisk.dataset import (
    as_of_dates_for,
    data_end,
    first_attendance_year,
    make_dataset,
)
from cmerisk.errors import DataError
from cmerisk.features import build_features
from cmerisk.labels import cme_label

sys.path.insert(0, str(Path(__file__).parent / "features"))
import tiny_la_features as tiny

DATES = [date(2023, 10, 5), date(2024, 1, 18), tiny.AS_OF]


def test_the_data_ends_at_the_latest_event() -> None:
    # p1's CME episode starts 2024-09-10: the latest dated record of the tiny LA.
    assert data_end(tiny.tiny_tables()) == date(2024, 9, 10)


@pytest.mark.parametrize(
    "terms, labelled_only, expected",
    [
        (["summer"], False, [date(2024, 5, 16)]),
        (
            ["autumn", "spring", "summer"],
            False,
            [date(2023, 10, 5), date(2024, 1, 18), date(2024, 5, 16)],
        ),
        (["autumn", "spring", "summer"], True, [date(2023, 10, 5)]),
    ],
)
def test_as_of_dates_follow_the_census_and_the_label_window(
    terms, labelled_only, expected
):
    got = as_of_dates_for(
        tiny.tiny_tables(), terms=terms, horizon_days=245, labelled_only=labelled_only
    )
    # The first census day (2023-05-18) has no earlier census: never an as-of.
    assert got == expected


def test_first_school_year_skips_earlier_years() -> None:
    got = as_of_dates_for(
        tiny.tiny_tables(),
        terms=["summer"],
        horizon_days=10,
        first_school_year=2023,
        labelled_only=False,
    )
    assert got == [date(2024, 5, 16)]


def test_rows_are_the_features_at_each_as_of_with_their_labels() -> None:
    calls: list[tuple[int, int]] = []
    ds = make_dataset(
        tiny.tiny_tables(),
        as_of_dates=DATES,
        horizon_days=245,
        progress=lambda i, n: calls.append((i, n)),
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert not ds.duplicated(["pupil_id", "as_of"]).any()
    for day in DATES:
        rows = ds.loc[ds["as_of"] == pd.Timestamp(day)].drop(columns=["cme", "ehe"])
        alone = build_features(tiny.tiny_tables(), as_of=day)
        pd.testing.assert_frame_equal(
            rows.reset_index(drop=True), alone, check_like=False
        )
        labels = cme_label(tiny.tiny_tables(), as_of=day, horizon_days=245).set_index(
            "pupil_id"
        )
        got = ds.loc[ds["as_of"] == pd.Timestamp(day)].set_index("pupil_id")
        assert (got["cme"] == labels.loc[got.index, "cme"]).all()
    assert ds.attrs["quality_by_as_of"]["2024-05-16"] == {"census_without_pupil": 1}
    assert ds.attrs["cohort_counts_by_as_of"]["2024-05-16"]["on_roll"] == 4
    assert str(ds["cme"].dtype) == "int8"


def test_no_dates_no_dataset() -> None:
    with pytest.raises(DataError, match="no as-of dates"):
        make_dataset(tiny.tiny_tables(), as_of_dates=[], horizon_days=245)


def test_the_dataset_writes_to_parquet(tmp_path: Path) -> None:
    ds = make_dataset(tiny.tiny_tables(), as_of_dates=[tiny.AS_OF], horizon_days=245)
    ds.to_parquet(tmp_path / "ds.parquet")
    back = pd.read_parquet(tmp_path / "ds.parquet")
    assert back.shape == ds.shape


@pytest.mark.parametrize(
    "data_start, records, moves_known",
    [(None, "2022-07-23", False), (date(2020, 9, 1), "2020-07-23", True)],
)
def test_one_coverage_for_every_as_of(data_start, records, moves_known) -> None:
    """Read from the tables (marks from September 2022) or given; the same at
    each as-of, and passed to the features exactly as build_features does."""
    ds = make_dataset(
        tiny.tiny_tables(), as_of_dates=DATES, horizon_days=245, data_start=data_start
    )
    assert ds.attrs["coverage"]["records"] == records
    # 2 years back from every as-of reaches before September 2022
    assert bool(ds["school_moves_2y"].notna().all()) is moves_known
    assert bool(ds["school_moves_2y"].isna().all()) is not moves_known
    last = ds.loc[ds["as_of"] == pd.Timestamp(tiny.AS_OF)].drop(columns=["cme", "ehe"])
    alone = build_features(tiny.tiny_tables(), as_of=tiny.AS_OF, data_start=data_start)
    pd.testing.assert_frame_equal(last.reset_index(drop=True), alone)


def _with_earlier_census(source: str) -> RawTables:
    """The tiny LA with census records two school years before its attendance.

    Its attendance (marks, or termly totals) starts in September 2022; the
    census now reaches back to the summer of 2021.
    """
    frames = {n: f for n, f in tiny.tiny_tables().items() if n != "attendance"}
    if source == "marks":
        frames["attendance"] = tiny.attendance()
    elif source == "termly":
        frames["attendance_termly"] = tiny.attendance_termly()
    census = frames["census"]
    earlier = census[census["pupil_id"] == "p2"].head(1)
    frames["census"] = pd.concat(
        [
            earlier.assign(census_date=pd.Timestamp(census_date(year, "summer")))
            for year in (2020, 2021)
        ]
        + [census],
        ignore_index=True,
    )
    return RawTables(frames)


@pytest.mark.parametrize(
    "source, expected",
    [
        # attendance from 2022/23: the 2021/22 census is history, not an as-of
        ("marks", [date(2023, 5, 18), date(2024, 5, 16)]),
        ("termly", [date(2023, 5, 18), date(2024, 5, 16)]),
        # no attendance at all: nothing to wait for
        ("none", [date(2022, 5, 19), date(2023, 5, 18), date(2024, 5, 16)]),
    ],
)
def test_no_as_of_before_the_first_school_year_with_attendance(
    source, expected
) -> None:
    tables = _with_earlier_census(source)
    got = as_of_dates_for(
        tables, terms=["summer"], horizon_days=10, labelled_only=False
    )
    assert got == expected
    assert first_attendance_year(tables) == (None if source == "none" else 2022)
    # an explicit first school year still applies on top
    later = as_of_dates_for(
        tables,
        terms=["summer"],
        horizon_days=10,
        first_school_year=2023,
        labelled_only=False,
    )
    assert later == [date(2024, 5, 16)]


def test_records_before_the_marks_cover_the_first_as_ofs_long_windows(
    tmp_path: Path,
) -> None:
    """A synthetic LA with 3 years of records before its 2 years of marks: at
    the first as-of (summer 2022, the first year of marks) the 2- and 3-year
    record features are known, last year's attendance is not."""
    from cmerisk.data.load import read_tables
    from cmerisk.data.synthetic import generate_la

    folder = tmp_path / "la"
    generate_la(
        folder,
        pupils=1_000,
        years=2,
        first_year=2021,
        history_years=3,
        seed=3,
        key=b"dataset-history-key-0123456789",
    )
    tables = read_tables(folder)
    dates = as_of_dates_for(tables, terms=["summer"], horizon_days=245)
    assert dates == [census_date(2021, "summer")]
    ds = make_dataset(tables, as_of_dates=dates, horizon_days=245)
    assert len(ds) > 500
    assert ds.attrs["coverage"] == {"records": "2018-07-21", "attendance": "2021-07-23"}
    for name in (
        "school_moves_2y",
        "in_year_admissions_2y",
        "unknown_destination_deletions_2y",
        "social_care_any_3y",
        "social_care_episodes_3y",
        "suspensions_1y",
    ):
        assert ds[name].notna().all(), name
    # missing only for pupils with fewer than two censuses in the 12 months
    assert ds["sen_changed_1y"].notna().mean() > 0.8
    assert ds["absence_rate_last_year"].isna().all()
    assert ds["absence_rate_this_year"].notna().mean() > 0.95
