"""Every kind of HTML page cmerisk writes is self-contained (fast; no browser).

The pages come from a real, tiny, untracked training run: the fairness audit,
the model card, and the reviewer cards and index of its test year's top
pupils. The demo's index page is checked in ``test_demo.py``, and every page
of a real demo in ``test_pages_browser.py`` (slow).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "model"))
sys.path.insert(0, str(Path(__file__).parent))
from toy import make_config, make_frame, make_spec

from _pages import self_contained_problems
from cmerisk.explain import explain_bundle
from cmerisk.model.bundle import load_bundle
from cmerisk.pipeline import run_experiment
from cmerisk.reports.pupil_cards import write_pupil_pages


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("run")
    frame = make_frame(600, seed=5)
    result = run_experiment(
        frame, spec=make_spec(), config=make_config(), tracking=False, out_dir=out
    )
    test = frame.iloc[result.split.test].reset_index(drop=True)
    bundle = load_bundle(out / "model")
    top = test.assign(p=bundle.predict_proba(test)).nlargest(5, "p")
    explained = explain_bundle(top.reset_index(drop=True), bundle, band=["flagged"] * 5)
    write_pupil_pages(explained, out_dir=out / "pupils", as_of="2023-05-18")
    return sorted(out.rglob("*.html"))


def test_every_kind_of_page_is_there(pages) -> None:
    names = {p.name for p in pages}
    assert {"fairness.html", "model_card.html", "index.html"} <= names
    assert sum(n.startswith("pupil_") for n in names) == 5


def test_every_page_is_self_contained(pages) -> None:
    problems = {
        p.name: self_contained_problems(p.read_text(encoding="utf-8")) for p in pages
    }
    assert {k: v for k, v in problems.items() if v} == {}


def test_every_page_embeds_its_images(pages) -> None:
    with_images = [p for p in pages if "<img" in p.read_text(encoding="utf-8")]
    assert {p.name for p in with_images} >= {"fairness.html", "model_card.html"}


@pytest.mark.parametrize(
    ("html", "problem"),
    [
        ('<img src="plot.png">', "<img> not a data URI"),
        ('<img src="https://x.org/a.png">', "external src"),
        ('<script src="app.js"></script>', "<script>"),
        ("<script>alert(1)</script>", "<script>"),
        ('<link rel="stylesheet" href="https://x.org/s.css">', "<link>"),
        ('<link rel="icon" href="favicon.ico">', "<link>"),
        ("<style>@import url(x.css);</style>", "@import"),
        ("<style>@font-face{font-family:a;src:url(a.woff)}</style>", "@font-face"),
        ('<div style="background:url(http://x.org/a.png)"></div>', "url()"),
        ('<iframe src="other.html"></iframe>', "<iframe>"),
    ],
)
def test_the_check_finds_each_kind_of_outside_resource(html, problem) -> None:
    found = self_contained_problems(f"<html><body>{html}</body></html>")
    assert any(problem in p for p in found), found


def test_a_page_with_only_inline_resources_passes() -> None:
    html = (
        "<html><head><style>body{color:#111}</style></head><body>"
        '<img src="data:image/png;base64,iVBORw0KGgo=" alt="x">'
        '<a href="pupils/index.html">pupils</a> <a href="https://gov.uk">text link</a>'
        "<p>http://127.0.0.1:5000 is mentioned as text</p></body></html>"
    )
    assert self_contained_problems(html) == []
