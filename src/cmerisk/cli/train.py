"""`cmerisk train`: placeholder until this command is built (being written now)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("train")
    def _placeholder() -> None:
        """(not built yet)"""
        raise typer.Exit(2)
