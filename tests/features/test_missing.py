"""Every feature that can be missing says when (docs/features.md quotes it)."""

from __future__ import annotations

from datetime import date

import pytest
import tiny_la_features as tiny

from cmerisk.features import FEATURES, build_features
from cmerisk.features.missing import MISSING_WHEN


@pytest.mark.parametrize(
    "variant, as_of",
    [
        ("sessions", date(2023, 7, 10)),  # last school year and 2-3 years not covered
        ("sessions", tiny.AS_OF),
        ("termly", date(2023, 10, 5)),  # no term of this school year ended yet
    ],
)
def test_every_feature_missing_in_a_frame_says_when(variant: str, as_of: date) -> None:
    tables = tiny.tiny_tables()
    if variant == "termly":
        tables = tables.without("attendance").with_frames(
            attendance_termly=tiny.attendance_termly()
        )
    frame = build_features(tables, as_of=as_of)
    names = [f.name for f in FEATURES if f.name in frame.columns]
    missing = [n for n in names if frame[n].isna().any()]
    assert missing, "the tiny LA should leave some feature missing here"
    assert sorted(set(missing) - set(MISSING_WHEN)) == []


def test_only_real_features_and_plain_sentences() -> None:
    assert set(MISSING_WHEN) <= {f.name for f in FEATURES}
    for sentence in MISSING_WHEN.values():
        assert sentence[0].islower() and not sentence.endswith(".")
