"""Serving benchmark: a real ``bentoml serve`` on loopback, latency and throughput per endpoint.

Builds a synthetic world in a temporary folder (``--titles`` titles with random unit vectors and
random offers, ``--users`` users with random histories, an EASE champion registered in a temporary
MLflow store), starts the service on a free 127.0.0.1 port with rate limits raised out of the way,
then for each concurrency level (default 1, 8, 32) sends a bounded number of requests to
``/livez`` (baseline), ``POST /search`` and ``POST /recommend`` from a thread pool (one httpx client
per thread). Reports p50/p95/p99 latency, throughput, and each endpoint's p50 as a ratio to
``/livez``'s p50 measured in the same run. 429s (the ``max_concurrency`` cap shedding load, which
is intended) are counted apart from errors (anything else that is not 200).

    .venv/bin/python benchmarks/serving.py --requests 200
    .venv/bin/python benchmarks/serving.py --requests 200 --concurrency 8 --workers 1 2

``--workers 1 2`` runs the whole measurement once per worker count (a fresh server each time, so
caches start cold) and adds the scale-out figures: each endpoint's throughput with N workers as a
ratio to one worker, at the same concurrency.

``--rounds R`` (R > 1) starts one server per worker count up front and then measures them in R
interleaved rounds (the order of the servers alternates from round to round, every round asks for
users no earlier round asked for), so a noisy stretch of the machine hits every configuration
alike. Single 200-request runs on these 2-core machines moved the 2-worker ``/recommend`` /
``/livez`` p50 ratio between 5x and 16x from one run to the next; the rounds table gives each
round's ratios and their median, and the main tables pool every round's latencies.

The workers share the SQLite user-state store and rate-limit buckets (see ``serving/state.py``);
every ``/recommend`` pays one read of the store's change counters and every request one rate-limit write.

(This file is named like the ``serving`` package; it removes its own folder from ``sys.path`` so
the package, not this script, is imported.)

Loopback only; every loop is bounded by ``--requests`` and a per-request timeout.
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import contextlib
import logging
import math
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import httpx
import numpy as np
import polars as pl
import yaml
from rich.console import Console
from rich.table import Table

from core.settings import Settings, load_settings, workspace_paths
from serving.auth import SCOPES, SECRET_ENV, issue_token
from serving.run import free_port, start_server, stop_server, wait_ready

log = logging.getLogger("benchmarks.serving")
console = Console(width=130)

GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance", "Science Fiction", "Thriller",
          "Animation", "Family", "Documentary", "Crime", "Fantasy"]  # fmt: skip
PROVIDERS = [("netflix", "Netflix"), ("hulu", "Hulu"), ("disneyplus", "Disney Plus"),
             ("amazon", "Amazon Video")]  # fmt: skip
QUERIES = [
    "funny movies for a family night",
    "dark thriller under 2 hours",
    "space adventure like Interstellar",
    "romantic comedy from the 90s",
    "scary films on netflix",
    "documentary about nature",
    "something exciting with heists",
    "animated films for kids",
]


def build_world(root: Path, n_titles: int, n_users: int, seed: int) -> Settings:
    """Synthetic lake, content index and champion under ``root``; returns its settings."""
    from core.lake import read_table, write_table
    from core.schemas import EMBEDDING_DIM
    from core.vector_index import build_content_rows, write_content_index
    from mlops.promotion import register_champion
    from models.collaborative.ease import EASERecommender

    rng = np.random.default_rng(seed)
    var = root / "var"
    settings = load_settings("configs/base.yaml", overrides={"paths": workspace_paths(var)})
    ids = [f"movie:{i + 1}" for i in range(n_titles)]
    titles = pl.DataFrame(
        {
            "title_id": ids,
            "tmdb_id": list(range(1, n_titles + 1)),
            "type": ["series" if i % 5 == 0 else "movie" for i in range(n_titles)],
            "title": [f"Title {i}" for i in range(n_titles)],
            "original_title": [f"Title {i}" for i in range(n_titles)],
            "year": rng.integers(1960, 2026, n_titles).tolist(),
            "release_date": [date(2000, 1, 1)] * n_titles,
            "overview": [f"Synthetic overview {i}" for i in range(n_titles)],
            "genres": [list(rng.choice(GENRES, 2, replace=False)) for _ in range(n_titles)],
            "keywords": [[] for _ in range(n_titles)],
            "runtime": rng.integers(20, 180, n_titles).tolist(),
            "language": ["en"] * n_titles,
            "popularity": rng.pareto(1.5, n_titles).tolist(),
            "vote_average": rng.uniform(3, 9, n_titles).tolist(),
            "vote_count": rng.integers(10, 10_000, n_titles).tolist(),
            "source": ["tmdb"] * n_titles,
            "content_hash": [f"synthetic-{i}" for i in range(n_titles)],
        }
    )
    offers = []
    now = datetime.now(UTC)
    for tid in ids:
        for pid, name in PROVIDERS:
            if rng.random() < 0.3:
                kind = "RENT" if pid == "amazon" else "FLATRATE"
                offers.append(
                    {
                        "title_id": tid,
                        "country": "US",
                        "provider_id": pid,
                        "provider_name": name,
                        "monetization": kind,
                        "price": 3.99 if kind == "RENT" else None,
                        "currency": "USD" if kind == "RENT" else None,
                        "deep_link": f"https://{pid}.example/{tid}",
                        "source": "justwatch",
                        "last_seen": now,
                    }
                )
    availability = pl.DataFrame(offers)
    vectors = rng.normal(size=(n_titles, EMBEDDING_DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    events = []
    start = datetime(2026, 1, 1, tzinfo=UTC)
    popularity = titles["popularity"].to_numpy()
    p = popularity / popularity.sum()
    for u in range(n_users):
        for j, item in enumerate(rng.choice(n_titles, 20, replace=False, p=p)):
            when = start + timedelta(hours=j)
            events.append(
                {
                    "event_id": f"u{u}-{item}",
                    "user_id": f"u{u}",
                    "title_id": ids[int(item)],
                    "source": "movielens",
                    "event_time": when,
                    "event_date": when.date(),
                    "weight": 1.0,
                }
            )
    watch_events = pl.DataFrame(events)
    write_table(settings.paths.lake, "titles", titles)
    write_table(settings.paths.lake, "availability", availability)
    write_table(settings.paths.lake, "watch_events", watch_events)
    embeddings = pl.DataFrame({"title_id": ids, "vector": vectors.tolist()})
    stored = read_table(settings.paths.lake, "titles")  # conformed to the TITLES schema
    write_content_index(
        settings.paths.lancedb, build_content_rows(stored, availability, embeddings)
    )
    interactions = watch_events.select("user_id", pl.col("title_id").alias("item_id"), "weight")
    register_champion(settings, EASERecommender().fit(interactions), root / "model")
    return settings


@dataclass
class Result:
    endpoint: str
    concurrency: int
    workers: int = 1
    round: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    shed_429: int = 0
    errors: int = 0
    wall_s: float = 0.0

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        return float(np.percentile(self.latencies_ms, q))

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.wall_s if self.wall_s else float("nan")


Call = Callable[[httpx.Client, int], httpx.Response]


def run_load(
    base: str, name: str, call: Call, concurrency: int, requests: int, workers: int = 1
) -> Result:
    """``requests`` calls from ``concurrency`` threads; latency of the 200s, 429s and errors."""
    result = Result(name, concurrency, workers)
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                started = time.perf_counter()
                try:
                    r = call(http, i)
                    status = r.status_code
                except httpx.HTTPError:
                    status = -1
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    if status == 200:
                        result.latencies_ms.append(elapsed)
                    elif status == 429:
                        result.shed_429 += 1
                    else:
                        result.errors += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for _ in range(concurrency):
            pool.submit(worker)
    result.wall_s = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--titles", type=int, default=5000)
    parser.add_argument(
        "--users", type=int, default=700, help="distinct users; >= requests x levels: all cold"
    )
    parser.add_argument("--requests", type=int, default=200, help="per endpoint and level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1], help="worker counts to compare, e.g. 1 2"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="interleaved rounds over all servers (see docstring)"
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    args.users = max(args.users, args.requests * len(args.concurrency) * args.rounds)
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="mg-bench-") as tmp:
        root = Path(tmp)
        console.print(f"building a synthetic world: {args.titles} titles, {args.users} users")
        settings = build_world(root, args.titles, args.users, args.seed)
        secret = secrets.token_hex(32)
        env = {k: v for k, v in os.environ.items() if k != "GEMINI_API_KEY"}
        env[SECRET_ENV] = secret
        tokens = [
            issue_token(settings, f"u{u}", sorted(SCOPES), 60, secret=secret.encode())
            for u in range(args.users)
        ]
        results: list[Result] = []
        if args.rounds == 1:
            for workers in args.workers:
                with serve(root, settings, workers, env) as base:
                    results += measure(base, workers, tokens, args)
        else:
            with contextlib.ExitStack() as stack:
                bases = {
                    w: stack.enter_context(serve(root, settings, w, env)) for w in args.workers
                }
                for rnd in range(args.rounds):
                    order = args.workers if rnd % 2 == 0 else args.workers[::-1]
                    for workers in order:
                        results += measure(bases[workers], workers, tokens, args, rnd)
    report(results, args)


def write_overlay(root: Path, settings: Settings, name: str, port: int, workers: int) -> Path:
    """``root/<name>.yaml``: the world's paths, ``port`` on loopback, ``workers``, limits raised
    out of the way."""
    overlay = root / f"{name}.yaml"
    overlay.write_text(
        yaml.safe_dump(
            {
                "paths": {k: str(v) for k, v in settings.paths.model_dump().items()},
                "serving": {
                    "host": "127.0.0.1",
                    "port": port,
                    "workers": workers,
                    "anonymous_per_minute": 10_000_000,
                    "authenticated_per_minute": 10_000_000,
                },
            }
        )
    )
    return overlay


@contextlib.contextmanager
def serve(root: Path, settings: Settings, workers: int, env: dict[str, str]) -> Iterator[str]:
    """A server with ``workers`` workers on a free loopback port; yields its base URL."""
    port = free_port()
    overlay = write_overlay(root, settings, f"bench-{workers}", port, workers)
    settings = load_settings(overlay)
    proc = start_server(settings, [overlay], env=env, log_file=root / f"server-{workers}.log")
    base = f"http://127.0.0.1:{port}"
    try:
        ready_s = wait_ready(proc, base, timeout_s=300, workers=workers)
        console.print(f"{workers} worker(s): server ready after {ready_s:.1f} s on {base}")
        yield base
    finally:
        stop_server(proc)


def measure(
    base: str, workers: int, tokens: list[str], args: argparse.Namespace, rnd: int = 0
) -> list[Result]:
    """Run every concurrency level against the server at ``base`` (round ``rnd``)."""
    results: list[Result] = []

    def livez(http: httpx.Client, i: int) -> httpx.Response:
        return http.get("/livez")

    def search(http: httpx.Client, i: int) -> httpx.Response:
        u = i % args.users
        body = {
            "query": QUERIES[i % len(QUERIES)] + f" {i}",  # distinct: no cache hits
            "filters": {"country": "US"},
            "limit": 20,
        }
        return http.post("/search", json=body, headers={"Authorization": f"Bearer {tokens[u]}"})

    def recommend(http: httpx.Client, i: int) -> httpx.Response:
        u = i % args.users
        return http.post(
            "/recommend",
            json={"user": f"u{u}", "limit": 10},
            headers={"Authorization": f"Bearer {tokens[u]}"},
        )

    if rnd == 0:
        for _ in range(workers):  # first calls pay one-off costs, in every worker
            with httpx.Client(base_url=base, timeout=30) as http:
                for warm in (search, recommend):
                    for i in range(3):
                        warm(http, args.users - 1 - i)
    for level, c in enumerate(args.concurrency):
        # each level (and round) asks for other users, so per-user caches warmed earlier do
        # not flatter it (with --users >= requests x levels x rounds every request is cold)
        offset = (rnd * len(args.concurrency) + level) * args.requests

        def shifted(call: Call, off: int = offset) -> Call:
            return lambda http, i: call(http, i + off)

        for name, call in (
            ("/livez", livez),
            ("/search", shifted(search)),
            ("/recommend", shifted(recommend)),
        ):
            result = run_load(base, name, call, c, args.requests, workers)
            result.round = rnd
            results.append(result)
    return results


def pooled(results: list[Result]) -> list[Result]:
    """One result per (workers, endpoint, concurrency): latencies, counts and wall time summed over
    the rounds (so req/s is the mean rate over every round)."""
    merged: dict[tuple[int, str, int], Result] = {}
    for r in results:
        key = (r.workers, r.endpoint, r.concurrency)
        m = merged.setdefault(key, Result(r.endpoint, r.concurrency, r.workers))
        m.latencies_ms += r.latencies_ms
        m.shed_429 += r.shed_429
        m.errors += r.errors
        m.wall_s += r.wall_s
    return list(merged.values())


def cells(row: Sequence[float]) -> list[str]:
    """Two latencies (ms) then ratios."""
    return [f"{x:.1f}" for x in row[:2]] + [f"{x:.2f}x" for x in row[2:]]


def report_rounds(results: list[Result], args: argparse.Namespace) -> None:
    """Per round and concurrency: each endpoint's p50 over ``/livez``'s p50 on the same server and,
    with several worker counts, throughput over one worker's in the same round; then medians."""
    table = Table(title="per round (ratios within one round), median last")
    for col in ("round", "conc", "workers", "/livez p50 ms", "/recommend p50 ms",
                "/recommend p50 / livez", "/search p50 / livez",
                "/recommend req/s vs 1 worker", "/search req/s vs 1 worker"):  # fmt: skip
        table.add_column(col, justify="right")
    by = {(r.round, r.workers, r.endpoint, r.concurrency): r for r in results}
    columns: dict[tuple[int, int], list[list[float]]] = {}
    for rnd in range(args.rounds):
        for c in args.concurrency:
            for w in args.workers:
                livez = by[(rnd, w, "/livez", c)].pct(50)
                row = [livez, by[(rnd, w, "/recommend", c)].pct(50)]
                row += [by[(rnd, w, e, c)].pct(50) / livez for e in ("/recommend", "/search")]
                for e in ("/recommend", "/search"):
                    one = by.get((rnd, 1, e, c))
                    row.append(by[(rnd, w, e, c)].throughput / one.throughput if one else math.nan)
                columns.setdefault((c, w), []).append(row)
                table.add_row(str(rnd), str(c), str(w), *cells(row))
    for (c, w), rows in columns.items():
        med = np.median(np.asarray(rows), axis=0)
        table.add_row("median", str(c), str(w), *(f"[bold]{x}[/]" for x in cells(med)))
    console.print(table)


