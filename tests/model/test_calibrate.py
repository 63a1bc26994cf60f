"""Calibration: improves Brier on a miscalibrated toy; JSON round trip; auto choice."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from cmerisk.model.calibrate import Calibrator, cross_fitted_brier, fit_calibrator


def _miscalibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores that, read as probabilities, overstate risk (as class weights do)."""
    rng = np.random.default_rng(seed)
    margin = rng.normal(0, 1.5, n)
    y = (rng.random(n) < expit(1.3 * margin - 3.5)).astype(int)
    return margin, y


@pytest.mark.parametrize("method", ["isotonic", "sigmoid", "auto"])
def test_calibration_improves_brier_on_held_out_rows(method) -> None:
    margin, y = _miscalibrated(6000, seed=0)
    fit, held = slice(0, 3000), slice(3000, None)
    raw = expit(margin[held])  # the uncalibrated reading
    cal = fit_calibrator(margin[fit], y[fit], method=method, seed=0)
    calibrated = cal.transform(margin[held])
    brier_raw = np.mean((raw - y[held]) ** 2)
    brier_cal = np.mean((calibrated - y[held]) ** 2)
    assert brier_cal < 0.5 * brier_raw
    assert abs(calibrated.mean() - y[held].mean()) < 0.01


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_json_round_trip_is_exact(method) -> None:
    margin, y = _miscalibrated(2000, seed=1)
    cal = fit_calibrator(margin, y, method=method)
    again = Calibrator.from_json(cal.to_json())
    grid = np.linspace(-6, 6, 101)
    np.testing.assert_array_equal(again.transform(grid), cal.transform(grid))
    assert "pickle" not in cal.to_json()


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_calibrated_probabilities_are_monotone_and_bounded(method) -> None:
    margin, y = _miscalibrated(2000, seed=2)
    p = fit_calibrator(margin, y, method=method).transform(np.linspace(-10, 10, 500))
    assert (np.diff(p) >= 0).all() and p.min() >= 0 and p.max() <= 1


def test_auto_records_and_follows_the_cross_fitted_brier() -> None:
    margin, y = _miscalibrated(4000, seed=3)
    cal = fit_calibrator(margin, y, method="auto", seed=4)
    briers = cal.selection["cross_fitted_brier"]
    assert briers == cross_fitted_brier(margin, y, seed=4)
    assert cal.method == min(briers, key=briers.get)


def test_auto_picks_isotonic_for_a_non_sigmoid_shape() -> None:
    rng = np.random.default_rng(6)
    score = rng.uniform(-3, 3, 6000)
    # risk is a step: flat, then high - a sigmoid in the score cannot follow it
    y = (rng.random(6000) < np.where(score > 1, 0.6, 0.02)).astype(int)
    assert fit_calibrator(score, y, method="auto").method == "isotonic"


def test_auto_falls_back_to_sigmoid_with_very_few_positives() -> None:
    score = np.arange(100.0)
    y = np.zeros(100, dtype=int)
    y[[90, 97]] = 1
    cal = fit_calibrator(score, y, method="auto")
    assert cal.method == "sigmoid" and "too few" in cal.selection["note"]


def test_a_slice_without_positives_is_refused() -> None:
    with pytest.raises(ValueError, match="0 positive"):
        fit_calibrator(np.arange(10.0), np.zeros(10), method="sigmoid")


def test_a_tampered_isotonic_map_is_refused() -> None:
    with pytest.raises(ValueError, match="sorted"):
        Calibrator.from_dict(
            {"method": "isotonic", "params": {"x": [0, 1], "y": [0.5, 0.1]}}
        )
