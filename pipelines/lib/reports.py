"""Catalogue and import reports shared by notebooks and the Dagster UI (frames and figures).

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot state, any backend).
"""

from __future__ import annotations

import polars as pl
from matplotlib.figure import Figure


def service_coverage(titles: pl.DataFrame, availability: pl.DataFrame) -> pl.DataFrame:
    """Per country and provider: titles on subscription (FLATRATE/FREE/ADS) and their catalogue share."""
    n = max(1, titles.height)
    return (
        availability.filter(pl.col("monetization").is_in(["FLATRATE", "FREE", "ADS"]))
        .group_by("country", "provider_name")
        .agg(pl.col("title_id").n_unique().alias("titles"))
        .with_columns((pl.col("titles") / n).alias("share_of_catalogue"))
        .sort(["country", "titles"], descending=[False, True])
    )


def resolution_summary(events: pl.DataFrame, unresolved: pl.DataFrame) -> pl.DataFrame:
    """Per import source: resolved rows, unresolved rows and the resolution rate."""
    ok = events.group_by("source").len("resolved")
    bad = unresolved.group_by("source").len("unresolved")
    return (
        ok.join(bad, on="source", how="full", coalesce=True)
        .fill_null(0)
        .with_columns(
            (pl.col("resolved") / (pl.col("resolved") + pl.col("unresolved"))).alias("rate")
        )
        .sort("source")
    )


def plot_service_coverage(coverage: pl.DataFrame, top: int = 8) -> Figure:
    """Grouped horizontal bars: subscription titles per provider, one colour per country."""
    countries = coverage["country"].unique().sort().to_list()
    providers = (
        coverage.group_by("provider_name")
        .agg(pl.col("titles").sum())
        .sort("titles", descending=True)
        .head(top)["provider_name"]
        .to_list()
    )
    fig = Figure(figsize=(8, 0.5 * len(providers) + 1.5))
    ax = fig.subplots()
    height = 0.8 / max(1, len(countries))
    for i, country in enumerate(countries):
        sub = dict(
            coverage.filter(pl.col("country") == country)
            .select("provider_name", "titles")
            .iter_rows()
        )
        ys = [p + i * height for p in range(len(providers))]
        ax.barh(ys, [sub.get(p, 0) for p in providers], height=height, label=country)
    ax.set_yticks([p + 0.4 - height / 2 for p in range(len(providers))], providers)
    ax.invert_yaxis()
    ax.set_xlabel("titles available by subscription")
    ax.set_title("Catalogue coverage per service and country")
    ax.legend(title="country")
    fig.tight_layout()
    return fig


def plot_resolution(summary: pl.DataFrame) -> Figure:
    """Stacked bars of resolved vs unresolved history rows per source."""
    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    sources = summary["source"].to_list()
    ax.bar(sources, summary["resolved"].to_list(), label="resolved")
    ax.bar(
        sources,
        summary["unresolved"].to_list(),
        bottom=summary["resolved"].to_list(),
        label="unresolved",
    )
    for x, (r, u) in enumerate(zip(summary["resolved"], summary["unresolved"], strict=True)):
        ax.text(x, r + u, f"{r / max(1, r + u):.0%}", ha="center", va="bottom")
    ax.set_ylabel("history rows")
    ax.set_title("Title resolution of imported watch histories")
    ax.legend()
    fig.tight_layout()
    return fig
