"""Watchlists, availability alerts and continue-watching through the running service."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from starlette.testclient import TestClient

from core.lake import write_partition, write_table
from serving.watchlist.store import DB_NAME
from tests.serving.conftest import ALL_SCOPES, World, availability_frame

WL = ALL_SCOPES
NOT_WL = [s for s in ALL_SCOPES if not s.endswith(":watchlist")]


def test_watchlist_add_list_remove(client: TestClient, bearer) -> None:
    h = bearer("alice", WL)
    r = client.put("/users/alice/watchlist/movie:329865", headers=h)
    assert r.status_code == 200 and r.json()["added"] is True
    assert client.put("/users/alice/watchlist/movie-329865", headers=h).json()["added"] is False
    client.put("/users/alice/watchlist/movie:78", headers=h)
    body = client.get("/users/alice/watchlist", headers=h).json()
    assert [i["content_id"] for i in body["items"]] == ["movie:78", "movie:329865"]
    arrival = body["items"][1]
    assert arrival["title"] == "Arrival" and arrival["available"] is True
    assert {o["provider_id"] for o in arrival["offers"]} == {"hulu"}
    # Blade Runner is only for rent in the US: not on the default (subscription/free) profile
    assert body["items"][0]["available"] is False
    assert client.delete("/users/alice/watchlist/movie:78", headers=h).json()["removed"] is True
    assert client.delete("/users/alice/watchlist/movie:78", headers=h).json()["removed"] is False
    assert len(client.get("/users/alice/watchlist", headers=h).json()["items"]) == 1


def test_watchlist_is_private_and_validated(client: TestClient, bearer) -> None:
    assert client.get("/users/alice/watchlist").status_code == 401
    assert client.get("/users/alice/watchlist", headers=bearer("bob", WL)).status_code == 403
    r = client.put("/users/alice/watchlist/movie:27205", headers=bearer("alice", NOT_WL))
    assert r.status_code == 403
    r = client.put("/users/alice/watchlist/movie:1", headers=bearer("alice", WL))
    assert r.status_code == 404


def test_watchlist_erased_and_exported(client: TestClient, bearer, feedback_dir: Path) -> None:
    h = bearer("carol", WL)
    client.put("/users/carol/watchlist/movie:27205", headers=h)
    export = client.get("/users/carol/export", headers=h).json()
    assert [e["title_id"] for e in export["watchlist"]] == ["movie:27205"]
    assert client.delete("/users/carol", headers=h).status_code == 200
    import sqlite3

    conn = sqlite3.connect(feedback_dir / DB_NAME)
    for table in ("watchlist", "alerts"):
        n = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE user_id='carol'").fetchone()[0]
        assert n == 0


def test_availability_alerts_after_a_catalogue_swap(
    fast_poll_client: TestClient, bearer, fresh_world: World, promote
) -> None:
    client = fast_poll_client
    h = bearer("alice", WL)
    client.put("/users/alice/watchlist/movie:329865", headers=h)  # Arrival: hulu in US
    client.put("/users/alice/watchlist/movie:27205", headers=h)  # Inception: netflix in US
    assert client.get("/users/alice/watchlist/alerts", headers=h).json()["alerts"] == []
    # tonight's availability: Arrival leaves hulu and joins netflix; Inception unchanged
    offers = availability_frame()
    arrival = pl.col("title_id") == "movie:329865"
    offers = offers.with_columns(
        pl.when(arrival)
        .then(pl.lit("netflix"))
        .otherwise(pl.col("provider_id"))
        .alias("provider_id"),
        pl.when(arrival)
        .then(pl.lit("Netflix"))
        .otherwise(pl.col("provider_name"))
        .alias("provider_name"),
    )
    settings = fresh_world.settings()
    write_table(settings.paths.lake, "availability", offers)
    before = client.get("/status").json()["champion_version"]
    promote()
    deadline = time.monotonic() + 60
    while client.get("/status").json()["champion_version"] == before:
        assert time.monotonic() < deadline, "no swap"
        time.sleep(0.2)
    body = client.get("/users/alice/watchlist/alerts", headers=h).json()
    got = {
        (a["content_id"] if "content_id" in a else a["title_id"], a["change"], a["provider_id"])
        for a in body["alerts"]
    }
    assert got == {("movie:329865", "left", "hulu"), ("movie:329865", "joined", "netflix")}
    assert all(a["country"] == "US" and a["title"] == "Arrival" for a in body["alerts"])
    # resume: nothing new after the last id; reading again does not repeat them
    again = client.get(f"/users/alice/watchlist/alerts?since={body['last_id']}", headers=h).json()
    assert again["alerts"] == [] and again["last_id"] == body["last_id"]
    assert len(client.get("/users/alice/watchlist/alerts", headers=h).json()["alerts"]) == 2


def _episode_rows(user: str) -> pl.DataFrame:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    rows = []
    views = (
        [("tv:1396", 1, e, f"Pilot {e}") for e in range(1, 8)]
        + [("tv:1396", 2, e, f"S2 {e}") for e in range(1, 4)]
        + [("tv:70523", 1, e, f"Dark {e}") for e in (1, 2)]
        + [("tv:2316", None, None, "Diversity Day")]
    )
    for i, (tid, season, episode, title) in enumerate(views):
        when = start + timedelta(days=i)
        rows.append(
            {
                "event_id": f"{user}-ep-{i}",
                "user_id": user,
                "title_id": tid,
                "raw_title": "x",
                "source": "netflix",
                "event_time": when,
                "event_date": when.date(),
                "weight": 1.0,
                "season": season,
                "episode": episode,
                "episode_title": title,
                "import_batch": "test",
            }
        )
    return pl.DataFrame(rows)


def test_continue_watching_from_imported_history(
    client: TestClient, bearer, fresh_world: World
) -> None:
    settings = fresh_world.settings()
    write_partition(
        settings.paths.lake, "watch_events", "batch=netflix-test", _episode_rows("dave")
    )
    h = bearer("dave", WL)
    # a film left at 40 %
    r = client.post(
        "/feedback",
        json={"user": "dave", "content_id": "movie:603", "completion": 0.4},
        headers=h,
    )
    assert r.status_code == 200, r.text
    items = client.get("/users/dave/continue-watching", headers=h).json()["items"]
    by_id = {i["content_id"]: i for i in items}
    assert items[0]["content_id"] == "movie:603"  # most recent first (feedback is now)
    assert by_id["movie:603"]["kind"] == "movie" and by_id["movie:603"]["completion"] == 0.4
    bb = by_id["tv:1396"]
    assert (bb["season"], bb["episode"], bb["episode_title"]) == (2, 3, "S2 3")
    assert (bb["next_season"], bb["next_episode"]) == (2, 4)
    assert bb["seasons"] == [
        {"season": 1, "episodes_watched": 7},
        {"season": 2, "episodes_watched": 3},
    ]
    assert by_id["tv:70523"]["episode"] == 2
    office = by_id["tv:2316"]  # no season/episode numbers: counted by episode title
    assert office["seasons"] == [{"season": None, "episodes_watched": 1}]
    assert office["next_episode"] is None
    # dave's finished family films are not "continue watching"
    assert "movie:862" not in by_id
    assert (
        client.get("/users/dave/continue-watching", headers=bearer("alice", WL)).status_code == 403
    )
