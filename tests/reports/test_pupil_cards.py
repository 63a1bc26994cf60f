"""Reviewer pages: self-contained, escaped, complete, atomic."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from markupsafe import escape

from _explain_models import SPEC, make_frame, train
from cmerisk.explain import explain_frame, reference_from_frame
from cmerisk.explain_result import Explanations
from cmerisk.reports import pupil_cards
from cmerisk.reports.pupil_cards import safe_name, write_pupil_pages


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


@pytest.fixture(scope="module")
def explanations() -> Explanations:
    frame = make_frame(800, seed=2)
    # A hostile value that must be escaped wherever it is shown.
    frame["primary_need"] = frame["primary_need"].cat.rename_categories(
        {"SEMH": "<script>alert(1)</script>"}
    )
    booster = train(frame)
    margin = booster.predict(frame[SPEC.feature_names], raw_score=True)
    order = np.argsort(-margin)
    band = np.full(len(frame), "low", dtype=object)
    band[order[:25]] = "flagged"
    band[order[25:40]] = "watch"
    ex = explain_frame(
        frame,
        booster=booster,
        spec=SPEC,
        reference=reference_from_frame(frame, SPEC),
        probability=1 / (1 + np.exp(-margin)),
        band=band,
    )
    return ex.subset(np.flatnonzero(band != "low"))


@pytest.fixture()
def pages(explanations: Explanations, tmp_path: Path) -> list[Path]:
    return write_pupil_pages(
        explanations,
        out_dir=tmp_path / "pupils",
        model="cmerisk v1",
        as_of="2024-05-16",
        valid_until="2024-07-15",
    )


def test_one_card_per_pupil_and_an_index(explanations, pages) -> None:
    index, *cards = pages
    assert index.name == "index.html"
    assert len(cards) == len(explanations) == 40
    assert {p.name for p in cards} == {safe_name(str(i)) for i in explanations.ids}
    links = {a["href"] for tag, a in _tags(index.read_text()) if tag == "a"}
    assert links == {p.name for p in cards}
    assert sorted(p.name for p in index.parent.iterdir()) == sorted(
        p.name for p in pages
    )


def test_pages_are_self_contained(pages) -> None:
    for page in pages:
        html = page.read_text()
        assert "http" not in html.lower()
        assert "<script" not in html.lower()  # escaped hostile value included
        assert "@import" not in html and "url(" not in html
        for tag, attrs in _tags(html):
            assert tag not in {"script", "link", "iframe", "object", "embed"}
            if tag == "img":
                assert (attrs.get("src") or "").startswith("data:image/")
            if tag == "a":
                assert re.fullmatch(
                    r"(index|pupil_[A-Za-z0-9_-]+)\.html", attrs["href"] or ""
                )


def test_card_shows_id_probability_band_reasons_note_and_waterfall(
    explanations, pages
) -> None:
    i = int(np.argmax(explanations.probability))
    pupil = explanations.pupil(i)
    html = (pages[0].parent / safe_name(pupil.id)).read_text()
    assert pupil.id in html
    assert f"{pupil.probability:.0%}" in html
    assert "Flagged" in html and "1 of 40" in html
    assert "A score prompts support from a person; it never decides anything." in html
    assert pupil.reasons, "the top pupil has reasons"
    for r in pupil.reasons:
        assert str(escape(r.text)) in html
        assert r.kind in html
    img = [a for t, a in _tags(html) if t == "img"]
    assert len(img) == 1
    svg = base64.b64decode((img[0]["src"] or "").split(",", 1)[1]).decode()
    root = ET.fromstring(svg)  # well-formed
    bars = [e for e in root.iter() if e.tag.endswith("rect")]
    assert len(bars) == len(pupil.groups)
    assert "2024-07-15" in html and "cmerisk v1" in html


def test_hostile_values_are_escaped(explanations, pages) -> None:
    hostile = explanations.reasons["text"].str.contains("<script>", regex=False)
    assert hostile.any(), "the fixture should put the hostile category in some reason"
    pid = str(explanations.reasons.loc[hostile, "id"].iloc[0])
    html = (pages[0].parent / safe_name(pid)).read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_index_lists_pupils_by_probability(explanations, pages) -> None:
    html = pages[0].read_text()
    ids = re.findall(r'class="pid" href="([^"]+)"', html)
    order = np.argsort(-explanations.probability, kind="stable")
    assert ids == [safe_name(str(explanations.ids[i])) for i in order]


def test_stale_cards_are_removed_and_other_files_kept(explanations, tmp_path) -> None:
    out = tmp_path / "pupils"
    write_pupil_pages(explanations, out_dir=out)
    (out / "notes.txt").write_text("keep me")
    fewer = explanations.subset(np.arange(5))
    pages = write_pupil_pages(fewer, out_dir=out)
    cards = sorted(p.name for p in out.glob("pupil_*.html"))
    assert cards == sorted(p.name for p in pages[1:]) and len(cards) == 5
    assert (out / "notes.txt").read_text() == "keep me"


def test_a_failed_run_leaves_the_previous_pages(
    explanations, tmp_path, monkeypatch
) -> None:
    out = tmp_path / "pupils"
    write_pupil_pages(explanations, out_dir=out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real, calls = pupil_cards.render_card, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(pupil_cards, "render_card", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        write_pupil_pages(explanations.subset(np.arange(10)), out_dir=out)
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(after) == set(before)  # no temp files, nothing removed
    assert after["index.html"] == before["index.html"]


@pytest.mark.parametrize(
    ("pupil_id", "expected"),
    [
        ("3f9c2e0a", "pupil_3f9c2e0a.html"),
        ("id-1_b", "pupil_id-1_b.html"),
    ],
)
def test_safe_names_keep_clean_ids(pupil_id, expected) -> None:
    assert safe_name(pupil_id) == expected


def test_unsafe_ids_get_distinct_clean_names() -> None:
    names = {safe_name(i) for i in ("a/b", "a b", "a?b", "../etc")}
    assert len(names) == 4
    assert all(re.fullmatch(r"pupil_[A-Za-z0-9_-]+\.html", n) for n in names)


def test_pages_without_probability_or_band(tmp_path) -> None:
    frame = make_frame(300, seed=9)
    booster = train(frame, rounds=10)
    ex = explain_frame(
        frame.head(3),
        booster=booster,
        spec=SPEC,
        reference=reference_from_frame(frame, SPEC),
    )
    index, *cards = write_pupil_pages(ex, out_dir=tmp_path)
    html = index.read_text()
    assert "Estimated chance" not in html and len(cards) == 3
    assert pd.notna(html)
