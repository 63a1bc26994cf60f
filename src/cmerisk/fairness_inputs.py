"""The audit's boundary: checked outcomes and scores, and the operating point.

Outcomes must be 0/1 (or booleans) with nothing missing, scores finite
numbers, both one per row of the frame; anything else is a
:class:`~cmerisk.errors.DataError` naming the value. The operating point is
the list scoring would make (:func:`cmerisk.model.metrics.rank_order`, the one
ranking rule): the ``capacity`` highest calibrated scores, ties broken by the
model's raw margin when it is given (isotonic calibration makes many ties),
then by the id column as text (ascending), then by row order, so the audited
list is the deployed list and the same data always gives the same list.

Examples
--------
>>> order = ranking(np.array([0.2, 0.9, 0.2, 0.5]), ids=["d", "c", "b", "a"])
>>> order.tolist(), top_k(order, capacity=2).tolist()
([1, 3, 2, 0], [False, True, False, True])
>>> ranking(np.array([0.2, 0.9, 0.2, 0.5]), ids=["d", "c", "b", "a"],
...         margin=np.array([-1.0, 2.0, -1.5, 0.0])).tolist()
[1, 3, 0, 2]
>>> check_labels([0, 1, 2], n=3, what="target 'cme'")
Traceback (most recent call last):
    ...
cmerisk.errors.DataError: target 'cme': values must be 0/1, got 2
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from cmerisk.errors import DataError
from cmerisk.model.metrics import id_tiebreak, rank_order


def check_labels(y_true: ArrayLike, *, n: int, what: str) -> np.ndarray:
    """Outcomes as an int8 0/1 array of length ``n``."""
    y = pd.Series(np.asarray(y_true).ravel())
    if len(y) != n:
        raise DataError(f"{what}: {len(y)} values for {n} rows of the frame")
    missing = y.isna().to_numpy()
    if missing.any():
        raise DataError(
            f"{what}: a missing value in row {int(np.flatnonzero(missing)[0])}"
        )
    bad = ~y.isin([0, 1, True, False])
    if bad.any():
        example = y[bad].iloc[0]
        example = example.item() if hasattr(example, "item") else example
        raise DataError(f"{what}: values must be 0/1, got {example!r}")
    return y.to_numpy().astype(np.int8)


def check_scores(y_score: ArrayLike, *, n: int, what: str) -> np.ndarray:
    """Scores as a float64 array of length ``n``, all finite."""
    try:
        s = np.asarray(y_score, dtype=np.float64).ravel()
    except (TypeError, ValueError) as e:
        raise DataError(f"{what}: scores must be numbers ({e})") from None
    if len(s) != n:
        raise DataError(f"{what}: {len(s)} scores for {n} rows of the frame")
    finite = np.isfinite(s)
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        raise DataError(
            f"{what}: score {float(s[i])!r} in row {i} is not a finite number"
        )
    return s


def are_probabilities(score: np.ndarray) -> bool:
    """Whether every score lies in [0, 1] (so calibration can be judged)."""
    return bool(len(score) and score.min() >= 0 and score.max() <= 1)


def ranking(
    score: np.ndarray,
    *,
    ids: ArrayLike | None = None,
    margin: np.ndarray | None = None,
) -> np.ndarray:
    """Row positions in scoring's order: score, then ``margin`` (both descending),
    then ``ids`` as text, then row."""
    tiebreak = None if ids is None else id_tiebreak(ids)
    if margin is None:
        return rank_order(score, tiebreak=tiebreak)
    return rank_order(margin, tiebreak=tiebreak, probability=score)


def top_k(order: np.ndarray, *, capacity: int) -> np.ndarray:
    """Flags for the first ``capacity`` pupils of ``order``."""
    flags = np.zeros(len(order), dtype=bool)
    flags[order[:capacity]] = True
    return flags
