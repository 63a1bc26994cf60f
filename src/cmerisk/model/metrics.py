"""Test-year metrics with bootstrap confidence intervals, computed in bulk.

The bootstrap resamples rows with replacement. Instead of re-indexing the data
for every replicate, each replicate is a row of COUNTS (how often each row was
drawn), and every metric is a weighted metric over rows sorted once by score:
cumulative sums of counts give the ROC and precision-recall curves of all
replicates at once, matrix products give Brier score and calibration error.
Replicates are made in chunks to bound memory. Several models scored on the
same rows share the same replicates (paired), so their differences have CIs
too.

Ranking metrics (ROC-AUC, average precision, precision/recall/lift at k) use
the raw score, which orders pupils exactly as the model does (a calibrated
isotonic step curve would create ties); Brier and expected calibration error
(ECE) use calibrated probabilities. ECE is the count-weighted gap between
mean predicted probability and observed rate over equal-count bins of the
test year's probabilities (:func:`quantile_bins`; fixed-width bins would put
almost every pupil in the first bin when the outcome is rare). "Top k" breaks
ties in score by ``tiebreak`` (the pupil id as text in the pipeline, as
scoring does), never by row order. :func:`rank_order` is the one ranking rule
of cmerisk: scoring's list (:func:`cmerisk.scoring.bands.rank_and_band`, in
SQL), the fairness audit's operating point and these capacity metrics all
order pupils by it (:func:`top_k_flags` marks the first ``k``).

Examples
--------
>>> import numpy as np
>>> y = np.array([1, 0, 1, 0, 0, 0])
>>> s = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
>>> m = point_metrics(y, s, s, ks={"precision_at_2": 2}, bins=2)
>>> m["roc_auc"], m["average_precision"], m["precision_at_2"], m["recall_at_2"]
(0.875, 0.8333333333333333, 0.5, 0.5)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

#: Largest replicates x rows block held in memory at once.
CHUNK_CELLS = 500_000


def id_tiebreak(ids: ArrayLike) -> np.ndarray:
    """A deterministic, row-order-free tie-breaker: the rank of each id as text.

    Scoring and the fairness audit break ties the same way (pupil id as text,
    ascending); pseudonymised ids are keyed hashes, so this order carries no
    information about the pupil.
    """
    text = np.asarray([str(v) for v in np.asarray(ids)], dtype=object)
    ranks = np.empty(len(text), dtype="int64")
    ranks[np.argsort(text, kind="stable")] = np.arange(len(text))
    return ranks


def rank_order(
    score: ArrayLike,
    *,
    tiebreak: ArrayLike | None = None,
    probability: ArrayLike | None = None,
) -> np.ndarray:
    """Row positions from the highest risk down: the order of every top-k list.

    Keys, first to last: ``probability`` descending (when given), ``score``
    descending, ``tiebreak`` ascending (when given), then row position. With
    ``score`` the raw model margin, ``probability`` its calibrated value and
    ``tiebreak=id_tiebreak(ids)``, this is exactly the order of scoring's risk
    list (``ORDER BY probability DESC, margin DESC, pupil_id``). Calibration is
    non-decreasing in the margin (isotonic always; sigmoid when the model ranks
    at all), so the margin decides the many ties isotonic calibration makes,
    and ``probability`` can be left out where only the margin's order matters.

    Examples
    --------
    >>> margin = np.array([0.5, 2.0, 0.1, 0.3])
    >>> probability = np.array([0.1, 0.3, 0.1, 0.1])  # isotonic ties
    >>> rank_order(margin, probability=probability).tolist()
    [1, 0, 3, 2]
    >>> rank_order(probability, tiebreak=id_tiebreak(["d", "c", "b", "a"])).tolist()
    [1, 3, 2, 0]
    """
    s = np.asarray(score, dtype="float64")
    keys: tuple[np.ndarray, ...] = (np.arange(len(s)),)
    if tiebreak is not None:
        keys = (*keys, np.asarray(tiebreak))
    keys = (*keys, -s)
    if probability is not None:
        keys = (*keys, -np.asarray(probability, dtype="float64"))
    return np.lexsort(keys)


def top_k_flags(
    score: ArrayLike,
    *,
    k: int,
    ids: ArrayLike | None = None,
    probability: ArrayLike | None = None,
) -> np.ndarray:
    """Row-aligned flags for the ``k`` pupils a list of capacity ``k`` flags.

    The first ``k`` rows of :func:`rank_order` (ties by ``ids`` as text, as
    scoring breaks them; without ids, by row order).

    Examples
    --------
    >>> top_k_flags([0.5, 2.0, 0.1, 0.3], k=2, probability=[0.1, 0.3, 0.1, 0.1],
    ...             ids=["a", "b", "c", "d"]).tolist()
    [True, True, False, False]
    """
    tiebreak = None if ids is None else id_tiebreak(ids)
    order = rank_order(score, tiebreak=tiebreak, probability=probability)
    flags = np.zeros(len(order), dtype=bool)
    flags[order[: max(int(k), 0)]] = True
    return flags


@dataclass(frozen=True)
class _Prepared:
    """One model's scores on the test rows, sorted once."""

    order: np.ndarray
    y_sorted: np.ndarray
    group_end: np.ndarray  # last position of each run of equal scores (sorted order)
    proba: np.ndarray
    y: np.ndarray
    bin_of: np.ndarray
    bins: int


