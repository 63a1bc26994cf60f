"""Column roles of a pupil-level feature frame: the dataset-agnostic contract.

``model``, ``explain``, ``fairness`` and ``tracking`` never look at raw LA
tables: they take a feature frame plus a :class:`DatasetSpec` naming the id,
the target, each feature (with its group, plain-English reason template and
whether it is actionable), the sensitive attributes kept for audits only, and
an optional time column. The CME feature pipeline produces one such spec
(:func:`cmerisk.features.cme_spec`); an LA's own extract brings its own YAML.

Reason templates are :meth:`str.format` strings. They receive ``value`` (the
pupil's value of the feature), ``reference`` (the feature's median in the
training data, for comparison) and every other column of the pupil's row by
name, e.g. ``"missed {value:.0%} of sessions this school year (LA median
{reference:.0%})"``.

Examples
--------
>>> spec = DatasetSpec(
...     id="pupil_id",
...     target="cme",
...     features=[FeatureSpec(name="absence", group="attendance",
...                           reason="missed {value:.0%} of sessions")],
...     sensitive=[SensitiveSpec(name="sex")],
... )
>>> spec.feature_names
['absence']
>>> spec.feature("absence").render_reason(value=0.34, reference=0.05)
'missed 34% of sessions'
>>> DatasetSpec(id="id", target="y", features=[FeatureSpec(name="sex", group="context",
...     reason="sex")], protected=["sex"])
Traceback (most recent call last):
    ...
pydantic_core._pydantic_core.ValidationError: 1 validation error for DatasetSpec
  Value error, protected characteristic(s) ['sex'] cannot be model features; list them under 'sensitive' for audits [type=value_error, input_value=..., input_type=dict]
    ...
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FeatureGroup = Literal[
    "attendance",
    "needs",
    "social_care",
    "mobility",
    "transition",
    "exclusions",
    "context",
    "other",
]

#: The order groups are shown in, and their headings.
GROUP_TITLES: dict[str, str] = {
    "attendance": "Attendance",
    "needs": "Needs (SEN / SEMH)",
    "social_care": "Social care",
    "mobility": "Mobility",
    "transition": "Transition",
    "exclusions": "Exclusions",
    "context": "Context",
    "other": "Other",
}

#: Protected characteristics under the Equality Act 2010 that LA data carries,
#: or proxies for them. Never model inputs, never reasons; audit groups only.
DEFAULT_PROTECTED: tuple[str, ...] = ("sex", "ethnicity_major", "first_language")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureSpec(_Strict):
    """One model input and how to speak about it."""

    name: str
    group: FeatureGroup
    reason: str = Field(
        description="str.format template: {value}, {reference}, row columns"
    )
    actionable: bool = Field(
        default=True,
        description="whether support could change it (attendance) or it is context (age)",
    )
    categorical: bool = False
    monotone: Literal[-1, 0, 1] = Field(
        default=0,
        description="+1: a higher value never lowers risk; -1: never raises it",
    )
    kind: Literal["rate", "count", "days", "flag", "category", "number"] = "number"
    description: str = ""

    @field_validator("reason")
    @classmethod
    def _template_parses(cls, v: str) -> str:
        try:
            list(string.Formatter().parse(v))
        except ValueError as e:
            raise ValueError(f"reason template {v!r} does not parse: {e}") from e
        return v

    def render_reason(
        self, *, value: Any, reference: Any = None, row: Mapping[str, Any] | None = None
    ) -> str:
        """Fill the reason template for one pupil."""
        fields = dict(row or {})
        fields.update(value=value, reference=reference)
        return self.reason.format(**fields)


class SensitiveSpec(_Strict):
    """A column used to form audit groups (never a model input unless also a feature).

    ``bins`` cut a numeric column into labelled groups (e.g. IDACI deciles into
    quintiles); ``labels`` name the bins or map raw values to readable names.
    """

    name: str
    label: str | None = None
    bins: list[float] | None = None
    bin_labels: list[str] | None = None
    value_labels: dict[str, str] | None = None

    @model_validator(mode="after")
    def _bins_match_labels(self) -> SensitiveSpec:
        if (
            self.bins is not None
            and self.bin_labels is not None
            and len(self.bin_labels) != len(self.bins) - 1
        ):
            raise ValueError(
                f"sensitive {self.name!r}: {len(self.bins)} bin edges need "
                f"{len(self.bins) - 1} labels, got {len(self.bin_labels)}"
            )
        return self

    @property
    def title(self) -> str:
        return self.label or self.name


class DatasetSpec(_Strict):
    """Roles of the columns of a pupil-level frame."""

    spec_version: Literal[1] = 1
    id: str
    target: str
    positive: int | str | bool = 1
    time: str | None = Field(
        default=None, description="as-of date column; enables temporal splits"
    )
    features: list[FeatureSpec]
    sensitive: list[SensitiveSpec] = Field(default_factory=list)
    protected: list[str] = Field(default_factory=lambda: list(DEFAULT_PROTECTED))
    carry: list[str] = Field(
        default_factory=list,
        description="other columns kept alongside (e.g. school, NC year) for outputs",
    )
    description: str = ""

    @model_validator(mode="after")
    def _roles_consistent(self) -> DatasetSpec:
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"feature(s) declared twice: {dupes}")
        if not names:
            raise ValueError("a spec needs at least one feature")
        bad = sorted(set(names) & set(self.protected))
        if bad:
            raise ValueError(
                f"protected characteristic(s) {bad} cannot be model features; "
                "list them under 'sensitive' for audits"
            )
        for role in (self.id, self.target, self.time):
            if role is not None and role in names:
                raise ValueError(
                    f"column {role!r} cannot be both a feature and the id/target/time"
                )
        return self

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def categorical_features(self) -> list[str]:
        return [f.name for f in self.features if f.categorical]

    @property
    def sensitive_names(self) -> list[str]:
        return [s.name for s in self.sensitive]

    def feature(self, name: str) -> FeatureSpec:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"no feature {name!r} in the spec")

    def groups(self) -> dict[str, list[str]]:
        """Feature names by group, groups in display order."""
        out: dict[str, list[str]] = {g: [] for g in GROUP_TITLES}
        for f in self.features:
            out[f.group].append(f.name)
        return {g: v for g, v in out.items() if v}

    def required_columns(self, *, with_target: bool = True) -> list[str]:
        cols = [self.id, *self.feature_names]
        if with_target:
            cols.append(self.target)
        if self.time:
            cols.append(self.time)
        return cols

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DatasetSpec:
        return cls.model_validate_json(text)
