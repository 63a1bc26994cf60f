"""The real path: a synthetic LA, a model trained by the pipeline, then scoring."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cmerisk.config import ExperimentConfig
from cmerisk.data.pseudonymise import DEMO_KEY
from cmerisk.data.school_calendar import census_date
from cmerisk.data.synthetic import generate_la
from cmerisk.pipeline import build_cme_frame, run_experiment
from cmerisk.score import score_la


@pytest.mark.slow
def test_synthetic_la_trained_and_scored(tmp_path):
    data = tmp_path / "la"
    # five years: a training slice in which "last school year" features exist
    generate_la(data, pupils=3000, years=5, first_year=2020, seed=11, key=DEMO_KEY)
    config = ExperimentConfig.model_validate(
        {
            "lightgbm": {"n_estimators": 80, "max_depth_candidates": [3]},
            "evaluation": {"n_bootstrap": 20},
            "fairness": {"n_bootstrap": 20},
            "scoring": {"capacity": 50, "chunk_size": 1500},
        }
    )
    frame, spec = build_cme_frame(data, config=config)
    result = run_experiment(
        frame, spec=spec, config=config, tracking=False, out_dir=tmp_path / "run"
    )
    as_of = census_date(2024, "summer")
    summary = score_la(
        data, model=result.bundle_path, as_of=as_of, out_dir=tmp_path / "out"
    )
    c = summary.counts
    assert c["pupils_in"] == c["scored"] + c["rejected"] + c["not_on_roll"]
    assert summary.report["chunks"]["count"] > 1
    risk = pd.read_parquet(tmp_path / "out" / "risk_list.parquet")
    assert len(risk) == c["scored"] > 2000
    assert (risk["band"] == "flagged").sum() == 50
    assert risk.loc[risk["band"] == "flagged", "reason_1"].notna().all()
    trans = pd.read_csv(tmp_path / "out" / "transition_list.csv", dtype=str)
    assert set(trans["pupil_id"]) <= set(risk.loc[risk["nc_year"] == "6", "pupil_id"])
    # the model was trained on this LA's earlier years: little drift in its features
    report = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert report["counts"] == c
