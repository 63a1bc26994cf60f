"""The metric kernel and its bootstrap: exact against references, fast = slow paths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from cmerisk import fairness_bootstrap as fb
from cmerisk.fairness_bootstrap import (
    auc_from_slots,
    auc_slots,
    bootstrap_metrics,
    calibration_bins,
    compress,
    interval,
    point_metrics,
    reduce_cells,
)


def _group(n: int, *, seed: int, ties: bool = True):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    score = rng.random(n) * 0.5 + 0.3 * y
    if ties:
        score = np.round(score, 1)  # many tied scores
    flag = (score >= np.quantile(score, 0.9)).astype(int)
    return y, flag, score, calibration_bins(score, n_bins=5)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ties", [True, False])
def test_auc_matches_sklearn_with_and_without_ties(seed, ties):
    y, flag, score, bins = _group(500, seed=seed, ties=ties)
    m = point_metrics(compress(y=y, flag=flag, score=score, bins=bins))
    assert m["auc"] == pytest.approx(roc_auc_score(y, score))


def test_calibration_error_matches_a_direct_computation():
    y, flag, score, bins = _group(800, seed=3, ties=False)
    direct = (
        sum(abs(y[bins == b].sum() - score[bins == b].sum()) for b in set(bins)) / 800
    )
    m = point_metrics(compress(y=y, flag=flag, score=score, bins=bins))
    assert m["calibration_error"] == pytest.approx(direct)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 1), st.integers(0, 1), st.integers(0, 6), st.integers(0, 2)
        ),
        min_size=1,
        max_size=40,
    )
)
def test_reduced_cells_keep_every_point_metric(rows):
    y, flag, score10, bins = (np.array(c) for c in zip(*rows, strict=True))
    cells = compress(y=y, flag=flag, score=score10 / 10, bins=bins)
    full, reduced = point_metrics(cells), point_metrics(reduce_cells(cells))
    assert full.keys() == reduced.keys()
    for key in full:
        assert reduced[key] == pytest.approx(full[key], nan_ok=True), key


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_auc_from_category_counts_equals_auc_of_the_resample(seed):
    rng = np.random.default_rng(seed)
    y, flag, score, bins = _group(60, seed=seed)
    cells = compress(y=y, flag=flag, score=score, bins=bins)
    counts = rng.integers(0, 4, size=len(cells.weight)).astype(float)
    category, j = auc_slots(cells)
    if j == 0:
        return
    by_category = np.bincount(category, weights=counts, minlength=3 * j + 1)
    resample = fb.Cells(
        **{**cells.__dict__, "weight": counts, "expected": counts * cells.score}
    )
    assert auc_from_slots(by_category[None, :], j)[0] == pytest.approx(
        point_metrics(resample)["auc"], nan_ok=True
    )


def test_bootstrap_is_seeded_and_centred_on_the_point():
    y, flag, score, bins = _group(2000, seed=4, ties=False)
    cells = compress(y=y, flag=flag, score=score, bins=bins)
    a = bootstrap_metrics(cells, n_boot=400, rng=np.random.default_rng(1))
    b = bootstrap_metrics(cells, n_boot=400, rng=np.random.default_rng(1))
    point = point_metrics(cells)
    for key, reps in a.items():
        np.testing.assert_array_equal(reps, b[key])
        assert reps.shape == (400,)
    for key in ("recall", "precision", "false_positive_rate", "auc"):
        # Monte Carlo error of the mean of 400 replicates is std / 20
        assert abs(np.mean(a[key]) - point[key]) <= 0.2 * np.std(a[key]) + 1e-12, key
    assert np.all(a["pupils"] == 2000)  # stratified: the group keeps its size


def test_recall_interval_is_about_the_binomial_one():
    y, flag, score, bins = _group(5000, seed=5, ties=False)
    cells = compress(y=y, flag=flag, score=score, bins=bins)
    reps = bootstrap_metrics(
        cells, n_boot=1000, rng=np.random.default_rng(2), ranks=False
    )
    point = point_metrics(cells)
    lo, hi = interval(reps["recall"], level=0.95)
    r, pos = point["recall"], point["positives"]
    normal = 2 * 1.96 * np.sqrt(r * (1 - r) / pos)
    assert hi - lo == pytest.approx(normal, rel=0.2)
    assert lo < r < hi
    assert np.isnan(reps["auc"]).all()  # ranks=False skips them


def test_calibration_bootstrap_paths_agree(monkeypatch):
    # drawing counts per cell and drawing pupils sample the same distribution
    rng = np.random.default_rng(6)
    y = (rng.random(3000) < 0.1).astype(int)
    score = np.round(rng.random(3000) * 0.3, 2)  # ~30 distinct scores: few cells
    cells = compress(
        y=y,
        flag=np.zeros(3000, int),
        score=score,
        bins=calibration_bins(score, n_bins=5),
    )
    assert len(cells.weight) <= fb._CELL_DRAWS_UP_TO * cells.n  # cells by default
    by_cells = fb._ece_replicates(cells, n_boot=800, rng=np.random.default_rng(3))
    monkeypatch.setattr(fb, "_CELL_DRAWS_UP_TO", 0.0)  # force drawing pupils
    monkeypatch.setattr(fb, "_CHUNK_ELEMENTS", 50_000)  # in several chunks
    by_pupils = fb._ece_replicates(cells, n_boot=800, rng=np.random.default_rng(4))
    assert not np.array_equal(by_cells, by_pupils)
    assert np.mean(by_cells) == pytest.approx(np.mean(by_pupils), rel=0.05)
    assert np.std(by_cells) == pytest.approx(np.std(by_pupils), rel=0.15)


def test_pupil_draw_path_handles_many_distinct_scores():
    rng = np.random.default_rng(7)
    y = (rng.random(1000) < 0.1).astype(int)
    score = rng.random(1000) * 0.2  # all distinct: pupils are drawn
    cells = compress(
        y=y,
        flag=np.zeros(1000, int),
        score=score,
        bins=calibration_bins(score, n_bins=4),
    )
    reps = fb._ece_replicates(cells, n_boot=300, rng=np.random.default_rng(0))
    point = point_metrics(cells)["calibration_error"]
    assert reps.shape == (300,)
    assert np.quantile(reps, 0.02) < point < np.quantile(reps, 0.98)


@pytest.mark.parametrize(
    ("values", "level", "expected"),
    [
        (np.arange(1, 101, dtype=float), 0.9, (5.0, 95.0)),
        (np.r_[np.nan, np.arange(1, 101, dtype=float)], 0.9, (5.0, 95.0)),
        (np.array([np.nan, np.nan]), 0.95, (np.nan, np.nan)),
        (np.array([1.0, np.inf, np.inf, np.inf]), 0.5, (1.0, np.inf)),
    ],
)
def test_interval_uses_order_statistics_of_the_defined_replicates(
    values, level, expected
):
    assert interval(values, level=level) == pytest.approx(expected, nan_ok=True)


def test_no_positives_gives_undefined_rates_not_errors():
    cells = compress(
        y=np.zeros(50, int),
        flag=np.r_[np.ones(5), np.zeros(45)].astype(int),
        score=np.linspace(0, 1, 50),
        bins=np.zeros(50, int),
    )
    m = point_metrics(cells)
    assert np.isnan(m["recall"]) and np.isnan(m["missed_rate"]) and np.isnan(m["auc"])
    assert m["false_positive_rate"] == 0.1
    reps = bootstrap_metrics(cells, n_boot=20, rng=np.random.default_rng(0))
    assert np.isnan(reps["auc"]).all()
