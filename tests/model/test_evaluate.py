"""Evaluation: comparison table, verdict, paired differences."""

from __future__ import annotations

import numpy as np
import pytest

from cmerisk.config import EvaluationConfig
from cmerisk.model.evaluate import evaluate_models, gate_metric_key, metric_title


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(0)
    y = (rng.random(3000) < 0.05).astype(int)
    strong = y * 1.5 + rng.normal(0, 1, 3000)
    weak = y * 0.3 + rng.normal(0, 1, 3000)
    return y, strong, weak


CFG = EvaluationConfig(
    capacities=[50, 100, 5000],
    top_fractions=[0.01, 0.05],
    primary_capacity=100,
    n_bootstrap=80,
)


def _clip(s):
    return np.clip((s + 3) / 8, 0, 1)


def test_model_that_loses_is_called_out_plainly(arrays) -> None:
    y, strong, weak = arrays
    ev = evaluate_models(
        y,
        {
            "model": (weak, _clip(weak)),
            "logistic": (strong, _clip(strong)),
            "points_rule": (weak - 5, _clip(weak)),
        },
        config=CFG,
        gate_metric="precision_at_primary",
        seed=1,
    )
    assert ev.gate_metric == "precision_at_100"
    assert ev.beats_baselines["logistic"] is False
    assert "does NOT beat the logistic regression on precision @ 100" in ev.verdict
    assert "should not be deployed" in ev.verdict
    # points rule ranks identically to the model: a tie is not a win
    assert ev.beats_baselines["points_rule"] is False


def test_model_that_wins_says_so(arrays) -> None:
    y, strong, weak = arrays
    ev = evaluate_models(
        y,
        {"model": (strong, _clip(strong)), "logistic": (weak, _clip(weak))},
        config=CFG,
        gate_metric="average_precision",
        seed=1,
    )
    assert ev.beats_baselines == {"logistic": True}
    assert ev.verdict.startswith("The model beats every baseline on average precision")
    diff = ev.differences.query("metric == 'average_precision'").iloc[0]
    assert diff.ci_low <= diff.estimate <= diff.ci_high and diff.estimate > 0


def test_metrics_table_has_every_metric_with_a_ci(arrays) -> None:
    y, strong, _ = arrays
    ev = evaluate_models(
        y,
        {"model": (strong, _clip(strong))},
        config=CFG,
        gate_metric="precision_at_primary",
        seed=2,
    )
    metrics = set(ev.metrics["metric"])
    for m in (
        "roc_auc",
        "average_precision",
        "brier",
        "ece",
        "precision_at_50",
        "recall_at_100",
        "lift_at_100",
        "precision_at_top_1pct",
        "recall_at_top_5pct",
    ):
        assert m in metrics
    assert "precision_at_5000" not in metrics and "5000" in ev.notes[0]
    table = ev.metrics[
        ev.metrics["metric"].isin(["roc_auc", "precision_at_100", "brier"])
    ]
    assert ((table.ci_low <= table.estimate) & (table.estimate <= table.ci_high)).all()
    assert ev.verdict.startswith("No baseline")
    wide = ev.comparison()
    assert "precision @ 100" in wide.index and "LightGBM (calibrated)" in wide.columns


def test_curves_cover_every_model(arrays) -> None:
    y, strong, weak = arrays
    ev = evaluate_models(
        y,
        {"model": (strong, _clip(strong)), "logistic": (weak, _clip(weak))},
        config=CFG,
        gate_metric="precision_at_primary",
        seed=1,
    )
    assert set(ev.calibration["model"]) == {"model", "logistic"}
    assert ev.calibration.groupby("model")["count"].sum().tolist() == [3000, 3000]
    assert {100, 50}.issubset(set(ev.capacity["k"]))


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("precision_at_200", "precision @ 200"),
        ("recall_at_top_5pct", "recall @ top 5%"),
        ("roc_auc", "ROC-AUC"),
    ],
)
def test_metric_titles(name, title) -> None:
    assert metric_title(name) == title


def test_gate_metric_keys() -> None:
    assert gate_metric_key("recall_at_primary", primary_capacity=50) == "recall_at_50"
    assert (
        gate_metric_key("average_precision", primary_capacity=50) == "average_precision"
    )


def test_comparison_cells_keep_small_values_readable(arrays) -> None:
    y, strong, _ = arrays
    tiny = np.clip(_clip(strong) / 50, 0, 1)
    ev = evaluate_models(
        y,
        {"model": (strong, tiny)},
        config=CFG,
        gate_metric="precision_at_primary",
        seed=2,
    )
    wide = ev.comparison()
    brier = wide.loc["Brier score"].iloc[0]
    assert brier.startswith("0.0") and not brier.startswith("0.000 ")
    assert len(wide.loc["lift @ 100"].iloc[0].split(" ")[0].split(".")[1]) == 1
