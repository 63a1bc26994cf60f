"""Splits: disjoint slices, time order, purging, and ids never in two slices."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from toy import make_frame, make_spec

from cmerisk.config import SplitConfig
from cmerisk.errors import DataError
from cmerisk.model.splits import id_split, make_split, temporal_split


def _disjoint(split) -> bool:
    parts = [split.train, split.calibration, split.test]
    together = np.concatenate(parts)
    return len(together) == len(set(together.tolist()))


def test_temporal_split_orders_years(toy_frame) -> None:
    y = toy_frame["y"].to_numpy()
    split = make_split(toy_frame, y, spec=make_spec(), config=SplitConfig())
    assert split.kind == "temporal" and _disjoint(split)
    years = toy_frame["year_index"].to_numpy()
    assert set(years[split.train]) == {0, 1}
    assert set(years[split.calibration]) == {2}
    assert set(years[split.test]) == {3}
    assert len(split.train) + len(split.calibration) + len(split.test) == len(toy_frame)
    assert "temporal" in split.description and "2022/23" in split.description
    assert split.details["slices"]["test"]["positives"] == int(y[split.test].sum())


@pytest.mark.parametrize(("cal_years", "test_years"), [(1, 1), (1, 2), (2, 1)])
def test_temporal_split_never_trains_on_a_later_year(cal_years, test_years) -> None:
    frame = make_frame(50)
    split = temporal_split(
        frame, time="as_of", calibration_years=cal_years, test_years=test_years
    )
    year = frame["year_index"].to_numpy()
    assert year[split.train].max() < year[split.calibration].min()
    assert year[split.calibration].max() < year[split.test].min()
    assert len(np.unique(year[split.test])) == test_years
    assert _disjoint(split)


@pytest.mark.parametrize(("cal_years", "test_years"), [(3, 1), (2, 2), (1, 3)])
def test_temporal_split_needs_enough_years(cal_years, test_years) -> None:
    frame = make_frame(20)
    with pytest.raises(DataError, match=r"4 school year.*needs at least 5"):
        temporal_split(
            frame, time="as_of", calibration_years=cal_years, test_years=test_years
        )


def _termly_frame() -> pd.DataFrame:
    """Autumn, spring and summer as-of dates over four school years."""
    dates = []
    for year in (2019, 2020, 2021, 2022):
        dates += [date(year, 10, 3), date(year + 1, 1, 16), date(year + 1, 5, 21)]
    return pd.DataFrame({"as_of": dates, "y": [0, 1, 0] * 4})


def test_purge_drops_rows_whose_label_window_reaches_a_later_slice() -> None:
    frame = _termly_frame()
    split = temporal_split(frame, time="as_of", horizon_days=245, purge=True)
    as_of = pd.to_datetime(frame["as_of"])
    cal_start = as_of.iloc[split.calibration].min()
    test_start = as_of.iloc[split.test].min()
    window_end = as_of + pd.Timedelta(days=245)
    assert (window_end.iloc[split.train] <= cal_start).all()
    assert (window_end.iloc[split.calibration] <= test_start).all()
    # only the summer row before each later slice reaches past its autumn census
    assert split.details["purged"] == {"train": 1, "calibration": 1}
    assert "purged 1 training and 1 calibration" in split.description
    unpurged = temporal_split(frame, time="as_of", horizon_days=245, purge=False)
    assert len(unpurged.train) == len(split.train) + 1
    assert as_of.iloc[np.setdiff1d(unpurged.train, split.train)].dt.month.tolist() == [
        5
    ]


def test_id_split_keeps_each_pupil_in_one_slice() -> None:
    frame = make_frame(300, with_time=False)
    y = frame["y"].to_numpy()
    split = id_split(
        frame,
        y,
        id_column="pupil_id",
        calibration_fraction=0.2,
        test_fraction=0.25,
        seed=3,
    )
    ids = {
        name: set(frame["pupil_id"].iloc[idx]) for name, idx in split.slices().items()
    }
    assert not ids["train"] & ids["test"]
    assert not ids["train"] & ids["calibration"]
    assert not ids["calibration"] & ids["test"]
    assert len(ids["test"]) == 75 and len(ids["calibration"]) == 60
    assert split.kind == "id_stratified" and "by id, stratified" in split.description
    # every row of a pupil lands in the pupil's slice
    assert sum(len(v) for v in split.slices().values()) == len(frame)


def test_id_split_is_stratified_and_reproducible() -> None:
    frame = make_frame(300, with_time=False)
    y = frame["y"].to_numpy()
    a = id_split(frame, y, id_column="pupil_id", seed=1)
    b = id_split(frame, y, id_column="pupil_id", seed=1)
    np.testing.assert_array_equal(a.test, b.test)
    per_id = pd.Series(y).groupby(frame["pupil_id"]).max()
    share = per_id.mean()
    test_share = per_id.loc[frame["pupil_id"].iloc[a.test].unique()].mean()
    assert test_share == pytest.approx(share, abs=0.02)


def test_make_split_without_time_column_splits_by_id() -> None:
    frame = make_frame(100, with_time=False)
    split = make_split(
        frame,
        frame["y"].to_numpy(),
        spec=make_spec(with_time=False),
        config=SplitConfig(),
    )
    assert split.kind == "id_stratified"


def test_make_split_refuses_a_slice_without_positives() -> None:
    frame = make_frame(100)
    y = frame["y"].to_numpy().copy()
    y[frame["year_index"].to_numpy() == 3] = 0
    with pytest.raises(DataError, match="test slice"):
        make_split(frame, y, spec=make_spec(), config=SplitConfig())
