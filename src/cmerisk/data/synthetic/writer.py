"""Write the synthetic LA's tables to a folder of Parquet files, atomically.

Everything is written into a fresh sibling folder (``.DIR.partial-*``) that
replaces ``DIR`` only once complete, so an interrupted run never leaves a
half-written LA behind and a re-run never mixes old and new attendance parts.
``DIR`` may be absent, empty, or an earlier synthetic LA (it has a
``manifest.json`` from this generator); anything else is refused.

Parquet settings are fixed (zstd, dictionary encoding, statistics, no
creation time in the metadata), so the same tables give the same bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cmerisk.atomic import write_text
from cmerisk.errors import DataError

MANIFEST = "manifest.json"
GENERATOR = "cmerisk.data.synthetic"
ATTENDANCE_DIR = "attendance"
ROW_GROUP_ROWS = 1_000_000


def write_table(table: pa.Table, path: Path, *, store_schema: bool = True) -> None:
    """Write one Parquet file atomically (temp file in the same folder, then rename)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(
            table,
            tmp,
            compression="zstd",
            use_dictionary=True,
            write_statistics=True,
            row_group_size=ROW_GROUP_ROWS,
            store_schema=store_schema,
        )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(data: dict[str, Any], path: Path) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def is_synthetic_output(path: Path) -> bool:
    manifest = path / MANIFEST
    if not manifest.is_file():
        return False
    try:
        return json.loads(manifest.read_text("utf-8")).get("generator") == GENERATOR
    except (OSError, ValueError):
        return False


@contextmanager
def staged_folder(out_dir: Path) -> Iterator[Path]:
    """A fresh folder to write into; it becomes ``out_dir`` when the block succeeds."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"--out {out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not is_synthetic_output(out_dir):
        raise DataError(
            f"--out {out_dir} is not empty and holds no synthetic LA (no {MANIFEST} "
            "from cmerisk synth): refusing to overwrite it; choose an empty folder"
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(
        tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent)
    )
    try:
        (stage / ATTENDANCE_DIR).mkdir()
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.replace(out_dir, old / "previous")
    os.replace(stage, out_dir)
    os.chmod(out_dir, 0o755)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class AttendanceParts:
    """Numbered Parquet parts of session marks (``attendance/part-00000.parquet`` ...).

    Each part is written on a background thread while the next chunk is being
    painted (pyarrow releases the GIL while it encodes and compresses); at most
    one part waits in memory, so memory stays bounded by about two chunks.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        self.rows = 0
        self._pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="parquet-part"
        )
        self._pending: Future[None] | None = None

    def write(self, table: pa.Table) -> None:
        # Dictionary-encoded strings are written as plain Parquet strings: without the
        # stored Arrow schema, readers see ``string`` columns (still dictionary pages).
        path = self.folder / f"part-{self.count:05d}.parquet"
        self.wait()
        self._pending = self._pool.submit(write_table, table, path, store_schema=False)
        self.count += 1
        self.rows += table.num_rows

    def wait(self) -> None:
        """Block until the part being written is on disk (re-raising its error)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)

    def __enter__(self) -> AttendanceParts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
