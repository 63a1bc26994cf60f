"""Check a training frame against its spec, once, at the boundary.

Examples
--------
>>> import pandas as pd
>>> from cmerisk.spec import DatasetSpec, FeatureSpec
>>> spec = DatasetSpec(id="id", target="y", positive="yes",
...                    features=[FeatureSpec(name="x", group="other", reason="x")])
>>> check_frame(pd.DataFrame({"id": [1, 2], "x": [0.1, 0.2], "y": ["no", "yes"]}),
...             spec=spec).tolist()
[0, 1]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmerisk.errors import DataError
from cmerisk.model.matrix import missing_columns
from cmerisk.spec import DatasetSpec


def _outcome(frame: pd.DataFrame, spec: DatasetSpec) -> np.ndarray:
    target = frame[spec.target]
    if target.isna().any():
        raise DataError(
            f"feature table, target column {spec.target!r}: {int(target.isna().sum())} "
            "row(s) have no outcome; train on labelled rows only"
        )
    positive = target == spec.positive
    if not positive.any():
        example = target.iloc[0] if len(target) else None
        raise DataError(
            f"feature table, target column {spec.target!r}: no row equals the positive "
            f"value {spec.positive!r} (e.g. {example!r}); check 'positive' in the spec"
        )
    values = pd.unique(target)
    if len(values) > 2:
        raise DataError(
            f"feature table, target column {spec.target!r}: {len(values)} distinct "
            "values "
            f"(e.g. {list(values[:4])!r}); a binary outcome is needed"
        )
    return positive.to_numpy(dtype="int64")


def check_frame(frame: pd.DataFrame, *, spec: DatasetSpec) -> np.ndarray:
    """Validate a training frame against its spec; return the 0/1 outcome.

    Raises
    ------
    DataError
        Missing columns, an empty frame, a missing or non-binary outcome, or
        duplicate (id, time) rows.
    """
    absent = missing_columns(frame, spec.required_columns())
    if absent:
        raise DataError(f"feature table lacks column(s) the spec names: {absent}")
    if frame.empty:
        raise DataError("feature table has no rows")
    keys = [spec.id] + ([spec.time] if spec.time else [])
    dupes = frame.duplicated(subset=keys)
    if spec.time and dupes.any():
        raise DataError(
            f"feature table: {int(dupes.sum())} duplicate ({', '.join(keys)}) row(s); "
            "each pupil needs one row per as-of date"
        )
    return _outcome(frame, spec)
