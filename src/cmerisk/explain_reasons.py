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

How each reason is worded is :mod:`cmerisk.explain_wording`.

Examples
--------
>>> import numpy as np
>>> from cmerisk.spec import DatasetSpec, FeatureSpec
>>> spec = DatasetSpec(id="id", target="y", features=[
...     FeatureSpec(name="absence", group="attendance", reason="a"),
...     FeatureSpec(name="cin", group="social_care", kind="flag", reason="c")])
>>> values = np.array([[0.8, 0.02]])
>>> chosen = choose_reasons(values, np.ones((1, 2), bool), spec=spec,
...     group_names=["attendance", "social_care"], group_values=values, top=3,
...     by="group", min_contribution=0.05)
>>> [(rank, spec.features[j].name) for _, rank, j, _, _, _ in chosen]
[(1, 'absence')]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cmerisk.explain_result import REASON_COLUMNS, ReasonsBy, empty_reasons
from cmerisk.explain_wording import Speaker, reference_value
from cmerisk.spec import DatasetSpec

#: Kinds for which a zero value says "nothing happened" and is never a reason.
ZERO_IS_NOT_A_REASON = frozenset({"flag", "count", "days"})
#: How many other risk-raising features of a group a reason mentions.
MAX_ALSO = 2


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
        j: Speaker(
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
