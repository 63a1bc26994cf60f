"""run_experiment end to end on a tiny generated frame (no MLflow); `cmerisk train`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent / "model"))
from toy import make_config, make_frame, make_spec

from cmerisk.cli import app
from cmerisk.errors import DataError
from cmerisk.model.bundle import load_bundle
from cmerisk.model.checks import check_frame
from cmerisk.pipeline import run_experiment


@pytest.fixture(scope="module")
def frame():
    return make_frame(500, seed=2)


@pytest.fixture(scope="module")
def result(frame, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return run_experiment(
        frame, spec=make_spec(), config=make_config(), tracking=False, out_dir=out
    )


def test_smoke_run_writes_bundle_tables_and_plots(result, frame) -> None:
    out = result.out_dir
    for name in (
        "metrics.csv",
        "comparison.csv",
        "run.json",
        "plots/calibration.png",
        "plots/precision_recall_at_k.png",
        "model/model.txt",
    ):
        assert (out / name).is_file(), name
    bundle = load_bundle(result.bundle_path)
    np.testing.assert_array_equal(
        bundle.predict_proba(frame), result.bundle.predict_proba(frame)
    )
    run = json.loads((out / "run.json").read_text())
    assert run["split"]["kind"] == "temporal"
    assert [c["max_depth"] for c in run["depth_candidates"]] == [2, 3]
    assert bundle.metadata["data_digest"] == result.data_digest
    assert bundle.metadata["split"] == result.split.description


def test_run_folder_holds_the_global_shap_views_and_the_card_shows_them(
    result, frame
) -> None:
    from cmerisk.explain import explain_bundle

    explain = result.out_dir / "explain"
    names = {p.name for p in explain.iterdir()}
    assert {
        "shap_importance_features.png",
        "shap_importance_groups.png",
        "shap_beeswarm.png",
    } <= names
    # dependence plots of the test year's three largest mean |SHAP|
    test = frame.iloc[result.split.test].reset_index(drop=True)
    top = explain_bundle(test, result.bundle).global_importance().head(3).index
    assert sorted(n for n in names if n.startswith("shap_dependence_")) == sorted(
        f"shap_dependence_{name}.png" for name in top
    )
    for name in names:
        assert (explain / name).read_bytes()[:4] == b"\x89PNG", name
    assert set(result.explain_plots) == names
    html = (result.out_dir / "model_card.html").read_text()
    md = (result.out_dir / "model_card.md").read_text()
    assert "(SHAP beeswarm)" in html and "mean |SHAP| by reason group" in html
    assert "](explain/shap_beeswarm.png)" in md
    assert "](explain/shap_importance_groups.png)" in md


def test_the_audit_flags_the_list_scoring_makes(frame, tmp_path) -> None:
    """Isotonic calibration ties many test-year pupils at the capacity's edge:
    the audit must break them as scoring does (margin, then id)."""
    from cmerisk.duck import connect
    from cmerisk.fairness_inputs import ranking, top_k
    from cmerisk.scoring.bands import rank_and_band

    config = make_config(calibration={"method": "isotonic"})
    run = run_experiment(
        frame, spec=make_spec(), config=config, tracking=False, out_dir=tmp_path
    )
    k = config.evaluation.primary_capacity
    test = frame.iloc[run.split.test].reset_index(drop=True)
    bundle = load_bundle(run.bundle_path)  # as scoring loads it
    margin = bundle.predict_margin(test)
    probability = bundle.calibrator.transform(margin)
    edge = np.sort(probability)[::-1][k - 1]
    assert (probability > edge).sum() < k < (probability >= edge).sum()  # a tie
    scores = test[["pupil_id"]].assign(
        probability=probability, margin=margin, row=np.arange(len(test))
    )
    con = connect()
    ranked = rank_and_band(
        con.from_df(scores), capacity=k, watch_capacity=0, watch_min_probability=0
    ).df()
    con.close()
    listed = ranked.sort_values("row")["band"].eq("flagged").to_numpy()
    audited = top_k(
        ranking(probability, ids=test["pupil_id"].to_numpy(), margin=margin),
        capacity=k,
    )
    np.testing.assert_array_equal(audited, listed)
    by_id = top_k(ranking(probability, ids=test["pupil_id"].to_numpy()), capacity=k)
    assert (by_id != listed).any()  # the old rule audited another list
    a = run.audit
    assert a.settings["tie_break"].startswith("model margin")
    m = a.metrics
    y = test["y"].to_numpy()
    for group in ("F", "M"):
        rows = m[(m["grouping"] == "sex") & (m["group"] == group)]
        value = rows.set_index("metric")["value"]
        mine = test["sex"].to_numpy() == group
        assert value["flagged"] == (listed & mine).sum()
        assert value["recall"] == pytest.approx(
            (listed & mine & (y == 1)).sum() / (mine & (y == 1)).sum()
        )


def test_slices_do_not_overlap_and_test_is_the_latest_year(result, frame) -> None:
    s = result.split
    assert not set(s.train) & set(s.test) and not set(s.calibration) & set(s.test)
    assert not set(s.train) & set(s.calibration)
    years = frame["year_index"].to_numpy()
    assert (
        set(years[s.test]) == {3} and years[s.train].max() < years[s.calibration].min()
    )
    assert result.evaluation.rows == len(s.test)


def test_every_model_is_evaluated_with_intervals(result) -> None:
    m = result.evaluation.metrics
    assert set(m["model"]) == {"model", "logistic", "points_rule"}
    core = m[
        m["metric"].isin(
            [
                "roc_auc",
                "average_precision",
                "brier",
                "ece",
                "precision_at_50",
                "recall_at_50",
                "lift_at_50",
            ]
        )
    ]
    assert len(core) == 21 and core[["ci_low", "ci_high"]].notna().all().all()


def test_gates_block_the_model_when_it_loses(result) -> None:
    beats = result.evaluation.beats_baselines
    assert result.gates.passed == (
        all(beats.values())
        and not any(f.startswith("fairness") for f in result.gates.failures)
    )
    if not all(beats.values()):
        assert "does NOT beat" in result.evaluation.verdict


def test_a_model_without_signal_loses_to_the_baselines(tmp_path) -> None:
    """Shuffle the model's features: the points rule (on intact columns) must win."""
    frame = make_frame(400, seed=4)
    rng = np.random.default_rng(0)
    for col in ("absence", "unexplained_run", "sen", "phase", "noise"):
        frame[col] = rng.permutation(frame[col].to_numpy())
    spec = make_spec()
    spec = spec.model_copy(
        update={"features": [f for f in spec.features if f.name != "persistent"]}
    )
    frame["persistent"] = make_frame(400, seed=4)["absence"].ge(0.1).astype(int)
    config = make_config(
        baselines={"points_rule": {"persistent": 1.0}},
        gates={"metric": "average_precision"},
    )
    result = run_experiment(
        frame, spec=spec, config=config, tracking=False, out_dir=tmp_path
    )
    assert result.evaluation.beats_baselines["points_rule"] is False
    assert not result.gates.passed
    assert any("points_rule" in f for f in result.gates.failures)
    assert "does NOT beat the points rule" in result.evaluation.verdict


