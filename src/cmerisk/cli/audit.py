"""`cmerisk audit`: the fairness audit of a model, or of any scored table.

Three ways in:

* ``--model M --data DIR --as-of DATE``: build the features and labels of the
  LA's raw tables at ``DATE`` (the label window must end within the data),
  score them with the model bundle and audit;
* ``--model M --features FILE``: the same on a feature table that already
  holds the labels;
* ``--predictions FILE --spec SPEC.yaml``: any dataset, a table with the id,
  target, a score column and the sensitive columns.

Writes ``fairness.json`` and ``fairness.html`` (atomically) and prints the
missed-children rate by group, the flagged disparities and the gate outcome.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from cmerisk.cli._common import err, handle_errors, info, out, parse_date, warn
from cmerisk.errors import EXIT_CONFIG, EXIT_DATA, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from cmerisk.config import ExperimentConfig
    from cmerisk.fairness_audit import FairnessAudit

EPILOG = (
    "Exit codes: "
    f"{EXIT_OK} ok (also when disparities are flagged: read the report); "
    f"{EXIT_DATA} bad data (unreadable table, missing column, labels not 0/1); "
    f"{EXIT_USAGE} bad command-line arguments; "
    f"{EXIT_CONFIG} configuration, spec or model problem; "
    f"{EXIT_INTERNAL} a bug in cmerisk (please report it)."
)


def _usage(message: str) -> NoReturn:
    """Refuse a bad combination of options (exit code 2, like Typer's own)."""
    err.print(f"[bold red]usage error:[/] {message}", highlight=False)
    raise typer.Exit(EXIT_USAGE)


def read_table(path: Path, *, what: str) -> pd.DataFrame:
    """A table from Parquet or CSV."""
    import pandas as pd

    from cmerisk.errors import DataError

    if not path.is_file():
        raise DataError(f"no {what} at {path}")
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read the {what} {path}: {e}") from None


def _column(frame: pd.DataFrame, name: str, *, table: str) -> pd.Series:
    from cmerisk.errors import DataError

    if name not in frame.columns:
        shown = ", ".join(map(str, frame.columns[:12]))
        raise DataError(f"{table} has no column {name!r} (it has: {shown})")
    return frame[name]


def _target(
    frame: pd.DataFrame, *, column: str, positive: Any, table: str
) -> np.ndarray:
    """Outcomes as 0/1: the spec's ``positive`` value is 1 (0/1 and booleans pass)."""
    import numpy as np

    values = _column(frame, column, table=table)
    if values.isna().any():
        return values.to_numpy()  # the audit names the row with the missing value
    if set(values.unique()) <= {0, 1}:  # also True/False
        return values.to_numpy()
    return np.asarray(values == positive, dtype=np.int8)


def _spec_defaults(spec: Any) -> ExperimentConfig:
    """Default config, auditing the spec's sensitive columns (any dataset)."""
    from cmerisk.config import load_config

    config = load_config(None)
    names = spec.sensitive_names
    if not names:
        return config
    fair = config.fairness.model_copy(
        update={
            "groups": names,
            "intersections": [
                i for i in config.fairness.intersections if set(i) <= set(names)
            ],
        }
    )
    return config.model_copy(update={"fairness": fair})


def _labelled_frame(
    bundle: Any, *, data: Path, as_of: date, quiet: bool
) -> pd.DataFrame:
    """Features and labels at ``as_of`` from an LA's raw tables."""
    import tempfile
    from datetime import timedelta

    from cmerisk.data.load import load_tables
    from cmerisk.dataset import data_end, make_dataset
    from cmerisk.errors import DataError

    horizon = bundle.config.dataset.horizon_days
    with tempfile.TemporaryDirectory(prefix="cmerisk-audit-") as work:
        tables = load_tables(
            data, as_of=as_of, errors="raise", work_dir=Path(work)
        ).tables
        end = data_end(tables)
        if as_of + timedelta(days=horizon) > end:
            raise DataError(
                f"{data}: the {horizon}-day label window after {as_of} ends on "
                f"{as_of + timedelta(days=horizon)}, after the data ends ({end}); "
                "an audit needs known outcomes: pick an earlier --as-of"
            )
        info(f"building features and labels at {as_of}", quiet=quiet)
        return make_dataset(tables, as_of_dates=[as_of], horizon_days=horizon)


def _print_summary(audit: FairnessAudit, failures: list[str]) -> None:
    from rich.table import Table

    from cmerisk.reports.fairness_report import summary_table

    table = Table(title="Missed-children rate by group", title_justify="left")
    for column in ("grouping", "group", "pupils", "missed", "ratio", "status"):
        table.add_column(
            column, justify="left" if column in ("grouping", "group") else "right"
        )
    for row in summary_table(audit).itertuples(index=False):
        table.add_row(*(str(v) for v in row))
    out.print(table)
    flags = audit.flags
    if flags:
        out.print(f"[bold]flagged disparities ({len(flags)}):[/]")
        for f in flags:
            out.print(f"  - {f.sentence(ci_level=audit.ci_level)}", highlight=False)
    else:
        out.print("No disparity is flagged.")
    if failures:
        out.print("[bold red]Fairness gates fail:[/]")
        for line in failures:
            out.print(f"  - {line}", highlight=False)
    else:
        out.print("Fairness gates pass.")


def register(app: typer.Typer) -> None:
    @app.command("audit", epilog=EPILOG)
    @handle_errors
    def audit_command(
        out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")],
        model: Annotated[
            str | None,
            typer.Option(
                "--model",
                help="Model bundle folder, or a registry reference like "
                "models:/cmerisk@champion.",
            ),
        ] = None,
        data: Annotated[
            Path | None,
            typer.Option(
                "--data", help="Folder of the LA's raw tables (with --model)."
            ),
        ] = None,
        as_of: Annotated[
            str | None,
            typer.Option(
                "--as-of",
                metavar="YYYY-MM-DD",
                help="As-of date to audit (with --data); its label window must end "
                "within the data.",
            ),
        ] = None,
        features: Annotated[
            Path | None,
            typer.Option(
                "--features",
                help="Feature table with labels (Parquet or CSV), instead of --data.",
            ),
        ] = None,
        predictions: Annotated[
            Path | None,
            typer.Option(
                "--predictions",
                help="Any scored table (Parquet or CSV): id, target, score and the "
                "sensitive columns. Needs --spec.",
            ),
        ] = None,
        spec_path: Annotated[
            Path | None,
            typer.Option("--spec", help="Dataset spec (YAML) for --predictions."),
        ] = None,
        score_column: Annotated[
            str, typer.Option("--score-column", help="Score column of --predictions.")
        ] = "score",
        margin_column: Annotated[
            str | None,
            typer.Option(
                "--margin-column",
                help="Raw model score of --predictions (e.g. the log-odds margin) "
                "that breaks ties in the score, as scoring does. Default: ties go "
                "by id.",
            ),
        ] = None,
        config_path: Annotated[
            Path | None,
            typer.Option(
                "--config",
                help="Experiment config (YAML): fairness groups, gates, capacity. "
                "Default: the model's own config; for --predictions, the defaults "
                "auditing the spec's sensitive columns.",
            ),
        ] = None,
        capacity: Annotated[
            int | None,
            typer.Option(
                "--capacity",
                min=1,
                help="Pupils the team can contact (top-k flagged). Default: the "
                "config's evaluation.primary_capacity.",
            ),
        ] = None,
        mitigation: Annotated[
            bool,
            typer.Option(
                "--mitigation/--no-mitigation",
                help="Also analyse group-aware allocations (not deployed).",
            ),
        ] = True,
        quiet: Annotated[
            bool, typer.Option("--quiet", help="Print nothing but errors.")
        ] = False,
    ) -> None:
        """Audit missed children, false flags and calibration by group, with
        intervals and small-number suppression; write fairness.json and fairness.html.

        A score prompts support from a person; it never decides anything.
        """
        from cmerisk.config import load_config, load_spec
        from cmerisk.fairness import audit
        from cmerisk.reports.fairness_report import write_fairness_report

        config: ExperimentConfig | None = (
            load_config(config_path) if config_path is not None else None
        )
        y_margin: np.ndarray | None = None
        if predictions is not None:
            if model is not None or data is not None or features is not None:
                _usage(
                    "--predictions cannot be combined with --model, --data or "
                    "--features"
                )
            if spec_path is None:
                _usage("--predictions needs --spec SPEC.yaml")
            spec = load_spec(spec_path)
            config = config or _spec_defaults(spec)
            frame = read_table(predictions, what="predictions table")
            table = f"predictions table {predictions.name}"
            y_score = _column(frame, score_column, table=table).to_numpy()
            if margin_column is not None:
                y_margin = _column(frame, margin_column, table=table).to_numpy()
            source = f"predictions {predictions.name}"
        else:
            if model is None:
                _usage(
                    "give --model (with --data and --as-of, or --features), "
                    "or --predictions with --spec"
                )
            if (data is None) == (features is None):
                _usage("with --model, give either --data or --features")
            if margin_column is not None:
                _usage(
                    "--margin-column goes with --predictions (--model scores itself)"
                )
            when = date.min  # read below when --data is given
            if data is not None:
                if as_of is None:
                    _usage("--data needs --as-of YYYY-MM-DD")
                when = parse_date(as_of)
            from cmerisk.cli.explain import resolve
            from cmerisk.model.bundle import load_bundle

            bundle = load_bundle(resolve(model))
            spec = bundle.spec
            config = config or bundle.config
            if data is not None:
                frame = _labelled_frame(bundle, data=data, as_of=when, quiet=quiet)
                source = f"{data.name} at {when}"
            else:
                assert features is not None
                frame = read_table(features, what="feature table")
                source = f"features {features.name}"
            table = "feature table"
            # ranked as scoring ranks: calibrated probability, ties by the margin
            y_score, y_margin = bundle.predict_scores(frame)
        y_true = _target(frame, column=spec.target, positive=spec.positive, table=table)
        k = min(capacity or config.evaluation.primary_capacity, len(frame)) or 1
        result = audit(
            frame,
            spec=spec,
            config=config.fairness,
            y_true=y_true,
            y_score=y_score,
            y_margin=y_margin,
            capacity=k,
            seed=config.seed,
            mitigation=mitigation,
        )
        for note in result.skipped:
            warn(note)
        failures = result.gate_failures(config.gates)
        paths = write_fairness_report(
            result,
            out_dir,
            gates=config.gates,
            subtitle=f"{source}: {len(frame):,} pupils, top {k:,} flagged",
        )
        if not quiet:
            _print_summary(result, failures)
            out.print(f"report: {paths['html']}", highlight=False)
            out.print(f"machine-readable: {paths['json']}", highlight=False)
