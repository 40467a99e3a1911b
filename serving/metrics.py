"""Prometheus metrics of the service, served by BentoML's ``GET /metrics`` (text format).

Ours, next to BentoML's own ``bentoml_service_*`` series:

``media_gateway_request_duration_seconds{endpoint, method, status}``
    Histogram of request latency. ``endpoint`` is the route *template* (``/users/{user}/export``,
    ``/content/{content_id}``), never the raw path, so no user id or title id becomes a label and
    the number of series stays bounded (unknown paths are ``unmatched``).
``media_gateway_cache_requests_total{cache, result}``
    Lookups of the search, availability and /recommend caches, ``result`` = ``hit`` | ``miss``
    (hit rate = hits / all).
``media_gateway_model_info{version, mode}``
    1 for the model each worker serves (``mode`` = ``hybrid`` or ``content+popularity``).
``media_gateway_model_epsilon`` / ``media_gateway_model_delta``
    The serving champion's (ε, δ), read from the privacy report the training run recorded with the
    model (``privacy_report.json``, computed by the accountant); absent for a non-DP champion.

Several workers: BentoML sets ``PROMETHEUS_MULTIPROC_DIR`` in each worker before the service starts;
the metrics are created lazily (first use, in the worker) so they land in that directory and
``/metrics`` aggregates every worker (counters and histograms summed, gauges by ``livemax``).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
UNMATCHED = "unmatched"


@dataclass
class ServingMetrics:
    request_seconds: Any
    cache_requests: Any
    model_info: Any
    model_epsilon: Any
    model_delta: Any


_metrics: ServingMetrics | None = None
_metrics_lock = threading.Lock()


def serving_metrics() -> ServingMetrics:
    """The process's metric objects (created on first call; see module docstring)."""
    global _metrics
    with _metrics_lock:
        if _metrics is None:
            from prometheus_client import Counter, Gauge, Histogram

            _metrics = ServingMetrics(
                request_seconds=Histogram(
                    "media_gateway_request_duration_seconds",
                    "Request latency by route template, method and status",
                    ["endpoint", "method", "status"],
                    buckets=LATENCY_BUCKETS,
                ),
                cache_requests=Counter(
                    "media_gateway_cache_requests_total",
                    "Cache lookups by cache and result (hit or miss)",
                    ["cache", "result"],
                ),
                model_info=Gauge(
                    "media_gateway_model_info",
                    "1 for the model version served",
                    ["version", "mode"],
                    multiprocess_mode="livemax",
                ),
                model_epsilon=Gauge(
                    "media_gateway_model_epsilon",
                    "Privacy epsilon of the serving champion (from its recorded privacy report)",
                    multiprocess_mode="livemax",
                ),
                model_delta=Gauge(
                    "media_gateway_model_delta",
                    "Privacy delta of the serving champion (from its recorded privacy report)",
                    multiprocess_mode="livemax",
                ),
            )
        return _metrics


def count_cache_lookup(cache: str, hit: bool) -> None:
    serving_metrics().cache_requests.labels(cache=cache, result="hit" if hit else "miss").inc()


_served: dict[str, tuple[str, str]] = {}


def observe_model(version: str | None, mode: str, privacy: dict[str, Any] | None) -> None:
    """Publish the served model (called after every load or swap)."""
    m = serving_metrics()
    previous = _served.get("model")
    if previous is not None:
        m.model_info.labels(version=previous[0], mode=previous[1]).set(0)
    label = version or "none"
    m.model_info.labels(version=label, mode=mode).set(1)
    _served["model"] = (label, mode)
    epsilon = (privacy or {}).get("epsilon")
    delta = (privacy or {}).get("delta")
    m.model_epsilon.set(float(epsilon) if epsilon is not None else float("nan"))
    m.model_delta.set(float(delta) if delta is not None else float("nan"))


class RouteTemplates:
    """Maps a request path to its route template (``unmatched`` if no route matches)."""

    def __init__(self, static: Iterable[str], templated: Iterable[tuple[str, re.Pattern]]) -> None:
        self.static = frozenset(static)
        self.templated = list(templated)

    @classmethod
    def from_app(cls, static: Iterable[str], app: Any) -> RouteTemplates:
        """Static paths plus every route of a Starlette/FastAPI ``app`` (its ``path_regex``)."""
        templated = [
            (route.path, route.path_regex)
            for route in getattr(app, "routes", [])
            if hasattr(route, "path_regex") and "{" in route.path
        ]
        fixed = [r.path for r in getattr(app, "routes", []) if "{" not in getattr(r, "path", "{")]
        return cls([*static, *fixed], templated)

    def __call__(self, path: str) -> str:
        if path in self.static:
            return path
        for template, regex in self.templated:
            if regex.match(path):
                return template
        return UNMATCHED


class RequestMetricsMiddleware:
    """ASGI middleware observing every HTTP request's latency under its route template."""

    def __init__(self, app: ASGIApp, templates: RouteTemplates) -> None:
        self.app = app
        self.templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        finally:
            serving_metrics().request_seconds.labels(
                endpoint=self.templates(scope["path"]),
                method=scope.get("method", ""),
                status=str(status),
            ).observe(time.perf_counter() - started)
