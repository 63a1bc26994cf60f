"""Drift of the scored population against the training data, added up chunk by chunk.

The population stability index compares the share of pupils in each bin of a
feature now with the share in the same bin in the training data::

    PSI = sum_i (actual_i - expected_i) * ln(actual_i / expected_i)

The bins are the training data's, stored in the model bundle's reference
(:mod:`cmerisk.model.reference`: numeric features cut at training deciles plus a
missing bin; categorical ones by level plus "unseen" and missing bins). Scoring
never re-bins: :class:`DriftCounter` adds up bin counts over chunks of pupils in
memory that does not depend on how many pupils there are, and gives the same
PSI as :func:`cmerisk.model.reference.psi` on the whole population at once (a
test checks it).

Examples
--------
>>> ref = {"features": {"absence": {"kind": "numeric",
...     "psi": {"edges": [0.1], "proportions": [0.5, 0.5], "missing": 0.0}}}}
>>> counter = DriftCounter(ref)
>>> counter.add(pd.DataFrame({"absence": [0.0, 0.05]}))
>>> counter.add(pd.DataFrame({"absence": [0.2, np.nan]}))
>>> counter.counts["absence"].tolist()
[2, 1, 1]
>>> round(psi_from_shares([0.5, 0.4, 0.1], [0.5, 0.25, 0.25]), 4)
0.2079
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from cmerisk.model.reference import PSI_FLOOR

#: Why a feature drifted (``cause`` in :meth:`DriftCounter.table`).
VALUES = "values"  # its known values are distributed differently
MORE_MISSING = "more_missing"  # it is missing for more pupils now than in training
LESS_MISSING = "less_missing"  # it was missing for more pupils in training


def psi_from_shares(expected: ArrayLike, actual: ArrayLike) -> float:
    """PSI between two share vectors over the same bins.

    Shares are floored at :data:`~cmerisk.model.reference.PSI_FLOOR`; bins empty
    on both sides are left out.

    >>> round(psi_from_shares([0.5, 0.5], [0.25, 0.75]), 4)
    0.2747
    """
    e_raw = np.asarray(expected, dtype="float64")
    a_raw = np.asarray(actual, dtype="float64")
    e = np.maximum(e_raw, PSI_FLOOR)
    a = np.maximum(a_raw, PSI_FLOOR)
    keep = (e_raw > 0) | (a_raw > 0)
    return float(np.sum(((a - e) * np.log(a / e))[keep]))


def expected_shares(reference_feature: Mapping[str, Any]) -> np.ndarray:
    """Training shares per bin, in the order :func:`bin_counts` counts."""
    bins = reference_feature["psi"]
    if reference_feature["kind"] == "categorical":
        return np.append(
            np.asarray(bins["proportions"], dtype="float64"), [0.0, bins["missing"]]
        )
    return np.append(np.asarray(bins["proportions"], dtype="float64"), bins["missing"])


def bin_counts(reference_feature: Mapping[str, Any], values: pd.Series) -> np.ndarray:
    """Count ``values`` into one feature's training bins (missing bin last).

    Numeric: bins ``(-inf, e0], (e0, e1], ..., (e_last, inf)`` then missing.
    Categorical: the training levels, then unseen levels, then missing.
    """
    bins = reference_feature["psi"]
    if reference_feature["kind"] == "categorical":
        present = values.notna().to_numpy()
        levels = [str(v) for v in bins["levels"]]
        dtype = values.dtype
        if (
            isinstance(dtype, pd.CategoricalDtype)
            and [str(c) for c in dtype.categories] == levels
        ):
            codes = np.asarray(values.cat.codes)  # the model matrix: training levels
        else:
            text = values.astype(object).where(values.notna(), None)
            codes = pd.Index(levels, dtype=object).get_indexer(
                [None if v is None else str(v) for v in text]
            )
        known = np.bincount(codes[codes >= 0], minlength=len(bins["levels"]))
        unseen = int(((codes < 0) & present).sum())
        return np.append(known, [unseen, int((~present).sum())])
    x = values.to_numpy(dtype="float64", na_value=np.nan)
    edges = np.asarray(bins["edges"], dtype="float64")
    # a value's bin is the number of edges below it (a few comparisons over the
    # whole column: about 3x faster than a binary search per value); NaN is
    # below no edge, so it lands in the first bin and then moves to its own
    index = np.zeros(len(x), dtype=np.intp)
    for edge in edges:
        index += x > edge
    counts = np.bincount(index, minlength=len(edges) + 2)
    missing = int(np.count_nonzero(np.isnan(x)))
    counts[0] -= missing
    counts[len(edges) + 1] = missing
    return counts


def known_psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI over the bins of known values only (missing bin last, left out).

    Shares are taken among the known values on each side, so a change in how
    often a feature is missing does not count: what is left is whether the
    values themselves moved. NaN when either side has no known value.

    >>> round(known_psi(np.array([0.25, 0.25, 0.5]), np.array([0.5, 0.5, 0.0])), 4)
    0.0
    """
    e, a = expected[:-1], actual[:-1]
    if e.sum() <= 0 or a.sum() <= 0:
        return float("nan")
    return psi_from_shares(e / e.sum(), a / a.sum())


