"""Start-up, readiness and champion hot-swap; serving without a champion; history merging."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from starlette.testclient import TestClient

from serving.state import UserHistories, load_state
from tests.serving.conftest import World, start_client


def test_hot_swap_to_new_champion_without_dropping_requests(
    fast_poll_client: TestClient, promote, bearer
) -> None:
    client = fast_poll_client
    assert client.get("/status").json()["champion_version"] == "1"
    h = bearer("alice")
    client.post(
        "/feedback", json={"user": "alice", "content_id": "movie:78", "rating": 5}, headers=h
    )
    codes: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            codes.append(client.post("/recommend", json={"user": "alice"}, headers=h).status_code)

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        version = promote()
        deadline = time.monotonic() + 60
        while client.get("/status").json()["champion_version"] != version:
            assert time.monotonic() < deadline, "champion was not swapped in"
            time.sleep(0.1)
        time.sleep(0.3)
    finally:
        stop.set()
        worker.join()
    assert version == "2"
    assert codes and set(codes) == {200}
    status = client.get("/status").json()
    assert status["swaps"] == 1 and status["last_error"] is None
    body = client.post("/recommend", json={"user": "alice"}, headers=h).json()
    assert body["model_version"] == "2"
    # feedback given before the swap survives it
    ids = [x["content_id"] for x in body["results"]]
    assert "movie:78" not in ids


def test_without_champion_serves_content_and_popularity(bare_client: TestClient, bearer) -> None:
    status = bare_client.get("/status").json()
    assert status["ready"] is True
    assert status["mode"] == "content+popularity"
    assert status["champion_version"] is None
    r = bare_client.post("/recommend", json={"user": "alice", "limit": 3}, headers=bearer("alice"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] is None
    for item in body["results"]:
        assert "collaborative" not in item["components"]


def test_user_histories_dedupe_by_event_id_and_erase_time_bounded() -> None:
    base = UserHistories.from_frame(
        pl.DataFrame(
            {
                "event_id": ["e1", "e2", "e3"],
                "user_id": ["a", "a", "b"],
                "title_id": ["t1", "t2", "t1"],
                "weight": [1.0, None, 2.0],
                "event_time": pl.Series(
                    ["2026-01-01T00:00:00", "2026-01-02T00:00:00", "2026-01-01T00:00:00"]
                ).str.to_datetime(time_zone="UTC"),
            }
        )
    )
    assert base.history("a") == (["t1", "t2"], [1.0, 1.0])
    base.add("a", "e1", "t1", 1.0, 1.0, feedback=False)  # same event id: replaced, not added
    base.add("a", "e4", "t1", 0.5, 2e9)
    assert base.history("a") == (["t2", "t1"], [1.0, 1.5])
    # an erasure at t=1.9e9 removes the lake events, keeps the feedback received after it
    assert base.erase("a", 1.9e9) == 2
    assert base.history("a") == (["t1"], [0.5])
    assert base.erase("b") == 1 and base.users() == 1


@pytest.fixture
def freezing_client(
    asgi_app: Any, fresh_world: World, service_env: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """A service with ``serving.freeze_heap`` on (off elsewhere in the suite), polling fast."""
    service_env.setenv("MEDIA_GATEWAY_POLL_S", "0.3")
    gc.unfreeze()
    overlay = fresh_world.overlay("freeze", freeze_heap=True)
    try:
        yield from start_client(asgi_app, overlay, service_env)
    finally:
        gc.unfreeze()


def _frozen_after(deadline_s: float) -> int:
    deadline = time.monotonic() + deadline_s
    while gc.get_freeze_count() == 0:
        assert time.monotonic() < deadline, "the loaded state was not frozen"
        time.sleep(0.05)
    return gc.get_freeze_count()


def test_loaded_state_is_frozen_out_of_the_collector_and_again_after_a_swap(
    freezing_client: TestClient, promote, bearer
) -> None:
    client = freezing_client
    assert client.get("/status").json()["champion_version"] == "1"
    assert _frozen_after(30) > 100_000  # imports, catalogue and model: the long-lived heap
    gc.unfreeze()  # what a swap must redo
    version = promote()
    deadline = time.monotonic() + 60
    while client.get("/status").json()["champion_version"] != version:
        assert time.monotonic() < deadline, "champion was not swapped in"
        time.sleep(0.1)
    assert _frozen_after(30) > 100_000
    body = client.post("/recommend", json={"user": "alice"}, headers=bearer("alice")).json()
    assert body["model_version"] == version and body["results"]


def test_the_similarity_table_setting_bounds_the_workers_cosine_table(world: World) -> None:
    settings = world.settings()
    with_table = load_state(settings)
    n = len(with_table.catalog)
    assert with_table.ranker.similarity_table.shape == (n, n)
    off = settings.model_copy(
        update={"serving": settings.serving.model_copy(update={"similarity_table_mib": 0})}
    )
    without = load_state(off)
    assert without.ranker.similarity_table is None
    history = with_table.catalog.id_list[:3]
    a = with_table.ranker.recommend(history, k=5)
    b = without.ranker.recommend(history, k=5)
    assert [r.title_id for r in a] == [r.title_id for r in b]
    assert [r.score for r in a] == pytest.approx([r.score for r in b], abs=2e-6)
