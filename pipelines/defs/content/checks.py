"""Blocking checks on embeddings: the index is only replaced with one finite unit vector per title."""

import dagster as dg

from core.lake import read_table
from pipelines.defs.content.assets import content_embeddings
from pipelines.defs.resources import MediaGatewayConfig
from pipelines.lib.embeddings import vector_quality


@dg.asset_check(asset=content_embeddings, blocking=True, description="one unit vector per title")
def one_unit_vector_per_title(app: MediaGatewayConfig) -> dg.AssetCheckResult:
    settings = app.settings()
    lake = settings.paths.lake
    table = read_table(lake, "content_embeddings")
    catalogue = read_table(lake, "titles")
    missing = catalogue.join(table, on="title_id", how="anti").height
    extra = table.join(catalogue, on="title_id", how="anti").height
    duplicates = table.height - table["title_id"].n_unique()
    quality = vector_quality(table)
    passed = missing == 0 and extra == 0 and duplicates == 0 and not any(quality.values())
    return dg.AssetCheckResult(
        passed=passed,
        metadata={
            "titles": catalogue.height,
            "vectors": table.height,
            "titles_without_vector": missing,
            "vectors_without_title": extra,
            "duplicate_vectors": duplicates,
            **quality,
        },
    )
