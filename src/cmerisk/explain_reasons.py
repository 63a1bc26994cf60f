"""From contributions to plain-English reasons (no shap here).

How reasons are chosen
----------------------
Only risk-raising (positive) contributions become reasons, and only those of
at least ``min_contribution`` log-odds (default 0.05, about a 5% rise in the
odds: smaller ones are noise a caseworker should not chase). By default
(``by="group"``) the contributions are summed into the spec's groups
(attendance, needs, social care, ...), the groups with a positive total are
ranked, and each of the top ``top`` groups is spoken through its *main
feature*: the feature of that group that raised the score most. Other
risk-raising features of the same group are kept as ``also`` (up to two).
Grouping first keeps three different aspects of a child's life on the card
rather than three ways of saying "absent", and it keeps the reasons steady
when correlated features (say, this term's and this year's absence) trade
credit between retrainings. ``by="feature"`` ranks single features instead.

A feature can be a reason only when the statement is true of the pupil and
worth acting on: a flag, count or day count at zero ("0 suspensions") is
never a reason, whatever its contribution. A missing value is spoken as
"<feature>: not recorded" (a gap in the record can itself be a warning sign).

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
from cmerisk.explain_result import REASON_COLUMNS, ReasonsBy, empty_reasons
from cmerisk.spec import DEFAULT_PROTECTED, DatasetSpec, FeatureSpec

#: Kinds whose reference is a quantity worth quoting for comparison.
COMPARED_KINDS = frozenset({"rate", "count", "days"})
#: Kinds for which a zero value says "nothing happened" and is never a reason.
ZERO_IS_NOT_A_REASON = frozenset({"flag", "count", "days"})
#: How many other risk-raising features of a group a reason mentions.
MAX_ALSO = 2


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
    return feature.description or feature.name.replace("_", " ")


class _Speaker:
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
    speaker = _Speaker(feature, reference, comparison_label)
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


def reason_eligible(data: pd.DataFrame, spec: DatasetSpec) -> np.ndarray:
    """``(n_rows, n_features)`` mask of values that may be spoken as a reason."""
    out = np.ones(data.shape, dtype=bool)
    for j, f in enumerate(spec.features):
        if f.kind in ZERO_IS_NOT_A_REASON:
            col = data[f.name]
            if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
                num = col.to_numpy(dtype=float, na_value=np.nan)
                out[:, j] = np.isnan(num) | (num != 0)
    return out


def _top_k(score: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` largest scores per row, largest first."""
    k = min(k, score.shape[1])
    if k == 0:
        return np.zeros((score.shape[0], 0), dtype=int)
    part = np.argpartition(-score, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(score, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def choose_reasons(
    values: np.ndarray,
    eligible: np.ndarray,
    *,
    spec: DatasetSpec,
    group_names: Sequence[str],
    group_values: np.ndarray,
    top: int,
    by: ReasonsBy,
    min_contribution: float = 0.0,
) -> list[tuple[int, int, int, float, float, list[int]]]:
    """Pick the reasons: ``(row, rank, feature index, contribution,
    feature contribution, also feature indices)`` tuples."""
    n = values.shape[0]
    floor = max(min_contribution, 0.0)
    usable = np.where(eligible & (values > 0) & (values >= floor), values, -np.inf)
    out: list[tuple[int, int, int, float, float, list[int]]] = []
    if n == 0 or top == 0:
        return out
    if by == "feature":
        best = _top_k(usable, top)
        rows, ranks = np.nonzero(np.isfinite(np.take_along_axis(usable, best, 1)))
        for i, k in zip(rows.tolist(), ranks.tolist(), strict=True):
            j = int(best[i, k])
            out.append((i, k + 1, j, float(values[i, j]), float(values[i, j]), []))
        return out
    names = spec.feature_names
    members = [
        np.array([names.index(f) for f in spec.groups()[g]]) for g in group_names
    ]
    width = MAX_ALSO + 1
    # per group: its risk-raising features, largest first (-1 pads)
    ranked = np.full((n, len(group_names), width), -1, dtype=np.int64)
    for gi, cols in enumerate(members):
        sub = usable[:, cols]
        order = np.argsort(-sub, axis=1, kind="stable")[:, :width]
        keep = np.isfinite(np.take_along_axis(sub, order, axis=1))
        ranked[:, gi, : order.shape[1]] = np.where(keep, cols[order], -1)
    has_main = ranked[:, :, 0] >= 0
    score = np.where(
        has_main & (group_values > 0) & (group_values >= floor), group_values, -np.inf
    )
    best = _top_k(score, top)
    rows, ranks = np.nonzero(np.isfinite(np.take_along_axis(score, best, 1)))
    groups = best[rows, ranks]
    picked = ranked[rows, groups].tolist()
    totals = group_values[rows, groups].tolist()
    mains = ranked[rows, groups, 0]
    own = values[rows, mains].tolist()
    for i, k, feats, total, mine in zip(
        rows.tolist(), ranks.tolist(), picked, totals, own, strict=True
    ):
        out.append((i, k + 1, feats[0], total, mine, [f for f in feats[1:] if f >= 0]))
    return out


def render_reasons(
    chosen: list[tuple[int, int, int, float, float, list[int]]],
    *,
    ids: np.ndarray,
    data: pd.DataFrame,
    rows: pd.DataFrame,
    spec: DatasetSpec,
    reference: Mapping[str, Any] | None,
    comparison_label: str = "LA median",
) -> pd.DataFrame:
    """The long reasons table (:data:`~cmerisk.explain_result.REASON_COLUMNS`)."""
    if not chosen:
        return empty_reasons()
    feats = spec.features
    used = sorted({j for _, _, j, _, _, also in chosen for j in (j, *also)})
    speak = {
        j: _Speaker(
            feats[j], reference_value(reference, feats[j].name), comparison_label
        )
        for j in used
    }
    value_cols = {j: data[feats[j].name].to_numpy(dtype=object) for j in used}
    quoted = {c for j in used for c in speak[j].extra}
    row_cols = {c: rows[c].to_numpy(dtype=object) for c in quoted}

    said: dict[tuple[Any, ...], str] = {}  # flags, counts, categories repeat a lot

    def text(i: int, j: int) -> str:
        speaker = speak[j]
        key = (j, value_cols[j][i], *(row_cols[c][i] for c in speaker.extra))
        try:
            return said[key]
        except KeyError:
            said[key] = out = speaker(key[1], key[2:])
            return out
        except TypeError:  # an unhashable value: just say it
            return speaker(key[1], key[2:])

    records = [
        (
            ids[i],
            rank,
            feats[j].group,
            feats[j].name,
            text(i, j),
            feats[j].actionable,
            contrib,
            fcontrib,
            tuple(text(i, a) for a in also),
        )
        for i, rank, j, contrib, fcontrib, also in chosen
    ]
    out = pd.DataFrame.from_records(records, columns=REASON_COLUMNS)
    out["rank"] = out["rank"].astype("int64")
    out["actionable"] = out["actionable"].astype(bool)
    return out
