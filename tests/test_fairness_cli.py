"""`cmerisk audit` end to end: predictions of any dataset, and a saved model bundle."""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from _fairness_frames import two_groups
from cmerisk.cli import app
from cmerisk.config import ExperimentConfig
from cmerisk.spec import DatasetSpec, FeatureSpec, SensitiveSpec

SPEC_YAML = """\
id: pupil_id
target: went_missing
positive: "yes"
features:
  - {name: absence, group: attendance, reason: "missed {value:.0%} of sessions"}
sensitive:
  - {name: g, label: Group}
"""


@pytest.fixture
def predictions(tmp_path: Path) -> Path:
    frame, y, score = two_groups(3000, seed=31, under_score_b=0.5)
    frame["went_missing"] = np.where(y == 1, "yes", "no")
    frame["score"] = score
    path = tmp_path / "predictions.csv"
    frame.to_csv(path, index=False)
    (tmp_path / "spec.yaml").write_text(SPEC_YAML)
    return path


def _run(*args: str):
    return CliRunner().invoke(app, ["audit", *args])


def test_audit_of_any_scored_table_writes_json_and_html(predictions, tmp_path):
    out = tmp_path / "out"
    result = _run(
        "--predictions",
        str(predictions),
        "--spec",
        str(tmp_path / "spec.yaml"),
        "--capacity",
        "150",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert "Missed-children rate by group" in result.output
    data = json.loads((out / "fairness.json").read_text())
    assert data["settings"]["capacity"] == 150
    assert [g["name"] for g in data["groupings"]] == ["g"]
    assert data["overall"]["positives"] == int(
        (pd.read_csv(predictions)["went_missing"] == "yes").sum()
    )
    assert "gate_failures" in data
    assert (out / "fairness.html").read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--score-column", "nope"], 1, "has no column 'nope'"),
        (["--model", "somewhere"], 2, "cannot be combined"),
    ],
)
def test_bad_requests_say_what_is_wrong(predictions, tmp_path, args, code, message):
    result = _run(
        "--predictions",
        str(predictions),
        "--spec",
        str(tmp_path / "spec.yaml"),
        "--out",
        str(tmp_path / "out"),
        *args,
    )
    assert result.exit_code == code
    assert message in result.output
    assert "Traceback" not in result.output


def test_predictions_need_a_spec_and_model_needs_data(predictions, tmp_path):
    result = _run("--predictions", str(predictions), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and "--spec" in result.output
    result = _run("--model", str(tmp_path), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and "either --data or --features" in result.output
    result = _run(
        "--model",
        str(tmp_path),
        "--features",
        str(predictions),
        "--margin-column",
        "m",
        "--out",
        str(tmp_path / "o"),
    )
    assert result.exit_code == 2 and "--margin-column goes with" in result.output
    result = _run(
        "--model",
        str(tmp_path),
        "--data",
        str(tmp_path),
        "--as-of",
        "20240516",
        "--out",
        str(tmp_path / "o"),
    )
    assert result.exit_code == 2 and "--as-of must be a date like" in result.output


def test_audit_of_a_saved_model_bundle_on_a_feature_table(tmp_path):
    from cmerisk.model.bundle import make_bundle, save_bundle
    from cmerisk.model.calibrate import Calibrator

    rng = np.random.default_rng(0)
    n = 3000
    frame = pd.DataFrame(
        {
            "pupil_id": [f"p{i}" for i in range(n)],
            "absence": rng.beta(1.2, 10, n),
            "sex": rng.choice(["F", "M"], n),
        }
    )
    frame["cme"] = (rng.random(n) < 0.02 + 0.5 * frame["absence"] ** 2).astype(int)
    spec = DatasetSpec(
        id="pupil_id",
        target="cme",
        features=[FeatureSpec(name="absence", group="attendance", reason="absence")],
        sensitive=[SensitiveSpec(name="sex", label="Sex")],
    )
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "min_data_in_leaf": 20},
        lgb.Dataset(frame[["absence"]], frame["cme"]),
        10,
    )
    config = ExperimentConfig.model_validate(
        {"fairness": {"groups": ["sex"], "intersections": [], "n_bootstrap": 50}}
    )
    bundle = make_bundle(
        booster,
        spec=spec,
        config=config,
        calibrator=Calibrator("sigmoid", {"a": 1.0, "b": 0.0}),
        X_train=frame[["absence"]],
        metadata={},
    )
    model = save_bundle(bundle, tmp_path / "model")
    frame.to_parquet(tmp_path / "features.parquet")
    result = _run(
        "--model",
        str(model),
        "--features",
        str(tmp_path / "features.parquet"),
        "--capacity",
        "100",
        "--no-mitigation",
        "--out",
        str(tmp_path / "out"),
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "out" / "fairness.json").read_text())
    assert data["settings"]["n_bootstrap"] == 50  # the bundle's own config
    assert [g["name"] for g in data["groupings"]] == ["sex"]
    # ranked as scoring ranks a bundle's scores: ties in probability by margin
    assert data["settings"]["tie_break"] == (
        "model margin, then id column 'pupil_id' as text"
    )


