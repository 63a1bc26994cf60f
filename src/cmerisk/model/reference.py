"""The training distribution of each feature, kept with the model.

Explanations quote a point of comparison ("missed 34% of sessions (LA median
5%)"): that is ``reference["features"][name]["reference"]``, the training
median of a numeric feature or the most common level of a categorical one.
Scoring checks drift with the population stability index (PSI): numeric
features are cut at training deciles (plus a bin for missing values),
categorical ones by level.

Everything here is plain JSON-ready data: no pupil rows, only summaries of
at least the whole training slice.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from cmerisk.spec import DatasetSpec, FeatureSpec
>>> spec = DatasetSpec(id="id", target="y", features=[
...     FeatureSpec(name="absence", group="attendance", reason="absence")])
>>> X = pd.DataFrame({"absence": np.linspace(0, 1, 101)})
>>> ref = build_reference(X, spec=spec)
>>> absence = ref["features"]["absence"]
>>> absence["reference"], absence["quantiles"]["0.9"]
(0.5, 0.9)
>>> round(psi(ref["features"]["absence"], X["absence"]), 6)
0.0
>>> psi(ref["features"]["absence"], X["absence"] + 0.5) > 0.25
True
>>> synthetic_rows(ref, spec=spec)["absence"].tolist()
[0.1, 0.25, 0.5, 0.75, 0.9]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cmerisk.spec import DatasetSpec

#: Quantiles kept for each numeric feature (explanations, synthetic examples).
QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
#: Cut points of the PSI bins, as training quantiles.
PSI_QUANTILES: tuple[float, ...] = tuple(q / 10 for q in range(1, 10))
#: Floor on a bin's share, so an empty bin does not make the PSI infinite.
PSI_FLOOR = 1e-4


def _numeric_reference(values: pd.Series) -> dict[str, Any]:
    x = values.to_numpy(dtype="float64")
    present = x[~np.isnan(x)]
    missing = float(np.isnan(x).mean()) if len(x) else 0.0
    if present.size == 0:
        return {
            "kind": "numeric",
            "reference": None,
            "median": None,
            "mean": None,
            "min": None,
            "max": None,
            "missing": missing,
            "quantiles": {},
            # one (empty) value bin and the missing bin: shares add up to 1
            "psi": {"edges": [], "proportions": [0.0], "missing": missing},
        }
    quantiles = np.quantile(present, QUANTILES)
    edges = np.unique(np.quantile(present, PSI_QUANTILES))
    counts = np.bincount(
        np.searchsorted(edges, present, side="left"), minlength=len(edges) + 1
    )
    median = float(np.median(present))
    return {
        "kind": "numeric",
        "reference": median,
        "median": median,
        "mean": float(present.mean()),
        "min": float(present.min()),
        "max": float(present.max()),
        "missing": missing,
        "quantiles": {
            str(q): float(v) for q, v in zip(QUANTILES, quantiles, strict=True)
        },
        "psi": {
            "edges": [float(e) for e in edges],
            "proportions": [float(c) / len(x) for c in counts],
            "missing": missing,
        },
    }


def _categorical_reference(values: pd.Series) -> dict[str, Any]:
    cat = pd.Categorical(values)
    levels = [str(c) for c in cat.categories]
    counts = np.bincount(cat.codes[cat.codes >= 0], minlength=len(levels))
    n = len(cat)
    missing = float((cat.codes < 0).mean()) if n else 0.0
    mode = levels[int(np.argmax(counts))] if counts.sum() else None
    shares = (
        {lvl: float(c) / n for lvl, c in zip(levels, counts, strict=True)} if n else {}
    )
    return {
        "kind": "categorical",
        "reference": mode,
        "median": None,
        "categories": levels,
        "missing": missing,
        "proportions": shares,
        "psi": {
            "levels": levels,
            "proportions": [shares.get(lvl, 0.0) for lvl in levels],
            "missing": missing,
        },
    }


def build_reference(X: pd.DataFrame, *, spec: DatasetSpec) -> dict[str, Any]:
    """Summaries of each feature of a training matrix (from ``feature_matrix``)."""
    features = {}
    for feature in spec.features:
        column = X[feature.name]
        if feature.categorical:
            features[feature.name] = _categorical_reference(column)
        else:
            features[feature.name] = _numeric_reference(column)
    return {"reference_version": 1, "rows": len(X), "features": features}


def _shares(
    reference_feature: dict[str, Any], values: pd.Series
) -> tuple[np.ndarray, np.ndarray]:
    """(expected, actual) shares over the same bins, the missing bin last."""
    bins = reference_feature["psi"]
    n = len(values)
    if reference_feature["kind"] == "categorical":
        # matched as text, like scoring's chunked counts (cmerisk.scoring.drift);
        # a Categorical over values outside its levels is deprecated in pandas
        text = values.astype(object).where(values.notna(), None)
        codes = pd.Index([str(v) for v in bins["levels"]], dtype=object).get_indexer(
            [None if v is None else str(v) for v in text]
        )
        unseen = int(((codes < 0) & values.notna().to_numpy()).sum())
        counts = np.bincount(codes[codes >= 0], minlength=len(bins["levels"]))
        actual = np.append(counts, [unseen, n - counts.sum() - unseen]) / max(n, 1)
        expected = np.append(bins["proportions"], [0.0, bins["missing"]])
    else:
        x = values.to_numpy(dtype="float64")
        present = x[~np.isnan(x)]
        edges = np.asarray(bins["edges"], dtype="float64")
        counts = np.bincount(
            np.searchsorted(edges, present, side="left"), minlength=len(edges) + 1
        )
        actual = np.append(counts, n - present.size) / max(n, 1)
        expected = np.append(bins["proportions"], bins["missing"])
    return np.asarray(expected, dtype="float64"), np.asarray(actual, dtype="float64")


def psi(reference_feature: dict[str, Any], values: pd.Series) -> float:
    """Population stability index of ``values`` against one feature's training bins.

    ``sum((actual - expected) * ln(actual / expected))`` over the bins, each
    share floored at :data:`PSI_FLOOR`. Common reading: below 0.1 stable,
    0.1-0.25 some shift, above 0.25 a shift worth investigating.
    """
    expected, actual = _shares(reference_feature, values)
    e = np.maximum(expected, PSI_FLOOR)
    a = np.maximum(actual, PSI_FLOOR)
    keep = (expected > 0) | (actual > 0)
    return float(np.sum(((a - e) * np.log(a / e))[keep]))


def population_stability(reference: dict[str, Any], X: pd.DataFrame) -> pd.DataFrame:
    """PSI of every feature of a matrix against the reference, largest shift first."""
    rows = [
        {"feature": name, "psi": psi(ref, X[name])}
        for name, ref in reference["features"].items()
        if name in X.columns
    ]
    table = pd.DataFrame(rows, columns=["feature", "psi"])
    return table.sort_values("psi", ascending=False, kind="stable").reset_index(
        drop=True
    )


#: Training quantiles the synthetic example rows are made from.
EXAMPLE_QUANTILES: tuple[str, ...] = ("0.1", "0.25", "0.5", "0.75", "0.9")


def synthetic_rows(reference: dict[str, Any], *, spec: DatasetSpec) -> pd.DataFrame:
    """Made-up input rows for documentation and model signatures: no real pupil.

    Row ``i`` takes every numeric feature at the ``i``-th of the training
    quantiles 10%, 25%, 50%, 75%, 90% and cycles through the categorical
    levels, so no row is a real record (values are summaries of at least the
    whole training slice). Features recorded with an integer or boolean
    ``input_dtype`` keep that type (rounded quantiles; above 0.5 is True).
    """
    columns: dict[str, Any] = {}
    n = len(EXAMPLE_QUANTILES)
    for feature in spec.features:
        ref = reference["features"][feature.name]
        if feature.categorical:
            levels = ref.get("categories") or [None]
            columns[feature.name] = [levels[i % len(levels)] for i in range(n)]
            continue
        quantiles = ref.get("quantiles", {})
        values = pd.Series(
            [
                float(quantiles[q]) if q in quantiles else np.nan
                for q in EXAMPLE_QUANTILES
            ]
        )
        kind = _dtype_kind(ref.get("input_dtype"))
        if kind == "bool" and values.notna().all():
            columns[feature.name] = values > 0.5
        elif kind == "int" and values.notna().all():
            columns[feature.name] = values.round().astype("int64")
        else:
            columns[feature.name] = values
    return pd.DataFrame(columns)


def _dtype_kind(dtype: str | None) -> str:
    """ "bool", "int" or "float" for a recorded pandas dtype name."""
    if dtype is None:
        return "float"
    name = dtype.lower()
    if name in ("bool", "boolean"):
        return "bool"
    if name.startswith(("int", "uint")):
        return "int"
    return "float"


def input_dtypes(frame: pd.DataFrame, *, spec: DatasetSpec) -> dict[str, str]:
    """The dtype name of each feature column as supplied (kept for input examples)."""
    return {name: str(frame[name].dtype) for name in spec.feature_names}
