"""Plots of a training run: calibration curves and precision / recall at k.

Drawing only: the numbers come from :class:`cmerisk.model.evaluate.Evaluation`
(its ``calibration`` and ``capacity`` tables). matplotlib is imported inside
the functions with the headless Agg canvas, so importing this module is cheap
and nothing needs a display.

Examples
--------
>>> import pandas as pd
>>> cal = pd.DataFrame({"model": ["model"] * 2, "bin": [0, 1], "count": [90, 10],
...                     "mean_predicted": [0.05, 0.6], "observed_rate": [0.04, 0.7]})
>>> calibration_png(cal)[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from cmerisk.atomic import atomic_path
from cmerisk.reports.render import figure, png

TITLES = {
    "model": "LightGBM (calibrated)",
    "logistic": "Logistic regression",
    "points_rule": "Points rule",
}
STYLES: dict[str, dict[str, Any]] = {
    "model": {"color": "#1b6ca8", "linestyle": "-", "marker": "o"},
    "logistic": {"color": "#d9822b", "linestyle": "--", "marker": "s"},
    "points_rule": {"color": "#6b6b6b", "linestyle": ":", "marker": "^"},
}


def calibration_png(calibration: pd.DataFrame, *, title: str | None = None) -> bytes:
    """Reliability diagram: observed rate against mean predicted probability, per model.

    One point per equal-count bin of the test year (see
    :func:`cmerisk.model.metrics.quantile_bins`); empty bins are skipped.
    """
    fig = figure(5.2, 4.6, dpi=110)
    ax = fig.add_subplot()
    upper = 0.0
    for model, rows in calibration.groupby("model", sort=False):
        rows = rows[rows["count"] > 0]
        if rows.empty:
            continue
        style = STYLES.get(str(model), {"linestyle": "-", "marker": "o"})
        ax.plot(
            rows["mean_predicted"],
            rows["observed_rate"],
            label=TITLES.get(str(model), str(model)),
            **style,
        )
        upper = max(
            upper,
            float(rows["mean_predicted"].max()),
            float(rows["observed_rate"].max()),
        )
    upper = min(1.0, max(upper * 1.1, 0.05))
    ax.plot(
        [0, upper],
        [0, upper],
        color="black",
        linewidth=0.8,
        label="perfect calibration",
    )
    ax.set_xlim(0, upper)
    ax.set_ylim(0, upper)
    ax.set_xlabel("predicted probability (bin mean)")
    ax.set_ylabel("observed rate in the test year")
    ax.set_title(title or "Calibration on the test year")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return png(fig)


def capacity_png(
    capacity: pd.DataFrame,
    *,
    capacities: Sequence[int] = (),
    primary: int | None = None,
    base_rate: float | None = None,
) -> bytes:
    """Precision and recall of the top-k list against k, model beside baselines."""
    fig = figure(9.5, 4.2, dpi=110)
    ax_p, ax_r = fig.subplots(1, 2)
    for model, rows in capacity.groupby("model", sort=False):
        style = dict(STYLES.get(str(model), {"linestyle": "-"}))
        style.pop("marker", None)
        label = TITLES.get(str(model), str(model))
        ax_p.plot(rows["k"], rows["precision"], label=label, **style)
        ax_r.plot(rows["k"], rows["recall"], label=label, **style)
    if base_rate is not None:
        ax_p.axhline(
            base_rate, color="black", linewidth=0.8, label="base rate (random list)"
        )
    for ax in (ax_p, ax_r):
        for k in capacities:
            ax.axvline(
                k,
                color="#999999",
                linewidth=0.6,
                linestyle="-" if k == primary else ":",
            )
        ax.set_xlabel("pupils contacted (k, highest risk first; log scale)")
        ax.set_xscale("log")
        ax.grid(alpha=0.3, which="both")
        ax.set_ylim(0, None)
    ax_p.set_ylabel("precision @ k (share who went missing)")
    ax_r.set_ylabel("recall @ k (share of those missing who were listed)")
    ax_p.set_title("Precision at k")
    ax_r.set_title("Recall at k")
    ax_p.legend(fontsize=8)
    return png(fig)


def model_plots(
    evaluation: Any, *, capacities: Sequence[int], primary: int
) -> dict[str, bytes]:
    """The run's plots as ``{file name: PNG bytes}``, ready to write or log."""
    base = evaluation.positives / evaluation.rows if evaluation.rows else None
    return {
        "calibration.png": calibration_png(evaluation.calibration),
        "precision_recall_at_k.png": capacity_png(
            evaluation.capacity, capacities=capacities, primary=primary, base_rate=base
        ),
    }


def write_plots(plots: Mapping[str, bytes], out_dir: str | Path) -> list[Path]:
    """Write each PNG atomically (temp file in the same folder, then rename)."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in plots.items():
        with atomic_path(folder / name) as tmp:
            tmp.write_bytes(data)
        written.append(folder / name)
    return written
