"""The loopback HTTP server the fake TMDB and JustWatch servers build on.

:class:`LoopbackServer` runs a ``ThreadingHTTPServer`` on ``127.0.0.1`` (port 0) in a background
thread; the fakes subclass it and implement :meth:`LoopbackServer.handle`. It counts requests in
flight (so tests can check a client's concurrency bound) and keeps a request log. The recordings
they replay, and the replay rules, are :mod:`pipelines.lib.recorded`'s.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from pipelines.lib.recorded import RecordingError

logger = logging.getLogger(__name__)


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
