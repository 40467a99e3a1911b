"""The service with ``state.database_url`` set: feedback, preferences and erasures land in
PostgreSQL (a real server, :mod:`tests.postgres_server`), nothing in the SQLite file, and a store
that cannot take the write answers 503 without acknowledging."""

from __future__ import annotations

from pathlib import Path

import psycopg
import yaml
from starlette.testclient import TestClient

from core.feedback import STORE_FILE, bind_database
from core.postgres_db import WRITE_LOCK_KEY
from tests.postgres_server import drop_schema, new_schema_url
from tests.serving.conftest import start_client


def test_service_keeps_user_state_in_postgres(
    asgi_app, fresh_world, service_env, bearer, feedback_dir: Path
) -> None:
    url = new_schema_url() + "%20-clock_timeout%3D500"  # a held lock gives up after 0.5 s
    overlay = fresh_world.overlay("pg", anonymous_per_minute=1000, authenticated_per_minute=1000)
    data = yaml.safe_load(overlay.read_text())
    overlay.write_text(yaml.safe_dump({**data, "state": {"database_url": url}}))
    client: TestClient
    try:
        for client in start_client(asgi_app, overlay, service_env):
            h = bearer("alice")
            body = {"user": "alice", "content_id": "movie:603", "rating": 4}
            r = client.post("/feedback", json=body, headers=h)
            assert r.status_code == 200, r.text
            event_id = r.json()["event_id"]
            r = client.put("/users/alice/preferences", json={"country": "GB"}, headers=h)
            assert r.status_code == 200, r.text
            with psycopg.connect(url) as pg:
                assert pg.execute("SELECT event_id, user_id FROM feedback").fetchall() == [
                    (event_id, "alice")
                ]
                assert pg.execute("SELECT user_id FROM profiles").fetchall() == [("alice",)]
            # the write lock held elsewhere past lock_timeout: 503, nothing saved
            with psycopg.connect(url) as other, other.transaction():
                other.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))
                r = client.post("/feedback", json={**body, "rating": 2}, headers=h)
                assert r.status_code == 503, r.text
                assert "nothing was saved" in r.json()["error"] and r.headers["retry-after"]
            # a read that cannot reach the store (table locked past lock_timeout): 503, not 500
            with psycopg.connect(url) as other, other.transaction():
                other.execute("LOCK TABLE feedback IN ACCESS EXCLUSIVE MODE")
                r = client.post("/recommend", json={"user": "bob"}, headers=bearer("bob"))
                assert r.status_code == 503, r.text
                assert "store unavailable" in r.json()["error"] and r.headers["retry-after"]
            r = client.post("/recommend", json={"user": "bob"}, headers=bearer("bob"))
            assert r.status_code == 200, r.text
            assert client.delete("/users/alice", headers=h).status_code == 200
            with psycopg.connect(url) as pg:
                assert pg.execute("SELECT count(*) FROM feedback").fetchone()[0] == 0
                assert pg.execute("SELECT count(*) FROM profiles").fetchone()[0] == 0
                assert pg.execute("SELECT user_id FROM erasures").fetchall() == [("alice",)]
        assert not (feedback_dir / STORE_FILE).exists()
    finally:
        bind_database(feedback_dir, None)
        drop_schema(url)