def drift_cause(
    *,
    psi: float,
    value_psi: float,
    missing_then: float,
    missing_now: float,
    warning: float,
) -> str | None:
    """Why a feature's PSI passed ``warning`` (None when it did not).

    ``values`` when its known values moved (their own PSI passes the warning);
    otherwise the change is in how often it is missing: ``more_missing`` now
    than in training (check the extract) or ``less_missing`` (the training
    years' data did not cover it as often). A ``value_psi`` of NaN (no pupil
    has a value now: nothing to compare) is a missing-share change too.

    >>> drift_cause(psi=4.6, value_psi=0.01, missing_then=0.5, missing_now=0.0,
    ...             warning=0.25)
    'less_missing'
    >>> drift_cause(psi=9.2, value_psi=float("nan"), missing_then=0.0,
    ...             missing_now=1.0, warning=0.25)
    'more_missing'
    >>> drift_cause(psi=0.1, value_psi=0.1, missing_then=0.0, missing_now=0.0,
    ...             warning=0.25) is None
    True
    """
    if not psi > warning:
        return None
    if value_psi > warning:  # NaN is not: no value now, so the missing share moved
        return VALUES
    return MORE_MISSING if missing_now > missing_then else LESS_MISSING


def was_always_missing(reference_feature: Mapping[str, Any]) -> bool:
    """Whether a feature was missing in every training row.

    >>> was_always_missing({"missing": 1.0}), was_always_missing({"missing": 0.3})
    (True, False)
    """
    return float(reference_feature.get("missing", 0.0)) >= 1.0


@dataclass
class DriftCounter:
    """Bin counts of each feature over the chunks scored so far.

    Parameters
    ----------
    reference
        The bundle's reference (``{"features": {name: {...}}}``).
    """

    reference: Mapping[str, Any]
    counts: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, matrix: pd.DataFrame, *, frame: pd.DataFrame | None = None) -> None:
        """Count one chunk of the model's input matrix (other columns ignored).

        ``frame`` is the feature table the matrix was made from (same rows, same
        order). The matrix codes a categorical level unseen in training as
        missing; given ``frame``, such a value counts in the "unseen" bin
        instead, so drift says its values moved rather than that it is missing.
        """
        for name, ref in self.reference["features"].items():
            if name not in matrix.columns or "psi" not in ref:
                continue
            c = bin_counts(ref, matrix[name])
            if frame is not None and ref["kind"] == "categorical":
                unseen = int(
                    np.count_nonzero(
                        matrix[name].isna().to_numpy() & frame[name].notna().to_numpy()
                    )
                )
                c[-2] += unseen
                c[-1] -= unseen
            previous = self.counts.get(name)
            self.counts[name] = c if previous is None else previous + c

    def table(self, *, warning: float) -> pd.DataFrame:
        """PSI per feature, largest first.

        Columns: ``feature, psi, pupils, drifted, trained, value_psi,
        missing_then, missing_now, cause``. ``value_psi`` is the PSI of the
        known values alone (:func:`known_psi`); ``missing_then`` / ``_now`` the
        share of training rows / pupils now without a value; ``cause`` says
        why a drifted feature drifted (:func:`drift_cause`).

        ``trained`` is False for a feature missing in every training row (the
        data did not reach back far enough): the model never split on it, so
        its values now cannot move a score. Such a feature is reported, not
        counted as drifted; the summary warns about it once.
        """
        rows = []
        for name, counts in self.counts.items():
            ref = self.reference["features"][name]
            trained = not was_always_missing(ref)
            n = int(counts.sum())
            expected = expected_shares(ref)
            actual = counts / n if n else np.full(len(counts), np.nan)
            value = psi_from_shares(expected, actual) if n else float("nan")
            value_psi = known_psi(expected, actual) if n else float("nan")
            missing_then, missing_now = float(expected[-1]), float(actual[-1])
            cause = (
                drift_cause(
                    psi=value,
                    value_psi=value_psi,
                    missing_then=missing_then,
                    missing_now=missing_now,
                    warning=warning,
                )
                if trained
                else None
            )
            rows.append(
                {
                    "feature": name,
                    "psi": value,
                    "pupils": n,
                    "drifted": cause is not None,
                    "trained": trained,
                    "value_psi": value_psi,
                    "missing_then": missing_then,
                    "missing_now": missing_now,
                    "cause": cause,
                }
            )
        out = pd.DataFrame(
            rows,
            columns=[
                "feature",
                "psi",
                "pupils",
                "drifted",
                "trained",
                "value_psi",
                "missing_then",
                "missing_now",
                "cause",
            ],
        )
        # None, not NaN, where nothing drifted (pandas would infer a string column)
        out["cause"] = pd.Series([r["cause"] for r in rows], dtype=object)
        return out.sort_values("psi", ascending=False, kind="stable").reset_index(
            drop=True
        )
