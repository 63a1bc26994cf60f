"""Every HTML page the demo writes, opened in headless Chromium (slow, browser).

Fails on a console error, an uncaught page error, a request for anything that
is not the page itself or a ``data:`` URI, or an image that did not load
(``naturalWidth == 0``). Uses Debian's ``/usr/bin/chromium`` through the
``playwright`` package; skips, saying why, when either is missing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _pages import self_contained_problems

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="headless Chromium not installed at /usr/bin/chromium "
        "(apt-get install -y chromium)",
    ),
]


@pytest.fixture(scope="module")
def demo_pages(tmp_path_factory) -> list[Path]:
    from cmerisk.config import ExperimentConfig
    from cmerisk.demo import run_demo

    work = tmp_path_factory.mktemp("demo")
    config = ExperimentConfig.model_validate(
        {
            "lightgbm": {"max_depth_candidates": [3]},
            "evaluation": {"n_bootstrap": 100},
            "fairness": {"n_bootstrap": 50},
        }
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
        mp.delenv("CMERISK_PSEUDONYM_KEY", raising=False)
        result = run_demo(
            work / "demo",
            pupils=2000,
            years=4,
            seed=1,
            quiet=True,
            capacity=30,
            config=config,
        )
    pages = sorted(result.out_dir.rglob("*.html"))
    assert result.index in pages and result.model_card_html in pages
    return pages


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed"
    )
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield b
        b.close()


def test_the_demo_writes_every_kind_of_page(demo_pages) -> None:
    names = {p.name for p in demo_pages}
    assert {"index.html", "model_card.html", "fairness.html"} <= names
    assert sum(n.startswith("pupil_") for n in names) >= 1


def test_every_page_is_self_contained(demo_pages) -> None:
    for page in demo_pages:
        assert self_contained_problems(page.read_text(encoding="utf-8")) == [], page


def page_problems(context, path: Path) -> list[str]:
    """Console errors, page errors, outside requests and unloaded images of a page."""
    problems: list[str] = []
    page = context.new_page()
    here = path.resolve().as_uri()

    def console(message) -> None:
        if message.type == "error":
            problems.append(f"{path.name}: console error: {message.text}")

    def only_self(route, request) -> None:
        if request.url == here or request.url.startswith("data:"):
            route.continue_()
        else:
            problems.append(f"{path.name}: requested {request.url[:100]}")
            route.abort()

    page.on("console", console)
    page.on("pageerror", lambda e: problems.append(f"{path.name}: page error: {e}"))
    page.route("**/*", only_self)
    page.goto(here, wait_until="load")
    broken = page.evaluate(
        "Array.from(document.images)"
        ".filter(i => !i.complete || i.naturalWidth === 0)"
        ".map(i => (i.alt || i.src).slice(0, 80))"
    )
    problems.extend(f"{path.name}: image did not load: {b}" for b in broken)
    page.close()
    return problems


def test_every_page_opens_cleanly_in_chromium(demo_pages, browser) -> None:
    context = browser.new_context()
    problems = [p for path in demo_pages for p in page_problems(context, path)]
    context.close()
    assert problems == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('<img src="missing.png" alt="gone">', "image did not load: gone"),
        ('<img src="data:image/png;base64,AAAA" alt="bad">', "image did not load: bad"),
        ("<script>undefinedFunction()</script>", "page error"),
        ("<script>console.error('boom')</script>", "console error: boom"),
        ('<link rel="stylesheet" href="https://example.org/x.css">', "requested https"),
    ],
)
def test_the_check_catches_broken_pages(tmp_path, browser, body, expected) -> None:
    page = tmp_path / "broken.html"
    page.write_text(f"<!DOCTYPE html><html><body>{body}</body></html>")
    context = browser.new_context()
    problems = page_problems(context, page)
    context.close()
    assert any(expected in p for p in problems), problems
