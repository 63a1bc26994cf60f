"""Measure an LA folder (synthetic or real) on every calibration target.

:func:`measure` reads the Parquet tables with DuckDB and returns one number
per target name. How each is measured:

- prevalences are shares of census rows of main (or single) registrations:
  one row per pupil per census day;
- absence is per enrolment (pupil x school x school year) from
  ``attendance_termly``: absent = authorised + unauthorised sessions;
  persistent = absent / possible >= 10%, severe >= 50%; "children in need"
  are pupils with a CIN (not CPP or CLA) episode open on 31 March that year;
- a new CME episode's NC year is the pupil's NC year (from the date of birth)
  in the school year the episode starts; incidence is episodes over pupils on
  roll at that year's autumn census;
- trait ratios compare new CME episodes (IDACI decile; SEN at the pupil's
  last census before the start; known to social care, i.e. an episode open at
  some time in the 12 months up to the start) with all census rows (the same
  traits on the census day);
- durations use episodes starting at least a year before the end of the
  data, so "more than a year" is observable for each; an episode still open
  counts by its age at the end of the data (right-censored);
- EHE: absence over the 365 days before the EHE start, from session marks
  (episodes with at least 40 possible sessions in that window);
- single-column AUC: pupils on roll at each summer census whose 245-day label
  window ends inside the data; each pupil or census column scores a pupil by
  its value's in-sample CME rate (values shared by fewer than 30 pupils
  pooled): the most a lookup on that one column could do.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from cmerisk import duck
from cmerisk.data import codes
from cmerisk.data.synthetic.timeline import Timeline
from cmerisk.errors import DataError

HORIZON_DAYS = 245
#: Values shared by fewer pupils than this are pooled in the single-column AUC check.
MIN_CELL = 30
TABLES = (
    "pupils",
    "census",
    "attendance_termly",
    "social_care",
    "cme_episodes",
    "ehe",
    "secondary_offers",
)


def _codes(values: frozenset[str]) -> str:
    return (
        "(" + ", ".join("'" + c.replace("'", "''") + "'" for c in sorted(values)) + ")"
    )


ABSENT = _codes(codes.AUTHORISED_CODES | codes.UNAUTHORISED_CODES)
NOT_COUNTED = _codes(codes.NOT_COUNTED_CODES)
SCHOOL_YEAR = "(year({d}) - (month({d}) < 9)::INT)"


def _share(condition: str) -> str:
    return f"100 * avg(({condition})::INT)"


def _connect(data_dir: Path) -> duckdb.DuckDBPyConnection:
    missing = [
        f"{n}.parquet" for n in TABLES if not (data_dir / f"{n}.parquet").is_file()
    ]
    if not (data_dir / "attendance").is_dir():
        missing.append("attendance/")
    if missing:
        raise DataError(
            f"{data_dir} is not a complete LA folder: missing {', '.join(missing)}"
        )
    con = duck.connect()
    for name in TABLES:
        con.sql(f"CREATE VIEW {name} AS FROM read_parquet('{data_dir / name}.parquet')")
    marks = data_dir / "attendance" / "*.parquet"
    con.sql(f"CREATE VIEW attendance AS FROM read_parquet('{marks}')")
    # One row per pupil per census day: the main (or single) registration.
    con.sql("CREATE VIEW main_census AS FROM census WHERE enrolment_status <> 'S'")
    return con


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> float | None:
    value = con.sql(sql).fetchall()[0][0]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _data_end(con: duckdb.DuckDBPyConnection, data_dir: Path) -> str:
    manifest = data_dir / "manifest.json"
    if manifest.is_file():
        return str(json.loads(manifest.read_text("utf-8"))["date_range"]["last"])
    return str(con.sql("SELECT max(date) FROM attendance").fetchall()[0][0])


def _social_care_open(
    pupil: str, day: str, *, lookback: int = 0, status: str = ""
) -> str:
    """SQL: a social-care episode open on ``day`` (or up to ``lookback`` before)."""
    extra = f" AND s.status = '{status}'" if status else ""
    return (
        f"EXISTS (FROM social_care s WHERE s.pupil_id = {pupil}"
        f" AND s.start_date <= {day}"
        f" AND (s.end_date IS NULL OR s.end_date >= {day} - {lookback}){extra})"
    )


def measure(
    data_dir: Path, *, intervals: Intervals | None = None
) -> dict[str, float | None]:
    """Every achieved value, by target name (``None`` when the data cannot say).

    Measures that rest on few events (CME incidence, trait ratios, durations)
    also get a 95% sampling interval in ``intervals``, when a dict is given.
    """
    data_dir = Path(data_dir)
    con = _connect(data_dir)
    end = _data_end(con, data_dir)
    m: dict[str, float | None] = {}
    m["fsm"] = _one(con, f"SELECT {_share('fsm_eligible')} FROM main_census")
    for name, level in (("sen_support", "K"), ("ehc_plan", "E")):
        share = _share(f"sen_provision = '{level}'")
        m[name] = _one(con, f"SELECT {share} FROM main_census")
    cin = _social_care_open("c.pupil_id", "c.census_date")
    m["cin"] = _one(con, f"SELECT {_share(cin)} FROM main_census c")
    cla = _social_care_open("c.pupil_id", "c.census_date", status="CLA")
    m["cla"] = _one(con, f"SELECT {_share(cla)} FROM main_census c")
    semh_share = _share("sen_primary_need = 'SEMH'")
    semh = dict(
        con.sql(f"""
        SELECT school_phase, {semh_share}
        FROM main_census WHERE sen_provision <> 'N' GROUP BY 1""").fetchall()
    )
    m["semh_share_secondary"] = semh.get("secondary")
    both = "primary" in semh and "secondary" in semh
    m["semh_secondary_minus_primary"] = (
        semh["secondary"] - semh["primary"] if both else None
    )
    _absence(con, m)
    _cme(con, m, end, intervals)
    persistent = _share("absent >= 0.1 * possible")
    m["ehe_after_persistent_absence"] = _one(
        con,
        f"""
        WITH w AS (
            SELECT e.pupil_id, e.start_date,
                   count(*) FILTER (WHERE a.code NOT IN {NOT_COUNTED}) AS possible,
                   count(*) FILTER (WHERE a.code IN {ABSENT}) AS absent
            FROM ehe e JOIN attendance a ON a.pupil_id = e.pupil_id
             AND a.date >= e.start_date - 365 AND a.date < e.start_date
            GROUP BY ALL)
        SELECT {persistent} FROM w WHERE possible >= 40""",
    )
    m["secondary_offer_rate"] = _offer_rate(con)
    m["max_single_column_auc"] = _max_auc(con, end)
    return m


def _absence(con: duckdb.DuckDBPyConnection, m: dict[str, float | None]) -> None:
    sy = SCHOOL_YEAR.format(d="term_start")
    con.sql(f"""
        CREATE TEMP TABLE enrolment AS
        SELECT t.pupil_id, t.school_urn, {sy} AS sy,
               sum(sessions_possible) AS possible,
               sum(sessions_authorised + sessions_unauthorised) AS absent
        FROM attendance_termly t GROUP BY ALL HAVING sum(sessions_possible) > 0""")
    cin = _social_care_open("e.pupil_id", "make_date(e.sy + 1, 3, 31)", status="CIN")
    con.sql(f"""
        CREATE TEMP TABLE enrolment_x AS
        SELECT e.*, ph.school_phase, {cin} AS cin
        FROM enrolment e LEFT JOIN (
            SELECT school_urn, any_value(school_phase) AS school_phase
            FROM census GROUP BY 1
        ) ph USING (school_urn)""")
    persistent, severe = (
        _share("absent >= 0.1 * possible"),
        _share("absent >= 0.5 * possible"),
    )
    m["overall_absence"] = _one(
        con, "SELECT 100 * sum(absent) / sum(possible) FROM enrolment_x"
    )
    m["persistent_absence"] = _one(con, f"SELECT {persistent} FROM enrolment_x")
    m["severe_absence"] = _one(con, f"SELECT {severe} FROM enrolment_x")
    for phase in ("primary", "secondary"):
        m[f"persistent_absence_{phase}"] = _one(
            con, f"SELECT {persistent} FROM enrolment_x WHERE school_phase = '{phase}'"
        )
    m["persistent_absence_cin"] = _one(
        con, f"SELECT {persistent} FROM enrolment_x WHERE cin"
    )
    m["severe_absence_cin"] = _one(con, f"SELECT {severe} FROM enrolment_x WHERE cin")


def wilson(k: int, n: int, *, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval (95% by default) for a proportion ``k / n``.

    >>> [round(x, 3) for x in wilson(10, 100)]
    [0.055, 0.174]
    """
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


