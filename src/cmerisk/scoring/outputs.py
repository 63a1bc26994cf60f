"""The files a scoring run leaves for the LA team: columns, order, atomic writes.

The lists are assembled by DuckDB from the run's spill files (scores, ranks
and reasons of every chunk), sorted out of core, and written to temporary
files beside their targets, which replace the targets only once the whole run
has succeeded (:class:`cmerisk.atomic.Staging`).

``risk_list.csv`` / ``.parquet`` (one row per pupil scored, best rank first):

======================  ==============================================================
``pupil_id``            pseudonymised pupil id (never a raw UPN)
``school_urn``          school the pupil is on roll at on the as-of date
``school_phase``        primary, secondary, special or ap
``nc_year``             national curriculum year (R, 1-11)
``secondary_offer_urn`` secondary school a Year 6 pupil is due to join (when known)
``probability``         calibrated probability of a new CME episode within the horizon
``rank``                1 = highest risk; ties broken by raw score, then id
``band``                ``flagged`` (within capacity), ``watch`` or ``low``
``reason_k``            k-th reason (1-3) in plain English (flagged and watch only,
                        unless run with ``--explain all``)
``reason_k_group``      attendance, needs, social_care, mobility, transition, ...
``reason_k_actionable`` true when support could change it; false for context
``model_name``          registered model name
``model_version``       model version (or the bundle's data digest when unregistered)
``as_of``               the date the list describes (records before it are used)
``expires_on``          after this date the list is stale: score again
======================  ==============================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, Final

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from cmerisk.atomic import Staging

REASONS: Final[int] = 3

#: Columns of the risk list, in order.
RISK_LIST_COLUMNS: Final[tuple[str, ...]] = (
    "pupil_id",
    "school_urn",
    "school_phase",
    "nc_year",
    "secondary_offer_urn",
    "probability",
    "rank",
    "band",
    *(
        c
        for k in range(1, REASONS + 1)
        for c in (f"reason_{k}", f"reason_{k}_group", f"reason_{k}_actionable")
    ),
    "model_name",
    "model_version",
    "as_of",
    "expires_on",
)

#: Columns of the transition list (flagged Year 6 pupils by receiving school).
TRANSITION_COLUMNS: Final[tuple[str, ...]] = (
    "receiving_school_urn",
    "pupils_in_group",
    "pupil_id",
    "school_urn",
    "probability",
    "rank",
    *(f"reason_{k}" for k in range(1, REASONS + 1)),
    "as_of",
    "expires_on",
)

#: Columns of the rejects file.
REJECT_COLUMNS: Final[tuple[str, ...]] = (
    "pupil_id",
    "outcome",
    "table",
    "row",
    "column",
    "rule",
    "detail",
    "records",
)

#: ``outcome`` of a reject: the pupil was left off the list, or only a record was.
PUPIL_NOT_SCORED: Final[str] = "pupil not scored"
RECORD_IGNORED: Final[str] = "record ignored; pupil scored"

#: Receiving school shown when a Year 6 pupil has no recorded secondary offer.
UNKNOWN_SCHOOL: Final[str] = "unknown"


def _sql_date(d: date) -> str:
    return f"DATE '{d.isoformat()}'"


def _sql_text(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def copy_query(
    con: duckdb.DuckDBPyConnection, query: str, path: Path, *, fmt: str
) -> Path:
    """Run ``query`` and write its rows to ``path`` as ``csv`` or ``parquet``.

    Runs write to a staged temporary path (:class:`~cmerisk.atomic.Staging`)
    that is moved over the real output only when the whole run has succeeded.
    """
    options = (
        "FORMAT csv, HEADER" if fmt == "csv" else "FORMAT parquet, COMPRESSION zstd"
    )
    con.execute(f"COPY ({query}) TO '{Path(path).as_posix()}' ({options})")
    return Path(path)


def risk_list_query(
    *,
    ranked: str,
    reasons: str | None,
    model_name: str,
    model_version: str,
    as_of: date,
    expires_on: date,
) -> str:
    """SQL giving the risk list from a ranked-scores view and a reasons view.

    ``ranked`` has pupil_id, school_urn, school_phase, nc_year,
    secondary_offer_urn, probability, rank, band; ``reasons`` (optional) has
    pupil_id and ``reason_k``,
    ``reason_k_group``, ``reason_k_actionable``.
    """
    reason_cols = []
    for k in range(1, REASONS + 1):
        for suffix, kind in (
            ("", "VARCHAR"),
            ("_group", "VARCHAR"),
            ("_actionable", "BOOLEAN"),
        ):
            col = f"reason_{k}{suffix}"
            reason_cols.append(
                f"r.{col}" if reasons else f"CAST(NULL AS {kind}) AS {col}"
            )
    join = f"LEFT JOIN {reasons} r USING (pupil_id)" if reasons else ""
    return (
        "SELECT s.pupil_id, s.school_urn, s.school_phase, s.nc_year, "
        "s.secondary_offer_urn, "
        "round(s.probability, 6) AS probability, s.rank, s.band, "
        f"{', '.join(reason_cols)}, "
        f"{_sql_text(model_name)} AS model_name, "
        f"{_sql_text(model_version)} AS model_version, "
        f"{_sql_date(as_of)} AS as_of, {_sql_date(expires_on)} AS expires_on "
        f"FROM {ranked} s {join} ORDER BY s.rank"
    )


def transition_query(*, risk_list: str) -> str:
    """SQL for the transition list: flagged Year 6 pupils by receiving school.

    ``risk_list`` is a table or view of the risk list. Groups are ordered by
    receiving school URN, ``unknown`` last; pupils within a group by rank.
    """
    reasons = ", ".join(f"reason_{k}" for k in range(1, REASONS + 1))
    return (
        "WITH y6 AS (SELECT coalesce("
        "NULLIF(trim(CAST(secondary_offer_urn AS VARCHAR)), ''), "
        f"{_sql_text(UNKNOWN_SCHOOL)}) AS receiving_school_urn, * FROM {risk_list} "
        "WHERE band = 'flagged' AND CAST(nc_year AS VARCHAR) = '6') "
        "SELECT receiving_school_urn, "
        "count(*) OVER (PARTITION BY receiving_school_urn) AS pupils_in_group, "
        f"pupil_id, school_urn, probability, rank, {reasons}, as_of, expires_on "
        "FROM y6 "
        f"ORDER BY receiving_school_urn = {_sql_text(UNKNOWN_SCHOOL)}, "
        "receiving_school_urn, rank"
    )


def rejects_query(*, rejects: str | None, scored: str) -> str:
    """SQL for the rejects file from a rejects view and the view of scored ids."""
    if rejects is None:
        cols = ", ".join(f"CAST(NULL AS VARCHAR) AS {c}" for c in REJECT_COLUMNS)
        return f"SELECT {cols} WHERE false"
    return (
        "SELECT r.pupil_id, "
        f"CASE WHEN s.pupil_id IS NULL THEN {_sql_text(PUPIL_NOT_SCORED)} "
        f"ELSE {_sql_text(RECORD_IGNORED)} END AS outcome, "
        'r."table", r."row", r."column", r.rule, r.detail, r.records '
        f"FROM {rejects} r LEFT JOIN (SELECT DISTINCT pupil_id FROM {scored}) s "
        'USING (pupil_id) ORDER BY outcome, r."table", r.pupil_id, r."row"'
    )


def output_names(formats: Sequence[str] = ("csv", "parquet")) -> list[str]:
    """The file names a run writes in ``out_dir`` (pupil pages aside)."""
    return [
        *(f"risk_list.{f}" for f in formats),
        "transition_list.csv",
        "rejects.csv",
        "summary.json",
    ]


def write_lists(
    con: duckdb.DuckDBPyConnection,
    *,
    staged: Staging,
    out_dir: Path,
    reasons: str | None,
    rejects_dir: Path,
    model_name: str,
    model_version: str,
    as_of: date,
    expires_on: date,
) -> None:
    """Stage the risk list (Parquet and CSV), transition list and rejects.

    ``con`` holds the ``ranked`` table (and the ``reasons`` view when given);
    ``rejects_dir`` the run's rejected records (Parquet, one file per chunk).
    One sorted pass writes the Parquet risk list; the CSV copy and the
    transition list read that file back, in order.
    """
    listing = risk_list_query(
        ranked="ranked",
        reasons=reasons,
        model_name=model_name,
        model_version=model_version,
        as_of=as_of,
        expires_on=expires_on,
    )
    parquet = staged.path(out_dir / "risk_list.parquet")
    copy_query(con, listing, parquet, fmt="parquet")
    written = f"read_parquet('{parquet.as_posix()}')"
    con.execute("SET preserve_insertion_order = true")  # the file is in rank order
    try:
        csv = staged.path(out_dir / "risk_list.csv")
        copy_query(con, f"SELECT * FROM {written}", csv, fmt="csv")
    finally:
        con.execute("SET preserve_insertion_order = false")
    transition = transition_query(risk_list=written)
    copy_query(con, transition, staged.path(out_dir / "transition_list.csv"), fmt="csv")
    view = None
    if rejects_dir.is_dir() and any(rejects_dir.iterdir()):
        files = (rejects_dir / "*.parquet").as_posix()
        con.execute(f"CREATE VIEW rejects AS SELECT * FROM read_parquet('{files}')")
        view = "rejects"
    rejects = rejects_query(rejects=view, scored="ranked")
    copy_query(con, rejects, staged.path(out_dir / "rejects.csv"), fmt="csv")


#: Columns carried from the feature table into the outputs.
CARRIED: Final[tuple[str, ...]] = (
    "school_urn",
    "school_phase",
    "nc_year",
    "secondary_offer_urn",
)

SCORE_SCHEMA = pa.schema(
    [
        ("pupil_id", pa.string()),
        *((c, pa.string()) for c in CARRIED),
        ("probability", pa.float64()),
        ("margin", pa.float64()),
        ("chunk", pa.int32()),
    ]
)


def _text(values: pd.Series) -> pa.Array:
    return pa.array(values.astype("string"), type=pa.string(), from_pandas=True)


def scores_table(
    frame: pd.DataFrame,
    probability: np.ndarray,
    *,
    margin: np.ndarray,
    id_col: str,
    chunk: int,
) -> pa.Table:
    """One chunk's scores as spilled: id, carried columns, probability, margin."""
    n = len(frame)
    cols: dict[str, Any] = {"pupil_id": _text(frame[id_col])}
    for c in CARRIED:
        cols[c] = _text(frame[c]) if c in frame.columns else pa.nulls(n, pa.string())
    cols["probability"] = pa.array(np.asarray(probability, dtype="float64"))
    cols["margin"] = pa.array(np.asarray(margin, dtype="float64"))
    cols["chunk"] = pa.array(np.full(n, chunk, dtype=np.int32))
    return pa.table(cols, schema=SCORE_SCHEMA)
