"""Fairness audit at the operating point: who the list finds, misses and falsely flags.

The only module importing fairlearn. :func:`audit` takes any pupil-level frame
with a :class:`~cmerisk.spec.DatasetSpec` (the CME features or an LA's own
extract), the outcome, the calibrated score and the team's capacity ``k``:

1. **Operating point.** The list scoring would make: the ``k`` highest
   calibrated scores are flagged, ties broken by the model's raw margin when
   given (``y_margin``; isotonic calibration makes many ties), then by the id
   column (as text, ascending), else by row order
   (:func:`cmerisk.model.metrics.rank_order`, the one ranking rule), so the
   audited list is the deployed list.
2. **Groups.** Each column of ``FairnessConfig.groups`` present in the frame,
   and each intersection, split into readable groups
   (:mod:`cmerisk.fairness_groups`; missing values form ``Unknown``).
   Absent columns are skipped and listed in ``audit.skipped``.
3. **Metrics.** fairlearn's :class:`~fairlearn.metrics.MetricFrame` gives each
   group's counts and rates: missed-children rate (FNR), recall, false-positive
   rate, precision, selection rate, base rate, AUC and calibration error (ECE
   of the score over quantile bins of the whole year). Intervals come from a
   stratified, seeded, vectorised bootstrap (:mod:`cmerisk.fairness_bootstrap`).
4. **Disparities.** Ratio and difference of each group's missed-children
   rate, false-positive rate and precision against a reference group (the
   largest known group unless ``FairnessConfig.reference`` names one), judged
   against the parity band; flagged only when the whole interval lies outside
   the band (:mod:`cmerisk.fairness_audit`).
5. **Suppression.** Cells on fewer than ``min_cell`` pupils (or positives,
   flagged, negatives for rates over them) are ``c`` in every output, with
   complementary suppression (:mod:`cmerisk.fairness_suppress`).
6. **Mitigation as analysis.** :func:`mitigation_analysis` shows what a
   group-aware allocation of the same capacity, and fairlearn's
   ThresholdOptimizer, would change; neither is deployed by default (they
   need group membership, for some groups a protected characteristic, at
   scoring time).

Examples
--------
>>> import numpy as np, pandas as pd
>>> from cmerisk.config import FairnessConfig
>>> from cmerisk.spec import DatasetSpec, FeatureSpec, SensitiveSpec
>>> rng = np.random.default_rng(1)
>>> frame = pd.DataFrame({"pupil_id": [f"p{i}" for i in range(2000)],
...                       "fsm": rng.random(2000) < 0.3})
>>> y = (rng.random(2000) < 0.05).astype(int)
>>> score = np.clip(0.05 + 0.3 * y * rng.random(2000), 0, 1)
>>> spec = DatasetSpec(id="pupil_id", target="y", features=[FeatureSpec(
...     name="absence", group="attendance", reason="absence")],
...     sensitive=[SensitiveSpec(name="fsm", label="FSM")])
>>> a = audit(frame, spec=spec, config=FairnessConfig(groups=["fsm", "sex"],
...     intersections=[], n_bootstrap=50), y_true=y, y_score=score, capacity=100)
>>> a.skipped
["'sex' is not in the data: not audited"]
>>> sorted(a.metrics["group"].unique())
['False', 'True', 'all']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame
from fairlearn.postprocessing import ThresholdOptimizer
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin

from cmerisk.config import FairnessConfig
from cmerisk.errors import DataError
from cmerisk.fairness_audit import FairnessAudit
from cmerisk.fairness_bootstrap import (
    COUNTS,
    RATES,
    Cells,
    bin_edges,
    compress,
    point_metrics,
    reduce_cells,
)
from cmerisk.fairness_groups import Grouping, make_groupings
from cmerisk.fairness_inputs import (
    are_probabilities,
    check_labels,
    check_scores,
    ranking,
    top_k,
)
from cmerisk.fairness_mitigation import equal_recall_allocation, strategy_rows
from cmerisk.fairness_tables import (
    DISPARITY_COLUMNS,
    Scored,
    group_cells,
    grouping_tables,
    method_notes,
)
from cmerisk.spec import DatasetSpec

__all__ = [
    "STRATEGIES",
    "CalibrationData",
    "FairnessAudit",
    "audit",
    "mitigation_analysis",
]

#: The allocations :func:`mitigation_analysis` compares.
STRATEGIES: dict[str, str] = {
    "top_k": "Deployed: the capacity's highest scores, blind to groups",
    "equal_recall": "Same capacity, shared so each group's expected recall is equal",
    "threshold_optimizer": "fairlearn ThresholdOptimizer, equal true-positive rates "
    "(no capacity limit)",
}


@dataclass(frozen=True)
class CalibrationData:
    """A labelled, scored slice other than the audited one (fits ThresholdOptimizer)."""

    frame: pd.DataFrame
    y_true: ArrayLike
    y_score: ArrayLike


# ---------------------------------------------------------------- group metrics
_METRIC_NAMES = (*COUNTS, *RATES)


def _metric_table(
    grouping: Grouping, cells: list[Cells], *, probabilities: bool
) -> pd.DataFrame:
    """Each group's counts and rates from fairlearn's MetricFrame, in display order.

    MetricFrame is fed each group's reduced cells
    (:func:`~cmerisk.fairness_bootstrap.reduce_cells`): the few weighted rows
    that determine every metric exactly, instead of every pupil.
    """
    reduced = [reduce_cells(c) for c in cells]
    code = np.repeat(np.arange(len(reduced)), [len(r.weight) for r in reduced])

    def column(name: str) -> np.ndarray:
        return np.concatenate([getattr(r, name) for r in reduced])

    def group_metrics(
        y_true: Any, y_pred: Any, *, rank: Any, bin: Any, weight: Any, expected: Any
    ) -> np.ndarray:
        m = point_metrics(
            compress(
                y=y_true,
                flag=y_pred,
                score=rank,
                bins=bin,
                weight=weight,
                expected=expected,
            )
        )
        if not probabilities:
            m["calibration_error"] = np.nan
        return np.array([m[k] for k in _METRIC_NAMES])

    parts = np.array(grouping.parts, dtype=object)
    names = [f"group_{j}" for j in range(len(grouping.columns))]
    mf = MetricFrame(
        metrics=group_metrics,
        y_true=column("y"),
        y_pred=column("flag"),
        sensitive_features=pd.DataFrame(
            {nm: parts[code, j] for j, nm in enumerate(names)}
        ),
        sample_params={
            "rank": column("score"),
            "bin": column("bin"),
            "weight": column("weight"),
            "expected": column("expected"),
        },
    )
    by_group = mf.by_group
    if len(names) == 1:
        by_group = by_group.reindex(pd.Index(grouping.keys, name=names[0]))
    else:
        by_group = by_group.reindex(
            pd.MultiIndex.from_tuples(grouping.parts, names=names)
        )
    return pd.DataFrame(np.vstack(by_group.to_numpy()), columns=list(_METRIC_NAMES))


# -------------------------------------------------------------------- the audit
def _overall(n: int) -> Grouping:
    return Grouping(
        name="overall",
        columns=("overall",),
        title="All pupils",
        parts=(("all",),),
        labels=("All pupils",),
        codes=np.zeros(n, dtype=np.int64),
    )


def audit(
    frame: pd.DataFrame,
    *,
    spec: DatasetSpec,
    config: FairnessConfig,
    y_true: ArrayLike,
    y_score: ArrayLike,
    capacity: int,
    y_margin: ArrayLike | None = None,
    seed: int = 0,
    calibration: CalibrationData | None = None,
    mitigation: bool = True,
) -> FairnessAudit:
    """Audit error rates and calibration by group when the top ``capacity`` are flagged.

    Parameters
    ----------
    frame
        One row per pupil, holding the audit columns (``config.groups``).
    spec
        Column roles; its ``sensitive`` entries make groups readable and its
        ``protected`` list marks protected characteristics.
    config
        Groups, intersections, reference groups, ``min_cell``, parity band,
        bootstrap size, interval level, calibration bins.
    y_true, y_score
        Outcome (0/1) and calibrated score, row-aligned with ``frame``.
    capacity
        How many pupils the team can contact: the top ``capacity`` are flagged.
    y_margin
        The model's raw score (log-odds margin) behind ``y_score``: it breaks
        ties in the calibrated score exactly as scoring does, so the audited
        list is the deployed one. Without it, ties go by id.
    seed
        Seeds the bootstrap (and ThresholdOptimizer's randomised predictions).
    calibration
        Another labelled slice to fit ThresholdOptimizer on (mitigation
        analysis); without it, it is fitted on the audited data, as the
        report says.
    mitigation
        Whether to run :func:`mitigation_analysis`.

    Returns
    -------
    FairnessAudit
        Published tables only: suppressed cells hold no value.
    """
    if capacity < 1:
        raise DataError(f"capacity must be at least 1, got {capacity}")
    n = len(frame)
    if n == 0:
        raise DataError("no pupils to audit: the frame is empty")
    y = check_labels(y_true, n=n, what=f"target {spec.target!r}")
    score = check_scores(y_score, n=n, what="score")
    margin = None if y_margin is None else check_scores(y_margin, n=n, what="margin")
    ids = frame[spec.id].to_numpy() if spec.id in frame.columns else None
    flags = top_k(ranking(score, ids=ids, margin=margin), capacity=capacity)
    probabilities = are_probabilities(score)
    edges = bin_edges(score, n_bins=config.calibration_bins if probabilities else 1)
    scored = Scored(
        y=y, flags=flags, score=score, bins=np.searchsorted(edges, score, side="left")
    )
    groupings, skipped = make_groupings(
        frame,
        columns=config.groups,
        intersections=config.intersections,
        sensitive=spec.sensitive,
        protected=spec.protected,
    )
    notes: list[str] = []
    infos, rows, disparities = [], [], []
    for g in [_overall(n), *groupings]:
        cells = group_cells(g, scored)
        table = _metric_table(g, cells, probabilities=probabilities)
        info, g_rows, g_disp = grouping_tables(
            g, table, cells, config=config, seed=seed, notes=notes
        )
        rows.extend(g_rows)
        if g.name != "overall":
            infos.append(info)
            disparities.extend(g_disp)
    for r in rows:
        if r["grouping"] == "overall":
            r["where"] = "all pupils"
    mit = None
    if mitigation and groupings:
        mit = mitigation_analysis(
            frame,
            spec=spec,
            config=config,
            y_true=y,
            y_score=score,
            capacity=capacity,
            y_margin=margin,
            seed=seed,
            calibration=calibration,
        )
    settings = {
        "capacity": int(capacity),
        "pupils": int(n),
        "flagged": int(flags.sum()),
        "min_cell": config.min_cell,
        "parity_band": list(config.parity_band),
        "ci_level": config.ci_level,
        "n_bootstrap": config.n_bootstrap,
        "seed": int(seed),
        "calibration_bins": config.calibration_bins,
        "scores_are_probabilities": probabilities,
        "tie_break": _tie_break(spec.id if ids is not None else None, margin=margin),
        "target": spec.target,
    }
    return FairnessAudit(
        settings=settings,
        groupings=infos,
        metrics=pd.DataFrame(rows),
        disparities=pd.DataFrame(disparities, columns=list(DISPARITY_COLUMNS)),
        mitigation=mit,
        mitigation_notes=[] if mit is None else list(mit.attrs.get("notes", [])),
        skipped=skipped,
        notes=method_notes(
            config,
            capacity=capacity,
            n=n,
            probabilities=probabilities,
            tie_break=_tie_break(
                "pupil id" if ids is not None else None, margin=margin, quote=False
            ),
        )
        + notes,
    )


def _tie_break(
    id_name: str | None, *, margin: np.ndarray | None, quote: bool = True
) -> str:
    """How ties in the score were broken, in words (settings and report notes)."""
    parts = ["model margin"] if margin is not None else []
    if id_name is not None:
        parts.append(f"id column {id_name!r} as text" if quote else id_name)
    return ", then ".join(parts) or "row order"


# ------------------------------------------------------------------ mitigation
class _FixedScores(ClassifierMixin, BaseEstimator):
    """A 'prefit' classifier whose probability is the frame's first column."""

    classes_ = np.array([0, 1])

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def fit(self, X: Any, y: Any) -> _FixedScores:
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        s = np.asarray(X, dtype=np.float64)[:, 0]
        return np.column_stack([1 - s, s])

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


#: ThresholdOptimizer scans every distinct score; scores are floored to this
#: many quantile levels of the data it is fitted on (about 0.1% of pupils each).
_OPTIMIZER_LEVELS = 1000


def _threshold_optimizer_flags(
    keys: np.ndarray,
    score: np.ndarray,
    *,
    fit: tuple[np.ndarray, np.ndarray, np.ndarray],
    seed: int,
) -> np.ndarray:
    """ThresholdOptimizer's flags for the audited pupils, fitted on ``fit``."""
    fit_keys, fit_y, fit_score = fit
    levels = np.unique(np.quantile(fit_score, np.linspace(0, 1, _OPTIMIZER_LEVELS + 1)))

    def floor(s: np.ndarray) -> pd.DataFrame:
        at = np.clip(np.searchsorted(levels, s, side="right") - 1, 0, len(levels) - 1)
        return pd.DataFrame({"score": levels[at]})

    optimizer = ThresholdOptimizer(
        estimator=_FixedScores(),
        constraints="true_positive_rate_parity",
        objective="balanced_accuracy_score",
        prefit=True,
        predict_method="predict_proba",
    )
    optimizer.fit(floor(fit_score), fit_y, sensitive_features=fit_keys)
    flags = optimizer.predict(floor(score), sensitive_features=keys, random_state=seed)
    return np.asarray(flags).astype(bool)


def _keys(g: Grouping) -> np.ndarray:
    return np.array(g.keys, dtype=object)[g.codes]


def mitigation_analysis(
    frame: pd.DataFrame,
    *,
    spec: DatasetSpec,
    config: FairnessConfig,
    y_true: ArrayLike,
    y_score: ArrayLike,
    capacity: int,
    y_margin: ArrayLike | None = None,
    seed: int = 0,
    calibration: CalibrationData | None = None,
) -> pd.DataFrame:
    """What other allocations would change in flags and recall, group by group.

    For each audited column (not intersections) the strategies of
    :data:`STRATEGIES`: ``top_k`` (the deployed, group-blind list, ordered as
    :func:`audit` orders it, ``y_margin`` breaking ties);
    ``equal_recall`` (the same capacity shared so that expected recall, from
    the calibrated scores, is as equal as it can be across the column's groups,
    :func:`cmerisk.fairness_mitigation.equal_recall_allocation`; needs scores
    in [0, 1]); ``threshold_optimizer`` (fairlearn's ThresholdOptimizer with
    true-positive-rate parity and balanced accuracy as objective, prefit on the
    score, fitted on ``calibration`` when given, else on the audited data; it
    has no capacity, so its list can be far longer).

    Returns
    -------
    DataFrame
        Columns strategy, grouping, group (``all`` for the whole list), label,
        protected, metric (``flagged``, ``missed_rate``, ``recall``), value,
        suppressed (the audit's rules). ``attrs["notes"]`` says what was fitted
        on what and what was skipped.
    """
    n = len(frame)
    y = check_labels(y_true, n=n, what=f"target {spec.target!r}")
    score = check_scores(y_score, n=n, what="score")
    margin = None if y_margin is None else check_scores(y_margin, n=n, what="margin")
    ids = frame[spec.id].to_numpy() if spec.id in frame.columns else None
    order = ranking(score, ids=ids, margin=margin)
    deployed = top_k(order, capacity=capacity)
    groupings, _ = make_groupings(
        frame,
        columns=config.groups,
        intersections=[],
        sensitive=spec.sensitive,
        protected=spec.protected,
    )
    notes: list[str] = []
    if calibration is not None:
        cal = calibration.frame
        fit_y = check_labels(calibration.y_true, n=len(cal), what="calibration target")
        fit_score = check_scores(
            calibration.y_score, n=len(cal), what="calibration score"
        )
        fit_groupings, _ = make_groupings(
            cal,
            columns=[g.name for g in groupings],
            intersections=[],
            sensitive=spec.sensitive,
        )
        fit_keys = {g.name: _keys(g) for g in fit_groupings}
        notes.append(
            f"ThresholdOptimizer was fitted on the calibration slice ({len(cal):,} "
            "pupils) and applied to the audited pupils."
        )
    else:
        fit_y, fit_score = y, score
        fit_keys = {g.name: _keys(g) for g in groupings}
        notes.append(
            "ThresholdOptimizer was fitted on the audited pupils themselves (no "
            "calibration slice was given): its results here are optimistic, "
            "because it has seen these outcomes."
        )
    probabilities = are_probabilities(score)
    if not probabilities:
        notes.append(
            "Scores are not probabilities: the equal-recall allocation was not run."
        )
    rows: list[dict[str, Any]] = []
    for g in groupings:
        strategies = {"top_k": deployed}
        if probabilities:
            strategies["equal_recall"] = equal_recall_allocation(
                score, g.codes, order=order, capacity=capacity
            )
        keys = fit_keys.get(g.name)
        unseen = sorted(set(g.keys) - set(() if keys is None else keys))
        if keys is None or unseen:
            notes.append(
                f"ThresholdOptimizer skipped for {g.name!r}: group(s) {unseen} "
                "are not in the data it would be fitted on."
            )
        else:
            try:
                strategies["threshold_optimizer"] = _threshold_optimizer_flags(
                    _keys(g), score, fit=(keys, fit_y, fit_score), seed=seed
                )
            except ValueError as e:
                notes.append(
                    f"ThresholdOptimizer could not be fitted for {g.name!r}: {e}"
                )
        for name, flags in strategies.items():
            rows.extend(strategy_rows(name, flags, g, y=y, min_cell=config.min_cell))
    out = pd.DataFrame(
        rows,
        columns=[
            "strategy",
            "grouping",
            "group",
            "label",
            "protected",
            "metric",
            "value",
            "suppressed",
        ],
    )
    out.attrs["notes"] = notes
    return out
