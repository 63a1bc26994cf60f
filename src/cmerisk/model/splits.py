"""Which rows train the model, which calibrate it, and which test it.

With a time column the split is **temporal**, as the model is used: rows are
grouped by the school year (September-August) of their as-of date; the latest
``test_years`` are the test slice, the ``calibration_years`` before them
calibrate (and early-stop) the model, and all earlier years train it. The same
pupil may appear in several slices, as in real use (a model trained on last
year's pupils scores this year's), but never with a later year in training.
When the label horizon is known, ``purge`` drops training rows whose label
window ``(as_of, as_of + horizon]`` reaches past the first as-of date of the
calibration slice (and calibration rows whose window reaches past the first
test as-of date), so no outcome used in training happens after a later slice
has started.

Without a time column the split is **by id, stratified**: each id (pupil)
goes wholly to one slice, ids with any positive row spread over the slices in
proportion, so no pupil is in two slices. The kind of split is stated in
``Split.description`` and in every result.

Examples
--------
>>> import pandas as pd
>>> from datetime import date
>>> frame = pd.DataFrame({
...     "as_of": [date(y, 5, 20) for y in (2020, 2021, 2022, 2023) for _ in range(3)],
...     "y": [0, 1, 0] * 4})
>>> split = temporal_split(frame, time="as_of", calibration_years=1, test_years=1)
>>> split.kind, split.train.tolist(), split.calibration.tolist(), split.test.tolist()
('temporal', [0, 1, 2, 3, 4, 5], [6, 7, 8], [9, 10, 11])
>>> split.description
'temporal: train on 2019/20-2020/21, calibrate on 2021/22, test on 2022/23'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from cmerisk.config import SplitConfig
from cmerisk.errors import DataError
from cmerisk.spec import DatasetSpec

SplitKind = Literal["temporal", "id_stratified"]


@dataclass(frozen=True)
class Split:
    """Row positions (``iloc``) of each slice, and what was done.

    Attributes
    ----------
    kind
        ``"temporal"`` or ``"id_stratified"``.
    train, calibration, test
        Sorted integer positions into the frame; disjoint.
    description
        One plain sentence for reports and the MLflow run.
    details
        Years per slice, rows and positives per slice, rows purged.
    """

    kind: SplitKind
    train: np.ndarray
    calibration: np.ndarray
    test: np.ndarray
    description: str
    details: dict[str, Any] = field(default_factory=dict)

    def slices(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "calibration": self.calibration, "test": self.test}


def _year_label(school_year: int) -> str:
    return f"{school_year}/{(school_year + 1) % 100:02d}"


def _span(years: list[int]) -> str:
    if len(years) == 1:
        return _year_label(years[0])
    return f"{_year_label(years[0])}-{_year_label(years[-1])}"


def _as_dates(values: pd.Series, *, column: str) -> pd.Series:
    try:
        dates = pd.to_datetime(values, errors="raise")
    except (ValueError, TypeError) as e:
        raise DataError(
            f"feature table, time column {column!r}: not dates ({e}); "
            f"e.g. {values.iloc[0]!r}"
        ) from None
    if dates.isna().any():
        raise DataError(
            f"feature table, time column {column!r}: {int(dates.isna().sum())} row(s) "
            "have no date"
        )
    return dates


def _slice_summary(y: np.ndarray | None, idx: np.ndarray) -> dict[str, int]:
    out = {"rows": len(idx)}
    if y is not None:
        out["positives"] = int(y[idx].sum())
    return out


def temporal_split(
    frame: pd.DataFrame,
    *,
    time: str,
    calibration_years: int = 1,
    test_years: int = 1,
    horizon_days: int | None = None,
    purge: bool = True,
    y: np.ndarray | None = None,
) -> Split:
    """Split by school year of ``frame[time]``: train, then calibrate, latest test.

    Raises
    ------
    DataError
        Fewer school years than ``calibration_years + test_years + 1``, or a
        time value that is not a date.
    """
    dates = _as_dates(frame[time], column=time)
    school_year = np.where(dates.dt.month >= 9, dates.dt.year, dates.dt.year - 1)
    years = sorted(int(v) for v in np.unique(school_year))
    needed = calibration_years + test_years + 1
    if len(years) < needed:
        raise DataError(
            f"feature table, time column {time!r}: {len(years)} school year(s) "
            f"({_span(years) if years else 'none'}); a temporal split needs at least "
            f"{needed} (train, {calibration_years} to calibrate, {test_years} to test)"
        )
    test_y = years[-test_years:]
    cal_y = years[-(test_years + calibration_years) : -test_years]
    train_y = years[: -(test_years + calibration_years)]
    positions = np.arange(len(frame))
    in_train = np.isin(school_year, train_y)
    in_cal = np.isin(school_year, cal_y)
    in_test = np.isin(school_year, test_y)

    purged = {"train": 0, "calibration": 0}
    if purge and horizon_days is not None:
        window_end = dates + timedelta(days=horizon_days)
        cal_start = dates[in_cal].min()
        test_start = dates[in_test].min()
        drop_train = in_train & (window_end > cal_start).to_numpy()
        drop_cal = in_cal & (window_end > test_start).to_numpy()
        purged = {"train": int(drop_train.sum()), "calibration": int(drop_cal.sum())}
        in_train &= ~drop_train
        in_cal &= ~drop_cal
    train, cal, test = positions[in_train], positions[in_cal], positions[in_test]
    if len(train) == 0:
        raise DataError(
            f"no training rows left: every row of {_span(train_y)} has a label window "
            f"of {horizon_days} days reaching into the calibration year; use earlier "
            "as-of dates, a shorter horizon, or split.purge: false"
        )
    description = (
        f"temporal: train on {_span(train_y)}, calibrate on {_span(cal_y)}, "
        f"test on {_span(test_y)}"
    )
    if any(purged.values()):
        description += (
            f"; purged {purged['train']} training and {purged['calibration']} "
            f"calibration rows whose {horizon_days}-day label window reached a "
            "later slice"
        )
    details = {
        "kind": "temporal",
        "time_column": time,
        "years": {
            "train": [_year_label(v) for v in train_y],
            "calibration": [_year_label(v) for v in cal_y],
            "test": [_year_label(v) for v in test_y],
        },
        "purged": purged,
        "horizon_days": horizon_days,
        "slices": {
            name: _slice_summary(y, idx)
            for name, idx in {"train": train, "calibration": cal, "test": test}.items()
        },
    }
    return Split("temporal", train, cal, test, description, details)


def id_split(
    frame: pd.DataFrame,
    y: np.ndarray,
    *,
    id_column: str,
    calibration_fraction: float = 0.2,
    test_fraction: float = 0.25,
    seed: int = 0,
) -> Split:
    """Split ids (not rows) into train / calibrate / test, stratified.

    Strata: whether an id has any positive row.

    ``calibration_fraction`` and ``test_fraction`` are shares of all ids.
    """
    ids = frame[id_column].to_numpy()
    per_id = pd.Series(y).groupby(ids, sort=True).max()
    unique_ids = per_id.index.to_numpy()
    strata = per_id.to_numpy()
    stratify = (
        strata if np.bincount(strata.astype(int), minlength=2).min() >= 3 else None
    )
    rest, test_ids = train_test_split(
        unique_ids, test_size=test_fraction, random_state=seed, stratify=stratify
    )
    rest_strata = per_id.loc[rest].to_numpy()
    stratify_rest = (
        rest_strata
        if stratify is not None and np.bincount(rest_strata.astype(int)).min() >= 2
        else None
    )
    train_ids, cal_ids = train_test_split(
        rest,
        test_size=calibration_fraction / (1 - test_fraction),
        random_state=seed,
        stratify=stratify_rest,
    )
    positions = np.arange(len(frame))
    train = positions[np.isin(ids, train_ids)]
    cal = positions[np.isin(ids, cal_ids)]
    test = positions[np.isin(ids, test_ids)]
    description = (
        f"by id, stratified (no time column): {len(train_ids)} ids train, "
        f"{len(cal_ids)} calibrate, {len(test_ids)} test; no id is in two slices"
    )
    details = {
        "kind": "id_stratified",
        "id_column": id_column,
        "ids": {
            "train": len(train_ids),
            "calibration": len(cal_ids),
            "test": len(test_ids),
        },
        "stratified": stratify is not None,
        "slices": {
            name: _slice_summary(y, idx)
            for name, idx in {"train": train, "calibration": cal, "test": test}.items()
        },
    }
    return Split("id_stratified", train, cal, test, description, details)


def make_split(
    frame: pd.DataFrame,
    y: np.ndarray,
    *,
    spec: DatasetSpec,
    config: SplitConfig,
    horizon_days: int | None = None,
    seed: int = 0,
) -> Split:
    """Temporal split when ``spec.time`` is set, else stratified by id.

    Raises
    ------
    DataError
        A slice without both outcomes (nothing to learn, calibrate or test on).
    """
    if spec.time is not None:
        split = temporal_split(
            frame,
            time=spec.time,
            calibration_years=config.calibration_years,
            test_years=config.test_years,
            horizon_days=horizon_days,
            purge=config.purge,
            y=y,
        )
    else:
        split = id_split(
            frame,
            y,
            id_column=spec.id,
            calibration_fraction=config.calibration_fraction,
            test_fraction=config.test_fraction,
            seed=seed,
        )
    for name, idx in split.slices().items():
        positives = int(y[idx].sum())
        if positives == 0 or positives == len(idx):
            raise DataError(
                f"the {name} slice ({split.description}) has {len(idx)} rows of which "
                f"{positives} are positive ({spec.target} == {spec.positive!r}); "
                "each slice needs both outcomes"
            )
    return split