def test_runs_are_reproducible(frame, result, tmp_path) -> None:
    again = run_experiment(
        frame, spec=make_spec(), config=make_config(), tracking=False, out_dir=tmp_path
    )
    assert (
        again.bundle.booster.model_to_string()
        == result.bundle.booster.model_to_string()
    )
    assert again.evaluation.metrics.equals(result.evaluation.metrics)


def test_without_a_time_column_the_split_is_by_id_and_says_so(tmp_path) -> None:
    frame = make_frame(300, seed=3, with_time=False)
    result = run_experiment(
        frame,
        spec=make_spec(with_time=False),
        config=make_config(),
        tracking=False,
        out_dir=tmp_path,
    )
    assert result.split.kind == "id_stratified"
    assert "by id, stratified" in result.split.description
    ids = {k: set(frame["pupil_id"].iloc[v]) for k, v in result.split.slices().items()}
    assert not ids["train"] & ids["test"]
    assert (
        json.loads((tmp_path / "run.json").read_text())["split"]["kind"]
        == "id_stratified"
    )


def test_points_rule_without_its_columns_is_noted(frame, tmp_path) -> None:
    config = make_config(baselines={"points_rule": {"cin_current": 2.0}})
    result = run_experiment(
        frame, spec=make_spec(), config=config, tracking=False, out_dir=tmp_path
    )
    assert "points_rule" not in result.evaluation.beats_baselines
    assert any("points rule not scored" in n for n in result.notes)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["absence"]), "lacks column"),
        (lambda f: f.assign(y=f["y"].astype(float).where(f.index != 3)), "no outcome"),
        (lambda f: f.assign(y=f["y"].where(f.index != 5, 2)), "binary"),
        (lambda f: f.assign(y=0), "positive value"),
        (lambda f: f.head(0), "no rows"),
        (lambda f: __import__("pandas").concat([f, f.head(2)]), "duplicate"),
    ],
)
def test_bad_frames_are_refused_with_a_clear_message(frame, change, message) -> None:
    with pytest.raises(DataError, match=message):
        check_frame(change(frame.copy()), spec=make_spec())


