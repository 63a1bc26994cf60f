"""Write-then-rename: a failure mid-write leaves the old file, never half a file."""

from __future__ import annotations

import json

import pytest

from cmerisk.atomic import atomic_path, replace_folder, write_json, write_text


def test_failure_mid_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "risk_list.csv"
    write_text(target, "old,complete\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("new,half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old,complete\n"
    assert [p.name for p in tmp_path.iterdir()] == ["risk_list.csv"]


def test_failure_before_any_file_leaves_nothing(tmp_path):
    target = tmp_path / "summary.json"
    with pytest.raises(RuntimeError), atomic_path(target):
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_write_json_round_trips(tmp_path):
    write_json(tmp_path / "s.json", {"a": 1, "b": [1, 2]})
    assert json.loads((tmp_path / "s.json").read_text()) == {"a": 1, "b": [1, 2]}


def test_replace_folder_swaps_whole_sets(tmp_path):
    target = tmp_path / "pupils"
    target.mkdir()
    (target / "old.html").write_text("old")
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "new.html").write_text("new")
    replace_folder(staged, target)
    assert sorted(p.name for p in target.iterdir()) == ["new.html"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pupils"]
