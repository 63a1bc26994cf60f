"""`cmerisk score`: raw LA tables in, a capacity-sized risk list with reasons out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.progress import TaskID

from cmerisk.cli._common import handle_errors, info, out, parse_date, progress, warn
from cmerisk.errors import (
    EXIT_CONFIG,
    EXIT_DATA,
    EXIT_INTERNAL,
    EXIT_KEY,
    EXIT_OK,
    EXIT_USAGE,
)

EPILOG = (
    "Exit codes: "
    f"{EXIT_OK} ok (lists written); "
    f"{EXIT_DATA} bad data (missing or unreadable tables or columns, wrong types, "
    "no pupil "
    "on roll, data that cannot make the model's features); "
    f"{EXIT_USAGE} bad command-line arguments; "
    f"{EXIT_CONFIG} model or configuration problem (model not found, incomplete or "
    "changed bundle, other package versions); "
    f"{EXIT_KEY} pseudonymisation key problem; "
    f"{EXIT_INTERNAL} a bug in cmerisk (please report it). "
    "Rows that cannot be used do not stop the run: they are listed in rejects.csv. "
    "See docs/scoring.md."
)

_STAGE_TEXT = {
    "split": "Splitting tables by pupil",
    "score": "Validating, building features, predicting",
    "explain": "Explaining listed pupils",
}


def _parse_explain(value: str) -> str:
    if value not in ("listed", "all", "none"):
        raise typer.BadParameter(f"{value!r} is not one of listed, all, none")
    return value


def register(app: typer.Typer) -> None:
    @app.command("score", epilog=EPILOG)
    @handle_errors
    def score(
        data: Annotated[
            Path,
            typer.Option(
                "--data", help="Folder of the LA's raw tables (pseudonymised)."
            ),
        ],
        model: Annotated[
            str,
            typer.Option(
                "--model",
                help="Model bundle folder, or a registry reference like "
                "models:/cmerisk@champion.",
            ),
        ],
        as_of: Annotated[
            str,
            typer.Option(
                "--as-of",
                metavar="YYYY-MM-DD",
                help="Date the list is for; only records dated before it are used.",
            ),
        ],
        out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")],
        capacity: Annotated[
            int | None,
            typer.Option(
                "--capacity",
                min=1,
                help="Pupils the team can contact (the flagged band). "
                "Default: the model's config.",
            ),
        ] = None,
        explain: Annotated[
            str | None,
            typer.Option(
                "--explain",
                parser=_parse_explain,
                metavar="listed|all|none",
                help="Whom to give reasons: listed (flagged and watch; default), "
                "all, or none.",
            ),
        ] = None,
        quiet: Annotated[
            bool,
            typer.Option(
                "--quiet", help="No progress bar or summary (for schedulers)."
            ),
        ] = False,
    ) -> None:
        """Score every pupil on roll: risk list, transition list, rejects and summary.

        A score prompts a person to offer support; it never decides anything by itself.
        """
        day = parse_date(as_of)  # before the model or any table is read
        from cmerisk.score import score_la

        mode: Literal["listed", "all", "none"] | None = explain  # type: ignore[assignment]

        with progress(quiet=quiet) as bar:
            tasks: dict[str, TaskID] = {}

            def on_progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(
                        _STAGE_TEXT.get(stage, stage), total=total
                    )
                bar.update(tasks[stage], completed=done, total=total)

            summary = score_la(
                data,
                model=model,
                as_of=day,
                capacity=capacity,
                out_dir=out_dir,
                explain=mode,
                progress=on_progress,
            )
        for message in summary.warnings:
            warn(message)
        c = summary.counts
        bands = c["bands"]
        info(
            f"{c['scored']} pupils scored, {c['rejected']} rejected, "
            f"{c['not_on_roll']} not on "
            f"roll at {summary.as_of.isoformat()} ({c['pupils_in']} in the data). "
            f"Flagged {bands['flagged']}, watch {bands['watch']}, low {bands['low']}. "
            f"List valid until {summary.expires_on.isoformat()}.",
            quiet=quiet,
        )
        if not quiet:
            out.print(f"Outputs in {summary.out_dir}", highlight=False)
