"""SharedTokenBucketLimiter: one set of buckets for every process using the same file."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from serving.ratelimit import SharedTokenBucketLimiter, build_limiters, client_address


def _take(path: str, n: int, out: multiprocessing.Queue) -> None:
    limiter = SharedTokenBucketLimiter(10, Path(path), name="anonymous", clock=lambda: 1000.0)
    out.put(sum(limiter.acquire("ip:1.2.3.4").allowed for _ in range(n)))


def test_buckets_are_shared_between_processes(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_take, args=(str(tmp_path / "rl.db"), 10, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    granted = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert sum(granted) == 10  # not 10 per process


def test_refill_and_retry_after(tmp_path: Path) -> None:
    now = [0.0]
    limiter = SharedTokenBucketLimiter(60, tmp_path / "rl.db", clock=lambda: now[0])
    assert all(limiter.acquire("k").allowed for _ in range(60))
    denied = limiter.acquire("k")
    assert not denied.allowed and denied.retry_after_s == pytest.approx(1.0)
    now[0] += 1.0
    assert limiter.acquire("k").allowed
    assert limiter.acquire("other").allowed and len(limiter) == 2


def test_falls_back_loudly_when_the_folder_is_read_only(tmp_path: Path, read_only_dir) -> None:
    anonymous, _, where = build_limiters(10, 100, read_only_dir(tmp_path / "ro"))
    assert where.startswith("per-process") and "ratelimit.db" in where
    assert anonymous.acquire("k").allowed


def test_forged_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    assert client_address("127.0.0.1", "10.0.0.9", []) == "127.0.0.1"
    assert client_address("10.1.0.2", "203.0.113.7, 10.1.0.3", ["10.1.0.0/16"]) == "203.0.113.7"
