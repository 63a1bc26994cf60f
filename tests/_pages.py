"""What makes an HTML page self-contained, as the tests check it.

A page must open on a closed network and as an email attachment: no external
resources (``http://``/``https://`` in any ``src``/``href``/``url()``), no
scripts at all, no ``<link>`` (stylesheets, fonts, icons), no frames or
embedded objects, no ``@import``, and every ``<img>`` a ``data:`` URI.
Ordinary ``<a href>`` links between the demo's own pages are allowed.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

_URL = re.compile(r"url\(\s*['\"]?([^'\")]*)", re.IGNORECASE)
_EXTERNAL = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)
_FORBIDDEN_TAGS = {"script", "link", "iframe", "frame", "object", "embed", "base"}


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: (v or "") for k, v in attrs}
        if tag in _FORBIDDEN_TAGS:
            self.problems.append(f"<{tag}> element ({values})")
        if tag == "img" and not values.get("src", "").startswith("data:"):
            self.problems.append(f"<img> not a data URI: {values.get('src', '')[:80]}")
        for name in ("src", "srcset", "poster", "data", "action", "background"):
            if name in values and _EXTERNAL.match(values[name]):
                self.problems.append(f"external {name}: {values[name][:80]}")
        if tag != "a" and _EXTERNAL.match(values.get("href", "")):
            self.problems.append(f"external href on <{tag}>: {values['href'][:80]}")
        if "style" in values:
            self._css(values["style"])
        self.in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self.in_style = False

    def handle_data(self, data: str) -> None:
        if self.in_style:
            self._css(data)

    def _css(self, css: str) -> None:
        if "@import" in css.lower():
            self.problems.append("CSS @import")
        if "@font-face" in css.lower():
            self.problems.append("CSS @font-face (web font)")
        for url in _URL.findall(css):
            if not url.startswith("data:"):
                self.problems.append(f"CSS url() not a data URI: {url[:80]}")


def self_contained_problems(html: str) -> list[str]:
    """Everything that would make ``html`` load something from elsewhere."""
    checker = _Checker()
    checker.feed(html)
    checker.close()
    if "<script" in html.lower() and not any(
        p.startswith("<script") for p in checker.problems
    ):
        checker.problems.append("a <script> tag")
    return checker.problems


def local_links(page: Path) -> list[Path]:
    """The files an HTML page links to with relative ``<a href>`` (no anchors)."""
    hrefs = re.findall(r'<a [^>]*href="([^"#]+)"', page.read_text(encoding="utf-8"))
    return [page.parent / h for h in hrefs if not _EXTERNAL.match(h) and ":" not in h]
