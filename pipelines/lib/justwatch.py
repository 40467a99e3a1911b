"""JustWatch client (the unofficial GraphQL API used by open-source clients) and offer normalisation.

Two operations, in the shapes JustWatch's own web app sends (``{operationName, variables,
query}`` POSTed as JSON, no key):

* ``GetSearchTitles``: ``popularTitles(country:, filter: {searchQuery}, first:)``, used to find a
  title's node id (``tm123`` movie, ``ts123`` show) and its TMDB/IMDb ids;
* ``GetTitleOffers``: ``node(id:)`` with one alias per country, ``US: offers(country: US,
  platform: WEB)``, so all countries come back in one request.

Country (``^[A-Z]{2}$``) and language (``^[a-z]{2}(-[0-9A-Z]+)?$``) are checked before any request
(:class:`JustWatchInputError`): they are interpolated into the query text and JustWatch silently
falls back to English for unknown languages. GraphQL ``errors`` become
:class:`JustWatchGraphQLError`; HTTP errors :class:`JustWatchHTTPError` (429, 5xx and network
errors are retried ``max_retries`` times first by the shared :mod:`pipelines.lib.http_retry`
transport, honouring ``Retry-After``). JustWatch's terms forbid commercial use,
and showing its data requires attribution to JustWatch.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, Self

import httpx
import polars as pl

from core.schemas import AVAILABILITY, conform
from pipelines.lib.http_retry import RetriesExhausted, RetryPolicy, RetryTransport

logger = logging.getLogger(__name__)

DEFAULT_URL = "https://apis.justwatch.com/graphql"
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
LANGUAGE_RE = re.compile(r"^[a-z]{2}(-[0-9A-Z]+)?$")
NODE_ID_RE = re.compile(r"^t[ms]\d+$")
MAX_FIRST = 100
"""``first`` above ~100 hits JustWatch's query-complexity limit."""

OFFER_FRAGMENT = """fragment TitleOffer on Offer {
  id
  monetizationType
  presentationType
  retailPrice(language: $language)
  retailPriceValue
  currency
  availableTo
  elementCount
  package {
    id
    packageId
    clearName
    technicalName
    shortName
  }
  standardWebURL
}"""

SEARCH_QUERY = """query GetSearchTitles($searchTitlesFilter: TitleFilter!, $country: Country!, \
$language: Language!, $first: Int!) {
  popularTitles(country: $country, filter: $searchTitlesFilter, first: $first, sortBy: POPULAR, \
sortRandomSeed: 0) {
    totalCount
    edges {
      node {
        id
        objectId
        objectType
        content(country: $country, language: $language) {
          title
          fullPath
          originalReleaseYear
          originalReleaseDate
          runtime
          shortDescription
          genres {
            shortName
          }
          externalIds {
            imdbId
            tmdbId
          }
          scoring {
            imdbScore
            imdbVotes
            tmdbScore
            tmdbPopularity
          }
        }
      }
    }
  }
}"""


def offers_query(countries: list[str]) -> str:
    """``GetTitleOffers`` text with one ``<CC>: offers(country: <CC>, platform: $platform)`` alias
    per (already validated) country; the node's content is read in the first country."""
    aliases = "\n".join(
        f"      {c}: offers(country: {c}, platform: $platform) {{\n        ...TitleOffer\n      }}"
        for c in countries
    )
    return (
        "query GetTitleOffers($nodeId: ID!, $language: Language!, $platform: Platform! = WEB) {\n"
        "  node(id: $nodeId) {\n"
        "    id\n"
        "    __typename\n"
        "    ... on MovieOrShowOrSeason {\n"
        "      objectId\n"
        "      objectType\n"
        f"      content(country: {countries[0]}, language: $language) {{\n"
        "        title\n"
        "        originalReleaseYear\n"
        "        externalIds {\n"
        "          imdbId\n"
        "          tmdbId\n"
        "        }\n"
        "      }\n"
        f"{aliases}\n"
        "    }\n"
        "  }\n"
        "}\n" + OFFER_FRAGMENT
    )


# ---- errors ---------------------------------------------------------------------------------------
class JustWatchError(RuntimeError):
    """Any JustWatch failure."""


class JustWatchInputError(JustWatchError, ValueError):
    """Invalid country, language, ``first`` or node id (raised before any request)."""


