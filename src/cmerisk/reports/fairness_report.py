"""The fairness audit as one self-contained HTML page a reviewer can read.

Everything is inline: CSS in a ``<style>`` block, plots as base64 PNG data
URIs; there are no scripts, web fonts or external links, so the page opens
offline and can be attached to an email or logged to MLflow as it is. The
template is autoescaped. Only the audit's published tables are read, so
suppressed cells appear as ``c`` here as everywhere.

The page leads with the missed-children rate (a child the model misses gets
no call), then flagged disparities in plain words, per-group tables with
intervals, intersections, the suppression note, the mitigation analysis with
why it is not deployed by default, and the method notes.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from cmerisk.config import FairnessConfig
>>> from cmerisk.fairness import audit
>>> from cmerisk.spec import DatasetSpec, FeatureSpec
>>> rng = np.random.default_rng(0)
>>> frame = pd.DataFrame({"sex": rng.choice(["F", "M"], 3000)})
>>> spec = DatasetSpec(id="id", target="y", features=[FeatureSpec(
...     name="x", group="other", reason="x")])
>>> a = audit(frame, spec=spec, config=FairnessConfig(groups=["sex"], intersections=[],
...     n_bootstrap=50), y_true=(rng.random(3000) < 0.05).astype(int),
...     y_score=rng.random(3000) * 0.1, capacity=150, mitigation=False)
>>> html = render_fairness_html(a)
>>> html.startswith("<!DOCTYPE html>") and "Missed-children rate" in html
True
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from cmerisk.config import GateConfig
from cmerisk.fairness_audit import METRIC_TITLES, SUPPRESSED, FairnessAudit
from cmerisk.fairness_bootstrap import RATES
from cmerisk.reports.render import data_uri, environment

TEMPLATE = "fairness.html.j2"
UNDEFINED = "–"

#: How each disparity status reads in the report.
STATUS_TEXT: dict[str, str] = {
    "flagged": "flagged",
    "uncertain": "outside band, uncertain",
    "within band": "within band",
    "suppressed": SUPPRESSED,
    "reference": "reference",
    "undefined": UNDEFINED,
}
STRATEGY_TITLES: dict[str, str] = {
    "top_k": "Deployed (top-k)",
    "equal_recall": "Equal expected recall",
    "threshold_optimizer": "ThresholdOptimizer",
}

#: Why group-aware mitigation is analysis, not the default (the report prints these).
WHY_NOT_DEPLOYED: tuple[str, ...] = (
    "Both alternatives decide who gets a call partly by which group a pupil is in. "
    "That needs every pupil's group at scoring time. For sex, ethnicity and first "
    "language that means using a protected characteristic (Equality Act 2010) to treat "
    "pupils differently, which is unlawful direct discrimination unless it is "
    "proportionate, evidenced positive action; ethnicity, and SEN where it records "
    "health, are special category data under UK GDPR Article 9, needing an Article 9 "
    "condition and a data protection impact assessment before they shape decisions "
    "about individual children.",
    "Moving places between groups also changes how many children are found in total, "
    "and the tables above show by how much. ThresholdOptimizer, in addition, ignores "
    "the team's capacity: its list is as long as its objective wants.",
    "So cmerisk deploys the group-blind list and reports this analysis. Where a "
    "disparity is flagged, look first at why the model sees that group less well "
    "(missing or late data, features that describe the group poorly), review the "
    "missed children's cases, and treat any group-aware allocation as an explicit, "
    "recorded policy decision taken with legal and data-protection advice, never as a "
    "silent default.",
)


def _rate(value: float, *, suppressed: bool, metric: str) -> str:
    if suppressed:
        return SUPPRESSED
    if value is None or math.isnan(value):
        return UNDEFINED
    if metric == "auc":
        return f"{value:.2f}"
    digits = (
        2 if metric in ("false_positive_rate", "selection_rate", "base_rate") else 1
    )
    return f"{100 * value:.{digits}f}%"


def _interval(lo: float, hi: float, *, suppressed: bool, metric: str) -> str:
    if suppressed or math.isnan(lo) or math.isnan(hi):
        return ""
    return (
        f"{_rate(lo, suppressed=False, metric=metric)} to "
        f"{_rate(hi, suppressed=False, metric=metric)}"
    )


def _count(value: float, *, suppressed: bool) -> str:
    if suppressed:
        return SUPPRESSED
    return UNDEFINED if math.isnan(value) else f"{round(value):,}"


def _ratio(row: Any) -> tuple[str, str]:
    if row is None:
        return "", ""
    if row.status == "suppressed":
        return SUPPRESSED, ""
    if math.isnan(row.ratio):
        return UNDEFINED, ""
    if row.status == "reference":
        return "1 (reference)", ""
    ci = (
        ""
        if math.isnan(row.ratio_low)
        else f"{row.ratio_low:.2f} to {row.ratio_high:.2f}"
    )
    return f"{row.ratio:.2f}", ci


def _group_rows(audit: FairnessAudit, name: str) -> list[dict[str, Any]]:
    m = audit.metrics[audit.metrics["grouping"] == name]
    d = audit.disparities[audit.disparities["grouping"] == name]
    ratios = {(r.group, r.metric): r for r in d.itertuples(index=False)}
    rows = []
    for group, g in m.groupby("group", sort=False):
        by = {r.metric: r for r in g.itertuples(index=False)}
        row: dict[str, Any] = {"label": g["label"].iloc[0], "where": g["where"].iloc[0]}
        for metric in ("pupils", "positives", "flagged"):
            row[metric] = _count(by[metric].value, suppressed=by[metric].suppressed)
        for metric in RATES:
            r = by[metric]
            row[metric] = _rate(r.value, suppressed=r.suppressed, metric=metric)
            row[f"{metric}_ci"] = _interval(
                r.ci_low, r.ci_high, suppressed=r.suppressed, metric=metric
            )
        for metric in ("missed_rate", "false_positive_rate", "precision"):
            disparity = ratios.get((group, metric))
            row[f"{metric}_ratio"], row[f"{metric}_ratio_ci"] = _ratio(disparity)
            status = "" if disparity is None else disparity.status
            row[f"{metric}_status"] = status
            row[f"{metric}_status_text"] = STATUS_TEXT.get(status, status)
        rows.append(row)
    return rows


def _mitigation(audit: FairnessAudit) -> dict[str, Any] | None:
    mit = audit.mitigation
    if mit is None or mit.empty:
        return None
    strategies = list(dict.fromkeys(mit["strategy"]))
    titles = {g.name: g.title for g in audit.groupings}
    tables = []
    for name, g in mit.groupby("grouping", sort=False):
        rows = []
        for group, rows_g in g.groupby("group", sort=False):
            cell: dict[str, Any] = {
                "label": rows_g["label"].iloc[0],
                "all": group == "all",
            }
            for r in rows_g.itertuples(index=False):
                if r.metric == "flagged":
                    text = _count(r.value, suppressed=r.suppressed)
                else:
                    text = _rate(r.value, suppressed=r.suppressed, metric=r.metric)
                cell[f"{r.metric}:{r.strategy}"] = text
            rows.append(cell)
        tables.append(
            {
                "title": titles.get(str(name), name),
                "protected": bool(g["protected"].iloc[0]),
                "rows": rows,
            }
        )
    return {
        "strategies": [(s, STRATEGY_TITLES.get(s, s)) for s in strategies],
        "tables": tables,
        "notes": audit.mitigation_notes,
    }


def render_fairness_html(
    audit: FairnessAudit,
    *,
    title: str = "Fairness audit",
    subtitle: str | None = None,
    gates: GateConfig | None = None,
    plots: bool = True,
) -> str:
    """The audit as a self-contained HTML page (see the module docstring).

    ``gates``, when given, adds which promotion gates the audit fails;
    ``plots=False`` leaves the pictures out (faster, e.g. in tests).
    """
    from cmerisk.reports.fairness_plots import audit_plots

    s = audit.settings
    overall = {
        r.metric: r
        for r in audit.metrics[audit.metrics["grouping"] == "overall"].itertuples(
            index=False
        )
    }
    singles = [g for g in audit.groupings if len(g.columns) == 1]
    crosses = [g for g in audit.groupings if len(g.columns) > 1]

    def section(g: Any) -> dict[str, Any]:
        return {
            "title": g.title,
            "name": g.name,
            "protected": g.protected,
            "reference": g.reference_label,
            "reference_rule": g.reference_rule,
            "rows": _group_rows(audit, g.name),
        }

    images = {k: data_uri(v) for k, v in audit_plots(audit).items()} if plots else {}
    lo, hi = s["parity_band"]
    context = {
        "title": title,
        "subtitle": subtitle,
        "settings": s,
        "band": f"{lo:g} to {hi:g}",
        "overall": {
            "pupils": _count(
                overall["pupils"].value, suppressed=overall["pupils"].suppressed
            ),
            "positives": _count(
                overall["positives"].value, suppressed=overall["positives"].suppressed
            ),
            "flagged": _count(
                overall["flagged"].value, suppressed=overall["flagged"].suppressed
            ),
            **{
                m: _rate(overall[m].value, suppressed=overall[m].suppressed, metric=m)
                for m in RATES
            },
            **{
                f"{m}_ci": _interval(
                    overall[m].ci_low,
                    overall[m].ci_high,
                    suppressed=overall[m].suppressed,
                    metric=m,
                )
                for m in RATES
            },
        },
        "titles": METRIC_TITLES,
        "flags": [f.sentence(ci_level=audit.ci_level) for f in audit.flags],
        "gate_failures": None if gates is None else audit.gate_failures(gates),
        "singles": [section(g) for g in singles],
        "crosses": [section(g) for g in crosses],
        "suppressed_cells": int(audit.metrics["suppressed"].sum()),
        "images": images,
        "mitigation": _mitigation(audit),
        "why_not": WHY_NOT_DEPLOYED,
        "notes": audit.notes,
        "skipped": audit.skipped,
        "ci": f"{audit.ci_level:.0%}",
        "c": SUPPRESSED,
    }
    return str(environment().get_template(TEMPLATE).render(**context))


def summary_table(audit: FairnessAudit) -> pd.DataFrame:
    """The missed-children rate and its ratio per group, as text (for the CLI)."""
    rows = []
    for g in audit.groupings:
        for r in _group_rows(audit, g.name):
            rows.append(
                {
                    "grouping": g.title,
                    "group": r["label"],
                    "pupils": r["pupils"],
                    "missed": r["missed_rate"],
                    "ratio": r["missed_rate_ratio"],
                    "status": r["missed_rate_status_text"],
                }
            )
    return pd.DataFrame(rows)


def write_fairness_report(
    audit: FairnessAudit,
    out_dir: Path,
    *,
    gates: GateConfig | None = None,
    title: str = "Fairness audit",
    subtitle: str | None = None,
) -> dict[str, Path]:
    """Write ``fairness.json`` and ``fairness.html`` to ``out_dir``, each atomically.

    With ``gates``, the JSON also lists ``gate_failures`` (empty: the audit
    passes) and the page says which gates fail.
    """
    import json

    from cmerisk.atomic import write_text

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = audit.to_dict()
    if gates is not None:
        data["gate_failures"] = audit.gate_failures(gates)
    paths = {"json": out_dir / "fairness.json", "html": out_dir / "fairness.html"}
    write_text(paths["json"], json.dumps(data, indent=2, allow_nan=False) + "\n")
    html = render_fairness_html(audit, title=title, subtitle=subtitle, gates=gates)
    write_text(paths["html"], html)
    return paths