def test_a_margin_column_breaks_ties_in_the_score(tmp_path):
    """20 pupils tie on the top score; the margin ranks the ten who went missing
    first, the ids the ten who did not."""
    n = 60
    frame = pd.DataFrame(
        {
            "pupil_id": [f"p{i:02d}" for i in range(n)],
            "g": ["A", "B"] * (n // 2),
            "absence": 0.1,
            "score": np.r_[np.full(20, 0.3), np.full(40, 0.05)],
            "margin": np.r_[np.linspace(-1, -0.5, 20), np.linspace(-4, -3, 40)],
            "went_missing": np.where(
                np.isin(np.arange(n), [*range(10, 20), 30, 45]), "yes", "no"
            ),
        }
    )
    frame.to_csv(tmp_path / "p.csv", index=False)
    (tmp_path / "spec.yaml").write_text(SPEC_YAML)
    args = [
        "--predictions",
        str(tmp_path / "p.csv"),
        "--spec",
        str(tmp_path / "spec.yaml"),
    ]
    args += ["--capacity", "10", "--no-mitigation"]
    recall = {}
    for margin in ("margin", None):
        extra = ["--margin-column", margin] if margin else []
        out = tmp_path / f"out-{margin}"
        result = _run(*args, *extra, "--out", str(out))
        assert result.exit_code == 0, result.output
        data = json.loads((out / "fairness.json").read_text())
        recall[margin] = data["overall"]["recall"]["value"]
    assert recall == {"margin": pytest.approx(10 / 12), None: 0.0}
    assert data["mitigation"] is None


def _tiny_la():
    """tests/scoring/scoring_la.py, loaded by path (tests/scoring is no package)."""
    import importlib.util

    path = Path(__file__).parent / "scoring" / "scoring_la.py"
    spec = importlib.util.spec_from_file_location("_fairness_cli_scoring_la", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_audit_from_raw_tables_builds_features_and_labels(tmp_path):
    from cmerisk.data.load import load_tables
    from cmerisk.features import build_features, cme_spec
    from cmerisk.model.bundle import make_bundle, save_bundle
    from cmerisk.model.calibrate import Calibrator
    from cmerisk.model.matrix import category_levels, feature_matrix

    tiny = _tiny_la()
    folder = tiny.write_tables(tiny.make_tables(300), tmp_path / "la")
    frame = build_features(
        load_tables(folder, as_of=tiny.AS_OF).tables, as_of=tiny.AS_OF
    )
    spec = cme_spec(available=[c for c in frame.columns if frame[c].notna().any()])
    X = feature_matrix(frame, spec=spec, categories=category_levels(frame, spec=spec))
    y = (frame["absence_rate_this_term"].fillna(0) > 0.1).astype(int)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "min_data_in_leaf": 10},
        lgb.Dataset(X, y),
        5,
    )
    kw = {
        "spec": spec,
        "calibrator": Calibrator("sigmoid", {"a": 1.0, "b": 0.0}),
        "X_train": X,
        "metadata": {},
    }
    short = ExperimentConfig.model_validate(
        {"dataset": {"horizon_days": 20}, "fairness": {"n_bootstrap": 20}}
    )
    model = save_bundle(make_bundle(booster, config=short, **kw), tmp_path / "short")
    # the data ends before the tiny LA's scoring date: audit the spring census day
    args = [
        "--data",
        str(folder),
        "--as-of",
        "2025-01-16",
        "--capacity",
        "30",
        "--no-mitigation",
        "--out",
        str(tmp_path / "out"),
    ]
    result = _run("--model", str(model), *args)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "out" / "fairness.json").read_text())
    assert 200 < data["overall"]["pupils"] <= 300  # the pupils on roll that day
    assert {"sex", "sen_provision"} <= {g["name"] for g in data["groupings"]}
    # the default 245-day window is not over within one year of data: refused
    model = save_bundle(
        make_bundle(booster, config=ExperimentConfig(), **kw), tmp_path / "long"
    )
    result = _run("--model", str(model), *args)
    assert result.exit_code == 1
    assert (
        "label window" in result.output and "pick an earlier --as-of" in result.output
    )
