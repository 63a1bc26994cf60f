"""Turn a model's raw scores into honest probabilities, chosen on the calibration slice.

Training reweights the rare positive class, so raw LightGBM scores overstate
risk; a calibrator fitted on a later, held-out slice maps them back to
probabilities ("about 3 in 10 of these pupils go missing"). Two maps:

- ``sigmoid`` (Platt): ``p = 1 / (1 + exp(-(a * score + b)))``; two numbers.
- ``isotonic``: a non-decreasing step curve through fitted (score, p)
  thresholds, linearly interpolated between them and flat beyond the ends.

``auto`` fits both on ``n_folds - 1`` folds of the calibration slice, scores
the held-out fold, and keeps the method with the lower cross-fitted Brier
score; the kept method is then refitted on the whole slice. Calibrators are
plain JSON (no pickle) so the model bundle stays readable and safe.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> score = rng.normal(size=2000)
>>> y = (rng.random(2000) < 1 / (1 + np.exp(-(2 * score - 3)))).astype(int)
>>> cal = fit_calibrator(score, y, method="sigmoid")
>>> round(cal.params["a"], 1), round(cal.params["b"], 1)
(2.0, -3.0)
>>> Calibrator.from_json(cal.to_json()).transform(np.array([1.5])).round(1)
array([0.5])
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold

CalibrationMethod = Literal["auto", "isotonic", "sigmoid"]


@dataclass(frozen=True)
class Calibrator:
    """A fitted score -> probability map, serialisable to JSON.

    Attributes
    ----------
    method
        ``"isotonic"`` or ``"sigmoid"``.
    params
        Sigmoid: ``a``, ``b``. Isotonic: ``x`` (score thresholds, increasing)
        and ``y`` (probabilities at them, non-decreasing).
    selection
        How the method was chosen: the requested method and, for ``auto``,
        each method's cross-fitted Brier score on the calibration slice.
    """

    method: Literal["isotonic", "sigmoid"]
    params: dict[str, Any]
    selection: dict[str, Any] = field(default_factory=dict)

    def transform(self, score: ArrayLike) -> np.ndarray:
        """Probabilities for raw scores (log-odds margins or any monotone score)."""
        s = np.asarray(score, dtype="float64")
        if self.method == "sigmoid":
            return np.asarray(expit(self.params["a"] * s + self.params["b"]))
        x = np.asarray(self.params["x"], dtype="float64")
        y = np.asarray(self.params["y"], dtype="float64")
        return np.interp(s, x, y)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "params": self.params,
            "selection": self.selection,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        method = data["method"]
        params = dict(data["params"])
        if method == "sigmoid":
            params = {"a": float(params["a"]), "b": float(params["b"])}
        elif method == "isotonic":
            x = [float(v) for v in params["x"]]
            y = [float(v) for v in params["y"]]
            if (
                len(x) != len(y)
                or not x
                or np.any(np.diff(x) < 0)
                or np.any(np.diff(y) < 0)
            ):
                raise ValueError(
                    "isotonic calibrator needs equal-length, sorted x and y"
                )
            params = {"x": x, "y": y}
        else:
            raise ValueError(f"unknown calibration method {method!r}")
        return cls(
            method=method, params=params, selection=dict(data.get("selection", {}))
        )

    @classmethod
    def from_json(cls, text: str) -> Calibrator:
        return cls.from_dict(json.loads(text))


def _fit_sigmoid(score: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Platt scaling with Platt's smoothed targets, by Newton-type minimisation."""
    n_pos = float(y.sum())
    n_neg = float(len(y) - n_pos)
    target = np.where(y > 0, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    scale = float(np.std(score)) or 1.0
    s = score / scale

    def loss(ab: np.ndarray) -> tuple[float, np.ndarray]:
        z = ab[0] * s + ab[1]
        # log(1 + exp(z)) - target * z, computed stably
        value = np.logaddexp(0, z) - target * z
        resid = expit(z) - target
        return float(value.sum()), np.array([float(resid @ s), float(resid.sum())])

    prior = np.log((n_pos + 1) / (n_neg + 1))
    result = minimize(loss, x0=np.array([1.0, prior]), jac=True, method="L-BFGS-B")
    a, b = result.x
    return {"a": float(a / scale), "b": float(b)}


def _fit_isotonic(score: np.ndarray, y: np.ndarray) -> dict[str, list[float]]:
    iso = IsotonicRegression(
        y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip"
    )
    iso.fit(score, y)
    return {
        "x": [float(v) for v in iso.X_thresholds_],
        "y": [float(v) for v in iso.y_thresholds_],
    }


def _fit(
    method: Literal["isotonic", "sigmoid"], score: np.ndarray, y: np.ndarray
) -> Calibrator:
    if method == "sigmoid":
        return Calibrator("sigmoid", _fit_sigmoid(score, y))
    return Calibrator("isotonic", _fit_isotonic(score, y))


def cross_fitted_brier(
    score: ArrayLike, y: ArrayLike, *, n_folds: int = 5, seed: int = 0
) -> dict[str, float]:
    """Brier score of each method when each fold is calibrated by the other folds."""
    s = np.asarray(score, dtype="float64")
    t = np.asarray(y, dtype="int64")
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    out: dict[str, float] = {}
    for method in ("isotonic", "sigmoid"):
        pred = np.empty_like(s)
        for fit_idx, held_idx in folds.split(s.reshape(-1, 1), t):
            pred[held_idx] = _fit(method, s[fit_idx], t[fit_idx]).transform(s[held_idx])
        out[method] = float(np.mean((pred - t) ** 2))
    return out


def fit_calibrator(
    score: ArrayLike,
    y: ArrayLike,
    *,
    method: CalibrationMethod = "auto",
    n_folds: int = 5,
    seed: int = 0,
) -> Calibrator:
    """Fit a calibrator on the calibration slice.

    Parameters
    ----------
    score
        The model's raw scores on the calibration slice (higher = riskier).
    y
        0/1 outcomes of the same rows.
    method
        ``auto`` picks the lower cross-fitted Brier score (a tie goes to the
        simpler sigmoid); with fewer than ``n_folds`` positives or
        negatives, ``auto`` falls back to ``sigmoid`` (two parameters are all
        such a slice can support) and records why.
    """
    s = np.asarray(score, dtype="float64")
    t = np.asarray(y, dtype="int64")
    n_pos = int(t.sum())
    n_neg = int(len(t) - n_pos)
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            f"calibration slice has {n_pos} positive and {n_neg} negative rows; "
            "it needs both to calibrate"
        )
    selection: dict[str, Any] = {
        "requested": method,
        "rows": len(t),
        "positives": n_pos,
    }
    if method == "auto":
        if min(n_pos, n_neg) < n_folds:
            chosen: Literal["isotonic", "sigmoid"] = "sigmoid"
            selection["note"] = (
                f"only {min(n_pos, n_neg)} rows in the rarer class, too few to "
                "cross-fit "
                "isotonic calibration; used sigmoid"
            )
        else:
            briers = cross_fitted_brier(s, t, n_folds=n_folds, seed=seed)
            selection["cross_fitted_brier"] = briers
            chosen = "isotonic" if briers["isotonic"] < briers["sigmoid"] else "sigmoid"
    else:
        chosen = method
    fitted = _fit(chosen, s, t)
    return Calibrator(fitted.method, fitted.params, selection)
