"""Load: 32 concurrent clients for 60 s across search, recommend and feedback on a real server.

Builds the synthetic world of ``benchmarks/serving.py`` (``--titles`` titles, ``--users`` users, an
EASE champion), starts ``bentoml serve`` on a free 127.0.0.1 port with the production rate limits
of ``configs/base.yaml`` (override with ``--anonymous-per-minute``/``--authenticated-per-minute``),
then runs ``--clients`` client threads for ``--seconds``. Client ``i`` plays one role, in turn:
anonymous search (every anonymous client shares the loopback address, so their bucket empties
first), authenticated search, recommend, feedback; each authenticated client is its own user.

Reported per role: requests, 200s, 429s (intended: the per-caller rate limit, or the service's
concurrency cap shedding load), errors (anything else, including transport errors), p50/p95/p99 of
the 200s and throughput; and the server's resident memory (the whole ``bentoml serve`` process
tree) before the load (after a warm-up), at its peak and after. Exits non-zero on any error.

    .venv/bin/python benchmarks/load.py                      # 32 clients x 60 s
    .venv/bin/python benchmarks/load.py --seconds 20 --clients 8

``tests/serving/test_fuzz_and_load.py`` runs the same driver (:func:`run_mixed_load`) for 20 s
against the test world. Loopback only; every client loop is bounded by ``--seconds`` and by
``--max-requests`` per client, with a per-request timeout.
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    # benchmarks/serving.py would shadow the `serving` package: the project root goes first, this
    # folder last (for _serving_world)
    sys.path.append(sys.path.pop(0))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import itertools
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
import numpy as np
import psutil

ROLES = ("anonymous search", "search", "recommend", "feedback")
QUERIES = [
    "funny movies for a family night",
    "dark thriller under 2 hours",
    "space adventure like Interstellar",
    "romantic comedy from the 90s",
    "scary films",
    "documentary about nature",
    "something exciting with heists",
    "animated films for kids",
]
MiB = 1024 * 1024


@dataclass
class RoleStats:
    role: str
    latencies_ms: list[float] = field(default_factory=list)
    limited_429: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + self.limited_429 + len(self.errors)

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")


@dataclass
class LoadReport:
    roles: dict[str, RoleStats]
    wall_s: float
    clients: int
    rss_before: int
    rss_peak: int
    rss_after: int

    @property
    def errors(self) -> list[str]:
        return [e for s in self.roles.values() for e in s.errors]

    def pct(self, q: float) -> float:
        every = [ms for s in self.roles.values() for ms in s.latencies_ms]
        return float(np.percentile(every, q)) if every else float("nan")

    def table(self) -> str:
        """Plain-text table (the test prints it; the script prints it too)."""
        head = f"{'role':<17}{'requests':>9}{'200':>7}{'429':>7}{'errors':>7}"
        head += f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'req/s':>8}"
        lines = [head]
        for s in self.roles.values():
            lines.append(
                f"{s.role:<17}{s.requests:>9}{len(s.latencies_ms):>7}{s.limited_429:>7}"
                f"{len(s.errors):>7}{s.pct(50):>9.1f}{s.pct(95):>9.1f}{s.pct(99):>9.1f}"
                f"{s.requests / self.wall_s:>8.1f}"
            )
        total = sum(s.requests for s in self.roles.values())
        ok = sum(len(s.latencies_ms) for s in self.roles.values())
        limited = sum(s.limited_429 for s in self.roles.values())
        lines.append(
            f"{'all':<17}{total:>9}{ok:>7}{limited:>7}{len(self.errors):>7}"
            f"{self.pct(50):>9.1f}{self.pct(95):>9.1f}{self.pct(99):>9.1f}"
            f"{total / self.wall_s:>8.1f}"
        )
        lines.append(
            f"{self.clients} clients, {self.wall_s:.1f} s; server RSS before "
            f"{self.rss_before / MiB:.0f} MiB, peak {self.rss_peak / MiB:.0f} MiB, "
            f"after {self.rss_after / MiB:.0f} MiB"
        )
        return "\n".join(lines)


def tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants (bytes)."""
    root = psutil.Process(pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def _request(
    http: httpx.Client, role: str, i: int, user: str, token: str, content_ids: Sequence[str]
) -> httpx.Response:
    auth = {"Authorization": f"Bearer {token}"}
    query = f"{QUERIES[i % len(QUERIES)]} {i}"  # distinct texts: the search cache does not help
    if role == "anonymous search":
        return http.post("/search", json={"query": query, "limit": 10})
    if role == "search":
        body = {"query": query, "limit": 10, "user": user, "filters": {"country": "US"}}
        return http.post("/search", json=body, headers=auth)
    if role == "recommend":
        return http.post("/recommend", json={"user": user, "limit": 10}, headers=auth)
    body = {
        "user": user,
        "content_id": content_ids[i % len(content_ids)],
        "rating": float(1 + i % 5),
        "watched": True,
    }
    return http.post("/feedback", json=body, headers=auth)


def run_mixed_load(
    base: str,
    server_pid: int,
    users: Sequence[tuple[str, str]],
    content_ids: Sequence[str],
    *,
    clients: int = 32,
    seconds: float = 60.0,
    max_requests: int = 100_000,
) -> LoadReport:
    """``clients`` threads for ``seconds`` (each at most ``max_requests`` calls); ``users`` are
    ``(user id, token)`` pairs, one per authenticated client (reused round-robin)."""
    stats = {role: RoleStats(role) for role in ROLES}
    lock = threading.Lock()
    stop = threading.Event()
    peak = [tree_rss(server_pid)]
    rss_before = peak[0]

    def sample_memory() -> None:
        while not stop.wait(0.5):
            rss = tree_rss(server_pid)
            with lock:
                peak[0] = max(peak[0], rss)

    def client(index: int, deadline: float) -> None:
        role = ROLES[index % len(ROLES)]
        user, token = users[index % len(users)]
        own = stats[role]
        with httpx.Client(base_url=base, timeout=30) as http:
            for i in itertools.count():
                if i >= max_requests or time.monotonic() >= deadline:
                    return
                started = time.perf_counter()
                try:
                    r = _request(http, role, index * max_requests + i, user, token, content_ids)
                    status, detail = r.status_code, r.text[:200]
                except httpx.HTTPError as exc:
                    status, detail = -1, f"{type(exc).__name__}: {exc}"
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    if status == 200:
                        own.latencies_ms.append(elapsed)
                    elif status == 429:
                        own.limited_429 += 1
                    else:
                        own.errors.append(f"{role}: {status} {detail}")

    sampler = threading.Thread(target=sample_memory, daemon=True)
    sampler.start()
    started = time.monotonic()
    deadline = started + seconds
    threads = [threading.Thread(target=client, args=(c, deadline)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    stop.set()
    sampler.join()
    rss_after = tree_rss(server_pid)
    return LoadReport(stats, wall, clients, rss_before, max(peak[0], rss_after), rss_after)


def warm_up(base: str, users: Sequence[tuple[str, str]], content_ids: Sequence[str]) -> None:
    """One call per role, so one-off costs (first encoder call, model load) are not in the load."""
    with httpx.Client(base_url=base, timeout=60) as http:
        user, token = users[0]
        for i, role in enumerate(ROLES):
            _request(http, role, i, user, token, content_ids)


def main() -> None:
    import yaml
    from _serving_world import build_world  # this folder is on sys.path when run as a script

    from core.settings import load_settings
    from serving.auth import SCOPES, SECRET_ENV, issue_token
    from serving.run import free_port, start_server, stop_server, wait_ready

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--max-requests", type=int, default=100_000, help="per client")
    parser.add_argument("--titles", type=int, default=5000)
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--anonymous-per-minute", type=int, default=None)
    parser.add_argument("--authenticated-per-minute", type=int, default=None)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mg-load-") as tmp:
        root = Path(tmp)
        print(f"building a synthetic world: {args.titles} titles, {args.users} users", flush=True)
        settings = build_world(root, args.titles, args.users, args.seed)
        port = free_port()
        serving: dict = {"host": "127.0.0.1", "port": port}
        if args.anonymous_per_minute:
            serving["anonymous_per_minute"] = args.anonymous_per_minute
        if args.authenticated_per_minute:
            serving["authenticated_per_minute"] = args.authenticated_per_minute
        overlay = root / "load.yaml"
        paths = {k: str(v) for k, v in settings.paths.model_dump().items()}
        overlay.write_text(yaml.safe_dump({"paths": paths, "serving": serving}))
        settings = load_settings(overlay)
        secret = secrets.token_hex(32)
        env = {k: v for k, v in os.environ.items() if k != "GEMINI_API_KEY"}
        env[SECRET_ENV] = secret
        users = [
            (f"u{u}", issue_token(settings, f"u{u}", sorted(SCOPES), 60, secret=secret.encode()))
            for u in range(args.users)
        ]
        content_ids = [f"movie:{i + 1}" for i in range(args.titles)]
        proc = start_server(settings, [overlay], env=env, log_file=root / "server.log")
        base = f"http://127.0.0.1:{port}"
        try:
            print(f"server ready after {wait_ready(proc, base):.1f} s on {base}", flush=True)
            warm_up(base, users, content_ids)
            report = run_mixed_load(
                base,
                proc.pid,
                users,
                content_ids,
                clients=args.clients,
                seconds=args.seconds,
                max_requests=args.max_requests,
            )
        finally:
            stop_server(proc)
    s = settings.serving
    print(
        f"\nmixed load, {args.titles} titles, limits {s.anonymous_per_minute}/min anonymous, "
        f"{s.authenticated_per_minute}/min per user\n"
    )
    print(report.table())
    for error in report.errors[:10]:
        print("error:", error)
    if report.errors:
        raise SystemExit(f"{len(report.errors)} requests failed")


if __name__ == "__main__":
    main()
