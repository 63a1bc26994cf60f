"""Turn a simulated :class:`~.lifecourse.LifeCourse` into the contract's raw tables.

Every table but the session marks is built here as a :class:`pyarrow.Table`
whose schema follows :data:`cmerisk.data.contract.TABLES` exactly (all
required and optional columns, in contract order; dates as ``date32``,
booleans as ``bool``, codes as strings). Pupils are named by ``ids`` (the
pseudonymised UPNs, or raw UPNs with ``--raw-upn``).

Conventions the tables follow (also in the manifest):

- a deletion's ``date`` is the pupil's last day on that roll, an admission's
  the first; marks run from the one to the other inclusive;
- ``destination_known`` is empty for admissions;
- census rows are for pupils on a roll on the census day: ``C`` single
  registration, or ``M`` (main) and ``S`` (subsidiary, the AP unit) when a
  pupil is dual registered that day.

Examples
--------
>>> arrow_schema("ehe").names
['pupil_id', 'start_date', 'end_date']
>>> str(arrow_schema("census").field("census_date").type)
'date32[day]'
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from cmerisk.data import codes
from cmerisk.data.contract import TABLES
from cmerisk.data.synthetic.lifecourse import LifeCourse
from cmerisk.data.synthetic.population import NEEDS
from cmerisk.data.synthetic.world import GROUNDS, OPEN, OUTCOMES

_ARROW_TYPES = {
    "id": pa.string(),
    "string": pa.string(),
    "date": pa.date32(),
    "int": pa.int32(),
    "float": pa.float64(),
    "bool": pa.bool_(),
}
SOCIAL_CARE = ("CIN", "CPP", "CLA")
SEN_CODES = np.array(["N", "K", "E"], dtype=object)
NC_LABELS = np.array(list(codes.NC_YEARS), dtype=object)


def arrow_schema(name: str) -> pa.Schema:
    """The Arrow schema of contract table ``name`` (every column, contract order)."""
    table = TABLES[name]
    return pa.schema(
        [pa.field(c.name, _ARROW_TYPES[c.kind], nullable=True) for c in table.columns]
    )


def _dates(days: np.ndarray) -> pa.Array:
    days = np.asarray(days, dtype=np.int64)
    return pa.array(days.astype(np.int32), type=pa.date32(), mask=days == OPEN)


def _strings(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(values, dtype=object), type=pa.string(), mask=mask)


def _table(name: str, columns: dict[str, pa.Array]) -> pa.Table:
    schema = arrow_schema(name)
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


def build_tables(
    lc: LifeCourse, ids: np.ndarray, *, la_code: str
) -> dict[str, pa.Table]:
    """Every contract table except ``attendance`` and ``attendance_termly``."""
    tl, schools, q = lc.timeline, lc.schools, lc.pupils
    seen = _seen(lc)
    out: dict[str, pa.Table] = {}
    out["pupils"] = _table(
        "pupils",
        {
            "pupil_id": _strings(ids[seen]),
            "date_of_birth": _dates(q.dob[seen].astype("int64")),
            "sex": _strings(q.sex[seen]),
            "ethnicity_major": _strings(q.ethnicity[seen]),
            "idaci_decile": pa.array(q.idaci[seen].astype(np.int32)),
            "first_language": _strings(q.first_language[seen]),
            "la_code": _strings(np.full(len(seen), la_code, dtype=object)),
        },
    )
    out["census"] = _census(lc, ids)
    t = lc.table("roll")
    deletion = t["change"] == 1
    out["roll_changes"] = _table(
        "roll_changes",
        {
            "pupil_id": _strings(ids[t["pupil"]]),
            "school_urn": _strings(schools.urn[t["school"]]),
            "date": _dates(t["date"]),
            "change": _strings(np.where(deletion, "deletion", "admission")),
            "deletion_ground": _strings(
                np.array(GROUNDS, dtype=object)[np.maximum(t["ground"], 0)],
                mask=~deletion,
            ),
            "destination_known": pa.array(t["known"] == 1, mask=~deletion),
        },
    )
    t = lc.table("social")
    out["social_care"] = _table(
        "social_care",
        {
            "pupil_id": _strings(ids[t["pupil"]]),
            "status": _strings(np.array(SOCIAL_CARE, dtype=object)[t["status"]]),
            "start_date": _dates(t["start"]),
            "end_date": _dates(t["end"]),
        },
    )
    t = lc.table("exclusion")
    out["exclusions"] = _table(
        "exclusions",
        {
            "pupil_id": _strings(ids[t["pupil"]]),
            "school_urn": _strings(schools.urn[t["school"]]),
            "start_date": _dates(tl.days[t["day"]].astype("int64")),
            "category": _strings(
                np.array(codes.EXCLUSION_CATEGORY, dtype=object)[t["category"]]
            ),
            "sessions": pa.array(t["sessions"].astype(np.int32)),
        },
    )
    t = lc.table("ehe")
    out["ehe"] = _table(
        "ehe",
        {
            "pupil_id": _strings(ids[t["pupil"]]),
            "start_date": _dates(t["start"]),
            "end_date": _dates(t["end"]),
        },
    )
    t = lc.table("cme")
    out["cme_episodes"] = _table(
        "cme_episodes",
        {
            "pupil_id": _strings(ids[t["pupil"]]),
            "start_date": _dates(t["start"]),
            "end_date": _dates(t["end"]),
            "outcome": _strings(
                np.array(OUTCOMES, dtype=object)[np.maximum(t["outcome"], 0)],
                mask=t["outcome"] < 0,
            ),
        },
    )
    t = lc.table("offer")
    out["secondary_offers"] = _table(
        "secondary_offers",
        {
            "pupil_id": _strings(ids[t["pupil"]]),
            "school_urn": _strings(schools.urn[t["school"]]),
            "offer_date": _dates(t["date"]),
        },
    )
    return out


def _seen(lc: LifeCourse) -> np.ndarray:
    """Pupils who appear in the data (arrived before the end), in pupil order."""
    return np.flatnonzero(lc.pupils.arrival_day < lc.timeline.n_days)


def _census(lc: LifeCourse, ids: np.ndarray) -> pa.Table:
    tl, schools, q = lc.timeline, lc.schools, lc.pupils
    s = lc.table("spell")
    parts = []
    sub = s["kind"] == 1
    for yi in range(len(tl.years)):
        for day in tl.census[yi]:
            on = (s["first"] <= day) & (s["last"] >= day)
            dual_pupils = s["pupil"][on & sub]
            rows = np.flatnonzero(on)
            status = np.where(
                sub[rows],
                "S",
                np.where(np.isin(s["pupil"][rows], dual_pupils), "M", "C"),
            )
            parts.append(
                (rows, np.full(len(rows), day), status, np.full(len(rows), yi))
            )
    rows = np.concatenate([p[0] for p in parts])
    day = np.concatenate([p[1] for p in parts])
    status = np.concatenate([p[2] for p in parts]).astype(object)
    year = np.concatenate([p[3] for p in parts])
    pupil, school = s["pupil"][rows], s["school"][rows]
    order = np.lexsort((school, day, pupil))
    pupil, school, day, status, year = (
        pupil[order],
        school[order],
        day[order],
        status[order],
        year[order],
    )
    nc = tl.first_year + year - q.cohort[pupil]
    sen = np.where(nc >= q.e_onset[pupil], 2, np.where(nc >= q.k_onset[pupil], 1, 0))
    need = np.where(nc >= 7, q.need_secondary[pupil], q.need_primary[pupil])
    return _table(
        "census",
        {
            "pupil_id": _strings(ids[pupil]),
            "census_date": _dates(tl.days[day].astype("int64")),
            "school_urn": _strings(schools.urn[school]),
            "school_phase": _strings(schools.phase[school]),
            "nc_year": _strings(NC_LABELS[np.clip(nc, 0, 11)]),
            "fsm_eligible": pa.array(q.fsm[pupil]),
            "sen_provision": _strings(SEN_CODES[sen]),
            "sen_primary_need": _strings(
                np.array(NEEDS, dtype=object)[np.maximum(need, 0)],
                mask=(sen == 0) | (need < 0),
            ),
            "enrolment_status": _strings(status),
        },
    )
