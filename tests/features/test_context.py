"""Context features and the audit-only columns."""

from __future__ import annotations

import pandas as pd
import pytest

from cmerisk.features.context import IDACI_QUINTILES, context_features


@pytest.mark.parametrize("decile, quintile", [(1, 0), (2, 0), (3, 1), (9, 4), (10, 4)])
def test_idaci_quintiles(decile: int, quintile: int) -> None:
    cohort = pd.DataFrame(
        {"pupil_id": ["a"], "fsm_eligible": [True], "school_phase": ["primary"]}
    )
    pupils = pd.DataFrame(
        {
            "pupil_id": ["a"],
            "sex": ["F"],
            "ethnicity_major": ["White"],
            "idaci_decile": [decile],
        }
    )
    f = context_features(cohort, pupils)
    assert f.loc["a", "idaci_quintile"] == IDACI_QUINTILES[quintile]
    assert f.loc["a", "idaci_decile"] == decile


def test_missing_stays_missing_and_first_language_may_be_absent() -> None:
    cohort = pd.DataFrame(
        {"pupil_id": ["a"], "fsm_eligible": [None], "school_phase": [None]}
    )
    pupils = pd.DataFrame(
        {
            "pupil_id": ["a"],
            "sex": ["U"],
            "ethnicity_major": [None],
            "idaci_decile": [None],
        }
    )
    f = context_features(cohort, pupils).loc["a"]
    assert f["fsm_eligible"] is pd.NA
    for col in (
        "fsm",
        "idaci_decile",
        "idaci_quintile",
        "ethnicity_major",
        "first_language",
        "school_phase",
    ):
        assert pd.isna(f[col]), col
