"""CME labels and the competing EHE outcome."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from cmerisk.data.tables import RawTables
from cmerisk.errors import ConfigError, DataError
from cmerisk.labels import cme_label, label_window

sys.path.insert(0, str(Path(__file__).parent / "features"))
import tiny_la_features as tiny

AS_OF = tiny.AS_OF


def test_cme_and_ehe_in_the_window_for_every_pupil() -> None:
    lab = cme_label(tiny.tiny_tables(), as_of=AS_OF, horizon_days=245).set_index(
        "pupil_id"
    )
    assert lab.index.tolist() == ["p1", "p2", "p3", "p4", "p5", "p6"]
    assert lab["cme"].to_dict() == {
        "p1": 1,
        "p2": 0,
        "p3": 0,
        "p4": 0,
        "p5": 0,
        "p6": 0,
    }
    assert lab["ehe"].to_dict() == {
        "p1": 0,
        "p2": 1,
        "p3": 0,
        "p4": 0,
        "p5": 0,
        "p6": 0,
    }
    assert (lab["as_of"] == pd.Timestamp(AS_OF)).all()
    assert str(lab["cme"].dtype) == "int8"


def test_a_shorter_horizon_misses_a_later_start() -> None:
    lab = cme_label(tiny.tiny_tables(), as_of=AS_OF, horizon_days=100).set_index(
        "pupil_id"
    )
    assert lab.loc["p1", "cme"] == 0  # p1's episode starts on 2024-09-10, day 117


def test_an_episode_started_before_as_of_is_not_a_new_one() -> None:
    # p3 went missing in March 2024: already missing at as_of, so not a label.
    lab = cme_label(tiny.tiny_tables(), as_of=date(2024, 3, 1), horizon_days=30)
    assert lab.set_index("pupil_id").loc["p3", "cme"] == 1
    lab = cme_label(tiny.tiny_tables(), as_of=date(2024, 3, 20), horizon_days=30)
    assert lab.set_index("pupil_id").loc["p3", "cme"] == 0


def test_without_ehe_the_competing_outcome_is_missing() -> None:
    lab = cme_label(tiny.tiny_tables().without("ehe"), as_of=AS_OF, horizon_days=245)
    assert lab["ehe"].isna().all() and str(lab["ehe"].dtype) == "Int8"


@pytest.mark.parametrize(
    "tables, error",
    [
        (RawTables({"pupils": tiny.pupils()}), DataError),
        (RawTables({"cme_episodes": tiny.cme_episodes()}), DataError),
    ],
)
def test_missing_tables_are_refused(tables: RawTables, error) -> None:
    with pytest.raises(error, match="cannot make CME labels without"):
        cme_label(tables, as_of=AS_OF, horizon_days=245)


@pytest.mark.parametrize("horizon", [0, -5])
def test_horizon_must_be_positive(horizon: int) -> None:
    with pytest.raises(ConfigError):
        cme_label(tiny.tiny_tables(), as_of=AS_OF, horizon_days=horizon)


def test_the_default_window_runs_to_about_the_next_spring_census() -> None:
    from cmerisk.config import ExperimentConfig
    from cmerisk.data.school_calendar import census_date

    cfg = ExperimentConfig().dataset
    assert cfg.as_of_terms == ["summer"]
    for year in (2021, 2022, 2023, 2024):
        _, end = label_window(census_date(year, "summer"), cfg.horizon_days)
        assert abs((end - census_date(year + 1, "spring")).days) <= 7
