"""The ``cmerisk`` command: a thin Typer app over the library functions.

Each command lives in its own module here, parses its options, calls one
library function and prints. Heavy libraries (mlflow, shap, lightgbm) are
imported inside the commands so that ``cmerisk --help`` stays fast.
"""

from __future__ import annotations

import typer

from cmerisk.cli import (
    audit,
    demo,
    explain,
    features,
    pseudonymise,
    score,
    synth,
    train,
    validate,
)

app = typer.Typer(
    name="cmerisk",
    help=(
        "Find children at risk of going missing from education before it happens. "
        "A score prompts a person to offer support; it never decides anything by itself."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

for _module in (
    synth,
    validate,
    pseudonymise,
    features,
    train,
    audit,
    explain,
    score,
    demo,
):
    _module.register(app)


def main() -> None:
    """Entry point of the ``cmerisk`` console script and ``python -m cmerisk``."""
    app()
