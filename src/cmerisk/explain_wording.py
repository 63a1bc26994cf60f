"""How a reason is said: templates filled with the pupil's values (no shap).

How reasons are worded
----------------------
The feature's reason template (:class:`~cmerisk.spec.FeatureSpec`) is filled
with the pupil's own ``value``, the training ``reference`` (median, or most
common category) and the pupil's other non-protected columns (a missing one,
or a reference the training data could not give, reads "not recorded", never
"nan"). When the template of a rate, count or day
count does not quote ``{reference}`` itself, the comparison is appended,
formatted by the feature's kind: "missed 34% of sessions this school year (LA
median 5%)". Ordinal numbers (year group, decile, age) get no "median".
Protected characteristics are never features (the spec refuses them) and
templates may not quote them (:func:`check_templates`).

Examples
--------
>>> from cmerisk.spec import FeatureSpec
>>> f = FeatureSpec(name="absence", group="attendance", kind="rate",
...                 reason="missed {value:.0%} of sessions this school year")
>>> reason_text(f, value=0.34, reference=0.05)
'missed 34% of sessions this school year (LA median 5%)'
>>> reason_text(f, value=float("nan"), reference=0.05)
'absence: not recorded'
>>> g = FeatureSpec(name="moves", group="mobility", kind="count",
...                 reason="{value:.0f} moves (not counting Year 7) in {area}")
>>> reason_text(g, value=2, reference=0, row={"area": None})
'2 moves (not counting Year 7) in not recorded (LA median 0)'
>>> reason_text(g, value=2, reference=0, row={"area": "Leeds (east)"})
'2 moves (not counting Year 7) in Leeds (east) (LA median 0)'
>>> h = FeatureSpec(name="moves", group="mobility", kind="count",
...                 reason="{value:.0f} moves (not counting Year 7)")
>>> reason_text(h, value=2, reference=0)
'2 moves (not counting Year 7; LA median 0)'
"""

from __future__ import annotations

import functools
import string
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cmerisk.errors import ConfigError, DataError
from cmerisk.spec import DEFAULT_PROTECTED, DatasetSpec, FeatureSpec

#: Kinds whose reference is a quantity worth quoting for comparison.
COMPARED_KINDS = frozenset({"rate", "count", "days"})


def is_missing(value: Any) -> bool:
    """True for None, NaN, pd.NA and NaT."""
    if value is None:
        return True
    if isinstance(value, (str, bool, int, np.integer, np.bool_)):
        return False
    if isinstance(value, float):
        return value != value
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def format_value(value: Any, kind: str) -> str:
    """A reference value written for people, by feature kind.

    >>> format_value(0.051, "rate"), format_value(3.0, "days")
    ('5%', '3')
    >>> format_value(1234.5, "number")
    '1.23e+03'
    """
    if kind == "rate":
        return f"{float(value):.0%}"
    if kind in ("count", "days"):
        return f"{float(value):.0f}"
    if isinstance(value, (int, float, np.number)):
        return f"{float(value):.3g}"
    return str(value)


def reference_value(reference: Mapping[str, Any] | None, name: str) -> Any:
    """The point of comparison for feature ``name``.

    ``reference`` maps feature names either to a value or to a mapping whose
    first non-empty ``reference``, ``median`` or ``mode`` entry is used; a
    model bundle's ``{"features": {name: {"reference": ..., ...}}}`` (training
    median, or most common level of a categorical) is read as is. Returns None
    when there is nothing to compare with.

    >>> reference_value({"features": {"a": {"reference": 0.05, "median": 0.05}}}, "a")
    0.05
    >>> reference_value({"b": {"median": None, "mode": "SEMH"}}, "b")
    'SEMH'
    >>> reference_value({"a": 2}, "a"), reference_value(None, "a")
    (2, None)
    """
    if not reference:
        return None
    if name not in reference and isinstance(reference.get("features"), Mapping):
        reference = reference["features"]
    entry = reference.get(name)
    if isinstance(entry, Mapping):
        for key in ("reference", "median", "mode"):
            if not is_missing(entry.get(key)):
                return entry[key]
        return None
    return entry


def reference_from_frame(
    frame: pd.DataFrame, spec: DatasetSpec
) -> dict[str, dict[str, Any]]:
    """Training medians (numeric) and most common values (categorical) per feature.

    For models not yet in a bundle; a bundle carries its own reference.

    >>> from cmerisk.spec import FeatureSpec
    >>> spec = DatasetSpec(id="id", target="y", features=[
    ...     FeatureSpec(name="a", group="attendance", reason="a")])
    >>> reference_from_frame(pd.DataFrame({"a": [0.0, 0.1, 0.5]}), spec)
    {'a': {'median': 0.1}}
    """
    out: dict[str, dict[str, Any]] = {}
    for f in spec.features:
        col = frame[f.name]
        if f.categorical or not pd.api.types.is_numeric_dtype(col):
            mode = col.dropna().mode()
            out[f.name] = {"mode": None if mode.empty else mode.iloc[0]}
        else:
            med = col.median()
            out[f.name] = {"median": None if pd.isna(med) else float(med)}
    return out


