"""Pictures of a fairness audit: rates by group with intervals, ratios against the band.

Drawn with matplotlib's object API (``Figure`` on the Agg canvas, no pyplot
state) from the audit's *published* tables only, so a suppressed cell can
never reach a picture: it is drawn as the letter ``c`` where its point would
be. Each function returns PNG bytes (no metadata, so no links inside).

Examples
--------
>>> import numpy as np, pandas as pd
>>> from cmerisk.config import FairnessConfig
>>> from cmerisk.fairness import audit
>>> from cmerisk.spec import DatasetSpec, FeatureSpec
>>> rng = np.random.default_rng(0)
>>> frame = pd.DataFrame({"sex": rng.choice(["F", "M"], 3000)})
>>> y = (rng.random(3000) < 0.05).astype(int)
>>> spec = DatasetSpec(id="id", target="y", features=[FeatureSpec(
...     name="x", group="other", reason="x")])
>>> a = audit(frame, spec=spec, config=FairnessConfig(groups=["sex"], intersections=[],
...     n_bootstrap=50), y_true=y, y_score=rng.random(3000) * 0.1, capacity=150,
...     mitigation=False)
>>> rate_plot(a, "missed_rate")[:4] == b"\\x89PNG"
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cmerisk.fairness_audit import METRIC_TITLES, FairnessAudit
from cmerisk.reports.render import figure, png

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.ticker import PercentFormatter

POINT = "#1d4ed8"
REFERENCE = "#111827"
FLAGGED = "#c2410c"
BAND = "#d1fae5"
SUPPRESSED_COLOUR = "#6b7280"


def _panels(audit: FairnessAudit, *, intersections: bool) -> list[str]:
    return [g.name for g in audit.groupings if (len(g.columns) > 1) == intersections]


def _sectioned(ax: Axes, sections: list[tuple[str, list[str]]]) -> list[np.ndarray]:
    """Lay groups out top to bottom on one axis, a bold heading row per grouping.

    Returns each section's y positions (one per group). One axis draws far
    faster than a panel per grouping.
    """
    positions, ticks, labels, heads = [], [], [], []
    y = 0.0
    for title, groups in sections:
        heads.append(y)
        ticks.append(y)
        labels.append(title)
        y -= 1
        pos = y - np.arange(len(groups))
        positions.append(pos)
        ticks.extend(pos)
        labels.extend(groups)
        y -= len(groups) + 0.5
    ax.set_yticks(ticks, labels)
    for tick, head in zip(
        ax.get_yticklabels(), [t in heads for t in ticks], strict=True
    ):
        if head:
            tick.set_fontweight("bold")
    for h in heads[1:]:
        ax.axhline(h + 0.75, color="#d1d5db", linewidth=0.8)
    ax.set_ylim(y + 0.5, 0.8)
    return positions


def _dots(
    ax: Axes,
    pos: np.ndarray,
    value: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    hidden: np.ndarray,
    colours: list[str],
    *,
    x_suppressed: float,
) -> None:
    for p, v, a, b, c, h in zip(pos, value, lo, hi, colours, hidden, strict=True):
        if h:
            ax.text(
                x_suppressed,
                p,
                "c",
                color=SUPPRESSED_COLOUR,
                va="center",
                ha="left",
                fontsize=10,
                fontstyle="italic",
            )
            continue
        if np.isnan(v):
            continue
        if not np.isnan(a):
            ax.plot([a, b], [p, p], color=c, linewidth=2, solid_capstyle="butt")
        ax.plot([v], [p], "o", color=c, markersize=6)


def rate_plot(
    audit: FairnessAudit, metric: str = "missed_rate", *, intersections: bool = False
) -> bytes:
    """Each group's rate with its interval, grouping by grouping.

    The reference group is drawn in black; suppressed groups show ``c``; the
    dashed line is all pupils.
    """
    names = _panels(audit, intersections=intersections)
    m = audit.metrics[audit.metrics["metric"] == metric]
    info = {g.name: g for g in audit.groupings}
    tables = [m[m["grouping"] == n] for n in names]
    rows = sum(len(t) + 1.5 for t in tables)
    fig = figure(7.0, 1.0 + 0.22 * rows)
    ax = fig.subplots()
    positions = _sectioned(
        ax,
        [(info[n].title, list(t["label"])) for n, t in zip(names, tables, strict=True)],
    )
    for name, t, pos in zip(names, tables, positions, strict=True):
        colours = [
            REFERENCE if g == info[name].reference else POINT for g in t["group"]
        ]
        _dots(
            ax,
            pos,
            t["value"].to_numpy(float),
            t["ci_low"].to_numpy(float),
            t["ci_high"].to_numpy(float),
            t["suppressed"].to_numpy(bool),
            colours,
            x_suppressed=0.01,
        )
    overall = m[m["grouping"] == "overall"]
    if len(overall) and not bool(overall["suppressed"].iloc[0]):
        ax.axvline(
            float(overall["value"].iloc[0]),
            color="#9ca3af",
            linestyle="--",
            linewidth=1,
        )
    ax.tick_params(axis="y", labelsize=8, length=0)
    ax.grid(axis="x", color="#e5e7eb", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.set_xlim(0, 1.02)
    ax.xaxis.set_major_formatter(_percent())
    ax.set_xlabel(
        f"{METRIC_TITLES[metric]} (dots; black: reference group; bars: "
        f"{audit.ci_level:.0%} interval; dashed: all pupils)",
        fontsize=8,
    )
    return png(fig)


def _percent() -> PercentFormatter:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1.0, decimals=0)


def ratio_plot(audit: FairnessAudit, metric: str = "missed_rate") -> bytes:
    """Each group's ratio to its reference (log scale) with the parity band shaded.

    Flagged disparities are drawn in orange; suppressed ones show ``c``.
    """
    d = audit.disparities
    d = d[(d["metric"] == metric) & (d["status"] != "reference")]
    lo_band, hi_band = audit.settings["parity_band"]
    info = {g.name: g for g in audit.groupings}
    names = list(dict.fromkeys(d["grouping"]))
    tables = [d[d["grouping"] == n] for n in names]
    fig = figure(7.0, 1.2 + 0.22 * sum(len(t) + 1.5 for t in tables))
    ax = fig.subplots()
    ax.axvspan(lo_band, hi_band, color=BAND, zorder=0)
    ax.axvline(1.0, color="#6b7280", linewidth=1)
    ratio = d["ratio"].to_numpy(float)
    lo, hi = d["ratio_low"].to_numpy(float), d["ratio_high"].to_numpy(float)
    ends = np.r_[ratio, lo, hi]
    ends = ends[np.isfinite(ends) & (ends > 0)]
    left = float(min(ends.min(), lo_band)) / 1.3 if len(ends) else lo_band / 1.3
    right = float(max(ends.max(), hi_band)) * 1.3 if len(ends) else hi_band * 1.3
    positions = _sectioned(
        ax,
        [(info[n].title, list(t["label"])) for n, t in zip(names, tables, strict=True)],
    )
    for t, pos in zip(tables, positions, strict=True):
        r = t["ratio"].to_numpy(float)
        _dots(
            ax,
            pos,
            np.where(r > 0, r, np.nan),
            np.clip(t["ratio_low"].to_numpy(float), left, None),
            np.clip(t["ratio_high"].to_numpy(float), None, right),
            (t["status"] == "suppressed").to_numpy(),
            [FLAGGED if st == "flagged" else POINT for st in t["status"]],
            x_suppressed=left * 1.05,
        )
    ax.set_xscale("log")
    ax.set_xlim(left, right)
    ticks = [t for t in (0.1, 0.25, 0.5, 1.0, 2, 4, 10, 25, 100) if left <= t <= right]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.tick_params(axis="y", labelsize=8, length=0)
    ax.set_xlabel(
        f"{METRIC_TITLES[metric]}: ratio to the reference group\n(shaded: parity band "
        f"{lo_band:g}-{hi_band:g}; orange: flagged)",
        fontsize=8,
    )
    return png(fig)


def mitigation_plot(audit: FairnessAudit) -> bytes | None:
    """Recall by group under each allocation (None when there was no analysis)."""
    mit = audit.mitigation
    if mit is None or mit.empty:
        return None
    rec = mit[(mit["metric"] == "recall") & (mit["group"] != "all")]
    names = list(dict.fromkeys(rec["grouping"]))
    strategies = list(dict.fromkeys(rec["strategy"]))
    colours = {
        "top_k": REFERENCE,
        "equal_recall": POINT,
        "threshold_optimizer": "#a16207",
    }
    names_of = {
        "top_k": "deployed (top-k)",
        "equal_recall": "equal expected recall",
        "threshold_optimizer": "ThresholdOptimizer",
    }
    titles = {g.name: g.title for g in audit.groupings}
    groups = [list(dict.fromkeys(rec[rec["grouping"] == n]["label"])) for n in names]
    fig = figure(7.0, 1.2 + 0.3 * sum(len(g) + 1.5 for g in groups))
    ax = fig.subplots()
    positions = _sectioned(
        ax, [(titles.get(n, n), g) for n, g in zip(names, groups, strict=True)]
    )
    height = 0.8 / max(len(strategies), 1)
    for name, labels, pos in zip(names, groups, positions, strict=True):
        rows = rec[rec["grouping"] == name]
        for k, strategy in enumerate(strategies):
            s = rows[rows["strategy"] == strategy].set_index("label").reindex(labels)
            value = s["value"].to_numpy(float)
            hidden = s["suppressed"].astype("boolean").fillna(True).to_numpy(bool)
            y = pos + 0.4 - height * (k + 0.5)
            ax.barh(
                y[~hidden],
                np.nan_to_num(value[~hidden]),
                height=height,
                color=colours.get(strategy, POINT),
                label=names_of.get(strategy, strategy) if name == names[0] else None,
            )
            for yy in y[hidden]:
                ax.text(
                    0.005,
                    yy,
                    "c",
                    color=SUPPRESSED_COLOUR,
                    va="center",
                    fontsize=7,
                    fontstyle="italic",
                )
    ax.tick_params(axis="y", labelsize=8, length=0)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(_percent())
    ax.set_xlabel(
        "Recall: share of the group's children who went missing that the list finds",
        fontsize=8,
    )
    return png(fig)


def audit_plots(audit: FairnessAudit) -> dict[str, bytes]:
    """Every picture of the report, by file name (for MLflow or a folder)."""
    plots = {
        "fairness_missed_rate.png": rate_plot(audit, "missed_rate"),
        "fairness_missed_ratio.png": ratio_plot(audit, "missed_rate"),
        "fairness_false_positive_ratio.png": ratio_plot(audit, "false_positive_rate"),
    }
    if _panels(audit, intersections=True):
        plots["fairness_missed_rate_intersections.png"] = rate_plot(
            audit, "missed_rate", intersections=True
        )
    mitigation = mitigation_plot(audit)
    if mitigation is not None:
        plots["fairness_mitigation.png"] = mitigation
    return plots


__all__ = ["audit_plots", "mitigation_plot", "rate_plot", "ratio_plot"]
