"""What a training run writes: tables, plots, fairness pages, and its MLflow record.

Helpers of :func:`cmerisk.pipeline.run_experiment`, kept apart so the pipeline
reads as its table of contents. Everything written here is aggregate (metrics,
curves, spec, config, schema, plots of many pupils); no pupil rows or ids.

A run folder (``--out``) and the MLflow run hold the same layout::

    metrics.csv comparison.csv differences.csv calibration_curve.csv
    capacity_curve.csv run.json fairness.json fairness.html
    plots/      calibration and precision/recall-at-k plots
    explain/    global SHAP views of the test year (importance by feature and
                by group, beeswarm, dependence of the top features)
    model/      the model bundle (MLflow: the registered pyfunc model)
    model_card.html model_card.md
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cmerisk.atomic import atomic_path
from cmerisk.model.provenance import package_versions

if TYPE_CHECKING:
    import pandas as pd

    from cmerisk.pipeline import ExperimentResult
    from cmerisk.tracking import RunRecord

#: Folder of the global SHAP plots, in a run folder and in the MLflow run.
EXPLAIN_FOLDER = "explain"


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write text (UTF-8) or bytes to ``path`` atomically, making its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)


def plots(result: ExperimentResult) -> dict[str, bytes]:
    from cmerisk.reports.model_plots import model_plots

    ev = result.config.evaluation
    return model_plots(
        result.evaluation, capacities=ev.capacities, primary=ev.primary_capacity
    )


def explain_plots(result: ExperimentResult, test: pd.DataFrame) -> dict[str, bytes]:
    """The global SHAP views of the model on the test year: ``{file name: png}``.

    Importance by feature and by group, a beeswarm and dependence plots of the
    top features, from exact contributions of up to 5,000 test-year pupils (a
    sample seeded by the run's seed). A pupil with several test rows (a split
    by id, without a time column) counts once, by their last row.
    """
    from cmerisk.explain_outputs import global_plots_for

    pupils = test.drop_duplicates(subset=result.spec.id, keep="last")
    return global_plots_for(pupils, result.bundle, seed=result.config.seed)


def fairness_outputs(
    result: ExperimentResult,
) -> tuple[dict[str, Any] | None, str | None]:
    from cmerisk.reports.fairness_report import render_fairness_html

    if result.audit is None:
        return None, None
    return result.audit.to_dict(), render_fairness_html(result.audit)


def tables(result: ExperimentResult) -> dict[str, str]:
    ev = result.evaluation
    return {
        "metrics.csv": ev.metrics.to_csv(index=False),
        "comparison.csv": ev.comparison().to_csv(),
        "differences.csv": ev.differences.to_csv(index=False),
        "calibration_curve.csv": ev.calibration.to_csv(index=False),
        "capacity_curve.csv": ev.capacity.to_csv(index=False),
    }


def summary_json(result: ExperimentResult, *, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "split": {"description": result.split.description, **result.split.details},
        "depth_candidates": [c.to_dict() for c in result.trained.candidates],
        "calibration": result.calibrator.to_dict()["selection"]
        | {"method": result.calibrator.method},
        "gates": result.gates.to_dict(),
        "verdict": result.evaluation.verdict,
        "baselines": result.baselines,
        "data": {"digest": result.data_digest, "schema": schema},
        "notes": result.notes,
        "timings_seconds": result.timings,
    }


def write_outputs(
    result: ExperimentResult, plots: dict[str, bytes], *, out: Path, schema: dict
) -> None:
    for name, text in tables(result).items():
        write_atomic(out / name, text)
    for name, data in plots.items():
        write_atomic(out / "plots" / name, data)
    for name, data in result.explain_plots.items():
        write_atomic(out / EXPLAIN_FOLDER / name, data)
    write_atomic(
        out / "run.json",
        json.dumps(summary_json(result, schema=schema), indent=2, default=str) + "\n",
    )
    if result.fairness is not None:
        write_atomic(
            out / "fairness.json",
            json.dumps(result.fairness, indent=2, default=str) + "\n",
        )
    if result.fairness_html is not None:
        write_atomic(out / "fairness.html", result.fairness_html)


def metric_values(result: ExperimentResult) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in result.evaluation.summary().items():
        if value is not None and np.isfinite(value):
            out[f"test.{key}"] = float(value)
    for c in result.trained.candidates:
        out[f"validation.average_precision.max_depth_{c.max_depth}"] = c.validation_ap
        out[f"validation.tree_depth.max_depth_{c.max_depth}"] = float(c.tree_depth)
        out[f"validation.best_iteration.max_depth_{c.max_depth}"] = float(
            c.best_iteration
        )
    for name, part in result.split.details.get("slices", {}).items():
        for key, value in part.items():
            out[f"split.{name}.{key}"] = float(value)
    for name, seconds in result.timings.items():
        out[f"seconds.{name}"] = float(seconds)
    out["gates.passed"] = float(result.gates.passed)
    return out


def run_record(
    result: ExperimentResult, plots: dict[str, bytes], *, schema: dict
) -> RunRecord:
    """The MLflow record of a run (params, metrics, tags, artifacts, plots)."""
    from cmerisk.tracking import RunRecord, flatten_params

    config = result.config
    params = flatten_params(config.model_dump(mode="json"))
    params.update(
        {
            "chosen.max_depth": str(result.trained.chosen.max_depth),
            "chosen.best_iteration": str(result.trained.chosen.best_iteration),
            "chosen.num_leaves": str(result.trained.chosen.num_leaves),
            "chosen.scale_pos_weight": f"{result.trained.scale_pos_weight:.6g}",
            "chosen.calibration": result.calibrator.method,
            "split.kind": result.split.kind,
            "spec.features": str(len(result.spec.features)),
        }
    )
    versions = package_versions()
    tags = {
        "cmerisk.version": versions.get("cmerisk", "unknown"),
        "git_commit": result.git_commit or "none",
        "data_digest": result.data_digest,
        "split": result.split.description[:4000],
        "gates": result.gates.reason[:4000],
        "verdict": result.evaluation.verdict[:4000],
    }
    json_artifacts = {
        "config.json": config.model_dump(mode="json"),
        "feature_spec.json": result.spec.model_dump(mode="json"),
        "package_versions.json": versions,
        "data_schema.json": {"digest": result.data_digest, **schema},
        "run.json": summary_json(result, schema=schema),
    }
    text_artifacts = tables(result)
    if result.fairness is not None:
        json_artifacts["fairness/fairness.json"] = result.fairness
    if result.fairness_html is not None:
        text_artifacts["fairness/fairness.html"] = result.fairness_html
    ev = result.evaluation
    description = (
        f"{result.split.description}. {ev.verdict} Gates: {result.gates.reason}."
    )
    return RunRecord(
        run_name=f"{config.name}-depth{result.trained.chosen.max_depth}",
        params=params,
        metrics=metric_values(result),
        tags=tags,
        json_artifacts=json_artifacts,
        text_artifacts=text_artifacts,
        images=plots,
        files={f"{EXPLAIN_FOLDER}/{n}": png for n, png in result.explain_plots.items()},
        bundle_path=result.bundle_path,  # type: ignore[arg-type]
        gates_passed=result.gates.passed,
        gates_reason=result.gates.reason,
        description=description,
    )
