"""What the catalogue assets call: TMDB titles, TMDB providers, JustWatch offers, platform catalogues.

Each function takes the validated :class:`~core.settings.Settings` and returns frames
conformed to the lake schemas. ``sources.<tmdb|justwatch>.mode`` picks the backend:

* ``recorded``: the fake server of :mod:`pipelines.fakes` is started on loopback for the call,
  replaying ``sources.recorded_dir``, and the *real* client talks to it over HTTP (TMDB with the
  fixed fake key :data:`~pipelines.fakes.recorded.RECORDED_API_KEY`);
* ``live``: the real services (TMDB credentials from the environment, see
  :meth:`TMDBClient.from_env`).

JustWatch offers are looked up per title: a ``GetSearchTitles`` search by title in the first
configured country, keeping the node whose TMDB id and type agree, then one ``GetTitleOffers`` for
all countries. Titles JustWatch does not find are counted and logged, not errors.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import polars as pl
from tqdm import tqdm

from core.schemas import conform, empty
from core.settings import Settings
from pipelines.fakes.justwatch_server import FakeJustWatchServer
from pipelines.fakes.recorded import RECORDED_API_KEY
from pipelines.fakes.tmdb_server import FakeTMDBServer
from pipelines.lib import catalogs, justwatch, late_resolution, tmdb

logger = logging.getLogger(__name__)

JUSTWATCH_CONCURRENCY = 4
"""Parallel JustWatch lookups (an unofficial API: stay gentle)."""
JUSTWATCH_SEARCH_FIRST = 5


@contextmanager
def tmdb_client(settings: Settings) -> Iterator[tmdb.TMDBClient]:
    """A TMDB client for the configured mode (recorded: backed by a fake server for the block)."""
    cfg = settings.sources.tmdb
    common: dict[str, Any] = {
        "max_concurrency": cfg.max_concurrency,
        "max_retries": cfg.max_retries,
    }
    if cfg.mode == "recorded":
        with (
            FakeTMDBServer(settings.sources.recorded_dir) as fake,
            tmdb.TMDBClient(
                fake.base_url, api_key=RECORDED_API_KEY, exports_url=fake.exports_url, **common
            ) as client,
        ):
            yield client
    else:
        with tmdb.TMDBClient.from_env(
            cfg.base_url, exports_url=cfg.exports_url, **common
        ) as client:
            yield client


@contextmanager
def justwatch_client(settings: Settings) -> Iterator[justwatch.JustWatchClient]:
    """A JustWatch client for the configured mode (recorded: backed by a fake server)."""
    cfg = settings.sources.justwatch
    if cfg.mode == "recorded":
        with (
            FakeJustWatchServer(settings.sources.recorded_dir) as fake,
            justwatch.JustWatchClient(fake.url, language=cfg.language) as client,
        ):
            yield client
    else:
        with justwatch.JustWatchClient(cfg.url, language=cfg.language) as client:
            yield client


def fetch_tmdb_titles(settings: Settings) -> pl.DataFrame:
    """Discover ``sources.tmdb.discover_pages`` pages of movies and of series, then fetch details
    (credits, keywords, external ids) of every id; TITLES frame, one row per title id."""
    pages = settings.sources.tmdb.discover_pages
    rows: list[dict[str, Any]] = []
    with tmdb_client(settings) as client:
        for kind in tmdb.KINDS:
            ids = [int(r["id"]) for r in client.discover(kind, pages)]
            details = client.details_many(kind, ids, skip_missing=True)
            rows.extend(tmdb.details_to_title(kind, d) for d in details)
            logger.info(
                "TMDB %s: %d discovered, %d with details", kind, len(set(ids)), len(details)
            )
    df = tmdb.titles_frame(rows).unique("title_id", keep="first", maintain_order=True)
    return conform(df, "titles")


def fetch_late_titles(
    settings: Settings, unresolved: pl.DataFrame, lookups: pl.DataFrame | None
) -> late_resolution.LateLookup:
    """TMDB titles that waiting ``unresolved`` rows need (search and find through the configured
    TMDB client; see :mod:`pipelines.lib.late_resolution`). No client is started when no row
    waits for a lookup."""
    if late_resolution.waiting_for_lookup(unresolved).is_empty():
        return late_resolution.LateLookup(
            empty("titles"), late_resolution.conform_lookups(lookups), 0, 0, 0
        )
    with tmdb_client(settings) as client:
        return late_resolution.lookup_missing_titles(client, unresolved, lookups)


def _tmdb_ids(titles: pl.DataFrame) -> dict[tmdb.Kind, list[int]]:
    """TMDB ids per kind of the TMDB titles in a TITLES frame (others are ignored)."""
    picked = titles.filter(pl.col("tmdb_id").is_not_null()).select(
        pl.when(pl.col("type") == "series")
        .then(pl.lit("tv"))
        .otherwise(pl.lit("movie"))
        .alias("kind"),
        "tmdb_id",
    )
    return {
        kind: picked.filter(pl.col("kind") == kind)["tmdb_id"].unique(maintain_order=True).to_list()
        for kind in tmdb.KINDS
    }


def fetch_tmdb_providers(settings: Settings, titles: pl.DataFrame) -> pl.DataFrame:
    """TMDB watch providers of every TMDB title, in ``sources.countries``; AVAILABILITY frame."""
    countries = settings.sources.countries
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    with tmdb_client(settings) as client:
        for kind, ids in _tmdb_ids(titles).items():
            if not ids:
                continue
            for payload in client.watch_providers_many(kind, ids).values():
                rows.extend(tmdb.providers_to_availability(kind, payload, countries, last_seen=now))
    return tmdb.availability_frame(rows)


def _find_node(
    client: justwatch.JustWatchClient, title: dict[str, Any], country: str
) -> dict[str, Any] | None:
    """The JustWatch node of a TMDB title: searched by title, then by original title."""
    want = tmdb.title_id("tv" if title["type"] == "series" else "movie", title["tmdb_id"])
    queries = [q for q in dict.fromkeys([title["title"], title["original_title"]]) if q]
    for query in queries:
        for node in client.search_titles(query, country, first=JUSTWATCH_SEARCH_FIRST):
            if justwatch.node_title_id(node) == want:
                return node
    return None


def fetch_justwatch_offers(settings: Settings, titles: pl.DataFrame) -> pl.DataFrame:
    """JustWatch offers of every TMDB title in ``sources.countries``; AVAILABILITY frame."""
    countries = settings.sources.countries
    wanted = (
        titles.filter(pl.col("tmdb_id").is_not_null())
        .select("tmdb_id", "type", "title", "original_title")
        .unique(["tmdb_id", "type"], maintain_order=True)
        .to_dicts()
    )
    now = datetime.now(UTC)

    def lookup(
        client: justwatch.JustWatchClient, title: dict[str, Any]
    ) -> list[dict[str, Any]] | None:
        node = _find_node(client, title, countries[0])
        if node is None:
            return None
        offers = client.title_offers(node["id"], countries)
        return justwatch.offers_to_availability(offers, last_seen=now)

    rows: list[dict[str, Any]] = []
    not_found = 0
    with (
        justwatch_client(settings) as client,
        ThreadPoolExecutor(JUSTWATCH_CONCURRENCY, thread_name_prefix="justwatch") as pool,
    ):
        results = pool.map(lambda t: lookup(client, t), wanted)
        for found in tqdm(
            results, total=len(wanted), desc="JustWatch offers", unit="title", leave=False
        ):
            if found is None:
                not_found += 1
            else:
                rows.extend(found)
    if not_found:
        logger.warning("JustWatch: %d of %d titles not found by search", not_found, len(wanted))
    return justwatch.availability_frame(rows)


def load_platform_catalogs(
    settings: Settings, titles: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(platform-only titles, platform availability, quarantined rows) from
    ``sources.platform_catalogs_dir``; empty frames when it is not configured."""
    folder = settings.sources.platform_catalogs_dir
    if folder is None:
        return empty("titles"), empty("availability"), empty("quarantine")
    load = catalogs.load_catalogs(folder)
    return catalogs.attach_to_tmdb(load, titles)
