"""Metrics against hand-computed values and scikit-learn, and bootstrap behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from cmerisk.model.metrics import (
    _count_chunks,
    bootstrap_metrics,
    calibration_table,
    capacity_curve,
    capacity_keys,
    id_tiebreak,
    percentile_ci,
    point_metrics,
    quantile_bins,
    rank_order,
    top_k_flags,
)

# 8 pupils, 3 went missing. Scores rank them: 1 0 1 0 1 0 0 0
Y = np.array([1, 0, 1, 0, 1, 0, 0, 0])
S = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
P = np.array([0.8, 0.6, 0.5, 0.2, 0.4, 0.1, 0.1, 0.1])


def test_hand_computed_values() -> None:
    m = point_metrics(Y, S, P, ks={"precision_at_2": 2, "precision_at_4": 4}, bins=2)
    # pairs (pos, neg) ranked correctly: 5 + 4 + 3 out of 15
    assert m["roc_auc"] == pytest.approx(12 / 15)
    # AP = (1/1 + 2/3 + 3/5) / 3
    assert m["average_precision"] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    assert m["precision_at_2"] == 0.5 and m["recall_at_2"] == pytest.approx(1 / 3)
    assert m["precision_at_4"] == 0.5 and m["recall_at_4"] == pytest.approx(2 / 3)
    assert m["lift_at_4"] == pytest.approx(0.5 / (3 / 8))
    assert m["brier"] == pytest.approx(np.mean((P - Y) ** 2))
    # two equal-count bins split at the median probability 0.3: |sum y - sum p| / n
    low, high = P < 0.3, P > 0.3
    ece = (abs(Y[low].sum() - P[low].sum()) + abs(Y[high].sum() - P[high].sum())) / 8
    assert m["ece"] == pytest.approx(ece)
    assert m["base_rate"] == pytest.approx(3 / 8)


def test_ties_count_half_in_auc_and_follow_sklearn_in_ap() -> None:
    y = np.array([1, 0, 1, 0, 0, 1])
    s = np.array([2.0, 2.0, 1.0, 1.0, 1.0, 0.0])
    m = point_metrics(y, s, s / 2, ks={}, bins=5)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, s))
    assert m["average_precision"] == pytest.approx(average_precision_score(y, s))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_replicates_match_sklearn(seed) -> None:
    rng = np.random.default_rng(seed)
    y = (rng.random(300) < 0.15).astype(int)
    s = np.round(rng.random(300) + 0.4 * y, 2)
    p = rng.random(300)
    results = bootstrap_metrics(y, {"m": (s, p)}, ks={}, n_bootstrap=4, seed=seed)
    counts = np.vstack(list(_count_chunks(300, n_bootstrap=4, seed=seed)))
    for b in range(4):
        w = counts[b]
        assert results["m"]["roc_auc"][1][b] == pytest.approx(
            roc_auc_score(y, s, sample_weight=w)
        )
        assert results["m"]["average_precision"][1][b] == pytest.approx(
            average_precision_score(y, s, sample_weight=w)
        )
        assert results["m"]["brier"][1][b] == pytest.approx(
            brier_score_loss(y, p, sample_weight=w)
        )


def test_bootstrap_counts_resample_every_row_count() -> None:
    counts = np.vstack(list(_count_chunks(50, n_bootstrap=7, seed=0)))
    assert counts.shape == (7, 50)
    assert (counts.sum(axis=1) == 50).all()


def test_precision_at_k_in_replicate_counts_duplicates() -> None:
    y = np.array([1, 0, 0, 0])
    s = np.array([4.0, 3.0, 2.0, 1.0])
    from cmerisk.model.metrics import _metrics, _prepare

    prep = _prepare(y.astype(float), s, s / 4, bins=2, tiebreak=None)
    W = np.array([[2.0, 0.0, 1.0, 1.0], [0.0, 3.0, 1.0, 0.0]])
    m = _metrics(W, prep, {"precision_at_2": 2, "precision_at_3": 3})
    np.testing.assert_allclose(m["precision_at_2"], [1.0, 0.0])
    np.testing.assert_allclose(m["precision_at_3"], [2 / 3, 0.0])


def test_ci_brackets_the_estimate_and_is_seeded() -> None:
    rng = np.random.default_rng(5)
    y = (rng.random(2000) < 0.05).astype(int)
    s = y + rng.normal(0, 1, 2000)
    a = bootstrap_metrics(
        y,
        {"m": (s, np.clip(s, 0, 1))},
        ks={"precision_at_50": 50},
        n_bootstrap=200,
        seed=1,
    )
    b = bootstrap_metrics(
        y,
        {"m": (s, np.clip(s, 0, 1))},
        ks={"precision_at_50": 50},
        n_bootstrap=200,
        seed=1,
    )
    for metric in ("roc_auc", "precision_at_50", "brier"):
        est, reps = a["m"][metric]
        low, high = percentile_ci(reps)
        assert low <= est <= high and low < high
        np.testing.assert_array_equal(reps, b["m"][metric][1])


def test_rank_order_breaks_ties_by_tiebreak_not_position() -> None:
    s = np.array([1.0, 2.0, 1.0, 1.0])
    assert rank_order(s).tolist() == [1, 0, 2, 3]
    assert rank_order(s, tiebreak=np.array([0, 0, 9, 5])).tolist() == [1, 0, 3, 2]


def _scoring_ranks(ids, probability, margin) -> np.ndarray:
    """Scoring's own ranks (1 = first) from its SQL, row-aligned."""
    import pandas as pd

    from cmerisk.duck import connect
    from cmerisk.scoring.bands import rank_and_band

    scores = pd.DataFrame(
        {
            "pupil_id": ids,
            "probability": probability,
            "margin": margin,
            "row": np.arange(len(ids)),
        }
    )
    con = connect()
    try:
        ranked = rank_and_band(
            con.from_df(scores), capacity=1, watch_capacity=1, watch_min_probability=0
        ).df()
    finally:
        con.close()
    return ranked.sort_values("row")["rank"].to_numpy()


