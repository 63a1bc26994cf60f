"""Reviewer pages: one self-contained HTML card per listed pupil, and an index.

Each card shows the pseudonymised id, the calibrated probability and list
band, the top reasons (marked actionable or context), a waterfall of the
group contributions and the human-review note. Pages work on a closed
network: CSS is inline, the one image is an embedded ``data:`` URI, and there
are no scripts, web fonts or external links. Templates are autoescaped.

Files are written atomically (temporary file in the same folder, then
``os.replace``). Cards left from an earlier run in the same folder for pupils
no longer listed are removed, so a folder never shows a stale list.

Examples
--------
>>> import tempfile
>>> safe_name("a/b c"), safe_name("3f9c2e")
('pupil_a_b_c_0af99a60.html', 'pupil_3f9c2e.html')
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cmerisk.atomic import write_text
from cmerisk.reports.render import data_uri, environment
from cmerisk.spec import GROUP_TITLES

if TYPE_CHECKING:
    from cmerisk.explain_result import Explanations, PupilExplanation

INDEX_FILE = "index.html"
CARD_PATTERN = re.compile(r"^pupil_[A-Za-z0-9_-]+\.html$")

BAND_LABELS = {"flagged": "Flagged", "watch": "Watch list", "low": "Low"}
KIND_HELP = {
    "actionable": "support could change this",
    "context": "the child's situation; not something to fix",
}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Arial,sans-serif;color:#111827;
background:#f9fafb;margin:0;line-height:1.45}
main{max-width:760px;margin:0 auto;padding:1.5rem;background:#fff}
main.wide{max-width:1100px}
h1{font-size:1.5rem;margin:.3rem 0 1rem}h2{font-size:1.15rem;margin:1.6rem 0 .6rem}
a{color:#1d4ed8}.crumbs{margin:0;font-size:.9rem}
.pid{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.95em}
.review{border-left:5px solid #b45309;background:#fffbeb;padding:.75rem 1rem;
margin:1rem 0}
.facts dl{display:flex;flex-wrap:wrap;gap:.5rem 2rem;margin:0}
.facts dt{font-size:.8rem;color:#4b5563}.facts dd{margin:0;font-size:1.05rem}
.band{display:inline-block;padding:.05rem .5rem;border-radius:.75rem;font-size:.85rem;
font-weight:600;background:#e5e7eb}
.band-flagged{background:#fee2e2;color:#991b1b}.band-watch{background:#fef3c7;color:#92400e}
ol.reasons{padding-left:1.2rem}ol.reasons li{margin-bottom:.9rem}
.group{font-weight:600;margin-right:.4rem}
.kind{font-size:.75rem;padding:.05rem .45rem;border-radius:.6rem;
border:1px solid #9ca3af}
.kind-actionable{background:#dcfce7;border-color:#16a34a;color:#14532d}
.kind-context{background:#f3f4f6;color:#374151}
.text{margin:.2rem 0 0;font-size:1.05rem}
.also{margin:.15rem 0 0;color:#374151;font-size:.92rem}
.weight{margin:.15rem 0 0;color:#6b7280;font-size:.8rem}
.note,.muted,figcaption,footer{color:#4b5563;font-size:.85rem}
figure{margin:0}img{max-width:100%;height:auto}
table{border-collapse:collapse;width:100%;font-size:.92rem}
th,td{border-bottom:1px solid #e5e7eb;padding:.35rem .5rem;text-align:left;
vertical-align:top}
td.num{text-align:right;white-space:nowrap}.up{color:#c2410c}.down{color:#1d4ed8}
table.groups{max-width:360px}ul.brief{margin:0;padding-left:1rem}
footer{margin-top:2rem;border-top:1px solid #e5e7eb;padding-top:.5rem}
"""


def safe_name(pupil_id: str) -> str:
    """The card's file name: the id when it is filename-safe, else a cleaned id
    plus a short hash (so distinct ids never share a file)."""
    if re.fullmatch(r"[A-Za-z0-9_-]{1,100}", pupil_id):
        return f"pupil_{pupil_id}.html"
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", pupil_id)[:60].strip("_") or "id"
    digest = hashlib.sha256(pupil_id.encode()).hexdigest()[:8]
    return f"pupil_{cleaned}_{digest}.html"


def _percent(p: float | None) -> str:
    if p is None:
        return ""
    if p < 0.01:
        return "under 1%"
    return f"{p:.0%}"


def _in_ten(p: float | None) -> int | None:
    if p is None or p < 0.05:
        return None
    return max(1, round(p * 10))


