"""A fake JustWatch GraphQL endpoint (``POST /graphql``) replaying ``data/sample/recorded/justwatch``.

It understands the two operations :mod:`pipelines.lib.justwatch` sends:

* ``GetSearchTitles``: answered from ``justwatch/search/<COUNTRY>/<query key>.json``, cut to
  ``first``; a query that was not recorded gets an empty result (as a search with no hits would);
* ``GetTitleOffers``: the node from ``justwatch/offers/<node id>.json`` with one list per
  ``<alias>: offers(country: <CC>, ...)`` found in the query text (a country that was not recorded
  gets ``[]``); an unknown node id gives ``{"node": null}``.

Anything else gets a top-level GraphQL ``errors`` list (HTTP 200, like a GraphQL server):
unknown operations, missing or ill-typed variables, bad country or language codes, and ``first``
above 100 (JustWatch's complexity limit). A body that is not JSON gets HTTP 400.
:meth:`FakeJustWatchServer.inject_status` makes the next answers fail with an HTTP status,
:meth:`FakeJustWatchServer.inject_graphql_errors` the next one carry GraphQL errors.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

from pipelines.lib.recorded import RecordedLayout
from tests.fakes.loopback import LoopbackServer, Request, Response

COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
LANGUAGE_RE = re.compile(r"^[a-z]{2}(-[0-9A-Z]+)?$")
OFFERS_ALIAS_RE = re.compile(r"(\w+)\s*:\s*offers\(\s*country:\s*(\w+)")
MAX_FIRST = 100


def graphql_errors(*messages: str, status: int = 200) -> Response:
    return Response(status, {"errors": [{"message": m, "extensions": {}} for m in messages]})


class FakeJustWatchServer(LoopbackServer):
    """Serves recorded JustWatch answers on ``127.0.0.1``; ``with`` returns the running server."""

    name = "justwatch"

    def __init__(self, recorded_dir: Path, latency: float = 0.0) -> None:
        super().__init__(latency=latency)
        self.layout = RecordedLayout(Path(recorded_dir))
        self.layout.require("justwatch")
        self._fail_lock = threading.Lock()
        self._fail_left = 0
        self._fail_status = 500
        self._fail_retry_after: str | None = None
        self._errors_next: list[str] = []

    @property
    def url(self) -> str:
        """GraphQL endpoint, the equivalent of ``https://apis.justwatch.com/graphql``."""
        return self.root_url + "/graphql"

    def inject_status(self, status: int, count: int = 1, retry_after: float | None = None) -> None:
        """Answer the next ``count`` requests with HTTP ``status`` (and ``Retry-After``)."""
        with self._fail_lock:
            self._fail_left = count
            self._fail_status = status
            self._fail_retry_after = None if retry_after is None else f"{retry_after:g}"

    def inject_graphql_errors(self, *messages: str) -> None:
        """Answer the next request with HTTP 200 and a top-level ``errors`` list."""
        with self._fail_lock:
            self._errors_next = list(messages)

    def handle(self, request: Request) -> Response:
        with self._fail_lock:
            if self._errors_next:
                messages, self._errors_next = self._errors_next, []
                return graphql_errors(*messages)
            if self._fail_left > 0:
                self._fail_left -= 1
                headers = {"Retry-After": self._fail_retry_after} if self._fail_retry_after else {}
                return Response(self._fail_status, {"error": "injected"}, headers=headers)
        if request.path != "/graphql":
            return Response(404, {"error": "not found"})
        if request.method != "POST":
            return graphql_errors("GET query missing.", status=400)
        try:
            body = json.loads(request.body or b"null")
        except json.JSONDecodeError as exc:
            return graphql_errors(f"POST body is not JSON: {exc.msg}", status=400)
        if not isinstance(body, dict):
            return graphql_errors("POST body must be a JSON object", status=400)
        operation = body.get("operationName")
        variables = body.get("variables") or {}
        query = body.get("query") or ""
        if not isinstance(variables, dict) or not isinstance(query, str):
            return graphql_errors("variables must be an object and query a string", status=400)
        if operation == "GetSearchTitles":
            return self._search(variables)
        if operation == "GetTitleOffers":
            return self._offers(variables, query)
        return graphql_errors(f'Unknown operation named "{operation}".')

    @staticmethod
    def _language_error(variables: dict[str, Any]) -> str | None:
        language = variables.get("language")
        if not isinstance(language, str) or not LANGUAGE_RE.match(language):
            return f'Variable "$language" got invalid value {json.dumps(language)}; Expected type "Language".'
        return None

    def _search(self, variables: dict[str, Any]) -> Response:
        problems = []
        country = variables.get("country")
        if not isinstance(country, str) or not COUNTRY_RE.match(country):
            problems.append(
                f'Variable "$country" got invalid value {json.dumps(country)}; Expected type "Country".'
            )
        if (message := self._language_error(variables)) is not None:
            problems.append(message)
        first = variables.get("first")
        if not isinstance(first, int) or isinstance(first, bool) or first < 1:
            problems.append(
                f'Variable "$first" got invalid value {json.dumps(first)}; Expected type "Int".'
            )
        elif first > MAX_FIRST:
            problems.append(f"query complexity exceeds the maximum allowed (first: {first})")
        flt = variables.get("searchTitlesFilter")
        search = flt.get("searchQuery") if isinstance(flt, dict) else None
        if not isinstance(search, str):
            problems.append(
                'Variable "$searchTitlesFilter" must have a string field "searchQuery".'
            )
        if problems:
            return graphql_errors(*problems)
        edges = self.layout.jw_search_edges(country, search, first)
        return Response(
            200,
            {"data": {"popularTitles": {"totalCount": len(edges), "edges": edges}}},
        )

    def _offers(self, variables: dict[str, Any], query: str) -> Response:
        problems = []
        node_id = variables.get("nodeId")
        if not isinstance(node_id, str) or not node_id:
            problems.append(
                f'Variable "$nodeId" got invalid value {json.dumps(node_id)}; Expected type "ID!".'
            )
        if (message := self._language_error(variables)) is not None:
            problems.append(message)
        aliases = OFFERS_ALIAS_RE.findall(query)
        if not aliases:
            problems.append("GetTitleOffers selects no offers(country: ...) field")
        for _, country in aliases:
            if not COUNTRY_RE.match(country):
                problems.append(
                    f'Argument "country" has invalid value {country}; Expected type "Country".'
                )
        if problems:
            return graphql_errors(*problems)
        node = self.layout.jw_node(node_id, aliases)
        return Response(200, {"data": {"node": node}})
