"""Small generated pupil frames for the fairness tests (no CME pipeline needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmerisk.config import FairnessConfig
from cmerisk.spec import DatasetSpec, FeatureSpec, SensitiveSpec

SPEC = DatasetSpec(
    id="pupil_id",
    target="cme",
    features=[
        FeatureSpec(name="absence", group="attendance", reason="missed {value:.0%}")
    ],
    sensitive=[
        SensitiveSpec(name="g", label="Group"),
        SensitiveSpec(
            name="sen_provision",
            label="SEN provision",
            value_labels={"N": "No SEN", "K": "SEN support", "E": "EHC plan"},
        ),
        SensitiveSpec(
            name="idaci_decile",
            label="IDACI quintile",
            bins=[0, 2, 4, 6, 8, 10],
            bin_labels=["1 (most deprived)", "2", "3", "4", "5"],
        ),
    ],
)


def config(**kw: object) -> FairnessConfig:
    """A quick config: the given groups, no intersections, a small bootstrap."""
    base: dict[str, object] = {"groups": ["g"], "intersections": [], "n_bootstrap": 120}
    base.update(kw)
    return FairnessConfig.model_validate(base)


def two_groups(
    n: int = 20_000,
    *,
    seed: int = 0,
    base_rate: float = 0.05,
    under_score_b: float = 0.0,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Groups A (about 55%, the largest) and B, outcomes and calibrated-ish scores.

    Scores depend only on the outcome, so with ``under_score_b=0`` both groups
    share one score distribution (parity by construction). ``under_score_b``
    pulls B's positives' scores down towards the negatives' (an injected
    disparity: B's children are missed more).
    """
    rng = np.random.default_rng(seed)
    g = np.where(rng.random(n) < 0.55, "A", "B")
    y = (rng.random(n) < base_rate).astype(np.int8)
    score = np.where(y == 1, rng.beta(4, 6, n), rng.beta(1, 15, n))
    b_pos = (g == "B") & (y == 1)
    score[b_pos] = (1 - under_score_b) * score[b_pos] + under_score_b * rng.beta(
        1, 15, n
    )[b_pos]
    frame = pd.DataFrame({"pupil_id": [f"p{i:06d}" for i in range(n)], "g": g})
    return frame, y, score


def hand_frame() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Two groups of ten pupils with outcomes and scores worked through by hand.

    With capacity 5 the flagged are A1 (.9), B3 (.85), A4 (.8), B1 (.7), A2 (.6).
    """
    y_a = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    s_a = [0.9, 0.6, 0.2, 0.8, 0.5, 0.4, 0.3, 0.1, 0.1, 0.1]
    y_b = [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    s_b = [0.7, 0.35, 0.85, 0.45, 0.3, 0.25, 0.2, 0.15, 0.05, 0.05]
    frame = pd.DataFrame(
        {
            "pupil_id": [f"a{i}" for i in range(1, 11)]
            + [f"b{i}" for i in range(1, 11)],
            "g": ["A"] * 10 + ["B"] * 10,
        }
    )
    return frame, np.array(y_a + y_b), np.array(s_a + s_b)
