"""Do the reasons survive retraining? Top-3 reason overlap across seeds.

A reason a caseworker reads should be a property of the child's record, not
of the random seed the model happened to be trained with. Train the same model
several times with different seeds (bagging and feature sampling then differ),
explain the same pupils with each, and for every pupil average the Jaccard
overlap ``|A & B| / |A | B|`` of the reason sets over all pairs of models
(goal: at least 0.8). Two empty sets agree (overlap 1). A reason is *unstable*
when, among the pupils for whom some model gives it, few get it from every
model. Reasons chosen by group are compared as groups (the card's headings)
and, separately, by the feature each one names: correlated features (this
term's and this year's absence) trade credit between retrainings, so the
sentence under a stable heading can change.

Examples
--------
>>> jaccard(frozenset({"a", "b", "c"}), frozenset({"a", "b", "d"}))
0.5
>>> mean_pairwise_jaccard([frozenset({"a"}), frozenset({"a"}), frozenset({"b"})])
0.3333333333333333
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from cmerisk.explain_result import ReasonsBy

if TYPE_CHECKING:
    import lightgbm as lgb

    from cmerisk.spec import DatasetSpec

#: The goal for the mean top-3 reason overlap of a flagged pupil.
STABILITY_GOAL = 0.8
#: A reason is unstable when fewer than this share of the pupils who get it
#: from some model get it from every model.
UNSTABLE_BELOW = 0.8


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """``|a & b| / |a | b|``; 1.0 when both are empty."""
    union = a | b
    return 1.0 if not union else len(a & b) / len(union)


def mean_pairwise_jaccard(sets: Sequence[frozenset[str]]) -> float:
    """Mean Jaccard overlap over all pairs of ``sets`` (1.0 for fewer than two)."""
    pairs = list(itertools.combinations(sets, 2))
    return 1.0 if not pairs else float(np.mean([jaccard(a, b) for a, b in pairs]))


def _kept(
    sets_by_model: Sequence[Mapping[str, frozenset[str]]], ids: list[str]
) -> pd.DataFrame:
    """Per reason: pupils some model gives it to, pupils every model does."""
    any_count: dict[str, int] = {}
    all_count: dict[str, int] = {}
    for pid in ids:
        sets = [s[pid] for s in sets_by_model]
        for name in frozenset().union(*sets):
            any_count[name] = any_count.get(name, 0) + 1
        for name in frozenset.intersection(*sets):
            all_count[name] = all_count.get(name, 0) + 1
    table = pd.DataFrame(
        [
            {
                "reason": k,
                "pupils_any": n,
                "pupils_all": all_count.get(k, 0),
                "kept_share": all_count.get(k, 0) / n,
            }
            for k, n in any_count.items()
        ],
        columns=["reason", "pupils_any", "pupils_all", "kept_share"],
    )
    table["unstable"] = table["kept_share"] < UNSTABLE_BELOW
    return table.sort_values(
        ["kept_share", "pupils_any"], ascending=[True, False], kind="stable"
    ).reset_index(drop=True)


@dataclass(frozen=True)
class StabilityReport:
    """Reason overlap across models trained with different seeds.

    Reasons are compared at two levels: the *group* a reason is about
    (attendance, social care, ...: the card's headings when reasons are chosen
    by group) and the *feature* whose sentence speaks for it. ``level`` says
    which one a reason is (``"group"`` when reasons were chosen by group):
    :attr:`mean_jaccard` and :attr:`unstable_reasons` are at that level.

    Attributes
    ----------
    per_pupil
        One row per pupil: ``id``, ``group_jaccard`` and ``feature_jaccard``
        (mean pairwise overlap of the reason groups / features), ``jaccard``
        (the one at ``level``), ``n_reasons`` (mean count per model),
        ``unstable`` (features some but not all models give, comma-separated).
    groups, features
        One row per reason group / feature: ``reason``, ``pupils_any`` (pupils
        for whom some model gives it), ``pupils_all`` (every model does),
        ``kept_share`` (= all / any), ``unstable`` (kept share below
        :data:`UNSTABLE_BELOW`); ``features`` also has ``group``.
    n_models
        How many retrained models were compared.
    level
        What one reason is: ``"group"`` or ``"feature"``.
    goal
        The target mean overlap per pupil.
    """

    per_pupil: pd.DataFrame
    groups: pd.DataFrame
    features: pd.DataFrame
    n_models: int
    level: Literal["group", "feature"] = "group"
    goal: float = STABILITY_GOAL

    def _mean(self, column: str) -> float:
        return float(self.per_pupil[column].mean()) if len(self.per_pupil) else 1.0

    @property
    def mean_jaccard(self) -> float:
        """Mean per-pupil overlap of the reasons (at ``level``)."""
        return self._mean("jaccard")

    @property
    def mean_group_jaccard(self) -> float:
        return self._mean("group_jaccard")

    @property
    def mean_feature_jaccard(self) -> float:
        return self._mean("feature_jaccard")

    @property
    def share_meeting_goal(self) -> float:
        """Share of pupils whose mean overlap (at ``level``) reaches the goal."""
        if not len(self.per_pupil):
            return 1.0
        return float((self.per_pupil["jaccard"] >= self.goal - 1e-12).mean())

    @property
    def unstable_reasons(self) -> list[str]:
        """Reasons (at ``level``) that come and go between retrainings."""
        table = self.groups if self.level == "group" else self.features
        return table.loc[table["unstable"], "reason"].tolist()

    @property
    def unstable_features(self) -> list[str]:
        """Features whose sentence comes and goes between retrainings."""
        return self.features.loc[self.features["unstable"], "reason"].tolist()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (no pupil ids)."""
        return {
            "n_models": self.n_models,
            "n_pupils": len(self.per_pupil),
            "level": self.level,
            "goal": self.goal,
            "mean_jaccard": self.mean_jaccard,
            "median_jaccard": float(self.per_pupil["jaccard"].median())
            if len(self.per_pupil)
            else 1.0,
            "share_meeting_goal": self.share_meeting_goal,
            "mean_group_jaccard": self.mean_group_jaccard,
            "mean_feature_jaccard": self.mean_feature_jaccard,
            "unstable_reasons": self.unstable_reasons,
            "unstable_features": self.unstable_features,
            "groups": self.groups.to_dict(orient="records"),
            "features": self.features.to_dict(orient="records"),
        }

    def summary(self) -> str:
        """Two sentences for a report or the console."""
        unstable = ", ".join(self.unstable_reasons) or "none"
        return (
            f"Across {self.n_models} retrainings, the top reasons ({self.level}s) of "
            f"{len(self.per_pupil)} pupils overlapped {self.mean_jaccard:.2f} on "
            f"average (Jaccard; goal {self.goal:.1f}); {self.share_meeting_goal:.0%} "
            f"of pupils reach the goal; unstable: {unstable}. The features named in "
            f"the reasons overlapped {self.mean_feature_jaccard:.2f}; those that "
            f"come and go: {', '.join(self.unstable_features) or 'none'}."
        )


