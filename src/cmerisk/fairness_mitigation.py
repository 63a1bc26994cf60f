"""Group-aware allocation of a fixed capacity: the mitigation the audit compares.

The deployed list is group-blind: the ``capacity`` highest scores. The
alternative analysed here keeps the same capacity but hands out places so
that the *expected* recall of every group is as equal as it can be. Expected
recall needs no outcomes: with calibrated probabilities, a group's expected
number of children who go missing is the sum of its pupils' probabilities,
and the share of that sum on the list is its expected recall. Places are
given one at a time to the group whose expected recall is lowest (its
highest-scored pupil not yet listed), which is the max-min allocation.

It needs every pupil's group at scoring time, which is why it is analysis,
not the default (see :mod:`cmerisk.fairness`).

Examples
--------
>>> import numpy as np
>>> score = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
>>> group = np.array([0, 0, 0, 1, 1, 1])
>>> order = np.argsort(-score, kind="stable")
>>> equal_recall_allocation(score, group, order=order, capacity=2).nonzero()[0].tolist()
[0, 3]
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np

from cmerisk.fairness_groups import Grouping
from cmerisk.fairness_suppress import flagged_suppression


def equal_recall_allocation(
    score: np.ndarray, group: np.ndarray, *, order: np.ndarray, capacity: int
) -> np.ndarray:
    """Flags for ``capacity`` pupils, equalising expected recall across groups.

    ``score`` must be calibrated probabilities; ``group`` holds group codes
    0..G-1; ``order`` is the group-blind ranking (best first), which also
    orders pupils within a group and breaks ties. A group whose expected
    count is zero counts as fully found.
    """
    n_groups = int(group.max()) + 1 if len(group) else 0
    queues = [order[group[order] == g] for g in range(n_groups)]
    totals = np.bincount(group, weights=score, minlength=n_groups)
    found = np.zeros(n_groups)
    taken = np.zeros(n_groups, dtype=np.int64)

    def entry(g: int) -> tuple[float, float, int]:
        recall = found[g] / totals[g] if totals[g] > 0 else 1.0
        return (recall, -float(score[queues[g][taken[g]]]), g)

    heap = [entry(g) for g in range(n_groups) if len(queues[g])]
    heapq.heapify(heap)
    flags = np.zeros(len(score), dtype=bool)
    for _ in range(min(capacity, len(score))):
        _, _, g = heapq.heappop(heap)
        pupil = queues[g][taken[g]]
        flags[pupil] = True
        found[g] += score[pupil]
        taken[g] += 1
        if taken[g] < len(queues[g]):
            heapq.heappush(heap, entry(g))
    return flags


def strategy_rows(
    strategy: str,
    flags: np.ndarray,
    grouping: Grouping,
    *,
    y: np.ndarray,
    min_cell: int,
) -> list[dict[str, Any]]:
    """Flagged, missed-children rate and recall per group under one allocation.

    Suppressed as in the audit: flagged counts below ``min_cell`` (with
    complementary suppression, the list's length being known), rates over
    fewer than ``min_cell`` children who went missing, groups under
    ``min_cell`` pupils. The row ``group="all"`` is the whole list.
    """
    k = len(grouping.parts)
    n = grouping.sizes()
    pos = np.bincount(grouping.codes, weights=y, minlength=k)
    flagged = np.bincount(grouping.codes, weights=flags, minlength=k)
    found = np.bincount(grouping.codes, weights=y * flags, minlength=k)
    tiny = n < min_cell
    hide_flagged = flagged_suppression(
        flagged, tiny=tiny, min_cell=min_cell, slices=grouping.slices()
    )
    hide_rates = tiny | (pos < min_cell)
    entries = [
        (
            key,
            grouping.labels[i],
            flagged[i],
            found[i],
            pos[i],
            hide_flagged[i],
            hide_rates[i],
        )
        for i, key in enumerate(grouping.keys)
    ]
    total_pos, total_flagged = float(y.sum()), float(flags.sum())
    entries.append(
        (
            "all",
            "All pupils",
            total_flagged,
            float((y * flags).sum()),
            total_pos,
            total_flagged < min_cell,
            total_pos < min_cell,
        )
    )
    rows = []
    for key, label, f, tp, p, hide_f, hide_r in entries:
        recall = tp / p if p > 0 else np.nan
        head = {
            "strategy": strategy,
            "grouping": grouping.name,
            "group": key,
            "label": label,
            "protected": grouping.protected,
        }
        for metric, value, hide in (
            ("flagged", f, hide_f),
            ("missed_rate", 1 - recall, hide_r),
            ("recall", recall, hide_r),
        ):
            rows.append(
                {
                    **head,
                    "metric": metric,
                    "value": np.nan if hide else float(value),
                    "suppressed": bool(hide),
                }
            )
    return rows