Intervals = dict[str, tuple[float, float]]


def _cme(
    con: duckdb.DuckDBPyConnection,
    m: dict[str, float | None],
    end: str,
    intervals: Intervals | None = None,
) -> None:
    sy = SCHOOL_YEAR.format(d="c.start_date")
    born_autumn = "(month(p.date_of_birth) >= 9)::INT"
    known = _social_care_open("c.pupil_id", "c.start_date", lookback=365)
    con.sql(f"""
        CREATE TEMP TABLE new_cme AS
        SELECT c.*, {sy} AS sy, {sy} - year(p.date_of_birth) - {born_autumn} - 4 AS nc,
               p.idaci_decile,
               (SELECT arg_max(k.sen_provision, k.census_date) FROM main_census k
                 WHERE k.pupil_id = c.pupil_id
                   AND k.census_date <= c.start_date) AS sen,
               {known} AS cin
        FROM cme_episodes c JOIN pupils p USING (pupil_id)""")
    rolls = con.sql("""
        SELECT year(census_date) AS sy,
               CASE WHEN nc_year = 'R' THEN 0 ELSE CAST(nc_year AS INT) END AS nc,
               count(DISTINCT pupil_id) AS n
        FROM main_census WHERE month(census_date) = 10 GROUP BY ALL""").df()
    starts = con.sql("SELECT sy, nc, count(*) AS k FROM new_cme GROUP BY ALL").df()
    starts = starts[starts["sy"].isin(set(rolls["sy"]))]
    m["cme_incidence"] = (
        100 * starts["k"].sum() / rolls["n"].sum() if len(rolls) else None
    )
    by_nc = starts.groupby("nc")["k"].sum() / rolls.groupby("nc")["n"].sum()
    by_nc = by_nc.reindex(range(12)).fillna(0.0)
    others = by_nc.drop(7).mean()
    m["cme_peak_nc_year"] = float(by_nc.idxmax()) if starts["k"].sum() else None
    m["cme_transition_ratio"] = float(by_nc[7] / others) if others > 0 else None
    known = _social_care_open("c.pupil_id", "c.census_date", lookback=365)
    base = con.sql(f"""
        SELECT avg((p.idaci_decile = 1)::INT), avg((c.sen_provision <> 'N')::INT),
               avg(({known})::INT)
        FROM main_census c JOIN pupils p USING (pupil_id)""").fetchall()[0]
    got = con.sql("""
        SELECT count(idaci_decile), sum((idaci_decile = 1)::INT),
               count(sen), sum((sen <> 'N')::INT), count(*), sum(cin::INT)
        FROM new_cme""").fetchall()[0]
    names = ("cme_ratio_idaci1", "cme_ratio_sen", "cme_ratio_cin")
    for i, (name, b) in enumerate(zip(names, base, strict=True)):
        n, k = got[2 * i], got[2 * i + 1]
        m[name] = float(k / n / b) if n and b else None
        if n and b and intervals is not None:
            lo, hi = wilson(k, n)
            intervals[name] = (lo / b, hi / b)
    length = f"date_diff('day', start_date, coalesce(end_date, DATE '{end}'))"
    for name, days in (("cme_open_12_weeks", 84), ("cme_open_1_year", 365)):
        n, k = con.sql(f"""
            SELECT count(*), sum(({length} > {days})::INT) FROM cme_episodes
            WHERE start_date <= DATE '{end}' - 365""").fetchall()[0]
        m[name] = 100 * k / n if n else None
        if n and intervals is not None:
            lo, hi = wilson(k, n)
            intervals[name] = (100 * lo, 100 * hi)
    if intervals is not None and len(rolls):
        k, n = int(starts["k"].sum()), int(rolls["n"].sum())
        lo, hi = wilson(k, n)
        intervals["cme_incidence"] = (100 * lo, 100 * hi)


