"""Stacked (pupil, as-of) rows of features and labels."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from cmerisk.dataset import as_of_dates_for, data_end, make_dataset
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