class JustWatchGraphQLError(JustWatchError):
    """The answer carried a top-level GraphQL ``errors`` list (``messages`` holds them)."""

    def __init__(self, operation: str, messages: list[str]) -> None:
        self.operation = operation
        self.messages = messages
        super().__init__(f"JustWatch {operation} failed: " + "; ".join(messages))


class JustWatchHTTPError(JustWatchError):
    """A non-2xx HTTP answer (after retries for 429/5xx), or no answer at all (status None)."""

    def __init__(self, operation: str, status: int | None, detail: str) -> None:
        self.operation = operation
        self.status = status
        super().__init__(f"JustWatch {operation}: HTTP {status}: {detail}")


class JustWatchNotFound(JustWatchError):
    """``node(id:)`` returned null: no title with that node id."""


def check_country(country: str) -> str:
    if not isinstance(country, str) or not COUNTRY_RE.match(country):
        raise JustWatchInputError(f"country must match ^[A-Z]{{2}}$ (e.g. 'US'), got {country!r}")
    return country


def check_language(language: str) -> str:
    if not isinstance(language, str) or not LANGUAGE_RE.match(language):
        raise JustWatchInputError(
            f"language must match ^[a-z]{{2}}(-[0-9A-Z]+)?$ (e.g. 'en', 'pt-BR'), got {language!r}"
        )
    return language


def check_search(query: str, country: str, first: int) -> str:
    """The stripped query of a valid ``search_titles`` call; :class:`JustWatchInputError` else."""
    check_country(country)
    if not isinstance(first, int) or not 1 <= first <= MAX_FIRST:
        raise JustWatchInputError(f"first must be an int in 1..{MAX_FIRST}, got {first!r}")
    if not query or not query.strip():
        raise JustWatchInputError("search query is empty")
    return query.strip()


def check_offers(node_id: str, countries: Iterable[str]) -> list[str]:
    """The distinct countries of a valid ``title_offers`` call; :class:`JustWatchInputError` else."""
    wanted = list(dict.fromkeys(check_country(c) for c in countries))
    if not wanted:
        raise JustWatchInputError("title_offers needs at least one country")
    if not isinstance(node_id, str) or not NODE_ID_RE.match(node_id):
        raise JustWatchInputError(f"node id must look like 'tm123' or 'ts123', got {node_id!r}")
    return wanted


class JustWatchSource(Protocol):
    """What the catalogue needs of JustWatch: :class:`JustWatchClient` (live) and
    :class:`pipelines.lib.replay.RecordedJustWatchClient` (recorded) both provide it."""

    def search_titles(self, query: str, country: str, first: int = 5) -> list[dict[str, Any]]: ...

    def title_offers(self, node_id: str, countries: Iterable[str]) -> TitleOffers: ...


@dataclass(frozen=True)
class TitleOffers:
    """A node (id, objectType, content) and its offers per country."""

    node: dict[str, Any]
    offers: dict[str, list[dict[str, Any]]]

    @classmethod
    def from_node(cls, node: Mapping[str, Any], countries: list[str]) -> TitleOffers:
        """Split a ``GetTitleOffers`` node with one offer list per country alias."""
        offers = {c: list(node.get(c) or []) for c in countries}
        bare = {k: v for k, v in node.items() if k not in countries}
        return cls(node=bare, offers=offers)


