"""``generate_la``: simulate a local authority and write its raw tables.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> out = Path(tempfile.mkdtemp()) / "la"
>>> s = generate_la(out, pupils=600, years=1, seed=3, key=b"doctest-key-0123456789")
>>> sorted(p.name for p in out.iterdir())[:4]
['attendance', 'attendance_termly.parquet', 'census.parquet', 'cme_episodes.parquet']
>>> s.rows["attendance"] > 100_000, s.pseudonymised
(True, True)

With ``history_years`` the LA's records (census, roll changes, social care,
exclusions, ...) reach back before its first school year of session marks, as
a real LA's do:

>>> s = generate_la(out, pupils=600, years=1, history_years=1, seed=3, raw_upn=True)
>>> s.first_date, s.marks_first_date, s.last_date
('2020-09-01', '2021-09-01', '2022-08-31')
>>> import shutil; shutil.rmtree(out.parent)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from cmerisk.data.pseudonymise import pseudonymise_many
from cmerisk.data.synthetic.attendance import VOCAB, AttendancePainter
from cmerisk.data.synthetic.contract_tables import arrow_schema, build_tables
from cmerisk.data.synthetic.lifecourse import LifeCourse, simulate
from cmerisk.data.synthetic.params import params_for
from cmerisk.data.synthetic.writer import (
    ATTENDANCE_DIR,
    GENERATOR,
    MANIFEST,
    AttendanceParts,
    staged_folder,
    write_json,
    write_table,
)
from cmerisk.errors import ConfigError

#: Bump when the same seed and parameters would give different data.
GENERATOR_VERSION = "1.0"
#: Pupils per attendance chunk (bounds memory; part of what fixes the bytes).
CHUNK_PUPILS = 10_000

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate_la` wrote."""

    out_dir: Path
    rows: dict[str, int]
    attendance_parts: int
    pupils: int
    first_date: str
    last_date: str
    pseudonymised: bool
    like: str | None
    #: 1 September of the first school year with session marks (``first_date``
    #: is earlier when the records hold ``history_years`` before it).
    marks_first_date: str = ""
    history_years: int = 0


#: At most this many school years of records before the first year of marks.
MAX_HISTORY_YEARS = 8


def _check(
    pupils: int, years: int, first_year: int, la_code: str, history_years: int
) -> None:
    if pupils < 500:
        raise ConfigError(
            f"--pupils {pupils}: use at least 500 (an LA needs a few schools)"
        )
    if not 1 <= years <= 12:
        raise ConfigError(f"--years {years}: use 1 to 12 school years")
    if not 2000 <= first_year <= 2090:
        raise ConfigError(
            f"--first-year {first_year}: use a year between 2000 and 2090"
        )
    if not 0 <= history_years <= MAX_HISTORY_YEARS:
        raise ConfigError(
            f"--history-years {history_years}: use 0 to {MAX_HISTORY_YEARS} school "
            "years of records before the first year of session marks"
        )
    if first_year - history_years < 2000:
        raise ConfigError(
            f"--history-years {history_years}: the records would start in "
            f"{first_year - history_years}, before 2000"
        )
    if not (len(la_code) == 3 and la_code.isdigit() and la_code != "000"):
        raise ConfigError(f"--la-code {la_code!r}: an LA number is 3 digits, e.g. 330")


