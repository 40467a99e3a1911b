"""TMDB API v3 client and pure converters from TMDB JSON to lake rows (TITLES, AVAILABILITY).

The client is synchronous (httpx) with a bounded thread pool for many detail requests. Every HTTP
request holds one of ``max_concurrency`` slots. 429 answers are retried up to ``max_retries``
times, waiting ``Retry-After`` when the server sends it and ``backoff_base * 2**attempt`` seconds
(capped at ``max_wait``) when it does not; 5xx answers and network errors are retried the same
way. ``sleep`` is injectable so tests run instantly and can read the waits. TMDB error bodies
``{"success": false, "status_code": N, "status_message": ...}`` become typed :class:`TMDBError`
subclasses.

Credentials only come from the caller (``TMDBClient.from_env`` reads ``TMDB_READ_TOKEN`` or
``TMDB_API_KEY`` when called). Prefer the v4 read token: it travels in a header, while a v3
``api_key`` is a query parameter and so appears in URLs. Error messages name the path, never
the query string.

Details are requested with ``append_to_response=credits,keywords,external_ids,alternative_titles,
translations`` (5 of TMDB's 20 appendable objects): ``external_ids`` because ``/tv/{id}`` has no
``imdb_id`` field of its own, and IMDb ids are what IMDb rating exports are matched on;
``alternative_titles`` and ``translations`` because people's exports name titles in their own
language ("Mad Max: Estrada da Fúria"): they become the ``aliases`` column (:func:`aliases_of`).
Wire shapes: movie ``alternative_titles{titles[{iso_3166_1, title, type}]}``, TV
``alternative_titles{results[...]}``; ``translations{translations[{iso_3166_1, iso_639_1, name,
english_name, data{title (movie) | name (TV), overview, ...}}]}``.

Late resolution uses ``/search/{movie|tv}`` (``query`` plus ``primary_release_year`` /
``first_air_date_year``) and ``/find/{imdb id}?external_source=imdb_id`` (``movie_results``,
``tv_results``, ...): :meth:`TMDBClient.search` and :meth:`TMDBClient.find_imdb`.
"""

from __future__ import annotations

import email.utils
import gzip
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from datetime import UTC, date, datetime
from typing import Any, Literal, Self

import httpx
import polars as pl
from tqdm import tqdm

from core.content import content_hash, content_text
from core.schemas import AVAILABILITY, TITLES, conform

logger = logging.getLogger(__name__)

Kind = Literal["movie", "tv"]
KINDS: tuple[Kind, ...] = ("movie", "tv")
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
CAST_LIMIT = 10
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})

MONETIZATION = {
    "flatrate": "FLATRATE",
    "rent": "RENT",
    "buy": "BUY",
    "ads": "ADS",
    "free": "FREE",
}
"""TMDB watch-provider category -> AVAILABILITY monetization."""

PROVIDER_TECHNICAL_NAMES = {
    8: "netflix",
    9: "amazonprime",
    10: "amazonvideo",
    337: "disneyplus",
    15: "hulu",
    1899: "max",
    384: "hbomax",
    350: "appletvplus",
    2: "itunes",
    3: "googleplay",
    73: "tubi",
    300: "pluto",
    531: "paramountplus",
    386: "peacocktv",
    283: "crunchyroll",
    192: "youtube",
    7: "vudu",
    39: "nowtv",
    30: "wowtv",
}
"""TMDB provider id (shared with JustWatch's package id) -> JustWatch technical name, so that
TMDB and JustWatch rows use the same ``provider_id``. Unknown ids become ``"tmdb:<id>"``."""


# ---- errors ---------------------------------------------------------------------------------------
class TMDBConfigError(ValueError):
    """The client is misconfigured (e.g. no credentials in the environment)."""


