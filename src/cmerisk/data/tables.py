"""The raw tables of one LA, held together.

Small tables live in memory as pandas DataFrames. Session-level attendance can
run to billions of rows, so it may instead stay on disk as Parquet (or CSV)
files that DuckDB streams; :meth:`RawTables.attendance_relation` gives a DuckDB
relation either way, so feature code never needs to know which.

Examples
--------
>>> import pandas as pd
>>> t = RawTables({"pupils": pd.DataFrame({"pupil_id": ["a"]})})
>>> t.has("pupils"), t.has("attendance"), t.names
(True, False, ['pupils'])
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import pandas as pd

from cmerisk.data.contract import TABLES


class MissingTableError(KeyError):
    """A table the caller needs is not among the LA's tables."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain text
        return str(self.args[0])


@dataclass(frozen=True)
class RawTables(Mapping[str, pd.DataFrame]):
    """An LA's raw tables, keyed by the names in :data:`cmerisk.data.contract.TABLES`.

    Parameters
    ----------
    frames
        In-memory tables (``attendance`` may be one of them when it is small).
    attendance_files
        Parquet or CSV files holding session marks, read lazily with DuckDB.
        Used only when ``frames`` has no ``attendance``.
    source
        Where the tables came from (a folder), for messages.
    """

    frames: Mapping[str, pd.DataFrame]
    attendance_files: Sequence[Path] = field(default_factory=tuple)
    source: str = "<memory>"

    def __post_init__(self) -> None:
        unknown = set(self.frames) - set(TABLES)
        if unknown:
            raise ValueError(
                f"unknown table(s) {sorted(unknown)}; expected names from {sorted(TABLES)}"
            )

    # Mapping interface over the in-memory frames.
    def __getitem__(self, name: str) -> pd.DataFrame:
        try:
            return self.frames[name]
        except KeyError:
            if name == "attendance" and self.attendance_files:
                raise MissingTableError(
                    "attendance is on disk (too large to load): use attendance_relation()"
                ) from None
            raise MissingTableError(
                f"table {name!r} is not among this LA's tables ({', '.join(self.names)})"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.frames)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def names(self) -> list[str]:
        """Names of the tables present, in contract order."""
        return [n for n in TABLES if self.has(n)]

    def has(self, name: str) -> bool:
        """Whether table ``name`` is present (in memory or on disk)."""
        if name == "attendance" and self.attendance_files:
            return True
        return name in self.frames

    def get_frame(self, name: str) -> pd.DataFrame | None:
        """The in-memory table ``name``, or ``None`` when absent."""
        return self.frames.get(name)

    def attendance_relation(
        self, con: duckdb.DuckDBPyConnection
    ) -> duckdb.DuckDBPyRelation:
        """Session marks as a DuckDB relation on ``con`` (from memory or files)."""
        if "attendance" in self.frames:
            return con.from_df(self.frames["attendance"])
        if not self.attendance_files:
            raise MissingTableError("this LA has no session-level attendance table")
        files = [str(p) for p in self.attendance_files]
        if all(f.endswith(".parquet") for f in files):
            return con.read_parquet(files)
        return con.read_csv(files, header=True)

    def with_frames(self, **frames: pd.DataFrame) -> RawTables:
        """A copy with some in-memory tables added or replaced."""
        return replace(self, frames={**self.frames, **frames})

    def without(self, *names: str) -> RawTables:
        """A copy without the named tables."""
        files = () if "attendance" in names else self.attendance_files
        kept = {k: v for k, v in self.frames.items() if k not in names}
        return replace(self, frames=kept, attendance_files=files)
