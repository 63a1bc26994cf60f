"""Train LightGBM: imbalance handled, early-stopped, monotone, as shallow as it can be.

For each of ``config.max_depth_candidates`` a model is trained with LightGBM's
native API on the training slice and early-stopped on the validation
(calibration) slice by average precision. The kept model is the SHALLOWEST
whose validation average precision is within ``tie_tolerance`` of the best:
shallower trees explain faster and more stably, and a tie is no reason to pay
for depth. Every candidate's validation AP, best iteration and actual tree
depth are recorded.

Monotone constraints come from the spec (``FeatureSpec.monotone``: +1 means a
higher value never lowers risk, e.g. more unexplained absence), overridable per
feature in ``config.monotone_overrides``; categorical features are never
constrained. Training is deterministic given ``seed`` (LightGBM's
``deterministic`` mode, fixed seeds, row-wise histograms).

Examples
--------
>>> import numpy as np, pandas as pd
>>> from cmerisk.config import LightGBMConfig
>>> from cmerisk.spec import DatasetSpec, FeatureSpec
>>> spec = DatasetSpec(id="id", target="y", features=[
...     FeatureSpec(name="absence", group="attendance", reason="a", monotone=1),
...     FeatureSpec(name="noise", group="other", reason="n")])
>>> rng = np.random.default_rng(0)
>>> X = pd.DataFrame({"absence": rng.random(3000), "noise": rng.random(3000)})
>>> y = (rng.random(3000) < 0.02 + 0.2 * X["absence"] ** 3).astype(int).to_numpy()
>>> cfg = LightGBMConfig(max_depth_candidates=[2, 4], n_estimators=50, num_threads=1)
>>> model = train_lightgbm(X[:2000], y[:2000], X[2000:], y[2000:], spec=spec,
...                        config=cfg, seed=1)
>>> [c.max_depth for c in model.candidates], model.chosen.max_depth in (2, 4)
([2, 4], True)
>>> model.params["monotone_constraints"]
[1, 0]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from cmerisk.config import LightGBMConfig
from cmerisk.spec import DatasetSpec


@dataclass(frozen=True)
class DepthCandidate:
    """One tried ``max_depth`` and how it did on the validation slice."""

    max_depth: int
    num_leaves: int
    best_iteration: int
    validation_ap: float
    tree_depth: int
    chosen: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrainedModel:
    """The kept booster (trimmed to its best iteration) and how it was chosen."""

    booster: lgb.Booster
    params: dict[str, Any]
    candidates: list[DepthCandidate]
    chosen: DepthCandidate
    scale_pos_weight: float
    notes: list[str]


def monotone_constraints(
    spec: DatasetSpec, config: LightGBMConfig
) -> tuple[list[int], list[str]]:
    """Per-feature constraints in spec order, and notes on any that were dropped."""
    notes = []
    unknown = sorted(set(config.monotone_overrides) - set(spec.feature_names))
    if unknown:
        notes.append(f"monotone_overrides name unknown features, ignored: {unknown}")
    if not config.use_monotone_constraints:
        return [0] * len(spec.features), notes
    out = []
    for feature in spec.features:
        value = int(config.monotone_overrides.get(feature.name, feature.monotone))
        if feature.categorical and value != 0:
            notes.append(
                f"{feature.name!r} is categorical: monotone constraint ignored"
            )
            value = 0
        out.append(value)
    return out, notes


def lightgbm_params(
    config: LightGBMConfig,
    *,
    max_depth: int,
    seed: int,
    scale_pos_weight: float,
    monotone: list[int],
) -> dict[str, Any]:
    """LightGBM's native parameters for one depth candidate."""
    num_leaves = (
        config.num_leaves if max_depth <= 0 else min(config.num_leaves, 2**max_depth)
    )
    params: dict[str, Any] = {
        "objective": "binary",
        "metric": "average_precision",
        "learning_rate": config.learning_rate,
        "max_depth": max_depth,
        "num_leaves": num_leaves,
        "min_data_in_leaf": config.min_child_samples,
        "bagging_fraction": config.subsample,
        "bagging_freq": 1 if config.subsample < 1 else 0,
        "feature_fraction": config.colsample_bytree,
        "lambda_l2": config.reg_lambda,
        "scale_pos_weight": scale_pos_weight,
        "deterministic": True,
        "force_row_wise": True,
        "seed": seed,
        "bagging_seed": seed + 1,
        "feature_fraction_seed": seed + 2,
        "data_random_seed": seed + 3,
        "verbose": -1,
    }
    if config.num_threads:
        params["num_threads"] = config.num_threads
    if any(monotone):
        params["monotone_constraints"] = monotone
        params["monotone_constraints_method"] = "basic"
    return params


