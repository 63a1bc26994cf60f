"""Measure a (synthetic or real) LA folder against the calibration targets.

:func:`calibration_report` reads the Parquet tables with DuckDB and returns,
for each :class:`~.targets.Target`, the value achieved and whether it lies in
the target's band. How each value is measured:

- prevalences are shares of census rows (main or single registrations): one
  row per pupil per census day;
- absence is per enrolment (pupil x school x school year) from
  ``attendance_termly``: absent = authorised + unauthorised sessions;
  persistent = absent / possible >= 10%, severe >= 50%; "children in need" are
  pupils with a CIN (not CPP or CLA) episode open on 31 March of that year;
- a new CME episode's NC year is the pupil's NC year (from date of birth) in
  the school year the episode starts; incidence is episodes over pupils on
  roll at that year's autumn census;
- trait ratios compare new CME episodes (IDACI decile; SEN at the pupil's last
  census before the start; known to social care, i.e. an episode open at some
  time in the 12 months up to the start) with all census rows (the same traits
  on the census day);
- durations use episodes starting at least a year before the end of the data,
  so "more than a year" is observable for each; an episode still open counts
  by its age at the end of the data (right-censored);
- EHE: absence over the 365 days before the EHE start, from session marks
  (episodes with at least 20 possible sessions in that window);
- single-column AUC: pupils on roll at each summer census whose 245-day label
  window ends inside the data; each pupil or census column scores a pupil by
  its value's in-sample CME rate (the most a lookup on that column could do).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from cmerisk.data.synthetic.targets import Target, targets_for
from cmerisk.data.synthetic.timeline import Timeline
from cmerisk.errors import DataError

HORIZON_DAYS = 245
#: Values shared by fewer pupils than this are pooled in the single-column AUC check.
MIN_CELL = 30


@dataclass(frozen=True)
class CalibrationRow:
    target: Target
    achieved: float | None

    @property
    def passed(self) -> bool | None:
        """``None`` for information-only rows."""
        return self.target.passes(self.achieved) if self.target.check else None


@dataclass(frozen=True)
class CalibrationReport:
    """Target vs achieved, one row per target."""

    data_dir: Path
    like: str | None
    rows: tuple[CalibrationRow, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed is not False for r in self.rows)

    def failures(self) -> list[CalibrationRow]:
        return [r for r in self.rows if r.passed is False]

    def achieved(self, name: str) -> float | None:
        return next(r.achieved for r in self.rows if r.target.name == name)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "name": r.target.name,
                    "label": r.target.label,
                    "target": r.target.value,
                    "low": r.target.low,
                    "high": r.target.high,
                    "achieved": r.achieved,
                    "passed": r.passed,
                    "unit": r.target.unit,
                    "source": r.target.source,
                }
                for r in self.rows
            ]
        )


def _connect(data_dir: Path) -> duckdb.DuckDBPyConnection:
    data_dir = Path(data_dir)
    needed = [
        "pupils",
        "census",
        "attendance_termly",
        "social_care",
        "cme_episodes",
        "ehe",
        "secondary_offers",
    ]
    missing = [n for n in needed if not (data_dir / f"{n}.parquet").is_file()]
    if missing or not (data_dir / "attendance").is_dir():
        raise DataError(
            f"{data_dir} is not a complete LA folder: missing "
            f"{', '.join(missing + ([] if (data_dir / 'attendance').is_dir() else ['attendance/']))}"
        )
    con = duckdb.connect()
    for name in needed:
        con.sql(
            f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{data_dir / name}.parquet')"
        )
    con.sql(
        f"CREATE VIEW attendance AS SELECT * FROM read_parquet('{data_dir}/attendance/*.parquet')"
    )
    # One row per pupil per census day: the main (or single) registration.
    con.sql(
        "CREATE VIEW main_census AS SELECT * FROM census WHERE enrolment_status <> 'S'"
    )
    return con


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> float | None:
    value = con.sql(sql).fetchall()[0][0]
    return (
        None
        if value is None or (isinstance(value, float) and math.isnan(value))
        else float(value)
    )


def _data_end(con: duckdb.DuckDBPyConnection, data_dir: Path) -> str:
    manifest = Path(data_dir) / "manifest.json"
    if manifest.is_file():
        return json.loads(manifest.read_text("utf-8"))["date_range"]["last"]
    return str(con.sql("SELECT max(date) FROM attendance").fetchall()[0][0])


SCHOOL_YEAR = "(year({d}) - CASE WHEN month({d}) < 9 THEN 1 ELSE 0 END)"
NC_OF = "(({sy}) - year(p.date_of_birth) - CASE WHEN month(p.date_of_birth) >= 9 THEN 1 ELSE 0 END - 4)"


def measure(data_dir: Path) -> dict[str, float | None]:
    """Every achieved value, by target name."""
    con = _connect(data_dir)
    end = _data_end(con, data_dir)
    m: dict[str, float | None] = {}
    open_on = "s.start_date <= {d} AND (s.end_date IS NULL OR s.end_date >= {d})"
    share = "100 * avg(CASE WHEN {c} THEN 1.0 ELSE 0.0 END)"
    m["fsm"] = _one(con, f"SELECT {share.format(c='fsm_eligible')} FROM main_census")
    m["sen_support"] = _one(
        con,
        f"SELECT {share.format(c=chr(39).join(['sen_provision = ', 'K', '']))} FROM main_census",
    )
    m["ehc_plan"] = _one(
        con,
        f"SELECT {share.format(c=chr(39).join(['sen_provision = ', 'E', '']))} FROM main_census",
    )
    for name, status in (("cin", "TRUE"), ("cla", "s.status = 'CLA'")):
        m[name] = _one(
            con,
            f"""
            SELECT 100 * avg(CASE WHEN EXISTS (SELECT 1 FROM social_care s WHERE s.pupil_id = c.pupil_id
                   AND {open_on.format(d="c.census_date")} AND {status}) THEN 1.0 ELSE 0.0 END)
            FROM main_census c""",
        )
    semh = con.sql("""
        SELECT school_phase, 100 * avg(CASE WHEN sen_primary_need = 'SEMH' THEN 1.0 ELSE 0.0 END)
        FROM main_census WHERE sen_provision <> 'N' GROUP BY 1""").fetchall()
    semh_by = {k: float(v) for k, v in semh}
    m["semh_share_secondary"] = semh_by.get("secondary")
    m["semh_secondary_minus_primary"] = (
        semh_by["secondary"] - semh_by["primary"]
        if {"secondary", "primary"} <= set(semh_by)
        else None
    )
    _absence(con, m)
    _cme(con, m, end)
    m["ehe_after_persistent_absence"] = _one(
        con,
        """
        WITH w AS (
            SELECT e.pupil_id, e.start_date,
                   sum(CASE WHEN a.code NOT IN ('D','Q','X','Y1','Y2','Y3','Y4','Y5','Y6','Y7','Z','#')
                            THEN 1 ELSE 0 END) AS possible,
                   sum(CASE WHEN a.code IN ('C','C1','C2','E','I','J1','M','R','S','T','H','F','J',
                                            'G','N','O','U') THEN 1 ELSE 0 END) AS absent
            FROM ehe e JOIN attendance a ON a.pupil_id = e.pupil_id
             AND a.date >= e.start_date - 365 AND a.date < e.start_date
            GROUP BY 1, 2)
        SELECT 100 * avg(CASE WHEN absent >= 0.1 * possible THEN 1.0 ELSE 0.0 END) FROM w
        WHERE possible >= 40""",
    )
    _offers(con, m)
    m["max_single_column_auc"] = _max_auc(con, end)
    return m


def _absence(con: duckdb.DuckDBPyConnection, m: dict[str, float | None]) -> None:
    sy = SCHOOL_YEAR.format(d="term_start")
    con.sql(f"""
        CREATE TEMP TABLE enrolment AS
        SELECT t.pupil_id, t.school_urn, {sy} AS sy, sum(sessions_possible) AS possible,
               sum(sessions_authorised + sessions_unauthorised) AS absent
        FROM attendance_termly t GROUP BY 1, 2, 3 HAVING sum(sessions_possible) > 0""")
    con.sql("""
        CREATE TEMP TABLE enrolment_x AS
        SELECT e.*, ph.school_phase,
               EXISTS (SELECT 1 FROM social_care s WHERE s.pupil_id = e.pupil_id AND s.status = 'CIN'
                       AND s.start_date <= make_date(e.sy + 1, 3, 31)
                       AND (s.end_date IS NULL OR s.end_date >= make_date(e.sy + 1, 3, 31))) AS cin
        FROM enrolment e
        LEFT JOIN (SELECT school_urn, any_value(school_phase) AS school_phase FROM census GROUP BY 1) ph
        USING (school_urn)""")
    m["overall_absence"] = _one(
        con, "SELECT 100 * sum(absent) / sum(possible) FROM enrolment_x"
    )
    pa_ = "100 * avg(CASE WHEN absent >= {t} * possible THEN 1.0 ELSE 0.0 END)"
    m["persistent_absence"] = _one(con, f"SELECT {pa_.format(t=0.1)} FROM enrolment_x")
    m["severe_absence"] = _one(con, f"SELECT {pa_.format(t=0.5)} FROM enrolment_x")
    for phase in ("primary", "secondary"):
        m[f"persistent_absence_{phase}"] = _one(
            con,
            f"SELECT {pa_.format(t=0.1)} FROM enrolment_x WHERE school_phase = '{phase}'",
        )
    m["persistent_absence_cin"] = _one(
        con, f"SELECT {pa_.format(t=0.1)} FROM enrolment_x WHERE cin"
    )
    m["severe_absence_cin"] = _one(
        con, f"SELECT {pa_.format(t=0.5)} FROM enrolment_x WHERE cin"
    )


def _cme(con: duckdb.DuckDBPyConnection, m: dict[str, float | None], end: str) -> None:
    sy = SCHOOL_YEAR.format(d="c.start_date")
    con.sql(f"""
        CREATE TEMP TABLE new_cme AS
        SELECT c.*, {sy} AS sy, {NC_OF.format(sy=sy)} AS nc, p.idaci_decile,
               (SELECT arg_max(k.sen_provision, k.census_date) FROM main_census k
                 WHERE k.pupil_id = c.pupil_id AND k.census_date <= c.start_date) AS sen,
               EXISTS (SELECT 1 FROM social_care s WHERE s.pupil_id = c.pupil_id
                       AND s.start_date <= c.start_date
                       AND (s.end_date IS NULL OR s.end_date >= c.start_date - 365)) AS cin
        FROM cme_episodes c JOIN pupils p USING (pupil_id)""")
    autumn = """SELECT census_date, pupil_id, nc_year FROM main_census
                WHERE month(census_date) = 10"""
    rolls = con.sql(f"""
        SELECT year(census_date) AS sy, CASE WHEN nc_year = 'R' THEN 0 ELSE CAST(nc_year AS INT) END AS nc,
               count(DISTINCT pupil_id) AS n FROM ({autumn}) GROUP BY 1, 2""").df()
    starts = con.sql("SELECT sy, nc, count(*) AS k FROM new_cme GROUP BY 1, 2").df()
    years = set(rolls["sy"])
    starts = starts[starts["sy"].isin(years)]
    m["cme_incidence"] = (
        100 * starts["k"].sum() / rolls["n"].sum() if len(rolls) else None
    )
    by_nc = (
        (starts.groupby("nc")["k"].sum() / rolls.groupby("nc")["n"].sum())
        .reindex(range(12))
        .fillna(0)
    )
    if starts["k"].sum() > 0:
        m["cme_peak_nc_year"] = float(by_nc.idxmax())
        others = by_nc.drop(7)
        m["cme_transition_ratio"] = (
            float(by_nc[7] / others.mean()) if others.mean() > 0 else None
        )
    else:
        m["cme_peak_nc_year"] = m["cme_transition_ratio"] = None
    base = con.sql("""
        SELECT avg(CASE WHEN p.idaci_decile = 1 THEN 1.0 ELSE 0.0 END),
               avg(CASE WHEN c.sen_provision <> 'N' THEN 1.0 ELSE 0.0 END),
               avg(CASE WHEN EXISTS (SELECT 1 FROM social_care s WHERE s.pupil_id = c.pupil_id
                        AND s.start_date <= c.census_date
                        AND (s.end_date IS NULL OR s.end_date >= c.census_date - 365))
                   THEN 1.0 ELSE 0.0 END)
        FROM main_census c JOIN pupils p USING (pupil_id)""").fetchall()[0]
    got = con.sql("""
        SELECT avg(CASE WHEN idaci_decile = 1 THEN 1.0 ELSE 0.0 END),
               avg(CASE WHEN sen IS NULL THEN NULL WHEN sen <> 'N' THEN 1.0 ELSE 0.0 END),
               avg(CASE WHEN cin THEN 1.0 ELSE 0.0 END)
        FROM new_cme""").fetchall()[0]
    assert base is not None and got is not None
    ratio = lambda a, b: float(a / b) if a is not None and b else None  # noqa: E731
    m["cme_ratio_idaci1"] = ratio(got[0], base[0])
    m["cme_ratio_sen"] = ratio(got[1], base[1])
    m["cme_ratio_cin"] = ratio(got[2], base[2])
    for name, days in (("cme_open_12_weeks", 84), ("cme_open_1_year", 365)):
        m[name] = _one(
            con,
            f"""
            SELECT 100 * avg(CASE WHEN date_diff('day', start_date, coalesce(end_date, DATE '{end}')) > {days}
                             THEN 1.0 ELSE 0.0 END)
            FROM cme_episodes WHERE start_date <= DATE '{end}' - 365""",
        )


def _offers(con: duckdb.DuckDBPyConnection, m: dict[str, float | None]) -> None:
    spring = con.sql("""
        SELECT DISTINCT year(census_date) - 1 AS sy, pupil_id FROM main_census
        WHERE month(census_date) = 1 AND nc_year = '6' AND school_phase = 'primary'""").df()
    if spring.empty:
        m["secondary_offer_rate"] = None
        return
    tl = Timeline.build(
        int(spring["sy"].min()), int(spring["sy"].max() - spring["sy"].min() + 1)
    )
    days = pd.DataFrame(
        {
            "sy": list(tl.years),
            "offer_day": [tl.offer_day(y).astype("datetime64[D]") for y in tl.years],
        }
    )
    con.register("offer_days", days)
    con.register("spring", spring)
    m["secondary_offer_rate"] = _one(
        con,
        """
        SELECT 100 * avg(CASE WHEN EXISTS (SELECT 1 FROM secondary_offers o WHERE o.pupil_id = s.pupil_id
                              AND o.offer_date = CAST(d.offer_day AS DATE)) THEN 1.0 ELSE 0.0 END)
        FROM spring s JOIN offer_days d USING (sy)""",
    )


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve (ties count half), by ranks."""
    ranks = pd.Series(score).rank(method="average").to_numpy()
    pos = label.sum()
    neg = len(label) - pos
    return float((ranks[label].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _max_auc(con: duckdb.DuckDBPyConnection, end: str) -> float | None:
    frame = con.sql(f"""
        SELECT c.*, p.sex, p.ethnicity_major, p.idaci_decile, p.first_language,
               EXISTS (SELECT 1 FROM cme_episodes e WHERE e.pupil_id = c.pupil_id
                       AND e.start_date > c.census_date AND e.start_date <= c.census_date + {HORIZON_DAYS}) AS y
        FROM main_census c JOIN pupils p USING (pupil_id)
        WHERE month(c.census_date) = 5 AND c.census_date + {HORIZON_DAYS} <= DATE '{end}'""").df()
    label = frame.pop("y").to_numpy(dtype=bool)
    if label.sum() == 0 or label.all():
        return None
    aucs = []
    for col in frame.columns.drop(["pupil_id", "census_date"]):
        values = frame[col].astype("string").fillna("<missing>")
        counts = values.map(values.value_counts())
        values = values.where(
            counts >= MIN_CELL, "<rare>"
        )  # no lookup on a handful of pupils
        rate = pd.Series(label).groupby(values.to_numpy()).transform("mean").to_numpy()
        aucs.append(_auc(rate, label))
    return max(aucs)


def calibration_report(data_dir: Path, *, like: str | None = None) -> CalibrationReport:
    """Target vs achieved for the LA in ``data_dir`` (national targets, or ``like``'s).

    Without ``like``, an LA generated with ``--like`` is compared with that LA's
    targets (read from its ``manifest.json``).
    """
    data_dir = Path(data_dir)
    manifest = data_dir / "manifest.json"
    if like is None and manifest.is_file():
        like = json.loads(manifest.read_text("utf-8")).get("arguments", {}).get("like")
    targets = targets_for(like=like)
    achieved = measure(data_dir)
    rows = tuple(CalibrationRow(t, achieved.get(name)) for name, t in targets.items())
    return CalibrationReport(data_dir, like, rows)
