"""Keep the generated tables of docs/features.md in step with the code.

The feature table and the dirty-record table are generated from their
declarations (:func:`~cmerisk.features.registry.features_markdown`,
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

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from cmerisk.features.quality import rules_markdown
from cmerisk.features.registry import features_markdown

__all__ = ["DOC", "SECTIONS", "refresh"]

#: Where the docs live, from the repository root.
DOC = Path("docs") / "features.md"

SECTIONS: dict[str, Callable[[], str]] = {
    "features": features_markdown,
    "rules": rules_markdown,
}


def refresh(text: str) -> str:
    """``text`` with every generated section rewritten from the code."""
    for name, make in SECTIONS.items():
        pattern = re.compile(
            rf"(<!-- generated:{name} -->\n).*?(<!-- end:{name} -->)", flags=re.DOTALL
        )
        table = make()
        text = pattern.sub(lambda m: m.group(1) + table + m.group(2), text)
    return text


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DOC
    new = refresh(path.read_text(encoding="utf-8"))
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, path)
    print(f"refreshed {path}")


if __name__ == "__main__":
    main()
