"""What an explanation run returns: contributions, group totals and reasons.

These are plain containers (numpy arrays and pandas frames, no shap), built
by :func:`cmerisk.explain.explain_frame` and read by the reviewer pages, the
global plots, the stability check and the scoring outputs.

All contributions are TreeSHAP values in log-odds of the LightGBM model's raw
margin: for each pupil ``base + values.sum() == margin`` (checked when they
are computed). The calibrated probability shown to reviewers is a monotone
transform of that margin, so a contribution that raises the margin raises the
probability.

Examples
--------
>>> import numpy as np
>>> c = Contributions(values=np.array([[0.5, -0.25]]), base=-2.0,
...                   margin=np.array([-1.75]), feature_names=["a", "b"])
>>> c.additivity_error()
0.0
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from cmerisk.spec import GROUP_TITLES, DatasetSpec

ReasonsBy = Literal["group", "feature"]

#: Columns of :attr:`Explanations.reasons`, one row per (pupil, reason).
REASON_COLUMNS = [
    "id",
    "rank",
    "group",
    "feature",
    "text",
    "actionable",
    "contribution",
    "feature_contribution",
    "also",
]


@dataclass(frozen=True)
class Contributions:
    """Exact TreeSHAP contributions of one model on some rows.

    Attributes
    ----------
    values
        ``(n_rows, n_features)`` log-odds contributions.
    base
        The model's expected raw margin (TreeSHAP's bias term).
    margin
        ``(n_rows,)`` raw margin the booster predicts for the same rows.
    feature_names
        Column names of ``values``.
    """

    values: np.ndarray
    base: float
    margin: np.ndarray
    feature_names: list[str]

    def additivity_error(self) -> float:
        """Largest ``|base + sum(values) - margin|`` over the rows (0 when empty)."""
        if len(self.margin) == 0:
            return 0.0
        return float(np.max(np.abs(self.base + self.values.sum(axis=1) - self.margin)))


@dataclass(frozen=True)
class Reason:
    """One plain-English reason a pupil was scored higher.

    ``contribution`` is the log-odds the reason adds: the whole group's total
    when reasons are ranked by group, the feature's own otherwise.
    ``feature_contribution`` is always the named feature's own share.
    """

    rank: int
    group: str
    feature: str
    text: str
    actionable: bool
    contribution: float
    feature_contribution: float
    also: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """``"actionable"`` (support could change it) or ``"context"``."""
        return "actionable" if self.actionable else "context"

    @property
    def group_title(self) -> str:
        return GROUP_TITLES.get(self.group, self.group)


@dataclass(frozen=True)
class PupilExplanation:
    """Everything a reviewer card shows about one pupil."""

    id: str
    margin: float
    base: float
    probability: float | None
    band: str | None
    groups: dict[str, float]
    reasons: list[Reason]


@dataclass(frozen=True)
class Explanations:
    """Contributions, group totals and top reasons for a set of pupils.

    Attributes
    ----------
    ids
        Pupil ids (pseudonymised), one per row.
    data
        The feature values explained (spec order; categoricals as labels).
    contributions
        Per-feature TreeSHAP values, base and margins.
    group_names
        Groups present in the spec, in display order.
    group_values
        ``(n_rows, n_groups)`` contributions summed within each group.
    reasons
        Long table, one row per (pupil, reason): columns :data:`REASON_COLUMNS`.
        Only risk-raising contributions become reasons; a pupil may have fewer
        than ``top`` reasons (or none).
    spec
        The dataset spec the model was trained with.
    top, by, method
        How the reasons were chosen and which TreeSHAP path computed them.
    probability, band
        Optional calibrated probability and list band (e.g. ``flagged``).
    """

    ids: np.ndarray
    data: pd.DataFrame
    contributions: Contributions
    group_names: list[str]
    group_values: np.ndarray
    reasons: pd.DataFrame
    spec: DatasetSpec
    top: int
    by: ReasonsBy
    method: str
    probability: np.ndarray | None = None
    band: np.ndarray | None = None
    _reason_index: dict[str, list[int]] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def feature_names(self) -> list[str]:
        return self.contributions.feature_names

    @property
    def margin(self) -> np.ndarray:
        return self.contributions.margin

    @property
    def base(self) -> float:
        return self.contributions.base

    def contributions_frame(self) -> pd.DataFrame:
        """Per-feature contributions with the id as first column."""
        out = pd.DataFrame(self.contributions.values, columns=self.feature_names)
        out.insert(0, "id", self.ids)
        return out

    def group_frame(self) -> pd.DataFrame:
        """Per-group contributions with the id as first column."""
        out = pd.DataFrame(self.group_values, columns=self.group_names)
        out.insert(0, "id", self.ids)
        return out

    def summary_frame(self) -> pd.DataFrame:
        """One row per pupil: id, margin, probability, band and reason columns
        ``reason_1_text``, ``reason_1_group``, ``reason_1_actionable``,
        ``reason_1_feature``, ``reason_1_contribution``, ... up to ``top``."""
        out = pd.DataFrame({"id": self.ids, "margin": self.margin})
        if self.probability is not None:
            out["probability"] = self.probability
        if self.band is not None:
            out["band"] = self.band
        r = self.reasons
        for k in range(1, self.top + 1):
            at = r[r["rank"] == k].set_index("id")
            for col in ("text", "group", "actionable", "feature", "contribution"):
                out[f"reason_{k}_{col}"] = out["id"].map(at[col]) if len(at) else None
        return out

    def global_importance(
        self, *, level: Literal["feature", "group"] = "feature"
    ) -> pd.Series:
        """Mean absolute contribution per feature or group, largest first."""
        if level == "feature":
            vals, names = self.contributions.values, self.feature_names
        else:
            vals, names = self.group_values, self.group_names
        imp = np.abs(vals).mean(axis=0) if len(vals) else np.zeros(len(names))
        return pd.Series(imp, index=names, name=f"mean_abs_shap_{level}").sort_values(
            ascending=False
        )

    def _index(self) -> dict[str, list[int]]:
        if not self._reason_index and len(self.reasons):
            for pos, pid in enumerate(self.reasons["id"].to_numpy()):
                self._reason_index.setdefault(str(pid), []).append(pos)
        return self._reason_index

    def reasons_for(self, pupil_id: str) -> list[Reason]:
        """The reasons of one pupil, most important first."""
        rows = self.reasons.iloc[self._index().get(str(pupil_id), [])]
        return [
            Reason(
                rank=int(r.rank),
                group=str(r.group),
                feature=str(r.feature),
                text=str(r.text),
                actionable=bool(r.actionable),
                contribution=float(r.contribution),
                feature_contribution=float(r.feature_contribution),
                also=tuple(r.also),
            )
            for r in rows.itertuples(index=False)
        ]

    def pupil(self, i: int) -> PupilExplanation:
        """The explanation of row ``i``."""
        return PupilExplanation(
            id=str(self.ids[i]),
            margin=float(self.margin[i]),
            base=self.base,
            probability=None
            if self.probability is None
            else float(self.probability[i]),
            band=None if self.band is None else str(self.band[i]),
            groups=dict(
                zip(self.group_names, map(float, self.group_values[i]), strict=True)
            ),
            reasons=self.reasons_for(str(self.ids[i])),
        )

    def __iter__(self) -> Iterator[PupilExplanation]:
        return (self.pupil(i) for i in range(len(self)))

    def subset(self, rows: Sequence[int] | np.ndarray) -> Explanations:
        """The explanations of some rows (positions or a boolean mask)."""
        idx = np.arange(len(self))[np.asarray(rows)] if len(rows) else np.array([], int)
        keep = set(map(str, self.ids[idx]))
        reasons = self.reasons[self.reasons["id"].astype(str).isin(keep)].reset_index(
            drop=True
        )
        c = self.contributions
        return replace(
            self,
            ids=self.ids[idx],
            data=self.data.iloc[idx].reset_index(drop=True),
            contributions=Contributions(
                values=c.values[idx],
                base=c.base,
                margin=c.margin[idx],
                feature_names=c.feature_names,
            ),
            group_values=self.group_values[idx],
            reasons=reasons,
            probability=None if self.probability is None else self.probability[idx],
            band=None if self.band is None else self.band[idx],
            _reason_index={},
        )

    def reason_sets(
        self, *, level: Literal["feature", "group"] = "feature"
    ) -> dict[str, frozenset[str]]:
        """Each pupil's set of reason features (or groups), for overlap measures."""
        sets: dict[str, set[str]] = {str(i): set() for i in self.ids}
        col = self.reasons[level].to_numpy()
        for pid, key in zip(self.reasons["id"].to_numpy(), col, strict=True):
            sets[str(pid)].add(str(key))
        return {k: frozenset(v) for k, v in sets.items()}


def empty_reasons() -> pd.DataFrame:
    """A reasons table with no rows and the right columns."""
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in REASON_COLUMNS})


def as_object_array(values: Any) -> np.ndarray:
    """Ids as a 1-D object array of strings."""
    return pd.Series(values, copy=False).astype(str).to_numpy(dtype=object)
