"""CPU of a cold ``/recommend`` in-process: the ranker alone and the whole gateway operation.

Builds the serving benchmark's synthetic world (``benchmarks/serving.py``: 5,000 titles with
random unit vectors and offers, an EASE champion), loads it as a worker does (``build_gateway``,
heap frozen) and times cold requests (users never asked before, so no cached personal scores) by
process CPU time, in batches of ``--batch`` users.

``--compare REV`` builds a second ``HybridRanker`` from that git revision's
``models/ranking/ranker.py`` and ``models/ranking/explain.py`` over the same catalogue and model,
and times the two rankers in alternating batches: the speed of these machines drifts by 30 % within
minutes, so only ratios of interleaved batches are worth comparing. It also counts users whose
results differ: in their titles or their order, in a score only (and the largest such change),
or only in their explanations.

    .venv/bin/python benchmarks/recommend_cpu.py
    .venv/bin/python benchmarks/recommend_cpu.py --compare f75aca8
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
import logging
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from _serving_world import build_world
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
console = Console(width=120)
T = TypeVar("T")


def ranker_class_at(rev: str, folder: Path) -> type:
    """``HybridRanker`` as of git revision ``rev`` (its ranker and explain modules, the rest current)."""
    for name in ("explain", "ranker"):
        source = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{rev}:models/ranking/{name}.py"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        source = source.replace(
            "from models.ranking.explain import", "from compared_explain import"
        )
        (folder / f"compared_{name}.py").write_text(source)
    sys.path.insert(0, str(folder))
    import compared_ranker  # type: ignore[import-not-found]

    return compared_ranker.HybridRanker


def cpu_per_call(calls: list[Callable[[], T]]) -> tuple[float, list[T]]:
    """Process CPU ms per call over ``calls``, and their results."""
    start = time.process_time()
    results = [call() for call in calls]
    return (time.process_time() - start) / len(calls) * 1000, results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--titles", type=int, default=5000)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=25, help="users per timed batch")
    parser.add_argument("--batches", type=int, default=40, help="batches per ranker")
    parser.add_argument(
        "--compare", metavar="REV", help="git revision whose ranker to time against"
    )
    args = parser.parse_args(argv)
    if args.batch * args.batches + 20 > args.users:
        parser.error("--users must exceed --batch x --batches + 20 (every user is asked once)")
    logging.disable(logging.INFO)

    from serving.auth import SCOPES, Principal
    from serving.gateway import availability_filter, build_gateway, freeze_long_lived
    from serving.schemas import RecommendRequest
    from serving.userdata import effective_profile

    with tempfile.TemporaryDirectory() as tmp:
        with console.status("building the synthetic world and loading it"):
            settings = build_world(Path(tmp), args.titles, args.users, 42)
            gateway = build_gateway(settings, poll_s=3600, secret=b"x" * 32)
            gateway.holder.wait_ready(600)
            freeze_long_lived()
        current = gateway.state.ranker
        rankers = {"current": current}
        if args.compare:
            cls = ranker_class_at(args.compare, Path(tmp))
            rankers[args.compare] = cls(current.catalog, current.collaborative, current.weights)

        def inputs(user: str) -> tuple:
            history, weights = gateway.holder.history(user)
            return history, weights, availability_filter(effective_profile(gateway.folder, user))

        users = [f"u{u}" for u in range(args.users)]
        warm, timed = users[:20], users[20 : 20 + args.batch * args.batches]
        for ranker in rankers.values():
            for h, w, av in map(inputs, warm):
                ranker.recommend(h, w, k=10, availability=av)
        per: dict[str, list[float]] = {name: [] for name in rankers}
        titles_differ = scores_differ = explanation_differs = 0
        largest_score_change = 0.0
        for b in range(args.batches):
            batch = [inputs(u) for u in timed[b * args.batch : (b + 1) * args.batch]]
            names = list(rankers) if b % 2 == 0 else list(reversed(rankers))
            results = {}
            for name in names:
                ms, results[name] = cpu_per_call(
                    [
                        partial(rankers[name].recommend, h, w, k=10, availability=av)
                        for h, w, av in batch
                    ]
                )
                per[name].append(ms)
            if args.compare:
                for a, c in zip(results["current"], results[args.compare], strict=True):
                    if [r.title_id for r in a] != [r.title_id for r in c]:
                        titles_differ += 1
                    elif [r.score for r in a] != [r.score for r in c]:
                        scores_differ += 1
                        largest_score_change = max(
                            largest_score_change,
                            *(abs(x.score - y.score) for x, y in zip(a, c, strict=True)),
                        )
                    elif [r.model_dump() for r in a] != [r.model_dump() for r in c]:
                        explanation_differs += 1

        principal_of = {u: Principal(subject=u, scopes=frozenset(SCOPES)) for u in users}
        gateway_ms = []
        rest = users[20 + args.batch * args.batches :]
        for b in range(0, len(rest) - args.batch + 1, args.batch):
            chunk = rest[b : b + args.batch]
            ms, _ = cpu_per_call(
                [
                    partial(
                        gateway.recommend,
                        RecommendRequest(user=u, limit=10),
                        principal_of[u],
                        "http://x",
                    )
                    for u in chunk
                ]
            )
            gateway_ms.append(ms)

    table = Table(
        title=f"cold /recommend CPU in-process ({args.titles} titles, batches of {args.batch})"
    )
    for col in ("what", "median ms", "q25 ms", "q75 ms", "batches"):
        table.add_column(col, justify="right")
    for name, values in per.items():
        q = statistics.quantiles(values, n=4)
        table.add_row(
            f"ranker ({name})",
            *(f"{v:.2f}" for v in (statistics.median(values), q[0], q[2])),
            str(len(values)),
        )
    if len(gateway_ms) >= 2:
        q = statistics.quantiles(gateway_ms, n=4)
        table.add_row(
            "Gateway.recommend (current)",
            *(f"{v:.2f}" for v in (statistics.median(gateway_ms), q[0], q[2])),
            str(len(gateway_ms)),
        )
    console.print(table)
    if args.compare:
        ratios = [c / o for c, o in zip(per["current"], per[args.compare], strict=True)]
        q = statistics.quantiles(ratios, n=4)
        console.print(
            f"ranker CPU current / {args.compare}, interleaved batches: median "
            f"{statistics.median(ratios):.3f} (q25 {q[0]:.3f}, q75 {q[2]:.3f}). Of {len(timed)} "
            f"users, {titles_differ} have other titles or another order; {scores_differ} the same "
            f"titles with some other score (largest change {largest_score_change:.1e}); "
            f"{explanation_differs} only another explanation"
        )


if __name__ == "__main__":
    main()
