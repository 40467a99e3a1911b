"""Catalogue assets: TMDB titles, JustWatch offers, platform catalogues -> `titles`, `availability`."""

import dagster as dg
import polars as pl

from core.lake import read_table, write_table
from core.schemas import conform
from pipelines.defs.metadata import md_table
from pipelines.defs.resources import JustWatchResource, MediaGatewayConfig, TMDBResource
from pipelines.lib import late_resolution, sources
from pipelines.lib.histories.movielens import movielens_titles

GROUP = "catalog"


def canonical_provider_names(df: pl.DataFrame) -> pl.DataFrame:
    """One display name per provider id (JustWatch's clear name first: TMDB says "Apple TV Plus"
    where JustWatch says "Apple TV+"), so reports do not count a service twice."""
    names = (
        df.with_columns((pl.col("source") != "justwatch").alias("_rank"))
        .sort("_rank", "provider_name", nulls_last=True)
        .group_by("provider_id", maintain_order=True)
        .agg(pl.col("provider_name").first().alias("_name"))
    )
    return (
        df.join(names, on="provider_id", how="left")
        .with_columns(pl.coalesce("_name", "provider_name").alias("provider_name"))
        .drop("_name")
    )


RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL)


@dg.asset(group_name=GROUP, retry_policy=RETRY, kinds={"polars", "parquet"})
def tmdb_titles(app: MediaGatewayConfig, tmdb: TMDBResource) -> dg.MaterializeResult:
    """Movies and series from TMDB (discover + details with credits and keywords)."""
    settings = app.settings()
    with tmdb.open() as client:
        df = sources.fetch_tmdb_titles(client, settings.sources.tmdb.discover_pages)
    write_table(settings.paths.lake, "tmdb_titles", df)
    return dg.MaterializeResult(
        metadata={
            "rows": df.height,
            "movies": df.filter(pl.col("type") == "movie").height,
            "series": df.filter(pl.col("type") == "series").height,
            "mode": settings.sources.tmdb.mode,
            "attribution": "This product uses the TMDB API but is not endorsed or certified by TMDB.",
        }
    )


@dg.asset(group_name=GROUP, retry_policy=RETRY, deps=[tmdb_titles], kinds={"polars", "parquet"})
def justwatch_offers(
    app: MediaGatewayConfig, tmdb: TMDBResource, justwatch: JustWatchResource
) -> dg.MaterializeResult:
    """Where each TMDB title can be watched per country (JustWatch offers and TMDB providers)."""
    settings = app.settings()
    countries = settings.sources.countries
    titles = read_table(settings.paths.lake, "tmdb_titles")
    with justwatch.open() as jw_client, tmdb.open() as tmdb_client:
        offers = pl.concat(
            [
                sources.fetch_justwatch_offers(jw_client, titles, countries),
                sources.fetch_tmdb_providers(tmdb_client, titles, countries),
            ],
            how="vertical",
        )
    write_table(settings.paths.lake, "justwatch_offers", offers)
    return dg.MaterializeResult(
        metadata={
            "rows": offers.height,
            "titles_with_offers": offers["title_id"].n_unique(),
            "countries": ", ".join(sorted(offers["country"].unique().to_list())),
            "providers": offers["provider_id"].n_unique(),
        }
    )


@dg.asset(group_name=GROUP, deps=[tmdb_titles], kinds={"polars", "parquet"})
def platform_catalogs(app: MediaGatewayConfig) -> dg.MaterializeResult:
    """Netflix / Prime Video / Disney+ / Hulu catalogue snapshots: a second availability source."""
    settings = app.settings()
    titles = read_table(settings.paths.lake, "tmdb_titles")
    extra, availability, quarantine = sources.load_platform_catalogs(settings, titles)
    write_table(settings.paths.lake, "platform_titles", extra)
    write_table(settings.paths.lake, "platform_availability", availability)
    write_table(settings.paths.lake, "platform_quarantine", quarantine)
    return dg.MaterializeResult(
        metadata={
            "configured": settings.sources.platform_catalogs_dir is not None,
            "platform_only_titles": extra.height,
            "offers": availability.height,
            "quarantined_rows": quarantine.height,
        }
    )


