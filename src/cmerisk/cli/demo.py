"""`cmerisk demo`: the whole job on a synthetic LA (what ``make demo`` runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cmerisk.cli._common import handle_errors, out
from cmerisk.demo import YEARS
from cmerisk.errors import EXIT_CONFIG, EXIT_DATA, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE

EPILOG = (
    "Exit codes: "
    f"{EXIT_OK} every output written (whether or not the model passed the champion "
    "gates: the summary says which); "
    f"{EXIT_DATA} a data problem; {EXIT_USAGE} bad command-line arguments; "
    f"{EXIT_CONFIG} a configuration or model problem; "
    f"{EXIT_INTERNAL} a bug in cmerisk."
)


def register(app: typer.Typer) -> None:
    @app.command("demo", epilog=EPILOG)
    @handle_errors
    def demo(
        out_dir: Annotated[
            Path, typer.Option("--out", help="Folder for every output.")
        ] = Path("demo"),
        pupils: Annotated[
            int, typer.Option(min=500, help="Pupils on roll each school year.")
        ] = 50_000,
        years: Annotated[
            int, typer.Option(min=4, max=12, help="School years of data.")
        ] = YEARS,
        seed: Annotated[int, typer.Option(help="Random seed of the synthetic LA.")] = 0,
        quiet: Annotated[
            bool, typer.Option("--quiet", help="No step messages.")
        ] = False,
    ) -> None:
        """Generate a synthetic LA, train and track a model in MLflow, audit its
        fairness, register the champion, score the latest year before the summer
        transition, and write the model card, fairness audit and pupil pages.

        A score prompts a person to offer support; it never decides anything by
        itself.
        """
        from cmerisk.demo import MLFLOW_UI, check_out_dir, outputs_table, run_demo

        check_out_dir(out_dir)
        result = run_demo(out_dir, pupils=pupils, years=years, seed=seed, quiet=quiet)
        out.print(outputs_table(result))
        if result.champion:
            out.print(f"[bold green]Champion gates {result.gates}[/]", highlight=False)
        else:
            out.print(
                f"[bold red]Champion gates {result.gates}[/]\n"
                "[bold red]The list was scored with the trained bundle, which is NOT "
                "the champion.[/]",
                highlight=False,
            )
        for name, row in result.metrics.items():
            out.print(f"  {name}: {row}", highlight=False)
        out.print(
            f"Finished in {result.timings.get('total', 0):.0f} s. "
            f"Open {result.index} in a browser to start.",
            highlight=False,
        )
        out.print("Compare runs in the MLflow UI (then open http://127.0.0.1:5000):")
        out.print(f"  {MLFLOW_UI}", highlight=False, markup=False)
