"""core.atomic: a failed write leaves the old file or folder untouched and no temporary behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.atomic import atomic_path, atomic_write_text, staged_dir
from core.lake import recover_lake


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.json"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]


def test_a_failing_writer_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "m.npz"
    np.savez(target, x=np.arange(3))
    with pytest.raises(RuntimeError), atomic_path(target, suffix=".tmp.npz") as tmp:
        np.savez(tmp, x=np.arange(5))
        raise RuntimeError("killed half-way")
    assert np.load(target)["x"].tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_staged_dir_swaps_a_whole_folder_or_nothing(tmp_path: Path) -> None:
    target = tmp_path / "model"
    with staged_dir(target) as staging:
        (staging / "weights").write_text("v1")
    with pytest.raises(ValueError), staged_dir(target) as staging:
        (staging / "weights").write_text("v2-partial")
        raise ValueError("bad model")
    assert (target / "weights").read_text() == "v1"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    with staged_dir(target) as staging:
        (staging / "weights").write_text("v2")
    assert (target / "weights").read_text() == "v2"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_kill_between_the_two_renames_is_recovered(tmp_path: Path) -> None:
    """The state after ``target -> .old`` and before ``staging -> target``: recovery restores it."""
    (tmp_path / ".titles.0123.old").mkdir()
    (tmp_path / ".titles.0123.old" / "part-0.parquet").write_text("complete")
    assert recover_lake(tmp_path) == ["titles restored"]
    assert (tmp_path / "titles" / "part-0.parquet").read_text() == "complete"
