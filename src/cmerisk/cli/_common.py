"""What every command shares: consoles, error handling, progress bars."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from datetime import date, datetime
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from cmerisk.errors import EXIT_INTERNAL, CmeriskError, UsageError

#: Results go to stdout; messages, warnings and progress to stderr.
out = Console()
err = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")

DEBUG_ENV_VAR = "CMERISK_DEBUG"


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn :class:`~cmerisk.errors.CmeriskError` into a message and its exit code.

    Anything else is a bug: say so in one line, exit 70, and show the traceback
    only when ``CMERISK_DEBUG=1``.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except CmeriskError as e:
            err.print(f"[bold red]error:[/] {e}", highlight=False, markup=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]; no partial outputs were kept")
            raise typer.Exit(130) from None
        except Exception as e:
            if os.environ.get(DEBUG_ENV_VAR) == "1":
                raise
            err.print(
                f"[bold red]internal error[/] (a bug in cmerisk, please report it): "
                f"{type(e).__name__}: {e}\nSet {DEBUG_ENV_VAR}=1 to see the traceback.",
                highlight=False,
            )
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper


def progress(*, quiet: bool = False) -> Progress:
    """A progress display on stderr (disabled with ``--quiet`` or off a terminal)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
        transient=False,
    )


def warn(message: str) -> None:
    err.print(f"[bold yellow]warning:[/] {message}", highlight=False)


def info(message: str, *, quiet: bool = False) -> None:
    if not quiet:
        err.print(message, highlight=False)


def parse_date(value: str, *, option: str = "--as-of") -> date:
    """A YYYY-MM-DD option value as a date, or a UsageError (exit 2) naming it.

    Every command parses its dates here, so a bad date gets the same message
    and exit code from each.

    >>> parse_date("2024-05-16")
    datetime.date(2024, 5, 16)
    """
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise UsageError(
            f"{option} must be a date like 2024-05-16, got {value!r}"
        ) from None
