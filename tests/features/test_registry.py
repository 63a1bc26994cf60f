"""Feature declarations: one per column, readable reasons, protected never features."""

from __future__ import annotations

import functools
import string

import pandas as pd
import pytest
import tiny_la_features as tiny

from cmerisk.config import ExperimentConfig
from cmerisk.data.contract import TABLES
from cmerisk.features import (
    AUDIT_COLUMNS,
    CARRY,
    FEATURE_SOURCES,
    FEATURES,
    PROTECTED,
    build_features,
    cme_spec,
)


@functools.cache
def _frame() -> pd.DataFrame:
    return build_features(tiny.tiny_tables(), as_of=tiny.AS_OF)


@pytest.mark.parametrize("feature", FEATURES, ids=lambda f: f.name)
@pytest.mark.parametrize("pupil", ["p1", "p5", "p6"])
def test_every_reason_renders_for_real_rows(feature, pupil: str) -> None:
    frame = _frame()
    row = frame.set_index("pupil_id").loc[pupil].to_dict()
    reference = None if feature.categorical else float(frame[feature.name].median())
    value = row[feature.name]
    text = feature.render_reason(value=value, reference=reference, row=row)
    assert text and "{" not in text and "}" not in text
    if pd.notna(value):
        assert "nan" not in text.split(), text


@pytest.mark.parametrize("feature", FEATURES, ids=lambda f: f.name)
def test_no_reason_speaks_of_a_protected_characteristic(feature) -> None:
    fields = {
        name for _, name, _, _ in string.Formatter().parse(feature.reason) if name
    }
    assert not fields & set(PROTECTED)
    assert fields <= {"value", "reference"} | set(_frame().columns), fields


def test_reasons_read_like_the_examples() -> None:
    by_name = {f.name: f for f in FEATURES}
    assert by_name["absence_rate_this_year"].render_reason(
        value=0.34, reference=0.05
    ) == ("missed 34% of sessions this school year (LA median 5%)")
    row = _frame().set_index("pupil_id").loc["p1"].to_dict()
    assert by_name["persistent_absence_this_year"].render_reason(
        value=1.0, row=row
    ) == ("persistently absent this school year: missed 14% of sessions (10% or more)")
    assert (
        by_name["age_months"].render_reason(value=138.0, row=row)
        == "aged 11 (138 months)"
    )


def test_every_feature_column_is_declared_once_and_protected_ones_never() -> None:
    frame = _frame()
    names = [f.name for f in FEATURES]
    assert len(names) == len(set(names))
    assert not set(names) & set(PROTECTED)
    features_in_frame = [c for c in frame.columns if c in names]
    assert features_in_frame == names  # the tiny LA has every table: every feature
    rest = set(frame.columns) - set(names) - {"pupil_id", "as_of"}
    assert rest == (set(AUDIT_COLUMNS) | set(CARRY)) - set(names)


def test_the_spec_the_model_reads() -> None:
    spec = cme_spec()
    assert (spec.id, spec.target, spec.time) == ("pupil_id", "cme", "as_of")
    assert set(spec.protected) == set(PROTECTED) and set(PROTECTED) <= set(
        spec.sensitive_names
    )
    frame = _frame()
    assert set(spec.sensitive_names) <= set(frame.columns)
    assert set(spec.carry) <= set(frame.columns)
    assert spec.categorical_features == ["school_phase"]
    assert set(ExperimentConfig().baselines.points_rule) <= set(spec.feature_names)
    assert set(ExperimentConfig().fairness.groups) <= set(frame.columns)


@pytest.mark.parametrize(
    "name",
    [
        "absence_rate_this_year",
        "unauthorised_absence_rate_this_term",
        "longest_unexplained_run_12m",
        "current_unexplained_run",
        "unresolved_n_sessions_this_year",
        "suspensions_1y",
        "persistent_absence_this_year",
        "cin_current",
        "school_moves_2y",
        "no_secondary_offer",
    ],
)
def test_more_of_a_clear_risk_never_lowers_it(name: str) -> None:
    assert {f.name: f for f in FEATURES}[name].monotone == 1


@pytest.mark.parametrize("table", [t for t in TABLES if t not in ("pupils", "census")])
def test_features_of_an_absent_table_are_absent(table: str) -> None:
    frame = build_features(tiny.tiny_tables().without(table), as_of=tiny.AS_OF)
    for name, sources in FEATURE_SOURCES.items():
        present = set(sources) - {table}
        still = bool(present & set(tiny.tiny_tables().without(table).names))
        assert (name in frame.columns) is still, name
    assert set(cme_spec(available=frame.columns).feature_names) <= set(frame.columns)