def stability_of(
    feature_sets: Sequence[Mapping[str, frozenset[str]]],
    group_sets: Sequence[Mapping[str, frozenset[str]]],
    *,
    groups: Mapping[str, str],
    level: Literal["group", "feature"] = "group",
    goal: float = STABILITY_GOAL,
) -> StabilityReport:
    """Compare reason sets (pupil id -> set of features, and of groups) from
    several models."""
    ids = list(feature_sets[0]) if feature_sets else []
    rows = []
    for pid in ids:
        sets = [s[pid] for s in feature_sets]
        union = frozenset().union(*sets)
        common = frozenset.intersection(*sets)
        f_j = mean_pairwise_jaccard(sets)
        g_j = mean_pairwise_jaccard([g[pid] for g in group_sets])
        rows.append(
            {
                "id": pid,
                "jaccard": g_j if level == "group" else f_j,
                "group_jaccard": g_j,
                "feature_jaccard": f_j,
                "n_reasons": float(np.mean([len(s) for s in sets])),
                "unstable": ", ".join(sorted(union - common)),
            }
        )
    per_pupil = pd.DataFrame(
        rows,
        columns=[
            "id",
            "jaccard",
            "group_jaccard",
            "feature_jaccard",
            "n_reasons",
            "unstable",
        ],
    )
    features = _kept(feature_sets, ids)
    features.insert(1, "group", features["reason"].map(lambda f: groups.get(f, "")))
    return StabilityReport(
        per_pupil,
        groups=_kept(group_sets, ids),
        features=features,
        n_models=len(feature_sets),
        level=level,
        goal=goal,
    )


