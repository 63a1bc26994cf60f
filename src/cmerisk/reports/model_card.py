"""The model card: one page a data-protection officer or reviewer can read.

:func:`model_card` gathers what a training run wrote under its output folder
(``cmerisk train --out DIR`` or :func:`cmerisk.pipeline.run_experiment` with
``out_dir``): the bundle's metadata, config and spec (``model/``), the split
and gates (``run.json``), the metrics beside the baselines
(``comparison.csv``, ``differences.csv``), the calibration curve and plot, and
the fairness audit (``fairness.json``) and the global SHAP views
(``explain/``). Nothing is recomputed, so the card
says exactly what the run measured. :func:`render_html` (self-contained: CSS
inline, plots as data URIs, no scripts or fonts) and :func:`render_markdown`
turn it into pages; :func:`write_model_card` writes both atomically.

The card leads with intended use and misuse (a score prompts support from a
person; never sanctions, never an automated decision), then data and time
window, metrics with intervals beside the baselines, calibration, the
fairness summary (missed-children rate first, small groups shown as ``c``),
limitations, the human review and challenge process, and pointers for the
LA's DPIA (UK GDPR Art. 35; Art. 22 as amended by the Data (Use and Access)
Act 2025). It reads only aggregates: no pupil rows or ids reach it.

Examples
--------
>>> interval_text({"value": 0.09, "ci_low": 0.05, "ci_high": 0.13})
'9.0% (5.0%-13.0%)'
>>> interval_text("c"), interval_text(None)
('c', '–')
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from cmerisk.atomic import write_text
from cmerisk.errors import DataError
from cmerisk.reports.render import data_uri, environment
from cmerisk.spec import GROUP_TITLES

if TYPE_CHECKING:
    from cmerisk.tracking import TrackedRun

HTML_TEMPLATE = "model_card.html.j2"
MARKDOWN_TEMPLATE = "model_card.md.j2"
HTML_FILE = "model_card.html"
MARKDOWN_FILE = "model_card.md"
CALIBRATION_PNG = "plots/calibration.png"
CAPACITY_PNG = "plots/precision_recall_at_k.png"

#: Plots of a run folder the card shows when present: ``(title, path)``. The
#: SHAP views are the training run's ``explain/`` plots of the test year.
RUN_IMAGES = (
    ("Calibration", CALIBRATION_PNG),
    ("Capacity", CAPACITY_PNG),
    (
        "What drives the score: mean |SHAP| by reason group, test year",
        "explain/shap_importance_groups.png",
    ),
    (
        "Each feature's contribution for test-year pupils (SHAP beeswarm)",
        "explain/shap_beeswarm.png",
    ),
)
SUPPRESSED = "c"
UNDEFINED = "–"

#: Files of a run folder the card needs (the fairness audit is optional).
REQUIRED = ("model/metadata.json", "model/config.json", "model/spec.json", "run.json")

STATUS_TEXT = {
    "flagged": "flagged",
    "uncertain": "outside band, uncertain",
    "within band": "within band",
    "suppressed": SUPPRESSED,
    "reference": "reference",
    "undefined": UNDEFINED,
}


def interval_text(cell: Any, *, percent: bool = True) -> str:
    """A published audit cell as text: ``value (low-high)``, ``c`` or a dash."""
    if cell is None:
        return UNDEFINED
    if cell == SUPPRESSED:
        return SUPPRESSED
    if isinstance(cell, Mapping):
        value, lo, hi = cell.get("value"), cell.get("ci_low"), cell.get("ci_high")
    else:
        value, lo, hi = cell, None, None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return UNDEFINED

    def fmt(x: float) -> str:
        return f"{x:.1%}" if percent else f"{x:.2f}"

    text = fmt(float(value))
    if lo is not None and hi is not None:
        text += f" ({fmt(float(lo))}-{fmt(float(hi))})"
    return text


def _small(n: int, min_cell: int) -> str:
    """A count of pupils, or ``c`` when it is below the minimum cell size."""
    return SUPPRESSED if n < min_cell else f"{n:,}"


def _count(cell: Any) -> str:
    if cell is None:
        return UNDEFINED
    if cell == SUPPRESSED:
        return SUPPRESSED
    return f"{int(cell):,}"


@dataclass(frozen=True)
class FairnessSummary:
    """The fairness audit as the card shows it (published cells only)."""

    capacity: int
    pupils: str
    positives: str
    missed_rate: str
    false_positive_rate: str
    parity_band: tuple[float, float]
    ci_level: float
    tables: list[dict[str, Any]]
    flags: list[str]
    intersections_flagged: int
    suppressed_cells: int
    total_cells: int
    skipped: list[str]


@dataclass(frozen=True)
class ModelCard:
    """What a model card says, gathered from one training run's folder."""

    model_name: str
    model_version: str
    cmerisk_version: str
    git_commit: str
    data_digest: str
    data_source: str
    synthetic: bool
    split: dict[str, Any]
    dataset: dict[str, Any]
    features: list[dict[str, Any]]
    protected: list[str]
    chosen: dict[str, Any]
    metrics: pd.DataFrame
    primary_capacity: int
    gate_metric: str
    differences: list[dict[str, str]]
    verdict: str
    gates: dict[str, Any]
    calibration: dict[str, Any]
    calibration_bins: list[dict[str, str]]
    fairness: FairnessSummary | None
    registry: dict[str, str] | None
    package_versions: dict[str, str]
    limitations: list[str]
    images: dict[str, bytes] = field(default_factory=dict)
    fairness_page: str | None = None
    scoring: dict[str, Any] | None = None
    min_cell: int = 10


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"model card: cannot read {path}: {e}") from None


