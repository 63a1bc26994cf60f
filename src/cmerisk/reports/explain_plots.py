"""Pictures of explanations: global SHAP views and a pupil's waterfall.

Drawn with matplotlib's object API (``Figure`` on the Agg canvas, no pyplot
state), so they render headless and in threads; each function returns PNG
bytes. :func:`global_plots` returns ``{file name: png bytes}`` for the
training pipeline to log to MLflow. :func:`waterfall_svg` draws one pupil's
group contributions for a reviewer card as a small SVG, without matplotlib
(a few hundred cards must render in seconds).

Examples
--------
>>> import numpy as np, pandas as pd
>>> from cmerisk.explain_result import PupilExplanation
>>> pupil = PupilExplanation(id="p1", margin=-1.0, base=-3.0, probability=0.2,
...     band="flagged", groups={"attendance": 1.6, "needs": 0.5, "context": -0.1},
...     reasons=[])
>>> svg = waterfall_svg(pupil)
>>> svg.startswith("<svg") and "Attendance" in svg and "+1.60" in svg
True
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from cmerisk.reports.render import figure, png
from cmerisk.spec import GROUP_TITLES

if TYPE_CHECKING:
    from cmerisk.explain_result import Explanations, PupilExplanation

#: Risk-raising and risk-lowering colours (colour-blind safe pair).
RAISES = "#c2410c"
LOWERS = "#1d4ed8"
MISSING = "#9ca3af"
SCORE_AXIS = "model score (log-odds, before calibration)"


def _title(name: str) -> str:
    return GROUP_TITLES.get(name, name.replace("_", " "))


def importance_bar_png(
    explanations: Explanations,
    *,
    level: Literal["feature", "group"] = "feature",
    top: int = 20,
) -> bytes:
    """Mean |SHAP| per feature (or group), largest at the top."""
    imp = explanations.global_importance(level=level).head(top)[::-1]
    labels = [_title(n) if level == "group" else n for n in imp.index]
    fig = figure(7, 0.9 + 0.32 * len(imp))
    ax = fig.subplots()
    ax.barh(labels, imp.to_numpy(), color=RAISES)
    ax.set_xlabel("mean |contribution| (log-odds)")
    ax.set_title(f"What the model relies on, by {level} ({len(explanations)} pupils)")
    ax.spines[["top", "right"]].set_visible(False)
    return png(fig)


def _numeric(values: pd.Series) -> np.ndarray:
    """Feature values as floats for colouring (categories as their codes)."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return pd.to_numeric(values, errors="coerce").to_numpy(
            dtype=float, na_value=np.nan
        )
    codes = pd.Categorical(values).codes.astype(float)
    codes[codes < 0] = np.nan
    return codes


def _scaled(x: np.ndarray) -> np.ndarray:
    """Values mapped to [0, 1] between their 5th and 95th percentiles."""
    ok = np.isfinite(x)
    if not ok.any():
        return np.full_like(x, np.nan)
    lo, hi = np.nanpercentile(x, [5, 95])
    if hi <= lo:
        lo, hi = np.nanmin(x), np.nanmax(x)
    span = hi - lo if hi > lo else 1.0
    return np.clip((x - lo) / span, 0, 1)


def _swarm_offsets(
    x: np.ndarray, rng: np.random.Generator, *, width: float = 0.38
) -> np.ndarray:
    """Vertical jitter proportional to the local density of ``x``."""
    if len(x) < 2 or np.ptp(x) == 0:
        return rng.uniform(-width, width, len(x)) * (0.2 if len(x) > 1 else 0)
    counts, edges = np.histogram(x, bins=60)
    density = counts[np.clip(np.searchsorted(edges, x, side="right") - 1, 0, 59)]
    return rng.uniform(-1, 1, len(x)) * width * density / counts.max()


