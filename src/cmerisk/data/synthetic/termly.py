"""Termly attendance totals, derived from session marks.

An LA without session marks holds only these: per pupil, school and term, the
possible sessions and the authorised and unauthorised absences. The
synthetic LA derives them from its own marks, so the two tables always agree.

Examples
--------
>>> import pyarrow as pa
>>> vocab = ("/", "I", "O", "\\\\", "D")
>>> flat = np.array([0, 3, 1, 1, 2, 4], dtype=np.uint8)  # 3 days x AM/PM
>>> zeros = np.array([0, 0, 0])
>>> start = np.array(["2024-09-04"] * 3, dtype="datetime64[D]")
>>> ids = np.array(["p"], dtype=object)
>>> t = termly_totals(flat, zeros, zeros, zeros, start, ids=ids,
...                   urns=pa.array(["100001"]), vocab=vocab)
>>> t.to_pylist()[0]["sessions_possible"], t.to_pylist()[0]["sessions_authorised"]
(5, 2)
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from cmerisk.data import codes


def _lookup(vocab: tuple[str, ...]) -> np.ndarray:
    """(code -> possible, authorised, unauthorised) as a (len(vocab), 3) table."""
    category = [
        codes.ATTENDANCE_CATEGORY.get(codes.normalise_attendance_code(c)) for c in vocab
    ]
    return np.array(
        [
            [cat != "not_counted", cat == "authorised", cat == "unauthorised"]
            for cat in category
        ],
        dtype=np.int32,
    )


def termly_totals(
    flat_codes: np.ndarray,
    rows: np.ndarray,
    school: np.ndarray,
    term: np.ndarray,
    term_start: np.ndarray,
    *,
    ids: np.ndarray,
    urns: pa.Array,
    vocab: tuple[str, ...],
) -> pa.Table:
    """Sum marks to ``attendance_termly`` rows.

    ``flat_codes`` holds AM, PM codes (indices into ``vocab``) for each on-roll
    day, ordered by pupil then date; ``rows``, ``school``, ``term`` and
    ``term_start`` describe those days. Rows come out ordered by pupil, term,
    school.
    """
    table = _lookup(vocab)
    values = table[flat_codes[0::2]] + table[flat_codes[1::2]]  # AM + PM of each day
    n_school = len(urns)
    key = (rows.astype(np.int64) * 3 + term) * n_school + school
    # Days of one pupil-term-school mostly sit together: sum runs, then merge repeats.
    starts = (
        np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        if len(key)
        else np.zeros(0, np.int64)
    )
    run_sums = (
        np.add.reduceat(values, starts, axis=0)
        if len(key)
        else np.zeros((0, 3), np.int64)
    )
    uniq, first, inv = np.unique(key[starts], return_index=True, return_inverse=True)
    sums = np.stack(
        [
            np.bincount(inv, weights=run_sums[:, j], minlength=len(uniq))
            for j in range(3)
        ],
        axis=1,
    )
    sums = sums.astype(np.int32)
    row = uniq // n_school // 3
    return pa.table(
        {
            "pupil_id": pa.array(list(ids[row]), type=pa.string()),
            "school_urn": urns.take(pa.array(uniq % n_school)),
            "term_start": pa.array(
                term_start[starts][first].astype("int64").astype(np.int32)
            ).view(pa.date32()),
            "sessions_possible": pa.array(sums[:, 0]),
            "sessions_authorised": pa.array(sums[:, 1]),
            "sessions_unauthorised": pa.array(sums[:, 2]),
        }
    )
