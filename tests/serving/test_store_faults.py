"""The user-state store under storage faults: a full disk and a read-only folder give a clear 503
(through the API) or :class:`StoreUnavailableError`, and nothing unacknowledged is claimed durable."""

from __future__ import annotations

import multiprocessing
import resource
import sqlite3
from pathlib import Path

from starlette.testclient import TestClient

from core.feedback import (
    STORE_FILE,
    FeedbackRecord,
    StoreUnavailableError,
    append_feedback,
    read_feedback,
)
from tests.serving.conftest import start_client


def _fill_disk(folder: str, limit_bytes: int, out: multiprocessing.Queue) -> None:
    """Append until the file-size limit (a full disk for this process) stops the store."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, resource.RLIM_INFINITY))
    acknowledged: list[str] = []
    error = ""
    for i in range(100_000):
        try:
            acknowledged.append(
                append_feedback(
                    Path(folder),
                    FeedbackRecord(user_id="u", title_id=f"t:{i}", rating=4, context={"i": i}),
                )
            )
        except StoreUnavailableError as exc:
            error = str(exc)
            break
    out.put((acknowledged, error))


def test_full_disk_stops_acknowledging_and_loses_nothing(tmp_path: Path) -> None:
    append_feedback(tmp_path, FeedbackRecord(user_id="seed", title_id="t:0", watched=True))
    used = sum(p.stat().st_size for p in tmp_path.iterdir())
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_fill_disk, args=(str(tmp_path), used + 256 * 1024, queue))
    proc.start()
    acknowledged, error = queue.get(timeout=120)
    proc.join(timeout=60)
    assert error and str(tmp_path / STORE_FILE) in error, error
    assert len(acknowledged) >= 5
    stored = set(read_feedback(tmp_path)["event_id"])
    assert set(acknowledged) <= stored  # every acknowledged event is there
    assert len(stored) == len(acknowledged) + 1  # and nothing unacknowledged
    with sqlite3.connect(tmp_path / STORE_FILE) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_read_only_folder_answers_503(
    asgi_app, fresh_world, service_env, bearer, feedback_dir, read_only_dir
) -> None:
    read_only_dir(feedback_dir)
    overlay = fresh_world.overlay("ro", anonymous_per_minute=1000, authenticated_per_minute=1000)
    client: TestClient
    for client in start_client(asgi_app, overlay, service_env):
        h = bearer("alice")
        r = client.post(
            "/feedback", json={"user": "alice", "content_id": "movie:603", "rating": 4}, headers=h
        )
        assert r.status_code == 503, r.text
        assert "nothing was saved" in r.json()["error"] and r.headers["retry-after"]
        r = client.put("/users/alice/preferences", json={"country": "GB"}, headers=h)
        assert r.status_code == 503
        assert client.delete("/users/alice", headers=h).status_code == 503
        # reading still works: recommendations are served from the lake history
        assert client.post("/recommend", json={"user": "alice"}, headers=h).status_code == 200
