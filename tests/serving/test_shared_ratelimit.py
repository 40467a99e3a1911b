"""SharedRateLimiter: one set of windows for every process using the same file (limits' moving
window over the SQLite storage), and the proxy rule for the address it limits."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from limits import RateLimitItemPerMinute
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from serving.ratelimit import SharedRateLimiter, SQLiteStorage, build_limiters
from tests.serving.conftest import client_seen_by_app


def _take(path: str, n: int, out: multiprocessing.Queue) -> None:
    limiter = SharedRateLimiter(10, Path(path), name="anonymous", clock=lambda: 1000.0)
    out.put(sum(limiter.acquire("ip:1.2.3.4").allowed for _ in range(n)))


def test_windows_are_shared_between_processes(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_take, args=(str(tmp_path / "rl.db"), 10, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    granted = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert sum(granted) == 10  # not 10 per process


def test_window_slides_and_retry_after(tmp_path: Path) -> None:
    now = [0.0]
    limiter = SharedRateLimiter(60, tmp_path / "rl.db", clock=lambda: now[0])
    assert all(limiter.acquire("k").allowed for _ in range(30))
    now[0] = 30.0
    assert all(limiter.acquire("k").allowed for _ in range(30))
    denied = limiter.acquire("k")
    assert not denied.allowed and denied.retry_after_s == pytest.approx(30.0)  # t=0 entries leave
    now[0] = 59.9
    assert not limiter.acquire("k").allowed
    now[0] = 60.0  # the first 30 left the window, the next 30 are still in it
    assert all(limiter.acquire("k").allowed for _ in range(30))
    denied = limiter.acquire("k")
    assert not denied.allowed and denied.retry_after_s == pytest.approx(30.0)
    assert limiter.acquire("other").allowed and len(limiter) == 2
    now[0] = 200.0
    assert len(limiter) == 0, "nobody has a request in the window any more"


def test_limiters_in_one_file_are_separate(tmp_path: Path) -> None:
    anonymous = SharedRateLimiter(1, tmp_path / "rl.db", name="anonymous", clock=lambda: 5.0)
    authenticated = SharedRateLimiter(
        1, tmp_path / "rl.db", name="authenticated", clock=lambda: 5.0
    )
    assert anonymous.acquire("k").allowed and authenticated.acquire("k").allowed
    assert not anonymous.acquire("k").allowed
    assert anonymous.acquire("k").retry_after_header == "60"


def test_expired_entries_are_swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    import serving.ratelimit as rl

    monkeypatch.setattr(rl, "SWEEP_EVERY", 10)
    now = [0.0]
    limiter = SharedRateLimiter(5, tmp_path / "rl.db", clock=lambda: now[0])
    for i in range(9):
        assert limiter.acquire(f"ip:10.0.0.{i}").allowed  # a spray of one-off addresses
    now[0] = 61.0
    assert limiter.acquire("ip:10.0.0.99").allowed  # the 10th write sweeps
    rows = sqlite3.connect(tmp_path / "rl.db").execute("SELECT count(*) FROM window_entries")
    assert rows.fetchone()[0] == 1


def test_the_storage_serves_limits_fixed_window_too(tmp_path: Path) -> None:
    now = [100.0]
    storage = SQLiteStorage(tmp_path / "rl.db", clock=lambda: now[0])
    fixed = FixedWindowRateLimiter(storage)
    item = RateLimitItemPerMinute(2)
    assert fixed.hit(item, "a") and fixed.hit(item, "a") and not fixed.hit(item, "a")
    stats = fixed.get_window_stats(item, "a")
    assert stats.remaining == 0 and stats.reset_time == pytest.approx(160.0)
    now[0] = 160.0
    assert fixed.hit(item, "a") and fixed.get_window_stats(item, "a").remaining == 1
    moving = MovingWindowRateLimiter(storage)
    assert moving.hit(item, "b") and moving.test(item, "b")
    assert storage.check()
    storage.clear(item.key_for("a"))
    assert fixed.get_window_stats(item, "a").remaining == 2
    assert storage.reset() == 1  # b's entry


def test_falls_back_loudly_when_the_folder_is_read_only(tmp_path: Path, read_only_dir) -> None:
    anonymous, _, where = build_limiters(10, 100, read_only_dir(tmp_path / "ro"))
    assert where.startswith("per-process") and "ratelimit.db" in where
    assert anonymous.acquire("k").allowed


def test_forged_forwarded_for_from_an_untrusted_peer_is_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    forged = {"X-Forwarded-For": "10.0.0.9", "X-Forwarded-Proto": "https"}
    assert client_seen_by_app([], "127.0.0.1", forged, monkeypatch) == ("127.0.0.1", "http")


def test_forwarded_for_from_a_configured_proxy_is_the_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    headers = {"X-Forwarded-For": "203.0.113.7, 10.1.0.3", "X-Forwarded-Proto": "https"}
    seen = client_seen_by_app(["10.1.0.0/16"], "10.1.0.2", headers, monkeypatch)
    assert seen == ("203.0.113.7", "https")
