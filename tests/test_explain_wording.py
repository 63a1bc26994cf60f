"""Reason wording: every declared feature speaks, nothing protected, no 'nan'."""

from __future__ import annotations

import numpy as np
import pytest

from cmerisk.errors import ConfigError, DataError
from cmerisk.explain_wording import (
    check_templates,
    reason_text,
    reference_value,
    template_fields,
)
from cmerisk.features import cme_spec
from cmerisk.spec import DEFAULT_PROTECTED, DatasetSpec, FeatureSpec

CME = cme_spec()

#: A plausible pupil value per feature kind (a risk-raising one).
VALUE_BY_KIND = {
    "rate": 0.34,
    "count": 3.0,
    "days": 12.0,
    "flag": 1,
    "number": 7.0,
    "category": "primary",
}
REFERENCE_BY_KIND = {
    "rate": 0.05,
    "count": 0.0,
    "days": 2.0,
    "flag": 0.0,
    "number": 5.0,
    "category": "primary",
}


def _row(spec: DatasetSpec) -> dict[str, object]:
    row: dict[str, object] = {f.name: VALUE_BY_KIND[f.kind] for f in spec.features}
    fields = set().union(*(template_fields(f.reason) for f in spec.features))
    for extra in fields - set(row) - {"value", "reference"}:
        row[extra] = "CIN" if "status" in extra else 6
    return row


def _reference(spec: DatasetSpec) -> dict[str, dict[str, object]]:
    return {
        "features": {
            f.name: {"reference": REFERENCE_BY_KIND[f.kind]} for f in spec.features
        }
    }


def test_the_cme_spec_has_no_protected_feature() -> None:
    assert not set(CME.feature_names) & (set(CME.protected) | set(DEFAULT_PROTECTED))


def test_every_cme_template_passes_the_boundary_check() -> None:
    row = _row(CME)
    check_templates(CME, reference=_reference(CME), columns=list(row))


@pytest.mark.parametrize("feature", CME.features, ids=lambda f: f.name)
def test_every_cme_feature_renders_with_a_value_and_comparison(
    feature: FeatureSpec,
) -> None:
    row = _row(CME)
    ref = reference_value(_reference(CME), feature.name)
    text = reason_text(feature, value=row[feature.name], reference=ref, row=row)
    assert text and "{" not in text and "nan" not in text.lower()
    assert "None" not in text
    if feature.kind == "rate":
        assert "34%" in text and "5%" in text  # own value and the point of comparison
    if feature.kind in ("count", "days"):
        assert "LA median" in text


@pytest.mark.parametrize("feature", CME.features, ids=lambda f: f.name)
def test_every_cme_feature_speaks_gaps_as_not_recorded(feature: FeatureSpec) -> None:
    row = {k: None for k in _row(CME)}
    ref = reference_value(_reference(CME), feature.name)
    text = reason_text(feature, value=np.nan, reference=ref, row=row)
    assert text.endswith("not recorded") and "nan" not in text


def test_quoted_columns_that_are_missing_read_not_recorded() -> None:
    f = FeatureSpec(
        name="trend",
        group="attendance",
        kind="number",
        reason="this term {term:.0%}, last year {last:.0%}",
    )
    text = reason_text(f, value=0.1, reference=0.0, row={"term": 0.2, "last": np.nan})
    assert text == "this term 20%, last year not recorded"


@pytest.mark.parametrize(
    ("kind", "compared"),
    [
        ("rate", True),
        ("count", True),
        ("days", True),
        ("number", False),
        ("flag", False),
    ],
)
def test_comparison_is_appended_for_quantities_only(kind: str, compared: bool) -> None:
    f = FeatureSpec(name="x", group="attendance", kind=kind, reason="x is {value}")
    assert ("LA median" in reason_text(f, value=1, reference=0.5)) is compared


def test_comparison_joins_a_closing_parenthesis() -> None:
    f = FeatureSpec(
        name="moves",
        group="mobility",
        kind="count",
        reason="{value:.0f} school moves (not counting the move to secondary)",
    )
    assert reason_text(f, value=3, reference=0) == (
        "3 school moves (not counting the move to secondary; LA median 0)"
    )


@pytest.mark.parametrize(
    ("reason", "error", "fragment"),
    [
        ("identifies as {sex}", ConfigError, "protected"),
        ("lives in {ward}", DataError, "ward"),
        ("{value:d} days", ConfigError, "does not render"),
    ],
)
def test_templates_that_cannot_be_spoken_are_refused(reason, error, fragment) -> None:
    spec = DatasetSpec(
        id="id",
        target="y",
        features=[
            FeatureSpec(name="days", group="attendance", kind="days", reason=reason)
        ],
    )
    reference = {"days": 2.0}
    with pytest.raises(error, match=fragment):
        check_templates(spec, reference=reference, columns=["id", "days", "sex"])


def test_a_missing_reference_reads_not_recorded() -> None:
    """A feature never recorded in the training years has no median; its
    template still renders (and the model cannot have split on it)."""
    f = FeatureSpec(
        name="last_year",
        group="attendance",
        kind="rate",
        reason="missed {value:.0%} last year (LA median {reference:.0%})",
    )
    spec = DatasetSpec(id="id", target="y", features=[f])
    check_templates(
        spec,
        reference={"features": {"last_year": {"reference": None}}},
        columns=["id", "last_year"],
    )
    assert reason_text(f, value=0.2, reference=None) == (
        "missed 20% last year (LA median not recorded)"
    )
