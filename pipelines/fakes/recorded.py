"""Shared helpers of the recorded sample: file layout, JSON I/O and the loopback HTTP server.

The recorded responses live under ``data/sample/recorded`` (written by
``scripts/make_sample_catalog.py``)::

    tmdb/{movie|tv}/{id}.json                    details with credits, keywords, external_ids,
                                                 alternative_titles, translations appended
    tmdb/search/{movie|tv}/{query key}.json      /search first pages (every year; the fake filters)
    tmdb/find/{imdb id}.json                     /find answers (external_source=imdb_id)
    tmdb/discover/{movie|tv}/page-{n}.json       discover pages, 20 results each
    tmdb/genre/{movie|tv}.json                   genre lists
    tmdb/watch_providers/{movie|tv}/{id}.json    watch providers per country
    tmdb/exports/{movie_ids|tv_series_ids}_MM_DD_YYYY.json.gz
    justwatch/search/{COUNTRY}/{query key}.json  GetSearchTitles responses
    justwatch/offers/{node id}.json              GetTitleOffers responses (every recorded country)

:class:`LoopbackServer` runs a ``ThreadingHTTPServer`` on ``127.0.0.1`` (port 0) in a background
thread; the fakes subclass it and implement :meth:`LoopbackServer.handle`. It counts requests in
flight (so tests can check a client's concurrency bound) and keeps a request log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
import unicodedata
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

RECORDED_API_KEY = "recorded-sample-key"
"""The fixed key the fake TMDB server accepts in ``recorded`` mode (not a secret)."""

RECORDED_COUNTRIES = ("US", "GB", "DE")
"""Countries the JustWatch and TMDB provider recordings cover."""

TMDB_KINDS = ("movie", "tv")
EXPORT_PREFIX = {"movie": "movie_ids", "tv": "tv_series_ids"}
"""TMDB daily-export file prefix per kind."""


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


@dataclass(frozen=True)
class RecordedLayout:
    """Paths of the recorded responses under ``root``."""

    root: Path

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


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary sibling and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@dataclass
class Response:
    """What a fake answers: status, JSON-able body (or raw bytes) and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json;charset=utf-8"

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class Request:
    """One request as a fake sees it (the log keeps these; query values are single strings)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # keep-alive + small writes would stall on delayed ACKs
    server: _Server

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=method,
            path=parts.path,
            query=query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        response = self.server.owner.dispatch(request)
        data = response.payload()
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake %s: " + format, self.server.owner.name, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: LoopbackServer


class LoopbackServer(ABC):
    """A real HTTP server on ``127.0.0.1:<free port>``; ``with`` starts and stops it.

    Subclasses implement :meth:`handle`. ``latency`` (seconds) is added to every request so that
    concurrent clients really overlap; :attr:`max_in_flight` is the most requests seen at once.
    """

    name = "loopback"

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.requests: list[Request] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError(f"fake {self.name} server already started")
        server = _Server(("127.0.0.1", 0), _Handler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-{self.name}",
            daemon=True,
        )
        self._thread.start()
        logger.debug("fake %s listening on %s", self.name, self.root_url)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the running server."""
        if self._server is None:
            raise RuntimeError(f"fake {self.name} server is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # ---- request handling ------------------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(request)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            if self.latency:
                time.sleep(self.latency)
            return self.handle(request)
        except RecordingError as exc:
            logger.error("fake %s: %s", self.name, exc)
            return Response(500, {"errors": [{"message": str(exc)}]})
        finally:
            with self._lock:
                self._in_flight -= 1

    @abstractmethod
    def handle(self, request: Request) -> Response:
        """Answer one request (called from the server's worker threads)."""