@functools.lru_cache(maxsize=1024)
def template_fields(template: str) -> frozenset[str]:
    """Top-level names a ``str.format`` template uses."""
    names = set()
    for _, name, _, _ in string.Formatter().parse(template):
        if name:
            names.add(name.split(".")[0].split("[")[0])
    return frozenset(names)


class _NotRecorded:
    """Stands in for a missing column a template quotes, whatever its format."""

    def __format__(self, spec: str) -> str:
        return "not recorded"

    def __str__(self) -> str:
        return "not recorded"


NOT_RECORDED = _NotRecorded()


def feature_label(feature: FeatureSpec) -> str:
    """What a feature is called in a sentence: its description (no full stop) or name.

    >>> feature_label(FeatureSpec(name="days_since_admission", group="mobility",
    ...     reason="x", description="Days since the latest admission."))
    'Days since the latest admission'
    """
    return feature.description.rstrip(". ") or feature.name.replace("_", " ")


class Speaker:
    """Everything about one feature's sentence that does not depend on the pupil."""

    def __init__(self, feature: FeatureSpec, reference: Any, comparison_label: str):
        self.format = feature.reason.format
        self.extra = tuple(
            sorted(template_fields(feature.reason) - {"value", "reference"})
        )
        # e.g. a feature never recorded in the training years has no median
        self.reference = NOT_RECORDED if is_missing(reference) else reference
        self.gap = f"{feature_label(feature)}: not recorded"
        self.compare = None
        self.into_parenthesis = False
        if (
            feature.kind in COMPARED_KINDS
            and not is_missing(reference)
            and "reference" not in template_fields(feature.reason)
        ):
            self.compare = f"{comparison_label} {format_value(reference, feature.kind)}"
            # "... (not counting Year 7)" -> "... (not counting Year 7; LA median 0)"
            self.into_parenthesis = feature.reason.endswith(")")

    def __call__(self, value: Any, row: Sequence[Any] = ()) -> str:
        if is_missing(value):
            return self.gap
        quoted = {
            name: NOT_RECORDED if is_missing(v) else v
            for name, v in zip(self.extra, row, strict=False)
        }
        text: str = self.format(value=value, reference=self.reference, **quoted)
        if self.compare is None:
            return text
        if self.into_parenthesis and text.endswith(")"):
            return f"{text[:-1]}; {self.compare})"
        return f"{text} ({self.compare})"


def reason_text(
    feature: FeatureSpec,
    *,
    value: Any,
    reference: Any = None,
    row: Mapping[str, Any] | None = None,
    comparison_label: str = "LA median",
) -> str:
    """The reason sentence for one pupil's value of one feature."""
    speaker = Speaker(feature, reference, comparison_label)
    row = row or {}
    return speaker(value, [row.get(name) for name in speaker.extra])


def check_templates(
    spec: DatasetSpec,
    *,
    reference: Mapping[str, Any] | None,
    columns: Sequence[str],
    comparison_label: str = "LA median",
) -> None:
    """Refuse, before any pupil is explained, templates that cannot be spoken.

    A template may not quote a protected characteristic, may quote only
    columns the frame has, and must render with the reference value itself as
    the pupil's value (a dry run that catches format specs unfit for the
    value, e.g. ``{value:.0%}`` on a category).

    Raises
    ------
    ConfigError
        Naming the feature and its template.
    DataError
        When a template quotes a column the frame lacks.
    """
    protected = set(spec.protected) | set(DEFAULT_PROTECTED)
    have = set(columns)
    for f in spec.features:
        fields = template_fields(f.reason) - {"value", "reference"}
        bad = sorted(fields & protected)
        if bad:
            raise ConfigError(
                f"feature {f.name!r}: reason template {f.reason!r} quotes protected "
                f"characteristic(s) {bad}; a reason may never mention them"
            )
        missing = sorted(fields - have)
        if missing:
            raise DataError(
                f"feature {f.name!r}: reason template {f.reason!r} quotes column(s) "
                f"{missing} that the feature frame does not have"
            )
        ref = reference_value(reference, f.name)
        sample: Any = ref if not is_missing(ref) else ("x" if f.categorical else 1.0)
        if not f.categorical and isinstance(sample, (int, float, np.number)):
            sample = float(
                sample
            )  # a numeric column with gaps is float: it must render
        row = dict.fromkeys(fields, sample)
        try:
            reason_text(
                f,
                value=sample,
                reference=ref,
                row=row,
                comparison_label=comparison_label,
            )
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
            raise ConfigError(
                f"feature {f.name!r}: reason template {f.reason!r} does not render "
                f"with value {sample!r}: {e}"
            ) from None