def generate_la(
    out_dir: Path,
    *,
    pupils: int = 50_000,
    years: int = 4,
    seed: int = 0,
    first_year: int = 2021,
    la_code: str = "330",
    like: str | None = None,
    raw_upn: bool = False,
    key: bytes | None = None,
    progress: Progress | None = None,
    chunk_pupils: int = CHUNK_PUPILS,
    history_years: int = 0,
) -> SynthSummary:
    """Simulate an LA and write every raw table of the contract to ``out_dir``.

    Parameters
    ----------
    out_dir
        Folder to write (replaced atomically; refused if it holds other files).
    pupils
        About how many pupils are on roll in each school year (Reception to Year 11).
    years, first_year
        How many school years of session marks, starting with ``first_year``
        (2021 = 2021/22).
    seed
        Same seed and parameters, same bytes.
    la_code
        The LA number in pupils' UPNs and the ``la_code`` column.
    like
        An LA number whose published rates (absence, SEN, children in need) the
        generator moves towards (see :mod:`.targets`).
    raw_upn
        Write raw (valid) UPNs instead of pseudonymised ids, to test the pseudonymiser.
    key
        Pseudonymisation key (required unless ``raw_upn``).
    progress
        Called as ``progress(stage, done, total)``.
    chunk_pupils
        Pupils per attendance chunk (bounds memory; changes the bytes).
    history_years
        School years of records before ``first_year``: the census (all three
        days), roll changes, social care, exclusions, elective home education,
        CME episodes and secondary offers of the same simulated lives, but no
        session marks or termly totals, as a real LA holds years of records
        and marks only for recent years. ``0`` (the default) starts every
        table in ``first_year``.
    """
    _check(pupils, years, first_year, la_code, history_years)
    if not raw_upn and key is None:
        raise ConfigError("generate_la needs a pseudonymisation key (or raw_upn=True)")
    params = params_for(like=like)
    report = progress or (lambda stage, done, total: None)
    lc = simulate(
        pupils,
        first_year=first_year - history_years,
        years=years + history_years,
        params=params,
        seed=seed,
        la_number=int(la_code),
        progress=lambda d, t: report("simulate", d, t),
    )
    upns = lc.pupils.upn
    report("pseudonymise", 0, 1)
    ids = (
        upns
        if raw_upn
        else np.array(pseudonymise_many(upns, key=key or b""), dtype=object)
    )
    report("pseudonymise", 1, 1)
    tables = build_tables(lc, ids, la_code=la_code)
    painter = AttendancePainter(lc, ids, seed=seed)
    marked = range(history_years, history_years + years)  # years with marks
    chunks = _chunks(
        lc, first_day=int(lc.timeline.year_first_day[marked[0]]), size=chunk_pupils
    )
    total = len(chunks) * years
    with staged_folder(out_dir) as stage:
        termly = []
        with AttendanceParts(stage / ATTENDANCE_DIR) as parts:
            for i, yi in enumerate(marked):
                for ci, (p0, p1) in enumerate(chunks):
                    cy = painter.chunk_year(p0, p1, yi)
                    if cy.rows:
                        parts.write(cy.marks)
                        termly.append(cy.termly)
                    report("attendance", i * len(chunks) + ci + 1, total)
        tables["attendance_termly"] = pa.concat_tables(termly).cast(
            arrow_schema("attendance_termly")
        )
        for name, table in tables.items():
            write_table(table, stage / f"{name}.parquet")
        rows = {name: t.num_rows for name, t in tables.items()}
        rows["attendance"] = parts.rows
        tl = lc.timeline
        summary = SynthSummary(
            out_dir=Path(out_dir),
            rows=dict(sorted(rows.items())),
            attendance_parts=parts.count,
            pupils=rows["pupils"],
            first_date=str(tl.start),
            last_date=str(tl.end),
            pseudonymised=not raw_upn,
            like=like,
            marks_first_date=f"{first_year}-09-01",
            history_years=history_years,
        )
        write_json(
            _manifest(
                summary,
                lc,
                pupils=pupils,
                years=years,
                seed=seed,
                first_year=first_year,
                la_code=la_code,
                chunk_pupils=chunk_pupils,
                history_years=history_years,
            ),
            stage / MANIFEST,
        )
    return summary


def _chunks(lc: LifeCourse, *, first_day: int, size: int) -> list[tuple[int, int]]:
    """Ranges of at most ``size`` pupils to paint, skipping pupils off roll throughout.

    A chunk starts at the first pupil on a roll on or after school day
    ``first_day`` and ends after the last such pupil within ``size``: pupils
    who left during the history years cost no painting. When every pupil is
    on a roll then (no history), these are the plain ranges ``0, size, ...``.
    """
    spells = lc.table("spell")
    n = len(lc.pupils)
    active = np.zeros(n, dtype=bool)
    active[spells["pupil"][spells["last"] >= first_day]] = True
    pupils = np.flatnonzero(active)
    chunks = []
    i = 0
    while i < len(pupils):
        p0 = int(pupils[i])
        j = int(np.searchsorted(pupils, p0 + size)) - 1  # last active pupil in range
        chunks.append((p0, int(pupils[j]) + 1))
        i = j + 1
    return chunks


def _manifest(
    summary: SynthSummary, lc: LifeCourse, **arguments: Any
) -> dict[str, Any]:
    tl = lc.timeline
    marked = tl.years[summary.history_years :]
    return {
        "generator": GENERATOR,
        "generator_version": GENERATOR_VERSION,
        "cmerisk_version": version("cmerisk"),
        "arguments": {
            **arguments,
            "like": summary.like,
            "raw_upn": not summary.pseudonymised,
        },
        "ids": "raw UPNs (testing only)"
        if not summary.pseudonymised
        else "HMAC-SHA256 of the UPN (24 hex)",
        "school_years": [int(y) for y in tl.years],
        "marks_school_years": [int(y) for y in marked],
        "date_range": {
            "first": summary.first_date,
            "last": summary.last_date,
            "first_school_day": str(tl.days[0]),
            "last_school_day": str(tl.days[-1]),
            "first_marks": summary.marks_first_date,
            "first_marked_school_day": str(
                tl.days[tl.year_first_day[summary.history_years]]
            ),
        },
        "rows": summary.rows,
        "attendance_parts": summary.attendance_parts,
        "schools": {
            "urns": len(lc.schools),
            **{
                ph: int((lc.schools.phase == ph).sum())
                for ph in ("primary", "secondary", "special", "ap")
            },
        },
        "attendance_codes": list(VOCAB),
        "conventions": [
            "a deletion is dated the last day on that roll, an admission the first",
            "session marks cover every school day on a roll, first to last inclusive",
            "census: C single registration; M main and S subsidiary (AP unit) if dual",
            "destination_known and deletion_ground are empty for admissions",
            "records (census, events) cover school_years; session marks and termly "
            "totals only marks_school_years",
            "episodes open at the end of the data have an empty end_date (and outcome)",
        ],
        "params": dataclasses.asdict(lc.params),
    }