def _fairness(data: Mapping[str, Any]) -> FairnessSummary:
    settings = data["settings"]
    overall = data["overall"]
    tables: list[dict[str, Any]] = []
    crossed = 0
    cells = hidden = 0
    for g in data.get("groupings", []):
        for group in g["groups"]:
            for value in group["metrics"].values():
                cells += 1
                hidden += value == SUPPRESSED
        disparities = {
            d["group"]: d
            for d in g.get("disparities", [])
            if d["metric"] == "missed_rate"
        }
        if len(g["columns"]) > 1:
            crossed += sum(d.get("status") == "flagged" for d in disparities.values())
            continue
        rows = []
        for group in g["groups"]:
            m = group["metrics"]
            d = disparities.get(group["group"], {})
            status = d.get("status", UNDEFINED)
            if group["group"] == g["reference"]:
                status = "reference"
            rows.append(
                {
                    "label": group["label"],
                    "pupils": _count(m.get("pupils")),
                    "positives": _count(m.get("positives")),
                    "missed_rate": interval_text(m.get("missed_rate")),
                    "false_positive_rate": interval_text(m.get("false_positive_rate")),
                    "ratio": UNDEFINED
                    if status == "reference"
                    else interval_text(d.get("ratio"), percent=False),
                    "status": status,
                    "status_text": STATUS_TEXT.get(status, status),
                }
            )
        tables.append(
            {
                "title": g["title"],
                "protected": bool(g.get("protected")),
                "reference": g["reference_label"],
                "rows": rows,
            }
        )
    flags = []
    for f in data.get("flags", []):
        flags.append(
            f["sentence"] if isinstance(f, Mapping) and "sentence" in f else str(f)
        )
    return FairnessSummary(
        capacity=int(settings["capacity"]),
        pupils=_count(overall.get("pupils")),
        positives=_count(overall.get("positives")),
        missed_rate=interval_text(overall.get("missed_rate")),
        false_positive_rate=interval_text(overall.get("false_positive_rate")),
        parity_band=tuple(settings["parity_band"]),
        ci_level=float(settings["ci_level"]),
        tables=tables,
        flags=flags,
        intersections_flagged=crossed,
        suppressed_cells=hidden,
        total_cells=cells,
        skipped=list(data.get("skipped", [])),
    )


def _calibration_bins(run_dir: Path) -> list[dict[str, str]]:
    path = run_dir / "calibration_curve.csv"
    if not path.is_file():
        return []
    curve = pd.read_csv(path)
    curve = curve[curve["model"] == "model"]
    return [
        {
            "bin": str(int(r.bin) + 1),
            "count": f"{int(r.count):,}",
            "predicted": f"{r.mean_predicted:.2%}",
            "observed": f"{r.observed_rate:.2%}",
        }
        for r in curve.itertuples(index=False)
    ]


def _limitations(
    *,
    synthetic: bool,
    test_positives: int,
    horizon: int,
    fairness: FairnessSummary | None,
    min_cell: int,
) -> list[str]:
    out = []
    if synthetic:
        out.append(
            "Synthetic data. This run was trained and tested on a simulated local "
            "authority, calibrated to published national figures. Its numbers show "
            "that the method works end to end; they say nothing about how well a "
            "model will do on any real authority's records. Retrain and re-audit on "
            "the LA's own data before any use."
        )
    few = (
        f"{test_positives:,}"
        if test_positives >= min_cell
        else f"fewer than {min_cell} (shown as c)"
    )
    out += [
        "The label is recorded CME episodes only: a child who went missing but was "
        "never recorded on the LA's CME register counts as not missing. The model "
        "learns who gets recorded, which depends on how well schools and the LA "
        "notice, and may under-find children whose absence goes unreported.",
        f"Elective home education is a competing outcome. A pupil who moves to EHE "
        f"within the {horizon}-day window is not a CME case here; EHE is lawful and "
        "is never a reason to flag a family.",
        f"One test year holds only {few} children who went missing, so "
        "every metric has a wide interval; read the intervals, not only the "
        "estimates.",
        "Drift: the model is fixed at training time. Attendance codes, recording "
        "practice, school reorganisations and policy change; scoring checks every "
        "feature's population stability (PSI) against the training data and warns, "
        "and the model should be retrained and re-audited at least every school "
        "year.",
        f"Small groups: any count or rate on fewer than {min_cell} pupils is "
        "suppressed (shown as c), so errors in small groups cannot be judged from "
        "this card. Suppressed groups need case review, not statistics.",
        "Probabilities are calibrated on one later school year; they describe pupils "
        "like these in that year, not a forecast for one child.",
    ]
    if fairness is not None and fairness.skipped:
        out.append("Not audited: " + "; ".join(fairness.skipped) + ".")
    return out


