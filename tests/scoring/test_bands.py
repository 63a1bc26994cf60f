"""Ranks and bands: capacity, watch threshold, total and stable order."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from cmerisk.scoring.bands import band_sql, rank_and_band


def _ranked(scores: pd.DataFrame, **kw) -> pd.DataFrame:
    con = duckdb.connect()
    return rank_and_band(con.from_df(scores), **kw).order("rank").df()


def _scores(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    margin = rng.normal(size=n)
    # calibrated probabilities with many ties (as isotonic steps give)
    prob = np.round(1 / (1 + np.exp(-margin)), 1)
    return pd.DataFrame(
        {
            "pupil_id": [f"p{i:04d}" for i in range(n)],
            "probability": prob,
            "margin": margin,
        }
    )


@pytest.mark.parametrize(
    ("capacity", "watch", "min_p", "expected"),
    [
        (2, 2, 0.0, ["flagged", "flagged", "watch", "watch", "low"]),
        (2, 2, 0.35, ["flagged", "flagged", "watch", "low", "low"]),
        (0, 2, 0.0, ["watch", "watch", "low", "low", "low"]),
        (5, 2, 0.0, ["flagged"] * 5),
        (1, 10, 0.99, ["flagged", "low", "low", "low", "low"]),
    ],
)
def test_bands_follow_capacity_and_threshold(capacity, watch, min_p, expected):
    scores = pd.DataFrame(
        {
            "pupil_id": list("abcde"),
            "probability": [0.9, 0.5, 0.4, 0.3, 0.1],
            "margin": [2.0, 0.0, -0.4, -0.8, -2.0],
        }
    )
    out = _ranked(
        scores, capacity=capacity, watch_capacity=watch, watch_min_probability=min_p
    )
    assert out["band"].tolist() == expected
    assert out["pupil_id"].tolist() == list("abcde")


def test_ties_in_probability_are_broken_by_margin_then_id():
    scores = pd.DataFrame(
        {
            "pupil_id": ["z", "y", "x", "w"],
            "probability": [0.3, 0.3, 0.3, 0.3],
            "margin": [0.1, 0.2, 0.1, -1.0],
        }
    )
    out = _ranked(scores, capacity=1, watch_capacity=0, watch_min_probability=0.0)
    assert out["pupil_id"].tolist() == ["y", "x", "z", "w"]
    assert out["band"].tolist() == ["flagged", "low", "low", "low"]


def test_ranks_are_a_permutation_and_order_does_not_depend_on_input_order():
    scores = _scores(500)
    a = _ranked(scores, capacity=50, watch_capacity=100, watch_min_probability=0.2)
    b = _ranked(
        scores.sample(frac=1, random_state=3),
        capacity=50,
        watch_capacity=100,
        watch_min_probability=0.2,
    )
    assert sorted(a["rank"]) == list(range(1, 501))
    pd.testing.assert_frame_equal(a, b)
    # probabilities never increase down the list
    assert (np.diff(a["probability"].to_numpy()) <= 0).all()
    assert (a["band"] == "flagged").sum() == 50
    watch = a[a["band"] == "watch"]
    assert len(watch) <= 100 and (watch["probability"] >= 0.2).all()
    # every watch pupil ranks after every flagged one and before every low one
    assert watch["rank"].min() > 50
    assert (
        a.loc[a["band"] == "low", "rank"].min() > watch["rank"].max()
    ) or watch.empty


def test_extra_columns_are_kept():
    scores = _scores(5).assign(school_urn="100001")
    out = _ranked(scores, capacity=1, watch_capacity=1, watch_min_probability=0.0)
    assert {"school_urn", "rank", "band"} <= set(out.columns)


@pytest.mark.parametrize(
    "kw", [{"capacity": -1}, {"watch_capacity": -1}, {"watch_min_probability": 1.5}]
)
def test_band_sql_refuses_nonsense(kw):
    args = {"capacity": 1, "watch_capacity": 1, "watch_min_probability": 0.1} | kw
    with pytest.raises(ValueError):
        band_sql(**args)
