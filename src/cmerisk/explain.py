"""Exact TreeSHAP explanations of a LightGBM model, turned into reasons.

The only module that imports shap. Four ways to compute the same numbers:

``method="fast"`` (default)
    LightGBM's own TreeSHAP, run per tree once for each distinct pattern of
    split decisions and shared by every row with that pattern
    (:mod:`cmerisk.explain_fast`): the same values, several times faster on
    pupil data.
``method="native"``
    LightGBM's ``booster.predict(X, pred_contrib=True)``: exact
    path-dependent TreeSHAP in C++, over all cores. ``shap.TreeExplainer``
    itself calls exactly this for a LightGBM model.
``method="shap"``
    ``shap.TreeExplainer(booster).shap_values(X)``, the reference API.
``method="shap_trees"``
    shap's *own* TreeSHAP implementation run on the model's dumped trees: an
    independent check of the numbers (numeric splits only; LightGBM's missing
    value rules are applied to the inputs first).

Whichever path runs, additivity is checked on every row: base value plus the
sum of contributions equals the booster's raw margin (log-odds) within 1e-6,
else :class:`~cmerisk.errors.ModelError`. Contributions are then summed into
the spec's groups and turned into the top reasons
(:mod:`cmerisk.explain_reasons` says how, and
:mod:`cmerisk.explain_wording` how they are worded).

Examples
--------
>>> import lightgbm as lgb, numpy as np, pandas as pd
>>> from cmerisk.spec import DatasetSpec, FeatureSpec
>>> rng = np.random.default_rng(0)
>>> frame = pd.DataFrame({"pupil_id": [f"p{i}" for i in range(400)],
...                       "absence": rng.uniform(0, 0.6, 400),
...                       "moves": rng.integers(0, 3, 400)})
>>> y = (frame["absence"] > 0.4).astype(int)
>>> booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 4,
...                      "num_threads": 1},
...                     lgb.Dataset(frame[["absence", "moves"]], y), num_boost_round=5)
>>> spec = DatasetSpec(id="pupil_id", target="y", features=[
...     FeatureSpec(name="absence", group="attendance", kind="rate",
...                 reason="missed {value:.0%} of sessions this year"),
...     FeatureSpec(name="moves", group="mobility", kind="count",
...                 reason="{value:.0f} school moves")])
>>> ex = explain_frame(frame, booster=booster, spec=spec,
...                    reference=reference_from_frame(frame, spec))
>>> ex.contributions.additivity_error() < 1e-6
True
>>> worst = int(np.argmax(ex.margin))
>>> ex.pupil(worst).reasons[0].text
'missed 49% of sessions this year (LA median 33%)'
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from cmerisk.errors import ModelError
from cmerisk.explain_fast import fast_contributions, lightgbm_inputs
from cmerisk.explain_inputs import check_frame, check_model_matches, feature_matrix
from cmerisk.explain_reasons import choose_reasons, reason_eligible, render_reasons
from cmerisk.explain_result import (
    Contributions,
    Explanations,
    Reason,
    ReasonsBy,
    as_object_array,
)
from cmerisk.explain_wording import (
    check_templates,
    reference_from_frame,
    template_fields,
)
from cmerisk.spec import DatasetSpec

if TYPE_CHECKING:
    import lightgbm as lgb
    import shap

    from cmerisk.model.bundle import ModelBundle

__all__ = [
    "Contributions",
    "Explanations",
    "Method",
    "Reason",
    "explain_bundle",
    "explain_frame",
    "feature_matrix",
    "reference_from_frame",
    "shap_explanation",
    "tree_contributions",
]

Method = Literal["fast", "native", "shap", "shap_trees"]

#: Smallest contribution (log-odds) spoken as a reason: about a 5% rise in the odds.
MIN_CONTRIBUTION = 0.05
#: Largest allowed |base + sum(contributions) - margin| (log-odds).
ADDITIVITY_TOLERANCE = 1e-6
_SHAP_LGBM_NOTICE = "LightGBM binary classifier with TreeExplainer shap values output"


def _shap() -> Any:
    """Import shap, hushing the matplotlib deprecation notice its import raises
    (shap's own business, nothing a cmerisk user can act on)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message="The set_(bad|over|under) function",
            category=PendingDeprecationWarning,
        )
        import shap
    return shap


def _native(
    A: np.ndarray, booster: lgb.Booster, chunk_size: int
) -> tuple[np.ndarray, float]:
    parts = [
        booster.predict(A[s : s + chunk_size], pred_contrib=True)
        for s in range(0, len(A), chunk_size)
    ]
    phi = np.vstack(parts)
    return phi[:, :-1], float(phi[0, -1])


