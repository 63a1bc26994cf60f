"""Exact TreeSHAP, faster: LightGBM's own algorithm run once per distinct pattern.

Path-dependent TreeSHAP looks at a pupil's values only through the side of
each split they fall on: two pupils who go the same way at *every* node of a
tree (not just along their own path) get identical contributions from that
tree. Real pupil data has few such patterns per tree (flags, counts and
rates split at a handful of thresholds), so for each tree this module

1. computes every row's decision at every node, exactly as LightGBM does
   (numeric splits with their missing-value rule, categorical bitsets), from
   the booster's own text model;
2. packs the decisions into one code per row and keeps one representative row
   per distinct code;
3. asks LightGBM for that single tree's TreeSHAP values on the representatives
   (``pred_contrib`` with ``start_iteration``/``num_iteration``) and copies
   them to every row sharing the code.

The numbers are LightGBM's own, per tree, so they equal the full
``pred_contrib`` call up to floating-point summation order (tests: within
1e-9). Trees are processed on a small thread pool (LightGBM and numpy release
the GIL); each thread predicts with its own copy of the booster, because a
LightGBM booster keeps the iteration range of a prediction as shared state.
Decisions are checked against ``pred_leaf`` in the tests.

Examples
--------
>>> import lightgbm as lgb, numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(500, 3)); X[::9, 1] = np.nan
>>> y = (X[:, 0] + np.nan_to_num(X[:, 1]) > 1).astype(int)
>>> booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 7,
...                      "num_threads": 1},
...                     lgb.Dataset(X, y), num_boost_round=20)
>>> values, base = fast_contributions(X, booster=booster)
>>> native = booster.predict(X, pred_contrib=True)
>>> float(np.abs(values - native[:, :-1]).max()) < 1e-9
True
>>> bool(abs(base - native[0, -1]) < 1e-9)
True
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cmerisk.errors import ModelError

if TYPE_CHECKING:
    import lightgbm as lgb

#: LightGBM's |x| below which a value counts as zero (``kZeroThreshold``).
ZERO_THRESHOLD = 1e-35
_MISSING_NONE, _MISSING_ZERO, _MISSING_NAN = 0, 1, 2


@dataclass(frozen=True)
class TreeSplits:
    """The internal nodes of one LightGBM tree (arrays over nodes)."""

    index: int
    feature: np.ndarray
    threshold: np.ndarray
    is_categorical: np.ndarray
    default_left: np.ndarray
    missing_type: np.ndarray
    cat_boundaries: np.ndarray
    cat_threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray

    @property
    def n_nodes(self) -> int:
        return len(self.feature)

    def leaves(self, D: np.ndarray) -> np.ndarray:
        """The leaf each row reaches, following its decisions ``D`` from the root
        (LightGBM's ``pred_leaf``; used to check :func:`decisions`)."""
        node = np.zeros(len(D), dtype=np.int64)
        leaf = np.full(len(D), -1, dtype=np.int64)
        rows = np.arange(len(D))
        while len(rows):
            at = node[rows]
            nxt = np.where(D[rows, at], self.left[at], self.right[at])
            done = nxt < 0
            leaf[rows[done]] = ~nxt[done]
            node[rows[~done]] = nxt[~done]
            rows = rows[~done]
        return leaf


def _ints(text: str, dtype: type = np.int64) -> np.ndarray:
    return np.array(text.split(), dtype=dtype)


_PARSED: weakref.WeakKeyDictionary[Any, tuple[int, list[TreeSplits], list[int]]] = (
    weakref.WeakKeyDictionary()
)


def parse_trees(booster: lgb.Booster) -> tuple[list[TreeSplits], list[int]]:
    """The split nodes of every tree with at least one split, and the indices
    of single-leaf trees, read from the booster's exact text model (kept per
    booster while it lives and has the same number of trees)."""
    cached = _PARSED.get(booster)
    if cached is not None and cached[0] == booster.num_trees():
        return cached[1], cached[2]
    trees, stumps = _parse(booster.model_to_string())
    _PARSED[booster] = (booster.num_trees(), trees, stumps)
    return trees, stumps


def _parse(text: str) -> tuple[list[TreeSplits], list[int]]:
    trees, stumps = [], []
    for block in text.split("\nTree=")[1:]:
        head, _, body = block.partition("\n")
        fields = dict(line.split("=", 1) for line in body.split("\n") if "=" in line)
        index = int(head.strip())
        if fields.get("is_linear", "0") != "0":
            raise ModelError("linear trees are not supported by TreeSHAP")
        if int(fields["num_leaves"]) <= 1:
            stumps.append(index)
            continue
        decision = _ints(fields["decision_type"])
        has_cat = int(fields.get("num_cat", "0")) > 0
        trees.append(
            TreeSplits(
                index=index,
                feature=_ints(fields["split_feature"]),
                threshold=np.array(fields["threshold"].split(), dtype=np.float64),
                is_categorical=(decision & 1) == 1,
                default_left=(decision & 2) == 2,
                missing_type=(decision >> 2) & 3,
                cat_boundaries=_ints(fields["cat_boundaries"])
                if has_cat
                else _ints(""),
                cat_threshold=_ints(fields["cat_threshold"], np.uint32)
                if has_cat
                else _ints("", np.uint32),
                left=_ints(fields["left_child"]),
                right=_ints(fields["right_child"]),
            )
        )
    return trees, stumps


def decisions(A: np.ndarray, tree: TreeSplits) -> np.ndarray:
    """``(n_rows, n_nodes)``: True where a row goes left at a node (LightGBM's
    ``NumericalDecision`` / ``CategoricalDecision``)."""
    out = np.empty((A.shape[0], tree.n_nodes), dtype=bool)
    for i in range(tree.n_nodes):
        x = A[:, tree.feature[i]]
        nan = np.isnan(x)
        if tree.is_categorical[i]:
            code = np.where(nan, -1, x).astype(np.int64)  # C++ truncation toward 0
            k = int(tree.threshold[i])
            bits = tree.cat_threshold[
                tree.cat_boundaries[k] : tree.cat_boundaries[k + 1]
            ]
            word = code // 32
            inside = (code >= 0) & (word < len(bits))
            w = (
                bits[np.clip(word, 0, max(len(bits) - 1, 0))]
                if len(bits)
                else np.zeros_like(code)
            )
            out[:, i] = inside & (((w >> (code % 32).astype(np.uint32)) & 1) == 1)
            continue
        kind = tree.missing_type[i]
        if kind != _MISSING_NAN and nan.any():
            x = np.where(nan, 0.0, x)
        left = x <= tree.threshold[i]
        if kind == _MISSING_ZERO:
            left = np.where(np.abs(x) <= ZERO_THRESHOLD, tree.default_left[i], left)
        elif kind == _MISSING_NAN:
            left = np.where(nan, tree.default_left[i], left)
        out[:, i] = left
    return out


def _codes(D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First row of each distinct decision pattern, and each row's pattern number."""
    packed = np.packbits(D, axis=1)
    width = packed.shape[1]
    if width <= 8:
        wide = np.zeros((len(D), 8), dtype=np.uint8)
        wide[:, :width] = packed
        keys: np.ndarray = wide.view(np.uint64).ravel()
    else:
        pad = -width % 8
        wide = np.ascontiguousarray(np.pad(packed, ((0, 0), (0, pad))))
        keys = wide.view(np.dtype((np.void, width + pad))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return first, inverse.ravel()


def lightgbm_inputs(X: pd.DataFrame, booster: lgb.Booster) -> np.ndarray:
    """The float matrix LightGBM predicts from: categoricals as codes of the
    categories the booster was trained with (unseen or missing -> NaN)."""
    trained = iter(booster.pandas_categorical or [])
    columns = []
    for name in X.columns:
        col = X[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            categories = next(trained, None)
            if categories is not None and list(col.cat.categories) != list(categories):
                col = col.cat.set_categories(categories)
            codes = col.cat.codes.to_numpy().astype(np.float64)
            codes[codes < 0] = np.nan
            columns.append(codes)
        else:
            columns.append(
                pd.to_numeric(col).to_numpy(dtype=np.float64, na_value=np.nan)
            )
    return np.column_stack(columns) if columns else np.zeros((len(X), 0))


def _tree_part(
    A: np.ndarray, tree: TreeSplits, booster: lgb.Booster
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    first, inverse = _codes(decisions(A, tree))
    values = np.asarray(
        booster.predict(
            A[first],
            start_iteration=tree.index,
            num_iteration=1,
            pred_contrib=True,
            num_threads=1,
        )
    )
    used = np.unique(tree.feature)
    return used, values[:, used], inverse, float(values[0, -1])


def _contrib(booster: lgb.Booster, A: np.ndarray, **kwargs: Any) -> np.ndarray:
    return np.asarray(booster.predict(A, pred_contrib=True, **kwargs))


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def fast_contributions(
    A: np.ndarray,
    *,
    booster: lgb.Booster,
    threads: int = 2,
    chunk_size: int = 200_000,
) -> tuple[np.ndarray, float]:
    """Exact TreeSHAP values ``(n_rows, n_features)`` and the base value.

    Parameters
    ----------
    A
        The model's inputs as floats (:func:`lightgbm_inputs`).
    booster
        A single-output LightGBM booster.
    threads
        Trees processed at once.
    chunk_size
        Rows per pass (bounds the decision matrices' memory).
    """
    n, p = A.shape
    values = np.zeros((n, p))
    if n == 0:  # the base value does not depend on the rows
        return values, float(_contrib(booster, np.zeros((1, p)))[0, -1])
    trees, stumps = parse_trees(booster)
    base = 0.0
    for t in stumps:
        base += float(
            _contrib(booster, A[:1], start_iteration=t, num_iteration=1)[0, -1]
        )
    tree_bases = np.zeros(len(trees))
    workers = max(1, threads)
    model = booster.model_to_string() if workers > 1 else ""
    local = threading.local()

    def own_booster() -> lgb.Booster:
        if workers == 1:
            return booster
        if not hasattr(local, "booster"):
            import lightgbm

            local.booster = lightgbm.Booster(model_str=model)
        return local.booster

    def part_of(tree: TreeSplits, part: np.ndarray) -> tuple:
        return _tree_part(part, tree, own_booster())

    with (
        ThreadPoolExecutor(max_workers=workers)
        if workers > 1
        else nullcontext() as pool
    ):
        run = pool.map if pool is not None else map
        for rows in _chunks(n, chunk_size):
            part = np.ascontiguousarray(A[rows])
            block = values[rows]
            # a few trees in flight at a time, so memory stays bounded
            for start in range(0, len(trees), 2 * workers):
                window = trees[start : start + 2 * workers]
                parts = run(part_of, window, [part] * len(window))
                for k, (used, vals, inverse, tree_base) in enumerate(
                    parts, start=start
                ):
                    block[:, used] += vals[inverse]
                    tree_bases[k] = tree_base
    return values, base + float(tree_bases.sum())
