"""A grouping's published rows: intervals, ``c`` and disparities from its estimates.

:func:`grouping_tables` takes the per-group counts and rates (computed by
fairlearn's MetricFrame in :mod:`cmerisk.fairness`), decides suppression
(:mod:`cmerisk.fairness_suppress`) before anything is written, bootstraps the
groups that will be published, picks the reference group and compares every
group with it (:mod:`cmerisk.fairness_audit` states the flagging rule).
Suppressed values never enter the rows: they are ``NaN`` with
``suppressed=True``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cmerisk.config import FairnessConfig
from cmerisk.fairness_audit import DISPARITY_RATES, GroupingInfo
from cmerisk.fairness_bootstrap import (
    COUNTS,
    RATES,
    Cells,
    bootstrap_metrics,
    compress,
    interval,
)
from cmerisk.fairness_groups import UNKNOWN, Grouping
from cmerisk.fairness_suppress import suppression

DISPARITY_COLUMNS: tuple[str, ...] = (
    "grouping",
    "group",
    "label",
    "where",
    "reference_label",
    "metric",
    "value",
    "reference_value",
    "ratio",
    "ratio_low",
    "ratio_high",
    "difference",
    "difference_low",
    "difference_high",
    "status",
)


@dataclass(frozen=True)
class Scored:
    """The audited pupils: outcome, flag at the operating point, score, score bin."""

    y: np.ndarray
    flags: np.ndarray
    score: np.ndarray
    bins: np.ndarray


def _rng(seed: int, *names: str) -> np.random.Generator:
    """A generator per (grouping, group): results don't depend on what else is run."""
    return np.random.default_rng(
        [seed % 2**63, *(zlib.crc32(n.encode()) for n in names)]
    )


def choose_reference(
    grouping: Grouping, sizes: np.ndarray, config: FairnessConfig, notes: list[str]
) -> tuple[int | None, str]:
    """The configured reference group if usable, else the largest known group."""
    wanted = config.reference.get(grouping.name)
    if wanted is not None:
        i = grouping.find(str(wanted))
        if i is not None and sizes[i] >= config.min_cell:
            return i, "configured"
        why = "is not in the data" if i is None else "has too few pupils"
        notes.append(
            f"The configured reference {grouping.name}={wanted} {why}; the largest "
            "group is used."
        )
    known = [i for i, p in enumerate(grouping.parts) if UNKNOWN not in p]
    if not known:
        return None, "none"
    return max(known, key=lambda i: (sizes[i], -i)), "largest group"


def disparity_status(
    ratio: float, lo: float, hi: float, band: tuple[float, float]
) -> str:
    """``flagged`` only when the whole interval is outside the band (fairness_audit).

    Examples
    --------
    >>> [disparity_status(*r, band=(0.8, 1.25)) for r in
    ...  [(1.6, 1.3, 2.0), (1.6, 1.1, 2.0), (1.1, 0.9, 1.3), (0.5, 0.3, 0.7)]]
    ['flagged', 'uncertain', 'within band', 'flagged']
    """
    if np.isnan(ratio):
        return "undefined"
    if lo > band[1] or hi < band[0]:
        return "flagged"
    if ratio > band[1] or ratio < band[0]:
        return "uncertain"
    return "within band"


def group_cells(grouping: Grouping, scored: Scored) -> list[Cells]:
    """Each group's pupils merged into cells (``fairness_bootstrap.compress``)."""
    members = np.argsort(grouping.codes, kind="stable")
    bounds = np.r_[0, np.cumsum(grouping.sizes())]
    out = []
    for i in range(len(grouping.parts)):
        idx = members[bounds[i] : bounds[i + 1]]
        out.append(
            compress(
                y=scored.y[idx],
                flag=scored.flags[idx],
                score=scored.score[idx],
                bins=scored.bins[idx],
            )
        )
    return out


def _replicates(
    grouping: Grouping,
    cells: list[Cells],
    hidden: dict[str, np.ndarray],
    *,
    config: FairnessConfig,
    seed: int,
) -> dict[int, dict[str, np.ndarray]]:
    """Bootstrap replicates for every group with something published."""
    reps = {}
    for i, key in enumerate(grouping.keys):
        if all(hidden[m][i] for m in RATES):
            continue
        ranks = not (hidden["auc"][i] and hidden["calibration_error"][i])
        reps[i] = bootstrap_metrics(
            cells[i],
            n_boot=config.n_bootstrap,
            rng=_rng(seed, grouping.name, key),
            ranks=ranks,
        )
    return reps


