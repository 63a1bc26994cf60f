"""docs/features.md lists every feature and every dirty-record rule, as declared."""

from __future__ import annotations

from pathlib import Path

from cmerisk.features.docs import DOC, refresh

ROOT = Path(__file__).parents[2]


def test_the_generated_tables_are_current() -> None:
    text = (ROOT / DOC).read_text(encoding="utf-8")
    assert refresh(text) == text, "run: python -m cmerisk.features.docs"


def test_refresh_replaces_only_between_markers() -> None:
    text = "keep\n<!-- generated:features -->\nstale\n<!-- end:features -->\nkeep too\n"
    new = refresh(text)
    assert new.startswith("keep\n<!-- generated:features -->\n| feature |")
    assert new.endswith("<!-- end:features -->\nkeep too\n") and "stale" not in new
