"""Embedding throughput: the pipeline's encoder path against raw ``SentenceTransformer.encode``.

Both encode the same content texts (TMDB 5000 titles from the shared data folder, or the embedded
sample) in the same process, alternating order over repeats; the table reports texts/s and the
pipeline/raw ratio (goal >= 0.9: the pipeline adds no meaningful overhead).

    .venv/bin/python benchmarks/embeddings.py --limit 1000 --repeat 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import polars as pl
from rich.console import Console
from rich.table import Table

from core import PROJECT_ROOT
from core.content import content_text
from models.embeddings.encoder import encode_texts, get_encoder
from pipelines.lib.embeddings import update_embeddings

DEFAULT_TMDB = PROJECT_ROOT.parent / "shared" / "data" / "tmdb" / "tmdb_5000_movies.csv"


def load_titles(path: Path, limit: int) -> pl.DataFrame:
    """Titles frame (title_id, title, year, overview, genres, keywords) from the TMDB 5000 CSV."""
    raw = pl.read_csv(path, infer_schema_length=0).head(limit)

    def names(col: str) -> list[list[str]]:
        return [[d["name"] for d in json.loads(v or "[]")] for v in raw[col].to_list()]

    return pl.DataFrame(
        {
            "title_id": [f"movie:{i}" for i in raw["id"].to_list()],
            "title": raw["title"].to_list(),
            "year": [int(d[:4]) if d else None for d in raw["release_date"].fill_null("")],
            "overview": raw["overview"].to_list(),
            "genres": names("genres"),
            "keywords": names("keywords"),
            "type": ["movie"] * raw.height,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tmdb-csv", type=Path, default=DEFAULT_TMDB)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    titles = load_titles(args.tmdb_csv, args.limit)
    texts = [content_text(r) for r in titles.iter_rows(named=True)]
    model = get_encoder()
    model.encode(texts[:64], batch_size=args.batch_size)  # warm-up (threads, allocator)

    def raw() -> None:
        model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True)

    def pipeline() -> None:
        update_embeddings(titles, None, lambda t: encode_texts(t, batch_size=args.batch_size))

    timings: dict[str, list[float]] = {"raw SentenceTransformer.encode": [], "pipeline": []}
    for i in range(args.repeat):
        order = [("raw SentenceTransformer.encode", raw), ("pipeline", pipeline)]
        for name, fn in order if i % 2 == 0 else reversed(order):
            t0 = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - t0)

    best = {k: min(v) for k, v in timings.items()}
    base = best["raw SentenceTransformer.encode"]
    table = Table(title=f"content embeddings, {len(texts)} texts, batch {args.batch_size}")
    for col in ("path", "best s", "texts/s", "throughput ratio vs raw"):
        table.add_column(col, justify="right" if col != "path" else "left")
    for name, secs in best.items():
        table.add_row(name, f"{secs:.2f}", f"{len(texts) / secs:.1f}", f"{base / secs:.3f}")
    Console().print(table)
    # incremental rerun: nothing changed, nothing encoded
    first = update_embeddings(titles, None, lambda t: encode_texts(t))
    t0 = time.perf_counter()
    again = update_embeddings(titles, first.table, lambda t: encode_texts(t))
    Console().print(
        f"no-change rerun: encoded {again.encoded}, reused {again.reused} "
        f"in {time.perf_counter() - t0:.2f}s (ratio to a cold pipeline run "
        f"{(time.perf_counter() - t0) / best['pipeline']:.3f})"
    )
    assert np.isfinite(base)


if __name__ == "__main__":
    main()
