"""The table of contents of a training run.

:func:`run_experiment` takes any pupil-level frame and its
:class:`~cmerisk.spec.DatasetSpec`:

1. check the frame (columns, outcome values) - once, here;
2. split (temporal when the spec has a time column, else by id);
3. baselines: logistic regression and the LA-style points rule;
4. LightGBM over the depth candidates, early-stopped on the calibration slice;
5. calibrate every model's scores on the calibration slice;
6. evaluate on the test year with bootstrap CIs, model beside baselines;
7. fairness audit on the test year, at the list scoring would make;
8. champion gates;
9. global SHAP views of the model on the test year;
10. save the model bundle, the run's tables and plots under ``out_dir``;
11. track in MLflow, register, set the ``champion`` alias if the gates passed,
    and log the model card (HTML and Markdown) with the run.

:func:`build_cme_frame` makes the CME frame from an LA's raw tables with the
feature pipeline.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cmerisk import pipeline_outputs as outputs
from cmerisk.config import ExperimentConfig
from cmerisk.errors import CmeriskError, DataError
from cmerisk.model.baselines import fit_logistic, logistic_scores, points_rule
from cmerisk.model.bundle import ModelBundle, make_bundle, save_bundle
from cmerisk.model.calibrate import Calibrator, fit_calibrator
from cmerisk.model.checks import check_frame
from cmerisk.model.evaluate import Evaluation, evaluate_models
from cmerisk.model.gates import GateResult, check_gates
from cmerisk.model.matrix import category_levels, feature_matrix
from cmerisk.model.metrics import id_tiebreak
from cmerisk.model.provenance import (
    frame_digest,
    frame_schema,
    git_commit,
)
from cmerisk.model.reference import input_dtypes
from cmerisk.model.splits import Split, make_split
from cmerisk.model.train import TrainedModel, train_lightgbm
from cmerisk.reports.model_card import write_model_card
from cmerisk.spec import DatasetSpec

if TYPE_CHECKING:
    from cmerisk.fairness_audit import FairnessAudit

Progress = Callable[[str], None]


@dataclass
class ExperimentResult:
    """What a training run produced; ``summary()`` is what the CLI prints."""

    spec: DatasetSpec
    config: ExperimentConfig
    split: Split
    trained: TrainedModel
    calibrator: Calibrator
    evaluation: Evaluation
    gates: GateResult
    bundle: ModelBundle
    baselines: dict[str, str]
    data_digest: str
    bundle_path: Path | None = None
    out_dir: Path | None = None
    audit: FairnessAudit | None = None
    audit_note: str | None = None
    tracked: Any | None = None
    fairness: dict[str, Any] | None = None
    fairness_html: str | None = None
    git_commit: str | None = None
    explain_plots: dict[str, bytes] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def champion(self) -> bool:
        return bool(self.tracked is not None and self.tracked.champion)


def _calibrated(
    cal_score: np.ndarray,
    test_score: np.ndarray,
    y_cal: np.ndarray,
    *,
    config: ExperimentConfig,
) -> tuple[Calibrator, np.ndarray]:
    cal = fit_calibrator(
        cal_score, y_cal, method=config.calibration.method, seed=config.seed
    )
    return cal, cal.transform(test_score)


def _run_audit(
    frame: pd.DataFrame,
    *,
    spec: DatasetSpec,
    config: ExperimentConfig,
    y_test: np.ndarray,
    p_test: np.ndarray,
    m_test: np.ndarray,
    calibration: tuple[pd.DataFrame, np.ndarray, np.ndarray],
) -> tuple[FairnessAudit | None, str | None]:
    """(audit, why there is none or it audits no group).

    The operating point is the list scoring would make from these scores:
    calibrated probability, ties by the raw margin, then by id.
    """
    from cmerisk.fairness import CalibrationData, audit

    cal_frame, y_cal, p_cal = calibration
    try:
        result = audit(
            frame,
            spec=spec,
            config=config.fairness,
            y_true=y_test,
            y_score=p_test,
            y_margin=m_test,
            capacity=min(config.evaluation.primary_capacity, len(frame)),
            seed=config.seed,
            calibration=CalibrationData(cal_frame, y_cal, p_cal),
        )
    except CmeriskError as e:
        return None, f"the fairness audit could not run: {e}"
    if not result.groupings:
        return result, "no audit columns in the data"
    return result, None


def run_experiment(
    frame: pd.DataFrame,
    *,
    spec: DatasetSpec,
    config: ExperimentConfig,
    tracking: bool = True,
    out_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> ExperimentResult:
    """Train, calibrate, evaluate, audit, gate, save and track one model.

    Parameters
    ----------
    frame
        One row per (pupil, as-of date) with the spec's id, target, features,
        time column (optional) and any audit / carried columns.
    spec
        Column roles.
    config
        The experiment config (stored in the bundle).
    tracking
        Log the run to MLflow and register the model.
    out_dir
        Folder for the bundle (``out_dir/model``) and the run's tables and plots;
        without it the bundle only goes to MLflow (or stays in memory).
    progress
        Called with a short description as each step starts.
    """
    say = progress or (lambda _msg: None)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    say("checking the feature table")
    frame = frame.reset_index(drop=True)
    y = check_frame(frame, spec=spec)
    digest = frame_digest(frame)
    schema = frame_schema(frame)
    lap("check")

    say("splitting")
    split = make_split(
        frame,
        y,
        spec=spec,
        config=config.split,
        horizon_days=config.dataset.horizon_days if spec.time else None,
        seed=config.seed,
    )
    tr, ca, te = split.train, split.calibration, split.test
    levels = category_levels(frame.iloc[tr], spec=spec)
    X = feature_matrix(frame, spec=spec, categories=levels)
    X_tr, X_ca, X_te = X.iloc[tr], X.iloc[ca], X.iloc[te]
    y_tr, y_ca, y_te = y[tr], y[ca], y[te]
    lap("split")

    say("baselines")
    notes: list[str] = []
    logistic = fit_logistic(
        X_tr, y_tr, spec=spec, c=config.baselines.logistic_c, seed=config.seed
    )
    lr_ca = logistic_scores(logistic, X_ca, spec=spec)
    lr_te = logistic_scores(logistic, X_te, spec=spec)
    rule = points_rule(frame, points=config.baselines.points_rule)
    baselines = {
        "logistic": "logistic regression on the same features (median imputation "
        "with missing indicators, scaling, one-hot categoricals)"
    }
    if rule is None:
        notes.append(
            "points rule not scored: none of its columns "
            f"{sorted(config.baselines.points_rule)} is in the data"
        )
    else:
        baselines["points_rule"] = rule.describe()
    lap("baselines")

    say("training LightGBM")
    trained = train_lightgbm(
        X_tr, y_tr, X_ca, y_ca, spec=spec, config=config.lightgbm, seed=config.seed
    )
    notes.extend(trained.notes)
    lap("train")

    say("calibrating")
    m_ca = np.asarray(trained.booster.predict(X_ca, raw_score=True), dtype="float64")
    m_te = np.asarray(trained.booster.predict(X_te, raw_score=True), dtype="float64")
    calibrator, p_te = _calibrated(m_ca, m_te, y_ca, config=config)
    scored = {"model": (m_te, p_te)}
    _, lr_p = _calibrated(lr_ca, lr_te, y_ca, config=config)
    scored["logistic"] = (lr_te, lr_p)
    if rule is not None:
        pts = rule.score(frame)
        _, pts_p = _calibrated(pts[ca], pts[te], y_ca, config=config)
        scored["points_rule"] = (pts[te], pts_p)
    lap("calibrate")

    say("evaluating on the test year")
    evaluation = evaluate_models(
        y_te,
        scored,
        config=config.evaluation,
        gate_metric=config.gates.metric,
        seed=config.seed,
        tiebreak=id_tiebreak(frame[spec.id].to_numpy()[te]),
    )
    notes.extend(evaluation.notes)
    lap("evaluate")

    say("fairness audit")
    p_ca = calibrator.transform(m_ca)
    audit, audit_note = _run_audit(
        frame.iloc[te].reset_index(drop=True),
        spec=spec,
        config=config,
        y_test=y_te,
        p_test=p_te,
        m_test=m_te,
        calibration=(frame.iloc[ca].reset_index(drop=True), y_ca, p_ca),
    )
    if audit_note:
        notes.append(audit_note)
    lap("audit")

    gates = check_gates(
        evaluation.beats_baselines,
        gates=config.gates,
        metric=evaluation.gate_metric,
        audit=audit if audit_note is None else None,
        audit_unavailable=audit_note,
        require_audit=True,
    )

    say("saving the model bundle")
    commit = git_commit()
    metadata = {
        "data_digest": digest,
        "data_schema": {"rows": schema["rows"], "columns": len(schema["columns"])},
        "git_commit": commit,
        "split": split.description,
        "max_depth": trained.chosen.max_depth,
        "best_iteration": trained.chosen.best_iteration,
        "calibration": calibrator.method,
        "training_rows": len(tr),
        "gates": gates.to_dict(),
        "metrics": {
            k: v for k, v in evaluation.summary().items() if k.startswith("model.")
        },
        "verdict": evaluation.verdict,
    }
    bundle = make_bundle(
        trained.booster,
        spec=spec,
        config=config,
        calibrator=calibrator,
        X_train=X_tr,
        metadata=metadata,
        input_dtypes=input_dtypes(frame, spec=spec),
    )
    result = ExperimentResult(
        spec=spec,
        config=config,
        split=split,
        trained=trained,
        calibrator=calibrator,
        evaluation=evaluation,
        gates=gates,
        bundle=bundle,
        baselines=baselines,
        data_digest=digest,
        audit=audit,
        audit_note=audit_note,
        timings=timings,
        notes=notes,
    )
    result.fairness, result.fairness_html = outputs.fairness_outputs(result)
    result.git_commit = commit
    say("explaining the test year (global SHAP views)")
    result.explain_plots = outputs.explain_plots(result, frame.iloc[te])
    lap("explain")

    say("saving the model bundle and the run's files")
    plots = outputs.plots(result)
    # MLflow gets the same files as --out: without it, they are staged and dropped
    staging: tempfile.TemporaryDirectory[str] | None = None
    run_dir: Path | None = None
    if out_dir is not None:
        result.out_dir = run_dir = Path(out_dir)
    elif tracking:
        staging = tempfile.TemporaryDirectory(prefix="cmerisk-run-")
        run_dir = Path(staging.name)
    try:
        if run_dir is not None:
            result.bundle_path = save_bundle(bundle, run_dir / "model")
            outputs.write_outputs(result, plots, out=run_dir, schema=schema)
        lap("save")
        if tracking and run_dir is not None:
            say("tracking in MLflow")
            from cmerisk.tracking import log_files, log_run

            result.tracked = log_run(
                outputs.run_record(result, plots, schema=schema), config=config.tracking
            )
            notes.extend(result.tracked.notes)
            # the card names the registered version, so it follows the run's record
            card = write_model_card(run_dir, tracked=result.tracked)
            log_files(result.tracked, {path.name: path for path in card})
            lap("track")
        elif run_dir is not None:
            write_model_card(run_dir)
    finally:
        if staging is not None:
            staging.cleanup()
            result.bundle_path = None
    return result


def build_cme_frame(
    data_dir: str | Path,
    *,
    config: ExperimentConfig,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, DatasetSpec]:
    """The CME training frame from an LA's raw tables, and its spec.

    Loads and validates the tables (rejected records are set aside and listed
    in ``frame.attrs["load_findings"]``, never silently dropped), picks the
    as-of dates (``config.dataset``: census days
    whose label window ends within the data, none in a school year before the
    first attendance record, see :func:`cmerisk.dataset.as_of_dates_for`), and
    stacks point-in-time features and labels for each.

    Raises
    ------
    DataError
        The tables fail validation, or cover too few labelled school years.
    """
    from cmerisk.data.load import load_tables
    from cmerisk.dataset import as_of_dates_for, make_dataset
    from cmerisk.features import cme_spec

    with tempfile.TemporaryDirectory(prefix="cmerisk-load-") as work:
        loaded = load_tables(Path(data_dir), errors="raise", work_dir=Path(work))
        tables = loaded.tables
        as_of_dates: list[date] = as_of_dates_for(
            tables,
            terms=config.dataset.as_of_terms,
            horizon_days=config.dataset.horizon_days,
            first_school_year=config.dataset.first_school_year,
            labelled_only=True,
        )
        if not as_of_dates:
            raise DataError(
                f"{data_dir}: no as-of date has a complete "
                f"{config.dataset.horizon_days}-day "
                "label window within the data"
            )
        frame = make_dataset(
            tables,
            as_of_dates=as_of_dates,
            horizon_days=config.dataset.horizon_days,
            progress=progress,
        )
    report = loaded.report
    # what validation set aside or warned about (ids redacted), for the caller to show
    frame.attrs["load_findings"] = [f.message for f in report.reject_findings] + [
        f.message for f in report.warnings
    ]
    spec = cme_spec(available=frame.columns)
    return frame, spec


__all__ = ["ExperimentResult", "build_cme_frame", "check_frame", "run_experiment"]
