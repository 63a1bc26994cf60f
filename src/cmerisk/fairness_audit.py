"""The published result of a fairness audit: suppressed tables, flags, gate checks.

A :class:`FairnessAudit` holds only published values: cells suppressed under
:mod:`cmerisk.fairness_suppress` are ``NaN`` with ``suppressed=True`` from the
moment the tables are built, so every output made from it (JSON, HTML, plots,
MLflow) shows ``c`` and none can leak the value. It is made by
:func:`cmerisk.fairness.audit`.

Flagging rule (documented in the report). Each group's rate is compared with
the reference group's as a ratio (group / reference) with a bootstrap
interval (group and reference resampled independently, replicate ``b`` of one
divided by replicate ``b`` of the other). A disparity is

* ``flagged`` when the whole interval lies outside the parity band
  (lower bound above the band's top, or upper bound below its bottom): we are
  confident the gap is larger than the band tolerates;
* ``uncertain`` when the ratio itself is outside the band but its interval
  reaches into it;
* ``within band`` otherwise; ``suppressed`` when either rate is ``c``;
  ``undefined`` when the reference rate is zero.

Both directions count: a group missed less often than the reference means the
reference group is missed more. Gates use the same rule with their own limit:
``max_missed_ratio = 1.25`` fails when an interval lies wholly above 1.25 or
wholly below 1/1.25.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cmerisk.config import GateConfig
from cmerisk.fairness_bootstrap import COUNTS, RATES
from cmerisk.fairness_groups import UNKNOWN

SUPPRESSED = "c"
SCHEMA = "cmerisk-fairness-audit/1"

#: Rates compared between groups (flags and gates use these).
DISPARITY_RATES: tuple[str, ...] = ("missed_rate", "false_positive_rate", "precision")

#: How reports name each count and rate.
METRIC_TITLES: dict[str, str] = {
    "pupils": "Pupils",
    "positives": "Went missing",
    "flagged": "Flagged",
    "missed_rate": "Missed-children rate",
    "recall": "Recall (children found)",
    "false_positive_rate": "False-flag rate",
    "precision": "Precision (flags that were right)",
    "selection_rate": "Share flagged",
    "base_rate": "Share who went missing",
    "auc": "AUC",
    "calibration_error": "Calibration error",
}
_RATIO_NAMES = {
    "missed_rate": "missed-children ratio",
    "false_positive_rate": "false-flag ratio",
    "precision": "precision ratio",
}
_GATES = {
    "missed_rate": "max_missed_ratio",
    "false_positive_rate": "max_false_positive_ratio",
}


@dataclass(frozen=True)
class GroupingInfo:
    """One audited column or intersection, and its reference group."""

    name: str
    title: str
    columns: tuple[str, ...]
    protected: bool
    reference: str | None
    reference_label: str | None
    reference_rule: str


@dataclass(frozen=True)
class Disparity:
    """A published comparison of one group's rate with the reference group's."""

    grouping: str
    group: str
    label: str
    where: str
    reference_label: str
    metric: str
    value: float
    reference_value: float
    ratio: float
    ratio_ci: tuple[float, float]
    difference: float
    difference_ci: tuple[float, float]
    status: str

    def sentence(self, *, ci_level: float = 0.95) -> str:
        """The disparity in plain words."""
        lo, hi = self.ratio_ci
        ci = f"{ci_level:.0%} CI {lo:.2f}-{hi:.2f}"
        who, ref = self.label, self.reference_label  # `where` is in the JSON
        if self.metric == "missed_rate":
            return (
                f"In the group '{who}', children who went missing were missed "
                f"{self.value:.0%} of the time, against {self.reference_value:.0%} for "
                f"'{ref}': "
                f"{self.ratio:.2f} times as often ({ci})."
            )
        if self.metric == "false_positive_rate":
            return (
                f"In the group '{who}', pupils who did not go missing were flagged "
                f"{self.value:.1%} of the time, against {self.reference_value:.1%} for "
                f"'{ref}': {self.ratio:.2f} times as often ({ci})."
            )
        return (
            f"Of the pupils flagged in the group '{who}', {self.value:.0%} went "
            f"missing, against {self.reference_value:.0%} for '{ref}': "
            f"{self.ratio:.2f} times the "
            f"reference ({ci})."
        )


#: Group labels that do not say which characteristic they belong to.
_BARE_LABELS = frozenset({"Yes", "No", UNKNOWN})


def _named(label: str, title: str) -> str:
    """A group's label that names its characteristic: 'FSM eligible: yes'.

    >>> _named("Yes", "FSM eligible"), _named("SEN support", "SEN provision")
    ('FSM eligible: yes', 'SEN support')
    """
    return f"{title}: {label.lower()}" if label in _BARE_LABELS else label


def _num(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _cell(value: float, lo: float, hi: float, suppressed: bool, *, count: bool) -> Any:
    if suppressed:
        return SUPPRESSED
    if count:
        return None if math.isnan(value) else round(value)
    return {"value": _num(value), "ci_low": _num(lo), "ci_high": _num(hi)}


@dataclass(frozen=True)
class FairnessAudit:
    """Published (suppressed) fairness tables at one operating point.

    ``metrics``: one row per (grouping, group, metric) with ``value``,
    ``ci_low``, ``ci_high``, ``suppressed``; grouping ``overall`` holds the
    whole audited year. ``disparities``: one row per (grouping, group, rate)
    against the grouping's reference group. ``mitigation``: what other
    allocations would change (see :func:`cmerisk.fairness.mitigation_analysis`).
    """

    settings: dict[str, Any]
    groupings: list[GroupingInfo]
    metrics: pd.DataFrame
    disparities: pd.DataFrame
    mitigation: pd.DataFrame | None = None
    mitigation_notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ci_level(self) -> float:
        return float(self.settings["ci_level"])

    @property
    def flags(self) -> list[Disparity]:
        """Flagged disparities, missed-children rate first, largest departure first."""
        d = self.disparities
        rows = d[d["status"] == "flagged"]
        out = [self._disparity(r) for r in rows.itertuples(index=False)]
        order = {m: i for i, m in enumerate(DISPARITY_RATES)}

        def departure(x: Disparity) -> float:
            return math.inf if x.ratio <= 0 else abs(math.log(x.ratio))

        return sorted(out, key=lambda x: (order[x.metric], -departure(x)))

    def _disparity(self, r: Any) -> Disparity:
        title = {g.name: g.title for g in self.groupings}.get(r.grouping, r.grouping)
        return Disparity(
            grouping=r.grouping,
            group=r.group,
            label=_named(r.label, title),
            where=r.where,
            reference_label=_named(r.reference_label, title),
            metric=r.metric,
            value=r.value,
            reference_value=r.reference_value,
            ratio=r.ratio,
            ratio_ci=(r.ratio_low, r.ratio_high),
            difference=r.difference,
            difference_ci=(r.difference_low, r.difference_high),
            status=r.status,
        )

    def gate_failures(self, gates: GateConfig) -> list[str]:
        """Why this audit blocks promotion under ``gates`` (empty: it passes).

        A gate fails for a group when the interval of its ratio to the
        reference lies wholly above the gate's limit or wholly below its
        inverse; suppressed comparisons cannot fail a gate (too few pupils to judge).
        """
        failures = []
        d = self.disparities
        for metric, gate in _GATES.items():
            limit = getattr(gates, gate)
            if limit is None:
                continue
            rows = d[
                (d["metric"] == metric) & ~d["status"].isin(["suppressed", "reference"])
            ]
            for r in rows.itertuples(index=False):
                ci = f"{self.ci_level:.0%} CI {r.ratio_low:.2f}-{r.ratio_high:.2f}"
                head = f"{_RATIO_NAMES[metric]} for {r.where} is {r.ratio:.2f} ({ci})"
                if r.ratio_low > limit:
                    failures.append(f"{head} > {limit:.2f} (gate {gate})")
                elif r.ratio_high < 1 / limit:
                    failures.append(
                        f"{head} < {1 / limit:.2f} (gate {gate}, 1/{limit:.2f})"
                    )
        return failures

    # ---------------------------------------------------------------- outputs
    def _cells(self, rows: pd.DataFrame) -> dict[str, Any]:
        return {
            r.metric: _cell(
                r.value, r.ci_low, r.ci_high, r.suppressed, count=r.metric in COUNTS
            )
            for r in rows.itertuples(index=False)
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything published, JSON-ready.

        Suppressed cells are ``"c"``; undefined ones (e.g. a rate over zero) ``None``.
        """
        m, d = self.metrics, self.disparities
        groupings = []
        for g in self.groupings:
            gm = m[m["grouping"] == g.name]
            groups = [
                {
                    "group": key,
                    "label": rows["label"].iloc[0],
                    "where": rows["where"].iloc[0],
                    "metrics": self._cells(rows),
                }
                for key, rows in gm.groupby("group", sort=False)
            ]
            disparities = [
                {
                    "group": r.group,
                    "label": r.label,
                    "where": r.where,
                    "metric": r.metric,
                    "status": r.status,
                    "ratio": _cell(
                        r.ratio,
                        r.ratio_low,
                        r.ratio_high,
                        r.status == "suppressed",
                        count=False,
                    ),
                    "difference": _cell(
                        r.difference,
                        r.difference_low,
                        r.difference_high,
                        r.status == "suppressed",
                        count=False,
                    ),
                }
                for r in d[d["grouping"] == g.name].itertuples(index=False)
            ]
            groupings.append(
                {
                    "name": g.name,
                    "title": g.title,
                    "columns": list(g.columns),
                    "protected": g.protected,
                    "reference": g.reference,
                    "reference_label": g.reference_label,
                    "reference_rule": g.reference_rule,
                    "groups": groups,
                    "disparities": disparities,
                }
            )
        mitigation = None
        if self.mitigation is not None:
            mitigation = {
                "notes": list(self.mitigation_notes),
                "rows": [
                    {
                        "strategy": r.strategy,
                        "grouping": r.grouping,
                        "group": r.group,
                        "label": r.label,
                        "metric": r.metric,
                        "value": SUPPRESSED if r.suppressed else _num(r.value),
                    }
                    for r in self.mitigation.itertuples(index=False)
                ],
            }
        return {
            "schema": SCHEMA,
            "suppressed_symbol": SUPPRESSED,
            "settings": dict(self.settings),
            "overall": self._cells(m[m["grouping"] == "overall"]),
            "groupings": groupings,
            "flags": [
                {
                    "grouping": f.grouping,
                    "group": f.group,
                    "where": f.where,
                    "metric": f.metric,
                    "ratio": f.ratio,
                    "ratio_ci": list(f.ratio_ci),
                    "sentence": f.sentence(ci_level=self.ci_level),
                }
                for f in self.flags
            ],
            "mitigation": mitigation,
            "skipped": list(self.skipped),
            "notes": list(self.notes),
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON (no NaN: undefined values are ``null``)."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    def summary_frame(self) -> pd.DataFrame:
        """One row per group: counts, rates with intervals, missed-children ratio.

        Suppressed cells hold ``"c"``; the missed-children rate comes first.
        """
        m = self.metrics
        rows = []
        for (grouping, group), g in m.groupby(["grouping", "group"], sort=False):
            row: dict[str, Any] = {
                "grouping": grouping,
                "group": group,
                "label": g["label"].iloc[0],
            }
            by = g.set_index("metric")
            for metric in (*COUNTS, *RATES):
                r = by.loc[metric]
                if r["suppressed"]:
                    row[metric] = SUPPRESSED
                    if metric in RATES:
                        row[f"{metric}_ci"] = SUPPRESSED
                    continue
                row[metric] = r["value"]
                if metric in RATES:
                    row[f"{metric}_ci"] = (
                        ""
                        if np.isnan(r["ci_low"])
                        else f"{r['ci_low']:.3f}-{r['ci_high']:.3f}"
                    )
            rows.append(row)
        out = pd.DataFrame(rows)
        missed = self.disparities[
            self.disparities["metric"] == "missed_rate"
        ].set_index(["grouping", "group"])
        ratio, status = [], []
        for key in zip(out["grouping"], out["group"], strict=True):
            if key in missed.index:
                r = missed.loc[key]
                ratio.append(SUPPRESSED if r["status"] == "suppressed" else r["ratio"])
                status.append(r["status"])
            else:
                ratio.append(np.nan)
                status.append("")
        out["missed_ratio"] = ratio
        out["missed_ratio_status"] = status
        lead = [
            "grouping",
            "group",
            "label",
            "missed_rate",
            "missed_rate_ci",
            "missed_ratio",
            "missed_ratio_status",
        ]
        return out[lead + [c for c in out.columns if c not in lead]].astype(object)
