"""Context: FSM eligibility, home-area deprivation and school phase, and the
characteristics carried for fairness audits only.

Sex, ethnicity and first language are carried so that audits can group by
them; they are never features (:data:`cmerisk.spec.DEFAULT_PROTECTED`).

Examples
--------
>>> import pandas as pd
>>> cohort = pd.DataFrame({"pupil_id": ["a", "b"], "fsm_eligible": [True, None],
...     "school_phase": ["primary", "ap"]})
>>> pupils = pd.DataFrame({"pupil_id": ["a", "b"], "sex": ["F", "M"],
...     "ethnicity_major": ["White", None], "idaci_decile": [1, 10]})
>>> f = context_features(cohort, pupils)
>>> f[["fsm", "idaci_decile", "idaci_quintile"]].values.tolist()
[[1.0, 1.0, '1 (most deprived)'], [nan, 10.0, '5']]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["IDACI_QUINTILES", "context_features"]

#: Labels of IDACI quintiles (deciles 1-2, 3-4, ..., 9-10).
IDACI_QUINTILES = ("1 (most deprived)", "2", "3", "4", "5")


def context_features(cohort: pd.DataFrame, pupils: pd.DataFrame) -> pd.DataFrame:
    """Context features and audit columns for the cohort (indexed by ``pupil_id``).

    Features: ``fsm`` (0/1 from the latest census), ``idaci_decile`` (1 = most
    deprived), ``school_phase`` (categorical). Audit columns: ``fsm_eligible``
    (boolean), ``idaci_quintile``, ``sex``, ``ethnicity_major``,
    ``first_language`` (missing stays missing).
    """
    c = cohort.set_index("pupil_id")
    p = (
        pupils.assign(pupil_id=pupils["pupil_id"].astype(str))
        .set_index("pupil_id")
        .reindex(c.index)
    )
    out = pd.DataFrame(index=c.index)
    fsm = c["fsm_eligible"].astype("boolean")
    out["fsm"] = fsm.astype("Float64").astype(float)
    decile = pd.to_numeric(p["idaci_decile"], errors="coerce").astype(float)
    out["idaci_decile"] = decile
    out["school_phase"] = (
        c["school_phase"].astype("str").where(c["school_phase"].notna())
    )
    out["fsm_eligible"] = fsm
    quint = np.ceil(decile / 2)
    labels = pd.Series(
        [IDACI_QUINTILES[int(q) - 1] if q == q else None for q in quint], index=c.index
    )
    out["idaci_quintile"] = labels.astype("str").where(labels.notna())
    for col in ("sex", "ethnicity_major", "first_language"):
        values = (
            p[col] if col in p.columns else pd.Series(None, index=c.index, dtype=object)
        )
        out[col] = values.astype("str").where(values.notna())
    return out