def _svg_uri(svg: str) -> str:
    return data_uri(svg.encode(), mime="image/svg+xml")


def render_card(
    pupil: PupilExplanation,
    *,
    index_href: str = INDEX_FILE,
    rank: int | None = None,
    listed: int | None = None,
    model: str | None = None,
    as_of: date | str | None = None,
    valid_until: date | str | None = None,
    horizon: str | None = None,
    env: Any = None,
) -> str:
    """The HTML of one pupil's card."""
    from markupsafe import Markup

    from cmerisk.reports.explain_plots import waterfall_svg

    env = env or environment()
    groups = sorted(pupil.groups.items(), key=lambda kv: -abs(kv[1]))
    return str(
        env.get_template("pupil_card.html.j2").render(
            css=Markup(CSS),
            pupil=pupil,
            band=BAND_LABELS.get(pupil.band or "", pupil.band) if pupil.band else None,
            rank=rank,
            listed=listed,
            probability=_percent(pupil.probability)
            if pupil.probability is not None
            else None,
            in_ten=_in_ten(pupil.probability),
            horizon=horizon,
            kind_help=KIND_HELP,
            waterfall_uri=Markup(_svg_uri(waterfall_svg(pupil))),
            waterfall_alt=(
                f"Bar chart: score {pupil.base:+.2f} for the average pupil, "
                + ", ".join(f"{GROUP_TITLES.get(g, g)} {v:+.2f}" for g, v in groups)
                + f", giving {pupil.margin:+.2f} for this pupil."
            ),
            groups=[(GROUP_TITLES.get(g, g), v) for g, v in groups],
            index_href=index_href,
            model=model,
            as_of=as_of,
            valid_until=valid_until,
        )
    )


def _order(explanations: Explanations) -> list[int]:
    key = (
        explanations.probability
        if explanations.probability is not None
        else explanations.margin
    )
    return sorted(
        range(len(explanations)),
        key=lambda i: (-float(key[i]), str(explanations.ids[i])),
    )


def write_pupil_pages(
    explanations: Explanations,
    *,
    out_dir: str | Path,
    title: str = "Pupils listed for a supportive check",
    model: str | None = None,
    as_of: date | str | None = None,
    valid_until: date | str | None = None,
    horizon: str | None = None,
    ranks: Sequence[int] | None = None,
    listed: int | None = None,
) -> list[Path]:
    """Write a card per pupil in ``explanations`` and an index linking them.

    Parameters
    ----------
    explanations
        The pupils to write (pass the flagged ones, e.g. ``ex.subset(...)``).
    out_dir
        A folder for these pages only (created if needed).
    title, model, as_of, valid_until, horizon
        Shown on the pages (``horizon`` completes "Estimated chance of going
        missing from education ...", e.g. "by next spring").
    ranks
        The pupils' ranks on the full list, in ``explanations`` order; by
        default their order here (probability, else model score).
    listed
        Length of the list the ranks refer to ("rank 5 of 200"); by default
        the number of pupils here when ``ranks`` is not given.

    Returns
    -------
    list of Path
        The index first, then the cards in list order.
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    env = environment()
    order = _order(explanations)
    position = {i: k + 1 for k, i in enumerate(order)}
    of = listed if listed is not None else (None if ranks is not None else len(order))
    written: list[Path] = []
    rows = []
    for i in order:
        pupil = explanations.pupil(i)
        rank = int(ranks[i]) if ranks is not None else position[i]
        name = safe_name(pupil.id)
        path = folder / name
        write_text(
            path,
            render_card(
                pupil,
                rank=rank,
                listed=of,
                model=model,
                as_of=as_of,
                valid_until=valid_until,
                horizon=horizon,
                env=env,
            ),
        )
        written.append(path)
        rows.append(
            {
                "position": rank,
                "id": pupil.id,
                "href": name,
                "band": BAND_LABELS.get(pupil.band or "", pupil.band)
                if pupil.band
                else None,
                "band_class": pupil.band or "",
                "probability": _percent(pupil.probability),
                "reasons": pupil.reasons,
            }
        )
    from markupsafe import Markup

    index = folder / INDEX_FILE
    write_text(
        index,
        env.get_template("pupil_index.html.j2").render(
            css=Markup(CSS),
            title=title,
            rows=rows,
            show_band=explanations.band is not None,
            show_probability=explanations.probability is not None,
            model=model,
            as_of=as_of,
        ),
    )
    keep = {p.name for p in written}
    for stale in folder.iterdir():
        if CARD_PATTERN.match(stale.name) and stale.name not in keep:
            stale.unlink()
    return [index, *written]
