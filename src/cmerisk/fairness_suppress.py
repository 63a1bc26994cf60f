"""Small-number suppression: which published cells must show ``c`` (the DfE convention).

Applied once, when the audit's published tables are built, so no output (JSON,
HTML, plots, MLflow) can hold a suppressed value. With ``m`` =
``FairnessConfig.min_cell``:

1. **Primary.** A group of fewer than ``m`` pupils: every cell is ``c``.
   A count (pupils, children who went missing, pupils flagged) below ``m``
   is ``c``. A rate over children who went missing (missed-children rate,
   recall) needs ``m`` of them; precision needs ``m`` flagged pupils; the
   false-positive rate needs ``m`` pupils who did not go missing; AUC and
   calibration error need ``m`` of both.
2. **Complementary.** Within a set of groups that add up to a published total
   (all groups of a column; for an intersection, the cells sharing one
   column's value), a count suppressed in exactly one group could be got back
   by subtraction, so the same count is also suppressed in the smallest other
   group; repeated until nothing changes.
3. **Consequential.** A rate is ``c`` whenever a suppressed count could be
   recomputed from it and the published cells: pupils ``c`` -> selection rate,
   base rate and false-positive rate; went missing ``c`` -> base rate,
   precision and false-positive rate (recall x went missing = precision x
   flagged); flagged ``c`` -> selection rate, precision and false-positive rate.

A disparity is ``c`` when either of the two rates it compares is.

Examples
--------
>>> import numpy as np
>>> counts = {"pupils": np.array([500, 9, 60]), "positives": np.array([40, 2, 12]),
...           "flagged": np.array([30, 1, 9])}
>>> c = suppression(counts, min_cell=10, slices=[[0, 1, 2]])
>>> [k for k in ("pupils", "missed_rate", "precision") if c[k][1]]   # the 9-pupil group
['pupils', 'missed_rate', 'precision']
>>> bool(c["pupils"][2]), bool(c["missed_rate"][2]), bool(c["precision"][2])
(True, False, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from cmerisk.fairness_bootstrap import COUNTS, RATES

#: Rates that would give back each count (rule 3).
_CONSEQUENTIAL: dict[str, tuple[str, ...]] = {
    "pupils": ("selection_rate", "base_rate", "false_positive_rate"),
    "positives": ("base_rate", "precision", "false_positive_rate"),
    "flagged": ("selection_rate", "precision", "false_positive_rate"),
}


def _complementary(
    values: np.ndarray, hidden: np.ndarray, slices: Sequence[Sequence[int]]
) -> np.ndarray:
    hidden = hidden.copy()
    changed = True
    while changed:
        changed = False
        for members in slices:
            idx = np.asarray(members)
            if len(idx) < 2 or hidden[idx].sum() != 1:
                continue
            open_ = idx[~hidden[idx]]
            # the smallest other cell (first in display order on ties)
            pick = open_[np.argmin(values[open_])]  # first on ties
            hidden[pick] = True
            changed = True
    return hidden


def suppression(
    counts: Mapping[str, np.ndarray], *, min_cell: int, slices: Sequence[Sequence[int]]
) -> dict[str, np.ndarray]:
    """Which cells of each group are ``c``: a boolean array per count and rate."""
    n = np.asarray(counts["pupils"], dtype=np.float64)
    pos = np.asarray(counts["positives"], dtype=np.float64)
    flagged = np.asarray(counts["flagged"], dtype=np.float64)
    neg = n - pos
    tiny = n < min_cell
    hidden = {
        "pupils": tiny.copy(),
        "positives": tiny | (pos < min_cell),
        "flagged": tiny | (flagged < min_cell),
    }
    values = {"pupils": n, "positives": pos, "flagged": flagged}
    for key in COUNTS:
        hidden[key] = _complementary(values[key], hidden[key], slices)
    few_pos = tiny | (pos < min_cell)
    few_neg = tiny | (neg < min_cell)
    out = dict(hidden)
    out["missed_rate"] = few_pos.copy()
    out["recall"] = few_pos.copy()
    out["false_positive_rate"] = few_neg.copy()
    out["precision"] = tiny | (flagged < min_cell)
    out["selection_rate"] = tiny.copy()
    out["base_rate"] = tiny.copy()
    out["auc"] = few_pos | few_neg
    out["calibration_error"] = few_pos | few_neg
    for key, rates in _CONSEQUENTIAL.items():
        for rate in rates:
            out[rate] = out[rate] | hidden[key]
    assert set(out) == set(COUNTS) | set(RATES)
    return out


def flagged_suppression(
    flagged: np.ndarray,
    *,
    tiny: np.ndarray,
    min_cell: int,
    slices: Sequence[Sequence[int]],
) -> np.ndarray:
    """Which per-group flagged counts are ``c`` (rules 1-2), e.g. for other allocations.

    Examples
    --------
    >>> flagged_suppression(np.array([150, 45, 5]), tiny=np.zeros(3, bool), min_cell=10,
    ...                     slices=[[0, 1, 2]]).tolist()
    [False, True, True]
    """
    f = np.asarray(flagged, dtype=np.float64)
    return _complementary(f, tiny | (f < min_cell), slices)
