"""Realistic content vectors for index benchmarks: MiniLM embeddings of the public catalogues.

Texts are the titles, genres and descriptions of the shared data folder's public catalogues (the
four platform snapshots, TMDB 5000 and MovieLens latest-small: ~35k titles), encoded with the
pipeline's encoder and cached under ``var/benchmarks/`` (encoding takes a few minutes on 2 cores;
the cache is keyed by the texts' hash). :func:`synthetic_catalogue` grows them to any size by
jittering real vectors (each synthetic title is a real one plus Gaussian noise, renormalised), so a
100k catalogue keeps the cluster structure of real embeddings, which random unit vectors lack (on
uniformly random 384-d vectors every ANN index needs to scan nearly everything).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import polars as pl

from core import PROJECT_ROOT

DEFAULT_DATA_DIR = (PROJECT_ROOT.parent / "shared" / "data").resolve()
CACHE_DIR = PROJECT_ROOT / "var" / "benchmarks"
CATALOGS = ("netflix", "amazon_prime", "disney_plus", "hulu")


def public_texts(data_dir: Path = DEFAULT_DATA_DIR) -> list[str]:
    """One text per public catalogue title (title, kind, genres, description), de-duplicated."""
    texts: list[str] = []
    for name in CATALOGS:
        df = pl.read_csv(data_dir / "catalogs" / f"{name}_titles.csv", infer_schema_length=0)
        for row in df.iter_rows(named=True):
            kind = "TV series" if row["type"] == "TV Show" else "Movie"
            genres = row.get("listed_in") or row.get("genre") or ""
            texts.append(
                f"{row['title']} ({row['release_year']}). {kind}. Genres: {genres}. "
                f"{row.get('description') or ''}"
            )
    tmdb = pl.read_csv(data_dir / "tmdb" / "tmdb_5000_movies.csv", infer_schema_length=0)
    for row in tmdb.iter_rows(named=True):
        genres = ", ".join(g["name"] for g in json.loads(row["genres"] or "[]"))
        texts.append(f"{row['title']}. Movie. Genres: {genres}. {row['overview'] or ''}")
    ml = pl.read_csv(data_dir / "movielens" / "ml-latest-small" / "movies.csv")
    for title, genres in ml.select("title", "genres").iter_rows():
        texts.append(f"{title}. Movie. Genres: {genres.replace('|', ', ')}.")
    return list(dict.fromkeys(texts))


def real_vectors(
    data_dir: Path = DEFAULT_DATA_DIR,
    cache_dir: Path = CACHE_DIR,
    limit: int = 5_000,
    max_tokens: int = 64,
) -> np.ndarray:
    """(n, 384) float32 unit MiniLM vectors of :func:`public_texts` (cached on disk).

    ``limit`` texts (an even draw over all catalogues), cut at ``max_tokens`` word pieces: title,
    kind, genres and the first sentence or two carry the topic, and on a shared 2-core machine the
    full 256-token texts of all 35k titles take hours.
    """
    from models.embeddings.encoder import encode_texts, get_encoder

    texts = public_texts(data_dir)
    step = max(1, len(texts) // limit)
    texts = texts[::step][:limit]
    key = hashlib.sha256(f"{max_tokens}\n".encode() + "\n".join(texts).encode()).hexdigest()[:16]
    path = cache_dir / f"public_catalogue_vectors-{key}.npy"
    if path.is_file():
        return np.load(path)
    encoder = get_encoder()
    encoder.max_seq_length = max_tokens  # this process only: a benchmark, not the pipeline
    vectors = encode_texts(texts, batch_size=64, show_progress=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors


def synthetic_catalogue(real: np.ndarray, n: int, seed: int = 0, noise: float = 0.3) -> np.ndarray:
    """``n`` unit vectors: the real ones first (as many as ``n`` allows), then synthetic titles.

    A synthetic title sits between a real title and one of its 20 nearest real neighbours, plus
    noise: ``unit(v + b * w + noise * g / sqrt(d))`` with ``b ~ U(0, 1)`` and Gaussian ``g``. New
    titles so fall in the populated regions of the embedding space, as a growing catalogue's do,
    without collapsing onto copies of one title.
    """
    rng = np.random.default_rng(seed)
    real = np.ascontiguousarray(real, dtype=np.float32)
    d = real.shape[1]
    base = real[rng.permutation(len(real))[: min(n, len(real))]]
    extra = n - len(base)
    if extra <= 0:
        return base
    k = min(20, len(real) - 1)
    sims = real @ real.T
    np.fill_diagonal(sims, -np.inf)
    neighbours = np.argpartition(-sims, k, axis=1)[:, :k]
    src = rng.integers(0, len(real), extra)
    partner = neighbours[src, rng.integers(0, k, extra)]
    mix = rng.uniform(0, 1, (extra, 1)).astype(np.float32)
    jitter = noise * rng.standard_normal((extra, d)).astype(np.float32) / np.sqrt(d)
    out = real[src] + mix * real[partner] + jitter
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return np.ascontiguousarray(np.vstack([base, out]), dtype=np.float32)
