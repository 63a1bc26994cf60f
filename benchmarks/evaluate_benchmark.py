"""How much does the vectorised bootstrap save over the straightforward loop?

The test-year metrics of a training run come with bootstrap 95% CIs for the
model and both baselines (500 resamples each by default). This benchmark times
:func:`cmerisk.model.metrics.bootstrap_metrics` (resamples as count matrices,
metrics from cumulative sums and matrix products, chunked) against the plain
approach - for each resample, index the arrays and call scikit-learn
(``roc_auc_score``, ``average_precision_score``, ``brier_score_loss``) plus a
sort for precision@k and a bincount for ECE - on the SAME resamples, asserts
the values agree (1e-9), and reports the time ratio and the peak traced memory
of each (tracemalloc) as a ratio.

Run::

    python -m benchmarks.evaluate_benchmark             # 50,000 rows, 200 resamples
    python -m benchmarks.evaluate_benchmark --rows 20000 --resamples 100

Results go to ``benchmarks/results/evaluate.json``. The machine may be shared:
absolute times vary; the ratio less so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from cmerisk.model.metrics import (
    _count_chunks,
    bootstrap_metrics,
    quantile_bins,
    rank_order,
)

RESULTS = Path(__file__).parent / "results" / "evaluate.json"
K = 200
BINS = 10


def _data(
    rows: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A rare outcome (about 0.4%), a score with signal and ties, a probability."""
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.004).astype(int)
    score = np.round(y * 1.5 + rng.normal(0, 1, rows), 2)  # rounding makes ties
    proba = 1 / (1 + np.exp(-(score - 6)))
    tiebreak = rng.permutation(rows)
    return y, score, proba, tiebreak


def _loop(
    y: np.ndarray,
    score: np.ndarray,
    proba: np.ndarray,
    tiebreak: np.ndarray,
    counts: np.ndarray,
) -> dict[str, np.ndarray]:
    """The straightforward way: re-index every resample and call scikit-learn."""
    bin_of, _ = quantile_bins(proba, bins=BINS)
    out: dict[str, list[float]] = {
        m: []
        for m in ("roc_auc", "average_precision", "brier", "ece", "precision_at_200")
    }
    rows = np.arange(len(y))
    for c in counts:
        idx = np.repeat(rows, c.astype(int))
        yy, ss, pp = y[idx], score[idx], proba[idx]
        out["roc_auc"].append(roc_auc_score(yy, ss))
        out["average_precision"].append(average_precision_score(yy, ss))
        out["brier"].append(brier_score_loss(yy, pp))
        top = rank_order(ss, tiebreak=tiebreak[idx])[:K]
        out["precision_at_200"].append(yy[top].mean())
        b = bin_of[idx]
        gap = np.abs(
            np.bincount(b, weights=yy, minlength=BINS)
            - np.bincount(b, weights=pp, minlength=BINS)
        ).sum()
        out["ece"].append(gap / len(idx))
    return {m: np.asarray(v) for m, v in out.items()}


def _measure(fn: Any) -> tuple[Any, float, int]:
    tracemalloc.start()
    start = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return value, seconds, peak


def run(rows: int, resamples: int, seed: int) -> dict[str, Any]:
    y, score, proba, tiebreak = _data(rows, seed)
    counts = np.vstack(list(_count_chunks(rows, n_bootstrap=resamples, seed=seed)))

    fast, fast_s, fast_peak = _measure(
        lambda: bootstrap_metrics(
            y,
            {"m": (score, proba)},
            ks={"precision_at_200": K},
            n_bootstrap=resamples,
            seed=seed,
            bins=BINS,
            tiebreak=tiebreak,
        )["m"]
    )
    slow, slow_s, slow_peak = _measure(lambda: _loop(y, score, proba, tiebreak, counts))
    worst = 0.0
    for metric, reference in slow.items():
        diff = float(np.max(np.abs(fast[metric][1] - reference)))
        worst = max(worst, diff)
        assert diff < 1e-9, f"{metric}: vectorised and loop differ by {diff}"
    return {
        "rows": rows,
        "resamples": resamples,
        "positives": int(y.sum()),
        "metrics_compared": sorted(slow),
        "max_abs_difference": worst,
        "vectorised_seconds": round(fast_s, 3),
        "loop_seconds": round(slow_s, 3),
        "speedup_loop_over_vectorised": round(slow_s / fast_s, 2),
        "vectorised_peak_traced_mb": round(fast_peak / 2**20, 1),
        "loop_peak_traced_mb": round(slow_peak / 2**20, 1),
        "peak_memory_ratio_vectorised_over_loop": round(fast_peak / slow_peak, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = run(args.rows, args.resamples, args.seed)
    result["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(RESULTS)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
