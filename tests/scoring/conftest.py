"""A tiny LA with dirty records and a model trained on it, made once a session."""

from __future__ import annotations

from pathlib import Path

import pytest
from scoring_la import add_dirt, make_tables, train_bundle, write_tables


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle trained on a clean 300-pupil LA (capacity 20, watch 30)."""
    root = tmp_path_factory.mktemp("tiny-model")
    clean = write_tables(make_tables(300), root / "la")
    return train_bundle(clean, root / "model")


@pytest.fixture(scope="session")
def dirty_la(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict[str, list[str]]]:
    """The same LA plus leavers and rejectable records (see ``add_dirt``)."""
    tables = make_tables(300)
    who = add_dirt(tables)
    return write_tables(tables, tmp_path_factory.mktemp("dirty") / "la"), who