def beeswarm_png(
    explanations: Explanations, *, top: int = 15, max_points: int = 4000, seed: int = 0
) -> bytes:
    """Each pupil's contribution per feature, coloured by the feature's value."""
    from matplotlib import colormaps

    names = list(explanations.global_importance().head(top).index)[::-1]
    n = len(explanations)
    rng = np.random.default_rng(seed)
    rows = (
        rng.choice(n, size=max_points, replace=False)
        if n > max_points
        else np.arange(n)
    )
    cmap = colormaps["viridis"]
    fig = figure(7.5, 1.0 + 0.36 * len(names))
    ax = fig.subplots()
    for pos, name in enumerate(names):
        j = explanations.feature_names.index(name)
        phi = explanations.contributions.values[rows, j]
        colour = _scaled(_numeric(explanations.data[name].iloc[rows]))
        y = pos + _swarm_offsets(phi, rng)
        known = np.isfinite(colour)
        ax.scatter(phi[~known], y[~known], s=6, c=MISSING, linewidths=0)
        ax.scatter(phi[known], y[known], s=6, c=cmap(colour[known]), linewidths=0)
    ax.axvline(0, color="#6b7280", linewidth=0.8)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("contribution to the " + SCORE_AXIS)
    ax.set_title(
        "Contributions per pupil (colour: low to high value; grey: not recorded)"
    )
    ax.spines[["top", "right"]].set_visible(False)
    from matplotlib.cm import ScalarMappable

    bar = fig.colorbar(ScalarMappable(cmap=cmap), ax=ax, ticks=[0, 1], aspect=40)
    bar.ax.set_yticklabels(["low", "high"])
    return png(fig)


def dependence_png(
    explanations: Explanations, feature: str, *, max_points: int = 4000, seed: int = 0
) -> bytes:
    """A feature's value against its contribution (categories side by side)."""
    j = explanations.feature_names.index(feature)
    n = len(explanations)
    rng = np.random.default_rng(seed)
    rows = (
        rng.choice(n, size=max_points, replace=False)
        if n > max_points
        else np.arange(n)
    )
    phi = explanations.contributions.values[rows, j]
    values = explanations.data[feature].iloc[rows]
    fig = figure(6, 4)
    ax = fig.subplots()
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        x = pd.to_numeric(values, errors="coerce").to_numpy(
            dtype=float, na_value=np.nan
        )
        known = np.isfinite(x)
        ax.scatter(x[known], phi[known], s=7, c=RAISES, alpha=0.5, linewidths=0)
        if (~known).any():
            ax.text(
                0.01,
                0.98,
                f"{int((~known).sum())} not recorded (not shown)",
                transform=ax.transAxes,
                va="top",
                fontsize=8,
                color="#374151",
            )
        ax.set_xlabel(f"{feature} (pupil's value)")
    else:
        cat = pd.Categorical(values)
        labels = [*map(str, cat.categories), "not recorded"]
        codes = np.where(cat.codes < 0, len(cat.categories), cat.codes)
        ax.scatter(
            codes + rng.uniform(-0.25, 0.25, len(codes)),
            phi,
            s=7,
            c=RAISES,
            alpha=0.5,
            linewidths=0,
        )
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        ax.set_xlabel(feature)
    ax.axhline(0, color="#6b7280", linewidth=0.8)
    ax.set_ylabel("contribution (log-odds)")
    ax.set_title(f"How {feature} moves the score")
    ax.spines[["top", "right"]].set_visible(False)
    return png(fig)


def global_plots(
    explanations: Explanations, *, top: int = 15, dependence: int = 3
) -> dict[str, bytes]:
    """The global views as ``{file name: png bytes}``: importance by feature and by
    group, a beeswarm, and dependence plots of the ``dependence`` top features."""
    out = {
        "shap_importance_features.png": importance_bar_png(
            explanations, level="feature", top=top
        ),
        "shap_importance_groups.png": importance_bar_png(explanations, level="group"),
        "shap_beeswarm.png": beeswarm_png(explanations, top=top),
    }
    for name in explanations.global_importance().head(dependence).index:
        out[f"shap_dependence_{name}.png"] = dependence_png(explanations, str(name))
    return out


