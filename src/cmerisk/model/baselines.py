"""The honest comparisons a model must beat, scored on the same split.

- **Logistic regression** on the same features: median imputation (with
  missing-value indicators) and scaling for numeric features, one-hot
  encoding for categorical ones, then an L2-penalised logistic regression.
- **A points rule** of the kind LAs already use: each listed column adds its
  points when its value is above zero (persistent absence 2, SEN 1, CIN 2,
  Year 6 1, a recent school move 1, ...), missing counts as zero. Many pupils
  tie on points; rankings break ties deterministically (by the id as text,
  see :func:`cmerisk.model.metrics.id_tiebreak`), never by row order.

Both return raw scores; like the model, they are calibrated on the
calibration slice before probabilities are compared.

Examples
--------
>>> import pandas as pd
>>> frame = pd.DataFrame({"persistent": [1, 0, 1, None],
...                       "sen": [True, False, True, True]})
>>> points = {"persistent": 2.0, "sen": 1.0, "cin": 2.0}
>>> rule = PointsRule(points, columns=frame.columns)
>>> rule.score(frame).tolist(), rule.missing
([3.0, 0.0, 3.0, 1.0], ['cin'])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from cmerisk.errors import DataError
from cmerisk.spec import DatasetSpec

MISSING_LEVEL = "(missing)"


@dataclass(frozen=True)
class PointsRule:
    """A transparent additive rule: ``points[column]`` for every column whose value > 0.

    ``columns`` are those available; rule columns not among them are listed in
    ``missing`` and score nothing.
    """

    points: Mapping[str, float]
    columns: Iterable[str] = ()
    missing: list[str] = field(init=False)

    def __post_init__(self) -> None:
        have = set(self.columns)
        object.__setattr__(self, "missing", [c for c in self.points if c not in have])

    @property
    def used(self) -> dict[str, float]:
        return {c: float(p) for c, p in self.points.items() if c not in self.missing}

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        total = np.zeros(len(frame), dtype="float64")
        for column, points in self.used.items():
            values = frame[column].astype("float64").fillna(0).to_numpy()
            total += points * (values > 0)
        return total

    def describe(self) -> str:
        parts = [f"{c} {p:g}" for c, p in self.used.items()]
        text = "points rule: " + " + ".join(parts) + " (a column counts when > 0)"
        if self.missing:
            text += f"; not in the data, so unused: {', '.join(self.missing)}"
        return text


def points_rule(
    frame: pd.DataFrame, *, points: Mapping[str, float]
) -> PointsRule | None:
    """The points rule over the columns ``frame`` has (None when it has none)."""
    rule = PointsRule(points, columns=frame.columns)
    if not rule.used:
        return None
    for column in rule.used:
        values = frame[column]
        if not (
            pd.api.types.is_bool_dtype(values.dtype)
            or pd.api.types.is_numeric_dtype(values.dtype)
        ):
            raise DataError(
                f"feature table, column {column!r} (used by the points rule) is not "
                f"numeric "
                f"or boolean; e.g. {values.dropna().iloc[0]!r}"
                if values.notna().any()
                else f"feature table, column {column!r} (points rule) holds no values"
            )
    return rule


def _logistic_input(X: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Categoricals as plain text (missing as its own level); numerics unchanged."""
    out = X.copy()
    for name in spec.categorical_features:
        out[name] = (
            X[name].astype(object).where(X[name].notna(), MISSING_LEVEL).astype(str)
        )
    return out


def fit_logistic(
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    *,
    spec: DatasetSpec,
    c: float = 1.0,
    seed: int = 0,
) -> Pipeline:
    """Logistic regression on the model's feature matrix (impute, scale, one-hot)."""
    numeric = [n for n in spec.feature_names if n not in spec.categorical_features]
    categorical = spec.categorical_features
    prep = ColumnTransformer(
        [
            (
                "numeric",
                Pipeline(
                    [
                        (
                            "impute",
                            SimpleImputer(
                                strategy="median",
                                add_indicator=True,
                                keep_empty_features=True,
                            ),
                        ),
                        ("scale", StandardScaler()),
                    ]
                ),
                numeric,
            ),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
        ],
        remainder="drop",
    )
    pipeline = Pipeline(
        [
            ("prepare", prep),
            ("logistic", LogisticRegression(C=c, max_iter=2000, random_state=seed)),
        ]
    )
    pipeline.fit(_logistic_input(X_train, spec), np.asarray(y_train, dtype="int64"))
    return pipeline


def logistic_scores(
    pipeline: Pipeline, X: pd.DataFrame, *, spec: DatasetSpec
) -> np.ndarray:
    """Raw log-odds of the fitted logistic regression."""
    return np.asarray(
        pipeline.decision_function(_logistic_input(X, spec)), dtype="float64"
    )
