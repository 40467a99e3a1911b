"""Blocking checks on the catalogue: a bad catalogue never reaches the vector index."""

import dagster as dg
import polars as pl

from core.lake import read_table
from core.schemas import SchemaError, validate
from pipelines.defs.catalog.assets import availability, titles
from pipelines.defs.resources import MediaGatewayConfig

MONETIZATIONS = ["FLATRATE", "FREE", "ADS", "RENT", "BUY", "CINEMA"]


def _schema_problem(df: pl.DataFrame, table: str) -> str | None:
    try:
        validate(df, table)
    except SchemaError as exc:
        return str(exc)
    return None


@dg.asset_check(asset=titles, blocking=True, description="schema, unique non-null ids, min size")
def titles_are_valid(app: MediaGatewayConfig) -> dg.AssetCheckResult:
    settings = app.settings()
    df = read_table(settings.paths.lake, "titles")
    problem = _schema_problem(df, "titles")
    duplicates = df.height - df["title_id"].n_unique()
    null_ids = df["title_id"].null_count()
    null_names = df["title"].null_count()
    passed = (
        problem is None
        and duplicates == 0
        and null_ids == 0
        and null_names == 0
        and df.height >= settings.checks.min_titles
    )
    return dg.AssetCheckResult(
        passed=passed,
        metadata={
            "schema": problem or "ok",
            "duplicate_title_ids": duplicates,
            "null_title_ids": null_ids,
            "null_titles": null_names,
            "rows_observed": df.height,
            "rows_expected_at_least": settings.checks.min_titles,
        },
    )


@dg.asset_check(asset=availability, blocking=True, description="schema, codes, known titles")
def availability_is_valid(app: MediaGatewayConfig) -> dg.AssetCheckResult:
    settings = app.settings()
    df = read_table(settings.paths.lake, "availability")
    problem = _schema_problem(df, "availability")
    bad_country = df.filter(~pl.col("country").str.contains(r"^[A-Z]{2}$")).height
    bad_money = df.filter(~pl.col("monetization").is_in(MONETIZATIONS)).height
    negative_price = df.filter(pl.col("price") < 0).height
    passed = problem is None and bad_country == 0 and bad_money == 0 and negative_price == 0
    return dg.AssetCheckResult(
        passed=passed,
        metadata={
            "schema": problem or "ok",
            "bad_country_codes": bad_country,
            "unknown_monetization": bad_money,
            "negative_prices": negative_price,
            "rows": df.height,
        },
    )
