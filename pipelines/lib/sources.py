"""What the catalogue assets call: TMDB titles, TMDB providers, JustWatch offers, platform catalogues.

The fetch functions take a TMDB or JustWatch *source* (:class:`~pipelines.lib.tmdb.TMDBSource`,
:class:`~pipelines.lib.justwatch.JustWatchSource`) and return frames conformed to the lake
schemas. Which source is decided by the settings, in :func:`tmdb_client` / :func:`justwatch_client`
(the Dagster resources ``TMDBResource`` / ``JustWatchResource`` open them):

* ``sources.<tmdb|justwatch>.mode: recorded`` (``configs/base.yaml``'s default, so the sample):
  :class:`~pipelines.lib.replay.RecordedTMDBClient` / ``RecordedJustWatchClient`` read
  ``sources.recorded_dir`` directly, no HTTP;
* ``mode: live``: the real HTTP clients, TMDB authenticated from the environment
  (``TMDB_READ_TOKEN`` or ``TMDB_API_KEY``, see :meth:`TMDBClient.from_env`); live mode without
  a key fails with :class:`~pipelines.lib.tmdb.TMDBConfigError` when a TMDB source is opened.

The mode stays an explicit setting rather than "live whenever a key is in the environment": a key
exported for another tool must not turn the reproducible sample run into a live one.

JustWatch offers are looked up per title: a ``GetSearchTitles`` search by title in the first
configured country, keeping the node whose TMDB id and type agree, then one ``GetTitleOffers`` for
all countries. Titles JustWatch does not find are counted and logged, not errors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

import polars as pl
from tqdm import tqdm

from core.schemas import conform, empty
from core.settings import Settings
from pipelines.lib import catalogs, justwatch, late_resolution, tmdb
from pipelines.lib.replay import RecordedJustWatchClient, RecordedTMDBClient

logger = logging.getLogger(__name__)

JUSTWATCH_CONCURRENCY = 4
"""Parallel JustWatch lookups (an unofficial API: stay gentle)."""
JUSTWATCH_SEARCH_FIRST = 5


@contextmanager
def tmdb_client(settings: Settings) -> Iterator[tmdb.TMDBSource]:
    """The TMDB source of ``sources.tmdb.mode`` (recorded files or the live API), for the block."""
    cfg = settings.sources.tmdb
    if cfg.mode == "recorded":
        with RecordedTMDBClient(
            settings.sources.recorded_dir, max_concurrency=cfg.max_concurrency
        ) as recorded:
            yield recorded
    else:
        with tmdb.TMDBClient.from_env(
            cfg.base_url,
            exports_url=cfg.exports_url,
            max_concurrency=cfg.max_concurrency,
            max_retries=cfg.max_retries,
        ) as client:
            yield client


@contextmanager
def justwatch_client(settings: Settings) -> Iterator[justwatch.JustWatchSource]:
    """The JustWatch source of ``sources.justwatch.mode`` (recorded files or the live API)."""
    cfg = settings.sources.justwatch
    if cfg.mode == "recorded":
        with RecordedJustWatchClient(
            settings.sources.recorded_dir, language=cfg.language
        ) as recorded:
            yield recorded
    else:
        with justwatch.JustWatchClient(cfg.url, language=cfg.language) as client:
            yield client


def fetch_tmdb_titles(client: tmdb.TMDBSource, pages: int) -> pl.DataFrame:
    """Discover ``pages`` pages (``sources.tmdb.discover_pages``) of movies and of series, then
    fetch details (credits, keywords, external ids) of every id; TITLES frame, one row per id."""
    rows: list[dict[str, Any]] = []
    for kind in tmdb.KINDS:
        ids = [int(r["id"]) for r in client.discover(kind, pages)]
        details = client.details_many(kind, ids, skip_missing=True)
        rows.extend(tmdb.details_to_title(kind, d) for d in details)
        logger.info("TMDB %s: %d discovered, %d with details", kind, len(set(ids)), len(details))
    df = tmdb.titles_frame(rows).unique("title_id", keep="first", maintain_order=True)
    return conform(df, "titles")


def fetch_late_titles(
    open_tmdb: Callable[[], AbstractContextManager[tmdb.TMDBSource]],
    unresolved: pl.DataFrame,
    lookups: pl.DataFrame | None,
) -> late_resolution.LateLookup:
    """TMDB titles that waiting ``unresolved`` rows need (search and find through the source
    ``open_tmdb()`` opens; see :mod:`pipelines.lib.late_resolution`). No source is opened (so no
    live credentials are needed) when no row waits for a lookup."""
    if late_resolution.waiting_for_lookup(unresolved).is_empty():
        return late_resolution.LateLookup(
            empty("titles"), late_resolution.conform_lookups(lookups), 0, 0, 0
        )
    with open_tmdb() as client:
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


def fetch_tmdb_providers(
    client: tmdb.TMDBSource, titles: pl.DataFrame, countries: list[str]
) -> pl.DataFrame:
    """TMDB watch providers of every TMDB title, in ``countries``; AVAILABILITY frame."""
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for kind, ids in _tmdb_ids(titles).items():
        if not ids:
            continue
        for payload in client.watch_providers_many(kind, ids).values():
            rows.extend(tmdb.providers_to_availability(kind, payload, countries, last_seen=now))
    return tmdb.availability_frame(rows)


def _find_node(
    client: justwatch.JustWatchSource, title: dict[str, Any], country: str
) -> dict[str, Any] | None:
    """The JustWatch node of a TMDB title: searched by title, then by original title."""
    want = tmdb.title_id("tv" if title["type"] == "series" else "movie", title["tmdb_id"])
    queries = [q for q in dict.fromkeys([title["title"], title["original_title"]]) if q]
    for query in queries:
        for node in client.search_titles(query, country, first=JUSTWATCH_SEARCH_FIRST):
            if justwatch.node_title_id(node) == want:
                return node
    return None


def fetch_justwatch_offers(
    client: justwatch.JustWatchSource, titles: pl.DataFrame, countries: list[str]
) -> pl.DataFrame:
    """JustWatch offers of every TMDB title in ``countries``; AVAILABILITY frame."""
    wanted = (
        titles.filter(pl.col("tmdb_id").is_not_null())
        .select("tmdb_id", "type", "title", "original_title")
        .unique(["tmdb_id", "type"], maintain_order=True)
        .to_dicts()
    )
    now = datetime.now(UTC)

    def lookup(title: dict[str, Any]) -> list[dict[str, Any]] | None:
        node = _find_node(client, title, countries[0])
        if node is None:
            return None
        offers = client.title_offers(node["id"], countries)
        return justwatch.offers_to_availability(offers, last_seen=now)

    rows: list[dict[str, Any]] = []
    not_found = 0
    with ThreadPoolExecutor(JUSTWATCH_CONCURRENCY, thread_name_prefix="justwatch") as pool:
        results = pool.map(lookup, wanted)
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
