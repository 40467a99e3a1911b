"""Recorded TMDB and JustWatch sources: the answers come straight from the recorded files of
:mod:`pipelines.lib.recorded` (no HTTP, no server), for the sample's ``recorded`` mode.

They check their input like the live clients (kind, query, IMDb id, country, language, ``first``,
node id) and raise the same typed errors (:class:`~pipelines.lib.tmdb.TMDBNotFound` for an
unrecorded title, :class:`~pipelines.lib.justwatch.JustWatchNotFound` for an unknown node), so
that the catalogue code cannot tell them apart from the live clients over the recordings. The
replay rules themselves (year filter of a search, appended objects, ``first`` cut) are
:class:`~pipelines.lib.recorded.RecordedLayout`'s, shared with the tests' loopback fake servers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Self

from pipelines.lib.justwatch import (
    JustWatchNotFound,
    TitleOffers,
    check_language,
    check_offers,
    check_search,
)
from pipelines.lib.recorded import RecordedLayout, read_json
from pipelines.lib.tmdb.client import DEFAULT_APPEND, MAX_DISCOVER_PAGES
from pipelines.lib.tmdb.errors import TMDBNotFound, TMDBPayloadError
from pipelines.lib.tmdb.kinds import Kind, check_imdb_id, check_kind, check_query

logger = logging.getLogger(__name__)

NOT_FOUND = "The resource you requested could not be found."


class _Closing:
    """Context-manager protocol of the live clients (nothing to release here)."""

    def close(self) -> None:
        """Nothing to release: files are read per call."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RecordedTMDBClient(_Closing):
    """A :class:`~pipelines.lib.tmdb.TMDBSource` answering from ``<recorded_dir>/tmdb``."""

    def __init__(self, recorded_dir: Path, max_concurrency: int = 8) -> None:
        self.layout = RecordedLayout(Path(recorded_dir))
        self.layout.require("tmdb")
        self.max_concurrency = max_concurrency

    def discover(self, kind: Kind, pages: int = 1) -> Iterator[dict[str, Any]]:
        """Recorded discover results, pages 1..``pages`` (never past ``total_pages`` or 500)."""
        check_kind(kind)
        if pages < 1:
            raise ValueError(f"pages must be >= 1, got {pages}")
        path = f"/discover/{kind}"
        for page in range(1, min(pages, MAX_DISCOVER_PAGES) + 1):
            data = read_json(self.layout.tmdb_discover(kind, page))
            try:
                results = data["results"]
                total_pages = int(data["total_pages"])
            except (KeyError, TypeError, ValueError) as exc:
                raise TMDBPayloadError(200, None, f"page {page}: missing {exc}", path) from exc
            yield from results
            if page >= total_pages:
                break

    def details(
        self, kind: Kind, tmdb_id: int, append: Iterable[str] = DEFAULT_APPEND
    ) -> dict[str, Any]:
        """Recorded ``/{kind}/{id}`` with the ``append`` objects; TMDBNotFound when absent."""
        check_kind(kind)
        path = f"/{kind}/{int(tmdb_id)}"
        data = self.layout.details_answer(kind, int(tmdb_id), append)
        if data is None:
            raise TMDBNotFound(404, 34, NOT_FOUND, path)
        if "id" not in data:
            raise TMDBPayloadError(200, None, "details without an id", path)
        return data

    def details_many(
        self,
        kind: Kind,
        ids: Iterable[int],
        *,
        append: Iterable[str] = DEFAULT_APPEND,
        skip_missing: bool = False,
    ) -> list[dict[str, Any]]:
        """Details of many titles in the order of ``ids`` (``skip_missing``: leave out and log
        the unrecorded ones, else the first raises TMDBNotFound)."""
        check_kind(kind)
        append = tuple(append)
        found: list[dict[str, Any]] = []
        missing: list[int] = []
        for tmdb_id in dict.fromkeys(int(i) for i in ids):
            try:
                found.append(self.details(kind, tmdb_id, append))
            except TMDBNotFound:
                if not skip_missing:
                    raise
                missing.append(tmdb_id)
        if missing:
            logger.warning(
                "TMDB: %d %s ids not found, skipped: %s", len(missing), kind, sorted(missing)[:20]
            )
        return found

    def watch_providers_many(self, kind: Kind, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Recorded watch providers of many titles (unrecorded ones are skipped and logged)."""
        check_kind(kind)
        out: dict[int, dict[str, Any]] = {}
        missing = 0
        for tmdb_id in dict.fromkeys(int(i) for i in ids):
            path = self.layout.tmdb_providers(kind, tmdb_id)
            if not path.is_file():
                missing += 1
                continue
            data = read_json(path)
            if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
                raise TMDBPayloadError(
                    200, None, "no results object", f"/{kind}/{tmdb_id}/watch/providers"
                )
            out[tmdb_id] = data
        if missing:
            logger.warning("TMDB: no watch providers resource for %d %s ids", missing, kind)
        return out

    def search(self, kind: Kind, query: str, year: int | None = None) -> list[dict[str, Any]]:
        """Recorded first page of ``/search/{kind}`` for ``query``, restricted to ``year``."""
        check_kind(kind)
        text = check_query(query)
        return self.layout.search_results(kind, text, None if year is None else str(year))

    def find_imdb(self, imdb_id: str) -> dict[Kind, list[dict[str, Any]]]:
        """Recorded ``/find/{imdb_id}``: ``{"movie": [...], "tv": [...]}``."""
        answer = self.layout.find_answer(check_imdb_id(imdb_id))
        try:
            return {"movie": list(answer["movie_results"]), "tv": list(answer["tv_results"])}
        except (KeyError, TypeError) as exc:
            raise TMDBPayloadError(
                200, None, f"find answer without {exc}", f"/find/{imdb_id}"
            ) from exc


class RecordedJustWatchClient(_Closing):
    """A :class:`~pipelines.lib.justwatch.JustWatchSource` answering from
    ``<recorded_dir>/justwatch``."""

    def __init__(self, recorded_dir: Path, language: str = "en") -> None:
        self.layout = RecordedLayout(Path(recorded_dir))
        self.layout.require("justwatch")
        self.language = check_language(language)

    def search_titles(self, query: str, country: str, first: int = 5) -> list[dict[str, Any]]:
        """Recorded ``GetSearchTitles`` nodes for ``query`` in ``country`` (at most ``first``)."""
        text = check_search(query, country, first)
        return [edge["node"] for edge in self.layout.jw_search_edges(country, text, first)]

    def title_offers(self, node_id: str, countries: Iterable[str]) -> TitleOffers:
        """Recorded offers of one node in each of ``countries``."""
        wanted = check_offers(node_id, countries)
        node = self.layout.jw_node(node_id, [(c, c) for c in wanted])
        if node is None:
            raise JustWatchNotFound(f"JustWatch has no title with node id {node_id!r}")
        return TitleOffers.from_node(node, wanted)
