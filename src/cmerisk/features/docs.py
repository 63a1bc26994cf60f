"""Keep the generated tables of docs/features.md in step with the code.

The feature table and the dirty-record table are generated from their
declarations (:func:`features_markdown`,
:func:`~cmerisk.features.quality.rules_markdown`) between marker comments.
Regenerate them with ``python -m cmerisk.features.docs``; a test fails when
they drift.

Examples
--------
>>> text = "a\\n<!-- generated:rules -->\\nold\\n<!-- end:rules -->\\nb\\n"
>>> refreshed = refresh(text)
>>> head = "a\\n<!-- generated:rules -->\\n| category |"
>>> refreshed.startswith(head), "old" in refreshed
(True, False)
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from cmerisk.atomic import write_text
from cmerisk.features.missing import MISSING_WHEN
from cmerisk.features.quality import rules_markdown
from cmerisk.features.registry import FEATURES
from cmerisk.features.sources import FEATURE_SOURCES

__all__ = ["DOC", "SECTIONS", "features_markdown", "refresh"]


def features_markdown() -> str:
    """The feature table of docs/features.md, generated from the declarations.

    >>> features_markdown().splitlines()[0]
    '| feature | group | kind | monotone | actionable | from | reason (template) |'
    """
    lines = [
        "| feature | group | kind | monotone | actionable | from | reason (template) |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in FEATURES:
        mono = {1: "+1", -1: "-1", 0: ""}[f.monotone]
        cell = f.reason.replace("|", "\\|")
        if f.description:
            cell += f"<br>*{f.description}*"
        if f.name in MISSING_WHEN:
            cell += f"<br>Missing when {MISSING_WHEN[f.name]}."
        sources = " or ".join(FEATURE_SOURCES[f.name])
        actionable = "yes" if f.actionable else "context"
        lines.append(
            f"| `{f.name}` | {f.group} | {f.kind} | {mono} | {actionable} "
            f"| {sources} | {cell} |"
        )
    return "\n".join(lines) + "\n"


#: Where the docs live, from the repository root.
DOC = Path("docs") / "features.md"

SECTIONS: dict[str, Callable[[], str]] = {
    "features": features_markdown,
    "rules": rules_markdown,
}


def _filler(table: str) -> Callable[[re.Match[str]], str]:
    def fill(match: re.Match[str]) -> str:
        return match.group(1) + table + match.group(2)

    return fill


def refresh(text: str) -> str:
    """``text`` with every generated section rewritten from the code."""
    for name, make in SECTIONS.items():
        pattern = re.compile(
            rf"(<!-- generated:{name} -->\n).*?(<!-- end:{name} -->)", flags=re.DOTALL
        )
        text = pattern.sub(_filler(make()), text)
    return text


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DOC
    new = refresh(path.read_text(encoding="utf-8"))
    write_text(path, new)
    print(f"refreshed {path}")


if __name__ == "__main__":
    main()
