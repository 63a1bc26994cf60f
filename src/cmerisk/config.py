"""Typed, versioned configuration: the only place YAML is read.

An :class:`ExperimentConfig` says how a model is built (which as-of dates,
horizon, split, model, calibration, evaluation, gates, fairness audit) and how
it scores. It is stored inside every model bundle; scoring reads the bundle's
copy, never today's ``configs/``. ``configs/default.yaml`` mirrors the defaults
here (a test keeps the two equal).

Examples
--------
>>> cfg = ExperimentConfig()
>>> cfg.config_version, cfg.dataset.as_of_terms, cfg.evaluation.primary_capacity
(1, ['summer'], 200)
>>> ExperimentConfig.model_validate({"evaluation": {"capacities": [0]}})
Traceback (most recent call last):
    ...
pydantic_core._pydantic_core.ValidationError: 1 validation error for ExperimentConfig
evaluation.capacities.0
  Input should be greater than 0 [type=greater_than, input_value=0, input_type=int]
    ...
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cmerisk.data.school_calendar import Term
from cmerisk.errors import ConfigError
from cmerisk.spec import DatasetSpec

PositiveInt = Annotated[int, Field(gt=0)]
Fraction = Annotated[float, Field(gt=0, lt=1)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetConfig(_Section):
    """Which (pupil, as-of) rows make the dataset, and the label window."""

    as_of_terms: list[Term] = Field(
        default_factory=lambda: list[Term](["summer"]),
        description="census days used as as-of dates in each school year",
    )
    horizon_days: PositiveInt = Field(
        default=245,
        description="label window (as_of, as_of + horizon]; 245 days runs from the "
        "summer census to the next spring census, covering the summer transition",
    )
    first_school_year: int | None = Field(
        default=None, description="earliest school year to take as-of dates from"
    )


class SplitConfig(_Section):
    """Temporal validation: train on earlier years, calibrate later, test on the latest."""

    calibration_years: PositiveInt = 1
    test_years: PositiveInt = 1
    purge: bool = Field(
        default=True,
        description="drop training rows whose label window reaches into a later slice",
    )
    # Used only when the data has no time column.
    calibration_fraction: Fraction = 0.2
    test_fraction: Fraction = 0.25


class LightGBMConfig(_Section):
    """LightGBM settings; ``max_depth_candidates`` are tried and the shallowest
    model whose validation score ties with the best is kept."""

    learning_rate: float = Field(default=0.05, gt=0, le=1)
    num_leaves: PositiveInt = 15
    max_depth_candidates: list[int] = Field(default_factory=lambda: [3, 4, 6])
    tie_tolerance: float = Field(
        default=0.005,
        ge=0,
        description="validation average-precision gap that counts as a tie",
    )
    n_estimators: PositiveInt = 600
    early_stopping_rounds: PositiveInt = 50
    min_child_samples: PositiveInt = 40
    subsample: float = Field(default=0.8, gt=0, le=1)
    colsample_bytree: float = Field(default=0.8, gt=0, le=1)
    reg_lambda: float = Field(default=1.0, ge=0)
    class_weight: Literal["balanced", "none"] = Field(
        default="none",
        description="'balanced' reweights the rare positive class (n_neg/n_pos, ~300 "
        "for CME) and overfits a few hundred positives: on the default synthetic LA it "
        "cut test average precision from ~0.05 to ~0.01. 'none' leaves the imbalance to "
        "early stopping on average precision and to calibration",
    )
    use_monotone_constraints: bool = True
    monotone_overrides: dict[str, Literal[-1, 0, 1]] = Field(default_factory=dict)
    num_threads: int = Field(default=0, ge=0, description="0 = LightGBM's default")


class BaselineConfig(_Section):
    """The honest comparisons: logistic regression and an LA-style points rule."""

    logistic_c: float = Field(default=1.0, gt=0)
    points_rule: dict[str, float] = Field(
        default_factory=lambda: {
            "persistent_absence_this_year": 2.0,
            "sen_any": 1.0,
            "cin_current": 2.0,
            "in_year_6": 1.0,
            "school_moves_2y": 1.0,
        },
        description="feature -> points; a feature counts when its value is > 0",
    )


class CalibrationConfig(_Section):
    method: Literal["auto", "isotonic", "sigmoid"] = Field(
        default="auto",
        description="auto picks the lower Brier score on a cross-fit of the calibration slice",
    )


class EvaluationConfig(_Section):
    capacities: list[PositiveInt] = Field(default_factory=lambda: [50, 100, 200, 500])
    top_fractions: list[Fraction] = Field(default_factory=lambda: [0.01, 0.05])
    primary_capacity: PositiveInt = 200
    n_bootstrap: PositiveInt = 500
    ci_level: Fraction = 0.95
    calibration_bins: PositiveInt = 10


class GateConfig(_Section):
    """What a model must pass to take the ``champion`` alias."""

    must_beat_baselines: bool = True
    metric: Literal[
        "precision_at_primary", "recall_at_primary", "average_precision"
    ] = "precision_at_primary"
    max_missed_ratio: float | None = Field(
        default=1.25,
        gt=1,
        description="largest allowed ratio of missed-children rates between a group and "
        "the reference group (flagged only when its CI excludes parity)",
    )
    max_false_positive_ratio: float | None = Field(default=None, gt=1)


class IntersectionConfig(_Section):
    columns: list[str] = Field(min_length=2)


class FairnessConfig(_Section):
    groups: list[str] = Field(
        default_factory=lambda: [
            "sex",
            "ethnicity_major",
            "sen_provision",
            "semh",
            "fsm_eligible",
            "idaci_quintile",
            "cin_status",
            "first_language",
        ]
    )
    intersections: list[list[str]] = Field(
        default_factory=lambda: [
            ["sen_provision", "fsm_eligible"],
            ["ethnicity_major", "sex"],
        ]
    )
    reference: dict[str, str] = Field(
        default_factory=dict,
        description="group column -> reference value (default: largest)",
    )
    min_cell: PositiveInt = 10
    parity_band: tuple[float, float] = (0.8, 1.25)
    n_bootstrap: PositiveInt = 300
    ci_level: Fraction = 0.95
    calibration_bins: PositiveInt = Field(
        default=10,
        description="score bins (quantiles of the audited year) for the calibration error",
    )

    @model_validator(mode="after")
    def _band_ok(self) -> FairnessConfig:
        lo, hi = self.parity_band
        if not 0 < lo < 1 < hi:
            raise ValueError(
                f"parity_band must satisfy 0 < low < 1 < high, got {self.parity_band}"
            )
        return self


class ScoringConfig(_Section):
    capacity: PositiveInt = 200
    watch_capacity: PositiveInt = Field(
        default=400,
        description="pupils ranked after the flagged list, up to this many, are 'watch'",
    )
    watch_min_probability: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="...and only when their probability reaches this",
    )
    valid_days: PositiveInt = Field(
        default=60,
        description="a risk list expires this many days after its as-of date",
    )
    explain: Literal["listed", "all", "none"] = "listed"
    chunk_size: PositiveInt = 50_000
    psi_warning: float = Field(default=0.25, gt=0)


class TrackingConfig(_Section):
    experiment: str = "cmerisk"
    registered_model: str = "cmerisk"
    champion_alias: str = "champion"


class ExperimentConfig(_Section):
    """Everything that defines a training run and how its model scores."""

    config_version: Literal[1] = 1
    name: str = "default"
    seed: int = 20240519
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    lightgbm: LightGBMConfig = Field(default_factory=LightGBMConfig)
    baselines: BaselineConfig = Field(default_factory=BaselineConfig)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    gates: GateConfig = Field(default_factory=GateConfig)
    fairness: FairnessConfig = Field(default_factory=FairnessConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ExperimentConfig:
        return cls.model_validate_json(text)


def read_yaml(path: Path) -> Any:
    """Read a YAML file, turning I/O and syntax problems into :class:`ConfigError`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from e
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from e


def _validation_message(path: Path, error: ValidationError) -> str:
    lines = [f"{path} is not a valid {error.title}:"]
    for err in error.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {where}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)


def load_config(path: Path | None = None) -> ExperimentConfig:
    """Read an :class:`ExperimentConfig` from YAML (defaults when ``path`` is None)."""
    if path is None:
        return ExperimentConfig()
    try:
        return ExperimentConfig.model_validate(read_yaml(path))
    except ValidationError as e:
        raise ConfigError(_validation_message(Path(path), e)) from None


def load_spec(path: Path) -> DatasetSpec:
    """Read a :class:`~cmerisk.spec.DatasetSpec` from YAML."""
    try:
        return DatasetSpec.model_validate(read_yaml(path))
    except ValidationError as e:
        raise ConfigError(_validation_message(Path(path), e)) from None


def dump_yaml(model: BaseModel) -> str:
    """Render a config or spec as YAML (for ``configs/`` and docs)."""
    return yaml.safe_dump(model.model_dump(mode="json"), sort_keys=False)
