"""A real `bentoml serve` with 2 worker processes: shared state, shared limits, no proxy bypass,
forwarded addresses from a configured proxy, and no orphan worker when `media-gateway serve` is
killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving.run import free_port, start_server, stop_server, wait_ready
from tests.serving.conftest import SECRET, World, make_token

ANON_PER_MINUTE = 20


def _server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GEMINI_API_KEY"}
    env["MEDIA_GATEWAY_JWT_SECRET"] = SECRET
    return env


def _start(world: World, tmp_path: Path, *, workers: int, **serving) -> tuple:
    port = free_port()
    overlay = world.overlay("multi", port=port, workers=workers, **serving)
    settings = world.settings()
    settings = settings.model_copy(
        update={
            "serving": settings.serving.model_copy(
                update={"host": "127.0.0.1", "port": port, "workers": workers, **serving}
            )
        }
    )
    log_file = tmp_path / "server.log"
    proc = start_server(settings, [overlay], env=_server_env(), log_file=log_file)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, base, timeout_s=300)
    except Exception:
        print(log_file.read_text()[-4000:])
        stop_server(proc)
        raise
    return proc, base


def _statuses_until(base: str, headers: dict, done, timeout_s: float = 120) -> dict[int, dict]:
    """GET /status on fresh connections until ``done(by_pid)``; returns the last answer per pid."""
    by_pid: dict[int, dict] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with httpx.Client(base_url=base, timeout=30) as http:  # new connection: any worker
            r = http.get("/status", headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        if body["ready"]:
            by_pid[body["worker_pid"]] = body
        if done(by_pid):
            return by_pid
        time.sleep(0.05)
    raise AssertionError(f"condition not met; last answers by worker: {by_pid}")


@pytest.mark.slow
def test_two_workers_share_state_and_limits(fresh_world: World, tmp_path: Path) -> None:
    proc, base = _start(
        fresh_world,
        tmp_path,
        workers=2,
        anonymous_per_minute=ANON_PER_MINUTE,
        authenticated_per_minute=1000,
    )
    try:
        # 1. forged X-Forwarded-For from loopback picks no fresh bucket, in either worker
        def anonymous(i: int) -> int:
            with httpx.Client(base_url=base, timeout=30) as http:
                return http.get("/status", headers={"X-Forwarded-For": f"10.9.{i}.1"}).status_code

        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(anonymous, range(3 * ANON_PER_MINUTE)))
        refill = (time.monotonic() - started) * ANON_PER_MINUTE / 60
        assert set(codes) <= {200, 429}
        assert ANON_PER_MINUTE <= codes.count(200) <= ANON_PER_MINUTE + refill + 1, codes

        # 2. both workers are up; feedback posted to one is seen in the histories of both
        headers = {"Authorization": f"Bearer {make_token(fresh_world, 'newbie')}"}
        before = _statuses_until(base, headers, lambda seen: len(seen) >= 2)
        assert len(before) == 2, "expected two worker processes"
        users = {s["users_with_history"] for s in before.values()}
        assert len(users) == 1
        (n_users,) = users
        with httpx.Client(base_url=base, timeout=30) as http:
            r = http.post(
                "/feedback",
                json={"user": "newbie", "content_id": "movie:603", "rating": 5},
                headers=headers,
            )
            assert r.status_code == 200, r.text
        after = _statuses_until(
            base,
            headers,
            lambda seen: (
                len(seen) == 2
                and all(s["users_with_history"] == n_users + 1 for s in seen.values())
            ),
        )
        assert set(after) == set(before)
        # and the history itself is served by both workers
        seen_explained: set[int] = set()
        deadline = time.monotonic() + 120
        while len(seen_explained) < 2 and time.monotonic() < deadline:
            with httpx.Client(base_url=base, timeout=30) as http:
                r = http.post(
                    "/explain",
                    json={"user": "newbie", "content_id": "movie:27205"},
                    headers=headers,
                )
                pid = http.get("/status", headers=headers).json()["worker_pid"]
            assert r.status_code == 200, r.text
            near = [n["title_id"] for n in r.json()["evidence"]["nearest_watched"]]
            assert near == ["movie:603"], near
            seen_explained.add(pid)  # keep-alive: the same connection, the same worker
        assert len(seen_explained) == 2

        # 3. /metrics aggregates both workers: latency by route template, caches, the model
        _check_metrics(base, headers)

        # 4. an erasure through one worker reaches the other
        with httpx.Client(base_url=base, timeout=30) as http:
            assert http.delete("/users/newbie", headers=headers).status_code == 200
        _statuses_until(
            base,
            headers,
            lambda seen: (
                len(seen) == 2
                and all(
                    s["users_with_history"] == n_users and s["store_seq"]["erasures"] >= 1
                    for s in seen.values()
                )
            ),
        )
    finally:
        stop_server(proc)


@pytest.mark.slow
def test_forwarded_for_from_a_configured_proxy_names_the_client(
    fresh_world: World, tmp_path: Path
) -> None:
    """With ``serving.trusted_proxies`` set, uvicorn takes the client (and scheme) from the proxy's
    headers: each forwarded client has its own window, and a hop forged in front of the proxy's
    entry does not choose it."""
    proc, base = _start(
        fresh_world,
        tmp_path,
        workers=1,
        anonymous_per_minute=3,
        authenticated_per_minute=1000,
        trusted_proxies=["127.0.0.1"],
    )
    try:
        with httpx.Client(base_url=base, timeout=30) as http:

            def status(forwarded_for: str) -> int:
                return http.get("/status", headers={"X-Forwarded-For": forwarded_for}).status_code

            for i in range(4):  # 4 clients x 3 requests: more than one window, all granted
                assert [status(f"203.0.113.{i}") for _ in range(3)] == [200] * 3
            assert status("203.0.113.0") == 429
            assert status("198.51.100.1, 203.0.113.0") == 429, "the proxy's hop is the client"
            r = http.get(
                "/content/movie:603",
                headers={"X-Forwarded-For": "203.0.113.50", "X-Forwarded-Proto": "https"},
            )
            assert r.status_code == 200, r.text
            assert f"https://{base.removeprefix('http://')}/content/movie:603" in r.text
    finally:
        stop_server(proc)


@pytest.mark.slow
def test_kill_9_of_the_cli_leaves_no_server(fresh_world: World, tmp_path: Path) -> None:
    """SIGKILL of `media-gateway serve` stops BentoML and its workers; the port is free again."""
    port = free_port()
    overlay = fresh_world.overlay("cli")
    cli = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "media_gateway.cli",
            "serve",
            "-c",
            str(overlay),
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        env=_server_env() | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "cli.log").open("wb"),
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    family: list[int] = [cli.pid]
    try:
        wait_ready(cli, base, timeout_s=300)
        family = [cli.pid, *(p.pid for p in psutil.Process(cli.pid).children(recursive=True))]
        assert len(family) >= 4  # cli, bentoml serve, two workers
        os.kill(cli.pid, signal.SIGKILL)
        cli.wait(timeout=10)
        deadline = time.monotonic() + 60
        alive = family
        while time.monotonic() < deadline:
            alive = [pid for pid in family[1:] if psutil.pid_exists(pid) and _running(pid)]
            if not alive:
                break
            time.sleep(0.2)
        assert not alive, f"orphans still running: {alive}"
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{base}/livez", timeout=2)
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
        for pid in family[1:]:  # never leave our server behind, even when an assertion failed
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _samples(text: str, name: str) -> list:
    return [
        s
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


def _check_metrics(base: str, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        for _ in range(2):  # the second identical /recommend is a cache hit
            r = http.post("/recommend", json={"user": "newbie"}, headers=headers)
            assert r.status_code == 200, r.text
        assert http.get("/users/newbie/export", headers=headers).status_code == 200
        assert http.get("/content/movie:603").status_code in (200, 429)
        version = http.get("/status", headers=headers).json()["champion_version"]
        r = http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    counts = {
        (s.labels["endpoint"], s.labels["method"], s.labels["status"]): s.value
        for s in _samples(text, "media_gateway_request_duration_seconds_count")
    }
    assert counts[("/recommend", "POST", "200")] >= 2
    assert counts[("/users/{user}/export", "GET", "200")] >= 1
    assert counts[("/feedback", "POST", "200")] >= 1
    assert sum(v for (e, _, _), v in counts.items() if e == "/status") >= 10  # both workers
    ours = [line for line in text.splitlines() if line.startswith("media_gateway_")]
    assert not [line for line in ours if "newbie" in line or "movie:603" in line]
    cache = {
        (s.labels["cache"], s.labels["result"]): s.value
        for s in _samples(text, "media_gateway_cache_requests_total")
    }
    assert cache[("recommend", "hit")] >= 1 and cache[("recommend", "miss")] >= 1
    info = {
        (s.labels["version"], s.labels["mode"]): s.value
        for s in _samples(text, "media_gateway_model_info")
    }
    assert info[(version, "hybrid")] == 1
    # the fixture champion (EASE) has no DP guarantee: no epsilon is reported (NaN), none invented
    (epsilon,) = _samples(text, "media_gateway_model_epsilon")
    assert epsilon.value != epsilon.value