def _shap_reference(X: pd.DataFrame, booster: lgb.Booster) -> tuple[np.ndarray, float]:
    shap = _shap()
    explainer = shap.TreeExplainer(booster)
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=_SHAP_LGBM_NOTICE, category=UserWarning
        )
        values = explainer.shap_values(X)
    return np.asarray(values, dtype=float), float(np.ravel(explainer.expected_value)[0])


def _split_nodes(tree: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    out, stack = [], [tree]
    while stack:
        node = stack.pop()
        if "split_index" in node:
            out.append(node)
            stack.extend((node["left_child"], node["right_child"]))
    return out


def _shap_trees(X: pd.DataFrame, booster: lgb.Booster) -> tuple[np.ndarray, float]:
    """shap's own C++ TreeSHAP on the dumped trees (independent of LightGBM's)."""
    shap = _shap()
    trees = booster.dump_model()["tree_info"]
    missing: dict[int, str] = {}
    for t in trees:
        for node in _split_nodes(t["tree_structure"]):
            if node["decision_type"] != "<=":
                raise ModelError(
                    "method='shap_trees' handles numeric splits only; this model has "
                    f"categorical splits (feature {X.columns[node['split_feature']]!r})"
                )
            missing[node["split_feature"]] = node["missing_type"]
    A = X.to_numpy(dtype=float, na_value=np.nan).copy()
    # shap sends NaN down the default branch; make the inputs say what LightGBM does.
    for j, kind in missing.items():
        if kind == "None":  # LightGBM reads NaN as 0 and compares
            A[:, j] = np.nan_to_num(A[:, j], nan=0.0)
        elif kind == "Zero":  # zero (and NaN) take the default branch
            A[np.abs(A[:, j]) <= 1e-35, j] = np.nan
    explainer = shap.TreeExplainer(
        {"trees": trees, "tree_output": "raw_value", "objective": "binary_crossentropy"}
    )
    values = explainer.shap_values(A, check_additivity=False)
    return np.asarray(values, dtype=float), float(np.ravel(explainer.expected_value)[0])


def tree_contributions(
    X: pd.DataFrame,
    *,
    booster: lgb.Booster,
    method: Method = "fast",
    chunk_size: int = 50_000,
    threads: int = 1,
) -> Contributions:
    """Exact TreeSHAP contributions (log-odds) of ``booster`` on ``X``.

    Parameters
    ----------
    X
        Model inputs in the booster's feature order (see :func:`feature_matrix`).
    booster
        A single-output LightGBM booster.
    method
        ``"fast"`` (LightGBM per tree and decision pattern), ``"native"``
        (LightGBM), ``"shap"`` (shap.TreeExplainer) or ``"shap_trees"``
        (shap's own algorithm on the dumped trees).
    chunk_size
        Rows per pass, bounding the memory of LightGBM's input copy.
    threads
        Trees explained at once by the fast path.

    Raises
    ------
    ModelError
        If base + sum of contributions misses the raw margin by more than
        :data:`ADDITIVITY_TOLERANCE` on any row.
    """
    names = list(X.columns)
    if len(X) == 0:
        return Contributions(np.zeros((0, len(names))), 0.0, np.zeros(0), names)
    A = lightgbm_inputs(X, booster)
    if method == "fast":
        values, base = fast_contributions(
            A, booster=booster, threads=threads, chunk_size=chunk_size
        )
    elif method == "native":
        values, base = _native(A, booster, chunk_size)
    elif method == "shap":
        values, base = _shap_reference(X, booster)
    elif method == "shap_trees":
        values, base = _shap_trees(X, booster)
    else:  # pragma: no cover - Literal guards callers
        raise ValueError(f"unknown method {method!r}")
    margin = np.asarray(booster.predict(A, raw_score=True), dtype=float)
    out = Contributions(values=values, base=base, margin=margin, feature_names=names)
    err = out.additivity_error()
    if not err <= ADDITIVITY_TOLERANCE:
        raise ModelError(
            f"TreeSHAP ({method}) is not additive on this model: base + "
            f"contributions misses the raw margin by up to {err:.2e} "
            f"(tolerance {ADDITIVITY_TOLERANCE})"
        )
    return out


def explain_frame(
    frame: pd.DataFrame,
    *,
    booster: lgb.Booster,
    spec: DatasetSpec,
    reference: Mapping[str, Any] | None = None,
    top: int = 3,
    by: ReasonsBy = "group",
    method: Method = "fast",
    X: pd.DataFrame | None = None,
    probability: Sequence[float] | np.ndarray | None = None,
    band: Sequence[str] | np.ndarray | None = None,
    comparison_label: str = "LA median",
    min_contribution: float = MIN_CONTRIBUTION,
) -> Explanations:
    """Explain every row of a feature frame: contributions, groups, reasons.

    Parameters
    ----------
    frame
        One row per pupil with the spec's id and feature columns (others are
        kept out of reasons unless a template quotes them).
    booster, spec
        The model and the column roles it was trained with.
    reference
        Per-feature points of comparison (a bundle's ``reference``, or
        :func:`~cmerisk.explain_reasons.reference_from_frame` of training data).
    top
        Reasons per pupil (fewer when fewer contributions raise the risk).
    by
        ``"group"``: rank groups, speak each through its main feature;
        ``"feature"``: rank single features.
    method
        Which TreeSHAP path computes the contributions (same numbers).
    X
        The model inputs if already built (e.g. by a bundle), else built here.
    probability, band
        Calibrated probabilities and list bands to carry to the reviewer pages.
    comparison_label
        How the reference is introduced in reason text.
    min_contribution
        Smallest contribution (log-odds) that can be a reason.
    """
    if top < 0:
        raise ValueError(f"top must be >= 0, got {top}")
    frame = frame.copy(deep=False)  # no deep copies of metadata on column access
    frame.attrs = {}
    check_frame(frame, spec)
    check_model_matches(booster, spec)
    check_templates(
        spec,
        reference=reference,
        columns=list(frame.columns),
        comparison_label=comparison_label,
    )
    if X is None:
        X = feature_matrix(frame, booster=booster, spec=spec)
    contrib = tree_contributions(X, booster=booster, method=method)
    groups = spec.groups()
    group_names = list(groups)
    G = np.zeros((len(spec.feature_names), len(group_names)))
    for gi, g in enumerate(group_names):
        for f in groups[g]:
            G[spec.feature_names.index(f), gi] = 1.0
    group_values = contrib.values @ G
    data = frame[spec.feature_names].reset_index(drop=True)
    ids = as_object_array(frame[spec.id])
    quoted = sorted(
        set().union(*(template_fields(f.reason) for f in spec.features))
        - {"value", "reference"}
    )
    chosen = choose_reasons(
        contrib.values,
        reason_eligible(data, spec),
        spec=spec,
        group_names=group_names,
        group_values=group_values,
        top=top,
        by=by,
        min_contribution=min_contribution,
    )
    reasons = render_reasons(
        chosen,
        ids=ids,
        data=data,
        rows=frame[quoted].reset_index(drop=True),
        spec=spec,
        reference=reference,
        comparison_label=comparison_label,
    )
    return Explanations(
        ids=ids,
        data=data,
        contributions=contrib,
        group_names=group_names,
        group_values=group_values,
        reasons=reasons,
        spec=spec,
        top=top,
        by=by,
        method=method,
        probability=None
        if probability is None
        else np.asarray(probability, dtype=float),
        band=None if band is None else np.asarray(band, dtype=object),
    )


def explain_bundle(
    frame: pd.DataFrame,
    bundle: ModelBundle,
    *,
    top: int = 3,
    by: ReasonsBy = "group",
    method: Method = "fast",
    band: Sequence[str] | np.ndarray | None = None,
    min_contribution: float = MIN_CONTRIBUTION,
) -> Explanations:
    """:func:`explain_frame` with a model bundle's booster, spec, reference,
    input casting and calibrated probabilities."""
    X = bundle.feature_matrix(frame)
    return explain_frame(
        frame,
        booster=bundle.booster,
        spec=bundle.spec,
        reference=bundle.reference,
        top=top,
        by=by,
        method=method,
        X=X,
        probability=bundle.predict_proba(frame) if len(frame) else np.zeros(0),
        band=band,
        min_contribution=min_contribution,
    )


def shap_explanation(
    explanations: Explanations, *, level: Literal["feature", "group"] = "feature"
) -> shap.Explanation:
    """A ``shap.Explanation`` for shap's own plots in notebooks.

    Feature level carries the feature values (categories as codes); group
    level carries none.
    """
    shap = _shap()
    n = len(explanations)
    if level == "group":
        return shap.Explanation(
            values=explanations.group_values,
            base_values=np.full(n, explanations.base),
            feature_names=explanations.group_names,
        )
    data = explanations.data.copy()
    for c in data.columns:
        if not pd.api.types.is_numeric_dtype(data[c]):
            data[c] = pd.Categorical(data[c]).codes.astype(float)
            data.loc[data[c] < 0, c] = np.nan
    return shap.Explanation(
        values=explanations.contributions.values,
        base_values=np.full(n, explanations.base),
        data=data.to_numpy(dtype=float, na_value=np.nan),
        feature_names=explanations.feature_names,
    )
