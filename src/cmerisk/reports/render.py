"""The few things every page and picture here does the same way.

A figure is a plain matplotlib :class:`~matplotlib.figure.Figure` on the Agg
canvas (no pyplot state, safe in threads and headless); a PNG carries no
software stamp, so the same figure gives the same bytes; pages embed images as
``data:`` URIs (self-contained: LA networks are closed) and come from the
Jinja2 templates in ``templates/`` with undefined names an error.

Examples
--------
>>> fig = figure(2, 1)
>>> _ = fig.add_subplot().plot([0, 1], [1, 0])
>>> image = png(fig)
>>> image[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
>>> data_uri(image).startswith("data:image/png;base64,")
True
>>> environment().from_string("{{ x }}").render(x="<b>")
'&lt;b&gt;'
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TEMPLATES = Path(__file__).parent / "templates"


def figure(width: float, height: float, *, dpi: int = 100) -> Figure:
    """A new figure of ``width`` x ``height`` inches with constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes (no software stamp: same figure, same bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def data_uri(image: bytes, *, mime: str = "image/png") -> str:
    """``image`` as a ``data:`` URI a page can embed."""
    return f"data:{mime};base64," + base64.b64encode(image).decode("ascii")


def environment(*, html: bool = True, keep_trailing_newline: bool = False) -> Any:
    """The Jinja2 environment over ``templates/`` (autoescaped for HTML)."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=html,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=keep_trailing_newline,
    )
