"""Tiny hand-made pupil frames and LightGBM models for the explanation tests."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from cmerisk.spec import DatasetSpec, FeatureSpec, SensitiveSpec

FEATURES = [
    FeatureSpec(
        name="absence_rate",
        group="attendance",
        kind="rate",
        monotone=1,
        reason="missed {value:.0%} of sessions this school year",
    ),
    FeatureSpec(
        name="unexplained_run_days",
        group="attendance",
        kind="days",
        monotone=1,
        reason="{value:.0f} school days in a row of unexplained absence in {run_month}",
    ),
    FeatureSpec(
        name="sen_support", group="needs", kind="flag", reason="on SEN support"
    ),
    FeatureSpec(
        name="primary_need",
        group="needs",
        kind="category",
        categorical=True,
        reason="primary need: {value}",
    ),
    FeatureSpec(
        name="cin_current", group="social_care", kind="flag", reason="child in need"
    ),
    FeatureSpec(
        name="school_moves",
        group="mobility",
        kind="count",
        monotone=1,
        reason="{value:.0f} school moves in two years",
    ),
    FeatureSpec(
        name="in_year_6",
        group="transition",
        kind="flag",
        actionable=False,
        reason="moves to secondary school this summer",
    ),
    FeatureSpec(
        name="age_months",
        group="context",
        kind="number",
        actionable=False,
        reason="aged {value:.0f} months",
    ),
]

SPEC = DatasetSpec(
    id="pupil_id",
    target="cme",
    features=FEATURES,
    sensitive=[SensitiveSpec(name="sex"), SensitiveSpec(name="ethnicity_major")],
    carry=["run_month"],
)

NEEDS = ["none", "SEMH", "ASD", "SLCN"]


def make_frame(n: int = 1500, *, seed: int = 0) -> pd.DataFrame:
    """Pupils whose risk rises with absence, runs, SEMH, CIN, moves and Year 6."""
    rng = np.random.default_rng(seed)
    absence = rng.beta(1.2, 12, n)
    run = rng.poisson(absence * 25).astype(float)
    need = pd.Categorical(
        rng.choice(NEEDS, n, p=[0.7, 0.1, 0.1, 0.1]), categories=NEEDS
    )
    sen = ((need != "none") | (rng.random(n) < 0.05)).astype(int)
    cin = (rng.random(n) < 0.06).astype(int)
    moves = rng.poisson(0.4, n)
    y6 = (rng.random(n) < 0.3).astype(int)
    age = rng.integers(100, 180, n).astype(float)
    absence[rng.random(n) < 0.04] = np.nan  # some pupils have no attendance record
    logit = (
        -4.0
        + 9 * np.nan_to_num(absence, nan=0.2)
        + 0.08 * run
        + 1.2 * (need == "SEMH")
        + 1.5 * cin
        + 0.6 * moves
        + 0.8 * y6
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "pupil_id": [f"pid{seed}_{i:05d}" for i in range(n)],
            "absence_rate": absence,
            "unexplained_run_days": run,
            "sen_support": sen,
            "primary_need": need,
            "cin_current": cin,
            "school_moves": moves,
            "in_year_6": y6,
            "age_months": age,
            "run_month": rng.choice(["September", "March", "June"], n),
            "sex": rng.choice(["SEXVAL_F", "SEXVAL_M"], n),
            "ethnicity_major": rng.choice(["ETHVAL_A", "ETHVAL_B"], n),
            "cme": y,
        }
    )


PARAMS = {
    "objective": "binary",
    "verbose": -1,
    "num_leaves": 7,
    "max_depth": 3,
    "learning_rate": 0.1,
    "min_data_in_leaf": 20,
    "num_threads": 1,
    "deterministic": True,
}


def train(
    frame: pd.DataFrame, *, seed: int = 1, rounds: int = 60, **params: object
) -> lgb.Booster:
    X = frame[SPEC.feature_names]
    data = lgb.Dataset(X, frame["cme"], categorical_feature=["primary_need"])
    return lgb.train({**PARAMS, "seed": seed, **params}, data, num_boost_round=rounds)
