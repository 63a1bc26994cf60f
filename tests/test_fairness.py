"""The fairness audit: group metrics, suppression, intersections, disparities, gates."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import false_negative_rate, false_positive_rate, selection_rate
from sklearn.metrics import precision_score, roc_auc_score

import cmerisk.fairness as fairness
from _fairness_frames import SPEC, config, hand_frame, two_groups
from cmerisk.config import GateConfig
from cmerisk.errors import DataError
from cmerisk.fairness import audit
from cmerisk.fairness_audit import SUPPRESSED


def _value(a, grouping: str, group: str, metric: str) -> float:
    m = a.metrics
    row = m[
        (m["grouping"] == grouping) & (m["group"] == group) & (m["metric"] == metric)
    ]
    assert len(row) == 1
    return float(row["value"].iloc[0])


def _disparity(a, grouping: str, group: str, metric: str) -> pd.Series:
    d = a.disparities
    row = d[
        (d["grouping"] == grouping) & (d["group"] == group) & (d["metric"] == metric)
    ]
    assert len(row) == 1
    return row.iloc[0]


# ------------------------------------------------------------------ hand-computed
HAND = {
    # group A: 3 of 10 went missing; flagged A1 (yes), A4 (no), A2 (yes)
    "A": {
        "pupils": 10,
        "positives": 3,
        "flagged": 3,
        "missed_rate": 1 / 3,
        "recall": 2 / 3,
        "false_positive_rate": 1 / 7,
        "precision": 2 / 3,
        "selection_rate": 0.3,
        "base_rate": 0.3,
        "auc": 16 / 21,
        "calibration_error": abs(3 - 4.0) / 10,
    },
    # group B: 2 of 10 went missing; flagged B3 (no), B1 (yes)
    "B": {
        "pupils": 10,
        "positives": 2,
        "flagged": 2,
        "missed_rate": 1 / 2,
        "recall": 1 / 2,
        "false_positive_rate": 1 / 8,
        "precision": 1 / 2,
        "selection_rate": 0.2,
        "base_rate": 0.2,
        "auc": 13 / 16,
        "calibration_error": abs(2 - 3.35) / 10,
    },
    "all": {
        "pupils": 20,
        "positives": 5,
        "flagged": 5,
        "missed_rate": 2 / 5,
        "recall": 3 / 5,
        "false_positive_rate": 2 / 15,
        "precision": 3 / 5,
    },
}


@pytest.fixture(scope="module")
def hand_audit():
    frame, y, score = hand_frame()
    return audit(
        frame,
        spec=SPEC,
        config=config(min_cell=1, calibration_bins=1),
        y_true=y,
        y_score=score,
        capacity=5,
        mitigation=False,
    )


@pytest.mark.parametrize(
    ("group", "metric", "expected"),
    [(g, m, v) for g, values in HAND.items() for m, v in values.items()],
)
def test_group_metrics_match_hand_computed_values(hand_audit, group, metric, expected):
    grouping = "overall" if group == "all" else "g"
    assert _value(hand_audit, grouping, group, metric) == pytest.approx(expected)


def test_hand_disparity_is_ratio_and_difference_to_the_reference(hand_audit):
    # A and B are the same size: the first (A) is the reference
    assert hand_audit.groupings[0].reference == "A"
    d = _disparity(hand_audit, "g", "B", "missed_rate")
    assert d["ratio"] == pytest.approx((1 / 2) / (1 / 3))
    assert d["difference"] == pytest.approx(1 / 2 - 1 / 3)
    assert _disparity(hand_audit, "g", "A", "missed_rate")["status"] == "reference"


def test_metrics_agree_with_fairlearn_and_sklearn():
    frame, y, score = two_groups(4000, seed=3)
    a = audit(
        frame,
        spec=SPEC,
        config=config(min_cell=1, n_bootstrap=20),
        y_true=y,
        y_score=score,
        capacity=300,
        mitigation=False,
    )
    flags = np.zeros(len(y), dtype=int)
    flags[np.lexsort((frame["pupil_id"].to_numpy(), -score))[:300]] = 1
    for group in ("A", "B"):
        m = (frame["g"] == group).to_numpy()
        yt, yp = y[m], flags[m]
        assert _value(a, "g", group, "missed_rate") == pytest.approx(
            false_negative_rate(yt, yp)
        )
        assert _value(a, "g", group, "false_positive_rate") == pytest.approx(
            false_positive_rate(yt, yp)
        )
        assert _value(a, "g", group, "selection_rate") == pytest.approx(
            selection_rate(yt, yp)
        )
        assert _value(a, "g", group, "precision") == pytest.approx(
            precision_score(yt, yp)
        )
        assert _value(a, "g", group, "auc") == pytest.approx(
            roc_auc_score(yt, score[m])
        )


def test_metrics_come_from_fairlearns_metricframe(monkeypatch):
    calls = []
    real = fairness.MetricFrame

    def spy(**kwargs):
        calls.append(kwargs["sensitive_features"].shape[1])
        return real(**kwargs)

    monkeypatch.setattr(fairness, "MetricFrame", spy)
    frame, y, score = two_groups(2000, seed=1)
    frame["sen_provision"] = np.resize(["N", "K", "E"], len(frame))
    audit(
        frame,
        spec=SPEC,
        config=config(
            groups=["g", "sen_provision"],
            intersections=[["g", "sen_provision"]],
            n_bootstrap=10,
        ),
        y_true=y,
        y_score=score,
        capacity=100,
        mitigation=False,
    )
    # overall, two columns, and the intersection with its two sensitive features
    assert calls == [1, 1, 1, 2]


# ------------------------------------------------------------------ suppression
@pytest.fixture(scope="module")
def small_groups_audit():
    frame, y, score = two_groups(6000, seed=2)
    frame.loc[:8, "g"] = "Tiny"  # 9 pupils
    small = np.arange(100, 130)  # 30 pupils with 4 who went missing
    frame.loc[small, "g"] = "Thirty"
    y = y.copy()
    y[small] = 0
    y[small[:4]] = 1
    return audit(
        frame,
        spec=SPEC,
        config=config(n_bootstrap=60),
        y_true=y,
        y_score=score,
        capacity=300,
        mitigation=False,
    )


def test_a_nine_pupil_group_is_c_in_every_cell(small_groups_audit):
    a = small_groups_audit
    cells = a.metrics[a.metrics["group"] == "Tiny"]
    assert cells["suppressed"].all() and cells["value"].isna().all()
    assert cells["ci_low"].isna().all()
    data = a.to_dict()
    tiny = next(g for g in data["groupings"][0]["groups"] if g["group"] == "Tiny")
    assert set(tiny["metrics"].values()) == {SUPPRESSED}
    disparities = [
        d for d in data["groupings"][0]["disparities"] if d["group"] == "Tiny"
    ]
    assert {d["status"] for d in disparities} == {"suppressed"}
    assert all(d["ratio"] == SUPPRESSED for d in disparities)
    row = a.summary_frame().set_index("group").loc["Tiny"]
    assert set(row.drop(["grouping", "label", "missed_ratio_status"])) == {SUPPRESSED}


def test_thirty_pupils_with_four_who_went_missing_hide_recall_not_size():
    frame, y, score = two_groups(6000, seed=2)
    small = np.arange(100, 130)
    frame.loc[small, "g"] = "Thirty"
    y = y.copy()
    y[small] = 0
    y[small[:4]] = 1
    a = audit(
        frame,
        spec=SPEC,
        config=config(n_bootstrap=60),
        y_true=y,
        y_score=score,
        capacity=300,
        mitigation=False,
    )
    assert _value(a, "g", "Thirty", "pupils") == 30
    for metric in ("recall", "missed_rate", "positives", "base_rate", "auc"):
        assert np.isnan(_value(a, "g", "Thirty", metric)), metric
    thirty = next(
        g for g in a.to_dict()["groupings"][0]["groups"] if g["group"] == "Thirty"
    )
    assert thirty["metrics"]["pupils"] == 30
    assert thirty["metrics"]["recall"] == SUPPRESSED
    assert _disparity(a, "g", "Thirty", "missed_rate")["status"] == "suppressed"


def test_a_lone_hidden_size_hides_the_next_smallest_too(small_groups_audit):
    # Tiny's size is hidden, so the total minus the others must not give it back:
    # the next smallest group (Thirty) loses its size and the rates built on it
    a = small_groups_audit
    pupils = a.metrics.query("grouping == 'g' and metric == 'pupils'")
    assert set(pupils.loc[pupils["suppressed"], "group"]) == {"Tiny", "Thirty"}
    for metric in ("selection_rate", "base_rate", "false_positive_rate"):
        assert np.isnan(_value(a, "g", "Thirty", metric)), metric


def test_json_holds_no_nan_and_nothing_suppressed_leaks(small_groups_audit):
    text = small_groups_audit.to_json()
    data = json.loads(text)  # allow_nan=False would have raised on NaN
    assert data["suppressed_symbol"] == SUPPRESSED
    hidden = small_groups_audit.metrics[small_groups_audit.metrics["suppressed"]]
    assert hidden[["value", "ci_low", "ci_high"]].isna().all().all()


# ------------------------------------------------------------------ intersections
def test_intersection_cells_add_up_to_their_columns():
    frame, y, score = two_groups(3000, seed=4)
    rng = np.random.default_rng(4)
    frame["sen_provision"] = rng.choice(
        ["N", "K", "E", None], len(frame), p=[0.7, 0.2, 0.07, 0.03]
    )
    a = audit(
        frame,
        spec=SPEC,
        config=config(
            groups=["g", "sen_provision"],
            intersections=[["g", "sen_provision"]],
            min_cell=1,
            n_bootstrap=10,
        ),
        y_true=y,
        y_score=score,
        capacity=150,
        mitigation=False,
    )
    m = a.metrics
    cells = m[
        (m["grouping"] == "g & sen_provision")
        & (m["metric"].isin(["pupils", "positives"]))
    ]
    cells = cells.assign(
        g=cells["group"].str.split(" & ").str[0],
        sen=cells["group"].str.split(" & ").str[1],
    )
    for metric in ("pupils", "positives"):
        c = cells[cells["metric"] == metric]
        assert c["value"].sum() == _value(a, "overall", "all", metric)
        for g, total in c.groupby("g")["value"].sum().items():
            assert total == _value(a, "g", g, metric)
        for s, total in c.groupby("sen")["value"].sum().items():
            assert total == _value(a, "sen_provision", s, metric)
    assert "Unknown" in set(cells["sen"])


def test_no_intersection_slice_has_exactly_one_hidden_count():
    frame, y, score = two_groups(3000, seed=5)
    rng = np.random.default_rng(5)
    frame["sen_provision"] = rng.choice(
        ["N", "K", "E"], len(frame), p=[0.85, 0.12, 0.03]
    )
    a = audit(
        frame,
        spec=SPEC,
        config=config(
            groups=["g", "sen_provision"],
            intersections=[["g", "sen_provision"]],
            n_bootstrap=10,
        ),
        y_true=y,
        y_score=score,
        capacity=150,
        mitigation=False,
    )
    m = a.metrics[a.metrics["grouping"] == "g & sen_provision"]
    for metric in ("pupils", "positives", "flagged"):
        c = m[m["metric"] == metric]
        for part in (0, 1):
            key = c["group"].str.split(" & ").str[part]
            for _, hidden in c["suppressed"].groupby(key):
                assert hidden.sum() != 1 or len(hidden) == 1


# ------------------------------------------------------------------ disparities
@pytest.fixture(scope="module")
def injected():
    frame, y, score = two_groups(20_000, seed=7, under_score_b=0.6)
    return audit(
        frame,
        spec=SPEC,
        config=config(n_bootstrap=200),
        y_true=y,
        y_score=score,
        capacity=1000,
        mitigation=False,
    )


@pytest.fixture(scope="module")
def parity():
    frame, y, score = two_groups(60_000, seed=7)
    return audit(
        frame,
        spec=SPEC,
        config=config(n_bootstrap=200),
        y_true=y,
        y_score=score,
        capacity=3000,
        mitigation=False,
    )


def test_an_injected_disparity_is_flagged(injected):
    d = _disparity(injected, "g", "B", "missed_rate")
    assert d["status"] == "flagged"
    assert d["ratio_low"] > 1.25
    assert injected.flags[0].metric == "missed_rate"
    assert injected.flags[0].where == "g=B"
    assert "missed" in injected.flags[0].sentence()


def test_parity_by_construction_is_not_flagged(parity):
    d = _disparity(parity, "g", "B", "missed_rate")
    assert d["status"] == "within band"
    assert d["ratio_low"] < 1 < d["ratio_high"]
    assert parity.flags == []


def test_gate_failure_names_the_gate_and_the_group(injected, parity):
    failures = injected.gate_failures(GateConfig(max_missed_ratio=1.25))
    assert any(
        f.startswith("missed-children ratio for g=B is ")
        and "(gate max_missed_ratio)" in f
        for f in failures
    ), failures
    assert parity.gate_failures(GateConfig(max_missed_ratio=1.25)) == []
    off = GateConfig(max_missed_ratio=None, max_false_positive_ratio=None)
    assert injected.gate_failures(off) == []


def test_a_gate_also_fails_a_group_missed_far_less_than_the_reference(injected):
    # with B as the reference, A is missed far less: the gate's 1/limit side
    frame, y, score = two_groups(20_000, seed=7, under_score_b=0.6)
    a = audit(
        frame,
        spec=SPEC,
        config=config(n_bootstrap=100, reference={"g": "B"}),
        y_true=y,
        y_score=score,
        capacity=1000,
        mitigation=False,
    )
    failures = a.gate_failures(GateConfig(max_missed_ratio=1.25))
    assert any(
        "for g=A" in f and "< 0.80" in f and "max_missed_ratio" in f for f in failures
    )


# ------------------------------------------------------------ groups and reference
def test_missing_values_form_an_unknown_group_that_is_never_the_reference():
    frame, y, score = two_groups(3000, seed=8)
    frame.loc[frame.index[:2000], "g"] = None  # Unknown is the largest group
    a = audit(
        frame,
        spec=SPEC,
        config=config(n_bootstrap=20),
        y_true=y,
        y_score=score,
        capacity=100,
        mitigation=False,
    )
    groups = list(a.metrics.query("grouping == 'g'")["group"].unique())
    assert groups[-1] == "Unknown"
    assert _value(a, "g", "Unknown", "pupils") == 2000
    assert a.groupings[0].reference in ("A", "B")


def test_configured_reference_by_key_or_label_and_fallback():
    frame, y, score = two_groups(3000, seed=9)
    frame["sen_provision"] = np.resize(["N", "N", "N", "K", "E"], len(frame))
    kw = {"y_true": y, "y_score": score, "capacity": 100, "mitigation": False}
    cfg = config(groups=["sen_provision"], n_bootstrap=10)
    assert audit(frame, spec=SPEC, config=cfg, **kw).groupings[0].reference == "N"
    for wanted in ("K", "SEN support"):
        c = cfg.model_copy(update={"reference": {"sen_provision": wanted}})
        a = audit(frame, spec=SPEC, config=c, **kw)
        assert a.groupings[0].reference == "K"
        assert a.groupings[0].reference_rule == "configured"
    c = cfg.model_copy(update={"reference": {"sen_provision": "Z"}})
    a = audit(frame, spec=SPEC, config=c, **kw)
    assert a.groupings[0].reference == "N"
    assert any("sen_provision=Z is not in the data" in n for n in a.notes)


def test_absent_columns_are_skipped_and_said():
    frame, y, score = two_groups(1000, seed=10)
    a = audit(
        frame,
        spec=SPEC,
        config=config(
            groups=["g", "sex"], intersections=[["g", "sex"]], n_bootstrap=10
        ),
        y_true=y,
        y_score=score,
        capacity=50,
        mitigation=False,
    )
    assert [g.name for g in a.groupings] == ["g"]
    assert a.skipped == [
        "'sex' is not in the data: not audited",
        "'g & sex' needs 'sex', which is not in the data: not audited",
    ]


def test_spec_bins_make_readable_groups():
    frame, y, score = two_groups(2000, seed=11)
    frame["idaci_decile"] = np.resize(np.arange(1, 11), len(frame)).astype(float)
    a = audit(
        frame,
        spec=SPEC,
        config=config(groups=["idaci_decile"], n_bootstrap=10),
        y_true=y,
        y_score=score,
        capacity=100,
        mitigation=False,
    )
    groups = list(a.metrics.query("grouping == 'idaci_decile'")["group"].unique())
    assert groups == ["1 (most deprived)", "2", "3", "4", "5"]
    assert _value(a, "idaci_decile", "1 (most deprived)", "pupils") == 400


# ------------------------------------------------------------------ invariances
def test_same_seed_same_output_and_row_order_does_not_matter():
    frame, y, score = two_groups(4000, seed=12)
    kw = {
        "spec": SPEC,
        "config": config(n_bootstrap=50),
        "capacity": 200,
        "seed": 5,
        "mitigation": False,
    }
    first = audit(frame, y_true=y, y_score=score, **kw).to_json()
    assert audit(frame, y_true=y, y_score=score, **kw).to_json() == first
    perm = np.random.default_rng(0).permutation(len(frame))
    shuffled = audit(
        frame.iloc[perm].reset_index(drop=True),
        y_true=y[perm],
        y_score=score[perm],
        **kw,
    )
    assert shuffled.to_json() == first
    other_seed = audit(frame, y_true=y, y_score=score, **{**kw, "seed": 6}).to_json()
    assert other_seed != first


def test_a_groupings_results_do_not_depend_on_what_else_is_audited():
    frame, y, score = two_groups(3000, seed=13)
    frame["sen_provision"] = np.resize(["N", "K", "E"], len(frame))
    kw = {"y_true": y, "y_score": score, "capacity": 150, "mitigation": False}
    alone = audit(frame, spec=SPEC, config=config(n_bootstrap=40), **kw)
    more = audit(
        frame,
        spec=SPEC,
        config=config(groups=["sen_provision", "g"], n_bootstrap=40),
        **kw,
    )
    pick = ["group", "metric", "value", "ci_low", "ci_high", "suppressed"]
    a = alone.metrics.query("grouping == 'g'")[pick].reset_index(drop=True)
    b = more.metrics.query("grouping == 'g'")[pick].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_intervals_hold_their_point_and_narrow_with_size():
    widths = []
    for n in (2000, 20_000):
        frame, y, score = two_groups(n, seed=14)
        a = audit(
            frame,
            spec=SPEC,
            config=config(n_bootstrap=200),
            y_true=y,
            y_score=score,
            capacity=n // 20,
            mitigation=False,
        )
        row = a.metrics.query(
            "grouping == 'g' and group == 'A' and metric == 'missed_rate'"
        )
        lo, value, hi = row[["ci_low", "value", "ci_high"]].iloc[0]
        assert lo <= value <= hi
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2  # ~ 1/sqrt(10) narrower


# ------------------------------------------------------------------ boundary
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"y_true": np.r_[np.zeros(99), 2]}, "values must be 0/1, got 2"),
        ({"y_true": np.r_[np.zeros(99), np.nan]}, "missing value in row 99"),
        (
            {"y_score": np.r_[np.zeros(99), np.inf]},
            "score inf in row 99 is not a finite",
        ),
        ({"y_score": np.zeros(98)}, "98 scores for 100 rows"),
        ({"y_margin": np.r_[np.zeros(99), np.nan]}, "margin: score nan in row 99"),
        ({"capacity": 0}, "capacity must be at least 1"),
    ],
)
def test_bad_inputs_are_refused_with_the_value(change, message):
    frame, y, score = two_groups(100, seed=15)
    kw = {"y_true": y, "y_score": score, "capacity": 10, **change}
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        audit(frame, spec=SPEC, config=config(), **kw)


def test_scores_that_are_not_probabilities_skip_calibration_only():
    frame, y, score = two_groups(2000, seed=16)
    a = audit(
        frame,
        spec=SPEC,
        config=config(n_bootstrap=20),
        y_true=y,
        y_score=score * 10 - 3,
        capacity=100,
    )
    assert np.isnan(_value(a, "g", "A", "calibration_error"))
    assert not np.isnan(_value(a, "g", "A", "auc"))
    assert any("not probabilities" in n for n in a.notes)
    assert "equal_recall" not in set(a.mitigation["strategy"])


# ------------------------------------------------------------- the operating point
def _tied_block() -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """60 pupils; 20 share the top calibrated score (an isotonic step), and within
    it the margin ranks the last ten ids first: they are the ten who went missing
    there (two more did outside it)."""
    ids = [f"p{i:02d}" for i in range(60)]
    probability = np.r_[np.full(20, 0.3), np.full(40, 0.05)]
    margin = np.r_[np.linspace(-1.0, -0.5, 20), np.linspace(-4.0, -3.0, 40)]
    y = np.zeros(60, dtype=int)
    y[10:20] = 1
    y[[30, 45]] = 1
    frame = pd.DataFrame({"pupil_id": ids, "g": ["A", "B"] * 30})
    return frame, y, probability, margin


def _scoring_flags(frame, probability, margin, *, capacity: int) -> np.ndarray:
    """Who scoring's own ranking (DuckDB SQL) puts in the flagged band."""
    from cmerisk.duck import connect
    from cmerisk.scoring.bands import rank_and_band

    scores = pd.DataFrame(
        {
            "pupil_id": frame["pupil_id"],
            "probability": probability,
            "margin": margin,
            "row": np.arange(len(frame)),
        }
    )
    con = connect()
    try:
        ranked = rank_and_band(
            con.from_df(scores),
            capacity=capacity,
            watch_capacity=0,
            watch_min_probability=0,
        ).df()
    finally:
        con.close()
    return ranked.sort_values("row")["band"].eq("flagged").to_numpy()


