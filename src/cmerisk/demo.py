"""The whole job on a synthetic LA, end to end: what ``make demo`` runs.

:func:`run_demo` is the table of contents of a first look at cmerisk:

1. generate a calibrated synthetic LA (:func:`cmerisk.data.synthetic.generate_la`):
   five school years of session marks and, as a real LA holds, three more
   years of records (census, roll changes, social care, exclusions...) before
   them, with ids hashed under the PUBLIC demo key (said loudly: those ids protect
   nothing) unless ``CMERISK_PSEUDONYM_KEY`` is set;
2. build the CME dataset and train, calibrate, evaluate and audit a model,
   tracked in MLflow (:func:`cmerisk.pipeline.run_experiment`; by default a
   SQLite store ``mlflow.db`` and ``mlartifacts/`` in the working folder);
3. the model becomes the registered ``champion`` only when the gates pass; if
   they fail the demo says so plainly and still scores with the trained
   bundle, labelled "not champion" on every page;
4. batch-score every pupil on roll at the latest school year's summer census
   day, before the Year 6 -> Year 7 summer, with a capacity of 200
   (:func:`cmerisk.score.score_la`): risk list, transition list, rejects,
   summary and a reviewer page for every flagged pupil;
5. write the model card (:mod:`cmerisk.reports.model_card`) and an index page
   linking every output (``OUT/index.html``).

Every page is self-contained HTML (inline CSS, images as data URIs, no
scripts or fonts). The outputs hold pseudonymised ids only.

Examples
--------
>>> from datetime import date
>>> scoring_date(date(2025, 7, 22))
datetime.date(2025, 5, 15)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cmerisk.data.school_calendar import census_date, school_year_of
from cmerisk.errors import DataError

if TYPE_CHECKING:
    from rich.table import Table

    from cmerisk.config import ExperimentConfig

#: Sub-folders of the demo's output folder.
DATA, TRAINING, SCORING = "data", "training", "scoring"
INDEX = "index.html"
INDEX_TEMPLATE = "demo_index.html.j2"
MLFLOW_UI = ".venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db --port 5000"
CAPACITY = 200
#: The demo LA's latest school year starts in this year (2024/25): whatever the
#: number of years, the list is made at the summer census of 2024/25.
LAST_YEAR = 2024
#: Five years of session marks: the first two train the model (the attendance
#: features over last school year are covered from the second).
YEARS = 5
#: School years of records before the first year of marks: the 3-year windows
#: (social care in the last 3 years) are covered at the first training as-of.
HISTORY_YEARS = 3

Say = Callable[[str], None]


def scoring_date(last_day: date) -> date:
    """The summer census day of the school year holding ``last_day``.

    The list is made then, before the Year 6 -> Year 7 summer. When the data
    stops before that day, the previous school year's summer census is used.
    """
    day = census_date(school_year_of(last_day), "summer")
    if day > last_day:
        day = census_date(school_year_of(last_day) - 1, "summer")
    return day


def _school_year(day: str) -> str:
    """The school year of an ISO date, as ``2020/21``."""
    y = school_year_of(date.fromisoformat(day))
    return f"{y}/{(y + 1) % 100:02d}"


def _years(first: str, last: str) -> str:
    return f"{_school_year(first)} to {_school_year(last)}"


@dataclass
class DemoResult:
    """Where everything the demo wrote is, and what happened."""

    out_dir: Path
    data_dir: Path
    training_dir: Path
    scoring_dir: Path
    index: Path
    model_card_html: Path
    model_card_md: Path
    fairness_html: Path | None
    pupils_index: Path | None
    champion: bool
    gates: str
    model_ref: str
    as_of: date
    tracking_uri: str | None
    run_id: str | None
    model_version: str | None
    metrics: dict[str, str] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    demo_key: bool = False

    def outputs(self) -> list[tuple[str, Path, str]]:
        """(what, where, for whom) of every output, in reading order."""
        s = self.scoring_dir
        rows = [
            ("Start here: index of every output", self.index, "everyone"),
            ("Model card (HTML)", self.model_card_html, "reviewers, DPO"),
            ("Model card (Markdown)", self.model_card_md, "reviewers, DPO"),
        ]
        if self.fairness_html is not None:
            rows.append(("Fairness audit", self.fairness_html, "reviewers, DPO"))
        if self.pupils_index is not None:
            rows.append(("Flagged-pupil pages", self.pupils_index, "caseworkers"))
        rows += [
            ("Risk list (CSV, Parquet)", s / "risk_list.csv", "CME team"),
            (
                "Transition list by receiving school",
                s / "transition_list.csv",
                "CME team",
            ),
            ("Rejected records", s / "rejects.csv", "data team"),
            ("Scoring summary (drift, counts)", s / "summary.json", "data team"),
            ("Model bundle", self.training_dir / "model", "data scientists"),
            ("Test-year metrics and plots", self.training_dir, "data scientists"),
            ("Synthetic LA raw tables", self.data_dir, "data scientists"),
        ]
        return rows


def _console(*, quiet: bool) -> Any:
    from rich.console import Console

    return Console(stderr=True, quiet=quiet)


@contextmanager
def _step(
    name: str, text: str, *, timings: dict[str, float], console: Any
) -> Iterator[None]:
    console.print(f"[bold]{text}[/] ...", highlight=False)
    start = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - start, 1)
    console.print(f"  done in {timings[name]:.0f} s", highlight=False, style="dim")


def _key(console: Any) -> tuple[bytes, bool]:
    from cmerisk.data.pseudonymise import DEMO_KEY, DEMO_KEY_WARNING, get_key

    key = get_key(demo=True)
    if key == DEMO_KEY:
        # Loud even with --quiet: these ids protect nothing.
        from rich.console import Console

        Console(stderr=True).print(f"[bold red on yellow] {DEMO_KEY_WARNING} [/]")
    return key, key == DEMO_KEY


def run_demo(
    out_dir: Path,
    *,
    pupils: int = 50_000,
    years: int = YEARS,
    history_years: int = HISTORY_YEARS,
    seed: int = 0,
    quiet: bool = False,
    capacity: int = CAPACITY,
    config: ExperimentConfig | None = None,
) -> DemoResult:
    """Generate a synthetic LA, train and track a model, audit, score and report.

    Parameters
    ----------
    out_dir
        Folder for everything but the MLflow store (created; earlier demo
        outputs in it are replaced).
    pupils, years, seed
        Size of the synthetic LA (pupils on roll a year), school years of
        session marks, seed.
    history_years
        School years of records (census and events, no marks) before them.
    quiet
        No step messages (the demo-key warning is shown all the same).
    capacity
        Pupils the team can contact: the flagged band of the list.
    config
        Experiment config (default: the built-in defaults).

    Returns
    -------
    DemoResult
        Paths of every output, the gate outcome, test-year metrics and timings.
    """
    from cmerisk.config import ExperimentConfig
    from cmerisk.data.synthetic import generate_la
    from cmerisk.pipeline import build_cme_frame, run_experiment
    from cmerisk.reports.model_card import write_model_card
    from cmerisk.score import score_la

    config = config or ExperimentConfig()
    console = _console(quiet=quiet)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data_dir, training_dir, scoring_dir = out / DATA, out / TRAINING, out / SCORING
    timings: dict[str, float] = {}
    notes: list[str] = []
    start = time.perf_counter()

    key, demo_key = _key(console)
    with _step(
        "generate",
        f"1/5 Generating a synthetic LA ({pupils:,} pupils a year, {years} school "
        f"years of attendance, {history_years} more of records before them)",
        timings=timings,
        console=console,
    ):
        synth = generate_la(
            data_dir,
            pupils=pupils,
            years=years,
            first_year=LAST_YEAR - years + 1,
            history_years=history_years,
            seed=seed,
            key=key,
        )
    as_of = scoring_date(date.fromisoformat(synth.last_date))

    with _step(
        "dataset",
        "2/5 Building point-in-time features and labels",
        timings=timings,
        console=console,
    ):
        frame, spec = build_cme_frame(data_dir, config=config)
    with _step(
        "train",
        f"3/5 Training, evaluating and auditing on {len(frame):,} rows; "
        "tracking in MLflow",
        timings=timings,
        console=console,
    ):
        result = run_experiment(
            frame, spec=spec, config=config, tracking=True, out_dir=training_dir
        )
    tracked = result.tracked
    champion = bool(result.champion)
    bundle_path = training_dir / "model"
    if champion and tracked is not None:
        model_ref = f"models:/{tracked.registered_model}@{tracked.champion_alias}"
        gates = f"passed: registered {tracked.version_uri} as the champion"
    else:
        model_ref = str(bundle_path)
        gates = f"FAILED: {result.gates.reason}"
        notes.append(
            "The model did NOT pass the champion gates, so it was registered but not "
            f"made the champion ({result.gates.reason}). The list below was scored "
            "with the trained bundle anyway, to show the workflow: it is NOT a "
            "champion model's list."
        )
        console.print(f"[bold red]Champion gates failed:[/] {result.gates.reason}")
        console.print(
            "Scoring with the trained bundle anyway, labelled 'not champion'.",
            style="bold red",
        )

    with _step(
        "score",
        f"4/5 Scoring every pupil on roll at {as_of:%d %B %Y} (capacity {capacity})",
        timings=timings,
        console=console,
    ):
        summary = score_la(
            data_dir,
            model=model_ref,
            as_of=as_of,
            capacity=capacity,
            out_dir=scoring_dir,
            explain="listed",
        )
    notes.extend(summary.warnings)

    with _step(
        "report",
        "5/5 Writing the model card and the index page",
        timings=timings,
        console=console,
    ):
        fairness = training_dir / "fairness.html"
        bands = summary.counts["bands"]
        scoring_info = {
            "as_of": as_of.isoformat(),
            "expires_on": summary.expires_on.isoformat(),
            "scored": summary.counts["scored"],
            "flagged": bands["flagged"],
            "watch": bands["watch"],
        }
        card_html, card_md = write_model_card(
            training_dir,
            out_dir=out,
            tracked=tracked,
            data_source=(
                f"A synthetic local authority made by cmerisk.data.synthetic "
                f"({pupils:,} pupils on roll a year; session marks for {years} "
                f"school years {_years(synth.marks_first_date, synth.last_date)}, "
                "census and event records from "
                f"{_school_year(synth.first_date)}; seed {seed}); "
                "no real pupils."
            ),
            synthetic=True,
            fairness_page=f"{TRAINING}/fairness.html" if fairness.is_file() else None,
            scoring=scoring_info,
        )
        pupils_index = scoring_dir / "pupils" / "index.html"
        result_obj = DemoResult(
            out_dir=out,
            data_dir=data_dir,
            training_dir=training_dir,
            scoring_dir=scoring_dir,
            index=out / INDEX,
            model_card_html=card_html,
            model_card_md=card_md,
            fairness_html=fairness if fairness.is_file() else None,
            pupils_index=pupils_index if pupils_index.is_file() else None,
            champion=champion,
            gates=gates,
            model_ref=model_ref,
            as_of=as_of,
            tracking_uri=tracked.tracking_uri if tracked else None,
            run_id=tracked.run_id if tracked else None,
            model_version=tracked.version if tracked else None,
            metrics=_key_metrics(training_dir, k=config.evaluation.primary_capacity),
            counts=dict(summary.counts),
            timings=timings,
            notes=notes,
            demo_key=demo_key,
        )
        timings["total"] = round(time.perf_counter() - start, 1)
        write_index(result_obj, synth_rows=synth.rows)
    timings["total"] = round(time.perf_counter() - start, 1)
    return result_obj


def _key_metrics(training_dir: Path, *, k: int) -> dict[str, str]:
    """The headline test-year rows, model beside the baselines."""
    import pandas as pd

    table = pd.read_csv(training_dir / "comparison.csv", index_col=0)
    rows = ["ROC-AUC", "average precision", f"precision @ {k}", f"recall @ {k}"]
    return {
        r: "; ".join(f"{c} {v}" for c, v in table.loc[r].items())
        for r in rows
        if r in table.index
    }


def write_index(result: DemoResult, *, synth_rows: dict[str, int]) -> Path:
    """Write ``index.html``: one self-contained page linking every output."""
    import json

    import pandas as pd

    from cmerisk.atomic import write_text
    from cmerisk.reports.render import environment

    env = environment()
    out = result.out_dir
    comparison = pd.read_csv(result.training_dir / "comparison.csv", index_col=0)
    summary = json.loads((result.scoring_dir / "summary.json").read_text())
    risk = pd.read_csv(result.scoring_dir / "risk_list.csv", nrows=10)
    top = risk[["rank", "probability", "band", "nc_year", "reason_1"]].to_dict(
        "records"
    )
    links = [
        (what, Path(os.path.relpath(path, out)).as_posix(), who)
        for what, path, who in result.outputs()
        if path != result.index
    ]
    html = env.get_template(INDEX_TEMPLATE).render(
        r=result,
        links=links,
        metric_columns=[str(c) for c in comparison.columns],
        metric_rows=[
            (str(name), [str(v) for v in row]) for name, row in comparison.iterrows()
        ],
        summary=summary,
        top=top,
        synth_rows=synth_rows,
        mlflow_ui=MLFLOW_UI,
    )
    write_text(result.index, html)
    return result.index


def outputs_table(result: DemoResult) -> Table:
    """A rich table of every output: what, where, for whom."""
    from rich.table import Table

    table = Table(title="cmerisk demo: where everything is", title_justify="left")
    table.add_column("output")
    table.add_column("where", overflow="fold")
    table.add_column("for")
    for what, path, who in result.outputs():
        table.add_row(what, str(path), who)
    if result.tracking_uri:
        table.add_row(
            "MLflow run and registered model",
            f"{result.tracking_uri} (run {result.run_id}, version "
            f"{result.model_version})",
            "data scientists",
        )
    return table


def check_out_dir(out_dir: Path) -> None:
    """Refuse an output folder that is a file."""
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"--out {out_dir} exists and is not a folder")


__all__ = [
    "MLFLOW_UI",
    "DemoResult",
    "outputs_table",
    "run_demo",
    "scoring_date",
    "write_index",
]