def _disparity(
    i: int,
    ref: int,
    metric: str,
    grouping: Grouping,
    table: pd.DataFrame,
    hidden: dict[str, np.ndarray],
    reps: dict[int, dict[str, np.ndarray]],
    config: FairnessConfig,
) -> dict[str, Any]:
    d: dict[str, Any] = dict.fromkeys(DISPARITY_COLUMNS, np.nan)
    d.update(
        grouping=grouping.name,
        group=grouping.keys[i],
        label=grouping.labels[i],
        where=grouping.describe(i),
        reference_label=grouping.labels[ref],
        metric=metric,
    )
    if hidden[metric][ref] or hidden[metric][i]:
        d["status"] = "suppressed"
        return d
    value, ref_value = float(table.at[i, metric]), float(table.at[ref, metric])
    d.update(value=value, reference_value=ref_value)
    if i == ref:
        d.update(
            ratio=1.0,
            ratio_low=1.0,
            ratio_high=1.0,
            difference=0.0,
            difference_low=0.0,
            difference_high=0.0,
            status="reference",
        )
        return d
    level = config.ci_level
    rg, rr = reps[i][metric], reps[ref][metric]
    if not (np.isnan(value) or np.isnan(ref_value)):
        lo, hi = interval(rg - rr, level=level)
        d.update(difference=value - ref_value, difference_low=lo, difference_high=hi)
    if ref_value > 0 and not np.isnan(value):
        with np.errstate(divide="ignore", invalid="ignore"):
            lo, hi = interval(rg / rr, level=level)
        d.update(ratio=value / ref_value, ratio_low=lo, ratio_high=hi)
    d["status"] = disparity_status(
        d["ratio"], d["ratio_low"], d["ratio_high"], config.parity_band
    )
    return d


def grouping_tables(
    grouping: Grouping,
    table: pd.DataFrame,
    cells: list[Cells],
    *,
    config: FairnessConfig,
    seed: int,
    notes: list[str],
) -> tuple[GroupingInfo, list[dict[str, Any]], list[dict[str, Any]]]:
    """Published metric rows and disparity rows of one grouping.

    ``table`` holds each group's counts and rates (columns
    :data:`~cmerisk.fairness_bootstrap.COUNTS` and ``RATES``), one row per
    group in the grouping's order; ``cells`` each group's pupils (for the bootstrap).
    """
    counts = {k: table[k].to_numpy() for k in COUNTS}
    hidden = suppression(counts, min_cell=config.min_cell, slices=grouping.slices())
    reps = _replicates(grouping, cells, hidden, config=config, seed=seed)
    rows: list[dict[str, Any]] = []
    for i, key in enumerate(grouping.keys):
        head = {
            "grouping": grouping.name,
            "group": key,
            "label": grouping.labels[i],
            "where": grouping.describe(i),
        }
        for metric in (*COUNTS, *RATES):
            hide = bool(hidden[metric][i])
            value = np.nan if hide else float(table.at[i, metric])
            lo = hi = np.nan
            if metric in RATES and not hide and not np.isnan(value):
                lo, hi = interval(reps[i][metric], level=config.ci_level)
            rows.append(
                {
                    **head,
                    "metric": metric,
                    "value": value,
                    "ci_low": lo,
                    "ci_high": hi,
                    "suppressed": hide,
                }
            )
    ref, rule = choose_reference(grouping, counts["pupils"], config, notes)
    disparities = []
    if ref is not None:
        disparities = [
            _disparity(i, ref, metric, grouping, table, hidden, reps, config)
            for metric in DISPARITY_RATES
            for i in range(len(grouping.keys))
        ]
    info = GroupingInfo(
        name=grouping.name,
        title=grouping.title,
        columns=grouping.columns,
        protected=grouping.protected,
        reference=None if ref is None else grouping.keys[ref],
        reference_label=None if ref is None else grouping.labels[ref],
        reference_rule=rule,
    )
    return info, rows, disparities


def method_notes(
    config: FairnessConfig,
    *,
    capacity: int,
    n: int,
    probabilities: bool,
    tie_break: str = "pupil id",
) -> list[str]:
    """How the audit was done, in the words the report prints."""
    lo, hi = config.parity_band
    m = config.min_cell
    notes = [
        f"Operating point: the {min(capacity, n):,} highest scores of {n:,} pupils are "
        f"flagged (ties broken by {tie_break}), as the team's capacity allows.",
        f"Intervals: {config.ci_level:.0%} percentile intervals from "
        f"{config.n_bootstrap} bootstrap resamples, each group resampled on its own "
        f"(stratified) with its size kept. Each pupil keeps their flag, so intervals "
        f"show sampling variation in who is in a group, not in the threshold.",
        f"Disparities: each group's rate divided by the reference group's (the largest "
        f"known group unless configured). A disparity is flagged only when its whole "
        f"interval lies outside the parity band {lo:g}-{hi:g}; 'uncertain' means the "
        f"ratio is outside the band but its interval reaches into it.",
        f"Suppression: cells on fewer than {m} pupils (or, for rates over them, fewer "
        f"than {m} children who went missing, pupils flagged or pupils who did not go "
        f"missing) show 'c', as do cells from which a suppressed count could be worked "
        f"out (complementary suppression).",
        "Many groups are compared at once: at 95%, about 1 interval in 20 misses the "
        "truth by chance. Read flags as prompts to look closer, not verdicts.",
    ]
    if probabilities:
        notes.append(
            f"Calibration error: expected calibration error within each group over "
            f"{config.calibration_bins} quantile bins of all audited scores."
        )
    else:
        notes.append(
            "Scores are not probabilities in [0, 1]: calibration error not computed."
        )
    return notes
