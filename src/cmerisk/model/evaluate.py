"""Judge the model on the test year beside its baselines, in the terms an LA uses.

"Of the 200 pupils we call, how many were really about to go missing, and how
many of those who went missing did we call?" - precision and recall at each
configured capacity (and top 1% / 5%), lift over the base rate, ROC-AUC,
average precision, Brier score and expected calibration error, each with a
bootstrap 95% CI (:mod:`cmerisk.model.metrics`). Model and baselines share
the bootstrap replicates, so the model-minus-baseline difference on the gate
metric has a CI too. When the model does not beat a baseline, the verdict
says so in a plain sentence.

Pure computation: tables and sentences, no plotting (see
:mod:`cmerisk.reports.model_plots`).

Examples
--------
>>> import numpy as np
>>> from cmerisk.config import EvaluationConfig
>>> rng = np.random.default_rng(0)
>>> y = (rng.random(2000) < 0.05).astype(int)
>>> good = y + rng.normal(0, 0.5, 2000)
>>> weak = y + rng.normal(0, 3, 2000)
>>> cfg = EvaluationConfig(capacities=[50, 100], top_fractions=[0.05],
...                        primary_capacity=100, n_bootstrap=50)
>>> ev = evaluate_models(y, {"model": (good, np.clip(good, 0, 1)),
...                          "points_rule": (weak, np.clip(weak, 0, 1))},
...                      config=cfg, gate_metric="precision_at_primary", seed=0)
>>> ev.beats_baselines
{'points_rule': True}
>>> ev.verdict.startswith("The model beats every baseline")
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from cmerisk.config import EvaluationConfig
from cmerisk.model.metrics import (
    bootstrap_metrics,
    calibration_table,
    capacity_curve,
    capacity_keys,
    percentile_ci,
)

GateMetric = Literal["precision_at_primary", "recall_at_primary", "average_precision"]

#: Metrics where lower is better.
LOWER_IS_BETTER = frozenset({"brier", "ece"})
#: Display names of the models.
MODEL_TITLES = {
    "model": "LightGBM (calibrated)",
    "logistic": "Logistic regression",
    "points_rule": "Points rule",
}


def metric_title(name: str) -> str:
    """A readable metric name (``precision_at_200`` -> ``precision @ 200``)."""
    fixed = {
        "roc_auc": "ROC-AUC",
        "average_precision": "average precision",
        "brier": "Brier score",
        "ece": "expected calibration error",
        "base_rate": "base rate",
        "positives": "positives",
    }
    if name in fixed:
        return fixed[name]
    for head in ("precision", "recall", "lift"):
        if name.startswith(f"{head}_at_top_"):
            share = name.removeprefix(f"{head}_at_top_").replace("pct", "%")
            return f"{head} @ top {share}"
        if name.startswith(f"{head}_at_"):
            return f"{head} @ {name.removeprefix(f'{head}_at_')}"
    return name


def gate_metric_key(metric: GateMetric, *, primary_capacity: int) -> str:
    """The metric a gate compares (``precision_at_primary`` -> ``precision_at_200``)."""
    if metric == "precision_at_primary":
        return f"precision_at_{primary_capacity}"
    if metric == "recall_at_primary":
        return f"recall_at_{primary_capacity}"
    return metric


@dataclass(frozen=True)
class Evaluation:
    """Test-year results of the model and its baselines.

    Attributes
    ----------
    metrics
        Long table: model, metric, estimate, ci_low, ci_high.
    differences
        Model minus each baseline on the gate metric and average precision,
        with paired bootstrap CIs.
    calibration
        Reliability curve per model (bin, count, mean_predicted, observed_rate).
    capacity
        Precision and recall at k over a grid of k, per model.
    gate_metric
        The metric key the gate compares (e.g. ``precision_at_200``).
    beats_baselines
        Baseline name -> whether the model's estimate is better on ``gate_metric``.
    verdict
        One or two plain sentences saying whether the model beats the baselines.
    """

    metrics: pd.DataFrame
    differences: pd.DataFrame
    calibration: pd.DataFrame
    capacity: pd.DataFrame
    gate_metric: str
    beats_baselines: dict[str, bool]
    verdict: str
    rows: int
    positives: int
    notes: list[str] = field(default_factory=list)

    def estimate(self, model: str, metric: str) -> float:
        row = self.metrics[
            (self.metrics["model"] == model) & (self.metrics["metric"] == metric)
        ]
        return float(row["estimate"].iloc[0]) if len(row) else float("nan")

    def comparison(self, *, digits: int = 3) -> pd.DataFrame:
        """Wide table, a row per metric, a column per model: ``0.312 (0.27-0.35)``."""
        table = self.metrics[
            ~self.metrics["metric"].isin(["base_rate", "positives"])
        ].copy()
        table["cell"] = [
            _cell(e, lo, hi, metric=m, digits=digits)
            for m, e, lo, hi in zip(
                table["metric"],
                table["estimate"],
                table["ci_low"],
                table["ci_high"],
                strict=True,
            )
        ]
        wide = table.pivot(index="metric", columns="model", values="cell")
        order = list(dict.fromkeys(table["metric"]))
        models = list(dict.fromkeys(table["model"]))
        wide = wide.loc[order, models]
        wide.index = [metric_title(m) for m in wide.index]
        wide.columns = [MODEL_TITLES.get(m, m) for m in wide.columns]
        wide.index.name = "metric"
        return wide

    def summary(self) -> dict[str, Any]:
        """Flat ``model.metric`` -> value (estimates and CI bounds), for metadata."""
        out: dict[str, Any] = {}
        for row in self.metrics.itertuples(index=False):
            key = f"{row.model}.{row.metric}"
            out[key] = row.estimate
            if row.metric not in ("base_rate", "positives"):
                out[f"{key}.ci_low"] = row.ci_low
                out[f"{key}.ci_high"] = row.ci_high
        return out


def _number(value: float, *, metric: str, digits: int) -> str:
    """3 decimals; lifts with 1; values under 0.01 with 3 significant figures."""
    if metric.startswith("lift"):
        return f"{value:.1f}"
    if value != 0 and abs(value) < 0.01:
        return f"{value:.{digits}g}"
    return f"{value:.{digits}f}"


def _cell(estimate: float, low: float, high: float, *, metric: str, digits: int) -> str:
    if not np.isfinite(estimate):
        return "n/a"
    text = _number(estimate, metric=metric, digits=digits)
    if np.isfinite(low) and np.isfinite(high):
        text += (
            f" ({_number(low, metric=metric, digits=digits)}"
            f"-{_number(high, metric=metric, digits=digits)})"
        )
    return text


def _better(metric: str, a: float, b: float) -> bool:
    if not (np.isfinite(a) and np.isfinite(b)):
        return False
    return a < b if metric in LOWER_IS_BETTER else a > b


def _verdict(
    metric: str,
    model: float,
    baselines: Mapping[str, float],
    beats: Mapping[str, bool],
    differences: pd.DataFrame,
) -> str:
    title = metric_title(metric)
    if not baselines:
        return (
            "No baseline could be scored, so the model was not compared "
            f"({title} {model:.3f})."
        )
    vs = ", ".join(
        f"{MODEL_TITLES.get(b, b).lower()} {v:.3f}" for b, v in baselines.items()
    )
    if all(beats.values()):
        return f"The model beats every baseline on {title} ({model:.3f} vs {vs})."
    lost = [b for b, ok in beats.items() if not ok]
    sentences = []
    for b in lost:
        row = differences[
            (differences["baseline"] == b) & (differences["metric"] == metric)
        ]
        ci = ""
        if len(row):
            r = row.iloc[0]
            ci = (
                f" (difference {r.estimate:+.3f}, "
                f"95% CI {r.ci_low:+.3f} to {r.ci_high:+.3f})"
            )
        sentences.append(
            f"The model does NOT beat the {MODEL_TITLES.get(b, b).lower()} on {title}: "
            f"{model:.3f} vs {baselines[b]:.3f}{ci}."
        )
    return (
        " ".join(sentences)
        + " It should not be deployed in preference to the simpler rule."
    )


def evaluate_models(
    y: ArrayLike,
    models: Mapping[str, tuple[ArrayLike, ArrayLike]],
    *,
    config: EvaluationConfig,
    gate_metric: GateMetric,
    seed: int,
    tiebreak: ArrayLike | None = None,
    primary: str = "model",
) -> Evaluation:
    """Metrics with CIs for every model on the same test rows, and the comparison.

    Parameters
    ----------
    y
        0/1 outcomes of the test rows.
    models
        name -> (raw ranking score, calibrated probability). ``primary`` (the
        model) is compared against every other entry (the baselines).
    config
        Capacities, top fractions, bootstrap size, CI level, calibration bins.
    gate_metric
        Which metric decides "beats the baselines".
    seed
        Seeds the bootstrap.
    tiebreak
        Orders rows with equal scores in the top-k lists (e.g. a hash of the id).
    """
    yy = np.asarray(y, dtype="int64")
    n = len(yy)
    notes = []
    skipped = [k for k in config.capacities if k > n]
    if skipped:
        notes.append(f"capacities {skipped} exceed the {n} test rows and were left out")
    ks = capacity_keys(
        n, capacities=config.capacities, top_fractions=config.top_fractions
    )
    results = bootstrap_metrics(
        yy,
        models,
        ks=ks,
        n_bootstrap=config.n_bootstrap,
        seed=seed,
        bins=config.calibration_bins,
        tiebreak=tiebreak,
    )
    rows = []
    for name, metrics in results.items():
        for metric, (estimate, reps) in metrics.items():
            low, high = percentile_ci(reps, level=config.ci_level)
            rows.append(
                {
                    "model": name,
                    "metric": metric,
                    "estimate": estimate,
                    "ci_low": low,
                    "ci_high": high,
                }
            )
    metrics_table = pd.DataFrame(rows)

    key = gate_metric_key(gate_metric, primary_capacity=config.primary_capacity)
    if key not in results[primary]:
        fallback = "average_precision"
        notes.append(
            f"{metric_title(key)} not available ({n} test rows); gate uses {fallback}"
        )
        key = fallback
    baselines = [m for m in results if m != primary]
    diff_rows = []
    for b in baselines:
        for metric in dict.fromkeys([key, "average_precision"]):
            est_m, rep_m = results[primary][metric]
            est_b, rep_b = results[b][metric]
            low, high = percentile_ci(rep_m - rep_b, level=config.ci_level)
            diff_rows.append(
                {
                    "baseline": b,
                    "metric": metric,
                    "estimate": est_m - est_b,
                    "ci_low": low,
                    "ci_high": high,
                }
            )
    differences = pd.DataFrame(
        diff_rows, columns=["baseline", "metric", "estimate", "ci_low", "ci_high"]
    )
    model_value = results[primary][key][0]
    baseline_values = {b: results[b][key][0] for b in baselines}
    beats = {b: _better(key, model_value, v) for b, v in baseline_values.items()}
    verdict = _verdict(key, model_value, baseline_values, beats, differences)

    calibration = pd.concat(
        [
            calibration_table(yy, proba, bins=config.calibration_bins).assign(
                model=name
            )
            for name, (_, proba) in models.items()
        ],
        ignore_index=True,
    )
    top = max([*ks.values(), config.primary_capacity])
    # k from 10 to past the largest capacity, log-spaced (plots use a log axis)
    upper = max(min(n, int(1.5 * top)), 1)
    grid = np.unique(
        np.concatenate(
            [np.geomspace(min(10, upper), upper, 80).astype(int), list(ks.values())]
        )
    )
    capacity = pd.concat(
        [
            capacity_curve(yy, score, ks=grid, tiebreak=tiebreak).assign(model=name)
            for name, (score, _) in models.items()
        ],
        ignore_index=True,
    )
    return Evaluation(
        metrics=metrics_table,
        differences=differences,
        calibration=calibration,
        capacity=capacity,
        gate_metric=key,
        beats_baselines=beats,
        verdict=verdict,
        rows=n,
        positives=int(yy.sum()),
        notes=notes,
    )
