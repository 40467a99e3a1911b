"""Availability filter: country, services and monetization, in memory and as a LanceDB clause."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from core.schemas import EMBEDDING_DIM, conform
from core.vector_index import ContentIndex, build_content_rows, write_content_index
from models.ranking.availability import AvailabilityFilter
from models.ranking.catalog import Catalog, CatalogError

OFFERS = [
    # title, country, provider, monetization, price
    ("t1", "US", "netflix", "FLATRATE", None),
    ("t1", "GB", "netflix", "FLATRATE", None),
    ("t2", "US", "hulu", "FLATRATE", None),
    ("t2", "US", "itunes", "RENT", 3.99),
    ("t3", "US", "tubi", "ADS", None),
    ("t4", "US", "itunes", "BUY", 14.99),
    ("t5", "GB", "o'brien", "FREE", None),
    ("t6", "US", "cinemas", "CINEMA", None),
]
IDS = ["t1", "t2", "t3", "t4", "t5", "t6", "t7"]


def _frames() -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray]:
    titles = pl.DataFrame({"title_id": IDS, "title": [f"Title {i}" for i in IDS], "type": "movie"})
    avail = pl.DataFrame(
        OFFERS,
        schema=["title_id", "country", "provider_id", "monetization", "price"],
        orient="row",
    ).with_columns(pl.col("provider_id").str.to_titlecase().alias("provider_name"))
    vectors = np.random.default_rng(1).normal(size=(len(IDS), EMBEDDING_DIM)).astype(np.float32)
    return titles, avail, vectors


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    titles, avail, vectors = _frames()
    return Catalog.build(titles, avail, IDS, vectors)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> ContentIndex:
    titles, avail, vectors = _frames()
    embeddings = pl.DataFrame({"title_id": IDS, "vector": vectors.tolist()})
    path = tmp_path_factory.mktemp("lance")
    write_content_index(path, build_content_rows(conform(titles, "titles"), avail, embeddings))
    return ContentIndex(path)


def _ids(catalog: Catalog, f: AvailabilityFilter) -> set[str]:
    return set(catalog.ids[f.mask(catalog)].tolist())


def test_country_services_and_monetization(catalog: Catalog) -> None:
    assert _ids(catalog, AvailabilityFilter(country="US")) == {"t1", "t2", "t3"}
    assert _ids(catalog, AvailabilityFilter(country="GB")) == {"t1", "t5"}
    assert _ids(catalog, AvailabilityFilter(country="US", services=["hulu"])) == {"t2"}
    assert _ids(catalog, AvailabilityFilter(country="US", services=["netflix", "tubi"])) == {
        "t1",
        "t3",
    }
    rent = AvailabilityFilter(country="US", monetization={"rent"})
    assert _ids(catalog, rent) == {"t2"}
    assert _ids(catalog, AvailabilityFilter(country="US", monetization={"rent", "buy"})) == {
        "t2",
        "t4",
    }
    assert _ids(catalog, AvailabilityFilter(country="US", monetization={"free"})) == {"t3"}
    assert _ids(catalog, AvailabilityFilter(country="FR")) == set()
    assert _ids(catalog, AvailabilityFilter(country="FR", include_unavailable=True)) == set(IDS)


def test_offers_respect_the_filter(catalog: Catalog) -> None:
    f = AvailabilityFilter(country="US", monetization={"subscription", "rent"})
    offers = f.offers(catalog, "t2")
    assert [(o.provider_id, o.kind, o.price) for o in offers] == [
        ("hulu", "subscription", None),
        ("itunes", "rent", 3.99),
    ]
    assert AvailabilityFilter(country="US", services=["hulu"]).offers(catalog, "t1") == []


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValidationError):
        AvailabilityFilter(country="usa")
    with pytest.raises(ValidationError):
        AvailabilityFilter(country="US", monetization=set())
    with pytest.raises(ValidationError):
        AvailabilityFilter(country="US", monetization={"stream"})  # type: ignore[arg-type]
    titles, avail, vectors = _frames()
    bad = avail.with_columns(pl.lit("LEASE").alias("monetization"))
    with pytest.raises(CatalogError, match="monetization"):
        Catalog.build(titles, bad, IDS, vectors)


@pytest.mark.parametrize(
    "flt",
    [
        AvailabilityFilter(country="US"),
        AvailabilityFilter(country="GB"),
        AvailabilityFilter(country="GB", services=["o'brien"]),
        AvailabilityFilter(country="US", services=["hulu", "netflix"]),
        AvailabilityFilter(country="US", monetization={"rent", "buy"}),
        AvailabilityFilter(country="US", monetization={"subscription", "free", "rent", "buy"}),
        AvailabilityFilter(country="FR"),
    ],
    ids=lambda f: f"{f.country}-{'+'.join(f.services) or 'any'}-{'+'.join(sorted(f.monetization))}",
)
def test_where_clause_selects_the_same_titles_in_lancedb(
    catalog: Catalog, index: ContentIndex, flt: AvailabilityFilter
) -> None:
    found = index.search(catalog.vectors[0], limit=100, where=flt.where_clause(catalog))
    assert set(found["title_id"].to_list()) == _ids(catalog, flt)
