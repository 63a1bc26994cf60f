"""PSI: a hand example, and chunked counting equals the model's whole-population PSI."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cmerisk.model.reference import build_reference, psi
from cmerisk.scoring.drift import DriftCounter, bin_counts, psi_from_shares
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


# cmerisk.model.reference.psi builds a Categorical holding the unseen level "special"
@pytest.mark.filterwarnings(
    "ignore:Constructing a Categorical with a dtype:DeprecationWarning"
)
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
