"""`cmerisk explain`: reasons and reviewer pages for a feature table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cmerisk.cli._common import handle_errors, info, out, warn
from cmerisk.errors import EXIT_CONFIG, EXIT_DATA, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    import pandas as pd

EPILOG = (
    "Exit codes: "
    f"{EXIT_OK} ok; "
    f"{EXIT_DATA} bad data (unreadable table, missing columns, duplicate ids); "
    f"{EXIT_USAGE} bad command-line arguments; "
    f"{EXIT_CONFIG} model problem (not found, incomplete or changed bundle, "
    "a reason template that cannot be spoken); "
    f"{EXIT_INTERNAL} a bug in cmerisk (please report it)."
)


def read_table(path: Path) -> pd.DataFrame:
    """A feature table from Parquet or CSV, as a DataFrame."""
    import pandas as pd

    from cmerisk.errors import DataError

    if not path.is_file():
        raise DataError(f"no feature table at {path}")
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read the feature table {path}: {e}") from None


def resolve(model: str) -> Path:
    """A local bundle folder for ``model`` (a folder or a registry reference)."""
    from cmerisk.tracking import resolve_model

    return resolve_model(model)


def _parse_ids(value: str) -> str:
    if value not in ("flagged", "listed", "all"):
        raise typer.BadParameter(f"{value!r} is not one of flagged, listed, all")
    return value


def register(app: typer.Typer) -> None:
    @app.command("explain", epilog=EPILOG)
    @handle_errors
    def explain(
        model: Annotated[
            str,
            typer.Option(
                "--model",
                help="Model bundle folder, or a registry reference like "
                "models:/cmerisk@champion.",
            ),
        ],
        features: Annotated[
            Path,
            typer.Option(
                "--features", help="Feature table (Parquet or CSV), one row per pupil."
            ),
        ],
        out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")],
        ids: Annotated[
            str,
            typer.Option(
                "--ids",
                parser=_parse_ids,
                metavar="flagged|listed|all",
                help="Whom to explain: the flagged list (default), flagged and "
                "watch, or every pupil (slower: minutes for a large county).",
            ),
        ] = "flagged",
        capacity: Annotated[
            int | None,
            typer.Option(
                "--capacity",
                min=1,
                help="Size of the flagged list. Default: the model's config.",
            ),
        ] = None,
        plots: Annotated[
            bool,
            typer.Option(
                "--plots/--no-plots", help="Also write global SHAP plots (PNG)."
            ),
        ] = False,
        quiet: Annotated[
            bool, typer.Option("--quiet", help="Print nothing but errors.")
        ] = False,
    ) -> None:
        """Write plain-English reasons (reasons.csv/.parquet) and a reviewer card per
        flagged pupil (pupils/index.html).

        A score prompts support from a person; it never decides anything.
        """
        from cmerisk.explain_outputs import write_explanations
        from cmerisk.model.bundle import load_bundle

        bundle = load_bundle(resolve(model))
        frame = read_table(features)
        run = write_explanations(
            frame,
            bundle,
            out_dir=out_dir,
            which=ids,  # type: ignore[arg-type]
            capacity=capacity,
            plots=plots,
        )
        for note in run.notes:
            warn(note)
        info(
            f"explained {run.explained} of {run.pupils} pupils in "
            f"{run.explain_seconds:.1f}s ({run.pupils_per_second:,.0f} pupils/s); "
            f"{run.cards} reviewer card(s)",
            quiet=quiet,
        )
        if not quiet:
            out.print(f"reasons: {out_dir / 'reasons.csv'}", highlight=False)
            out.print(
                f"reviewer pages: {out_dir / 'pupils' / 'index.html'}", highlight=False
            )
