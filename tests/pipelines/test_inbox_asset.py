"""The watch_events asset in a real Dagster run: bad inbox items are rejected, the run goes on."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from core.lake import read_table, write_table
from core.settings import load_settings
from pipelines.defs.events.assets import watch_events
from pipelines.defs.resources import MediaGatewayConfig
from pipelines.lib.inbox import scan_inbox
from tests.conftest import write_tmp_overlay

DAY = "2026-12-02"


def _drop(inbox: Path, fmt: str, user: str, name: str, content: bytes | str) -> Path:
    path = inbox / fmt / user / name
    path.parent.mkdir(parents=True)
    if isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content)
    return path


def test_bad_inbox_items_are_rejected_and_the_good_one_imports(tmp_path: Path) -> None:
    overlay = write_tmp_overlay(tmp_path)
    settings = load_settings(str(overlay))
    assert settings.sources.history_manifest is None and not settings.sources.history_imports
    lake, inbox = settings.paths.lake, settings.paths.inbox
    write_table(
        lake,
        "titles",
        pl.DataFrame({"title_id": ["movie:949"], "type": ["movie"], "title": ["Heat"]}),
    )
    # good: one resolved, one unresolved, one malformed row (a miss for the resolution rate)
    _drop(
        inbox,
        "netflix",
        "carol",
        "NetflixViewingHistory.csv",
        'Title,Date\n"Heat","1/4/20"\n"Some Unknown Film","1/5/20"\n"Broken","99/99/99"\n',
    )
    # hostile: a zip bomb, a header-only file, a file whose every row is malformed
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("diary.csv", b"\n" * (8 * 1024 * 1024))
    _drop(inbox, "letterboxd", "mallory", "letterboxd.zip", bomb.read_bytes())
    _drop(inbox, "netflix", "dave", "NetflixViewingHistory.csv", "Title,Date\n")
    _drop(
        inbox, "netflix", "erin", "NetflixViewingHistory.csv", 'Title,Date\n"Secret","77/77/77"\n'
    )

    result = dg.materialize(
        [watch_events],
        partition_key=DAY,
        resources={"app": MediaGatewayConfig(overlays=str(overlay))},
    )
    assert result.success
    meta = result.asset_materializations_for_node("watch_events")[0].metadata

    events = read_table(lake, "watch_events")
    assert events.select("user_id", "title_id").rows() == [("carol", "movie:949")]
    assert read_table(lake, "unresolved_events")["user_id"].to_list() == ["carol"]
    assert read_table(lake, "quarantine")["user_id"].to_list() == ["carol"]
    assert scan_inbox(inbox) == []
    processed = inbox / ".processed" / DAY / "netflix" / "carol" / "NetflixViewingHistory.csv"
    assert processed.is_file()

    assert meta["inbox_rejected"].value == 3
    rejections = {r["user"]: r for r in meta["inbox_rejections"].value}
    assert set(rejections) == {"mallory", "dave", "erin"}
    assert "zip bomb" in rejections["mallory"]["reason"]
    assert "no data rows" in rejections["dave"]["reason"]
    assert "none of the 1 data rows is usable" in rejections["erin"]["reason"]
    for user, rejection in rejections.items():
        moved = inbox / rejection["item"]
        assert moved.parent == inbox / ".rejected" / DAY / rejection["format"] / user
        assert moved.is_file()
        reason_file = moved.with_name(moved.name + ".reason.txt")
        assert reason_file.read_text().strip() == rejection["reason"]
    # reasons name files, lines and what is wrong, never a history's content
    assert "Secret" not in json.dumps(meta["inbox_rejections"].value)

    # rejected items wrote nothing; the quarantined row of the good file is a miss
    assert (meta["batch_resolved"].value, meta["batch_unresolved"].value) == (1, 1)
    assert meta["batch_quarantined"].value == 1
    assert meta["batch_resolution_rate"].value == pytest.approx(1 / 3)
