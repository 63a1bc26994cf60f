"""The fairness page: self-contained, escaped, missed children first, c when hidden."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from _fairness_frames import SPEC, config, two_groups
from cmerisk.config import GateConfig
from cmerisk.fairness import audit
from cmerisk.reports.fairness_plots import audit_plots
from cmerisk.reports.fairness_report import render_fairness_html, write_fairness_report

DATA_URI = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=]+")


class _Rows(HTMLParser):
    """Every table row's cell texts, and every tag's attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def page():
    frame, y, score = two_groups(8000, seed=21, under_score_b=0.6)
    frame.loc[:8, "g"] = "<b>Tiny</b>"  # 9 pupils, with markup in its name
    frame["sen_provision"] = np.resize(["N", "N", "K", "E"], len(frame))
    a = audit(
        frame,
        spec=SPEC,
        config=config(
            groups=["g", "sen_provision"],
            intersections=[["g", "sen_provision"]],
            n_bootstrap=60,
        ),
        y_true=y,
        y_score=score,
        capacity=400,
    )
    html = render_fairness_html(a, gates=GateConfig(max_missed_ratio=1.25))
    parser = _Rows()
    parser.feed(html)
    return a, html, parser


def test_page_is_self_contained(page):
    _, html, parser = page
    text = DATA_URI.sub("", html)
    assert "http" not in text
    assert 'src="//' not in text and "<script" not in text and "@import" not in text
    assert "<link" not in text
    images = [attrs for tag, attrs in parser.tags if tag == "img"]
    assert len(images) >= 4
    for attrs in images:
        src = attrs["src"] or ""
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:4] == b"\x89PNG"
        assert attrs.get("alt")


def test_the_nine_pupil_group_shows_c_in_every_cell(page):
    _, html, parser = page
    assert "<b>Tiny</b>" not in html and "&lt;b&gt;Tiny&lt;/b&gt;" in html  # escaped
    tiny_rows = [r for r in parser.rows if r and r[0] == "<b>Tiny</b>"]
    assert tiny_rows  # headline, full table and mitigation tables
    for row in tiny_rows:
        assert set(filter(None, row[1:])) == {"c"}, row


def test_missed_children_lead_the_page(page):
    _, html, _ = page
    order = [
        html.index(h)
        for h in (
            "Missed-children rate by group",
            "Flagged disparities",
            "Every rate, group by group",
            "Intersections",
            "Small numbers",
            "Mitigation",
            "How this audit was made",
        )
    ]
    assert order == sorted(order)
    assert "Why this is not deployed by default" in html
    assert "Equality Act 2010" in html and "Article 9" in html


def test_flags_and_gate_failures_are_in_plain_words(page):
    a, html, _ = page
    assert a.flags
    assert "went missing were missed" in html
    assert "(gate max_missed_ratio)" in html


def test_every_picture_is_a_png(page):
    a, _, _ = page
    plots = audit_plots(a)
    assert {
        "fairness_missed_rate.png",
        "fairness_missed_ratio.png",
        "fairness_false_positive_ratio.png",
        "fairness_mitigation.png",
        "fairness_missed_rate_intersections.png",
    } <= set(plots)
    assert all(p[:4] == b"\x89PNG" for p in plots.values())


def test_written_files_are_complete_and_json_lists_gate_failures(page, tmp_path):
    import json

    a, _, _ = page
    paths = write_fairness_report(
        a, tmp_path / "out", gates=GateConfig(max_missed_ratio=1.25)
    )
    data = json.loads(paths["json"].read_text())
    assert data["gate_failures"] and "max_missed_ratio" in data["gate_failures"][0]
    assert paths["html"].read_text().rstrip().endswith("</html>")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "fairness.html",
        "fairness.json",
    ]  # no temporary files left behind
