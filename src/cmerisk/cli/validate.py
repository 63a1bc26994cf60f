"""`cmerisk validate`: check an LA's raw tables against the contract.

Prints, per table and column, each rule broken, how many rows break it and a
few examples (identifiers never shown), then exits 1; when the tables can be
used as they are, prints their row counts and date ranges and exits 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cmerisk.cli._common import err, handle_errors, info, out, parse_date
from cmerisk.errors import EXIT_DATA, EXIT_OK

if TYPE_CHECKING:
    from cmerisk.data.findings import ValidationReport

_STYLE = {"error": "bold red", "reject": "yellow", "warning": "cyan"}


def _write_json(report: ValidationReport, path: Path) -> None:
    """Write the report (no identifiers) atomically."""
    from cmerisk.atomic import write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, report.to_dict())


def print_findings(report: ValidationReport) -> None:
    """The findings as a table on stdout: table, column, rule, severity, count..."""
    from rich.table import Table

    table = Table(title="Problems found", title_justify="left", show_lines=False)
    for name in ("table", "column", "rule", "severity", "rows", "examples"):
        table.add_column(
            name, overflow="fold", justify="right" if name == "rows" else "left"
        )
    for f in report.findings:
        words = f.words + (f" ({f.detail})" if f.detail else "")
        table.add_row(
            f.table,
            f.column or "",
            f"[bold]{f.rule}[/]\n{words}",
            f"[{_STYLE[f.severity]}]{f.severity}[/]",
            f"{f.count:,}" if f.count else "",
            "\n".join(f.examples),
        )
    out.print(table)


def print_summary(report: ValidationReport) -> None:
    """Row counts and date ranges of the tables read."""
    from rich.table import Table

    table = Table(title="Tables", title_justify="left")
    for name in ("table", "rows", "pupils", "dates", "first", "last", "rejected"):
        table.add_column(
            name, justify="right" if name in ("rows", "pupils", "rejected") else "left"
        )
    for s in report.summaries:
        table.add_row(
            s.table,
            f"{s.rows:,}",
            "" if s.pupils is None else f"{s.pupils:,}",
            s.date_column or "",
            s.first.isoformat() if s.first else "",
            s.last.isoformat() if s.last else "",
            f"{report.dropped_rows.get(s.table, 0):,}",
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    @app.command("validate")
    @handle_errors
    def validate(
        data: Annotated[
            Path, typer.Argument(help="Folder of the LA's raw tables (CSV or Parquet).")
        ],
        as_of: Annotated[
            str | None,
            typer.Option(
                "--as-of", help="Flag records dated on or after this date (YYYY-MM-DD)."
            ),
        ] = None,
        json_out: Annotated[
            Path | None,
            typer.Option(
                "--json", help="Also write the report as JSON (no identifiers)."
            ),
        ] = None,
        quiet: Annotated[
            bool, typer.Option("--quiet", help="Print only problems.")
        ] = False,
    ) -> None:
        """Check every table against the contract; exit 1 if any row or table is bad.

        Errors make a table unusable (missing table or column, unreadable file,
        wrong type); rejects are rows that loading sets aside (unknown codes,
        duplicate keys, unknown pupils, invalid dates...); warnings are usable
        but worth a look (records after --as-of, legacy codes, marks outside
        registration). Identifiers never appear in the output.
        """
        from cmerisk.data.load import validate_folder

        day = parse_date(as_of) if as_of else None
        report = validate_folder(data, as_of=day)
        if json_out is not None:
            _write_json(report, json_out)
        if report.findings:
            print_findings(report)
        if not quiet:
            print_summary(report)
        n_err, n_rej = len(report.errors), len(report.reject_findings)
        if report.ok:
            info(
                f"[green]valid[/]: {len(report.summaries)} tables"
                + (f", {len(report.warnings)} warning(s)" if report.warnings else ""),
                quiet=quiet,
            )
            raise typer.Exit(EXIT_OK)
        rows = sum(report.dropped_rows.values())
        err.print(
            f"[bold red]not valid[/]: {n_err} error(s) (unusable tables), "
            f"{n_rej} rejecting "
            f"rule(s) setting aside {rows:,} row(s)",
            highlight=False,
        )
        raise typer.Exit(EXIT_DATA)
