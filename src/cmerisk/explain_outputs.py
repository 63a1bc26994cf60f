"""Explain a feature table with a model bundle and write what a reviewer reads.

What ``cmerisk explain`` runs. Every pupil in the table is scored with the
bundle (calibrated probability), ranked and banded exactly as scoring does
(:mod:`cmerisk.scoring.bands`, capacities from the bundle's own config), and
the pupils asked for are explained. Written to ``out_dir``, each file
atomically:

===========================  ====================================================
``reasons.csv``, ``.parquet``  one row per explained pupil, highest risk first:
                              id, rank, band, probability, model score, the top
                              reasons (text, group, actionable, feature,
                              contribution) and each group's contribution
``pupils/``                   a reviewer card per flagged pupil and an index
``plots/``                    global SHAP views (with ``plots=True``)
``explain_summary.json``      counts, method, time taken, pupils per second
===========================  ====================================================
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from cmerisk import duck
from cmerisk.errors import DataError
from cmerisk.explain_inputs import check_frame

if TYPE_CHECKING:
    from cmerisk.model.bundle import ModelBundle

Which = Literal["flagged", "listed", "all"]
WHICH_BANDS: dict[str, tuple[str, ...]] = {
    "flagged": ("flagged",),
    "listed": ("flagged", "watch"),
    "all": ("flagged", "watch", "low"),
}


@dataclass(frozen=True)
class ExplainRun:
    """What an explanation run did (no pupil ids)."""

    pupils: int
    explained: int
    flagged: int
    cards: int
    seconds: float
    explain_seconds: float
    pupils_per_second: float
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    as_of: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_date(value: Any) -> date | None:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    return None if pd.isna(stamp) else stamp.date()


def latest_as_of(
    frame: pd.DataFrame, time_column: str | None
) -> tuple[pd.DataFrame, Any, list[str]]:
    """Keep the rows of the latest as-of date when the table holds several."""
    if not time_column or time_column not in frame.columns or frame.empty:
        return frame, None, []
    values = frame[time_column]
    latest = values.max()
    if values.nunique(dropna=True) <= 1:
        return frame, latest, []
    keep = values == latest
    note = (
        f"the table holds {values.nunique()} as-of dates in {time_column!r}; "
        f"explained the latest ({latest}), {int((~keep).sum())} earlier row(s) left out"
    )
    return frame[keep].reset_index(drop=True), latest, [note]


def rank_bands(
    ids: np.ndarray,
    probability: np.ndarray,
    margin: np.ndarray,
    *,
    capacity: int,
    watch_capacity: int,
    watch_min_probability: float,
) -> pd.DataFrame:
    """``rank`` and ``band`` per pupil, the same rule scoring uses."""

    from cmerisk.scoring.bands import rank_and_band

    scores = pd.DataFrame(
        {
            "pupil_id": ids.astype(str),
            "probability": probability,
            "margin": margin,
            "row": np.arange(len(ids)),
        }
    )
    con = duck.connect()
    try:
        ranked = rank_and_band(
            con.from_df(scores),
            capacity=capacity,
            watch_capacity=watch_capacity,
            watch_min_probability=watch_min_probability,
        ).df()
    finally:
        con.close()
    return ranked.sort_values("row").reset_index(drop=True)[["rank", "band"]]


def _write_table(table: pd.DataFrame, out_dir: Path, stem: str) -> list[Path]:
    from cmerisk.atomic import atomic_path

    paths = []
    for suffix in (".csv", ".parquet"):
        target = out_dir / f"{stem}{suffix}"
        with atomic_path(target) as tmp:
            if suffix == ".csv":
                table.to_csv(tmp, index=False)
            else:
                table.to_parquet(tmp, index=False)
        paths.append(target)
    return paths


def write_explanations(
    frame: pd.DataFrame,
    bundle: ModelBundle,
    *,
    out_dir: str | Path,
    which: Which = "flagged",
    capacity: int | None = None,
    plots: bool = False,
    model_name: str | None = None,
) -> ExplainRun:
    """Score, rank, explain and write reasons and reviewer pages.

    Parameters
    ----------
    frame
        A feature table holding the bundle's id and feature columns (one row
        per pupil; when it has the spec's time column with several dates, the
        latest is explained).
    bundle
        The model bundle.
    out_dir
        Output folder (created if needed).
    which
        ``flagged`` (default), ``listed`` (flagged and watch) or ``all``.
    capacity
        Size of the flagged list (default: the bundle's ``scoring.capacity``).
    plots
        Also write the global SHAP plots of the explained pupils.
    model_name
        How pages name the model (default: from the bundle's metadata).
    """
    from cmerisk.atomic import write_json
    from cmerisk.explain import explain_bundle
    from cmerisk.reports.pupil_cards import write_pupil_pages

    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = bundle.spec
    frame, as_of, notes = latest_as_of(frame, spec.time)
    check_frame(frame, spec)
    if frame.empty:
        raise DataError("the feature table has no rows to explain")
    scoring = bundle.config.scoring
    cap = capacity if capacity is not None else scoring.capacity
    probability, margin = bundle.predict_scores(frame)
    ids = frame[spec.id].astype(str).to_numpy(dtype=object)
    ranked = rank_bands(
        ids,
        probability,
        margin,
        capacity=cap,
        watch_capacity=scoring.watch_capacity,
        watch_min_probability=scoring.watch_min_probability,
    )
    band = ranked["band"].to_numpy(dtype=object)
    rank = ranked["rank"].to_numpy()
    rows = np.flatnonzero(np.isin(band, WHICH_BANDS[which]))
    rows = rows[np.argsort(rank[rows], kind="stable")]
    chosen = frame.iloc[rows].reset_index(drop=True)

    t0 = time.perf_counter()
    ex = explain_bundle(chosen, bundle, band=band[rows])
    explain_seconds = time.perf_counter() - t0

    table = ex.summary_frame().rename(columns={"id": spec.id, "margin": "model_score"})
    table.insert(1, "rank", rank[rows])
    groups = ex.group_frame().drop(columns="id").add_prefix("contribution_")
    table = pd.concat([table, groups], axis=1)
    files = _write_table(table, out, "reasons")

    day = _as_date(as_of)
    flagged = np.flatnonzero(band[rows] == "flagged")
    name = model_name or str(bundle.metadata.get("model_name", "cmerisk model"))
    version = bundle.metadata.get("model_version") or bundle.metadata.get("version")
    pages = write_pupil_pages(
        ex.subset(flagged),
        out_dir=out / "pupils",
        model=f"{name} {version}" if version else name,
        as_of=day or as_of,
        valid_until=day + timedelta(days=scoring.valid_days) if day else None,
        horizon=(
            f"by {day + timedelta(days=bundle.config.dataset.horizon_days)}"
            if day
            else None
        ),
        ranks=rank[rows][flagged],
        listed=cap,
    )
    files.append(pages[0])
    if plots and len(ex):
        from cmerisk.atomic import atomic_path
        from cmerisk.reports.explain_plots import global_plots

        (out / "plots").mkdir(exist_ok=True)
        for fname, png in global_plots(ex).items():
            with atomic_path(out / "plots" / fname) as tmp:
                tmp.write_bytes(png)
            files.append(out / "plots" / fname)
    run = ExplainRun(
        pupils=len(frame),
        explained=len(ex),
        flagged=int((band == "flagged").sum()),
        cards=len(pages) - 1,
        seconds=time.perf_counter() - started,
        explain_seconds=explain_seconds,
        pupils_per_second=len(ex) / explain_seconds if explain_seconds > 0 else 0.0,
        files=[str(f.relative_to(out)) for f in files],
        notes=notes,
        as_of=None if as_of is None else str(day or as_of),
    )
    write_json(out / "explain_summary.json", run.to_dict())
    return run


def global_plots_for(
    frame: pd.DataFrame,
    bundle: ModelBundle,
    *,
    max_rows: int = 5_000,
    seed: int = 0,
) -> dict[str, bytes]:
    """The global SHAP views of a bundle on a feature table, as PNGs.

    For a training run's record (e.g. the test year): importance by feature and
    by group, a beeswarm and dependence plots, from exact contributions of up
    to ``max_rows`` pupils (a seeded sample; the latest as-of date when the
    table has several). Returns ``{file name: png bytes}`` ready to log.
    """
    from cmerisk.explain import explain_bundle
    from cmerisk.reports.explain_plots import global_plots

    rows, _, _ = latest_as_of(frame, bundle.spec.time)
    if len(rows) > max_rows:
        rows = rows.sample(n=max_rows, random_state=seed)
    if rows.empty:
        return {}
    return global_plots(explain_bundle(rows.reset_index(drop=True), bundle))
