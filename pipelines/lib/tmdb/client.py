"""TMDB API v3 client (httpx, synchronous, a bounded thread pool for many detail requests).

Every HTTP request holds one of ``max_concurrency`` slots, retries included. Retries are the
shared :mod:`pipelines.lib.http_retry` transport's: 429, 5xx (but 501) and network errors are
retried up to ``max_retries`` times, waiting ``Retry-After`` when the server sends it and
``backoff_base * 2**attempt`` plus up to ``jitter`` seconds (capped at ``max_wait``) when it does
not; ``sleep`` is injectable so tests run instantly and can read the waits. Error answers become
the typed errors of :mod:`pipelines.lib.tmdb.errors`.

Credentials only come from the caller (``TMDBClient.from_env`` reads ``TMDB_READ_TOKEN`` or
``TMDB_API_KEY`` when called). Prefer the v4 read token: it travels in a header, while a v3
``api_key`` is a query parameter and so appears in URLs. Error messages name the path, never
the query string.

Details are requested with ``append_to_response=credits,keywords,external_ids,alternative_titles,
translations`` (5 of TMDB's 20 appendable objects): ``external_ids`` because ``/tv/{id}`` has no
``imdb_id`` field of its own, and IMDb ids are what IMDb rating exports are matched on;
``alternative_titles`` and ``translations`` because people's exports name titles in their own
language ("Mad Max: Estrada da Fúria"): they become the ``aliases`` column
(:func:`pipelines.lib.tmdb.convert.aliases_of`).

Late resolution uses ``/search/{movie|tv}`` (``query`` plus ``primary_release_year`` /
``first_air_date_year``) and ``/find/{imdb id}?external_source=imdb_id`` (``movie_results``,
``tv_results``, ...): :meth:`TMDBClient.search` and :meth:`TMDBClient.find_imdb`.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from datetime import date
from typing import Any, Self

import httpx
from tqdm import tqdm

from pipelines.lib.http_retry import RetriesExhausted, RetryPolicy, RetryTransport
from pipelines.lib.tmdb.errors import (
    TMDBConfigError,
    TMDBError,
    TMDBNotFound,
    TMDBPayloadError,
    TMDBTransportError,
    error_from_response,
)
from pipelines.lib.tmdb.kinds import Kind, check_imdb_id, check_kind, check_query

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.themoviedb.org/3"
DEFAULT_EXPORTS_URL = "https://files.tmdb.org/p/exports"
MAX_DISCOVER_PAGES = 500
DEFAULT_APPEND = ("credits", "keywords", "external_ids", "alternative_titles", "translations")
EXPORT_PREFIX = {
    "movie": "movie_ids",
    "tv": "tv_series_ids",
    "person": "person_ids",
    "collection": "collection_ids",
}


class TMDBClient:
    """Synchronous TMDB v3 client; use as a context manager (or call :meth:`close`)."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        bearer_token: str | None = None,
        max_concurrency: int = 8,
        max_retries: int = 5,
        exports_url: str = DEFAULT_EXPORTS_URL,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        backoff_base: float = 0.5,
        max_wait: float = 60.0,
        jitter: float = 0.5,
        progress: bool = True,
    ) -> None:
        if bool(api_key) == bool(bearer_token):
            raise TMDBConfigError(
                "give exactly one of api_key (v3) or bearer_token (v4 read token)"
            )
        if max_concurrency < 1:
            raise TMDBConfigError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if max_retries < 0:
            raise TMDBConfigError(f"max_retries must be >= 0, got {max_retries}")
        self.base_url = base_url.rstrip("/")
        self.exports_url = exports_url.rstrip("/")
        self.max_concurrency = max_concurrency
        self.retry = RetryPolicy(
            max_retries=max_retries,
            backoff_base=backoff_base,
            max_wait=max_wait,
            jitter=jitter,
            sleep=sleep,
        )
        self.progress = progress
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._auth_params = {"api_key": api_key} if api_key else {}
        headers = {"Accept": "application/json"}
        if bearer_token:
            headers["Authorization"] = f"Bearer {bearer_token}"
        self._http = httpx.Client(
            headers=headers,
            timeout=timeout,
            transport=RetryTransport(
                self.retry,
                name="TMDB",
                limits=httpx.Limits(
                    max_connections=max_concurrency, max_keepalive_connections=max_concurrency
                ),
            ),
        )

    @classmethod
    def from_env(
        cls,
        base_url: str = DEFAULT_BASE_URL,
        environ: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> TMDBClient:
        """Client authenticated from ``TMDB_READ_TOKEN`` (preferred) or ``TMDB_API_KEY``."""
        env = os.environ if environ is None else environ
        token = env.get("TMDB_READ_TOKEN", "").strip()
        key = env.get("TMDB_API_KEY", "").strip()
        if token:
            return cls(base_url, bearer_token=token, **kwargs)
        if key:
            return cls(base_url, api_key=key, **kwargs)
        raise TMDBConfigError(
            "TMDB live mode needs credentials: set TMDB_READ_TOKEN (v4 read access token) or "
            "TMDB_API_KEY (v3 key) in the environment, or use sources.tmdb.mode: recorded"
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- transport -----------------------------------------------------------------------------
    def _request(self, url: str, params: Mapping[str, Any] | None, path: str) -> httpx.Response:
        """GET holding one of ``max_concurrency`` slots, retried by the transport; returns a
        successful response or raises the typed error."""
        try:
            with self._slots:
                response = self._http.get(url, params=params)
        except RetriesExhausted as exc:
            if exc.response is None:
                raise TMDBTransportError(None, None, str(exc), path) from exc
            raise error_from_response(exc.response) from exc
        if response.is_error:
            raise error_from_response(response)
        return response

    def _get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        response = self._request(
            self.base_url + path, {**(params or {}), **self._auth_params}, path
        )
        try:
            return response.json()
        except ValueError as exc:
            raise TMDBPayloadError(
                response.status_code, None, f"invalid JSON: {exc}", path
            ) from exc

    # ---- endpoints -----------------------------------------------------------------------------
    def discover(
        self, kind: Kind, pages: int = 1, params: Mapping[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Results of ``/discover/{kind}`` pages 1..``pages`` (never past ``total_pages`` or 500).

        Default ordering ``popularity.desc`` without adult titles; ``params`` adds or overrides
        discover filters.
        """
        check_kind(kind)
        if pages < 1:
            raise ValueError(f"pages must be >= 1, got {pages}")
        if pages > MAX_DISCOVER_PAGES:
            logger.warning(
                "TMDB discover is capped at %d pages (asked %d)", MAX_DISCOVER_PAGES, pages
            )
        limit = min(pages, MAX_DISCOVER_PAGES)
        query = {"sort_by": "popularity.desc", "include_adult": "false", **(params or {})}
        path = f"/discover/{kind}"
        page = 1
        while page <= limit:
            data = self._get_json(path, {**query, "page": page})
            try:
                results = data["results"]
                total_pages = int(data["total_pages"])
            except (KeyError, TypeError, ValueError) as exc:
                raise TMDBPayloadError(200, None, f"page {page}: missing {exc}", path) from exc
            yield from results
            if page >= total_pages:
                break
            page += 1

    def details(
        self, kind: Kind, tmdb_id: int, append: Iterable[str] = DEFAULT_APPEND
    ) -> dict[str, Any]:
        """``/{kind}/{id}`` with ``append_to_response`` (credits, keywords, external_ids)."""
        check_kind(kind)
        appended = ",".join(append)
        params = {"append_to_response": appended} if appended else {}
        data = self._get_json(f"/{kind}/{int(tmdb_id)}", params)
        if not isinstance(data, dict) or "id" not in data:
            raise TMDBPayloadError(200, None, "details without an id", f"/{kind}/{tmdb_id}")
        return data

    def details_many(
        self,
        kind: Kind,
        ids: Iterable[int],
        *,
        append: Iterable[str] = DEFAULT_APPEND,
        skip_missing: bool = False,
    ) -> list[dict[str, Any]]:
        """Details of many titles, ``max_concurrency`` at a time, in the order of ``ids``.

        ``skip_missing`` leaves out ids TMDB answers 404 for (titles deleted between discover
        and details happen in live data); they are logged. Any other error cancels the rest.
        """
        check_kind(kind)
        wanted = list(dict.fromkeys(int(i) for i in ids))
        append = tuple(append)
        found: dict[int, dict[str, Any]] = {}
        missing: list[int] = []
        pool = ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="tmdb")
        try:
            futures: dict[Future[dict[str, Any]], int] = {
                pool.submit(self.details, kind, i, append): i for i in wanted
            }
            bar = tqdm(
                as_completed(futures),
                total=len(futures),
                desc=f"TMDB {kind} details",
                unit="title",
                disable=not self.progress,
                leave=False,
            )
            for future in bar:
                tmdb_id = futures[future]
                try:
                    found[tmdb_id] = future.result()
                except TMDBNotFound:
                    if not skip_missing:
                        raise
                    missing.append(tmdb_id)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        if missing:
            logger.warning(
                "TMDB: %d %s ids not found, skipped: %s", len(missing), kind, sorted(missing)[:20]
            )
        return [found[i] for i in wanted if i in found]

    def watch_providers(self, kind: Kind, tmdb_id: int) -> dict[str, Any]:
        """``/{kind}/{id}/watch/providers``: ``{id, results{COUNTRY{link, flatrate[], ...}}}``."""
        check_kind(kind)
        data = self._get_json(f"/{kind}/{int(tmdb_id)}/watch/providers")
        if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
            raise TMDBPayloadError(
                200, None, "no results object", f"/{kind}/{tmdb_id}/watch/providers"
            )
        return data

    def watch_providers_many(self, kind: Kind, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Watch providers of many titles, concurrently (404s are skipped and logged)."""
        check_kind(kind)
        wanted = list(dict.fromkeys(int(i) for i in ids))
        out: dict[int, dict[str, Any]] = {}
        missing = 0
        with ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="tmdb") as pool:
            futures = {pool.submit(self.watch_providers, kind, i): i for i in wanted}
            for future in tqdm(
                as_completed(futures),
                total=len(futures),
                desc=f"TMDB {kind} providers",
                unit="title",
                disable=not self.progress,
                leave=False,
            ):
                try:
                    out[futures[future]] = future.result()
                except TMDBNotFound:
                    missing += 1
        if missing:
            logger.warning("TMDB: no watch providers resource for %d %s ids", missing, kind)
        return {i: out[i] for i in wanted if i in out}

    def search(self, kind: Kind, query: str, year: int | None = None) -> list[dict[str, Any]]:
        """First page of ``/search/{kind}`` for ``query`` (adult titles excluded), restricted to
        ``year`` when given (``primary_release_year`` for movies, ``first_air_date_year`` for TV).
        Results have the discover shape, best match first."""
        check_kind(kind)
        params: dict[str, Any] = {"query": check_query(query), "include_adult": "false", "page": 1}
        if year is not None:
            params["primary_release_year" if kind == "movie" else "first_air_date_year"] = year
        path = f"/search/{kind}"
        data = self._get_json(path, params)
        if not isinstance(data, dict) or not isinstance(data.get("results"), list):
            raise TMDBPayloadError(200, None, "search answer without a results list", path)
        return data["results"]

    def find_imdb(self, imdb_id: str) -> dict[Kind, list[dict[str, Any]]]:
        """``/find/{imdb_id}?external_source=imdb_id``: ``{"movie": movie_results, "tv":
        tv_results}`` (an unknown id gives empty lists, as TMDB answers)."""
        check_imdb_id(imdb_id)
        path = f"/find/{imdb_id}"
        data = self._get_json(path, {"external_source": "imdb_id"})
        try:
            return {"movie": list(data["movie_results"]), "tv": list(data["tv_results"])}
        except (KeyError, TypeError) as exc:
            raise TMDBPayloadError(200, None, f"find answer without {exc}", path) from exc

    def genres(self, kind: Kind) -> dict[int, str]:
        """``/genre/{kind}/list`` as ``{id: name}``."""
        check_kind(kind)
        path = f"/genre/{kind}/list"
        data = self._get_json(path)
        try:
            return {int(g["id"]): str(g["name"]) for g in data["genres"]}
        except (KeyError, TypeError, ValueError) as exc:
            raise TMDBPayloadError(200, None, f"bad genre list: {exc}", path) from exc

    def daily_export_ids(self, kind: str, day: date) -> list[dict[str, Any]]:
        """Download and parse the daily id export of ``kind`` (movie, tv, person, collection).

        A missing file (not yet published, or older than three months) raises
        :class:`TMDBNotFound`; a malformed line raises :class:`TMDBPayloadError` naming it.
        """
        if kind not in EXPORT_PREFIX:
            raise ValueError(f"export kind must be one of {sorted(EXPORT_PREFIX)}, got {kind!r}")
        name = f"{EXPORT_PREFIX[kind]}_{day:%m_%d_%Y}.json.gz"
        url = f"{self.exports_url}/{name}"
        try:
            response = self._request(url, None, name)
        except TMDBError as exc:
            if exc.status in (403, 404):
                raise TMDBNotFound(
                    exc.status, None, f"daily export {name} is not available", name
                ) from exc
            raise
        try:
            text = gzip.decompress(response.content).decode("utf-8")
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise TMDBPayloadError(
                response.status_code, None, f"not a gzip of UTF-8 text: {exc}", name
            ) from exc
        rows: list[dict[str, Any]] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TMDBPayloadError(
                    200, None, f"line {number}: invalid JSON: {exc.msg}", name
                ) from exc
            if not isinstance(row, dict) or not isinstance(row.get("id"), int):
                raise TMDBPayloadError(200, None, f"line {number}: no integer id", name)
            rows.append(row)
        logger.info("TMDB export %s: %d ids", name, len(rows))
        return rows
