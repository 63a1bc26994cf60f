"""`cmerisk features`: point-in-time features (and labels) at one as-of, as Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cmerisk.cli._common import handle_errors, info, parse_date, progress, warn
from cmerisk.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd


def write_parquet_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` via a temporary file in the same folder."""
    from cmerisk.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def register(app: typer.Typer) -> None:
    @app.command("features")
    @handle_errors
    def features(
        data: Annotated[
            Path, typer.Option("--data", help="Folder of the LA's raw tables.")
        ],
        as_of: Annotated[
            str, typer.Option("--as-of", help="Scoring date, YYYY-MM-DD.")
        ],
        out: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
        labels: Annotated[
            bool,
            typer.Option(
                "--labels", help="Add the cme and ehe labels (needs cme_episodes)."
            ),
        ] = False,
        horizon_days: Annotated[
            int | None,
            typer.Option(
                "--horizon-days", help="Label window in days (default: the config's)."
            ),
        ] = None,
        quiet: Annotated[
            bool, typer.Option("--quiet", help="No progress or summary.")
        ] = False,
    ) -> None:
        """Build point-in-time features for every pupil on roll at --as-of."""
        from cmerisk.config import ExperimentConfig
        from cmerisk.data.load import read_tables
        from cmerisk.features import build_feature_frame
        from cmerisk.features.build import STEPS
        from cmerisk.labels import cme_label

        day = parse_date(as_of)
        horizon = horizon_days or ExperimentConfig().dataset.horizon_days
        if horizon <= 0:
            raise ConfigError(f"--horizon-days must be positive, got {horizon}")
        with progress(quiet=quiet) as bar:
            task = bar.add_task("reading tables", total=len(STEPS) + 2)
            tables = read_tables(data)
            bar.update(task, completed=1, description="building features")
            result = build_feature_frame(
                tables,
                as_of=day,
                progress=lambda done, total: bar.update(
                    task, completed=1 + done, description=f"features: {STEPS[done - 1]}"
                ),
            )
            frame = result.frame
            if labels:
                bar.update(task, description="labels")
                lab = cme_label(tables, as_of=day, horizon_days=horizon)
                frame = frame.merge(
                    lab[["pupil_id", "cme", "ehe"]], on="pupil_id", how="left"
                )
            frame.attrs.clear()
            bar.update(task, description="writing", completed=len(STEPS) + 1)
            write_parquet_atomic(frame, out)
            bar.update(task, completed=len(STEPS) + 2, description="done")
        for sentence in result.quality.describe():
            warn(sentence)
        left_out = {
            k: v
            for k, v in result.cohort_counts.items()
            if k not in ("seen", "on_roll") and v
        }
        summary = (
            f"{len(frame):,} pupils on roll at {day.isoformat()} "
            f"({result.attendance_source} attendance), "
            f"{frame.shape[1]} columns -> {out}"
        )
        if left_out:
            summary += "; not on roll: " + ", ".join(
                f"{k.replace('_', ' ')} {v}" for k, v in left_out.items()
            )
        if labels:
            summary += f"; cme = 1 for {int(frame['cme'].sum())} within {horizon} days"
        info(summary, quiet=quiet)
