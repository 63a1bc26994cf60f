"""Point-in-time pupil features from an LA's raw tables.

:func:`build_features` returns one row per pupil on roll at ``as_of``
(:mod:`~cmerisk.features.cohort`), using only records dated before ``as_of``
(:mod:`~cmerisk.features.window`). Each feature is declared once in
:mod:`~cmerisk.features.registry`; :func:`cme_spec` turns the declarations into
the :class:`~cmerisk.spec.DatasetSpec` the modelling core reads.

Examples
--------
>>> spec = cme_spec()
>>> spec.id, spec.target, spec.time
('pupil_id', 'cme', 'as_of')
>>> spec.groups()["transition"][:2]
['nc_year_num', 'in_year_6']
>>> cme_spec(available=["absence_rate_this_year", "sen_any"]).feature_names
['absence_rate_this_year', 'sen_any']
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from pathlib import Path

import pandas as pd

from cmerisk.data.tables import RawTables
from cmerisk.features.build import FeatureFrame, Progress, build_feature_frame
from cmerisk.features.quality import RULES, DataQuality, OnDirty
from cmerisk.features.registry import (
    AUDIT_COLUMNS,
    CARRY,
    FEATURES,
    FEATURES_BY_NAME,
    PROTECTED,
    SENSITIVE,
)
from cmerisk.features.sources import FEATURE_SOURCES
from cmerisk.features.window import Coverage
from cmerisk.spec import DatasetSpec

__all__ = [
    "AUDIT_COLUMNS",
    "CARRY",
    "FEATURES",
    "FEATURES_BY_NAME",
    "FEATURE_SOURCES",
    "PROTECTED",
    "RULES",
    "SENSITIVE",
    "DataQuality",
    "FeatureFrame",
    "build_feature_frame",
    "build_features",
    "cme_spec",
]


def build_features(
    tables: RawTables,
    *,
    as_of: date,
    on_dirty: OnDirty = "count",
    memory_limit: str = "2GB",
    temp_directory: Path | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
    data_start: date | None = None,
    coverage: Coverage | None = None,
) -> pd.DataFrame:
    """One row of point-in-time features per pupil on roll at ``as_of``.

    Parameters
    ----------
    tables
        The LA's raw tables (``pupils`` and ``census`` required; features from
        absent tables are absent from the frame).
    as_of
        The scoring date: only records dated strictly before it are used.
    on_dirty
        ``"count"``: dirty records follow the rules in docs/features.md and are
        counted; ``"raise"``: the first one stops the build with a
        :class:`~cmerisk.errors.DataError`.
    memory_limit, temp_directory, threads
        DuckDB settings for the session-mark query; past ``memory_limit`` it
        spills to ``temp_directory`` (a fresh temporary folder by default).
    progress
        Called with (steps done, steps) as the build goes.
    data_start
        The first day the LA's records are complete from. A feature whose
        window reaches before it (last school year's attendance, moves in the
        last 2 years, social care in the last 3 years...) is missing, not a
        partial count. By default it is read from the tables: the first census
        day's term or the first attendance mark, whichever is earlier
        (:mod:`~cmerisk.features.coverage`); attendance features never reach
        before the first mark.
    coverage
        The data's coverage measured by the caller, used as it is (scoring
        measures it over the whole LA, so every chunk of pupils gets the same;
        see :func:`cmerisk.scoring.chunks.la_coverage`).

    Returns
    -------
    pandas.DataFrame
        ``pupil_id``, ``as_of``, the features, the audit columns and the
        carried columns. ``attrs["quality"]`` holds the
        :class:`DataQuality` counts, ``attrs["cohort_counts"]`` the pupils left
        out of the cohort by reason, ``attrs["attendance_source"]`` which
        attendance table was used, ``attrs["coverage"]`` the first days the
        records and the attendance cover (ISO dates).
    """
    return build_feature_frame(
        tables,
        as_of=as_of,
        on_dirty=on_dirty,
        memory_limit=memory_limit,
        temp_directory=temp_directory,
        threads=threads,
        progress=progress,
        data_start=data_start,
        coverage=coverage,
    ).frame


def cme_spec(*, available: Collection[str] | None = None) -> DatasetSpec:
    """The :class:`~cmerisk.spec.DatasetSpec` of the CME feature frame.

    Parameters
    ----------
    available
        Column names of a frame; when given, only the features among them are
        listed (an LA without some tables has fewer features).
    """
    features = [f for f in FEATURES if available is None or f.name in set(available)]
    return DatasetSpec(
        id="pupil_id",
        target="cme",
        time="as_of",
        features=features,
        sensitive=list(SENSITIVE),
        protected=list(PROTECTED),
        carry=[c for c in CARRY if c not in FEATURES_BY_NAME],
        description=(
            "Pupils on roll at each as-of date (compulsory school age, single or main "
            "registration) with point-in-time features; cme = 1 when a CME episode "
            "starts within the horizon after as_of; ehe = an EHE start in the same "
            "window (a competing outcome, not a feature)."
        ),
    )
