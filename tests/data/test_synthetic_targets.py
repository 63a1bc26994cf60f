"""Calibration targets, one LA's published rates, and the parameters they move."""

from __future__ import annotations

import math

import pytest

from cmerisk.data.synthetic.params import Params, params_for
from cmerisk.data.synthetic.targets import (
    Target,
    la_names,
    la_rates,
    national_targets,
    targets_for,
)
from cmerisk.errors import ConfigError


def test_every_national_target_has_a_source_and_a_band_around_it() -> None:
    targets = national_targets()
    assert len(targets) >= 20
    for t in targets.values():
        assert t.source and t.measure and t.label
        assert t.low <= t.value <= t.high, t.name
        assert t.check


@pytest.mark.parametrize(
    ("achieved", "passes"),
    [
        (2.7, True),
        (2.16, True),
        (3.24, True),
        (2.15, False),
        (3.3, False),
        (math.nan, False),
        (None, False),
    ],
)
def test_a_target_passes_only_inside_its_band(
    achieved: float | None, passes: bool
) -> None:
    assert national_targets()["cme_ratio_cin"].passes(achieved) is passes


def test_like_takes_the_las_published_absence() -> None:
    birmingham = targets_for(like="330")
    assert birmingham["persistent_absence"].value == pytest.approx(22.03)
    assert birmingham["persistent_absence_primary"].value == pytest.approx(17.58)
    assert "Birmingham" in birmingham["overall_absence"].source
    # Figures the LA has no published value for stay national, or are information only.
    assert birmingham["cme_ratio_cin"] == national_targets()["cme_ratio_cin"]
    assert not birmingham["fsm"].check


def test_an_unknown_la_is_refused_with_examples() -> None:
    with pytest.raises(ConfigError, match=r"--like '999'.*e\.g\."):
        targets_for(like="999")


def test_suppressed_figures_are_missing_not_zero() -> None:
    rates = la_rates("201")  # City of London: tiny, mostly suppressed
    assert rates["persistent_absence_cin"] is None
    assert (
        rates["persistent_absence_primary"] is not None
        or rates["persistent_absence"] is None
    )
    t = targets_for(like="201")
    assert (
        t["persistent_absence_cin"].value
        == national_targets()["persistent_absence_cin"].value
    )


def test_every_la_in_the_reference_data_gives_a_complete_target_set() -> None:
    names = la_names()
    assert len(names) > 150
    for code in names:
        targets = targets_for(like=code)
        assert set(targets) == set(national_targets())
        assert all(t.low <= t.value <= t.high for t in targets.values()), code


def _highest_and_lowest_absence() -> tuple[str, str]:
    pa = {c: la_rates(c)["persistent_absence"] for c in la_names()}
    known = {c: v for c, v in pa.items() if v is not None}
    return max(known, key=known.__getitem__), min(known, key=known.__getitem__)


def test_params_move_towards_the_la() -> None:
    high, low = _highest_and_lowest_absence()
    base = params_for(like=None)
    assert base == Params()
    assert params_for(like=high).absence_intercept > base.absence_intercept
    assert params_for(like=low).absence_intercept < base.absence_intercept


def test_target_is_a_frozen_record() -> None:
    t = Target("x", "x", 1.0, 0.5, 1.5, "%", "src", "how")
    with pytest.raises(AttributeError):
        t.value = 2.0  # type: ignore[misc]
