"""PSI: a hand example, and chunked counting equals the model's whole-population PSI."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cmerisk.model.matrix import feature_matrix
from cmerisk.model.reference import build_reference, psi
from cmerisk.scoring.drift import (
    LESS_MISSING,
    MORE_MISSING,
    VALUES,
    DriftCounter,
    bin_counts,
    psi_from_shares,
)
from cmerisk.scoring.summary import drift_warnings
from cmerisk.spec import DatasetSpec, FeatureSpec

SPEC = DatasetSpec(
    id="pupil_id",
    target="cme",
    features=[
        FeatureSpec(name="absence", group="attendance", reason="absence"),
        FeatureSpec(name="phase", group="context", reason="phase", categorical=True),
    ],
)


def test_psi_hand_example():
    # training: 50/50 over two bins; now 25/75
    expected = 0.25 * math.log(0.75 / 0.5) + 0.25 * math.log(0.5 / 0.25)
    assert psi_from_shares([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected)
    assert psi_from_shares([0.5, 0.5], [0.25, 0.75]) == pytest.approx(
        0.274653, abs=1e-6
    )


def test_psi_is_zero_for_the_same_distribution_and_floors_empty_bins():
    assert psi_from_shares([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0
    # a bin empty in training but filled now is finite (floored), and large
    value = psi_from_shares([0.5, 0.5, 0.0], [0.4, 0.4, 0.2])
    assert math.isfinite(value) and value > 1


def test_bin_counts_numeric_edges_are_right_closed_with_missing_last():
    ref = {
        "kind": "numeric",
        "psi": {"edges": [0.1, 0.5], "proportions": [0.3, 0.3, 0.4], "missing": 0.0},
    }
    values = pd.Series([0.0, 0.1, 0.2, 0.5, 0.9, np.nan])
    assert bin_counts(ref, values).tolist() == [2, 2, 1, 1]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([np.inf, -np.inf, np.nan, np.nan], [1, 0, 1, 2]),
        ([np.nan] * 3, [0, 0, 0, 3]),
        ([], [0, 0, 0, 0]),
        ([0.5, 0.50001], [0, 1, 1, 0]),
    ],
)
def test_bin_counts_numeric_infinities_and_missing(values, expected):
    ref = {"kind": "numeric", "psi": {"edges": [0.1, 0.5], "missing": 0.0}}
    counts = bin_counts(ref, pd.Series(values, dtype="float64"))
    assert counts.tolist() == expected


def test_bin_counts_categorical_has_unseen_and_missing_bins():
    ref = {
        "kind": "categorical",
        "psi": {
            "levels": ["primary", "secondary"],
            "proportions": [0.6, 0.4],
            "missing": 0.0,
        },
    }
    values = pd.Series(["primary", "ap", None, "secondary", "primary"], dtype="object")
    assert bin_counts(ref, values).tolist() == [2, 1, 1, 1]


@pytest.mark.parametrize("n_chunks", [1, 3, 7])
def test_chunked_psi_equals_whole_population_psi(n_chunks):
    rng = np.random.default_rng(1)
    train = pd.DataFrame(
        {
            "absence": np.where(rng.random(2000) < 0.1, np.nan, rng.beta(1, 12, 2000)),
            "phase": pd.Categorical(rng.choice(["primary", "secondary"], 2000)),
        }
    )
    ref = build_reference(train, spec=SPEC)
    now = pd.DataFrame(
        {
            "absence": np.where(rng.random(900) < 0.2, np.nan, rng.beta(1, 6, 900)),
            "phase": pd.Categorical(
                rng.choice(["primary", "secondary", "special"], 900)
            ),
        }
    )
    counter = DriftCounter(ref)
    for part in np.array_split(np.arange(len(now)), n_chunks):
        counter.add(now.iloc[part])
    table = counter.table(warning=0.25).set_index("feature")
    for name in ("absence", "phase"):
        assert table.loc[name, "psi"] == pytest.approx(
            psi(ref["features"][name], now[name]), rel=1e-12, abs=1e-12
        )
        assert table.loc[name, "pupils"] == 900
    assert bool(table.loc["absence", "drifted"]) == (table.loc["absence", "psi"] > 0.25)


def test_same_population_does_not_drift():
    rng = np.random.default_rng(2)
    train = pd.DataFrame(
        {
            "absence": rng.random(5000),
            "phase": pd.Categorical(rng.choice(["primary", "secondary"], 5000)),
        }
    )
    counter = DriftCounter(build_reference(train, spec=SPEC))
    counter.add(train)
    table = counter.table(warning=0.25)
    assert (table["psi"] < 1e-9).all() and not table["drifted"].any()


def test_a_feature_missing_in_every_training_row_is_reported_not_drifted():
    """A window the training years did not cover: large PSI, but the model never
    used it, so it is 'not in training' rather than drift."""
    rng = np.random.default_rng(3)
    train = pd.DataFrame(
        {
            "absence": np.full(1000, np.nan),
            "phase": pd.Categorical(rng.choice(["primary", "secondary"], 1000)),
        }
    )
    ref = build_reference(train, spec=SPEC)
    bins = ref["features"]["absence"]["psi"]
    assert sum(bins["proportions"]) + bins["missing"] == pytest.approx(1.0)
    counter = DriftCounter(ref)
    counter.add(train.assign(absence=rng.random(1000)))
    table = counter.table(warning=0.25).set_index("feature")
    assert table.loc["absence", "psi"] > 0.25
    assert not table.loc["absence", "trained"] and not table.loc["absence", "drifted"]
    assert table.loc["phase", "trained"]


def _drift_of(train: pd.DataFrame, now: pd.DataFrame) -> pd.DataFrame:
    counter = DriftCounter(build_reference(train, spec=SPEC))
    counter.add(now)
    return counter.table(warning=0.25).set_index("feature")


def _phases(rng: np.random.Generator, n: int) -> pd.Categorical:
    return pd.Categorical(rng.choice(["primary", "secondary"], n))


def test_drift_says_whether_the_values_or_the_missing_share_moved():
    """Half the training rows lacked the value (their years were not covered);
    now every pupil has one, drawn from the same distribution: a large PSI, but
    the values did not move. Values that do move are told apart."""
    rng = np.random.default_rng(4)
    values = rng.random(4000)
    half = np.where(np.arange(4000) < 2000, np.nan, values)
    train = pd.DataFrame({"absence": half, "phase": _phases(rng, 4000)})
    same = pd.DataFrame({"absence": rng.random(4000), "phase": _phases(rng, 4000)})
    table = _drift_of(train, same)
    row = table.loc["absence"]
    assert row["psi"] > 0.25 and row["drifted"]
    assert row["value_psi"] < 0.05
    assert row["cause"] == LESS_MISSING
    assert row["missing_then"] == pytest.approx(0.5) and row["missing_now"] == 0.0

    moved = same.assign(absence=rng.random(4000) ** 4)  # most values near 0 now
    assert _drift_of(train, moved).loc["absence", "cause"] == VALUES

    full = pd.DataFrame({"absence": values, "phase": _phases(rng, 4000)})
    gaps = same.assign(absence=np.where(rng.random(4000) < 0.6, np.nan, values))
    row = _drift_of(full, gaps).loc["absence"]
    assert row["cause"] == MORE_MISSING and row["missing_now"] > 0.5
    assert _drift_of(full, full).loc["absence", "cause"] is None


def test_drift_warnings_advise_by_cause():
    table = pd.DataFrame(
        {
            "feature": ["a", "b", "c", "d", "e"],
            "psi": [1.2, 3.0, 4.6, 4.0, 0.1],
            "cause": [VALUES, MORE_MISSING, LESS_MISSING, LESS_MISSING, None],
            "missing_then": [0.0, 0.05, 0.48, 0.5, 0.0],
            "missing_now": [0.0, 0.9, 0.0, 0.01, 0.0],
        }
    )
    warnings = drift_warnings(table, warning=0.25)
    assert len(warnings) == 3  # one each for a and b; c and d together; e none
    assert (
        warnings[0].startswith("drift: a has PSI 1.20")
        and "check the data" in (warnings[0])
    )
    assert "b is missing for 90% of pupils against 5% of training rows" in warnings[1]
    assert "2 feature(s) were missing far more often" in warnings[2]
    assert "c (48% then, 0% now), d (50% then, 1% now)" in warnings[2]
    assert "retrain" in warnings[2] and "check the data" not in warnings[2]


def test_a_feature_no_pupil_has_now_is_missing_more_not_moved_values():
    """No known value now: the values cannot be compared (value_psi NaN); what
    moved is the missing share, so the warning asks to check the extract."""
    rng = np.random.default_rng(5)
    train = pd.DataFrame({"absence": rng.random(1000), "phase": _phases(rng, 1000)})
    gone = train.assign(absence=np.nan)
    row = _drift_of(train, gone).loc["absence"]
    assert math.isnan(row["value_psi"]) and row["missing_now"] == 1.0
    assert row["drifted"] and row["cause"] == MORE_MISSING
    table = _drift_of(train, gone).reset_index()
    (warning,) = drift_warnings(table, warning=0.25)
    assert "absence is missing for 100% of pupils against 0% of training rows" in (
        warning
    )


def test_a_level_unseen_in_training_counts_as_unseen_not_missing():
    """The model matrix codes a level unseen in training as missing; counted
    with the feature table, it lands in the unseen bin: the values moved."""
    rng = np.random.default_rng(6)
    train = pd.DataFrame({"absence": rng.random(1000), "phase": _phases(rng, 1000)})
    ref = build_reference(train, spec=SPEC)
    now = pd.DataFrame(
        {
            "absence": rng.random(1000),
            "phase": rng.choice(["primary", "secondary", "special"], 1000),
        }
    )
    matrix = feature_matrix(
        now, spec=SPEC, categories={"phase": ["primary", "secondary"]}
    )
    assert matrix["phase"].isna().sum() == (now["phase"] == "special").sum()
    counter = DriftCounter(ref)
    counter.add(matrix, frame=now)
    counts = counter.counts["phase"]
    assert counts[-2] == (now["phase"] == "special").sum() and counts[-1] == 0
    table = counter.table(warning=0.25).set_index("feature")
    assert table.loc["phase", "psi"] == pytest.approx(
        psi(ref["features"]["phase"], now["phase"]), rel=1e-12
    )
    assert table.loc["phase", "missing_now"] == 0.0
    assert table.loc["phase", "cause"] == VALUES
