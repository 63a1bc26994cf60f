"""Drawing spells and session categories over a (pupils x days) grid, in bulk.

- :func:`expand` lists the ``(row, day)`` cells of many intervals at once;
- :func:`pick` gives each cell at most one of several categories from one
  uniform draw (the categories' slices of [0, 1) are thin);
- :func:`day_spells` starts spells of several processes from one uniform draw
  per day and paints them with geometric lengths, returning only the cells
  they cover (cost follows the spells, not the grid).

Examples
--------
>>> rows, days, which = expand(np.array([7, 9]), np.array([0, 5]), np.array([1, 5]))
>>> rows.tolist(), days.tolist(), which.tolist()
([7, 7, 9], [0, 1, 5], [0, 0, 1])
"""

from __future__ import annotations

import numpy as np


def expand(
    rows: np.ndarray, first: np.ndarray, last: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ``(row, day, interval)`` in the inclusive intervals ``[first, last]``."""
    lengths = np.maximum(last - first + 1, 0)
    rep = np.repeat(np.arange(len(rows)), lengths)
    offset = np.arange(int(lengths.sum())) - np.repeat(
        np.cumsum(lengths) - lengths, lengths
    )
    return rows[rep], first[rep] + offset, rep


def pick(u: np.ndarray, probs: list[tuple[int, np.ndarray | float]]) -> np.ndarray:
    """One category per cell from a uniform draw ``u``: code, or 255 for none.

    Category ``k`` takes the cells where ``u`` falls in its slice of [0, 1); the
    slices are thin, so only the few cells under their total are sorted out.
    """
    total = np.zeros(u.shape, dtype=np.float32)
    for _, prob in probs:
        total += prob
    r, c = np.nonzero(u < total)
    draw = u[r, c]
    which = np.full(len(r), 255, dtype=np.uint8)
    low = np.zeros(len(r), dtype=np.float32)
    for value, prob in probs:
        high = low + np.broadcast_to(np.asarray(prob, dtype=np.float32), u.shape)[r, c]
        which[(draw >= low) & (draw < high)] = value
        low = high
    out = np.full(u.shape, 255, dtype=np.uint8)
    out[r, c] = which
    return out


def day_spells(
    rng: np.random.Generator,
    processes: list[tuple[int, np.ndarray | float, np.ndarray | float]],
    shape: tuple[int, int],
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Spells of whole days: ``(code, start rate, mean length)`` per process.

    One uniform draw per day decides whether a spell of some process starts
    there (the processes share it, so starts never collide); lengths are
    geometric. Returns ``(code, rows, days)`` per process, clipped to the year.
    Union coverage is about ``1 - exp(-sum(rate * mean))``.
    """
    d = shape[1]
    u = rng.random(shape, dtype=np.float32)
    total = np.zeros(shape, dtype=np.float32)
    for _, rate, _ in processes:
        total += rate
    r, s = np.nonzero(u < total)
    draw = u[r, s]
    out = []
    low = np.zeros(len(r), dtype=np.float32)
    for value, rate, mean in processes:
        high = low + np.broadcast_to(np.asarray(rate, dtype=np.float32), shape)[r, s]
        mine = (draw >= low) & (draw < high)
        low = high
        m = np.broadcast_to(np.asarray(mean, dtype=np.float64), shape)[r[mine], s[mine]]
        length = rng.geometric(1.0 / np.maximum(m, 1.0))
        rows, days, _ = expand(
            r[mine], s[mine], np.minimum(s[mine] + length - 1, d - 1)
        )
        out.append((value, rows, days))
    return out
