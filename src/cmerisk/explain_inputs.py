"""Checks at the explanation boundary, and the model inputs of a plain booster.

Everything :func:`cmerisk.explain.explain_frame` refuses is refused here,
once, with a message naming the column or feature: a frame without the
model's columns or with duplicate or missing ids, a booster whose inputs are
not the spec's features (or include a protected characteristic), a
multi-output model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from cmerisk.errors import DataError, ModelError
from cmerisk.spec import DEFAULT_PROTECTED, DatasetSpec

if TYPE_CHECKING:
    import lightgbm as lgb


def check_model_matches(booster: lgb.Booster, spec: DatasetSpec) -> None:
    """Refuse a booster whose inputs are not the spec's features, or that
    takes a protected characteristic as an input."""
    names = list(booster.feature_name())
    protected = sorted(set(names) & (set(spec.protected) | set(DEFAULT_PROTECTED)))
    if protected:
        raise ModelError(
            f"the model takes protected characteristic(s) {protected} as input; "
            "cmerisk never explains (or uses) such a model"
        )
    if names != spec.feature_names:
        raise ModelError(
            f"the model's features {names[:5]}{'...' if len(names) > 5 else ''} do not "
            f"match the spec's {spec.feature_names[:5]}"
            f"{'...' if len(spec.feature_names) > 5 else ''} "
            "(names and order must agree)"
        )
    if booster.num_model_per_iteration() != 1:
        raise ModelError("only single-output (binary) models can be explained")


def feature_matrix(
    frame: pd.DataFrame, *, booster: lgb.Booster, spec: DatasetSpec
) -> pd.DataFrame:
    """The model's inputs from a feature frame: spec column order, categoricals
    cast to the categories the booster was trained with.

    A model bundle has its own ``feature_matrix``; this one serves a plain
    booster (its categories come from ``booster.pandas_categorical``).
    """
    names = spec.feature_names
    X = frame[names].copy()
    trained = booster.pandas_categorical or []
    cats = [f for f in spec.features if f.categorical]
    if trained and len(trained) != len(cats):
        raise ModelError(
            f"the model was trained with {len(trained)} categorical column(s) but the "
            f"spec declares {len(cats)}: {[f.name for f in cats]}"
        )
    for f, categories in zip(cats, trained, strict=False):
        X[f.name] = pd.Categorical(X[f.name], categories=categories)
    for f in spec.features:
        col = X[f.name]
        if isinstance(col.dtype, pd.CategoricalDtype) or pd.api.types.is_numeric_dtype(
            col
        ):
            continue
        if pd.api.types.is_bool_dtype(col):
            continue
        converted = pd.to_numeric(col, errors="coerce")
        bad = col[converted.isna() & col.notna()]
        if len(bad):
            raise DataError(
                f"feature frame, column {f.name!r}: expected numbers, got e.g. "
                f"{bad.iloc[0]!r} ({len(bad)} value(s))"
            )
        X[f.name] = converted.astype(float)
    return X


def check_frame(frame: pd.DataFrame, spec: DatasetSpec) -> None:
    need = [spec.id, *spec.feature_names]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise DataError(
            f"feature frame lacks column(s) {missing} that the model needs "
            f"(it has {len(frame.columns)} columns)"
        )
    ids = frame[spec.id]
    if ids.isna().any():
        raise DataError(
            f"feature frame, column {spec.id!r}: {int(ids.isna().sum())} missing id(s)"
        )
    dupes = ids[ids.duplicated()]
    if len(dupes):
        hint = f" (keep one {spec.time!r} per pupil)" if spec.time else ""
        raise DataError(
            f"feature frame, column {spec.id!r}: {dupes.nunique()} id(s) appear "
            f"more than once, e.g. {str(dupes.iloc[0])!r}; "
            f"explain one row per pupil{hint}"
        )