def reason_stability(
    frame: pd.DataFrame,
    *,
    boosters: Sequence[lgb.Booster],
    spec: DatasetSpec,
    reference: Mapping[str, Any] | None = None,
    ids: Sequence[str] | None = None,
    top: int = 3,
    by: ReasonsBy = "group",
    goal: float = STABILITY_GOAL,
    min_contribution: float | None = None,
) -> StabilityReport:
    """Top-``top`` reason overlap across models trained with different seeds.

    Parameters
    ----------
    frame
        Feature frame holding the pupils to compare.
    boosters
        The same model retrained with different seeds (at least two), e.g.
        from :func:`retrain_with_seeds` or the training pipeline.
    spec, reference
        As for :func:`cmerisk.explain.explain_frame`.
    ids
        The pupils to compare (e.g. the flagged list); all rows when None.
    top, by, min_contribution
        How reasons are chosen, as for explanations (default threshold:
        :data:`cmerisk.explain.MIN_CONTRIBUTION`).
    """
    from cmerisk.explain import MIN_CONTRIBUTION, explain_frame

    floor = MIN_CONTRIBUTION if min_contribution is None else min_contribution

    if len(boosters) < 2:
        raise ValueError("stability needs at least two retrained models")
    rows = frame
    if ids is not None:
        wanted = set(map(str, ids))
        rows = frame[frame[spec.id].astype(str).isin(wanted)]
    feature_sets, group_sets = [], []
    for booster in boosters:
        ex = explain_frame(
            rows,
            booster=booster,
            spec=spec,
            reference=reference,
            top=top,
            by=by,
            min_contribution=floor,
        )
        feature_sets.append(ex.reason_sets(level="feature"))
        group_sets.append(ex.reason_sets(level="group"))
    groups = {f.name: f.group for f in spec.features}
    return stability_of(feature_sets, group_sets, groups=groups, level=by, goal=goal)


def retrain_with_seeds(
    X: pd.DataFrame,
    y: np.ndarray | pd.Series,
    *,
    params: Mapping[str, Any],
    num_boost_round: int,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    categorical_feature: Sequence[str] | Literal["auto"] = "auto",
) -> list[lgb.Booster]:
    """Train one LightGBM model per seed with otherwise identical settings.

    Every LightGBM seed (``seed``, ``bagging_seed``, ``feature_fraction_seed``,
    ``data_random_seed``) is derived from the given seed. Seeds change the
    model only when ``params`` sample rows or features (``bagging_fraction``
    or ``feature_fraction`` below 1), as the default training config does.
    """
    import lightgbm as lgb

    cats: list[str] | Literal["auto"] = (
        list(categorical_feature) if categorical_feature != "auto" else "auto"
    )
    base = {k: v for k, v in params.items() if k != "num_boost_round"}
    out = []
    for seed in seeds:
        # A fresh Dataset per seed: LightGBM fixes data_random_seed at binning.
        dataset = lgb.Dataset(X, label=np.asarray(y), categorical_feature=cats)
        seeded = {
            **base,
            "seed": seed,
            "bagging_seed": seed + 1,
            "feature_fraction_seed": seed + 2,
            "data_random_seed": seed + 3,
            "verbose": -1,
        }
        out.append(lgb.train(seeded, dataset, num_boost_round=num_boost_round))
    return out