def _offer_rate(con: duckdb.DuckDBPyConnection) -> float | None:
    """Share of Year 6 pupils (spring census) offered a place on national offer day."""
    spring = con.sql("""
        SELECT DISTINCT year(census_date) - 1 AS sy, pupil_id FROM main_census
        WHERE month(census_date) = 1 AND nc_year = '6'
          AND school_phase = 'primary'""").df()
    if spring.empty:
        return None
    first, last = int(spring["sy"].min()), int(spring["sy"].max())
    tl = Timeline.build(first, last - first + 1)
    offer_days = pd.DataFrame(
        {
            "sy": list(tl.years),
            "offer_day": [tl.offer_day(y).astype(object) for y in tl.years],
        }
    )
    con.register("offer_days", offer_days)
    con.register("spring", spring)
    offered = _share(
        "EXISTS (FROM secondary_offers o WHERE o.pupil_id = s.pupil_id "
        "AND o.offer_date = CAST(d.offer_day AS DATE))"
    )
    return _one(con, f"SELECT {offered} FROM spring s JOIN offer_days d USING (sy)")


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve (ties count half), by ranks."""
    ranks = pd.Series(score).rank(method="average").to_numpy()
    pos = int(label.sum())
    neg = len(label) - pos
    return float((ranks[label].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _max_auc(con: duckdb.DuckDBPyConnection, end: str) -> float | None:
    until = f"c.census_date + {HORIZON_DAYS}"
    window = f"e.start_date > c.census_date AND e.start_date <= {until}"
    frame = con.sql(f"""
        SELECT c.*, p.sex, p.ethnicity_major, p.idaci_decile, p.first_language,
               EXISTS (FROM cme_episodes e
                       WHERE e.pupil_id = c.pupil_id AND {window}) AS y
        FROM main_census c JOIN pupils p USING (pupil_id)
        WHERE month(c.census_date) = 5
          AND c.census_date + {HORIZON_DAYS} <= DATE '{end}'""").df()
    label = frame.pop("y").to_numpy(dtype=bool)
    if label.sum() == 0 or label.all():
        return None
    aucs = []
    for col in frame.columns.drop(["pupil_id", "census_date"]):
        values = frame[col].astype("string").fillna("<missing>")
        values = values.where(values.map(values.value_counts()) >= MIN_CELL, "<rare>")
        rate = pd.Series(label).groupby(values.to_numpy()).transform("mean").to_numpy()
        aucs.append(_auc(rate, label))
    return max(aucs)
