"""Global SHAP views and the pupil waterfall render headless and say the right thing."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from _explain_models import SPEC, make_frame, train
from cmerisk.explain import explain_frame, reference_from_frame
from cmerisk.explain_result import Explanations, PupilExplanation
from cmerisk.reports.explain_plots import (
    beeswarm_png,
    dependence_png,
    global_plots,
    importance_bar_png,
    waterfall_svg,
)

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def explanations() -> Explanations:
    frame = make_frame(600, seed=6)
    return explain_frame(
        frame,
        booster=train(frame, rounds=30),
        spec=SPEC,
        reference=reference_from_frame(frame, SPEC),
    )


def _size(png: bytes) -> tuple[int, int]:
    from matplotlib.image import imread

    h, w = imread(io.BytesIO(png), format="png").shape[:2]
    return w, h


def test_global_plots_are_pngs_named_for_mlflow(explanations) -> None:
    plots = global_plots(explanations, dependence=3)
    top3 = list(explanations.global_importance().index[:3])
    assert set(plots) == {
        "shap_importance_features.png",
        "shap_importance_groups.png",
        "shap_beeswarm.png",
        *(f"shap_dependence_{n}.png" for n in top3),
    }
    for png in plots.values():
        assert png.startswith(PNG)
        w, h = _size(png)
        assert w > 300 and h > 150


@pytest.mark.parametrize("feature", ["absence_rate", "primary_need", "in_year_6"])
def test_dependence_handles_numeric_categorical_and_missing(
    explanations, feature
) -> None:
    assert dependence_png(explanations, feature).startswith(PNG)


def test_bar_and_beeswarm_grow_with_the_number_of_rows_shown(explanations) -> None:
    small = _size(importance_bar_png(explanations, top=3))[1]
    large = _size(importance_bar_png(explanations, top=8))[1]
    assert large > small
    assert (
        _size(beeswarm_png(explanations, top=8))[1]
        > _size(beeswarm_png(explanations, top=2))[1]
    )


def test_plots_of_an_empty_or_tiny_set_still_render(explanations) -> None:
    one = explanations.subset(np.array([0]))
    assert beeswarm_png(one).startswith(PNG)
    assert importance_bar_png(explanations.subset(np.array([], dtype=int))).startswith(
        PNG
    )


def _pupil(groups: dict[str, float]) -> PupilExplanation:
    base = -3.0
    return PupilExplanation(
        id="p",
        margin=base + sum(groups.values()),
        base=base,
        probability=None,
        band=None,
        groups=groups,
        reasons=[],
    )


def test_waterfall_bars_are_proportional_and_coloured_by_sign() -> None:
    groups = {"attendance": 2.0, "needs": -0.5, "social_care": 1.0}
    root = ET.fromstring(waterfall_svg(_pupil(groups)))
    rects = [e for e in root.iter() if e.tag.endswith("rect")]
    widths = [float(r.get("width") or 0) for r in rects]
    colours = [r.get("fill") for r in rects]
    # sorted by size: attendance, social care, needs
    assert widths[0] == pytest.approx(2 * widths[1], rel=1e-2)
    assert widths[1] == pytest.approx(2 * widths[2], rel=1e-2)
    assert colours[0] == colours[1] != colours[2]
    # each bar starts where the previous one ended
    assert float(rects[1].get("x") or 0) == pytest.approx(
        float(rects[0].get("x") or 0) + widths[0], abs=0.2
    )
    title = next(e for e in root.iter() if e.tag.endswith("title")).text or ""
    assert "-3.00" in title and "-0.50" in title and "Attendance +2.00" in title


def test_waterfall_escapes_text() -> None:
    svg = waterfall_svg(_pupil({"other": 0.4}))
    ET.fromstring(svg)  # well-formed even with any group title
    assert "<script" not in svg
