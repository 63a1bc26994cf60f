"""How fast is the fairness audit's bootstrap, against plain ways of doing the same?

A 50,000-pupil test year with eight audit columns and two intersections (about
45 groups), a rare outcome (about 1.5%) and a capacity of 500 is audited by
:func:`cmerisk.fairness.audit` (mitigation analysis off and on), and the same
bootstrap intervals are computed by two plain baselines in the same process:

- ``fairlearn``: fairlearn's own ``MetricFrame(n_boot=...)`` with the same
  rates (whole-sample resampling, not stratified, one pandas pass per
  replicate);
- ``numpy_loop``: the straightforward loop, for each group and each replicate
  draw the group's pupils with replacement and compute the rates and the AUC
  (scikit-learn) of the draw.

Baselines run fewer replicates (they are slow); the comparison is per
replicate-grouping (throughput ratio). Peak traced memory (tracemalloc) is
reported per run and as a ratio to the baseline's. Also checked: the audit's
interval for a large group agrees with the loop's within Monte Carlo error.

Run::

    python -m benchmarks.fairness_benchmark            # 50,000 pupils
    python -m benchmarks.fairness_benchmark --pupils 200000

Results go to ``benchmarks/results/fairness.json``. The machine may be shared
with other work: absolute times vary from run to run; the ratios less so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cmerisk.config import FairnessConfig

RESULTS = Path(__file__).parent / "results" / "fairness.json"
GROUPS = FairnessConfig().groups  # the audit's default groups


def make_year(
    pupils: int, *, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A test year shaped like the CME audit columns, with risk tied to needs."""
    rng = np.random.default_rng(seed)
    n = pupils
    frame = pd.DataFrame(
        {
            "pupil_id": [f"{i:012x}" for i in rng.permutation(n)],
            "sex": rng.choice(["F", "M"], n),
            "ethnicity_major": rng.choice(
                ["White", "Asian", "Black", "Mixed", "Other", None],
                n,
                p=[0.7, 0.11, 0.05, 0.06, 0.03, 0.05],
            ),
            "sen_provision": rng.choice(["N", "K", "E"], n, p=[0.82, 0.136, 0.044]),
            "semh": rng.random(n) < 0.04,
            "fsm_eligible": rng.random(n) < 0.25,
            "idaci_quintile": rng.choice(["1 (most deprived)", "2", "3", "4", "5"], n),
            "cin_status": rng.choice(
                ["none", "CIN", "CPP", "CLA"], n, p=[0.965, 0.02, 0.01, 0.005]
            ),
            "first_language": rng.choice(
                ["English", "Other", None], n, p=[0.78, 0.2, 0.02]
            ),
        }
    )
    risk = (
        -5
        + 1.2 * (frame["sen_provision"] == "E")
        + 0.6 * frame["fsm_eligible"]
        + 1.5 * (frame["cin_status"] != "none")
        + rng.normal(0, 1.0, n)
    )
    p = 1 / (1 + np.exp(-risk.to_numpy()))
    y = (rng.random(n) < p).astype(np.int8)
    score = np.clip(p * np.exp(rng.normal(0, 0.3, n)), 0, 1)
    return frame, y, score


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of this process) of one call, untraced.

    CPU time moves less than wall time when the machine is shared.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def peak_traced(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated (tracemalloc) during one call.

    Run apart from the timing: tracing slows Python-heavy code (the baselines)
    far more than numpy-heavy code, which would flatter the audit's speed.
    """
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def _flags(frame: pd.DataFrame, score: np.ndarray, capacity: int) -> np.ndarray:
    from cmerisk.fairness_inputs import ranking, top_k

    return top_k(ranking(score, ids=frame["pupil_id"].to_numpy()), capacity=capacity)


def fairlearn_baseline(frame, y, score, *, capacity: int, n_boot: int) -> None:
    """fairlearn's MetricFrame bootstrap, one column at a time."""
    from fairlearn.metrics import (
        MetricFrame,
        false_negative_rate,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import precision_score, roc_auc_score

    flags = _flags(frame, score, capacity).astype(int)

    def auc(t, p, score):
        return roc_auc_score(t, score) if 0 < np.sum(t) < len(t) else np.nan

    metrics = {
        "missed_rate": false_negative_rate,
        "recall": true_positive_rate,
        "false_positive_rate": false_positive_rate,
        "precision": lambda t, p: precision_score(t, p, zero_division=np.nan),
        "selection_rate": selection_rate,
        "auc": auc,
    }
    for column in GROUPS:
        MetricFrame(
            metrics=metrics,
            y_true=y,
            y_pred=flags,
            sensitive_features=frame[column].fillna("Unknown"),
            sample_params={"auc": {"score": score}},
            n_boot=n_boot,
            ci_quantiles=[0.025, 0.975],
            random_state=0,
        )


def numpy_loop_baseline(
    frame, y, score, *, capacity: int, n_boot: int
) -> dict[str, Any]:
    """For each group and replicate: draw its pupils, compute the rates and AUC."""
    from sklearn.metrics import roc_auc_score

    flags = _flags(frame, score, capacity)
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {}
    for column in GROUPS:
        keys = frame[column].astype(object).where(frame[column].notna(), "Unknown")
        for key in pd.unique(keys):
            idx = np.flatnonzero((keys == key).to_numpy())
            missed = []
            for _ in range(n_boot):
                draw = idx[rng.integers(0, len(idx), len(idx))]
                t, f, s = y[draw], flags[draw], score[draw]
                pos = t.sum()
                missed.append(((t == 1) & ~f).sum() / pos if pos else np.nan)
                _ = (f & (t == 0)).sum() / max((t == 0).sum(), 1)
                _ = (f & (t == 1)).sum() / max(f.sum(), 1)
                if 0 < pos < len(t):
                    roc_auc_score(t, s)
            with warnings.catch_warnings():  # groups where no child went missing
                warnings.simplefilter("ignore", RuntimeWarning)
                out[f"{column}={key}"] = np.nanquantile(missed, [0.025, 0.975])
    return out


def naive_interval(frame, y, score, *, capacity: int, n_boot: int) -> list[float]:
    """The missed-children rate interval of sen_provision=N by drawing its pupils."""
    flags = _flags(frame, score, capacity)
    idx = np.flatnonzero((frame["sen_provision"] == "N").to_numpy())
    rng = np.random.default_rng(1)
    missed = []
    for _ in range(n_boot):
        draw = idx[rng.integers(0, len(idx), len(idx))]
        t, f = y[draw], flags[draw]
        missed.append(((t == 1) & ~f).sum() / t.sum())
    return [round(float(v), 4) for v in np.quantile(missed, [0.025, 0.975])]


def run(
    pupils: int, *, capacity: int, n_boot: int, loop_boot: int, fairlearn_boot: int
) -> dict[str, Any]:
    from cmerisk.config import FairnessConfig
    from cmerisk.fairness import audit
    from cmerisk.spec import DatasetSpec, FeatureSpec

    frame, y, score = make_year(pupils)
    spec = DatasetSpec(
        id="pupil_id",
        target="cme",
        features=[FeatureSpec(name="x", group="other", reason="x")],
    )
    config = FairnessConfig(groups=GROUPS, n_bootstrap=n_boot)
    # warm up imports and caches outside the timed runs
    audit(
        frame.head(2000),
        spec=spec,
        config=config.model_copy(update={"n_bootstrap": 5}),
        y_true=y[:2000],
        y_score=score[:2000],
        capacity=50,
        mitigation=False,
    )

    def run_audit(mitigation: bool) -> Any:
        return audit(
            frame,
            spec=spec,
            config=config,
            y_true=y,
            y_score=score,
            capacity=capacity,
            mitigation=mitigation,
        )

    def run_fairlearn(boots: int) -> None:
        fairlearn_baseline(frame, y, score, capacity=capacity, n_boot=boots)

    def run_loop(boots: int) -> None:
        numpy_loop_baseline(frame, y, score, capacity=capacity, n_boot=boots)

    result, audit_s, audit_cpu = timed(lambda: run_audit(False))
    _, full_s, full_cpu = timed(lambda: run_audit(True))
    _, fl_s, fl_cpu = timed(lambda: run_fairlearn(fairlearn_boot))
    _, loop_s, loop_cpu = timed(lambda: run_loop(loop_boot))
    # peak memory of each, traced in separate runs (baselines: 2 replicates; their
    # peak does not grow with the number of replicates)
    audit_peak = peak_traced(lambda: run_audit(False))
    full_peak = peak_traced(lambda: run_audit(True))
    fl_peak = peak_traced(lambda: run_fairlearn(2))
    loop_peak = peak_traced(lambda: run_loop(2))
    groupings = len(result.groupings) + 1  # plus all pupils
    groups = int(result.metrics.drop_duplicates(["grouping", "group"]).shape[0])
    audit_rate = n_boot * groupings / audit_s  # replicate-groupings per second
    fl_rate = fairlearn_boot * len(GROUPS) / fl_s
    loop_rate = loop_boot * len(GROUPS) / loop_s
    row = result.metrics.query(
        "grouping == 'sen_provision' and group == 'N' and metric == 'missed_rate'"
    ).iloc[0]
    return {
        "pupils": pupils,
        "groupings": groupings,
        "groups": groups,
        "capacity": capacity,
        "went_missing": int(y.sum()),
        "n_bootstrap": n_boot,
        "baseline_bootstrap": {"fairlearn": fairlearn_boot, "numpy_loop": loop_boot},
        "cpu_seconds": {
            "audit": round(audit_cpu, 3),
            "audit_with_mitigation": round(full_cpu, 3),
            "fairlearn": round(fl_cpu, 3),
            "numpy_loop": round(loop_cpu, 3),
        },
        "speedup_vs_numpy_loop_cpu": round(
            (n_boot * groupings / audit_cpu) / (loop_boot * len(GROUPS) / loop_cpu), 1
        ),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "audit_seconds": round(audit_s, 3),
        "audit_with_mitigation_seconds": round(full_s, 3),
        "fairlearn_seconds": round(fl_s, 3),
        "numpy_loop_seconds": round(loop_s, 3),
        "throughput_replicate_groupings_per_s": {
            "audit": round(audit_rate, 1),
            "fairlearn": round(fl_rate, 2),
            "numpy_loop": round(loop_rate, 2),
        },
        "speedup_vs_fairlearn": round(audit_rate / fl_rate, 1),
        "speedup_vs_numpy_loop": round(audit_rate / loop_rate, 1),
        "peak_traced_mb": {
            "audit": round(audit_peak / 2**20, 1),
            "audit_with_mitigation": round(full_peak / 2**20, 1),
            "fairlearn": round(fl_peak / 2**20, 1),
            "numpy_loop": round(loop_peak / 2**20, 1),
        },
        "peak_memory_ratio_vs_fairlearn": round(audit_peak / fl_peak, 2),
        "peak_memory_ratio_vs_numpy_loop": round(audit_peak / loop_peak, 2),
        "interval_check_sen_N_missed_rate": {
            "audit": [round(row["ci_low"], 4), round(row["ci_high"], 4)],
            "numpy_loop": naive_interval(
                frame, y, score, capacity=capacity, n_boot=n_boot
            ),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pupils", type=int, nargs="+", default=[50_000])
    parser.add_argument("--capacity", type=int, default=500)
    parser.add_argument("--n-boot", type=int, default=300)
    parser.add_argument("--loop-boot", type=int, default=20)
    parser.add_argument("--fairlearn-boot", type=int, default=2)
    args = parser.parse_args()
    runs = []
    for pupils in args.pupils:
        r = run(
            pupils,
            capacity=args.capacity,
            n_boot=args.n_boot,
            loop_boot=args.loop_boot,
            fairlearn_boot=args.fairlearn_boot,
        )
        print(json.dumps(r, indent=2))
        runs.append(r)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "fairness",
                "machine": {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                },
                "runs": runs,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