# ---- client ---------------------------------------------------------------------------------------
class JustWatchClient:
    """Synchronous JustWatch GraphQL client (thread-safe: one pooled httpx client)."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        language: str = "en",
        timeout: float = 10.0,
        *,
        max_retries: int = 2,
        sleep: Callable[[float], None] = time.sleep,
        backoff_base: float = 1.0,
        max_wait: float = 60.0,
        jitter: float = 0.5,
        max_connections: int = 8,
    ) -> None:
        self.url = url
        self.language = check_language(language)
        self.retry = RetryPolicy(
            max_retries=max_retries,
            backoff_base=backoff_base,
            max_wait=max_wait,
            jitter=jitter,
            sleep=sleep,
        )
        self._http = httpx.Client(
            timeout=timeout,
            headers={"Accept": "application/json"},
            transport=RetryTransport(
                self.retry, name="JustWatch", limits=httpx.Limits(max_connections=max_connections)
            ),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, operation: str, variables: dict[str, Any], query: str) -> dict[str, Any]:
        body = {"operationName": operation, "variables": variables, "query": query}
        try:
            response = self._http.post(self.url, json=body)
        except RetriesExhausted as exc:
            if exc.response is None:
                raise JustWatchHTTPError(operation, None, str(exc)) from exc
            try:
                self._parse(operation, exc.response)
            except JustWatchError as error:
                raise error from exc  # the retryable answer's typed error, after the give-up
            raise AssertionError("unreachable: a retried status is an error answer") from exc
        return self._parse(operation, response)

    @staticmethod
    def _parse(operation: str, response: httpx.Response) -> dict[str, Any]:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        errors = payload.get("errors") if isinstance(payload, dict) else None
        if errors:
            messages = [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors]
            raise JustWatchGraphQLError(operation, messages)
        if response.is_error:
            raise JustWatchHTTPError(operation, response.status_code, response.text[:200])
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
            raise JustWatchHTTPError(operation, response.status_code, "answer has no data object")
        return payload["data"]

    def search_titles(self, query: str, country: str, first: int = 5) -> list[dict[str, Any]]:
        """Nodes (``id, objectId, objectType, content``) matching ``query`` in ``country``."""
        text = check_search(query, country, first)
        variables = {
            "searchTitlesFilter": {"searchQuery": text},
            "country": country,
            "language": self.language,
            "first": first,
        }
        data = self._post("GetSearchTitles", variables, SEARCH_QUERY)
        try:
            return [edge["node"] for edge in data["popularTitles"]["edges"]]
        except (KeyError, TypeError) as exc:
            raise JustWatchHTTPError("GetSearchTitles", 200, f"unexpected shape: {exc}") from exc

    def title_offers(self, node_id: str, countries: Iterable[str]) -> TitleOffers:
        """Offers of one node in each of ``countries`` (one request, per-country aliases)."""
        wanted = check_offers(node_id, countries)
        variables = {"nodeId": node_id, "language": self.language, "platform": "WEB"}
        data = self._post("GetTitleOffers", variables, offers_query(wanted))
        node = data.get("node")
        if node is None:
            raise JustWatchNotFound(f"JustWatch has no title with node id {node_id!r}")
        return TitleOffers.from_node(node, wanted)


# ---- normalisation --------------------------------------------------------------------------------
def node_title_id(node: Mapping[str, Any]) -> str | None:
    """``movie:<tmdb id>`` / ``tv:<tmdb id>`` from ``content.externalIds.tmdbId`` and
    ``objectType`` (MOVIE / SHOW); None when JustWatch knows no TMDB id for the node."""
    content = node.get("content") or {}
    tmdb_id = (content.get("externalIds") or {}).get("tmdbId")
    if tmdb_id in (None, ""):
        return None
    prefix = {"MOVIE": "movie", "SHOW": "tv"}.get(str(node.get("objectType")))
    if prefix is None:
        raise JustWatchError(
            f"node {node.get('id')!r} has unknown objectType {node.get('objectType')!r}"
        )
    return f"{prefix}:{int(tmdb_id)}"


def offers_to_availability(
    title_offers: TitleOffers, last_seen: datetime | None = None
) -> list[dict[str, Any]]:
    """AVAILABILITY rows (source ``"justwatch"``) of one node's offers; no rows when the node has no
    TMDB id (the caller counts those)."""
    tid = node_title_id(title_offers.node)
    if tid is None:
        return []
    seen_at = last_seen or datetime.now(UTC)
    rows = []
    for country, offers in title_offers.offers.items():
        for offer in offers:
            package = offer.get("package") or {}
            if not package.get("technicalName"):
                raise JustWatchError(
                    f"offer {offer.get('id')!r} of {tid} has no package technicalName"
                )
            rows.append(
                {
                    "title_id": tid,
                    "country": country,
                    "provider_id": package["technicalName"],
                    "provider_name": package.get("clearName"),
                    "monetization": offer.get("monetizationType"),
                    "presentation_type": offer.get("presentationType"),
                    "price": offer.get("retailPriceValue"),
                    "currency": offer.get("currency"),
                    "deep_link": offer.get("standardWebURL"),
                    "source": "justwatch",
                    "last_seen": seen_at,
                }
            )
    return rows


def availability_frame(rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """AVAILABILITY-conformed frame from row dicts."""
    return conform(pl.DataFrame(list(rows), schema=AVAILABILITY), "availability")
