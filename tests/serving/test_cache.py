"""serving.cache.TTLCache: expiry, the entry bound, tags and the hit/miss counts."""

from __future__ import annotations

import sys
import threading

import pytest

from serving.cache import TTLCache


def test_entries_expire_after_their_ttl() -> None:
    now = [0.0]
    cache: TTLCache[str] = TTLCache(10.0, clock=lambda: now[0])
    cache.put("a", "A")
    now[0] = 9.9
    assert cache.get("a") == "A"
    now[0] = 10.0
    assert cache.get("a") is None and len(cache) == 0
    assert (cache.hits, cache.misses) == (1, 1)


def test_the_least_recently_used_entry_goes_beyond_max_entries() -> None:
    cache: TTLCache[int] = TTLCache(60.0, 2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3


def test_invalidate_tag_drops_exactly_that_users_entries() -> None:
    now = [0.0]
    cache: TTLCache[int] = TTLCache(10.0, clock=lambda: now[0])
    cache.put("a1", 1, tag="alice")
    cache.put("a2", 2, tag="alice")
    cache.put("b1", 3, tag="bob")
    cache.put("shared", 4)
    assert cache.invalidate_tag("alice") == 2
    assert cache.get("a1") is None and cache.get("b1") == 3 and cache.get("shared") == 4
    now[0] = 11.0
    assert cache.invalidate_tag("bob") == 0, "an expired entry is not counted"
    cache.clear()
    assert len(cache) == 0


def test_get_or_compute_computes_once() -> None:
    calls = []
    cache: TTLCache[int] = TTLCache(60.0)
    for _ in range(3):
        assert cache.get_or_compute("k", lambda: calls.append(1) or 7) == 7
    assert len(calls) == 1


def test_concurrent_puts_and_invalidations_keep_the_bound() -> None:
    cache: TTLCache[int] = TTLCache(60.0, 50)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(2_000):
                cache.put((worker, i), i, tag=f"u{i % 7}")
                if i % 100 == 0:
                    cache.invalidate_tag(f"u{i % 7}")
                cache.get((worker, i - 1))
        except BaseException as exc:  # reported below: a thread's exception would be lost
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often: without the lock this fails every time
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == [] and len(cache) <= 50


@pytest.mark.parametrize(("ttl", "entries"), [(0.0, 1), (1.0, 0)])
def test_bad_bounds_are_refused(ttl: float, entries: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        TTLCache(ttl, entries)