class TMDBError(RuntimeError):
    """An error answer from TMDB: HTTP ``status``, TMDB ``code`` (``status_code``) and message."""

    def __init__(self, status: int | None, code: int | None, message: str, path: str = "") -> None:
        self.status = status
        self.code = code
        self.message = message
        self.path = path
        where = f" for {path}" if path else ""
        super().__init__(f"TMDB error{where}: HTTP {status}, code {code}: {message}")


class TMDBAuthError(TMDBError):
    """Code 7 / HTTP 401: invalid or missing API key."""


class TMDBNotFound(TMDBError):
    """Code 34 / HTTP 404: the resource does not exist."""


class TMDBRateLimited(TMDBError):
    """Code 25 / HTTP 429, still throttled after every retry."""


class TMDBInvalidPage(TMDBError):
    """Code 22: page outside 1..500."""


class TMDBTransportError(TMDBError):
    """The request never got an answer (connection, timeout), after every retry."""


class TMDBPayloadError(TMDBError):
    """An answer that is not the expected JSON shape (the message says what is wrong)."""


_BY_CODE: dict[int, type[TMDBError]] = {
    7: TMDBAuthError,
    34: TMDBNotFound,
    25: TMDBRateLimited,
    22: TMDBInvalidPage,
}
_BY_STATUS: dict[int, type[TMDBError]] = {
    401: TMDBAuthError,
    404: TMDBNotFound,
    429: TMDBRateLimited,
}


def error_from_response(response: httpx.Response) -> TMDBError:
    """The typed error for an error response (TMDB body when present, else the HTTP status)."""
    path = response.request.url.path if response.request is not None else ""
    code: int | None = None
    message = response.reason_phrase or "error"
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "status_code" in body:
        code = int(body["status_code"])
        message = str(body.get("status_message", message))
    cls = _BY_CODE.get(code) if code is not None else None
    cls = cls or _BY_STATUS.get(response.status_code, TMDBError)
    return cls(response.status_code, code, message, path)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent
    or unparseable (the caller then backs off exponentially)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        logger.debug("ignoring unparseable Retry-After header %r", text)
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _check_kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise ValueError(f"kind must be 'movie' or 'tv', got {kind!r}")
    return kind  # type: ignore[return-value]


