"""What the pipelines need of TMDB, as a protocol: the live :class:`~pipelines.lib.tmdb.client.
TMDBClient` and the recorded :class:`~pipelines.lib.replay.RecordedTMDBClient` both provide it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from pipelines.lib.tmdb.kinds import Kind


class TMDBSource(Protocol):
    """Discover, details, watch providers, search and find (the catalogue and late resolution)."""

    max_concurrency: int

    def discover(self, kind: Kind, pages: int = 1) -> Iterator[dict[str, Any]]: ...

    def details_many(
        self, kind: Kind, ids: Iterable[int], *, skip_missing: bool = False
    ) -> list[dict[str, Any]]: ...

    def watch_providers_many(self, kind: Kind, ids: Iterable[int]) -> dict[int, dict[str, Any]]: ...

    def search(self, kind: Kind, query: str, year: int | None = None) -> list[dict[str, Any]]: ...

    def find_imdb(self, imdb_id: str) -> dict[Kind, list[dict[str, Any]]]: ...
