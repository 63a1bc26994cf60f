"""The README stays true: its opening, its contract table, commands, links, images."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cmerisk.cli import app
from cmerisk.data.contract import TABLES

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
START, END = "<!-- generated:contract -->", "<!-- /generated:contract -->"


def contract_table() -> str:
    """The raw-table contract as a Markdown table (from ``data/contract.py``)."""
    lines = [
        "| table | one row per | required columns | optional columns |",
        "|---|---|---|---|",
    ]
    for name, t in TABLES.items():
        required = ", ".join(f"`{c.name}`" for c in t.columns if c.required)
        optional = ", ".join(f"`{c.name}`" for c in t.columns if not c.required)
        lines.append(f"| `{name}` | {t.grain} | {required} | {optional or '-'} |")
    return "\n".join(lines)


def _text() -> str:
    return README.read_text(encoding="utf-8")


def test_readme_opens_with_the_two_commands() -> None:
    assert _text().startswith("```\nmake demo\nmake test\n```\n")


def test_the_contract_table_is_generated_from_the_contract() -> None:
    text = _text()
    block = text[text.index(START) + len(START) : text.index(END)].strip()
    assert block == contract_table(), (
        "README contract table is stale: replace it with tests.test_readme."
        "contract_table()"
    )


def test_every_command_is_documented() -> None:
    text = _text()
    names = [c.name for c in app.registered_commands]
    assert len(names) >= 9
    for name in names:
        assert f"cmerisk {name}" in text, name


def test_every_local_link_and_image_exists() -> None:
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", _text())
    local = [t for t in targets if "://" not in t]
    assert local, "no links found"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert missing == []


@pytest.mark.parametrize("image", sorted((ROOT / "docs/images").glob("*.png")))
def test_screenshots_are_small_pngs(image) -> None:
    data = image.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) < 400_000
    assert image.name in _text()
