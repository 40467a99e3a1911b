"""A 405 names in ``Allow`` every method the path is served with (routers included)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from serving.http_routes import app


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/social/blocks/someone", "DELETE, PUT"),  # two routes of one path
        ("/social/friends/someone", "DELETE, POST"),
        ("/users/u/watchlist/movie:27205", "DELETE, PUT"),
        ("/users/u/watchlist/alerts", "GET"),  # the literal path, not {content_id}
        ("/users/u", "DELETE"),
    ],
)
def test_405_lists_every_method_of_the_path(path: str, allow: str) -> None:
    response = TestClient(app).options(path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json() == {"error": "Method Not Allowed"}