def report(results: list[Result], args: argparse.Namespace) -> None:
    if args.rounds > 1:
        report_rounds(results, args)
        results = pooled(results)
    table = Table(title=f"serving benchmark ({args.titles} titles, {args.requests} requests each)")
    for col in ("workers", "endpoint", "conc", "ok", "429", "errors", "p50 ms", "p95 ms", "p99 ms",
                "req/s", "p50 / livez"):  # fmt: skip
        table.add_column(col, justify="right")
    baseline = {(r.workers, r.concurrency): r.pct(50) for r in results if r.endpoint == "/livez"}
    for r in results:
        base = baseline.get((r.workers, r.concurrency))
        ratio = r.pct(50) / base if base else float("nan")
        table.add_row(
            str(r.workers),
            r.endpoint,
            str(r.concurrency),
            str(len(r.latencies_ms)),
            str(r.shed_429),
            str(r.errors),
            f"{r.pct(50):.1f}",
            f"{r.pct(95):.1f}",
            f"{r.pct(99):.1f}",
            f"{r.throughput:.1f}",
            f"{ratio:.1f}x",
        )
    console.print(table)
    if len(args.workers) > 1:
        scale = Table(title="throughput with N workers / one worker (same concurrency)")
        for col in ("workers", "endpoint", "conc", "req/s", "req/s with 1", "ratio"):
            scale.add_column(col, justify="right")
        one = {(r.endpoint, r.concurrency): r.throughput for r in results if r.workers == 1}
        for r in results:
            if r.workers == 1 or (r.endpoint, r.concurrency) not in one:
                continue
            single = one[(r.endpoint, r.concurrency)]
            scale.add_row(
                str(r.workers),
                r.endpoint,
                str(r.concurrency),
                f"{r.throughput:.1f}",
                f"{single:.1f}",
                f"{r.throughput / single:.2f}x",
            )
        console.print(scale)
    if any(r.errors for r in results):
        raise SystemExit("some requests failed (see the errors column)")


if __name__ == "__main__":
    main()
