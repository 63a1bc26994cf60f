"""Write-then-rename: an output file is either the old one, the new one, or absent.

Every output of a scoring run is first written to a hidden temporary file in
the same folder, flushed to disk, then moved over the target with
:func:`os.replace` (atomic on one filesystem). A run killed half-way leaves at
worst a stray ``.*.tmp`` file, never a half-written list.

Examples
--------
>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> write_text(folder / "note.txt", "hello")
>>> (folder / "note.txt").read_text(), sorted(p.name for p in folder.iterdir())
('hello', ['note.txt'])
>>> with atomic_path(folder / "note.txt") as tmp:
...     _ = tmp.write_text("half")
...     raise RuntimeError("killed")
Traceback (most recent call last):
    ...
RuntimeError: killed
>>> (folder / "note.txt").read_text(), sorted(p.name for p in folder.iterdir())
('hello', ['note.txt'])
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _fsync(path: Path) -> None:
    """Flush a written file (or folder entry) to disk."""
    flags = (
        os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if path.is_dir() else os.O_RDONLY
    )
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def temp_sibling(target: Path, *, suffix: str = ".tmp") -> Path:
    """A fresh hidden path next to ``target`` (same folder, so rename is atomic)."""
    return target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}{suffix}")


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``target``.

    On any exception the temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    tmp = temp_sibling(target)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` atomically (UTF-8)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(target: Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``target`` atomically."""
    write_text(target, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def replace_folder(staged: Path, target: Path) -> None:
    """Swap a fully written folder ``staged`` in for ``target``.

    The old folder is first renamed aside and removed only after the new one is
    in place, so ``target`` is always either the old set or the new set.
    """
    old = None
    if target.exists():
        old = temp_sibling(target, suffix=".old")
        os.replace(target, old)
    os.replace(staged, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
