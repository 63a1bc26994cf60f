"""`cmerisk train`: train, evaluate and track a model (LA tables or any features)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cmerisk.cli._common import err, handle_errors, info, out, progress, warn
from cmerisk.errors import (
    EXIT_CONFIG,
    EXIT_DATA,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_USAGE,
    ConfigError,
)

if TYPE_CHECKING:
    import pandas as pd

EPILOG = (
    "Exit codes: "
    f"{EXIT_OK} trained (whether or not the model passed the champion gates); "
    f"{EXIT_DATA} bad data (missing columns, no outcome, too few school years); "
    f"{EXIT_USAGE} bad command-line arguments; "
    f"{EXIT_CONFIG} configuration or spec problem; "
    f"{EXIT_INTERNAL} a bug in cmerisk. See docs/training.md."
)


def read_feature_table(path: Path) -> pd.DataFrame:
    """A feature table from Parquet or CSV."""
    import pandas as pd

    from cmerisk.errors import DataError

    if not path.is_file():
        raise DataError(f"no feature table at {path}")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read feature table {path}: {e}") from None
    raise DataError(f"feature table {path}: expected a .parquet or .csv file")


def _quality_sentences(by_as_of: dict[str, dict[str, int]]) -> list[str]:
    """Dirty-record counts of the feature pipeline, one sentence per as-of and kind."""
    from cmerisk.features.quality import DataQuality

    out: list[str] = []
    for day, counts in by_as_of.items():
        quality = DataQuality()
        for category, count in counts.items():
            quality.add(category, count)
        out.extend(f"as of {day}, {sentence}" for sentence in quality.describe())
    return out


def _print_result(result: Any) -> None:
    from rich.table import Table

    ev = result.evaluation
    wide = ev.comparison()
    table = Table(
        title=f"Test-year metrics ({ev.rows:,} pupils, {ev.positives} outcomes; 95% CI)"
    )
    table.add_column("metric")
    for column in wide.columns:
        table.add_column(str(column), justify="right", overflow="fold")
    for metric, row in wide.iterrows():
        table.add_row(str(metric), *[str(v) for v in row])
    out.print(table)
    out.print(f"Split: {result.split.description}", highlight=False)
    chosen = result.trained.chosen
    depths = ", ".join(
        f"{c.max_depth}: AP {c.validation_ap:.3f}" for c in result.trained.candidates
    )
    out.print(
        f"Model: max_depth {chosen.max_depth} kept ({depths}); "
        f"{chosen.best_iteration} trees; "
        f"{result.calibrator.method} calibration",
        highlight=False,
    )
    out.print(ev.verdict, highlight=False)
    if result.gates.passed:
        out.print("[bold green]Champion gates: passed[/]")
    else:
        out.print("[bold red]Champion gates: failed[/]", highlight=False)
        for failure in result.gates.failures:
            out.print(f"  - {failure}", highlight=False, markup=False)
    for note in result.gates.notes:
        out.print(f"  note: {note}", highlight=False, markup=False)
    if result.bundle_path is not None:
        out.print(f"Model bundle: {result.bundle_path}", highlight=False)
    if result.out_dir is not None:
        out.print(
            f"Run outputs (tables, plots, SHAP views, fairness): {result.out_dir}",
            highlight=False,
        )
        out.print(f"Model card: {result.out_dir / 'model_card.html'}", highlight=False)
    tracked = result.tracked
    if tracked is not None:
        alias = (
            f"alias '{tracked.champion_alias}' now points to it"
            if tracked.champion
            else f"NOT given the '{tracked.champion_alias}' alias"
        )
        out.print(
            f"MLflow: run {tracked.run_id} in {tracked.tracking_uri}; registered "
            f"{tracked.version_uri} ({alias})",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    @app.command("train", epilog=EPILOG)
    @handle_errors
    def train(
        data: Annotated[
            Path | None,
            typer.Option(
                "--data", help="Folder of the LA's raw tables (CME features are built)."
            ),
        ] = None,
        features: Annotated[
            Path | None,
            typer.Option(
                "--features", help="Any pupil-level feature table (.parquet/.csv)."
            ),
        ] = None,
        spec: Annotated[
            Path | None,
            typer.Option(
                "--spec", help="YAML spec of --features: id, target, features..."
            ),
        ] = None,
        config: Annotated[
            Path | None,
            typer.Option(
                "--config", help="Experiment config YAML (default: built-in defaults)."
            ),
        ] = None,
        out_dir: Annotated[
            Path | None,
            typer.Option(
                "--out", help="Folder for the model bundle and the run's outputs."
            ),
        ] = None,
        no_track: Annotated[
            bool, typer.Option("--no-track", help="Do not log to MLflow or register.")
        ] = False,
        quiet: Annotated[
            bool, typer.Option("--quiet", help="No progress messages.")
        ] = False,
    ) -> None:
        """Train a model: temporal split, LightGBM vs baselines, calibration, metrics,
        fairness audit, champion gates, MLflow run and registry."""
        from cmerisk.config import load_config, load_spec
        from cmerisk.pipeline import build_cme_frame, run_experiment

        if (data is None) == (features is None):
            raise ConfigError(
                "give either --data DIR or --features FILE --spec SPEC.yaml"
            )
        if features is not None and spec is None:
            raise ConfigError(
                "--features needs --spec SPEC.yaml naming the columns' roles"
            )
        if data is not None and spec is not None:
            warn("--spec is ignored with --data (the CME feature spec is used)")
        if no_track and out_dir is None:
            raise ConfigError(
                "with --no-track, give --out DIR so the model is kept somewhere"
            )
        experiment = load_config(config)

        with progress(quiet=quiet) as bar:
            if data is not None:
                task = bar.add_task("building the CME dataset", total=None)
                frame, dataset_spec = build_cme_frame(
                    data,
                    config=experiment,
                    progress=lambda done, total: bar.update(
                        task, completed=done, total=total
                    ),
                )
                bar.update(task, description="dataset built")
                findings = list(frame.attrs.get("load_findings", []))
                findings += _quality_sentences(frame.attrs.get("quality_by_as_of", {}))
                for message in findings[:10]:
                    warn(f"input data: {message}")
                if len(findings) > 10:
                    warn(f"input data: ... and {len(findings) - 10} more findings")
            elif features is not None and spec is not None:
                dataset_spec = load_spec(spec)
                frame = read_feature_table(features)
            info(
                f"{len(frame):,} rows, {len(dataset_spec.features)} features, "
                f"target {dataset_spec.target!r}",
                quiet=quiet,
            )
            step = bar.add_task("training", total=None)
            result = run_experiment(
                frame,
                spec=dataset_spec,
                config=experiment,
                tracking=not no_track,
                out_dir=out_dir,
                progress=lambda message: bar.update(step, description=message),
            )
            bar.update(step, description="done")
        for note in result.notes:
            info(f"note: {note}", quiet=quiet)
        _print_result(result)
        if result.tracked is not None and not quiet:
            err.print(
                "Compare runs in the MLflow UI: "
                ".venv/bin/mlflow ui --backend-store-uri "
                f"{result.tracked.tracking_uri}",
                highlight=False,
            )
