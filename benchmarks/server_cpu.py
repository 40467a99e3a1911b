"""Server CPU per request of this tree against a git revision: two servers, interleaved rounds.

Builds the serving benchmark's synthetic world (``benchmarks/serving.py``: 5,000 titles, an EASE
champion), starts two servers on it side by side, one from ``--baseline REV`` (exported with
``git archive`` into a temporary folder) and one from this tree, each with ``--workers`` workers,
and loads them in alternating turns: ``/livez``, a cached ``/recommend`` (20 users asked again and
again) and a cold one (users never asked before). The CPU a server spent on a turn is read from
``/proc`` for its whole process tree (``utime + stime``), so the load generator's own CPU is not
counted; the table gives the median CPU per request of each server and the median of the per-turn
ratios (this tree / baseline) with their quartiles.

Why not latency: on these 2-core machines latency under load moves by 30 % within minutes, and
the load generator competes with the servers for the cores. CPU per request measured in turns that
alternate between the two servers is what a code change moves; the latency benchmark
(``benchmarks/serving.py``) says what that buys.

    .venv/bin/python benchmarks/server_cpu.py --baseline 7301ef2
    .venv/bin/python benchmarks/server_cpu.py --baseline HEAD --rounds 12 --concurrency 4
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
import contextlib
import io
import os
import secrets
import statistics
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence

import httpx
import psutil
from _serving_world import build_world, serving_benchmark
from rich.console import Console
from rich.table import Table

from core.settings import Settings, load_settings
from serving.auth import SCOPES, SECRET_ENV, issue_token
from serving.run import (
    PROJECT_ROOT,
    free_port,
    server_command,
    server_env,
    stop_server,
    wait_ready,
)

console = Console(width=120)
CACHED_USERS = 20
WARM_USERS = 60


def export_revision(rev: str, into: Path) -> Path:
    """The tree of git revision ``rev`` in ``into`` (``git archive``, no worktree left behind)."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev], cwd=PROJECT_ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and every descendant alive now."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


@contextlib.contextmanager
def server(
    code: Path, root: Path, settings: Settings, tag: str, workers: int, env: dict[str, str]
) -> Iterator[tuple[str, int]]:
    """A server of the tree at ``code`` on a free loopback port; yields (base URL, pid)."""
    port = free_port()
    overlay = serving_benchmark().write_overlay(root, settings, f"server-cpu-{tag}", port, workers)
    command = server_command(load_settings(overlay))
    command[command.index("--working-dir") + 1] = str(code)
    proc_env = server_env([overlay], env, workers=workers)
    proc_env["PYTHONPATH"] = str(code)  # this tree's packages before the editable install's
    with open(root / f"server-cpu-{tag}.log", "ab") as log:
        proc = subprocess.Popen(
            command, env=proc_env, cwd=code, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, base, timeout_s=300, workers=workers)
        yield base, proc.pid
    finally:
        stop_server(proc)


def run_load(
    base: str, call: Callable[[httpx.Client, int], httpx.Response], ids: Sequence[int], conc: int
) -> int:
    """One request per id from ``conc`` threads (benchmarks/serving.py's ``run_load``); returns
    how many were sent. Raises if any was not answered 200."""
    result = serving_benchmark().run_load(
        base, "load", lambda http, i: call(http, ids[i]), conc, len(ids)
    )
    if result.errors or result.shed_429:
        raise RuntimeError(f"{result.errors} errors and {result.shed_429} 429s from {base}")
    return len(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--cold", type=int, default=120, help="cold /recommend users per turn")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--titles", type=int, default=5000)
    args = parser.parse_args()
    users = 2 * args.rounds * args.cold + WARM_USERS + CACHED_USERS

    with tempfile.TemporaryDirectory(prefix="mg-server-cpu-") as tmp:
        root = Path(tmp)
        console.print(f"building a synthetic world: {args.titles} titles, {users} users")
        settings = build_world(root / "world", args.titles, users, 42)
        baseline = export_revision(args.baseline, root / "baseline")
        secret = secrets.token_hex(32)
        env = {k: v for k, v in os.environ.items() if k != "GEMINI_API_KEY"}
        env[SECRET_ENV] = secret
        tokens = [
            issue_token(settings, f"u{u}", sorted(SCOPES), 60, secret=secret.encode())
            for u in range(users)
        ]

        def recommend(http: httpx.Client, u: int) -> httpx.Response:
            return http.post(
                "/recommend",
                json={"user": f"u{u}", "limit": 10},
                headers={"Authorization": f"Bearer {tokens[u]}"},
            )

        def livez(http: httpx.Client, _: int) -> httpx.Response:
            return http.get("/livez")

        cached_ids = [users - 1 - i % CACHED_USERS for i in range(300)]
        warm_ids = range(users - CACHED_USERS - WARM_USERS, users - CACHED_USERS)
        trees = {args.baseline: baseline, "this tree": PROJECT_ROOT}
        per: dict[tuple[str, str], list[float]] = {}
        with contextlib.ExitStack() as stack:
            servers = {
                name: stack.enter_context(
                    server(code, root, settings, f"s{i}", args.workers, env)
                )
                for i, (name, code) in enumerate(trees.items())
            }  # fmt: skip
            for base, _ in servers.values():
                run_load(base, recommend, warm_ids, args.concurrency)
                run_load(base, recommend, cached_ids[:CACHED_USERS], args.concurrency)
            next_cold = 0
            for rnd in range(args.rounds):
                order = list(servers) if rnd % 2 == 0 else list(reversed(servers))
                for what in ("/livez", "cached /recommend", "cold /recommend"):
                    for name in order:
                        base, pid = servers[name]
                        if what == "cold /recommend":
                            ids: Sequence[int] = range(next_cold, next_cold + args.cold)
                            next_cold += args.cold
                        else:
                            ids = range(600) if what == "/livez" else cached_ids
                        call = livez if what == "/livez" else recommend
                        before = tree_cpu_seconds(pid)
                        sent = run_load(base, call, ids, args.concurrency)
                        spent = tree_cpu_seconds(pid) - before
                        per.setdefault((name, what), []).append(spent / sent * 1000)
                console.print(f"round {rnd + 1}/{args.rounds} done")

    table = Table(
        title=f"server CPU per request: this tree vs {args.baseline} ({args.workers} worker(s), "
        f"concurrency {args.concurrency}, {args.rounds} interleaved rounds)"
    )
    for col in ("request", f"{args.baseline} ms", "this tree ms", "ratio median", "q25", "q75"):
        table.add_column(col, justify="right")
    for what in ("/livez", "cached /recommend", "cold /recommend"):
        old, new = per[(args.baseline, what)], per[("this tree", what)]
        ratios = [n / o for n, o in zip(new, old, strict=True)]
        q = statistics.quantiles(ratios, n=4)
        table.add_row(
            what,
            f"{statistics.median(old):.3f}",
            f"{statistics.median(new):.3f}",
            f"{statistics.median(ratios):.3f}x",
            f"{q[0]:.3f}",
            f"{q[2]:.3f}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
