"""Small pandas helpers the feature modules share.

Examples
--------
>>> import pandas as pd
>>> member_of(pd.Series(["a", "b", None]), {"b", "c"}).tolist()
[False, True, False]
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["member_of"]


def member_of(values: pd.Series | pd.Index, members: Iterable[object]) -> np.ndarray:
    """``values.isin(members)`` for ids, fast with large sets of members.

    pandas' ``isin`` on Arrow-backed strings converts every member one by one
    (seconds for an LA's 70,000 pupils); this hands both sides to Arrow.
    Nulls are never members.
    """
    arr = pa.array(pd.Series(values, copy=False).astype("str"))
    if isinstance(members, pd.Series | pd.Index | np.ndarray):
        listed = pd.Series(members, copy=False).astype("str")
    else:
        listed = pd.Series(list(members), dtype="str")
    wanted = pa.array(listed).cast(arr.type)
    return (
        pc.is_in(arr, value_set=wanted).fill_null(False).to_numpy(zero_copy_only=False)
    )