def _ticks(lo: float, hi: float) -> np.ndarray:
    span = hi - lo
    step = next(s for s in (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 1e9) if span / s <= 8)
    return np.arange(np.ceil(lo / step) * step, hi + 1e-9, step)


def waterfall_svg(pupil: PupilExplanation, *, width: int = 640) -> str:
    """From the average pupil's score to this pupil's, one bar per group (SVG).

    A self-contained SVG document (no fonts, links or scripts), drawn without
    matplotlib so a few hundred reviewer cards render in a second.
    """
    items = sorted(pupil.groups.items(), key=lambda kv: -abs(kv[1]))
    row, top_pad, left, right = 30, 10, 170, 70
    rows = len(items) + 2
    height = top_pad + rows * row + 48
    running = np.cumsum([pupil.base] + [v for _, v in items])
    lo = float(min(running.min(), pupil.margin))
    hi = float(max(running.max(), pupil.margin))
    pad = 0.08 * (hi - lo or 1.0)
    lo, hi = lo - pad, hi + pad

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * (width - left - right)

    def y(i: int) -> float:
        return top_pad + i * row + row / 2

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="sans-serif" '
        f'font-size="12"><title>{escape(_waterfall_summary(pupil, items))}</title>',
    ]
    axis_y = top_pad + rows * row + 4
    for t in _ticks(lo, hi):
        parts.append(
            f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top_pad}" y2="{axis_y}" '
            'stroke="#e5e7eb"/>'
            f'<text x="{x(t):.1f}" y="{axis_y + 14}" text-anchor="middle" '
            f'fill="#374151">{t:g}</text>'
        )
    parts.append(
        f'<text x="{(left + width - right) / 2:.0f}" y="{axis_y + 34}" '
        f'text-anchor="middle" fill="#374151">{escape(SCORE_AXIS)}</text>'
    )

    def marker(i: int, v: float, label: str) -> None:
        parts.append(
            f'<text x="{left - 8}" y="{y(i) + 4:.1f}" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="{y(i) - 10:.1f}" '
            f'y2="{y(i) + 10:.1f}" stroke="#111827" stroke-width="3"/>'
            f'<text x="{x(v) + 6:.1f}" y="{y(i) + 4:.1f}">{v:+.2f}</text>'
        )

    marker(0, pupil.base, "average pupil")
    start = pupil.base
    for i, (group, value) in enumerate(items, start=1):
        a, b = sorted((x(start), x(start + value)))
        colour = RAISES if value > 0 else LOWERS
        label_x, anchor = (b + 4, "start") if value >= 0 else (a - 4, "end")
        parts.append(
            f'<text x="{left - 8}" y="{y(i) + 4:.1f}" text-anchor="end">'
            f"{escape(_title(group))}</text>"
            f'<rect x="{a:.1f}" y="{y(i) - 9:.1f}" width="{max(b - a, 1.0):.1f}" '
            f'height="18" fill="{colour}"/>'
            f'<text x="{label_x:.1f}" y="{y(i) + 4:.1f}" text-anchor="{anchor}">'
            f"{value:+.2f}</text>"
        )
        start += value
    marker(rows - 1, pupil.margin, "this pupil")
    parts.append("</svg>")
    return "".join(parts)


def _waterfall_summary(pupil: PupilExplanation, items: list[tuple[str, float]]) -> str:
    steps = ", ".join(f"{_title(g)} {v:+.2f}" for g, v in items)
    return (
        f"Model score from {pupil.base:+.2f} (average pupil) to {pupil.margin:+.2f} "
        f"(this pupil): {steps}"
    )


def png_summary(images: dict[str, bytes]) -> dict[str, Any]:
    """Sizes of rendered images (for logs and tests)."""
    return {name: len(data) for name, data in images.items()}
