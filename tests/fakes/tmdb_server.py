"""A fake TMDB API v3 (and daily-export file host) replaying ``data/sample/recorded/tmdb``.

Routes, as on ``api.themoviedb.org``: ``/3/discover/{kind}``, ``/3/{kind}/{id}`` (honouring
``append_to_response``), ``/3/{kind}/{id}/watch/providers``, ``/3/genre/{kind}/list``,
``/3/search/{kind}?query=`` (a recorded first page per query; ``primary_release_year`` /
``first_air_date_year`` filter it as TMDB does; an unrecorded query finds nothing),
``/3/find/{imdb id}?external_source=imdb_id`` (an unrecorded id finds nothing; another
``external_source`` is a 400); and, as on
``files.tmdb.org``, ``/p/exports/<file>.json.gz`` (no key needed). Errors carry TMDB's real bodies:
401 code 7 for a missing or wrong key (``api_key`` query parameter or ``Authorization: Bearer``),
404 code 34, 400 code 22 for a page outside 1..500, 429 code 25 with ``Retry-After`` when injected.

``discover_total_pages`` lets tests pretend the catalogue is bigger than the recording (pages
beyond the recorded ones repeat it), so a client's 500-page cap can be exercised.

Usage::

    with FakeTMDBServer(recorded_dir) as fake:
        client = TMDBClient(fake.base_url, api_key=RECORDED_API_KEY, exports_url=fake.exports_url)
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any

from pipelines.lib.recorded import RecordedLayout, read_json
from tests.fakes.loopback import LoopbackServer, Request, Response

logger = logging.getLogger(__name__)

RECORDED_API_KEY = "recorded-sample-key"
"""The fixed key the fake TMDB server accepts by default (not a secret)."""

MAX_PAGE = 500

_DETAILS = re.compile(r"^/3/(movie|tv)/(\d+)$")
_PROVIDERS = re.compile(r"^/3/(movie|tv)/(\d+)/watch/providers$")
_DISCOVER = re.compile(r"^/3/discover/(movie|tv)$")
_GENRES = re.compile(r"^/3/genre/(movie|tv)/list$")
_SEARCH = re.compile(r"^/3/search/(movie|tv)$")
_FIND = re.compile(r"^/3/find/([^/]+)$")
_YEAR_PARAM = {"movie": "primary_release_year", "tv": "first_air_date_year"}
_EXPORT = re.compile(r"^/p/exports/([A-Za-z0-9_]+\.json\.gz)$")


def tmdb_error(status: int, code: int, message: str, **headers: str) -> Response:
    """A TMDB error response: ``{"success": false, "status_code": code, "status_message": ...}``."""
    body = {"success": False, "status_code": code, "status_message": message}
    return Response(status, body, headers=dict(headers))


def not_found() -> Response:
    return tmdb_error(404, 34, "The resource you requested could not be found.")


class FakeTMDBServer(LoopbackServer):
    """Serves the recorded TMDB responses on ``127.0.0.1``; ``with`` returns the running server."""

    name = "tmdb"

    def __init__(
        self,
        recorded_dir: Path,
        api_key: str = RECORDED_API_KEY,
        latency: float = 0.0,
        discover_total_pages: int | None = None,
    ) -> None:
        super().__init__(latency=latency)
        self.layout = RecordedLayout(Path(recorded_dir))
        self.layout.require("tmdb")
        self.api_key = api_key
        self.discover_total_pages = discover_total_pages
        self._throttle_lock = threading.Lock()
        self._throttle_left = 0
        self._retry_after: str | None = None

    @property
    def base_url(self) -> str:
        """API base URL, the equivalent of ``https://api.themoviedb.org/3``."""
        return self.root_url + "/3"

    @property
    def exports_url(self) -> str:
        """Daily-export base URL, the equivalent of ``https://files.tmdb.org/p/exports``."""
        return self.root_url + "/p/exports"

    def inject_429(self, count: int, retry_after: float | None = 1) -> None:
        """Answer the next ``count`` API requests with 429 (``Retry-After`` omitted when None)."""
        with self._throttle_lock:
            self._throttle_left = count
            self._retry_after = None if retry_after is None else f"{retry_after:g}"

    def api_requests(self, path_prefix: str = "/3/") -> list[Request]:
        """Logged requests whose path starts with ``path_prefix``."""
        return [r for r in self.requests if r.path.startswith(path_prefix)]

    # ---- routing -----------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if request.method != "GET":
            return not_found()
        export = _EXPORT.match(request.path)
        if export:
            return self._export(export.group(1))
        if not request.path.startswith("/3/"):
            return not_found()
        throttled = self._throttled()
        if throttled is not None:
            return throttled
        if not self._authorised(request):
            return tmdb_error(401, 7, "Invalid API key: You must be granted a valid key.")
        if m := _DISCOVER.match(request.path):
            return self._discover(m.group(1), request.query)
        if m := _GENRES.match(request.path):
            return Response(200, read_json(self.layout.tmdb_genres(m.group(1))))
        if m := _PROVIDERS.match(request.path):
            path = self.layout.tmdb_providers(m.group(1), int(m.group(2)))
            return Response(200, read_json(path)) if path.is_file() else not_found()
        if m := _SEARCH.match(request.path):
            return self._search(m.group(1), request.query)
        if m := _FIND.match(request.path):
            return self._find(m.group(1), request.query)
        if m := _DETAILS.match(request.path):
            return self._details(m.group(1), int(m.group(2)), request.query)
        return not_found()

    def _throttled(self) -> Response | None:
        with self._throttle_lock:
            if self._throttle_left <= 0:
                return None
            self._throttle_left -= 1
            retry_after = self._retry_after
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return tmdb_error(
            429, 25, "Your request count (41) is over the allowed limit of (40).", **headers
        )

    def _authorised(self, request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            return auth.removeprefix("Bearer ").strip() == self.api_key
        return request.query.get("api_key") == self.api_key

    def _discover(self, kind: str, query: dict[str, str]) -> Response:
        raw = query.get("page", "1")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
            return tmdb_error(
                400,
                22,
                "Invalid page: Pages start at 1 and max at 500. They are expected to be an integer.",
            )
        page = int(raw)
        first = read_json(self.layout.tmdb_discover(kind, 1))
        recorded_pages = int(first["total_pages"])
        total_pages = self.discover_total_pages or recorded_pages
        if page > total_pages:
            results: list[dict[str, Any]] = []
        else:
            source = (page - 1) % recorded_pages + 1
            results = read_json(self.layout.tmdb_discover(kind, source))["results"]
        total_results = (
            int(first["total_results"])
            if self.discover_total_pages is None
            else total_pages * len(first["results"])
        )
        return Response(
            200,
            {
                "page": page,
                "results": results,
                "total_pages": total_pages,
                "total_results": total_results,
            },
        )

    def _search(self, kind: str, query: dict[str, str]) -> Response:
        year = query.get(_YEAR_PARAM[kind], "").strip() or None
        results = self.layout.search_results(kind, query.get("query", ""), year)
        return Response(
            200,
            {
                "page": 1,
                "results": results,
                "total_pages": 1,
                "total_results": len(results),
            },
        )

    def _find(self, external_id: str, query: dict[str, str]) -> Response:
        if query.get("external_source") != "imdb_id":
            return tmdb_error(400, 5, "Invalid parameters: Your request parameters are incorrect.")
        return Response(200, self.layout.find_answer(external_id))

    def _details(self, kind: str, tmdb_id: int, query: dict[str, str]) -> Response:
        append = query.get("append_to_response", "").split(",")
        details = self.layout.details_answer(kind, tmdb_id, append)
        return not_found() if details is None else Response(200, details)

    def _export(self, name: str) -> Response:
        path = self.layout.tmdb_exports / name
        if not path.is_file():
            return Response(
                404, raw=b"<Error><Code>NoSuchKey</Code></Error>", content_type="application/xml"
            )
        return Response(200, raw=path.read_bytes(), content_type="application/octet-stream")
