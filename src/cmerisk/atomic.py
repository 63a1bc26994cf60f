"""Write-then-rename: an output file is either the old one, the new one, or absent.

Every output (risk lists, reports, plots, models) is first written to a hidden temporary file in
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


class Staging:
    """Outputs written to temporary paths first and moved into place together.

    A run stages every file (and folder) it produces; only when all are
    written does :meth:`commit` move them over their targets, one rename each,
    the summary last. If anything fails before that, :meth:`discard` removes
    the temporary files and every target keeps the previous run's contents:
    the set of outputs is never a mix of a finished and an unfinished run.

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> with Staging() as staged:
    ...     _ = staged.path(out / "a.csv").write_text("x\\n")
    ...     _ = staged.path(out / "b.json").write_text("{}")
    ...     staged.commit()
    >>> sorted(p.name for p in out.iterdir())
    ['a.csv', 'b.json']
    """

    def __init__(self) -> None:
        self.files: dict[Path, Path] = {}
        self.folders: dict[Path, Path | None] = {}

    def path(self, target: Path) -> Path:
        """A temporary path to write ``target``'s new contents to."""
        tmp = temp_sibling(Path(target))
        self.files[Path(target)] = tmp
        return tmp

    def folder(self, target: Path, staged: Path | None) -> None:
        """Replace folder ``target`` by ``staged`` on commit (remove it if ``None``)."""
        self.folders[Path(target)] = staged

    def commit(self) -> None:
        """Move every staged output into place."""
        for tmp in self.files.values():
            _fsync(tmp)
        for target, staged in self.folders.items():
            if staged is not None:
                replace_folder(staged, target)
            elif target.exists():
                shutil.rmtree(target)
        for target, tmp in self.files.items():
            os.replace(tmp, target)
        self.files.clear()
        self.folders.clear()

    def discard(self) -> None:
        """Remove whatever was staged and not committed."""
        for tmp in self.files.values():
            if tmp.exists():
                tmp.unlink()
        self.files.clear()
        self.folders.clear()

    @staticmethod
    def clean_leftovers(out_dir: Path) -> list[Path]:
        """Remove what a killed run left in ``out_dir``; return what was removed.

        A run killed while moving its outputs into place can leave hidden
        temporary files (``.<name>.<id>.tmp``) and a previous folder set aside
        (``.<name>.<id>.old``). When the folder itself is missing, the set-aside
        one is put back first.
        """
        removed: list[Path] = []
        if not Path(out_dir).is_dir():
            return removed
        for p in sorted(Path(out_dir).iterdir()):
            parts = p.name.split(".")
            if (
                not p.name.startswith(".")
                or len(parts) < 4
                or parts[-1] not in ("tmp", "old")
            ):
                continue
            original = p.with_name(".".join(parts[1:-2]))
            if parts[-1] == "old" and p.is_dir() and not original.exists():
                os.replace(p, original)
                continue
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
        return removed

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()