def model_card(
    run_dir: str | Path,
    *,
    tracked: TrackedRun | None = None,
    data_source: str | None = None,
    synthetic: bool = False,
    images: Mapping[str, bytes] | None = None,
    fairness_page: str | None = None,
    scoring: Mapping[str, Any] | None = None,
) -> ModelCard:
    """Gather a model card from a training run's output folder.

    Parameters
    ----------
    run_dir
        The folder a run wrote (``model/``, ``run.json``, ``comparison.csv``,
        ``fairness.json``, ``plots/``...).
    tracked
        Where the run went in MLflow (run id, registered version, champion).
    data_source
        One sentence on where the data came from (default: the LA's records,
        identified by digest).
    synthetic
        The data is simulated: said first among the limitations.
    images
        Extra plots to show (``{title: png}``); a title of :data:`RUN_IMAGES`
        replaces the run folder's plot.
    fairness_page
        Relative link to the full fairness audit page, when there is one.
    scoring
        What a scoring run with this model produced (``as_of``, counts), shown
        when given.

    Raises
    ------
    DataError
        A file the card needs is missing or unreadable.
    """
    run = Path(run_dir)
    missing = [name for name in REQUIRED if not (run / name).is_file()]
    if missing:
        raise DataError(
            f"model card: {run} is not a training run folder (missing "
            f"{', '.join(missing)}); give the --out folder of cmerisk train"
        )
    meta = _read_json(run / "model/metadata.json")
    config = _read_json(run / "model/config.json")
    spec = _read_json(run / "model/spec.json")
    summary = _read_json(run / "run.json")
    comparison = pd.read_csv(run / "comparison.csv", index_col=0)
    primary = int(config["evaluation"]["primary_capacity"])
    gate_metric = str(config["gates"]["metric"]).replace("primary", str(primary))
    differences = []
    if (run / "differences.csv").is_file():
        d = pd.read_csv(run / "differences.csv")
        for r in d[d["metric"] == gate_metric].itertuples(index=False):
            differences.append(
                {
                    "baseline": str(r.baseline).replace("_", " "),
                    "difference": f"{r.estimate:+.3f} "
                    f"({r.ci_low:+.3f} to {r.ci_high:+.3f})",
                }
            )
    fairness = None
    if (run / "fairness.json").is_file():
        fairness = _fairness(_read_json(run / "fairness.json"))
    pictures: dict[str, bytes] = {}
    for title, name in RUN_IMAGES:
        if (run / name).is_file():
            pictures[title] = (run / name).read_bytes()
    pictures.update(images or {})
    groups: dict[str, list[str]] = {}
    for f in spec["features"]:
        groups.setdefault(f["group"], []).append(f["name"])
    features = [
        {"group": GROUP_TITLES.get(g, g), "count": len(names), "names": names}
        for g, names in groups.items()
    ]
    slices = summary["split"].get("slices", {})
    test_positives = int(slices.get("test", {}).get("positives", 0))
    horizon = int(config["dataset"]["horizon_days"])
    digest = str(meta.get("data_digest", ""))
    registry = None
    if tracked is not None:
        registry = {
            "tracking_uri": tracked.tracking_uri,
            "run_id": tracked.run_id,
            "version_uri": tracked.version_uri,
            "version": tracked.version,
            "alias": tracked.champion_alias,
            "champion": "yes" if tracked.champion else "no",
        }
    return ModelCard(
        model_name=str(meta.get("model_name", "cmerisk")),
        model_version=str(meta.get("model_version", "unversioned")),
        cmerisk_version=str(meta.get("cmerisk_version", "unknown")),
        git_commit=str(meta.get("git_commit") or "unknown"),
        data_digest=str(meta.get("data_digest", "")),
        data_source=data_source
        or f"The LA's own records (dataset digest {digest[:12]}).",
        synthetic=synthetic,
        split=summary["split"],
        dataset={
            "as_of_terms": ", ".join(config["dataset"]["as_of_terms"]),
            "horizon_days": horizon,
            "rows": int(meta.get("data_schema", {}).get("rows", 0)),
            "target": spec["target"],
            "description": spec.get("description", ""),
        },
        features=features,
        protected=list(spec.get("protected", [])),
        chosen={
            "max_depth": meta.get("max_depth"),
            "trees": meta.get("best_iteration"),
            "calibration": meta.get("calibration"),
            "candidates": summary.get("depth_candidates", []),
        },
        metrics=comparison,
        primary_capacity=primary,
        gate_metric=gate_metric,
        differences=differences,
        verdict=str(summary.get("verdict", meta.get("verdict", ""))),
        gates=summary.get("gates", meta.get("gates", {})),
        calibration=summary.get("calibration", {}),
        calibration_bins=_calibration_bins(run),
        fairness=fairness,
        registry=registry,
        package_versions=dict(meta.get("package_versions", {})),
        limitations=_limitations(
            synthetic=synthetic,
            test_positives=test_positives,
            horizon=horizon,
            fairness=fairness,
            min_cell=int(config["fairness"]["min_cell"]),
        ),
        images=pictures,
        fairness_page=fairness_page,
        scoring=dict(scoring) if scoring is not None else None,
        min_cell=int(config["fairness"]["min_cell"]),
    )


