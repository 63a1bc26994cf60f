"""Reasons for the pupils on the list, and reviewer pages for the flagged ones.

After ranking, only the pupils asked for are explained (``listed``: flagged and
watch, a few hundred; ``all``: everyone, chunk by chunk), from the feature rows
the run kept on disk. Reasons come from :func:`cmerisk.explain.explain_bundle`
(exact TreeSHAP, grouped, plain English); each chunk's reasons are written to
a spill file that the risk list joins. The flagged pupils get a reviewer card
each and an index page (:func:`cmerisk.reports.pupil_cards.write_pupil_pages`),
written to a fresh folder that the run then puts in place of ``out_dir/pupils``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb
import numpy as np
import pandas as pd

from cmerisk.scoring.outputs import REASONS

if TYPE_CHECKING:
    from cmerisk.model.bundle import ModelBundle

Explain = Literal["listed", "all", "none"]


def reason_columns(explanations: Any) -> pd.DataFrame:
    """An explanation's top reasons in the risk list's columns.

    ``pupil_id``, then ``reason_k``, ``reason_k_group`` and
    ``reason_k_actionable`` for k = 1..3 (missing when a pupil has fewer
    risk-raising reasons).
    """
    frame = explanations.summary_frame()
    out = pd.DataFrame({"pupil_id": frame["id"].astype("string")})
    for k in range(1, REASONS + 1):
        for src, dst, dtype in (
            ("text", f"reason_{k}", "string"),
            ("group", f"reason_{k}_group", "string"),
            ("actionable", f"reason_{k}_actionable", "boolean"),
        ):
            col = f"reason_{k}_{src}"
            if col in frame.columns:
                values = frame[col].astype(object)
                values = values.where(values.notna(), None)
            else:
                values = pd.Series([None] * len(frame), dtype=object)
            out[dst] = pd.array(values.tolist(), dtype=dtype)
    return out


def explain_listed(
    con: duckdb.DuckDBPyConnection,
    bundle: ModelBundle,
    *,
    features_dir: Path,
    reasons_dir: Path,
    pages_dir: Path,
    explain: Explain,
    n_chunks: int,
    note: Callable[[str, int, int], None],
    pages: dict[str, Any] | None = None,
) -> str | None:
    """Explain the pupils asked for; write reviewer pages for the flagged.

    ``con`` must hold the ``ranked`` table (pupil_id, rank, band, chunk).
    Reasons go to ``reasons_dir`` (one Parquet file per chunk), the flagged
    pupils' pages to ``pages_dir`` (created; ``pages`` are passed on to
    :func:`~cmerisk.reports.pupil_cards.write_pupil_pages`: model, as_of,
    valid_until, horizon). Returns the name of a DuckDB view of the reasons, or
    ``None`` when no pupil was explained.
    """
    if explain == "none":
        return None
    from cmerisk.explain import explain_bundle
    from cmerisk.reports.pupil_cards import write_pupil_pages

    id_col = bundle.spec.id
    bands = ("flagged", "watch") if explain == "listed" else ("flagged", "watch", "low")
    in_bands = ", ".join(repr(b) for b in bands)
    flagged_rows = []
    for k in range(n_chunks):
        note("explain", k, n_chunks)
        path = features_dir / f"chunk-{k:05d}.parquet"
        part = con.execute(
            f"SELECT pupil_id, rank, band FROM ranked WHERE chunk = {k} "
            f"AND band IN ({in_bands})"
        ).df()
        if part.empty or not path.exists():
            continue
        if explain == "listed":  # read only the rows of the pupils on the list
            ids = part["pupil_id"].astype(str).tolist()
            features = pd.read_parquet(path, filters=[(id_col, "in", ids)])
        else:
            features = pd.read_parquet(path)
        features = features.reset_index(drop=True)
        info = part.set_index("pupil_id").loc[features[id_col].astype(str)]
        band = info["band"].to_numpy(dtype=object)
        ex = explain_bundle(features, bundle, top=REASONS, band=band)
        reason_columns(ex).to_parquet(reasons_dir / f"chunk-{k:05d}.parquet")
        is_flagged = band == "flagged"
        if is_flagged.any():
            rank = info["rank"].to_numpy()[is_flagged]
            flagged_rows.append(features[is_flagged].assign(__rank=rank))
    note("explain", n_chunks, n_chunks)

    pages_dir.mkdir(parents=True, exist_ok=True)
    if flagged_rows:
        flagged = pd.concat(flagged_rows, ignore_index=True).sort_values("__rank")
        ranks = flagged.pop("__rank").astype(int).tolist()
        flagged = flagged.reset_index(drop=True)
        band = np.full(len(flagged), "flagged", dtype=object)
        ex = explain_bundle(flagged, bundle, top=REASONS, band=band)
        write_pupil_pages(ex, out_dir=pages_dir, ranks=ranks, **(pages or {}))
    if not any(reasons_dir.iterdir()):
        return None
    con.execute(
        "CREATE VIEW reasons AS SELECT * FROM read_parquet("
        f"'{(reasons_dir / '*.parquet').as_posix()}')"
    )
    return "reasons"
