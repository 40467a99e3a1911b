"""The recorded TMDB and JustWatch answers of the sample: file layout, JSON I/O and replay rules.

The recorded responses live under ``data/sample/recorded`` (written by
``scripts/make_sample_catalog.py``)::

    tmdb/{movie|tv}/{id}.json                    details with credits, keywords, external_ids,
                                                 alternative_titles, translations appended
    tmdb/search/{movie|tv}/{query key}.json      /search first pages (every year; replay filters)
    tmdb/find/{imdb id}.json                     /find answers (external_source=imdb_id)
    tmdb/discover/{movie|tv}/page-{n}.json       discover pages, 20 results each
    tmdb/genre/{movie|tv}.json                   genre lists
    tmdb/watch_providers/{movie|tv}/{id}.json    watch providers per country
    tmdb/exports/{movie_ids|tv_series_ids}_MM_DD_YYYY.json.gz
    justwatch/search/{COUNTRY}/{query key}.json  GetSearchTitles responses
    justwatch/offers/{node id}.json              GetTitleOffers responses (every recorded country)

The replay rules (what the services would answer from a recording: a search filtered by year,
details without the objects not appended, a search cut to ``first``, a node with one offer list
per asked country) are here once, for the recorded clients of :mod:`pipelines.lib.replay` and the
loopback fake servers of the tests.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RECORDED_COUNTRIES = ("US", "GB", "DE")
"""Countries the JustWatch and TMDB provider recordings cover."""

EXPORT_PREFIX = {"movie": "movie_ids", "tv": "tv_series_ids"}
"""TMDB daily-export file prefix per kind."""

APPENDABLE = ("credits", "keywords", "external_ids", "alternative_titles", "translations")
"""Appended objects stored in the detail recordings (others are ignored, as TMDB ignores them)."""

YEAR_FIELD = {"movie": "release_date", "tv": "first_air_date"}
"""The search-result date field a year restriction applies to, per kind."""

NODE_KEYS = ("id", "objectId", "objectType", "content", "__typename")
"""The fields of a recorded JustWatch node other than its per-country offer lists."""


class RecordingError(RuntimeError):
    """A recorded response is missing or unreadable (the message names the file)."""


def query_key(query: str) -> str:
    """File-name key of a search query: accents stripped, casefolded, non-alphanumerics -> ``-``.

    Queries with no Latin letters or digits left (e.g. Japanese titles) use ``q-<sha256 prefix>``.
    """
    text = unicodedata.normalize("NFKD", query)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    key = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    if not key:
        key = "q-" + hashlib.sha256(query.strip().casefold().encode("utf-8")).hexdigest()[:16]
    return key[:120]


def read_json(path: Path) -> Any:
    """Parse one recorded JSON file; a missing or malformed file raises :class:`RecordingError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RecordingError(f"recorded response not found: {path}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordingError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from exc


def dump_json(obj: Any) -> str:
    """Canonical text of a recording: compact, UTF-8, stable key order as built, final newline."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


@dataclass(frozen=True)
class RecordedLayout:
    """Paths of the recorded responses under ``root``, and the answers replayed from them."""

    root: Path

    # ---- paths ---------------------------------------------------------------------------------
    def tmdb_details(self, kind: str, tmdb_id: int) -> Path:
        return self.root / "tmdb" / kind / f"{tmdb_id}.json"

    def tmdb_discover(self, kind: str, page: int) -> Path:
        return self.root / "tmdb" / "discover" / kind / f"page-{page}.json"

    def tmdb_genres(self, kind: str) -> Path:
        return self.root / "tmdb" / "genre" / f"{kind}.json"

    def tmdb_search(self, kind: str, query: str) -> Path:
        return self.root / "tmdb" / "search" / kind / f"{query_key(query)}.json"

    def tmdb_find(self, imdb_id: str) -> Path:
        return self.root / "tmdb" / "find" / f"{imdb_id}.json"

    def tmdb_providers(self, kind: str, tmdb_id: int) -> Path:
        return self.root / "tmdb" / "watch_providers" / kind / f"{tmdb_id}.json"

    @property
    def tmdb_exports(self) -> Path:
        return self.root / "tmdb" / "exports"

    def jw_search(self, country: str, query: str) -> Path:
        return self.root / "justwatch" / "search" / country / f"{query_key(query)}.json"

    def jw_offers(self, node_id: str) -> Path:
        return self.root / "justwatch" / "offers" / f"{node_id}.json"

    def require(self, service: str) -> None:
        """FileNotFoundError unless ``<root>/<service>`` (``tmdb`` or ``justwatch``) exists."""
        if not (self.root / service).is_dir():
            raise FileNotFoundError(f"no recordings under {self.root / service}")

    # ---- replayed answers ----------------------------------------------------------------------
    def details_answer(self, kind: str, tmdb_id: int, append: Iterable[str]) -> dict | None:
        """``/{kind}/{id}`` with only the ``append`` objects appended; None when not recorded."""
        path = self.tmdb_details(kind, tmdb_id)
        if not path.is_file():
            return None
        details = read_json(path)
        wanted = {a.strip() for a in append if a.strip()}
        for key in APPENDABLE:
            if key not in wanted:
                details.pop(key, None)
        return details

    def search_results(self, kind: str, query: str, year: str | None) -> list[dict[str, Any]]:
        """First-page results of ``/search/{kind}`` for ``query`` (stripped; an unrecorded or
        empty query finds nothing), restricted to ``year`` as TMDB does when it is given."""
        text = query.strip()
        path = self.tmdb_search(kind, text) if text else None
        results = read_json(path)["results"] if path is not None and path.is_file() else []
        if year:
            field = YEAR_FIELD[kind]
            results = [r for r in results if str(r.get(field) or "")[:4] == year]
        return results

    def find_answer(self, imdb_id: str) -> dict[str, list[Any]]:
        """``/find/{imdb_id}?external_source=imdb_id`` (empty lists when not recorded)."""
        path = self.tmdb_find(imdb_id)
        if path.is_file():
            return read_json(path)
        return {
            "movie_results": [],
            "person_results": [],
            "tv_results": [],
            "tv_episode_results": [],
            "tv_season_results": [],
        }

    def jw_search_edges(self, country: str, query: str, first: int) -> list[dict[str, Any]]:
        """``popularTitles.edges`` of ``GetSearchTitles``, cut to ``first`` (none when not
        recorded, as a search without hits)."""
        path = self.jw_search(country, query)
        if not path.is_file():
            return []
        return read_json(path)["data"]["popularTitles"]["edges"][:first]

    def jw_node(self, node_id: str, aliases: Iterable[tuple[str, str]]) -> dict | None:
        """``GetTitleOffers``' node with one offer list per ``(alias, country)`` (a country that
        was not recorded gets ``[]``); None for an unknown node id."""
        path = self.jw_offers(node_id)
        if not path.is_file():
            return None
        recorded = read_json(path)["data"]["node"]
        node = {key: recorded[key] for key in NODE_KEYS if key in recorded}
        for alias, country in aliases:
            node[alias] = recorded.get(country, [])
        return node