def tree_depth(booster: lgb.Booster) -> int:
    """The depth of the deepest tree of ``booster`` (a stump has depth 0)."""

    def depth(node: dict[str, Any]) -> int:
        if "leaf_index" in node or "left_child" not in node:
            return 0
        return 1 + max(depth(node["left_child"]), depth(node["right_child"]))

    trees = booster.dump_model()["tree_info"]
    return max((depth(t["tree_structure"]) for t in trees), default=0)


def _depth_order(max_depth: int) -> float:
    return float("inf") if max_depth <= 0 else float(max_depth)


def train_lightgbm(
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_valid: pd.DataFrame,
    y_valid: np.ndarray,
    *,
    spec: DatasetSpec,
    config: LightGBMConfig,
    seed: int,
) -> TrainedModel:
    """Train one model per depth candidate and keep the shallowest that ties the best.

    Parameters
    ----------
    X_train, X_valid
        Feature matrices (:func:`~cmerisk.model.matrix.feature_matrix`), spec order.
    y_train, y_valid
        0/1 outcomes.
    spec
        Feature roles (categoricals, monotone directions).
    config
        LightGBM section of the experiment config.
    seed
        Makes training reproducible.
    """
    y_train = np.asarray(y_train, dtype="int64")
    y_valid = np.asarray(y_valid, dtype="int64")
    n_pos = int(y_train.sum())
    scale = (
        (len(y_train) - n_pos) / n_pos
        if config.class_weight == "balanced" and n_pos
        else 1.0
    )
    monotone, notes = monotone_constraints(spec, config)
    categorical = spec.categorical_features
    train_set = lgb.Dataset(
        X_train,
        label=y_train,
        categorical_feature=categorical or "auto",
        free_raw_data=False,
    )
    valid_set = lgb.Dataset(X_valid, label=y_valid, reference=train_set)

    results = []
    for max_depth in config.max_depth_candidates:
        params = lightgbm_params(
            config,
            max_depth=max_depth,
            seed=seed,
            scale_pos_weight=scale,
            monotone=monotone,
        )
        booster = lgb.train(
            params,
            train_set,
            num_boost_round=config.n_estimators,
            valid_sets=[valid_set],
            valid_names=["validation"],
            callbacks=[
                lgb.early_stopping(
                    config.early_stopping_rounds, first_metric_only=True, verbose=False
                )
            ],
        )
        best = booster.best_iteration or booster.current_iteration()
        trimmed = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
        ap = float(
            average_precision_score(y_valid, trimmed.predict(X_valid, raw_score=True))
        )
        candidate = DepthCandidate(
            max_depth=max_depth,
            num_leaves=params["num_leaves"],
            best_iteration=best,
            validation_ap=ap,
            tree_depth=tree_depth(trimmed),
        )
        results.append((candidate, trimmed, params))

    best_ap = max(c.validation_ap for c, _, _ in results)
    tied = [r for r in results if r[0].validation_ap >= best_ap - config.tie_tolerance]
    kept, booster, params = min(tied, key=lambda r: _depth_order(r[0].max_depth))
    candidates = [
        DepthCandidate(**{**c.to_dict(), "chosen": c is kept}) for c, _, _ in results
    ]
    chosen = next(c for c in candidates if c.chosen)
    if len(tied) > 1:
        notes.append(
            f"max_depth {chosen.max_depth} kept: its validation AP "
            f"{chosen.validation_ap:.4f} is within {config.tie_tolerance} of the best "
            f"({best_ap:.4f})"
        )
    return TrainedModel(
        booster=booster,
        params={**params, "num_boost_round": chosen.best_iteration},
        candidates=candidates,
        chosen=chosen,
        scale_pos_weight=scale,
        notes=notes,
    )
