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
from cmerisk.data.synthetic.lifecourse import simulate
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


def _check(pupils: int, years: int, first_year: int, la_code: str) -> None:
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
) -> SynthSummary:
    """Simulate an LA and write every raw table of the contract to ``out_dir``.

    Parameters
    ----------
    out_dir
        Folder to write (replaced atomically; refused if it holds other files).
    pupils
        About how many pupils are on roll in each school year (Reception to Year 11).
    years, first_year
        How many school years, starting with ``first_year`` (2021 = 2021/22).
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
    """
    _check(pupils, years, first_year, la_code)
    if not raw_upn and key is None:
        raise ConfigError("generate_la needs a pseudonymisation key (or raw_upn=True)")
    params = params_for(like=like)
    report = progress or (lambda stage, done, total: None)
    lc = simulate(
        pupils,
        first_year=first_year,
        years=years,
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
    n = len(lc.pupils)
    chunks = [(p0, min(p0 + chunk_pupils, n)) for p0 in range(0, n, chunk_pupils)]
    total = len(chunks) * years
    with staged_folder(out_dir) as stage:
        termly = []
        with AttendanceParts(stage / ATTENDANCE_DIR) as parts:
            for yi in range(years):
                for ci, (p0, p1) in enumerate(chunks):
                    cy = painter.chunk_year(p0, p1, yi)
                    if cy.rows:
                        parts.write(cy.marks)
                        termly.append(cy.termly)
                    report("attendance", yi * len(chunks) + ci + 1, total)
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
            ),
            stage / MANIFEST,
        )
    return summary


def _manifest(summary: SynthSummary, lc: Any, **arguments: Any) -> dict[str, Any]:
    tl = lc.timeline
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
        "date_range": {
            "first": summary.first_date,
            "last": summary.last_date,
            "first_school_day": str(tl.days[0]),
            "last_school_day": str(tl.days[-1]),
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
            "episodes open at the end of the data have an empty end_date (and outcome)",
        ],
        "params": dataclasses.asdict(lc.params),
    }