def test_the_audited_list_is_scorings_list_ties_broken_by_margin():
    frame, y, probability, margin = _tied_block()
    flags = _scoring_flags(frame, probability, margin, capacity=10)
    assert flags[10:20].all() and flags.sum() == 10  # the margin decided the tie
    kw = {"spec": SPEC, "config": config(n_bootstrap=20), "y_true": y}
    with_margin = audit(frame, y_score=probability, y_margin=margin, capacity=10, **kw)
    assert _value(with_margin, "overall", "all", "recall") == pytest.approx(
        y[flags].sum() / y.sum()
    )
    assert _value(with_margin, "overall", "all", "precision") == 1.0
    assert with_margin.settings["tie_break"].startswith("model margin, then id")
    assert "ties broken by model margin, then pupil id" in with_margin.notes[0]
    deployed = with_margin.mitigation
    deployed = deployed[
        (deployed["strategy"] == "top_k")
        & (deployed["group"] == "all")
        & (deployed["metric"] == "recall")
    ]
    assert deployed["value"].tolist() == [pytest.approx(10 / 12)]
    # without the margin, ties go by id: a different list, none of whom went missing
    by_id = audit(frame, y_score=probability, capacity=10, **kw)
    assert _value(by_id, "overall", "all", "recall") == 0.0


def test_a_flag_sentence_names_the_characteristic_of_a_yes_no_group() -> None:
    from cmerisk.fairness_audit import _named

    assert _named("Yes", "FSM eligible") == "FSM eligible: yes"
    assert _named("Unknown", "Ethnicity (major group)") == (
        "Ethnicity (major group): unknown"
    )
    assert _named("SEN support", "SEN provision") == "SEN support"
