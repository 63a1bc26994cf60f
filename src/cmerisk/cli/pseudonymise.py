"""`cmerisk pseudonymise`: replace every UPN in a folder of tables by its keyed id.

The key comes from ``CMERISK_PSEUDONYM_KEY``; without it the command refuses
(exit 4) unless ``--demo`` is given, which uses the public demo key and says so
loudly. Rows whose UPN is invalid are not copied: they are counted, and listed
by file, row number and problem (never by value) in the output folder's
``_pseudonymise_rejects.csv``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cmerisk.cli._common import err, handle_errors, info, out, warn


def register(app: typer.Typer) -> None:
    @app.command("pseudonymise")
    @handle_errors
    def pseudonymise(
        in_dir: Annotated[
            Path, typer.Option("--in", help="Folder of raw tables holding real UPNs.")
        ],
        out_dir: Annotated[
            Path,
            typer.Option(
                "--out", help="New or empty folder for the pseudonymised tables."
            ),
        ],
        demo: Annotated[
            bool,
            typer.Option(
                "--demo",
                help="Without CMERISK_PSEUDONYM_KEY, use the public demo key "
                "(synthetic data only).",
            ),
        ] = False,
        quiet: Annotated[
            bool, typer.Option("--quiet", help="No summary table.")
        ] = False,
    ) -> None:
        """Replace UPNs (format and check letter validated) by HMAC-SHA256 ids."""
        from rich.table import Table

        from cmerisk.data.pseudonymise import DEMO_KEY, DEMO_KEY_WARNING, get_key
        from cmerisk.data.pseudonymise_folder import pseudonymise_folder

        key = get_key(demo=demo)
        if key == DEMO_KEY:
            err.print(f"[bold white on red] {DEMO_KEY_WARNING} [/]", highlight=False)
        summary = pseudonymise_folder(in_dir, out_dir, key=key)
        if not quiet:
            table = Table(title=f"Pseudonymised into {out_dir}", title_justify="left")
            for name in (
                "table",
                "rows in",
                "rows out",
                "rejected",
                "columns left out",
            ):
                table.add_column(
                    name,
                    justify="left"
                    if name in ("table", "columns left out")
                    else "right",
                )
            for name, rows_in in summary.rows_in.items():
                table.add_row(
                    name,
                    f"{rows_in:,}",
                    f"{summary.rows_out[name]:,}",
                    f"{summary.rejected[name]:,}",
                    ", ".join(summary.dropped_columns.get(name, ())),
                )
            out.print(table)
        for skipped in summary.skipped_files:
            warn(f"not a contract table, not copied: {skipped}")
        rejected = sum(summary.rejected.values())
        if rejected:
            reasons = "; ".join(f"{p}: {n:,}" for p, n in summary.problems.items())
            warn(
                f"{rejected:,} row(s) with an invalid or empty UPN were not copied "
                f"({reasons}); "
                f"see {summary.rejects_file}"
            )
        info(f"{summary.pupils:,} distinct valid UPNs pseudonymised", quiet=quiet)
