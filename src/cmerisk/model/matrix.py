"""The model's input table: spec columns in spec order, with consistent types.

Training and scoring both pass through :func:`feature_matrix`, so a model sees
the same columns, in the same order, with categoricals coded against the same
levels (those seen in training; an unseen level becomes missing, which
LightGBM treats as "not recorded"). Numeric and boolean features become
``float64`` with ``NaN`` for missing.

Examples
--------
>>> import pandas as pd
>>> from cmerisk.spec import DatasetSpec, FeatureSpec
>>> spec = DatasetSpec(id="id", target="y", features=[
...     FeatureSpec(name="absence", group="attendance", reason="absence"),
...     FeatureSpec(name="phase", group="context", reason="phase", categorical=True)])
>>> frame = pd.DataFrame({"phase": ["primary", "secondary", None],
...                       "absence": [0.1, None, 1]})
>>> levels = category_levels(frame, spec=spec)
>>> levels
{'phase': ['primary', 'secondary']}
>>> X = feature_matrix(frame, spec=spec, categories=levels)
>>> list(X.columns), X["absence"].dtype.name, X["phase"].cat.codes.tolist()
(['absence', 'phase'], 'float64', [0, 1, -1])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cmerisk.errors import DataError, ModelError
from cmerisk.spec import DatasetSpec


def _category_text(values: pd.Series) -> pd.Series:
    """Category values as text; whole floats print as integers (``2.0`` -> ``2``)."""
    out = values.astype(object)
    present = out.notna()
    if pd.api.types.is_float_dtype(values.dtype):
        whole = present & (values == np.floor(values))
        out[whole] = values[whole].astype("int64").astype(str)
        out[present & ~whole] = values[present & ~whole].astype(str)
    else:
        out[present] = out[present].map(str)
    return out


def category_levels(frame: pd.DataFrame, *, spec: DatasetSpec) -> dict[str, list[str]]:
    """The sorted levels of each categorical feature, as text (missing excluded)."""
    levels = {}
    for name in spec.categorical_features:
        text = _category_text(frame[name])
        levels[name] = sorted(str(v) for v in text.dropna().unique())
    return levels


def missing_columns(frame: pd.DataFrame, names: Sequence[str]) -> list[str]:
    present = set(frame.columns)
    return [n for n in names if n not in present]


def feature_matrix(
    frame: pd.DataFrame,
    *,
    spec: DatasetSpec,
    categories: Mapping[str, Sequence[str]],
) -> pd.DataFrame:
    """Select and type the spec's features of ``frame`` for the model.

    Parameters
    ----------
    frame
        Any table holding at least the spec's feature columns.
    spec
        Names the features (in model order) and which are categorical.
    categories
        Levels of each categorical feature seen in training
        (:func:`category_levels`).

    Raises
    ------
    ModelError
        A feature the model needs is not in ``frame``.
    DataError
        A numeric feature holds a value that is not a number.
    """
    absent = missing_columns(frame, spec.feature_names)
    if absent:
        raise ModelError(
            f"the feature table lacks {len(absent)} column(s) the model needs: "
            f"{absent[:10]}{' ...' if len(absent) > 10 else ''}"
        )
    columns: dict[str, pd.Series | pd.Categorical] = {}
    for feature in spec.features:
        values = frame[feature.name]
        if feature.categorical:
            levels = pd.Index(list(categories.get(feature.name, [])), dtype=object)
            codes = levels.get_indexer(_category_text(values))  # unseen/missing -> -1
            columns[feature.name] = pd.Categorical.from_codes(codes, categories=levels)
        else:
            columns[feature.name] = _as_float(values, name=feature.name)
    return pd.DataFrame(columns, index=frame.index)


def _as_float(values: pd.Series, *, name: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(
        values.dtype
    ):
        return values.astype("float64")
    converted = pd.to_numeric(values, errors="coerce")
    bad = converted.isna() & values.notna()
    if bad.any():
        example = values[bad].iloc[0]
        raise DataError(
            f"feature table, column {name!r}: {int(bad.sum())} value(s) are not "
            "numbers, "
            f"e.g. {example!r}"
        )
    return converted.astype("float64")
