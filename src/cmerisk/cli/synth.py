"""`cmerisk synth`: write a calibrated synthetic LA, and show how it meets its targets.

``cmerisk synth --out DIR`` simulates an LA (default 50,000 pupils a year over
four school years from 2021/22) and writes every raw table as Parquet;
``--history-years N`` adds N school years of records (census, roll changes,
social care, exclusions...) before the first year of session marks.
``--report`` then prints target vs achieved for what was written; given with
only ``--out`` (and ``--like``), it measures an existing folder instead.
Pupil ids are keyed hashes of the UPNs under ``CMERISK_PSEUDONYM_KEY``
(``--demo`` allows the public demo key, loudly); ``--raw-upn`` writes raw
UPNs, for testing the pseudonymiser only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cmerisk.cli._common import err, handle_errors, info, out, progress, warn

if TYPE_CHECKING:
    from cmerisk.data.synthetic import CalibrationReport, SynthSummary

DEFAULT_PUPILS, DEFAULT_YEARS, DEFAULT_FIRST_YEAR, DEFAULT_LA_CODE = (
    50_000,
    4,
    2021,
    "330",
)


def print_summary(summary: SynthSummary) -> None:
    from rich.table import Table

    table = Table(
        title=f"Synthetic LA written to {summary.out_dir}", title_justify="left"
    )
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in summary.rows.items():
        extra = f" ({summary.attendance_parts} parts)" if name == "attendance" else ""
        table.add_row(name, f"{rows:,}{extra}")
    out.print(table)
    history = (
        f"records from {summary.first_date}, session marks from "
        f"{summary.marks_first_date}"
        if summary.history_years
        else f"school days {summary.first_date}"
    )
    out.print(
        f"{history} .. {summary.last_date}; "
        f"ids: {'pseudonymised' if summary.pseudonymised else 'RAW UPNs'}"
    )


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "year":
        return f"{value:.0f}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def print_report(report: CalibrationReport) -> None:
    from rich.table import Table

    title = "Calibration: target vs achieved" + (
        f" (like LA {report.like})" if report.like else ""
    )
    table = Table(title=title, title_justify="left")
    for name in ("measure", "target", "band", "achieved", "95% interval", "", "src"):
        table.add_column(
            name, justify="right" if name in ("target", "achieved") else "left"
        )
    sources: list[str] = []
    for row in report.rows:
        t = row.target
        if t.source not in sources:
            sources.append(t.source)
        mark = {
            True: "[green]pass[/]",
            False: "[yellow]miss (noise)[/]"
            if row.within_noise
            else "[bold red]FAIL[/]",
            None: "[dim]info[/]",
        }[row.passed]
        interval = (
            f"{_fmt(row.interval[0], t.unit)} - {_fmt(row.interval[1], t.unit)}"
            if row.interval
            else ""
        )
        table.add_row(
            f"{t.label} [dim]({t.unit})[/]",
            _fmt(t.value, t.unit),
            f"{_fmt(t.low, t.unit)} - {_fmt(t.high, t.unit)}",
            _fmt(row.achieved, t.unit),
            interval,
            mark,
            f"[{sources.index(t.source) + 1}]",
        )
    out.print(table)
    for i, source in enumerate(sources, 1):
        out.print(f"[dim][{i}] {source}[/]", highlight=False)
    out.print(report.summary())


def register(app: typer.Typer) -> None:
    @app.command("synth")
    @handle_errors
    def synth(
        out_dir: Annotated[
            Path,
            typer.Option(
                "--out", help="Folder to write (or, with --report alone, to measure)."
            ),
        ],
        pupils: Annotated[
            int | None,
            typer.Option(help="Pupils on roll each school year (default 50000)."),
        ] = None,
        years: Annotated[
            int | None, typer.Option(help="Consecutive school years (default 4).")
        ] = None,
        seed: Annotated[
            int | None,
            typer.Option(help="Random seed: same seed, same bytes (default 0)."),
        ] = None,
        first_year: Annotated[
            int | None,
            typer.Option(help="First school year, 2021 = 2021/22 (default 2021)."),
        ] = None,
        history_years: Annotated[
            int | None,
            typer.Option(
                help="School years of records (census, events) before the first "
                "year of session marks (default 0)."
            ),
        ] = None,
        la_code: Annotated[
            str | None,
            typer.Option(help="3-digit LA number in the UPNs (default 330)."),
        ] = None,
        like: Annotated[
            str | None,
            typer.Option(help="Take this LA's published rates (absence, SEN, CIN)."),
        ] = None,
        raw_upn: Annotated[
            bool,
            typer.Option(
                "--raw-upn", help="Write raw UPNs (to test the pseudonymiser)."
            ),
        ] = False,
        demo: Annotated[
            bool,
            typer.Option(
                "--demo", help="Allow the PUBLIC demo key when no key is set."
            ),
        ] = False,
        report: Annotated[
            bool, typer.Option("--report", help="Print target vs achieved.")
        ] = False,
        quiet: Annotated[
            bool, typer.Option("--quiet", help="No progress bar.")
        ] = False,
    ) -> None:
        """Write a calibrated synthetic LA: every raw table as Parquet."""
        from cmerisk.data.synthetic import calibration_report, generate_la

        explicit = (pupils, years, seed, first_year, la_code, history_years)
        measure_only = report and not raw_upn and all(v is None for v in explicit)
        if measure_only and out_dir.is_dir() and any(out_dir.iterdir()):
            print_report(calibration_report(out_dir, like=like))
            return
        key = None
        if raw_upn:
            warn(
                "--raw-upn: writing RAW UPNs (personal identifiers in real data). "
                "Use this only to test the pseudonymiser."
            )
        else:
            from cmerisk.data.pseudonymise import DEMO_KEY, DEMO_KEY_WARNING, get_key

            key = get_key(demo=demo)
            if key == DEMO_KEY:
                err.print(f"[bold red on yellow] {DEMO_KEY_WARNING} [/]")
        with progress(quiet=quiet) as bar:
            tasks: dict[str, object] = {}

            def update(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done, total=total)  # type: ignore[arg-type]

            summary = generate_la(
                out_dir,
                pupils=DEFAULT_PUPILS if pupils is None else pupils,
                years=DEFAULT_YEARS if years is None else years,
                seed=0 if seed is None else seed,
                first_year=DEFAULT_FIRST_YEAR if first_year is None else first_year,
                la_code=DEFAULT_LA_CODE if la_code is None else la_code,
                history_years=0 if history_years is None else history_years,
                like=like,
                raw_upn=raw_upn,
                key=key,
                progress=update,
            )
        print_summary(summary)
        if report:
            info("measuring against the targets...", quiet=quiet)
            print_report(calibration_report(out_dir, like=like))
