from datetime import UTC, datetime

import polars as pl

from pipelines.lib.reports import (
    plot_resolution,
    plot_service_coverage,
    resolution_summary,
    service_coverage,
)


def test_service_coverage_counts_subscription_titles_per_country(tmp_path):
    titles = pl.DataFrame({"title_id": ["a", "b", "c", "d"]})
    now = datetime(2026, 1, 1, tzinfo=UTC)
    availability = pl.DataFrame(
        {
            "title_id": ["a", "b", "b", "c", "a"],
            "country": ["US", "US", "US", "GB", "US"],
            "provider_name": ["Netflix", "Netflix", "Netflix", "Netflix", "Apple TV"],
            "monetization": ["FLATRATE", "FLATRATE", "ADS", "FLATRATE", "RENT"],
            "last_seen": [now] * 5,
        }
    )
    cov = service_coverage(titles, availability)
    assert cov.rows() == [("GB", "Netflix", 1, 0.25), ("US", "Netflix", 2, 0.5)]
    fig = plot_service_coverage(cov)
    fig.savefig(tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_resolution_summary_rate(tmp_path):
    events = pl.DataFrame({"source": ["netflix"] * 3 + ["imdb"]})
    unresolved = pl.DataFrame({"source": ["netflix"]})
    s = resolution_summary(events, unresolved)
    assert s.rows() == [("imdb", 1, 0, 1.0), ("netflix", 3, 1, 0.75)]
    plot_resolution(s).savefig(tmp_path / "r.png")
