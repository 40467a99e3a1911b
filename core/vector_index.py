"""The LanceDB `content_index` table: one row per title, a 384-d unit vector plus filterable columns.

Replacing the rows is a single LanceDB commit (``mode="overwrite"``), so readers see either the old
or the new rows, and every replacement is a new table version (time travel / rollback via
``checkout``). From :data:`INDEX_MIN_ROWS` rows on, the same write then builds the ANN index
(:data:`ANN_INDEX`) in a second commit; a reader that opens the table between the two commits gets
exact (flat) results, only slower. A rewrite of identical rows is a no-op (no new version), and a
rerun after a crash between the two commits only adds the missing index: the write is idempotent.

**Index choice, measured** (``benchmarks/search_index.py``; 100k synthetic titles grown from MiniLM
embeddings of the public catalogues, 140 queries, recall@10 against exact numpy, latency as a ratio
to the exact numpy scan of the same matrix): see :data:`ANN_INDEX` for the table and the pick.
Below :data:`INDEX_MIN_ROWS` no index is built: a flat scan of <= 20k x 384 floats is a few
milliseconds and exact, the index would not pay for its build, and the serving search scans such
catalogues in memory anyway (``models.ranking.search``).

``services`` holds ``"<COUNTRY>:<provider_id>"`` tokens for subscription-like offers (FLATRATE, FREE,
ADS) and ``rent_buy`` the same for RENT/BUY, so availability filters run inside the vector search.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import lancedb
import numpy as np
import polars as pl
import pyarrow as pa
from lancedb.index import HnswFlat, HnswSq, IvfFlat, IvfPq, IvfSq

from core.schemas import EMBEDDING_DIM

CONTENT_TABLE = "content_index"
SUBSCRIPTION_LIKE = ("FLATRATE", "FREE", "ADS")
RENT_BUY = ("RENT", "BUY")
INDEX_MIN_ROWS = 20_000
"""From this many rows on, :func:`write_content_index` builds the ANN index (below: flat search)."""


@dataclass(frozen=True)
class AnnIndex:
    """An ANN index type with its build and query parameters."""

    kind: Literal["IVF_PQ", "IVF_HNSW_SQ", "IVF_HNSW_FLAT", "IVF_FLAT", "IVF_SQ"]
    nprobes: int
    refine_factor: int | None = None
    rows_per_partition: int = 4096
    """IVF partitions = rows // this (at least 1; one partition makes an IVF_HNSW_* plain HNSW)."""
    num_sub_vectors: int = 48
    """IVF_PQ only: 384 / 48 = 8 dimensions per sub-vector."""
    ef: int | None = None
    """IVF_HNSW_* only: HNSW candidate list size per probed partition (LanceDB default 1.5 x k)."""

    def partitions(self, rows: int) -> int:
        return max(1, rows // self.rows_per_partition)

    def config(self, rows: int) -> IvfPq | HnswSq | HnswFlat | IvfFlat | IvfSq:
        n = self.partitions(rows)
        if self.kind == "IVF_PQ":
            return IvfPq(
                distance_type="cosine", num_partitions=n, num_sub_vectors=self.num_sub_vectors
            )
        if self.kind == "IVF_HNSW_SQ":
            return HnswSq(distance_type="cosine", num_partitions=n)
        if self.kind == "IVF_HNSW_FLAT":
            return HnswFlat(distance_type="cosine", num_partitions=n)
        if self.kind == "IVF_SQ":
            return IvfSq(distance_type="cosine", num_partitions=n)
        return IvfFlat(distance_type="cosine", num_partitions=n)


ANN_INDEX = AnnIndex("IVF_PQ", nprobes=40, refine_factor=20, rows_per_partition=1024)
"""The index built at :data:`INDEX_MIN_ROWS` rows and up: IVF_PQ (48 sub-vectors of 8 dimensions),
one partition per 1024 rows (97 at 100k), 40 probed, candidates re-ranked on full vectors with a
refine factor of 20.

Measured 2026-12-02 with ``benchmarks/search_index.py --skip-serving --queries 100 --repeat 1
--kinds ...`` (100k x 384, 140 queries, top-10; ratio = LanceDB p50 / exact numpy p50 in the same
run, queries interleaved). Two runs: ``flat IVF_FLAT`` at load average 15-19 on 2 cores, ``IVF_PQ
IVF_HNSW_SQ`` at load 5-7, so compare ratios, not milliseconds, across runs::

    index      partitions nprobes refine  build s  recall@10  p50 ms  exact ms  ratio
    flat           -         -      -       5.7    1.0000   1765.9    84.7   20.86
    IVF_FLAT      97        10      -      69.3    0.9436    108.9   116.5    0.94
    IVF_FLAT      97        20      -      69.3    0.9564    122.7    96.5    1.27
    IVF_FLAT      97        40      -      69.3    0.9836    160.0    92.0    1.74
    IVF_FLAT      24         4      -      25.4    0.9357    102.0    77.4    1.32
    IVF_FLAT      24         6      -      25.4    0.9536     49.6    44.7    1.11
    IVF_FLAT      24         8      -      25.4    0.9679     93.3    65.6    1.42
    IVF_PQ        97        20     10     340.3    0.9450     30.9    44.5    0.69
    IVF_PQ        97        40     10     340.3    0.9564     29.1    39.8    0.73
    IVF_PQ        97        40     20     340.3    0.9757     29.2    28.2    1.04
    IVF_HNSW_SQ   24         4      -     140.8    0.9029     13.5    16.5    0.82
    IVF_HNSW_SQ   24         8      -     140.8    0.9379     10.5    16.7    0.63
    IVF_HNSW_SQ   24         8      5     140.8    0.9714     35.5    26.9    1.32

Recall follows the fraction of rows probed (IVF_FLAT: 10% -> 0.94, 41% -> 0.98); PQ with a refine
re-rank gets there with less work. No setting reached the goal of recall >= 0.99 at <= 1.0x exact;
IVF_PQ 40/20 is the best recall at about exact latency measured (0.976, 1.04x); IVF_HNSW_SQ is
fastest at low recall (0.94 at 0.63x) but needs a refine pass to pass 0.97 (1.32x). The serving
search re-ranks a wider fetch (>= 50 candidates for a 20-title page) than the top-10 measured here.

Measured again 2026-12-02 with the HNSW indexes and their ``ef`` (``benchmarks/search_index.py
--skip-serving --queries 100 --repeat 2 --kinds HNSW_FLAT IVF_HNSW_FLAT HNSW_SQ IVF_HNSW_SQ``, load
average 15-25 on 2 cores, so exact numpy swung from 9 to 52 ms; HNSW_* = one partition)::

    index          partitions nprobes refine  ef  build s  recall@10  p50 ms  exact ms  ratio
    IVF_HNSW_SQ       24         8      -    100   229.5    0.9607     26.0     18.2    1.43
    IVF_HNSW_SQ       24        12      5    200   229.5    0.9793     93.3     44.4    2.10
    HNSW_SQ            1         1      -    100   562.6    0.9800     27.5     16.4    1.68
    HNSW_SQ            1         1      2    100   562.6    0.9914     43.4     14.8    2.94
    HNSW_SQ            1         1      2    200   562.6    0.9936     64.9     32.0    2.03
    IVF_HNSW_FLAT     24        12      -    100   338.6    0.9821     29.1     12.4    2.35
    HNSW_FLAT          1         1      -     50   511.3    0.9743     56.3     33.9    1.66
    HNSW_FLAT          1         1      -    100   511.3    0.9921     52.7     36.3    1.45
    HNSW_FLAT          1         1      -    200   511.3    0.9936     47.0     26.1    1.80
    HNSW_FLAT          1         1      -    400   511.3    0.9986     50.6     16.0    3.16

LanceDB's default ``ef`` (1.5 x k = 15) caps the HNSW indexes' recall; with ``ef`` >= 100 a single
HNSW graph passes 0.99 (HNSW_FLAT 0.992, HNSW_SQ with a refine of 2 0.991), IVF_HNSW_* stay bounded
by the share of partitions probed (0.98 at 12 of 24). Still no setting reached recall >= 0.99 at <=
1.0x exact: every LanceDB query costs ~25 ms or more here, about an exact 100k scan. IVF_PQ 40/20
stays the default: it is the closest to the latency goal, and a single HNSW graph takes ~9 minutes
to build at 100k on this machine against ~6 for IVF_PQ. ``AnnIndex("IVF_HNSW_FLAT", 1,
rows_per_partition=1 << 40, ef=100)`` is the recall-first alternative (0.992 at 1.45x).
"""

CONTENT_SCHEMA = pa.schema(
    [
        ("title_id", pa.string()),
        ("vector", pa.list_(pa.float32(), EMBEDDING_DIM)),
        ("title", pa.string()),
        ("type", pa.string()),
        ("year", pa.int32()),
        ("genres", pa.list_(pa.string())),
        ("keywords", pa.list_(pa.string())),
        ("runtime", pa.int32()),
        ("language", pa.string()),
        ("popularity", pa.float64()),
        ("vote_average", pa.float64()),
        ("services", pa.list_(pa.string())),
        ("rent_buy", pa.list_(pa.string())),
        ("countries", pa.list_(pa.string())),
        ("content_hash", pa.string()),
    ]
)


def service_tokens(availability: pl.DataFrame) -> pl.DataFrame:
    """Per title: ``services``, ``rent_buy`` and ``countries`` token lists from availability rows."""
    tok = availability.with_columns(
        (pl.col("country") + ":" + pl.col("provider_id")).alias("token")
    )

    def agg(kinds: tuple[str, ...], name: str) -> pl.DataFrame:
        return (
            tok.filter(pl.col("monetization").is_in(kinds))
            .group_by("title_id")
            .agg(pl.col("token").unique().sort().alias(name))
        )

    countries = tok.group_by("title_id").agg(pl.col("country").unique().sort().alias("countries"))
    return countries.join(agg(SUBSCRIPTION_LIKE, "services"), on="title_id", how="left").join(
        agg(RENT_BUY, "rent_buy"), on="title_id", how="left"
    )


def build_content_rows(
    titles: pl.DataFrame, availability: pl.DataFrame, embeddings: pl.DataFrame
) -> pa.Table:
    """Join titles, their availability tokens and their vectors (``title_id``, ``vector``) into rows.

    Raises ValueError if a title has no vector (the asset checks guarantee one vector per title).
    """
    tokens = service_tokens(availability)
    df = (
        titles.join(embeddings.select("title_id", "vector"), on="title_id", how="left")
        .join(tokens, on="title_id", how="left")
        .with_columns(
            [
                pl.col(c).fill_null(pl.lit([], dtype=pl.List(pl.String)))
                for c in ("services", "rent_buy", "countries", "genres", "keywords")
            ]
        )
    )
    missing = df.filter(pl.col("vector").is_null()).height
    if missing:
        raise ValueError(f"{missing} titles have no embedding; run content_embeddings first")
    vectors = df["vector"].cast(pl.Array(pl.Float32, EMBEDDING_DIM)).to_numpy()
    arrays = {
        "title_id": pa.array(df["title_id"].to_list(), pa.string()),
        "vector": pa.FixedSizeListArray.from_arrays(
            pa.array(vectors.reshape(-1), pa.float32()), EMBEDDING_DIM
        ),
    }
    rest = df.select([f.name for f in CONTENT_SCHEMA if f.name not in arrays]).to_arrow()
    for field in CONTENT_SCHEMA:
        if field.name not in arrays:
            arrays[field.name] = rest.column(field.name).cast(field.type)
    return pa.table([arrays[f.name] for f in CONTENT_SCHEMA], schema=CONTENT_SCHEMA)


def _has_vector_index(table: lancedb.table.Table) -> bool:
    return any("vector" in idx.columns for idx in table.list_indices())


def write_content_index(
    db_path: str | Path,
    rows: pa.Table,
    *,
    index_min_rows: int = INDEX_MIN_ROWS,
    ann: AnnIndex = ANN_INDEX,
) -> int:
    """Replace the table's rows in one commit, then index it if large enough; returns the version.

    Idempotent: identical rows are not rewritten, and an index missing on a large table (a crash
    between the two commits) is built. ``index_min_rows``/``ann`` exist for tests and benchmarks.
    """
    db = lancedb.connect(str(db_path))
    rows = rows.cast(CONTENT_SCHEMA)
    table = None
    if CONTENT_TABLE in db.list_tables().tables:
        current = db.open_table(CONTENT_TABLE)
        if current.count_rows() == rows.num_rows and current.to_arrow().equals(rows):
            table = current
    if table is None:
        table = db.create_table(CONTENT_TABLE, data=rows, schema=CONTENT_SCHEMA, mode="overwrite")
    if rows.num_rows >= index_min_rows and not _has_vector_index(table):
        table.create_index("vector", config=ann.config(rows.num_rows), replace=True)
    return int(table.version)


@dataclass
class ContentIndex:
    """Read side of `content_index`: cosine search with SQL prefilters.

    Uses the ANN index when the table has one (``nprobes``/``refine_factor`` of :data:`ANN_INDEX`),
    else an exact flat scan; :attr:`indexed` says which.
    """

    db_path: str | Path
    """A local folder or an object-store URI (``s3://...``)."""
    version: int | None = None
    ann: AnnIndex = ANN_INDEX

    def __post_init__(self) -> None:
        db = lancedb.connect(str(self.db_path))
        if CONTENT_TABLE not in db.list_tables().tables:
            raise FileNotFoundError(
                f"no {CONTENT_TABLE!r} table in {self.db_path}; run the pipeline first"
            )
        self.table = db.open_table(CONTENT_TABLE)
        if self.version is not None:
            self.table.checkout(self.version)
        self.version = int(self.table.version)
        self.indexed = _has_vector_index(self.table)
        self._rows = int(self.table.count_rows())

    def count(self) -> int:
        return self._rows

    def search(
        self,
        vector: np.ndarray,
        limit: int = 10,
        where: str | None = None,
        columns: list[str] | None = None,
    ) -> pl.DataFrame:
        """Nearest titles by cosine similarity (column ``similarity`` = 1 - cosine distance).

        ``columns`` limits the returned columns (default: all, vectors included).
        """
        query = self.table.search(np.asarray(vector, dtype=np.float32)).distance_type("cosine")
        if self.indexed:
            query = query.nprobes(self.ann.nprobes)
            if self.ann.ef:
                query = query.ef(self.ann.ef)
            if self.ann.refine_factor:
                query = query.refine_factor(self.ann.refine_factor)
        if where:
            query = query.where(where, prefilter=True)
        if columns is not None:
            query = query.select([*columns, "_distance"])
        df = pl.from_arrow(query.limit(limit).to_arrow())
        assert isinstance(df, pl.DataFrame)
        return df.with_columns((1.0 - pl.col("_distance")).alias("similarity")).drop("_distance")

    def frame(self, columns: list[str] | None = None) -> pl.DataFrame:
        """The whole table as polars (vectors included unless ``columns`` excludes them)."""
        df = pl.from_arrow(self.table.to_arrow())
        assert isinstance(df, pl.DataFrame)
        return df.select(columns) if columns else df

    def vectors(self) -> tuple[list[str], np.ndarray]:
        """(title ids, (n, 384) float32 matrix) for in-memory scoring."""
        tbl = self.table.to_arrow().select(["title_id", "vector"])
        ids = tbl.column("title_id").to_pylist()
        flat = tbl.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        return ids, np.asarray(flat, dtype=np.float32).reshape(len(ids), EMBEDDING_DIM)
