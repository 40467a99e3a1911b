"""Content search at scale: the LanceDB ANN index against exact numpy, and /search at 10k vs 100k.

Vectors: MiniLM embeddings of the public catalogues in the shared data folder, grown synthetically
to the wanted size (``_catalog_vectors.py``). Queries are held-out synthetic titles (never in the
table) plus the parser test queries encoded with the query encoder.

Table 1, the curve (``--sizes``'s largest size): for each index type and query setting,
recall@10 against exact numpy (``matrix @ q`` + argpartition over the same float32 matrix) and the
p50 latency of ``ContentIndex.search`` (title ids only) as a ratio to exact numpy's p50, measured
in the same run, queries interleaved. The "flat" row is LanceDB without an index.

Table 2, /search: the serving search (``models.ranking.search.search``: query encoding, hard
filters, retrieval, scoring, one page of hits with offers, what ``POST /search`` runs after
parsing) on a synthetic catalogue of each size, written through the pipeline's
``write_content_index`` (so the large one carries the index), with and without filters. Goal: p50
at 100k <= 1.5x p50 at 10k.

    .venv/bin/python benchmarks/search_index.py --skip-serving --queries 100 --repeat 1
    .venv/bin/python benchmarks/search_index.py --skip-curve --repeat 3
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    # benchmarks/serving.py would shadow the `serving` package: the project root goes first (the
    # editable install's finder comes after every sys.path entry, so moving this folder to the
    # end is not enough), this folder last (for _catalog_vectors)
    sys.path.append(sys.path.pop(0))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import polars as pl
from _catalog_vectors import real_vectors, synthetic_catalogue
from rich.console import Console
from rich.table import Table

from core.vector_index import (
    ANN_INDEX,
    AnnIndex,
    ContentIndex,
    build_content_rows,
    write_content_index,
)
from models.embeddings.encoder import EMBEDDING_DIM, encode_texts

console = Console(width=120)
GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance", "Science Fiction", "Thriller",
          "Animation", "Family", "Documentary", "Crime", "Fantasy"]  # fmt: skip
PROVIDERS = [("netflix", "Netflix"), ("hulu", "Hulu"), ("disneyplus", "Disney Plus"),
             ("amazon", "Amazon Video")]  # fmt: skip
CURVE: list[tuple[str, AnnIndex, list[tuple[int, int | None, int | None]]]] = [
    ("IVF_FLAT", AnnIndex("IVF_FLAT", 0, rows_per_partition=1024),
     [(10, None, None), (20, None, None), (40, None, None)]),
    ("IVF_FLAT", AnnIndex("IVF_FLAT", 0, rows_per_partition=4096),
     [(4, None, None), (8, None, None)]),
    ("IVF_SQ", AnnIndex("IVF_SQ", 0, rows_per_partition=4096),
     [(4, None, None), (8, 5, None), (12, 5, None)]),
    ("IVF_PQ", AnnIndex("IVF_PQ", 0, rows_per_partition=1024),
     [(20, 10, None), (40, 20, None), (40, 40, None), (60, 40, None)]),
    ("IVF_HNSW_SQ", AnnIndex("IVF_HNSW_SQ", 0, rows_per_partition=4096),
     [(4, None, None), (8, None, None), (8, None, 100), (8, 5, 100), (12, None, 200),
      (12, 5, 200)]),
    ("HNSW_SQ", AnnIndex("IVF_HNSW_SQ", 1, rows_per_partition=1 << 40),
     [(1, None, 50), (1, None, 100), (1, None, 200), (1, 2, 100), (1, 2, 200)]),
    ("IVF_HNSW_FLAT", AnnIndex("IVF_HNSW_FLAT", 0, rows_per_partition=4096),
     [(4, None, 100), (8, None, 50), (8, None, 100), (8, None, 200), (12, None, 100),
      (12, None, 200)]),
    ("HNSW_FLAT", AnnIndex("IVF_HNSW_FLAT", 1, rows_per_partition=1 << 40),
     [(1, None, 50), (1, None, 100), (1, None, 150), (1, None, 200), (1, None, 300)]),
]  # fmt: skip
"""(label, index, settings): each index is built once and queried with each (nprobes,
refine_factor, ef) setting. HNSW_* is IVF_HNSW_* with a single partition (plain HNSW)."""


def query_vectors(real: np.ndarray, n_synthetic: int) -> np.ndarray:
    from tests.serving.test_local_parser import CASES

    held_out = synthetic_catalogue(real, len(real) + n_synthetic, seed=99)[len(real) :]
    texts = encode_texts([q for q, _ in CASES])
    return np.vstack([held_out, texts]).astype(np.float32)


def exact_top(matrix: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    scores = matrix @ q
    top = np.argpartition(-scores, k)[:k]
    return top[np.argsort(-scores[top])]


def _p50(times: list[float]) -> float:
    return statistics.median(times) * 1000


def write_vectors(root: Path, vectors: np.ndarray, ann: AnnIndex | None) -> ContentIndex:
    """A content table of bare synthetic titles with ``vectors`` (indexed with ``ann`` if given)."""
    n = len(vectors)
    ids = [f"movie:{i}" for i in range(n)]
    titles = pl.DataFrame({"title_id": ids, "title": ids, "type": ["movie"] * n})
    from core.schemas import conform

    rows = build_content_rows(
        conform(titles, "titles"),
        conform(pl.DataFrame({"title_id": []}, schema={"title_id": pl.String}), "availability"),
        pl.DataFrame({"title_id": ids, "vector": pl.Series(vectors)}),
    )
    write_content_index(root, rows, index_min_rows=0 if ann else n + 1, ann=ann or ANN_INDEX)
    return ContentIndex(root, ann=ann or ANN_INDEX)


def curve(vectors: np.ndarray, queries: np.ndarray, k: int, repeat: int, kinds: list[str]) -> Table:
    """Recall@k and latency ratio to exact numpy per index type and setting."""
    truth = [set(exact_top(vectors, q, k).tolist()) for q in queries]
    table = Table(title=f"LanceDB vs exact numpy, {len(vectors):,} x {EMBEDDING_DIM}, "
                  f"{len(queries)} queries, top-{k}")  # fmt: skip
    for col in ("index", "partitions", "nprobes", "refine", "ef", "build s", f"recall@{k}",
                "p50 ms", "exact p50 ms", "ratio"):  # fmt: skip
        table.add_column(col, justify="left" if col == "index" else "right")
    plans: list[tuple[str, AnnIndex | None, list[tuple[int, int | None, int | None]]]] = []
    if "flat" in kinds:
        plans.append(("flat (no index)", None, [(0, None, None)]))
    plans += [(label, ann, settings) for label, ann, settings in CURVE if label in kinds]
    for label, ann, settings in plans:
        with tempfile.TemporaryDirectory(prefix="search-index-") as tmp:
            started = time.perf_counter()
            index = write_vectors(Path(tmp), vectors, ann)
            build = time.perf_counter() - started
            for nprobes, refine, ef in settings:
                if ann is not None:
                    index.ann = replace(ann, nprobes=nprobes, refine_factor=refine, ef=ef)
                found: list[set[int]] = []
                t_index: list[float] = []
                t_exact: list[float] = []
                for r in range(repeat):
                    for q in queries:
                        t0 = time.perf_counter()
                        hits = index.search(q, limit=k, columns=["title_id"])
                        t1 = time.perf_counter()
                        exact_top(vectors, q, k)
                        t2 = time.perf_counter()
                        t_index.append(t1 - t0)
                        t_exact.append(t2 - t1)
                        if r == 0:
                            found.append({int(t[6:]) for t in hits["title_id"].to_list()})
                recall = np.mean([len(f & t) / k for f, t in zip(found, truth, strict=True)])
                table.add_row(
                    label,
                    "-" if ann is None else str(ann.partitions(len(vectors))),
                    "-" if ann is None else str(nprobes),
                    str(refine or "-"),
                    str(ef or "-"),
                    f"{build:.1f}",
                    f"{recall:.4f}",
                    f"{_p50(t_index):.2f}",
                    f"{_p50(t_exact):.2f}",
                    f"{_p50(t_index) / _p50(t_exact):.2f}",
                )
                console.print(f"  {label} nprobes={nprobes} refine={refine} ef={ef}: "
                              f"recall {recall:.4f}, {_p50(t_index):.2f} ms "
                              f"(exact {_p50(t_exact):.2f} ms)")  # fmt: skip
    return table


def write_world(root: Path, vectors: np.ndarray, seed: int):
    """Lake titles + availability and the content index for ``vectors``; returns the catalogue."""
    from core.schemas import conform
    from models.ranking.catalog import Catalog

    rng = np.random.default_rng(seed)
    n = len(vectors)
    ids = [f"movie:{i + 1}" for i in range(n)]
    titles = conform(
        pl.DataFrame(
            {
                "title_id": ids,
                "tmdb_id": list(range(1, n + 1)),
                "type": ["series" if i % 5 == 0 else "movie" for i in range(n)],
                "title": [f"Title {i}" for i in range(n)],
                "year": rng.integers(1960, 2026, n).tolist(),
                "overview": [f"Synthetic overview {i}" for i in range(n)],
                "genres": [list(rng.choice(GENRES, 2, replace=False)) for _ in range(n)],
                "runtime": rng.integers(20, 180, n).tolist(),
                "language": ["en"] * n,
                "popularity": rng.pareto(1.5, n).tolist(),
                "vote_average": rng.uniform(3, 9, n).tolist(),
                "vote_count": rng.integers(10, 10_000, n).tolist(),
                "source": ["tmdb"] * n,
            }
        ),
        "titles",
    )
    now = datetime.now(UTC)
    has = rng.random((n, len(PROVIDERS))) < 0.3
    rows = [
        {
            "title_id": ids[i],
            "country": "US",
            "provider_id": pid,
            "provider_name": name,
            "monetization": "RENT" if pid == "amazon" else "FLATRATE",
            "deep_link": f"https://{pid}.example/{ids[i]}",
            "source": "justwatch",
            "last_seen": now,
        }
        for i, j in zip(*np.nonzero(has), strict=True)
        for pid, name in [PROVIDERS[j]]
    ]
    availability = conform(pl.DataFrame(rows), "availability")
    embeddings = pl.DataFrame({"title_id": ids, "vector": pl.Series(vectors)})
    write_content_index(root, build_content_rows(titles, availability, embeddings))
    index = ContentIndex(root)
    return Catalog.from_content_index(index, titles, availability), index


REQUESTS: list[tuple[str, dict]] = [
    ("funny movies for a family night", {}),
    ("dark thriller under 2 hours", {}),
    ("space adventure", {"country": "US", "services": ["netflix"]}),
    ("romantic comedy from the 90s", {}),
    ("scary films on netflix", {"country": "US"}),
    ("documentary about nature", {"content_type": "movie"}),
    ("something exciting with heists", {"country": "US"}),
    ("animated films for kids", {"genres": ["Animation"]}),
]
"""(query, filters): what /search is asked (the serving benchmark's queries, some filtered)."""


def serving_search(sizes: list[int], real: np.ndarray, repeat: int) -> Table:
    from models.ranking.search import SearchFilters, search
    from serving.nlu.local_parser import parse_local

    intents = [(parse_local(q), SearchFilters(**f)) for q, f in REQUESTS]
    table = Table(title="/search (parse_local + models.ranking.search.search), p50 per size")
    for col in ("titles", "index", "p50 ms", "p95 ms", "vs smallest"):
        table.add_column(col, justify="right")
    results: dict[int, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="search-serving-") as tmp:
        worlds = {}
        for n in sizes:
            started = time.perf_counter()
            worlds[n] = write_world(Path(tmp) / str(n), synthetic_catalogue(real, n, seed=n), n)
            console.print(f"  world of {n:,} titles in {time.perf_counter() - started:.0f}s")
            results[n] = []
        calls: list[tuple[int, Callable[[], object]]] = []
        for n, (catalog, index) in worlds.items():
            for intent, filters in intents:
                calls.append((n, lambda c=catalog, i=index, it=intent, f=filters: search(
                    c, i, it, f, limit=20)))  # fmt: skip
        for _, call in calls:
            call()  # warm-up (encoder, caches)
        for _ in range(repeat):
            for n, call in calls:
                t0 = time.perf_counter()
                call()
                results[n].append(time.perf_counter() - t0)
        base = _p50(results[sizes[0]])
        for n in sizes:
            times = results[n]
            table.add_row(
                f"{n:,}",
                "ANN" if worlds[n][1].indexed else "none",
                f"{_p50(times):.1f}",
                f"{np.percentile(times, 95) * 1000:.1f}",
                f"{_p50(times) / base:.2f}x",
            )
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=150, help="held-out synthetic queries")
    ap.add_argument("--repeat", type=int, default=3, help="passes over the queries")
    ap.add_argument("--skip-curve", action="store_true")
    ap.add_argument(
        "--kinds",
        nargs="+",
        default=["flat", *dict.fromkeys(label for label, _, _ in CURVE)],
        help="rows of the curve (labels of CURVE): flat = LanceDB without an index (IVF_PQ and "
        "the HNSW indexes take minutes to build at 100k)",
    )
    ap.add_argument("--skip-serving", action="store_true")
    args = ap.parse_args()
    real = real_vectors()
    console.print(f"{len(real):,} real MiniLM vectors of public catalogue titles")
    if not args.skip_curve:
        big = synthetic_catalogue(real, max(args.sizes), seed=1)
        console.print(curve(big, query_vectors(real, args.queries), 10, args.repeat, args.kinds))
    if not args.skip_serving:
        console.print(serving_search(sorted(args.sizes), real, args.repeat))


if __name__ == "__main__":
    sys.exit(main())
