"""schema.org views: unit checks of the WatchAction mapping and GET /content through the service."""

from __future__ import annotations

from datetime import date

from starlette.testclient import TestClient

from core import JUSTWATCH_ATTRIBUTION, TMDB_ATTRIBUTION
from serving.jsonld import content_view, iso_duration, watch_action

OFFER = {
    "country": "US",
    "provider_id": "netflix",
    "provider_name": "Netflix",
    "monetization": "FLATRATE",
    "price": None,
    "currency": None,
    "deep_link": "https://netflix.example/watch/1",
}


def test_iso_duration() -> None:
    assert iso_duration(136) == "PT2H16M"
    assert iso_duration(120) == "PT2H"
    assert iso_duration(45) == "PT45M"
    assert iso_duration(None) is None and iso_duration(0) is None


def test_watch_action_categories() -> None:
    sub = watch_action(OFFER)
    assert sub["@type"] == "WatchAction" and sub["provider"]["name"] == OFFER["provider_name"]
    req = sub["actionAccessibilityRequirement"]
    assert req["category"] == "subscription"
    assert req["requiresSubscription"] == {"@type": "MediaSubscription", "name": "Netflix"}
    assert req["eligibleRegion"] == [{"@type": "Country", "name": "US"}]
    assert sub["target"]["urlTemplate"] == OFFER["deep_link"]
    rent = watch_action({**OFFER, "monetization": "RENT", "price": 3.99, "currency": "USD"})
    assert rent["@type"] == "WatchAction"
    assert rent["actionAccessibilityRequirement"]["category"] == "rent"
    offer = rent["actionAccessibilityRequirement"]["expectsAcceptanceOf"]
    assert offer["@type"] == "Offer" and offer["price"] == 3.99 and offer["priceCurrency"] == "USD"
    free = watch_action({**OFFER, "monetization": "ADS"})
    assert free["actionAccessibilityRequirement"]["category"] == "free"
    assert watch_action({**OFFER, "monetization": "CINEMA"}) is None
    assert watch_action({**OFFER, "deep_link": None}) is None


def test_series_view_uses_tvseries_fields() -> None:
    title = {
        "title_id": "tv:1",
        "type": "series",
        "title": "Show",
        "release_date": date(2020, 1, 2),
        "runtime": 30,
        "directors": ["Creator"],
        "genres": ["Drama"],
    }
    view = content_view(title, [], "http://x")
    assert view["@type"] == "TVSeries"
    assert view["startDate"] == "2020-01-02"
    assert view["creator"] == [{"@type": "Person", "name": "Creator"}]
    assert "director" not in view and "potentialAction" not in view
    assert view["creditText"] == TMDB_ATTRIBUTION


def test_content_route_serves_json_ld(client: TestClient) -> None:
    for path in ("/content/movie:27205", "/content/movie%3A27205", "/content/movie-27205"):
        r = client.get(path)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["content-type"].startswith("application/ld+json")
    view = r.json()
    assert view["@context"] == "https://schema.org"
    assert view["@type"] == "Movie"
    assert view["name"] == "Inception"
    assert view["duration"] == "PT2H28M"
    assert view["datePublished"] == "2010-06-01"
    assert view["aggregateRating"]["ratingCount"] == 1000
    categories = sorted(
        (a["actionAccessibilityRequirement"]["category"], a["target"]["urlTemplate"])
        for a in view["potentialAction"]
    )
    assert [c for c, _ in categories] == ["rent", "subscription", "subscription"]
    assert view["x-arw"]["attribution"] == {
        "metadata": TMDB_ATTRIBUTION,
        "availability": JUSTWATCH_ATTRIBUTION,
    }
    assert len(view["x-arw"]["watch_providers"]) == 3
    assert r.headers["AI-ARW-Level"] == "ARW-3"
    md = client.get("/content/movie:27205.llm.md")
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert md.text.startswith("# Inception") and "Netflix" in md.text


def test_availability_route(client: TestClient) -> None:
    r = client.get("/content/movie:27205/availability", params={"country": "US"})
    assert r.status_code == 200
    body = r.json()
    assert body["content_id"] == "movie:27205"
    assert [(o["provider_id"], o["kind"]) for o in body["offers"]] == [
        ("netflix", "subscription"),
        ("amazon", "rent"),
    ]
    assert body["attribution"]["availability"] == JUSTWATCH_ATTRIBUTION
    assert len(client.get("/content/movie:27205/availability").json()["offers"]) == 3
    assert client.get("/content/movie:27205/availability?country=usa").status_code == 422
    assert client.get("/content/movie:424242/availability").status_code == 404


def test_unknown_content_is_404(client: TestClient) -> None:
    for path in ("/content/movie:1", "/content/nonsense", "/content/catalog-x-1.llm.md"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert "unknown content id" in r.json()["error"]
