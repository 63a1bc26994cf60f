"""Audit groups: every pupil in exactly one readable group per column or intersection.

A fairness audit compares groups of pupils formed from the sensitive columns of
a frame (``FairnessConfig.groups``) and from intersections of them
(``FairnessConfig.intersections``). This module turns raw column values into
group keys and readable labels, using the column's
:class:`~cmerisk.spec.SensitiveSpec` when the spec has one:

* ``bins`` cut a numeric column into labelled groups (right-closed intervals,
  the lowest edge included, as :func:`pandas.cut`); a value that is not a
  number or lies outside the bins is a :class:`~cmerisk.errors.DataError`;
* ``value_labels`` map raw values (as text) to readable names and fix the
  display order;
* a missing value becomes the explicit group ``Unknown`` (shown last), so no
  pupil is silently left out of an audit;
* a yes/no column without ``value_labels`` reads ``Yes``/``No`` (and, inside an
  intersection, ``<title>: yes``).

Keys are the raw values as text (``True``, ``E``, ``3``; a float that is a
whole number loses its ``.0``), so gate messages can say
``sen_provision=E``.

Examples
--------
>>> import pandas as pd
>>> from cmerisk.spec import SensitiveSpec
>>> s = pd.Series(["E", None, "N", "K", "N"])
>>> g = column_grouping(s, name="sen_provision", sensitive=SensitiveSpec(
...     name="sen_provision", label="SEN provision",
...     value_labels={"N": "No SEN", "K": "SEN support", "E": "EHC plan"}))
>>> g.keys, g.labels
(('N', 'K', 'E', 'Unknown'), ('No SEN', 'SEN support', 'EHC plan', 'Unknown'))
>>> g.codes.tolist()
[2, 3, 0, 1, 0]
>>> deciles = pd.Series([1, 2, 3, 10, None])
>>> q = column_grouping(deciles, name="idaci_decile", sensitive=SensitiveSpec(
...     name="idaci_decile", bins=[0, 2, 4, 6, 8, 10],
...     bin_labels=["1", "2", "3", "4", "5"]))
>>> [q.keys[c] for c in q.codes]
['1', '1', '2', '5', 'Unknown']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cmerisk.errors import DataError
from cmerisk.spec import SensitiveSpec

UNKNOWN = "Unknown"
#: Joins the parts of an intersection's name, key and label.
JOIN = " & "


@dataclass(frozen=True)
class Grouping:
    """Pupils split into groups by one column or an intersection of columns.

    ``codes[i]`` is the index into ``parts``/``keys``/``labels`` of row ``i``'s
    group; groups are in display order and every group has at least one pupil.
    """

    name: str
    columns: tuple[str, ...]
    title: str
    parts: tuple[tuple[str, ...], ...]
    labels: tuple[str, ...]
    codes: np.ndarray
    protected: bool = False

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(JOIN.join(p) for p in self.parts)

    @property
    def is_intersection(self) -> bool:
        return len(self.columns) > 1

    def describe(self, index: int) -> str:
        """``column=value`` (joined with `` & `` for an intersection)."""
        return JOIN.join(
            f"{c}={v}" for c, v in zip(self.columns, self.parts[index], strict=True)
        )

    def sizes(self) -> np.ndarray:
        return np.bincount(self.codes, minlength=len(self.parts))

    def find(self, value: str) -> int | None:
        """The group whose key or label is ``value`` (None if there is none)."""
        for i, (k, lab) in enumerate(zip(self.keys, self.labels, strict=True)):
            if value in (k, lab):
                return i
        return None

    def slices(self) -> list[list[int]]:
        """Sets of groups whose pupils add up to a published total.

        For one column: all its groups (they add up to all pupils). For an
        intersection: for each column and each of its values, the cells that
        share that value (they add up to that value's group of the column).
        """
        if not self.is_intersection:
            return [list(range(len(self.parts)))]
        out: list[list[int]] = []
        for j in range(len(self.columns)):
            by_value: dict[str, list[int]] = {}
            for i, p in enumerate(self.parts):
                by_value.setdefault(p[j], []).append(i)
            out.extend(by_value.values())
        return out


#: Readable labels of a yes/no column without ``value_labels``.
_FLAG_LABELS = {"True": "Yes", "False": "No"}


def _part_label(grouping: Grouping, index: int) -> str:
    """A group's label inside an intersection: yes/no groups say which column."""
    label = grouping.labels[index]
    if label in ("Yes", "No") and grouping.keys[index] in _FLAG_LABELS:
        return f"{grouping.title}: {label.lower()}"
    return label


def _plain(value: object) -> object:
    """A numpy scalar as the Python value, for messages."""
    return value.item() if isinstance(value, np.generic) else value


def _key(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _natural_order(keys: Sequence[str]) -> list[str]:
    try:
        return sorted(keys, key=float)
    except ValueError:
        return sorted(keys)


def _binned(
    series: pd.Series, *, name: str, sensitive: SensitiveSpec
) -> tuple[pd.Series, list[str]]:
    assert sensitive.bins is not None
    numbers = pd.to_numeric(series, errors="coerce")
    bad = series.notna() & numbers.isna()
    if bad.any():
        raise DataError(
            f"audit column {name!r}: value {_plain(series[bad].iloc[0])!r} is not a "
            "number, "
            f"but the spec cuts this column into bins {sensitive.bins}"
        )
    cut = pd.cut(
        numbers,
        bins=sensitive.bins,
        labels=sensitive.bin_labels or None,
        include_lowest=True,
        right=True,
    )
    outside = numbers.notna() & cut.isna()
    if outside.any():
        raise DataError(
            f"audit column {name!r}: value {_plain(numbers[outside].iloc[0])!r} lies "
            "outside the "
            f"spec's bins {sensitive.bins}"
        )
    order = [str(c) for c in cut.cat.categories]
    return cut.astype(object).map(lambda c: str(c), na_action="ignore"), order


def column_grouping(
    series: pd.Series,
    *,
    name: str,
    sensitive: SensitiveSpec | None = None,
    protected: bool = False,
) -> Grouping:
    """Group pupils by one column (see the module docstring for the rules)."""
    labels_map: Mapping[str, str] = (
        sensitive.value_labels if sensitive else None
    ) or {}
    if sensitive is not None and sensitive.bins is not None:
        values, preferred = _binned(series, name=name, sensitive=sensitive)
    else:
        values, preferred = series, []
        if isinstance(series.dtype, pd.CategoricalDtype):
            preferred = [_key(c) for c in series.cat.categories]
    raw_codes, uniques = pd.factorize(values, use_na_sentinel=True)
    unique_keys = [_key(u) for u in uniques]
    present = set(unique_keys)
    if (raw_codes < 0).any():
        present.add(UNKNOWN)
    head = [k for k in [*preferred, *labels_map] if k in present and k != UNKNOWN]
    head = list(dict.fromkeys(head))
    rest = _natural_order([k for k in present if k not in head and k != UNKNOWN])
    keys = [*head, *rest] + ([UNKNOWN] if UNKNOWN in present else [])
    position = {k: i for i, k in enumerate(keys)}
    lookup = np.array([position[k] for k in unique_keys] + [position.get(UNKNOWN, -1)])
    codes = lookup[raw_codes]  # the sentinel -1 picks the last entry: Unknown
    title = sensitive.title if sensitive else name
    flag = set(keys) <= {"True", "False", UNKNOWN}
    return Grouping(
        name=name,
        columns=(name,),
        title=title,
        parts=tuple((k,) for k in keys),
        labels=tuple(
            labels_map.get(k, _FLAG_LABELS.get(k, k) if flag else k) for k in keys
        ),
        codes=codes.astype(np.int64),
        protected=protected,
    )


def intersect(groupings: Sequence[Grouping]) -> Grouping:
    """Cross groupings into one: a group per combination that has pupils.

    Examples
    --------
    >>> import pandas as pd
    >>> a = column_grouping(pd.Series(["x", "y", "x", "y"]), name="a")
    >>> b = column_grouping(pd.Series([True, True, False, None]), name="b")
    >>> ab = intersect([a, b])
    >>> ab.name, ab.keys, ab.sizes().tolist()
    ('a & b', ('x & False', 'x & True', 'y & True', 'y & Unknown'), [1, 1, 1, 1])
    """
    radix = [len(g.parts) for g in groupings]
    combined = np.zeros(len(groupings[0].codes), dtype=np.int64)
    for g, r in zip(groupings, radix, strict=True):
        combined = combined * r + g.codes
    present, codes = np.unique(combined, return_inverse=True)
    parts, labels = [], []
    for value in present:
        idx = []
        for r in reversed(radix):
            idx.append(int(value % r))
            value //= r
        idx.reverse()
        parts.append(
            tuple(p for g, i in zip(groupings, idx, strict=True) for p in g.parts[i])
        )
        labels.append(
            JOIN.join(_part_label(g, i) for g, i in zip(groupings, idx, strict=True))
        )
    return Grouping(
        name=JOIN.join(g.name for g in groupings),
        columns=tuple(c for g in groupings for c in g.columns),
        title=JOIN.join(g.title for g in groupings),
        parts=tuple(parts),
        labels=tuple(labels),
        codes=codes.astype(np.int64),
        protected=any(g.protected for g in groupings),
    )


def make_groupings(
    frame: pd.DataFrame,
    *,
    columns: Sequence[str],
    intersections: Sequence[Sequence[str]],
    sensitive: Sequence[SensitiveSpec] = (),
    protected: Sequence[str] = (),
) -> tuple[list[Grouping], list[str]]:
    """The audit's groupings, and a note for each one skipped (column absent).

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"sex": ["F", "M"], "fsm": [True, False]})
    >>> gs, skipped = make_groupings(f, columns=["sex", "fsm", "semh"],
    ...     intersections=[["sex", "fsm"], ["sex", "semh"]])
    >>> [g.name for g in gs]
    ['sex', 'fsm', 'sex & fsm']
    >>> for note in skipped:
    ...     print(note)
    'semh' is not in the data: not audited
    'sex & semh' needs 'semh', which is not in the data: not audited
    """
    specs = {s.name: s for s in sensitive}
    cache: dict[str, Grouping] = {}
    skipped: list[str] = []

    def single(col: str) -> Grouping:
        if col not in cache:
            cache[col] = column_grouping(
                frame[col],
                name=col,
                sensitive=specs.get(col),
                protected=col in protected,
            )
        return cache[col]

    out: list[Grouping] = []
    for col in dict.fromkeys(columns):
        if col in frame.columns:
            out.append(single(col))
        else:
            skipped.append(f"{col!r} is not in the data: not audited")
    for combo in intersections:
        name = JOIN.join(combo)
        missing = [c for c in combo if c not in frame.columns]
        if missing:
            which = ", ".join(repr(c) for c in missing)
            skipped.append(
                f"{name!r} needs {which}, which is not in the data: not audited"
            )
            continue
        out.append(intersect([single(c) for c in combo]))
    return out, skipped