def _prepare(
    y: np.ndarray,
    score: np.ndarray,
    proba: np.ndarray,
    *,
    bins: int,
    tiebreak: ArrayLike | None,
) -> _Prepared:
    order = rank_order(score, tiebreak=tiebreak)
    s_sorted = score[order]
    change = np.flatnonzero(np.diff(s_sorted) != 0)
    group_end = np.append(change, len(s_sorted) - 1)
    bin_of, _ = quantile_bins(proba, bins=bins)
    return _Prepared(
        order, y[order], group_end, proba, y, bin_of, int(bin_of.max()) + 1
    )


def quantile_bins(proba: ArrayLike, *, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Equal-count bins of the probabilities: (bin of each row, inner edges).

    With rare outcomes almost every probability is small, so fixed-width bins
    would put nearly everyone in the first bin; quantile bins keep every bin
    populated. Tied probabilities stay in one bin (edges are deduplicated), so
    there can be fewer than ``bins`` bins.
    """
    p = np.asarray(proba, dtype="float64")
    if p.size == 0:
        return np.zeros(0, dtype="int64"), np.zeros(0)
    edges = np.unique(
        np.quantile(p, np.linspace(0, 1, bins + 1)[1:-1], method="inverted_cdf")
    )
    raw = np.searchsorted(edges, p, side="left")
    used, bin_of = np.unique(raw, return_inverse=True)
    upper = np.append(edges, np.inf)[used][:-1]
    return bin_of.astype("int64"), upper


def _safe_div(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    b_arr = np.broadcast_to(np.asarray(b, dtype="float64"), np.shape(a))
    out = np.full(np.shape(a), np.nan)
    np.divide(a, b_arr, out=out, where=b_arr > 0)
    return out


def _metrics(
    W: np.ndarray, prep: _Prepared, ks: Mapping[str, int]
) -> dict[str, np.ndarray]:
    """Every metric for each row of the count matrix ``W`` (replicates x rows)."""
    Ws = W[:, prep.order]
    pos = Ws * prep.y_sorted
    tp_all = np.cumsum(pos, axis=1)
    count = np.cumsum(Ws, axis=1)
    n = count[:, -1].copy()  # copies: a view would keep the whole block alive
    P = tp_all[:, -1].copy()
    N = n - P
    tps = tp_all[:, prep.group_end]
    fps = count[:, prep.group_end] - tps
    zeros = np.zeros((W.shape[0], 1))
    tpr = np.hstack([zeros, _safe_div(tps, P[:, None])])
    fpr = np.hstack([zeros, _safe_div(fps, N[:, None])])
    auc = np.sum(np.diff(fpr, axis=1) * (tpr[:, 1:] + tpr[:, :-1]) / 2, axis=1)
    precision = np.nan_to_num(_safe_div(tps, tps + fps))
    recall_step = np.diff(tpr, axis=1)
    ap = np.sum(recall_step * precision, axis=1)
    ap = np.where(P > 0, ap, np.nan)

    out: dict[str, np.ndarray] = {
        "roc_auc": np.where((P > 0) & (N > 0), auc, np.nan),
        "average_precision": ap,
    }
    base = _safe_div(P, n)
    rows = np.arange(W.shape[0])
    for name, k in ks.items():
        j = np.minimum((count < k).sum(axis=1), count.shape[1] - 1)
        overshoot = np.maximum(count[rows, j] - k, 0)
        top_pos = tp_all[rows, j] - overshoot * prep.y_sorted[j]
        suffix = name.removeprefix("precision")
        out[f"precision{suffix}"] = top_pos / k
        out[f"recall{suffix}"] = _safe_div(top_pos, P)
        out[f"lift{suffix}"] = _safe_div(top_pos / k, base)

    sq = (prep.proba - prep.y) ** 2
    out["brier"] = (W @ sq) / n
    gap = np.zeros(W.shape[0])
    for b in range(prep.bins):
        in_bin = prep.bin_of == b
        if in_bin.any():
            Wb = W[:, in_bin]
            gap += np.abs(Wb @ prep.y[in_bin] - Wb @ prep.proba[in_bin])
    out["ece"] = gap / n
    out["base_rate"] = base
    out["positives"] = P
    return out


def _count_chunks(n: int, *, n_bootstrap: int, seed: int) -> Iterator[np.ndarray]:
    """Bootstrap replicates as count matrices (rows drawn with replacement), chunked."""
    rng = np.random.default_rng(seed)
    per_chunk = max(1, CHUNK_CELLS // max(n, 1))
    done = 0
    while done < n_bootstrap:
        b = min(per_chunk, n_bootstrap - done)
        draws = rng.integers(0, n, size=(b, n))
        flat = (draws + (np.arange(b) * n)[:, None]).ravel()
        yield np.bincount(flat, minlength=b * n).reshape(b, n).astype("float64")
        done += b


def capacity_keys(
    n: int, *, capacities: list[int], top_fractions: list[float]
) -> dict[str, int]:
    """Metric-name suffixes -> k; capacities larger than the test set are left out."""
    ks = {f"precision_at_{k}": k for k in capacities if k <= n}
    for frac in top_fractions:
        k = max(1, int(np.ceil(frac * n)))
        ks[f"precision_at_top_{frac * 100:g}pct"] = k
    return ks


def point_metrics(
    y: ArrayLike,
    score: ArrayLike,
    proba: ArrayLike,
    *,
    ks: Mapping[str, int],
    bins: int = 10,
    tiebreak: ArrayLike | None = None,
) -> dict[str, float]:
    """Every metric on the rows as given (no bootstrap)."""
    yy = np.asarray(y, dtype="float64")
    prep = _prepare(
        yy,
        np.asarray(score, dtype="float64"),
        np.asarray(proba, dtype="float64"),
        bins=bins,
        tiebreak=tiebreak,
    )
    values = _metrics(np.ones((1, len(yy))), prep, ks)
    return {name: float(v[0]) for name, v in values.items()}


def bootstrap_metrics(
    y: ArrayLike,
    models: Mapping[str, tuple[ArrayLike, ArrayLike]],
    *,
    ks: Mapping[str, int],
    n_bootstrap: int,
    seed: int,
    bins: int = 10,
    tiebreak: ArrayLike | None = None,
) -> dict[str, dict[str, tuple[float, np.ndarray]]]:
    """Point estimate and bootstrap replicates of every metric, for every model.

    Parameters
    ----------
    y
        0/1 outcomes of the test rows.
    models
        name -> (raw score for ranking, calibrated probability).
    ks
        ``precision_at_<suffix>`` -> k; precision, recall and lift at each k.
    n_bootstrap, seed
        Number of replicates; the same replicates serve every model (paired).

    Returns
    -------
    dict
        model -> metric -> (estimate, replicates of shape ``(n_bootstrap,)``).
    """
    yy = np.asarray(y, dtype="float64")
    prepared = {
        name: _prepare(
            yy,
            np.asarray(score, dtype="float64"),
            np.asarray(proba, dtype="float64"),
            bins=bins,
            tiebreak=tiebreak,
        )
        for name, (score, proba) in models.items()
    }
    estimates = {
        name: _metrics(np.ones((1, len(yy))), prep, ks)
        for name, prep in prepared.items()
    }
    reps: dict[str, dict[str, list[np.ndarray]]] = {name: {} for name in prepared}
    for W in _count_chunks(len(yy), n_bootstrap=n_bootstrap, seed=seed):
        for name, prep in prepared.items():
            for metric, values in _metrics(W, prep, ks).items():
                reps[name].setdefault(metric, []).append(values)
    return {
        name: {
            metric: (
                float(estimates[name][metric][0]),
                np.concatenate(reps[name][metric]),
            )
            for metric in estimates[name]
        }
        for name in prepared
    }


def percentile_ci(
    replicates: np.ndarray, *, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval (replicates with an undefined metric ignored)."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    alpha = (1 - level) / 2
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return float(low), float(high)


def calibration_table(
    y: ArrayLike, proba: ArrayLike, *, bins: int = 10
) -> pd.DataFrame:
    """Reliability curve data: per equal-count bin, mean predicted vs observed rate."""
    yy = np.asarray(y, dtype="float64")
    p = np.asarray(proba, dtype="float64")
    bin_of, _ = quantile_bins(p, bins=bins)
    rows = []
    for b in range(int(bin_of.max()) + 1 if p.size else 0):
        mask = bin_of == b
        count = int(mask.sum())
        rows.append(
            {
                "bin": b,
                "lower": float(p[mask].min()) if count else float("nan"),
                "upper": float(p[mask].max()) if count else float("nan"),
                "count": count,
                "mean_predicted": float(p[mask].mean()) if count else float("nan"),
                "observed_rate": float(yy[mask].mean()) if count else float("nan"),
            }
        )
    return pd.DataFrame(
        rows,
        columns=["bin", "lower", "upper", "count", "mean_predicted", "observed_rate"],
    )


def capacity_curve(
    y: ArrayLike,
    score: ArrayLike,
    *,
    ks: ArrayLike,
    tiebreak: ArrayLike | None = None,
) -> pd.DataFrame:
    """Precision and recall of the top k rows, for each k in ``ks``."""
    yy = np.asarray(y, dtype="float64")
    order = rank_order(score, tiebreak=tiebreak)
    hits = np.cumsum(yy[order])
    k = np.asarray(sorted({int(v) for v in np.asarray(ks) if 0 < v <= len(yy)}))
    top = hits[k - 1] if k.size else np.array([])
    total = hits[-1] if len(hits) else 0.0
    return pd.DataFrame(
        {
            "k": k,
            "precision": top / np.maximum(k, 1),
            "recall": top / total if total else np.full(k.shape, np.nan),
        }
    )
