"""Acknowledged = committed, tested the hard way: steady POST /feedback load against a real 2-worker
server, SIGKILL of the whole server mid-load, restart; then the nightly run on the same world.

Counts (printed): acknowledged events, acknowledged events missing after the restart (must be 0),
and each acknowledged event in ``watch_events`` after the nightly run (exactly once). Run with the
state store in SQLite and in PostgreSQL (``state.database_url``: the workers and the nightly run
must both use it)."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import polars as pl
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from core.feedback import bind_database, configure_state, read_feedback
from core.lake import read_table
from core.settings import load_settings
from mlops.champion import load_champion
from serving.auth import issue_token
from serving.run import free_port, start_server, stop_server, wait_ready
from tests.conftest import write_tmp_overlay
from tests.postgres_server import drop_schema, new_schema_url
from tests.serving.conftest import ALL_SCOPES, SECRET

LOAD_THREADS = 4
LOAD_SECONDS_BEFORE_KILL = 4.0


def _server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GEMINI_API_KEY"}
    env["MEDIA_GATEWAY_JWT_SECRET"] = SECRET
    return env


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    url = new_schema_url()
    yield url
    drop_schema(url)


@pytest.mark.slow
def test_sigkill_under_load_loses_no_acknowledged_feedback(
    sample_world, tmp_path: Path, state_url: str | None
) -> None:
    from pipelines.run import run_nightly

    settings, _, ok = sample_world
    assert ok
    shutil.copytree(settings.paths.lake.parent, tmp_path / "var")
    port = free_port()
    serving = tmp_path / "serving.yaml"
    overlay: dict = {"serving": {"port": port, "workers": 2, "authenticated_per_minute": 100_000}}
    if state_url is not None:
        overlay["state"] = {"database_url": state_url}
    serving.write_text(yaml.safe_dump(overlay))
    files = ["configs/sample.yaml", str(write_tmp_overlay(tmp_path)), str(serving)]
    copy = load_settings(*files)
    configure_state(copy)  # this process reads the store the server writes
    events = read_table(copy.paths.lake, "watch_events")
    users = sorted(events["user_id"].unique())[:4]
    titles = sorted(events["title_id"].unique())[:20]
    tokens = {u: issue_token(copy, u, ALL_SCOPES, 30, secret=SECRET.encode()) for u in users}
    base = f"http://127.0.0.1:{port}"
    log_file = tmp_path / "server.log"

    proc = start_server(copy, files, env=_server_env(), log_file=log_file)
    wait_ready(proc, base, timeout_s=300, workers=2)
    acknowledged: list[str] = []
    refused: Counter[tuple[int, str]] = Counter()  # answers other than 200: not acknowledged
    stop = threading.Event()
    lock = threading.Lock()

    def load(n: int) -> None:
        user = users[n % len(users)]
        headers = {"Authorization": f"Bearer {tokens[user]}"}
        i = 0
        with httpx.Client(base_url=base, timeout=10) as http:
            while not stop.is_set():
                body = {"user": user, "content_id": titles[i % len(titles)], "rating": 4}
                i += 1
                try:
                    r = http.post("/feedback", json=body, headers=headers)
                except httpx.TransportError:
                    return  # the server is gone: an unanswered request is not acknowledged
                with lock:
                    if r.status_code == 200:
                        assert r.json()["durable"] is True
                        acknowledged.append(r.json()["event_id"])
                    else:
                        refused[(r.status_code, r.text[:80])] += 1

    threads = [threading.Thread(target=load, args=(n,)) for n in range(LOAD_THREADS)]
    for t in threads:
        t.start()
    time.sleep(LOAD_SECONDS_BEFORE_KILL)
    os.killpg(proc.pid, signal.SIGKILL)  # the server and both workers, mid-request
    proc.wait(timeout=30)
    for t in threads:
        t.join(timeout=30)
    stop.set()
    acked = set(acknowledged)
    assert len(acked) == len(acknowledged) > 20, (len(acknowledged), refused)

    # restart on the same folder: everything acknowledged is there, through the API too
    proc = start_server(copy, files, env=_server_env(), log_file=log_file)
    try:
        wait_ready(proc, base, timeout_s=300, workers=2)
        exported: set[str] = set()
        with httpx.Client(base_url=base, timeout=30) as http:
            for user in users:
                r = http.get(
                    f"/users/{user}/export", headers={"Authorization": f"Bearer {tokens[user]}"}
                )
                assert r.status_code == 200, r.text
                exported |= {f["event_id"] for f in r.json()["feedback"]}
            metrics = http.get("/metrics").text
    finally:
        stop_server(proc)
    # /metrics reports the serving champion's epsilon from its recorded privacy report
    champion = load_champion(copy)
    (epsilon,) = [
        s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
        if s.name == "media_gateway_model_epsilon"
    ]
    if champion.privacy is not None and champion.privacy.get("epsilon") is not None:
        assert epsilon == pytest.approx(champion.privacy["epsilon"])
    else:
        assert epsilon != epsilon  # NaN: no guarantee recorded, none reported

    missing = acked - exported
    stored = read_feedback(copy.paths.feedback)
    print(f"acknowledged={len(acked)} refused={dict(refused)} missing_after_kill9={len(missing)}")
    assert not missing
    assert stored["event_id"].n_unique() == stored.height

    # the next nightly run: each acknowledged event reaches watch_events exactly once
    assert run_nightly(copy, files, partition_key="2026-11-30")
    lake = read_table(copy.paths.lake, "watch_events").filter(pl.col("event_id").is_in(acked))
    counts = lake.group_by("event_id").len()
    print(f"in_watch_events={counts.height} duplicated={counts.filter(pl.col('len') > 1).height}")
    assert counts.height == len(acked)
    assert counts["len"].max() == 1
    if state_url is not None:
        assert not (copy.paths.feedback / "state.db").exists()  # it was PostgreSQL throughout
        bind_database(copy.paths.feedback, None)
