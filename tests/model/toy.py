"""A tiny generated pupil-level frame for the modelling, tracking and pipeline tests.

Rare positives driven by absence, an unexplained-absence run, SEN and the
school phase; four yearly as-of dates; a sensitive column that is never a
feature. Small enough that every test runs in seconds.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from cmerisk.config import ExperimentConfig
from cmerisk.spec import DatasetSpec, FeatureSpec, SensitiveSpec

AS_OF = [date(2020, 5, 21), date(2021, 5, 20), date(2022, 5, 19), date(2023, 5, 18)]


def make_frame(
    n_pupils: int = 800, *, seed: int = 0, with_time: bool = True
) -> pd.DataFrame:
    """One row per pupil per as-of year; ~6% positives."""
    rng = np.random.default_rng(seed)
    rows = []
    for year, as_of in enumerate(AS_OF):
        n = n_pupils
        absence = rng.beta(1.2, 12, size=n)
        run = rng.poisson(1 + 12 * absence)
        sen = rng.random(n) < 0.15
        phase = rng.choice(
            ["primary", "secondary", "special"], size=n, p=[0.6, 0.35, 0.05]
        )
        noise = rng.normal(size=n)
        noise[rng.random(n) < 0.1] = np.nan
        logit = -4.2 + 7 * absence + 0.12 * run + 0.8 * sen + 0.9 * (phase == "special")
        y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
        rows.append(
            pd.DataFrame(
                {
                    "pupil_id": [f"ID{seed:02d}x{i:05d}" for i in range(n)],
                    "as_of": as_of,
                    "absence": absence,
                    "unexplained_run": run,
                    "sen": sen,
                    "persistent": (absence >= 0.1).astype(int),
                    "phase": phase,
                    "noise": noise,
                    "sex": rng.choice(["F", "M"], size=n),
                    "y": y,
                    "year_index": year,
                }
            )
        )
    frame = pd.concat(rows, ignore_index=True)
    if not with_time:
        frame = frame.drop(columns=["as_of"])
    return frame


def make_spec(*, with_time: bool = True) -> DatasetSpec:
    return DatasetSpec(
        id="pupil_id",
        target="y",
        time="as_of" if with_time else None,
        features=[
            FeatureSpec(
                name="absence",
                group="attendance",
                kind="rate",
                monotone=1,
                reason="missed {value:.0%} of sessions (LA median {reference:.0%})",
            ),
            FeatureSpec(
                name="unexplained_run",
                group="attendance",
                kind="days",
                monotone=1,
                reason="{value:.0f} school days in a row unexplained",
            ),
            FeatureSpec(name="sen", group="needs", kind="flag", reason="has SEN"),
            FeatureSpec(
                name="persistent",
                group="attendance",
                kind="flag",
                reason="persistently absent",
            ),
            FeatureSpec(
                name="phase",
                group="context",
                categorical=True,
                kind="category",
                actionable=False,
                reason="{value} school",
            ),
            FeatureSpec(name="noise", group="other", reason="noise {value:.1f}"),
        ],
        sensitive=[SensitiveSpec(name="sex")],
    )


def make_config(**overrides: object) -> ExperimentConfig:
    """A fast config: few trees, small bootstrap, points rule on the toy columns."""
    data: dict = {
        "seed": 7,
        "lightgbm": {
            "n_estimators": 120,
            "early_stopping_rounds": 20,
            "learning_rate": 0.1,
            "min_child_samples": 20,
            "max_depth_candidates": [2, 3],
            "num_threads": 1,
        },
        "baselines": {
            "points_rule": {"persistent": 2.0, "sen": 1.0, "unexplained_run": 1.0}
        },
        "evaluation": {
            "capacities": [20, 50],
            "top_fractions": [0.05],
            "primary_capacity": 50,
            "n_bootstrap": 60,
        },
        "fairness": {"groups": ["sex"], "intersections": [], "n_bootstrap": 20},
    }
    for key, value in overrides.items():
        section = data.setdefault(key, {})
        if isinstance(value, dict):
            section.update(value)
        else:
            data[key] = value
    return ExperimentConfig.model_validate(data)
