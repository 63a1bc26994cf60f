"""`cmerisk explain` and the function behind it, on a real (tiny) model bundle."""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from _explain_models import PARAMS, SPEC, make_frame
from cmerisk.cli import app
from cmerisk.config import ExperimentConfig
from cmerisk.explain_outputs import latest_as_of, rank_bands, write_explanations
from cmerisk.model.bundle import ModelBundle, load_bundle, make_bundle, save_bundle
from cmerisk.model.calibrate import Calibrator
from cmerisk.model.matrix import category_levels, feature_matrix


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame(900, seed=8)


@pytest.fixture(scope="module")
def bundle_path(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    X = feature_matrix(frame, spec=SPEC, categories=category_levels(frame, spec=SPEC))
    booster = lgb.train({**PARAMS, "seed": 3}, lgb.Dataset(X, frame["cme"]), 40)
    config = ExperimentConfig.model_validate(
        {
            "scoring": {
                "capacity": 30,
                "watch_capacity": 20,
                "watch_min_probability": 0.0,
            }
        }
    )
    bundle = make_bundle(
        booster,
        spec=SPEC,
        config=config,
        calibrator=Calibrator("sigmoid", {"a": 1.0, "b": 0.0}),
        X_train=X,
        metadata={"model_name": "toy"},
    )
    return save_bundle(bundle, tmp_path_factory.mktemp("model") / "bundle")


@pytest.fixture(scope="module")
def bundle(bundle_path: Path) -> ModelBundle:
    return load_bundle(bundle_path)


@pytest.mark.parametrize(
    ("which", "rows"), [("flagged", 30), ("listed", 50), ("all", 900)]
)
def test_writes_reasons_for_the_pupils_asked_for(
    frame, bundle, tmp_path, which, rows
) -> None:
    run = write_explanations(frame, bundle, out_dir=tmp_path, which=which)
    table = pd.read_parquet(tmp_path / "reasons.parquet")
    assert len(table) == run.explained == rows
    assert run.flagged == 30 and run.cards == 30
    assert table["rank"].is_monotonic_increasing and table["rank"].iloc[0] == 1
    assert (table["band"].iloc[:30] == "flagged").all()
    csv = pd.read_csv(tmp_path / "reasons.csv")
    assert list(csv.columns) == list(table.columns)
    groups = [c for c in table.columns if c.startswith("contribution_")]
    assert {g.removeprefix("contribution_") for g in groups} == {
        f.group for f in SPEC.features
    }
    # the model score decomposes: base + group contributions = model score
    base = float(
        bundle.booster.predict(bundle.feature_matrix(frame), pred_contrib=True)[0, -1]
    )
    assert np.allclose(
        base + table[groups].sum(axis=1), table["model_score"], atol=1e-6
    )
    cards = sorted((tmp_path / "pupils").glob("pupil_*.html"))
    assert len(cards) == 30


def test_probabilities_and_bands_match_the_bundle(frame, bundle, tmp_path) -> None:
    write_explanations(frame, bundle, out_dir=tmp_path, which="all", capacity=10)
    table = pd.read_parquet(tmp_path / "reasons.parquet").set_index("pupil_id")
    expected = pd.Series(bundle.predict_proba(frame), index=frame["pupil_id"])
    assert np.allclose(table.loc[expected.index, "probability"], expected)
    top10 = expected.sort_values(ascending=False).index[:10]
    assert set(table.index[table["band"] == "flagged"]) == set(top10)


def test_summary_has_counts_and_no_ids(frame, bundle, tmp_path) -> None:
    write_explanations(frame, bundle, out_dir=tmp_path, plots=True)
    summary = json.loads((tmp_path / "explain_summary.json").read_text())
    assert summary["pupils"] == 900 and summary["explained"] == 30
    assert summary["pupils_per_second"] > 0
    assert "pid8_" not in json.dumps(summary)
    assert any(f.startswith("plots/shap_beeswarm") for f in summary["files"])
    assert (tmp_path / "plots" / "shap_beeswarm.png").read_bytes()[:4] == b"\x89PNG"


def test_only_the_latest_as_of_is_explained() -> None:
    frame = pd.DataFrame(
        {"id": ["a", "b", "a"], "as_of": ["2023-05-18", "2024-05-16", "2024-05-16"]}
    )
    kept, latest, notes = latest_as_of(frame, "as_of")
    assert latest == "2024-05-16" and list(kept["id"]) == ["b", "a"]
    assert "1 earlier row(s) left out" in notes[0]
    same, _, none = latest_as_of(kept, "as_of")
    assert len(same) == 2 and none == []


def test_rank_bands_follow_the_scoring_rule() -> None:
    ranked = rank_bands(
        np.array(["a", "b", "c", "d"], dtype=object),
        np.array([0.1, 0.5, 0.3, 0.01]),
        np.array([0.0, 1.0, 0.5, -2.0]),
        capacity=1,
        watch_capacity=2,
        watch_min_probability=0.05,
    )
    assert ranked["rank"].tolist() == [3, 1, 2, 4]
    assert ranked["band"].tolist() == ["watch", "flagged", "watch", "low"]


runner = CliRunner()


def test_cli_end_to_end(frame, bundle_path, tmp_path) -> None:
    features = tmp_path / "features.parquet"
    frame.to_parquet(features)
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "explain",
            "--model",
            str(bundle_path),
            "--features",
            str(features),
            "--out",
            str(out),
            "--capacity",
            "12",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "explained 12 of 900 pupils" in result.output
    assert len(pd.read_csv(out / "reasons.csv")) == 12
    assert (out / "pupils" / "index.html").is_file()


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--features", "missing.parquet"], 1, "no feature table"),
        (["--model", "no-such-model"], 3, "no model"),
        (["--ids", "some"], 2, "not one of flagged, listed, all"),
        (["--features", "bad.csv"], 1, "lacks column(s)"),
    ],
)
def test_cli_bad_input_is_a_message_not_a_traceback(
    frame, bundle_path, tmp_path, monkeypatch, args, code, fragment
) -> None:
    monkeypatch.chdir(tmp_path)
    frame.drop(columns=["school_moves"]).to_csv("bad.csv", index=False)
    frame.to_parquet("features.parquet")
    base = {
        "--model": str(bundle_path),
        "--features": "features.parquet",
        "--out": "out",
    }
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    result = runner.invoke(app, ["explain", *[x for kv in base.items() for x in kv]])
    assert result.exit_code == code
    assert fragment in result.output
    assert "Traceback" not in result.output


def test_global_plots_for_a_run_record(frame, bundle) -> None:
    from cmerisk.explain_outputs import global_plots_for

    two_years = pd.concat(
        [frame.assign(as_of="2023-05-18"), frame.assign(as_of="2024-05-16")]
    )
    spec = bundle.spec.model_copy(update={"time": "as_of"})
    timed = ModelBundle(
        bundle.booster,
        bundle.calibrator,
        spec,
        bundle.config,
        bundle.reference,
        bundle.metadata,
    )
    plots = global_plots_for(two_years, timed, max_rows=200)
    assert "shap_beeswarm.png" in plots and "shap_importance_groups.png" in plots
    assert all(png[:4] == b"\x89PNG" for png in plots.values())
    assert global_plots_for(frame.head(0), bundle) == {}
