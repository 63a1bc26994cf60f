"""The outcome: does a CME episode start soon after ``as_of``?

``cme`` is 1 when a CME episode starts in ``(as_of, as_of + horizon_days]``;
``ehe`` is 1 when an elective home education episode starts in the same
window, a competing outcome (a legitimate choice, not CME) kept beside the
label, never used as a feature. A label reads only records dated inside its
window: nothing known at ``as_of`` and nothing after the horizon.

The default (``configs/default.yaml``: ``dataset.as_of_terms: [summer]``,
``dataset.horizon_days: 245``) takes ``as_of`` on the summer census day and
runs the window to about the following spring census, across the summer
transition from Year 6 to Year 7.

Examples
--------
>>> import pandas as pd
>>> from datetime import date
>>> from cmerisk.data.tables import RawTables
>>> t = RawTables({
...     "pupils": pd.DataFrame({"pupil_id": ["a", "b", "c"]}),
...     "cme_episodes": pd.DataFrame({"pupil_id": ["a", "b"],
...         "start_date": pd.to_datetime(["2024-09-10", "2024-03-01"]),
...         "end_date": [None, None], "outcome": [None, None]}),
...     "ehe": pd.DataFrame({"pupil_id": ["c"],
...         "start_date": pd.to_datetime(["2024-07-01"]), "end_date": [None]}),
... })
>>> labels = cme_label(t, as_of=date(2024, 5, 16), horizon_days=245)
>>> labels[["pupil_id", "cme", "ehe"]].values.tolist()
[['a', 1, 0], ['b', 0, 0], ['c', 0, 1]]
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from cmerisk.data.tables import RawTables
from cmerisk.errors import ConfigError, DataError
from cmerisk.features.window import events_between

__all__ = ["cme_label", "label_window"]


def label_window(as_of: date, horizon_days: int) -> tuple[date, date]:
    """The window ``(as_of, as_of + horizon_days]``: (excluded start, included end)."""
    return as_of, as_of + timedelta(days=horizon_days)


def cme_label(tables: RawTables, *, as_of: date, horizon_days: int) -> pd.DataFrame:
    """CME and EHE starts in ``(as_of, as_of + horizon_days]``, one row per pupil.

    Parameters
    ----------
    tables
        Needs ``pupils`` (the rows) and ``cme_episodes``; ``ehe`` is optional
        (without it the ``ehe`` column is missing, ``<NA>``).
    as_of
        The scoring date (excluded from the window).
    horizon_days
        Length of the window in days.

    Returns
    -------
    pandas.DataFrame
        ``pupil_id``, ``as_of`` (datetime64), ``cme`` (int8 0/1), ``ehe``
        (Int8 0/1), sorted by ``pupil_id``.
    """
    if horizon_days <= 0:
        raise ConfigError(
            f"horizon_days must be a positive number of days, got {horizon_days}"
        )
    for name in ("pupils", "cme_episodes"):
        if not tables.has(name):
            raise DataError(
                f"cannot make CME labels without the {name} table; "
                f"tables present: {', '.join(tables.names) or 'none'}"
            )
    start, end = label_window(as_of, horizon_days)
    ids = pd.Index(
        tables["pupils"]["pupil_id"].astype(str).unique(), name="pupil_id"
    ).sort_values()
    out = pd.DataFrame({"pupil_id": ids})
    out["as_of"] = pd.Series(pd.Timestamp(as_of), index=out.index).astype(
        "datetime64[us]"
    )
    cme = events_between(
        tables["cme_episodes"], table="cme_episodes", start=start, end=end
    )
    out["cme"] = ids.isin(cme["pupil_id"].astype(str)).astype("int8")
    if tables.has("ehe"):
        ehe = events_between(tables["ehe"], table="ehe", start=start, end=end)
        out["ehe"] = pd.array(
            ids.isin(ehe["pupil_id"].astype(str)).astype("int8"), dtype="Int8"
        )
    else:
        out["ehe"] = pd.array([pd.NA] * len(ids), dtype="Int8")
    return out
