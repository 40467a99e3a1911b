"""pipelines.lib.feedback: durable appends, WATCH_EVENTS view, erasures, concurrency, bad lines."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from pydantic import ValidationError

from pipelines.lib.feedback import (
    FeedbackLogError,
    FeedbackRecord,
    append_erasure,
    append_feedback,
    erase_feedback,
    read_erasures,
    read_feedback,
)
from pipelines.lib.schemas import WATCH_EVENTS


def test_append_then_read_as_watch_events(tmp_path: Path) -> None:
    eid = append_feedback(tmp_path, FeedbackRecord(user_id="u1", title_id="movie:1", rating=4.0))
    line = json.loads((tmp_path / "feedback.jsonl").read_text().splitlines()[0])
    assert line["event_id"] == eid and line["user_id"] == "u1" and line["rating"] == 4.0
    df = read_feedback(tmp_path)
    assert dict(df.schema) == WATCH_EVENTS
    row = df.row(0, named=True)
    assert row["source"] == "feedback"
    assert row["weight"] == pytest.approx(0.8)
    assert row["rating_scale"] == 5.0


@pytest.mark.parametrize(
    ("fields", "weight"),
    [
        ({"rating": 0.5}, 0.1),
        ({"watched": True}, 1.0),
        ({"completion": 0.5, "watched": True}, 0.75),
        ({"completion": 0.0}, 0.05),
    ],
)
def test_weights(fields: dict, weight: float) -> None:
    assert FeedbackRecord(user_id="u", title_id="t:1", **fields).weight() == pytest.approx(weight)


def test_record_without_signal_is_invalid() -> None:
    with pytest.raises(ValidationError, match="needs a rating"):
        FeedbackRecord(user_id="u", title_id="t:1")


def test_concurrent_appends_lose_nothing(tmp_path: Path) -> None:
    def worker(n: int) -> None:
        for i in range(25):
            append_feedback(tmp_path, FeedbackRecord(user_id=f"u{n}", title_id=f"t:{i}", rating=3))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    df = read_feedback(tmp_path)
    assert df.height == 100
    assert df["event_id"].n_unique() == 100


def test_erasure_removes_lines_and_is_recorded(tmp_path: Path) -> None:
    append_feedback(tmp_path, FeedbackRecord(user_id="gone", title_id="t:1", watched=True))
    append_feedback(tmp_path, FeedbackRecord(user_id="kept", title_id="t:2", watched=True))
    append_erasure(tmp_path, "gone")
    assert erase_feedback(tmp_path, "gone") == 1
    assert erase_feedback(tmp_path, "gone") == 0
    assert read_erasures(tmp_path) == {"gone"}
    assert read_feedback(tmp_path)["user_id"].to_list() == ["kept"]
    assert "gone" not in (tmp_path / "feedback.jsonl").read_text()


def test_bad_line_names_file_and_line(tmp_path: Path) -> None:
    append_feedback(tmp_path, FeedbackRecord(user_id="u", title_id="t:1", watched=True))
    with (tmp_path / "feedback.jsonl").open("a") as fh:
        fh.write("{not json\n")
    with pytest.raises(FeedbackLogError, match=r"feedback.jsonl:2: invalid JSON"):
        read_feedback(tmp_path)
    (tmp_path / "erasures.jsonl").write_text('{"requested_at": "x"}\n')
    with pytest.raises(FeedbackLogError, match=r"erasures.jsonl:1: erasure record lacks"):
        read_erasures(tmp_path)


def test_empty_folder_reads_empty(tmp_path: Path) -> None:
    assert read_feedback(tmp_path / "none").height == 0
    assert read_erasures(tmp_path / "none") == set()
