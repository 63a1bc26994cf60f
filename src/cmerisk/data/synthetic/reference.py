"""One LA's published rates, read from the DfE reference subset.

The small CSVs in ``cmerisk/data/reference`` (see its ``SOURCE.md``) hold
DfE's published absence, children-in-need and SEN figures by LA.
:func:`la_rates` reads one LA's; :mod:`.targets` and :mod:`.params` use them
for ``--like``.

Examples
--------
>>> la_names()["330"]
'Birmingham'
>>> round(la_rates("330")["persistent_absence"], 2)
22.03
"""

from __future__ import annotations

import csv
import functools
from importlib import resources

from cmerisk.errors import ConfigError


@functools.cache
def _read(name: str) -> list[dict[str, str]]:
    folder = resources.files("cmerisk").joinpath("data", "reference")
    text = folder.joinpath(name).read_text("utf-8")
    return list(csv.DictReader(text.splitlines()))


def _num(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:  # DfE suppression codes: c, x, z, k
        return None


@functools.cache
def la_names() -> dict[str, str]:
    """LA code -> name, for every LA in the reference absence table."""
    return {
        r["la_code"]: r["la_name"]
        for r in _read("absence_by_la_2024_25.csv")
        if r["la_code"] != "england"
    }


def la_rates(la_code: str) -> dict[str, float | None]:
    """One LA's published rates from the reference subset (``None`` where suppressed).

    Keys: ``overall_absence``, ``persistent_absence`` and its ``_primary`` /
    ``_secondary`` forms (all pupils, 2024/25), ``persistent_absence_cin`` and
    ``severe_absence_cin`` (CINO at 31 March, 2024/25), ``cin_index`` (the LA's
    children in need at 31 March per pupil enrolled, over England's), and
    ``sen_support_index`` / ``ehc_plan_index`` (the LA's SEN rates among children
    in need, over England's: a proxy, as the subset has no all-pupil SEN by LA).

    Raises
    ------
    ConfigError
        When ``la_code`` is not an LA in the reference data.
    """
    names = la_names()
    if la_code not in names:
        examples = ", ".join(f"{c} {n}" for c, n in list(names.items())[:3])
        raise ConfigError(
            f"--like {la_code!r}: no such LA in the DfE reference data "
            f"(use a 3-digit LA number, e.g. {examples})"
        )
    out: dict[str, float | None] = {}
    absence = {
        (r["la_code"], r["phase"]): r for r in _read("absence_by_la_2024_25.csv")
    }
    total = absence.get((la_code, "total"), {})
    out["overall_absence"] = _num(total.get("overall_absence_pct"))
    out["persistent_absence"] = _num(total.get("persistent_absence_pct"))
    for phase in ("primary", "secondary"):
        out[f"persistent_absence_{phase}"] = _num(
            absence.get((la_code, phase), {}).get("persistent_absence_pct")
        )
    cin_abs = {
        (r["la_code"], r["time_period"]): r for r in _read("cin_absence_by_la.csv")
    }
    row = cin_abs.get((la_code, "202425"), {})
    out["persistent_absence_cin"] = _num(row.get("persistent_absence_pct"))
    out["severe_absence_cin"] = _num(row.get("severe_absence_pct"))
    counts = {(r["la_code"], r["time_period"]): r for r in _read("cin_by_la.csv")}
    la_cin = _num(counts.get((la_code, "2025"), {}).get("cin_at_31_march"))
    nat_cin = _num(counts[("england", "2025")]["cin_at_31_march"])
    la_pupils = _num(total.get("enrolments"))
    nat_pupils = _num(absence[("england", "total")]["enrolments"])
    out["cin_index"] = None
    if la_cin and la_pupils and nat_cin and nat_pupils:
        out["cin_index"] = (la_cin / la_pupils) / (nat_cin / nat_pupils)
    sen = {r["la_code"]: r for r in _read("sen_among_cin_by_la_2021_22.csv")}
    for key, col in (
        ("sen_support_index", "sen_support_pct"),
        ("ehc_plan_index", "ehc_plan_pct"),
    ):
        la_v, nat_v = _num(sen.get(la_code, {}).get(col)), _num(sen["england"][col])
        # Small LAs' rates among a few hundred children are noisy: shrink to 1.
        pupils = _num(sen.get(la_code, {}).get("pupils")) or 0.0
        weight = pupils / (pupils + 500.0)
        out[key] = (1 + weight * (la_v / nat_v - 1)) if la_v and nat_v else None
    return out
