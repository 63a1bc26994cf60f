"""A tiny hand-built LA (a few hundred pupils, one school year) and a model for it.

Small enough to score in seconds, with every table of the contract, Year 6 pupils
with and without secondary offers, a spread of absence, and a LightGBM model
whose bundle is saved with the scoring settings the tests need.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from cmerisk.config import ExperimentConfig
from cmerisk.data.school_calendar import school_days
from cmerisk.data.tables import RawTables
from cmerisk.features import build_features, cme_spec
from cmerisk.model.bundle import make_bundle, save_bundle
from cmerisk.model.calibrate import fit_calibrator
from cmerisk.model.matrix import category_levels, feature_matrix

AS_OF = date(2025, 5, 15)  # summer census day 2024/25
SCHOOL_YEAR = 2024
PRIMARIES = ("100001", "100002", "100003")
SECONDARIES = ("200001", "200002")


def pupil_ids(n: int) -> list[str]:
    return [f"{i * 7919 + 12345:024x}" for i in range(n)]


def make_tables(
    n: int = 300, *, seed: int = 0, absence: float = 1.0, roll_changes: bool = True
) -> dict[str, pd.DataFrame]:
    """Raw tables of a tiny LA in contract form (dates as ISO strings).

    ``absence`` scales every pupil's absence propensity (to make drift).
    """
    rng = np.random.default_rng(seed)
    ids = pupil_ids(n)
    nc = rng.integers(3, 10, n)  # Years 3-9 in 2024/25
    # born in the school year that puts them in Year nc in 2024/25
    birth_year = SCHOOL_YEAR - nc - 5
    dob = [
        date(int(y), 9, 1) + timedelta(days=int(d))
        for y, d in zip(birth_year, rng.integers(0, 365, n), strict=True)
    ]
    pupils = pd.DataFrame(
        {
            "pupil_id": ids,
            "date_of_birth": [d.isoformat() for d in dob],
            "sex": rng.choice(["F", "M"], n),
            "ethnicity_major": rng.choice(["White", "Asian", "Black", "Mixed"], n),
            "idaci_decile": rng.integers(1, 11, n),
            "first_language": rng.choice(["English", "Other"], n),
        }
    )
    primary = nc <= 6
    urn = np.where(primary, rng.choice(PRIMARIES, n), rng.choice(SECONDARIES, n))
    sen = rng.choice(["N", "K", "E"], n, p=[0.8, 0.15, 0.05])
    need = np.where(sen == "N", None, rng.choice(["SEMH", "ASD", "MLD"], n))
    census = []
    for day in (date(2024, 10, 3), date(2025, 1, 16)):
        census.append(
            pd.DataFrame(
                {
                    "pupil_id": ids,
                    "census_date": day.isoformat(),
                    "school_urn": urn,
                    "school_phase": np.where(primary, "primary", "secondary"),
                    "nc_year": nc.astype(str),
                    "fsm_eligible": rng.random(n) < 0.25,
                    "sen_provision": sen,
                    "sen_primary_need": need,
                    "enrolment_status": "C",
                }
            )
        )
    census = pd.concat(census, ignore_index=True)

    propensity = np.clip(rng.beta(1, 12, n) * absence, 0, 0.95)
    days = [d for d in school_days(SCHOOL_YEAR) if d < AS_OF][-40:]
    marks = []
    for session, present in (("AM", "/"), ("PM", "\\")):
        absent = rng.random((n, len(days))) < propensity[:, None]
        code = np.where(
            absent, rng.choice(["I", "N", "O", "M"], (n, len(days))), present
        )
        marks.append(
            pd.DataFrame(
                {
                    "pupil_id": np.repeat(ids, len(days)),
                    "school_urn": np.repeat(urn, len(days)),
                    "date": np.tile([d.isoformat() for d in days], n),
                    "session": session,
                    "code": code.ravel(),
                }
            )
        )
    attendance = pd.concat(marks, ignore_index=True)

    k = rng.choice(n, n // 10, replace=False)
    exclusions = pd.DataFrame(
        {
            "pupil_id": [ids[i] for i in k],
            "school_urn": urn[k],
            "start_date": "2025-02-03",
            "category": "suspension",
            "sessions": rng.integers(1, 6, len(k)),
        }
    )
    c = rng.choice(n, n // 20, replace=False)
    social_care = pd.DataFrame(
        {
            "pupil_id": [ids[i] for i in c],
            "status": "CIN",
            "start_date": "2024-06-01",
            "end_date": None,
        }
    )
    y6 = np.flatnonzero(nc == 6)
    offered = y6[rng.random(len(y6)) < 0.8]
    offers = pd.DataFrame(
        {
            "pupil_id": [ids[i] for i in offered],
            "school_urn": rng.choice(SECONDARIES, len(offered)),
            "offer_date": "2025-03-03",
        }
    )
    roll = pd.DataFrame(
        {
            "pupil_id": [ids[i] for i in k[:5]],
            "school_urn": urn[k[:5]],
            "date": "2024-09-02",
            "change": "admission",
            "deletion_ground": None,
            "destination_known": None,
        }
    )
    ehe = pd.DataFrame(
        {"pupil_id": [ids[0]], "start_date": ["2022-01-10"], "end_date": ["2022-06-01"]}
    )
    cme = pd.DataFrame(
        {
            "pupil_id": [ids[1]],
            "start_date": ["2023-03-01"],
            "end_date": ["2023-05-01"],
            "outcome": ["returned_to_school"],
        }
    )
    tables = {
        "pupils": pupils,
        "census": census,
        "attendance": attendance,
        "exclusions": exclusions,
        "social_care": social_care,
        "secondary_offers": offers,
        "roll_changes": roll,
        "ehe": ehe,
        "cme_episodes": cme,
    }
    if not roll_changes:
        del tables["roll_changes"]
    return tables


#: Pupils of :func:`add_dirt`, by what happens to them.
LEAVER, BAD_PUPIL_ROW, BAD_CENSUS_CODE = "leaver", "bad_pupil_row", "bad_census_code"


def add_dirt(tables: dict[str, pd.DataFrame], *, seed: int = 1) -> dict[str, list[str]]:
    """Add pupils not on roll and records that must be rejected; return their ids.

    - ``leaver``: 3 pupils whose only census row is from the previous school year
      (not on roll at AS_OF);
    - ``bad_pupil_row``: 2 existing pupils whose ``pupils`` row has an unknown sex
      code (rejected, and with it every record of theirs: not scored);
    - ``bad_census_code``: 2 existing pupils with one census row given an unknown
      SEN code (that row rejected; the pupil still scored from the other row).
    Also: one exclusion dated after AS_OF (a warning, not a reject).
    """
    rng = np.random.default_rng(seed)
    pupils, census = tables["pupils"], tables["census"]
    ids = pupils["pupil_id"].tolist()
    new = [f"{0xABC000 + i:024x}" for i in range(3)]
    leavers = pupils.iloc[:3].assign(pupil_id=new)
    old = census.iloc[:3].assign(pupil_id=new, census_date="2023-10-05")
    picked = rng.choice(np.arange(10, len(ids)), 4, replace=False)
    bad_pupils = [ids[i] for i in picked[:2]]
    bad_census = [ids[i] for i in picked[2:]]
    pupils = pd.concat([pupils, leavers], ignore_index=True)
    pupils.loc[pupils["pupil_id"].isin(bad_pupils), "sex"] = "X"
    census = pd.concat([census, old], ignore_index=True)
    first = census.index[census["pupil_id"].isin(bad_census)]
    first = census.loc[first].drop_duplicates("pupil_id").index
    census.loc[first, "sen_provision"] = "Q"
    late = (
        tables["exclusions"]
        .iloc[:1]
        .assign(start_date=(AS_OF + timedelta(days=3)).isoformat())
    )
    tables.update(
        pupils=pupils,
        census=census,
        exclusions=pd.concat([tables["exclusions"], late], ignore_index=True),
    )
    return {LEAVER: new, BAD_PUPIL_ROW: bad_pupils, BAD_CENSUS_CODE: bad_census}


def write_tables(
    tables: dict[str, pd.DataFrame], folder: Path, *, fmt: str = "parquet"
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if fmt == "csv":
            frame.to_csv(folder / f"{name}.csv", index=False)
        elif name == "attendance":
            (folder / "attendance").mkdir(exist_ok=True)
            half = len(frame) // 2
            frame.iloc[:half].to_parquet(folder / "attendance" / "part-00000.parquet")
            frame.iloc[half:].to_parquet(folder / "attendance" / "part-00001.parquet")
        else:
            frame.to_parquet(folder / f"{name}.parquet")
    return folder


def train_bundle(
    folder: Path, out: Path, *, scoring: dict | None = None, seed: int = 0
) -> Path:
    """Train a small model on the LA in ``folder`` (features at AS_OF), save it."""
    from cmerisk.data.load import load_tables

    tables: RawTables = load_tables(folder, as_of=AS_OF).tables
    frame = build_features(tables, as_of=AS_OF)
    # one school year of data: "last year" features are all missing; leave them out
    spec = cme_spec(available=[c for c in frame.columns if frame[c].notna().any()])
    rng = np.random.default_rng(seed)
    risk = frame["absence_rate_this_term"].fillna(0).to_numpy() * 8 + rng.normal(
        0, 0.7, len(frame)
    )
    y = (risk > np.quantile(risk, 0.85)).astype(int)
    X = feature_matrix(frame, spec=spec, categories=category_levels(frame, spec=spec))
    params = {
        "objective": "binary",
        "verbose": -1,
        "min_data_in_leaf": 10,
        "num_leaves": 7,
        "seed": seed,
        "deterministic": True,
        "num_threads": 1,
    }
    booster = lgb.train(
        params,
        lgb.Dataset(X, y, categorical_feature=spec.categorical_features or "auto"),
        30,
    )
    config = ExperimentConfig.model_validate(
        {
            "scoring": {
                "capacity": 20,
                "watch_capacity": 30,
                "watch_min_probability": 0.01,
                **(scoring or {}),
            }
        }
    )
    bundle = make_bundle(
        booster,
        spec=spec,
        config=config,
        calibrator=fit_calibrator(
            booster.predict(X, raw_score=True), y, method="sigmoid"
        ),
        X_train=X,
        metadata={"model_version": "7"},
    )
    return save_bundle(bundle, out)