# ---- client ---------------------------------------------------------------------------------------
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
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.max_wait = max_wait
        self.progress = progress
        self._sleep = sleep
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._auth_params = {"api_key": api_key} if api_key else {}
        headers = {"Accept": "application/json"}
        if bearer_token:
            headers["Authorization"] = f"Bearer {bearer_token}"
        self._http = httpx.Client(
            headers=headers,
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=max_concurrency, max_keepalive_connections=max_concurrency
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
    def _backoff(self, attempt: int) -> float:
        return min(self.max_wait, self.backoff_base * 2**attempt)

    def _request(self, url: str, params: Mapping[str, Any] | None, path: str) -> httpx.Response:
        """GET with bounded concurrency and retries; returns a successful response."""
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                with self._slots:
                    response = self._http.get(url, params=params)
            except httpx.TransportError as exc:
                if last:
                    raise TMDBTransportError(
                        None, None, f"{type(exc).__name__}: {exc}", path
                    ) from exc
                wait = self._backoff(attempt)
                logger.warning(
                    "TMDB %s: %s; retry %d in %.1fs", path, type(exc).__name__, attempt + 1, wait
                )
                self._sleep(wait)
                continue
            if response.status_code in RETRYABLE_STATUS and not last:
                header = retry_after_seconds(response.headers.get("Retry-After"))
                wait = min(self.max_wait, header) if header is not None else self._backoff(attempt)
                logger.warning(
                    "TMDB %s: HTTP %d; retry %d in %.1fs",
                    path,
                    response.status_code,
                    attempt + 1,
                    wait,
                )
                self._sleep(wait)
                continue
            if response.is_error:
                raise error_from_response(response)
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")

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
        _check_kind(kind)
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
        _check_kind(kind)
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
        _check_kind(kind)
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
        _check_kind(kind)
        data = self._get_json(f"/{kind}/{int(tmdb_id)}/watch/providers")
        if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
            raise TMDBPayloadError(
                200, None, "no results object", f"/{kind}/{tmdb_id}/watch/providers"
            )
        return data

    def watch_providers_many(self, kind: Kind, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Watch providers of many titles, concurrently (404s are skipped and logged)."""
        _check_kind(kind)
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
        _check_kind(kind)
        if not query.strip():
            raise ValueError("search query must not be empty")
        params: dict[str, Any] = {"query": query.strip(), "include_adult": "false", "page": 1}
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
        if not re.fullmatch(r"tt\d{5,10}", imdb_id or ""):
            raise ValueError(f"not an IMDb title id: {imdb_id!r}")
        path = f"/find/{imdb_id}"
        data = self._get_json(path, {"external_source": "imdb_id"})
        try:
            return {"movie": list(data["movie_results"]), "tv": list(data["tv_results"])}
        except (KeyError, TypeError) as exc:
            raise TMDBPayloadError(200, None, f"find answer without {exc}", path) from exc

    def genres(self, kind: Kind) -> dict[int, str]:
        """``/genre/{kind}/list`` as ``{id: name}``."""
        _check_kind(kind)
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


# ---- pure converters ----------------------------------------------------------------------------
def title_id(kind: Kind, tmdb_id: int) -> str:
    """``movie:<id>`` or ``tv:<id>``."""
    return f"{_check_kind(kind)}:{int(tmdb_id)}"


def _date(value: Any, where: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise TMDBPayloadError(None, None, f"bad date {value!r}", where) from exc


def _names(items: Any) -> list[str]:
    return [str(i["name"]) for i in items or [] if isinstance(i, dict) and i.get("name")]


def aliases_of(kind: Kind, details: Mapping[str, Any], names: Iterable[str] = ()) -> list[dict]:
    """ALIAS rows ``{country, language, title}`` from appended ``alternative_titles`` (language
    null) and ``translations`` (country and language), without empty titles, the title's own
    ``names`` and repeats, in TMDB's order."""
    alt = details.get("alternative_titles") or {}
    alternatives = alt.get("titles" if kind == "movie" else "results") or []
    translations = (details.get("translations") or {}).get("translations") or []
    seen = {n.strip().casefold() for n in names if n}
    out: list[dict[str, Any]] = []

    def add(country: Any, language: Any, title: Any) -> None:
        text = str(title or "").strip()
        key = (text.casefold(), country, language)
        if not text or text.casefold() in seen or key in seen_keys:
            return
        seen_keys.add(key)
        out.append({"country": country or None, "language": language or None, "title": text})

    seen_keys: set[tuple[str, Any, Any]] = set()
    for a in alternatives:
        if isinstance(a, dict):
            add(a.get("iso_3166_1"), None, a.get("title"))
    for t in translations:
        if isinstance(t, dict):
            data = t.get("data") or {}
            add(
                t.get("iso_3166_1"),
                t.get("iso_639_1"),
                data.get("title" if kind == "movie" else "name"),
            )
    return out


def details_to_title(kind: Kind, details: Mapping[str, Any]) -> dict[str, Any]:
    """One TITLES row from a details response (with appended credits, keywords, external_ids,
    alternative_titles and translations; any of them may be absent).

    Series: ``directors`` are the creators, ``runtime`` the first ``episode_run_time``. A runtime
    of 0 (TMDB's "unknown") becomes null. ``content_hash`` hashes :func:`content_text` of the row.
    """
    _check_kind(kind)
    if "id" not in details:
        raise TMDBPayloadError(None, None, "details without an id", kind)
    tmdb_id = int(details["id"])
    where = f"/{kind}/{tmdb_id}"
    credits = details.get("credits") or {}
    cast = sorted(
        (c for c in credits.get("cast") or [] if c.get("name")),
        key=lambda c: (c.get("order") is None, c.get("order") or 0),
    )
    external = details.get("external_ids") or {}
    if kind == "movie":
        name, original = details.get("title"), details.get("original_title")
        released = _date(details.get("release_date"), where)
        directors = list(
            dict.fromkeys(
                c["name"]
                for c in credits.get("crew") or []
                if c.get("job") == "Director" and c.get("name")
            )
        )
        runtime = details.get("runtime")
        keywords = _names((details.get("keywords") or {}).get("keywords"))
        imdb = details.get("imdb_id") or external.get("imdb_id")
    else:
        name, original = details.get("name"), details.get("original_name")
        released = _date(details.get("first_air_date"), where)
        directors = _names(details.get("created_by"))
        runtimes = details.get("episode_run_time") or []
        runtime = runtimes[0] if runtimes else None
        keywords = _names((details.get("keywords") or {}).get("results"))
        imdb = external.get("imdb_id")
    row: dict[str, Any] = {
        "title_id": title_id(kind, tmdb_id),
        "tmdb_id": tmdb_id,
        "imdb_id": imdb or None,
        "type": "movie" if kind == "movie" else "series",
        "title": name or original,
        "original_title": original or name,
        "year": released.year if released else None,
        "release_date": released,
        "overview": (details.get("overview") or "").strip() or None,
        "genres": _names(details.get("genres")),
        "keywords": keywords,
        "cast": [str(c["name"]) for c in cast[:CAST_LIMIT]],
        "directors": directors,
        "runtime": int(runtime) if runtime else None,
        "language": details.get("original_language") or None,
        "popularity": details.get("popularity"),
        "vote_average": details.get("vote_average"),
        "vote_count": details.get("vote_count"),
        "poster_path": details.get("poster_path"),
        "source": "tmdb",
        "aliases": aliases_of(kind, details, [name or "", original or ""]),
    }
    if not row["title"]:
        raise TMDBPayloadError(None, None, "details without a title or name", where)
    row["content_hash"] = content_hash(content_text(row))
    return row


def titles_frame(rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """TITLES-conformed frame from :func:`details_to_title` rows."""
    return conform(pl.DataFrame(list(rows), schema=TITLES), "titles")


def provider_technical_name(provider_id: int) -> str:
    """JustWatch technical name of a TMDB provider id (``"tmdb:<id>"`` when not mapped)."""
    return PROVIDER_TECHNICAL_NAMES.get(int(provider_id), f"tmdb:{int(provider_id)}")


def providers_to_availability(
    kind: Kind,
    payload: Mapping[str, Any],
    countries: Iterable[str] | None = None,
    last_seen: datetime | None = None,
) -> list[dict[str, Any]]:
    """AVAILABILITY rows from a watch-providers response (source ``"tmdb"``).

    ``countries`` limits the result (all countries when None); ``deep_link`` is the country's TMDB
    ``link`` (TMDB gives no per-service links); price and presentation are unknown (null).
    """
    _check_kind(kind)
    if "id" not in payload:
        raise TMDBPayloadError(None, None, "watch providers without an id", kind)
    tid = title_id(kind, payload["id"])
    keep = set(countries) if countries is not None else None
    seen_at = last_seen or datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for country, entry in sorted((payload.get("results") or {}).items()):
        if keep is not None and country not in keep:
            continue
        for category, monetization in MONETIZATION.items():
            for provider in entry.get(category) or []:
                rows.append(
                    {
                        "title_id": tid,
                        "country": country,
                        "provider_id": provider_technical_name(provider["provider_id"]),
                        "provider_name": provider.get("provider_name"),
                        "monetization": monetization,
                        "presentation_type": None,
                        "price": None,
                        "currency": None,
                        "deep_link": entry.get("link"),
                        "source": "tmdb",
                        "last_seen": seen_at,
                    }
                )
    return rows


def availability_frame(rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """AVAILABILITY-conformed frame from row dicts."""
    return conform(pl.DataFrame(list(rows), schema=AVAILABILITY), "availability")
