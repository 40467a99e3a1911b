import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from core.lake import read_table, write_partition
from pipelines.lib.erasure import drop_erased, erase_users
from pipelines.lib.inbox import archive, read_manifest, scan_inbox


def test_erasure_removes_only_the_users_rows(tmp_path):
    write_partition(
        tmp_path,
        "watch_events",
        "a",
        pl.DataFrame({"event_id": ["1", "2"], "user_id": ["alice", "bob"], "title_id": ["m", "m"]}),
    )
    write_partition(
        tmp_path,
        "watch_events",
        "b",
        pl.DataFrame({"event_id": ["3"], "user_id": ["alice"], "title_id": ["n"]}),
    )
    erased = {"alice": datetime(2026, 12, 1, tzinfo=UTC)}
    assert erase_users(tmp_path, erased) == 2
    left = read_table(tmp_path, "watch_events")
    assert left["user_id"].to_list() == ["bob"]
    assert erase_users(tmp_path, erased) == 0  # idempotent


def test_erasure_is_time_bounded_for_feedback(tmp_path):
    """Feedback received after the erasure survives it; everything else of the user goes."""
    erased_at = datetime(2026, 12, 1, 12, tzinfo=UTC)
    before, after = erased_at - timedelta(seconds=1), erased_at + timedelta(seconds=1)
    rows = pl.DataFrame(
        {
            "event_id": ["old-import", "old-fb", "new-fb", "new-import", "other"],
            "user_id": ["alice", "alice", "alice", "alice", "bob"],
            "title_id": ["m"] * 5,
            "source": ["netflix", "feedback", "feedback", "netflix", "feedback"],
            "event_time": [before, before, after, after, before],
        }
    )
    write_partition(tmp_path, "watch_events", "a", rows)
    assert drop_erased(rows, {"alice": erased_at})["event_id"].to_list() == ["new-fb", "other"]
    assert erase_users(tmp_path, {"alice": erased_at}) == 3
    assert sorted(read_table(tmp_path, "watch_events")["event_id"]) == ["new-fb", "other"]


def test_inbox_scan_and_archive(tmp_path):
    inbox = tmp_path / "inbox"
    f = inbox / "netflix" / "carol" / "NetflixViewingHistory.csv"
    f.parent.mkdir(parents=True)
    f.write_text("Title,Date\n")
    items = scan_inbox(inbox)
    assert [(i.format, i.user, i.path.name) for i in items] == [
        ("netflix", "carol", "NetflixViewingHistory.csv")
    ]
    moved = archive(items[0], inbox, "2026-11-29")
    assert moved.exists() and not f.exists()
    assert scan_inbox(inbox) == []


def test_inbox_rejects_unknown_format_folder(tmp_path):
    (tmp_path / "myspace" / "u").mkdir(parents=True)
    with pytest.raises(ValueError, match="unknown export format"):
        scan_inbox(tmp_path)


def test_manifest_paths_are_relative_and_validated(tmp_path):
    m = tmp_path / "manifest.json"
    m.write_text(json.dumps([{"format": "imdb", "user": "u", "path": "u/ratings.csv"}]))
    assert read_manifest(m) == [("imdb", "u", (tmp_path / "u" / "ratings.csv").resolve())]
    m.write_text(json.dumps([{"format": "vhs", "user": "u", "path": "x"}]))
    with pytest.raises(ValueError, match="unknown format"):
        read_manifest(m)


def test_inbox_item_that_cannot_be_imported_is_rejected_with_its_reason(tmp_path):
    from pipelines.lib.inbox import import_item

    inbox, lake = tmp_path / "inbox", tmp_path / "lake"
    titles = pl.DataFrame({"title_id": ["movie:949"], "type": ["movie"], "title": ["Heat"]})
    user_dir = inbox / "letterboxd" / "mallory"
    user_dir.mkdir(parents=True)
    bomb = user_dir / "letterboxd.zip"
    import zipfile

    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("diary.csv", b"\n" * (8 * 1024 * 1024))
    (user_dir / "link.zip").symlink_to(bomb)
    good_dir = inbox / "netflix" / "carol"
    good_dir.mkdir(parents=True)
    (good_dir / "NetflixViewingHistory.csv").write_text('Title,Date\n"Heat","1/4/20"\n')
    (inbox / "imdb").symlink_to(tmp_path)  # a linked format folder is not followed

    results = [import_item(i, inbox, lake, titles, "2026-12-02") for i in scan_inbox(inbox)]
    by_name = {r.item.path.name: r for r in results}
    assert set(by_name) == {"letterboxd.zip", "link.zip", "NetflixViewingHistory.csv"}
    assert "zip bomb" in by_name["letterboxd.zip"].reason
    assert "symbolic link" in by_name["link.zip"].reason
    rejected = by_name["letterboxd.zip"].moved_to
    assert rejected.parent == inbox / ".rejected" / "2026-12-02" / "letterboxd" / "mallory"
    assert "zip bomb" in rejected.with_name("letterboxd.zip.reason.txt").read_text()
    assert by_name["NetflixViewingHistory.csv"].summary.resolved == 1
    assert read_table(lake, "watch_events")["user_id"].to_list() == ["carol"]
    assert scan_inbox(inbox) == []