def test_cli_train_on_a_feature_table(frame, tmp_path) -> None:
    features = tmp_path / "features.parquet"
    frame.to_parquet(features)
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(make_spec().model_dump(mode="json")))
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(make_config().model_dump(mode="json")))
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        [
            "train",
            "--features",
            str(features),
            "--spec",
            str(spec_file),
            "--config",
            str(config_file),
            "--out",
            str(out),
            "--no-track",
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "Test-year metrics" in res.output and "precision @ 50" in res.output
    assert "Champion gates" in res.output and str(out / "model") in res.output
    assert f"Model card: {out / 'model_card.html'}" in res.output
    assert (out / "model_card.html").is_file() and (out / "explain").is_dir()
    assert load_bundle(out / "model").spec == make_spec()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--no-track", "--out", "x"], 3, "either --data"),
        (["--features", "f.parquet", "--no-track", "--out", "x"], 3, "needs --spec"),
        (["--features", "f.parquet", "--spec", "s.yaml", "--no-track"], 3, "--out"),
    ],
)
def test_cli_train_usage_errors(args, code, message) -> None:
    res = CliRunner().invoke(app, ["train", *args])
    assert res.exit_code == code
    assert message in res.output


@pytest.mark.slow  # ~25 s on the shared 2-core machine (generate + features + train)
def test_cli_train_on_a_tiny_synthetic_la(tmp_path) -> None:
    """Raw tables -> CME dataset -> model: the `--data` path end to end."""
    from cmerisk.data.synthetic.generate import generate_la

    generate_la(tmp_path / "la", pupils=3000, years=4, seed=3, key=b"test-key" * 4)
    config = make_config(
        baselines={
            "points_rule": {
                "persistent_absence_this_year": 2.0,
                "sen_any": 1.0,
                "cin_current": 2.0,
                "in_year_6": 1.0,
            }
        },
        fairness={"groups": ["sex", "sen_provision", "fsm_eligible"]},
    )
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        [
            "train",
            "--data",
            str(tmp_path / "la"),
            "--config",
            str(config_file),
            "--out",
            str(out),
            "--no-track",
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    bundle = load_bundle(out / "model")
    assert bundle.spec.target == "cme" and bundle.spec.time == "as_of"
    assert "persistent_absence_this_year" in bundle.spec.feature_names
    assert not set(bundle.spec.feature_names) & {
        "sex",
        "ethnicity_major",
        "first_language",
    }
    run = json.loads((out / "run.json").read_text())
    assert run["split"]["years"]["test"] == ["2023/24"]
    assert (out / "fairness.json").is_file()


def test_dirty_record_counts_are_shown_not_lost() -> None:
    from cmerisk.cli.train import _quality_sentences
    from cmerisk.features.quality import RULES

    category = next(iter(RULES))
    sentences = _quality_sentences({"2024-05-16": {category: 3}, "2025-05-15": {}})
    assert len(sentences) == 1
    assert sentences[0].startswith("as of 2024-05-16, ") and " 3 " in sentences[0]