@dg.asset(group_name=GROUP, retry_policy=RETRY, deps=[tmdb_titles], kinds={"polars", "parquet"})
def tmdb_late_titles(app: MediaGatewayConfig, tmdb: TMDBResource) -> dg.MaterializeResult:
    """TMDB titles found by search / find for history rows earlier runs left unresolved
    (late resolution, :mod:`pipelines.lib.late_resolution`); the ``watch_events`` step then
    resolves those rows."""
    settings = app.settings()
    lake = settings.paths.lake
    lookups_dir = lake / "tmdb_lookups"
    lookups = read_table(lake, "tmdb_lookups") if lookups_dir.is_dir() else None
    found = sources.fetch_late_titles(tmdb.open, read_table(lake, "unresolved_events"), lookups)
    merged = late_resolution.merge_late_titles(lake, found.titles)
    if found.queries_asked or not lookups_dir.is_dir():
        write_table(lake, "tmdb_lookups", found.lookups)
    return dg.MaterializeResult(
        metadata={
            "rows_waiting_for_lookup": found.rows_waiting,
            "tmdb_queries": found.queries_asked,
            "queries_asked_recently": found.queries_skipped,
            "titles_added": found.titles.height,
            "rows": merged.height,
        }
    )


@dg.asset(
    group_name=GROUP,
    deps=[tmdb_titles, tmdb_late_titles, platform_catalogs],
    kinds={"polars", "parquet"},
)
def titles(app: MediaGatewayConfig) -> dg.MaterializeResult:
    """The unified catalogue: TMDB titles (discovered, then found late), then platform-only and
    MovieLens-only titles."""
    settings = app.settings()
    lake = settings.paths.lake
    tmdb = read_table(lake, "tmdb_titles")
    parts = [tmdb]
    if (lake / "tmdb_late_titles").is_dir():
        parts.append(read_table(lake, "tmdb_late_titles"))
    parts.append(read_table(lake, "platform_titles"))
    # MovieLens movies of configured imports join the catalogue before the events are imported,
    # so they are embedded and indexed in the same run (the importer also writes them to the lake).
    for spec in settings.sources.history_imports:
        if spec.format in ("movielens", "movielens-100k"):
            parts.append(movielens_titles(spec.path, tmdb))
    if (lake / "movielens_titles").is_dir():
        parts.append(read_table(lake, "movielens_titles"))
    df = pl.concat([conform(p, "titles") for p in parts], how="vertical").unique(
        subset="title_id", keep="first", maintain_order=True
    )
    write_table(lake, "titles", df)
    return dg.MaterializeResult(
        metadata={
            "rows": df.height,
            "by_source": dg.MetadataValue.json(
                dict(df.group_by("source").len().sort("source").iter_rows())
            ),
            "preview": md_table(df.select("title_id", "title", "year", "type", "genres")),
        }
    )


@dg.asset(group_name=GROUP, deps=[titles, justwatch_offers], kinds={"polars", "parquet"})
def availability(app: MediaGatewayConfig) -> dg.MaterializeResult:
    """One row per (title, country, provider, monetization, presentation): JustWatch first."""
    settings = app.settings()
    lake = settings.paths.lake
    known = read_table(lake, "titles").select("title_id")
    df = (
        pl.concat(
            [read_table(lake, "justwatch_offers"), read_table(lake, "platform_availability")],
            how="vertical",
        )
        .join(known, on="title_id", how="semi")
        .unique(
            subset=["title_id", "country", "provider_id", "monetization", "presentation_type"],
            keep="first",
            maintain_order=True,
        )
    )
    df = canonical_provider_names(df)
    write_table(lake, "availability", conform(df, "availability"))
    per_country = (
        df.filter(pl.col("monetization") == "FLATRATE")
        .group_by("country", "provider_name")
        .agg(pl.col("title_id").n_unique().alias("titles"))
        .sort("country", "titles", descending=[False, True])
    )
    return dg.MaterializeResult(
        metadata={
            "rows": df.height,
            "titles_available": df["title_id"].n_unique(),
            "subscription_titles_per_service": md_table(per_country, n=20),
        }
    )