def _tied_scores(n: int, seed: int, *, calibration: str):
    """Margins with repeats (trees give equal margins), isotonic-like step
    probabilities (many ties) or a decreasing sigmoid, ids whose text order is
    not their numeric order."""
    rng = np.random.default_rng(seed)
    margin = np.round(rng.normal(size=n), 1)
    if calibration == "isotonic steps":
        probability = np.round(1 / (1 + np.exp(-margin)), 1)
    else:  # a sigmoid fitted the wrong way round: probability falls with margin
        probability = 1 / (1 + np.exp(margin))
    ids = np.array([f"p{i}" for i in rng.permutation(n)], dtype=object)
    return ids, probability, margin


@pytest.mark.parametrize("calibration", ["isotonic steps", "decreasing sigmoid"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_order_is_the_order_of_scorings_list(seed, calibration) -> None:
    ids, probability, margin = _tied_scores(300, seed, calibration=calibration)
    order = rank_order(margin, tiebreak=id_tiebreak(ids), probability=probability)
    ranks = _scoring_ranks(ids, probability, margin)
    np.testing.assert_array_equal(order, np.argsort(ranks))
    for k in (1, 17, 60, 300):
        flags = top_k_flags(margin, k=k, ids=ids, probability=probability)
        np.testing.assert_array_equal(flags, ranks <= k)


def test_ties_in_probability_go_by_margin_not_by_id() -> None:
    ids = ["a", "b", "c", "d"]
    probability = [0.3, 0.3, 0.3, 0.1]
    margin = [0.1, 0.9, 0.5, 2.0]
    assert rank_order(
        margin, tiebreak=id_tiebreak(ids), probability=probability
    ).tolist() == [1, 2, 0, 3]
    # ranking the probability alone would have flagged a and b
    assert top_k_flags(margin, k=2, ids=ids, probability=probability).tolist() == [
        False,
        True,
        True,
        False,
    ]
    assert top_k_flags(probability, k=2, ids=ids).tolist() == [True, True, False, False]


@pytest.mark.parametrize("seed", [0, 1])
def test_capacity_metrics_count_scorings_flagged_pupils(seed) -> None:
    """precision/recall at k and the capacity curve are those of scoring's list."""
    ids, probability, margin = _tied_scores(400, seed, calibration="isotonic steps")
    y = (np.random.default_rng(seed + 10).random(400) < probability).astype(int)
    ranks = _scoring_ranks(ids, probability, margin)
    ks = {"precision_at_25": 25, "precision_at_90": 90}
    m = point_metrics(y, margin, probability, ks=ks, tiebreak=id_tiebreak(ids))
    curve = capacity_curve(y, margin, ks=[25, 90], tiebreak=id_tiebreak(ids))
    for name, k in ks.items():
        found = y[ranks <= k].sum()
        assert m[name] == pytest.approx(found / k)
        assert m[name.replace("precision", "recall")] == pytest.approx(found / y.sum())
        assert curve.set_index("k").loc[k, "precision"] == pytest.approx(found / k)


def test_id_tiebreak_is_id_text_order_whatever_the_row_order() -> None:
    ids = np.array(["c", "a", "b", 10], dtype=object)
    assert id_tiebreak(ids).tolist() == [3, 1, 2, 0]
    np.testing.assert_array_equal(id_tiebreak(ids)[::-1], id_tiebreak(ids[::-1]))


def test_quantile_bins_keep_ties_together_and_bins_populated() -> None:
    p = np.array([0.001] * 90 + [0.2] * 5 + [0.6] * 5)
    bins, edges = quantile_bins(p, bins=10)
    assert np.bincount(bins).tolist() == [90, 10]
    assert edges.tolist() == [0.001]
    even = quantile_bins(np.arange(100) / 100, bins=4)[0]
    assert np.bincount(even).tolist() == [25, 25, 25, 25]


def test_capacity_keys_skip_k_larger_than_the_test_set() -> None:
    assert capacity_keys(
        120, capacities=[50, 100, 200], top_fractions=[0.01, 0.05]
    ) == {
        "precision_at_50": 50,
        "precision_at_100": 100,
        "precision_at_top_1pct": 2,
        "precision_at_top_5pct": 6,
    }


def test_calibration_table_and_capacity_curve() -> None:
    table = calibration_table(Y, P, bins=2)
    assert table["count"].tolist() == [4, 4]
    assert table["observed_rate"].tolist() == pytest.approx([0, 3 / 4])
    assert table["mean_predicted"].tolist() == pytest.approx([0.125, 0.575])
    curve = capacity_curve(Y, S, ks=[1, 2, 3, 8, 50])
    assert curve["k"].tolist() == [1, 2, 3, 8]
    assert curve["precision"].tolist() == pytest.approx([1, 0.5, 2 / 3, 3 / 8])
    assert curve["recall"].tolist() == pytest.approx([1 / 3, 1 / 3, 2 / 3, 1])
