"""Group metrics at an operating point, and their stratified bootstrap, in numpy.

A group's pupils are first merged into :class:`Cells`: distinct (score,
outcome, flag, score bin) combinations with how many pupils each holds and
the sum of their scores. Every metric is a function of such cells
(:func:`point_metrics`), and :func:`reduce_cells` merges them further, to the
few rows that still determine every point estimate (scores replaced by their
rank among the positives), which is what fairlearn's MetricFrame is fed.

The bootstrap is stratified by group: each group is resampled on its own,
with replacement, keeping its size. The operating point is held fixed: each
pupil keeps the flag they had in the audited ranking, so intervals show how a
group's rates could move with a different draw of pupils, not with a
different threshold. Each family of metrics is drawn from the counts it
depends on, which has exactly the distribution of resampling pupils but
costs far less: the four outcome x flag tallies for counts and confusion
rates, the AUC categories of :func:`auc_slots` for the AUC, and the pupils
themselves (or their distinct cells) for the calibration error.

Metrics (``NaN`` where the denominator is zero):

========================  ==========================================
``missed_rate``           missed children / children who went missing (FNR)
``recall``                found children / children who went missing (TPR)
``false_positive_rate``   flagged who did not go missing / all who did not
``precision``             flagged who went missing / all flagged
``selection_rate``        flagged / pupils
``base_rate``             went missing / pupils
``auc``                   ROC AUC of the score within the group (ties count 1/2)
``calibration_error``     expected calibration error of the score within the
                          group over fixed score bins: sum over bins of
                          |went missing - sum of scores| / pupils
========================  ==========================================

Examples
--------
>>> import numpy as np
>>> cells = compress(y=np.array([1, 1, 0, 0, 0]), flag=np.array([1, 0, 1, 0, 0]),
...                  score=np.array([0.9, 0.2, 0.8, 0.1, 0.1]), bins=np.zeros(5, int))
>>> m = point_metrics(cells)
>>> m["missed_rate"], m["precision"], round(m["auc"], 3)
(0.5, 0.5, 0.833)
>>> round(m["calibration_error"], 2)  # |2 went missing - 2.1 expected| / 5
0.02
>>> point_metrics(reduce_cells(cells)) == m
True
>>> reps = bootstrap_metrics(cells, n_boot=200, rng=np.random.default_rng(0))
>>> reps["recall"].shape
(200,)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Rates, in the order reports show them (the missed-children rate leads).
RATES: tuple[str, ...] = (
    "missed_rate",
    "recall",
    "false_positive_rate",
    "precision",
    "selection_rate",
    "base_rate",
    "auc",
    "calibration_error",
)
#: Counts published beside the rates.
COUNTS: tuple[str, ...] = ("pupils", "positives", "flagged")

#: Largest draws matrix (replicates x pupils) held at once.
_CHUNK_ELEMENTS = 500_000
#: The calibration bootstrap draws counts per cell (cheaper) when a group has
#: at most this many distinct cells per pupil, else it draws pupils.
_CELL_DRAWS_UP_TO = 0.25


@dataclass(frozen=True)
class Cells:
    """A group's pupils merged into distinct (score, outcome, flag, bin) cells.

    Sorted by score. ``weight``: pupils per cell; ``expected``: the sum of
    their scores; ``start``/``end``: the first and last cell with the same
    score (tied ranks).
    """

    score: np.ndarray
    y: np.ndarray
    flag: np.ndarray
    bin: np.ndarray
    weight: np.ndarray
    expected: np.ndarray
    start: np.ndarray
    end: np.ndarray

    @property
    def n(self) -> int:
        return round(float(self.weight.sum()))


def compress(
    *,
    y: np.ndarray,
    flag: np.ndarray,
    score: np.ndarray,
    bins: np.ndarray,
    weight: np.ndarray | None = None,
    expected: np.ndarray | None = None,
) -> Cells:
    """Merge rows into cells (``bins``: each row's score bin).

    ``weight`` says how many pupils a row stands for (default one) and
    ``expected`` the sum of their scores (default ``weight * score``).
    """
    score = np.asarray(score, dtype=np.float64)
    y, flag, bins = (np.asarray(a).astype(np.int64) for a in (y, flag, bins))
    w = np.ones(len(score)) if weight is None else np.asarray(weight, dtype=np.float64)
    e = w * score if expected is None else np.asarray(expected, dtype=np.float64)
    order = np.lexsort((bins, flag, y, score))
    s, yy, ff, bb = score[order], y[order], flag[order], bins[order]
    new_cell = np.r_[
        True,
        (s[1:] != s[:-1])
        | (yy[1:] != yy[:-1])
        | (ff[1:] != ff[:-1])
        | (bb[1:] != bb[:-1]),
    ]
    first = np.flatnonzero(new_cell)
    cell_s = s[first]
    new_block = np.r_[True, cell_s[1:] != cell_s[:-1]]
    block = np.cumsum(new_block) - 1
    block_first = np.flatnonzero(new_block)
    block_last = np.r_[block_first[1:] - 1, len(cell_s) - 1]
    return Cells(
        score=cell_s,
        y=yy[first].astype(np.float64),
        flag=ff[first].astype(np.float64),
        bin=bb[first],
        weight=np.add.reduceat(w[order], first) if len(first) else np.empty(0),
        expected=np.add.reduceat(e[order], first) if len(first) else np.empty(0),
        start=block_first[block],
        end=block_last[block],
    )


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.broadcast_arrays(
        np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    )
    return np.divide(a, b, out=np.full(a.shape, np.nan), where=b > 0)


def _rates(
    n: np.ndarray, pos: np.ndarray, flagged: np.ndarray, tp: np.ndarray
) -> dict[str, np.ndarray]:
    return {
        "pupils": n,
        "positives": pos,
        "flagged": flagged,
        "missed_rate": _div(pos - tp, pos),
        "recall": _div(tp, pos),
        "false_positive_rate": _div(flagged - tp, n - pos),
        "precision": _div(tp, flagged),
        "selection_rate": _div(flagged, n),
        "base_rate": _div(pos, n),
    }


def point_metrics(cells: Cells) -> dict[str, float]:
    """The group's counts and rates."""
    w, y = cells.weight, cells.y
    n, pos = w.sum(), w @ y
    out = {
        k: float(v)
        for k, v in _rates(n, pos, w @ cells.flag, w @ (y * cells.flag)).items()
    }
    # AUC: for each positive, the negatives scored below it, plus half those tied.
    cum = np.r_[0.0, np.cumsum(w * (1 - y))]
    below = cum[cells.start]
    tied = cum[cells.end + 1] - below
    out["auc"] = float(_div((w * y) @ (below + 0.5 * tied), pos * (n - pos)))
    # Calibration error: |went missing - expected| summed over score bins.
    gap = (
        np.bincount(cells.bin, weights=w * y - cells.expected)
        if len(w)
        else np.zeros(1)
    )
    out["calibration_error"] = float(_div(np.abs(gap).sum(), n))
    return out


def auc_slots(cells: Cells) -> tuple[np.ndarray, int]:
    """Map each cell to an AUC category: the positives' distinct scores and the gaps.

    With ``J`` distinct scores among the positives, categories ``0..J-1`` are
    positives at score ``j``, ``J..2J-1`` negatives tied with score ``j``, and
    ``2J..3J`` negatives in gap ``g`` (below score ``g``; gap ``J`` above all).
    The AUC of any resample depends only on its counts per category.
    """
    positive = cells.y == 1
    levels = np.unique(cells.score[positive])
    j = len(levels)
    at = np.searchsorted(levels, cells.score, side="left")
    tied = (at < j) & (levels[np.minimum(at, j - 1)] == cells.score) if j else positive
    category = np.where(positive, at, np.where(tied, j + at, 2 * j + at))
    return category.astype(np.int64), j


def auc_from_slots(counts: np.ndarray, j: int) -> np.ndarray:
    """AUC for each row of counts over the categories of :func:`auc_slots`."""
    pos, tie, gap = counts[:, :j], counts[:, j : 2 * j], counts[:, 2 * j :]
    below = np.cumsum(gap[:, :j], axis=1) + np.cumsum(tie, axis=1) - tie
    wins = (pos * (below + 0.5 * tie)).sum(axis=1)
    n_pos = pos.sum(axis=1)
    return _div(wins, n_pos * (counts.sum(axis=1) - n_pos))


def reduce_cells(cells: Cells) -> Cells:
    """The fewest cells with the same point metrics: scores replaced by AUC rank.

    Positives at the ``j``-th distinct positive score, and negatives tied with
    them, get rank ``2j + 1``; negatives between two positive scores get the
    even rank between. Counts, AUC and calibration error are unchanged (the
    calibration error keeps each cell's score sum), and a group of thousands of
    pupils with a handful of positives shrinks to a few dozen cells.
    """
    category, j = auc_slots(cells)
    rank = np.where(
        category < j,
        2 * category + 1,
        np.where(category < 2 * j, 2 * (category - j) + 1, 2 * (category - 2 * j)),
    )
    return compress(
        y=cells.y,
        flag=cells.flag,
        score=rank.astype(np.float64),
        bins=cells.bin,
        weight=cells.weight,
        expected=cells.expected,
    )


# ------------------------------------------------------------------ bootstrap
def _count_replicates(
    cells: Cells, *, n_boot: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    kind = (cells.y * 2 + cells.flag).astype(
        np.int64
    )  # 0: -,- 1: -,flag 2: +,- 3: +,flag
    tally = np.bincount(kind, weights=cells.weight, minlength=4)
    draws = rng.multinomial(cells.n, tally / tally.sum(), size=n_boot).astype(
        np.float64
    )
    n = draws.sum(axis=1)
    return _rates(n, draws[:, 2] + draws[:, 3], draws[:, 1] + draws[:, 3], draws[:, 3])


def _auc_replicates(
    cells: Cells, *, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    category, j = auc_slots(cells)
    if j == 0:
        return np.full(n_boot, np.nan)
    tally = np.bincount(category, weights=cells.weight, minlength=3 * j + 1)
    draws = rng.multinomial(cells.n, tally / tally.sum(), size=n_boot).astype(
        np.float64
    )
    return auc_from_slots(draws, j)


def _ece_replicates(
    cells: Cells, *, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    n, k = cells.n, len(cells.weight)
    residual = cells.y - cells.score
    n_bins = int(cells.bin.max()) + 1
    if k <= _CELL_DRAWS_UP_TO * n:  # few distinct cells: draw counts per cell
        draws = rng.multinomial(n, cells.weight / cells.weight.sum(), size=n_boot)
        matrix = np.zeros((k, n_bins))
        matrix[np.arange(k), cells.bin] = residual
        return np.abs(draws.astype(np.float64) @ matrix).sum(axis=1) / n
    cell_of_pupil = np.repeat(np.arange(k), np.round(cells.weight).astype(np.int64))
    chunk = max(1, _CHUNK_ELEMENTS // n)
    out = []
    for lo in range(0, n_boot, chunk):
        r = min(chunk, n_boot - lo)
        drawn = cell_of_pupil[rng.integers(0, n, size=(r, n))]
        key = cells.bin[drawn] + (np.arange(r) * n_bins)[:, None]
        sums = np.bincount(
            key.ravel(), weights=residual[drawn].ravel(), minlength=r * n_bins
        )
        out.append(np.abs(sums.reshape(r, n_bins)).sum(axis=1) / n)
    return np.concatenate(out)


def bootstrap_metrics(
    cells: Cells, *, n_boot: int, rng: np.random.Generator, ranks: bool = True
) -> dict[str, np.ndarray]:
    """``n_boot`` replicates of every metric, resampling the group's pupils.

    ``cells`` must be a group's own cells (from :func:`compress` of its
    pupils, not :func:`reduce_cells`). ``ranks=False`` skips AUC and
    calibration error (``NaN``).
    """
    out = _count_replicates(cells, n_boot=n_boot, rng=rng)
    if ranks:
        out["auc"] = _auc_replicates(cells, n_boot=n_boot, rng=rng)
        out["calibration_error"] = _ece_replicates(cells, n_boot=n_boot, rng=rng)
    else:
        out["auc"] = out["calibration_error"] = np.full(n_boot, np.nan)
    return out


def bin_edges(score: np.ndarray, *, n_bins: int) -> np.ndarray:
    """Inner edges of ``n_bins`` quantile bins of ``score`` (merged where they tie)."""
    if n_bins <= 1 or len(score) == 0:
        return np.empty(0)
    return np.unique(np.quantile(score, np.linspace(0, 1, n_bins + 1)[1:-1]))


def calibration_bins(score: np.ndarray, *, n_bins: int) -> np.ndarray:
    """Each pupil's score bin: quantile bins of all audited scores (ties kept together).

    Examples
    --------
    >>> calibration_bins(np.array([0.1, 0.1, 0.2, 0.3, 0.9, 0.9]), n_bins=3).tolist()
    [0, 0, 1, 1, 2, 2]
    """
    edges = bin_edges(score, n_bins=n_bins)
    return np.searchsorted(edges, score, side="left").astype(np.int64)


def interval(replicates: np.ndarray, *, level: float) -> tuple[float, float]:
    """Percentile interval of the non-missing replicates (order statistics).

    No interpolation, so a ratio's interval is the ratio of order statistics.

    Examples
    --------
    >>> interval(np.arange(1, 101, dtype=float), level=0.9)
    (5.0, 95.0)
    """
    r = replicates[~np.isnan(replicates)]
    if len(r) == 0:
        return (np.nan, np.nan)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(r, [alpha, 1 - alpha], method="inverted_cdf")
    return float(lo), float(hi)
