"""Content assets: incremental sentence embeddings and the LanceDB `content_index`."""

import dagster as dg

from core.crash import crash_point
from core.lake import read_table, table_dir, write_table
from core.vector_index import build_content_rows, write_content_index
from models.embeddings.encoder import encode_texts
from pipelines.defs.catalog.assets import availability, titles
from pipelines.defs.metadata import md_table
from pipelines.defs.resources import MediaGatewayConfig
from pipelines.lib.embeddings import update_embeddings

GROUP = "content"


@dg.asset(group_name=GROUP, deps=[titles], kinds={"pytorch", "parquet"})
def content_embeddings(
    context: dg.AssetExecutionContext, app: MediaGatewayConfig
) -> dg.MaterializeResult:
    """all-MiniLM-L6-v2 vectors of each title's text; unchanged titles (same hash) are reused."""
    settings = app.settings()
    lake = settings.paths.lake
    catalogue = read_table(lake, "titles")
    previous = (
        read_table(lake, "content_embeddings")
        if table_dir(lake, "content_embeddings").is_dir()
        else None
    )

    def encode(texts: list[str]):
        context.log.info(f"encoding {len(texts)} titles")
        vectors = encode_texts(
            texts, batch_size=settings.embeddings.batch_size, show_progress=len(texts) > 256
        )
        crash_point("embeddings")
        return vectors

    update = update_embeddings(catalogue, previous, encode)
    write_table(lake, "content_embeddings", update.table)
    return dg.MaterializeResult(
        metadata={
            "rows": update.table.height,
            "encoded": update.encoded,
            "reused": update.reused,
            "removed": update.removed,
            "model": settings.embeddings.model,
        }
    )


@dg.asset(group_name=GROUP, deps=[content_embeddings, availability], kinds={"lancedb"})
def content_index(app: MediaGatewayConfig) -> dg.MaterializeResult:
    """LanceDB table: one row per title, 384-d vector plus filterable columns (one atomic commit)."""
    settings = app.settings()
    lake = settings.paths.lake
    catalogue = read_table(lake, "titles")
    rows = build_content_rows(
        catalogue, read_table(lake, "availability"), read_table(lake, "content_embeddings")
    )
    version = write_content_index(settings.paths.lancedb, rows)
    sample = catalogue.select("title_id", "title", "year", "genres").head(5)
    return dg.MaterializeResult(
        metadata={
            "rows": rows.num_rows,
            "table_version": version,
            "uri": str(settings.paths.lancedb),
            "sample": md_table(sample),
        }
    )