def _context(card: ModelCard) -> dict[str, Any]:
    metrics = card.metrics
    primary_rows = {
        f"precision @ {card.primary_capacity}",
        f"recall @ {card.primary_capacity}",
        f"lift @ {card.primary_capacity}",
    }
    return {
        "card": card,
        "metric_columns": [str(c) for c in metrics.columns],
        "metric_rows": [
            {
                "name": str(name),
                "cells": [str(v) for v in row],
                "primary": str(name) in primary_rows,
            }
            for name, row in metrics.iterrows()
        ],
        "ci": "95%",
        "slices": {
            name: {
                "rows": f"{int(part.get('rows', 0)):,}",
                "positives": _small(int(part.get("positives", 0)), card.min_cell),
            }
            for name, part in card.split.get("slices", {}).items()
        },
        "years": card.split.get("years", {}),
    }


def render_html(card: ModelCard) -> str:
    """The card as one self-contained HTML page (plots embedded as data URIs)."""
    images = {title: data_uri(png) for title, png in card.images.items()}
    env = environment(html=True, keep_trailing_newline=True)
    return env.get_template(HTML_TEMPLATE).render(**_context(card), images=images)


def render_markdown(
    card: ModelCard, *, image_links: Mapping[str, str] | None = None
) -> str:
    """The card as Markdown; ``image_links`` maps an image title to a relative path."""
    env = environment(html=False, keep_trailing_newline=True)
    return env.get_template(MARKDOWN_TEMPLATE).render(
        **_context(card), image_links=dict(image_links or {})
    )


def write_model_card(
    run_dir: str | Path,
    *,
    out_dir: str | Path | None = None,
    tracked: TrackedRun | None = None,
    data_source: str | None = None,
    synthetic: bool = False,
    images: Mapping[str, bytes] | None = None,
    fairness_page: str | None = None,
    scoring: Mapping[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``model_card.html`` and ``model_card.md`` for a training run.

    ``out_dir`` defaults to ``run_dir``. The Markdown links the run's own plot
    files when they are reachable from ``out_dir``; the HTML embeds them.
    Returns the paths (HTML, Markdown).
    """
    run = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run
    card = model_card(
        run,
        tracked=tracked,
        data_source=data_source,
        synthetic=synthetic,
        images=images,
        fairness_page=fairness_page,
        scoring=scoring,
    )
    links = {}
    for title, name in RUN_IMAGES:
        if (run / name).is_file():
            links[title] = Path(
                os.path.relpath((run / name).resolve(), out.resolve())
            ).as_posix()
    out.mkdir(parents=True, exist_ok=True)
    html_path, md_path = out / HTML_FILE, out / MARKDOWN_FILE
    write_text(html_path, render_html(card))
    write_text(md_path, render_markdown(card, image_links=links))
    return html_path, md_path


def key_numbers(card: ModelCard, *, rows: Sequence[str] | None = None) -> pd.DataFrame:
    """The headline rows of the metrics table (for a README or a notebook)."""
    k = card.primary_capacity
    wanted = list(
        rows
        or (
            "ROC-AUC",
            "average precision",
            f"precision @ {k}",
            f"recall @ {k}",
            f"lift @ {k}",
        )
    )
    return card.metrics.loc[[r for r in wanted if r in card.metrics.index]]


__all__ = [
    "FairnessSummary",
    "ModelCard",
    "interval_text",
    "key_numbers",
    "model_card",
    "render_html",
    "render_markdown",
    "write_model_card",
]
