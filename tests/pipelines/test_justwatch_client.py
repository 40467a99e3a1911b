"""JustWatch client against the fake GraphQL server over real HTTP, and offer normalisation."""

from __future__ import annotations

import json

import httpx
import pytest

from core import PROJECT_ROOT
from core.schemas import validate
from pipelines.lib import justwatch as jw
from tests.fakes.justwatch_server import FakeJustWatchServer

RECORDED = PROJECT_ROOT / "data" / "sample" / "recorded"


@pytest.fixture
def fake():
    with FakeJustWatchServer(RECORDED) as server:
        yield server


def make_client(
    fake: FakeJustWatchServer, sleeps: list[float] | None = None, **kw
) -> jw.JustWatchClient:
    kw.setdefault("jitter", 0.0)
    return jw.JustWatchClient(
        fake.url, sleep=(sleeps.append if sleeps is not None else lambda s: None), **kw
    )


def _node(client: jw.JustWatchClient, title: str, tmdb_title_id: str, country: str = "US") -> dict:
    nodes = client.search_titles(title, country)
    return next(n for n in nodes if jw.node_title_id(n) == tmdb_title_id)


def test_search_sends_the_real_operation_and_respects_first(fake):
    with make_client(fake) as client:
        both = client.search_titles("Fargo", "US")
        one = client.search_titles("Fargo", "US", first=1)
    assert {jw.node_title_id(n) for n in both} == {"movie:275", "tv:60622"}
    assert len(one) == 1
    sent = json.loads(fake.requests[0].body)
    assert sent["operationName"] == "GetSearchTitles"
    assert sent["variables"]["searchTitlesFilter"] == {"searchQuery": "Fargo"}
    assert "popularTitles(country: $country" in sent["query"]


def test_offers_are_normalised_per_country(fake):
    with make_client(fake) as client:
        node = _node(client, "Inception", "movie:27205")
        offers = client.title_offers(node["id"], ["US", "GB", "DE"])
    frame = jw.availability_frame(jw.offers_to_availability(offers))
    validate(frame, "availability")
    assert set(frame["title_id"]) == {"movie:27205"}
    assert set(frame["source"]) == {"justwatch"}
    assert set(frame["country"]) == {"US", "GB", "DE"}
    currency = dict(frame.select("country", "currency").unique().iter_rows())
    assert currency == {"US": "USD", "GB": "GBP", "DE": "EUR"}
    paid = frame.filter(frame["monetization"].is_in(["RENT", "BUY"]))
    assert paid.height > 0 and paid["price"].is_not_null().all()
    assert frame["deep_link"].str.starts_with("https://").all()
    assert (
        frame["provider_id"]
        .is_in(
            [
                "netflix",
                "amazonprime",
                "disneyplus",
                "hulu",
                "max",
                "appletvplus",
                "itunes",
                "googleplay",
                "tubi",
                "pluto",
            ]
        )
        .all()
    )
    assert str(frame.schema["last_seen"]) == "Datetime(time_unit='us', time_zone='UTC')"
    query = fake.requests[-1].body.decode()
    assert "US: offers(country: US, platform: $platform)" in query
    assert "DE: offers(country: DE, platform: $platform)" in query


def test_availability_differs_between_countries(fake):
    differing = 0
    with make_client(fake) as client:
        for title, tid in [
            ("The Matrix", "movie:603"),
            ("Inception", "movie:27205"),
            ("Heat", "movie:949"),
            ("Alien", "movie:348"),
            ("Jaws", "movie:578"),
        ]:
            nodes = client.search_titles(title, "US")
            node = next((n for n in nodes if jw.node_title_id(n) == tid), None)
            if node is None:
                continue
            offers = client.title_offers(node["id"], ["US", "GB"]).offers
            us = {(o["package"]["technicalName"], o["monetizationType"]) for o in offers["US"]}
            gb = {(o["package"]["technicalName"], o["monetizationType"]) for o in offers["GB"]}
            differing += us != gb
    assert differing >= 1


def test_graphql_errors_raise_with_messages(fake):
    fake.inject_graphql_errors("boom", "complexity too high")
    with make_client(fake) as client, pytest.raises(jw.JustWatchGraphQLError) as info:
        client.search_titles("Dark", "DE")
    assert info.value.messages == ["boom", "complexity too high"]


def test_fake_rejects_unknown_operations_and_bad_variables(fake):
    unknown = httpx.post(
        fake.url, json={"operationName": "GetNope", "variables": {}, "query": "query GetNope { x }"}
    )
    bad = httpx.post(
        fake.url,
        json={
            "operationName": "GetSearchTitles",
            "variables": {
                "country": "usa",
                "language": "en",
                "first": 500,
                "searchTitlesFilter": {"searchQuery": "x"},
            },
            "query": "q",
        },
    )
    assert (
        unknown.status_code == 200 and "Unknown operation" in unknown.json()["errors"][0]["message"]
    )
    messages = [e["message"] for e in bad.json()["errors"]]
    assert any("$country" in m for m in messages) and any("complexity" in m for m in messages)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda c: c.search_titles("Dark", "us"), "country"),
        (lambda c: c.search_titles("Dark", "USA"), "country"),
        (lambda c: c.search_titles("Dark", "US", first=101), "first"),
        (lambda c: c.title_offers("tm1", ["US", "gb"]), "country"),
        (lambda c: c.title_offers("../etc", ["US"]), "node id"),
    ],
)
def test_bad_input_is_rejected_before_any_request(fake, call, match):
    with make_client(fake) as client, pytest.raises(jw.JustWatchInputError, match=match):
        call(client)
    assert fake.requests == []


@pytest.mark.parametrize("language", ["english", "EN", "en_US", "e"])
def test_bad_language_is_rejected(fake, language):
    with pytest.raises(jw.JustWatchInputError, match="language"):
        make_client(fake, language=language)
    assert fake.requests == []


def test_regional_language_is_accepted(fake):
    with make_client(fake, language="pt-BR") as client:
        assert client.search_titles("Dark", "DE")


def test_http_errors_are_typed_after_retries(fake):
    sleeps: list[float] = []
    fake.inject_status(503, count=5)
    with (
        make_client(fake, sleeps, max_retries=1) as client,
        pytest.raises(jw.JustWatchHTTPError) as info,
    ):
        client.search_titles("Dark", "DE")
    assert info.value.status == 503
    assert len(fake.requests) == 2


def test_429_retry_after_is_honoured(fake):
    sleeps: list[float] = []
    fake.inject_status(429, count=1, retry_after=2)
    with make_client(fake, sleeps) as client:
        assert client.search_titles("Dark", "DE")
    assert sleeps == [2.0]


def test_unknown_node_is_not_found(fake):
    with make_client(fake) as client, pytest.raises(jw.JustWatchNotFound):
        client.title_offers("tm1", ["US"])


def test_nodes_without_tmdb_id_give_no_rows():
    node = {"id": "tm5", "objectType": "MOVIE", "content": {"externalIds": {"tmdbId": None}}}
    offers = jw.TitleOffers(node=node, offers={"US": [{"package": {"technicalName": "netflix"}}]})
    assert jw.node_title_id(node) is None
    assert jw.offers_to_availability(offers) == []
    show = {"id": "ts5", "objectType": "SHOW", "content": {"externalIds": {"tmdbId": "1396"}}}
    assert jw.node_title_id(show) == "tv:1396"
