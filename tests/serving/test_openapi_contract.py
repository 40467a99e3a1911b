"""The API contract: ``/docs.json`` is a valid OpenAPI 3.1 document that describes what the server
does (every route, error bodies, media types, rules such as distinct members), and POST bodies
that are not JSON get 415 instead of a 500."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate
from starlette.testclient import TestClient

from serving.schemas import ErrorBody

POST_APIS = ["/search", "/recommend", "/recommend/group", "/explain", "/feedback"]


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    r = client.get("/docs.json")
    assert r.status_code == 200
    return r.json()


def test_docs_json_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises OpenAPIValidationError with the JSON path of the first problem


def test_every_route_is_documented_with_its_errors(
    client: TestClient, document: dict[str, Any]
) -> None:
    from serving.http_routes import app as http_app
    from serving.service import MediaGateway

    documented = {(m.upper(), p) for p, item in document["paths"].items() for m in item}
    for api in MediaGateway.apis.values():
        assert ("POST", api.route) in documented
    for route in http_app.routes:
        if getattr(route, "include_in_schema", False):
            for method in route.methods - {"HEAD"}:
                assert (method, route.path) in documented
    for path in POST_APIS:
        responses = document["paths"][path]["post"]["responses"]
        assert {"200", "400", "401", "403", "413", "415", "429"} <= set(responses)
        assert document["paths"][path]["post"]["requestBody"]["required"] is True
    content = document["paths"]["/content/{content_id}"]["get"]["responses"]["200"]["content"]
    assert set(content) == {"application/ld+json"}
    markdown = document["paths"]["/content/{content_id}.llm.md"]["get"]["responses"]["200"]
    assert set(markdown["content"]) == {"text/markdown"}


def test_schema_states_the_validators_rules(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["GroupRequest"]["properties"]["members"]["uniqueItems"] is True
    assert len(schemas["FeedbackRequest"]["anyOf"]) == 3
    cursor = schemas["SearchRequest"]["properties"]["cursor"]
    assert {"type": "null"} in cursor["anyOf"], "nullable fields say so"
    runtime = schemas["SearchFiltersBody"]["properties"]["max_runtime"]["anyOf"][0]
    assert runtime["exclusiveMinimum"] == 0
    assert document["paths"]["/recommend"]["post"]["security"] == [
        {"bearer": ["read:recommendations"]}
    ]
    assert {} in document["paths"]["/search"]["post"]["security"], "anonymous search allowed"


NOT_JSON = [
    "multipart/form-data",  # no boundary: was a 500 from BentoML's form parser
    "multipart/form-data; boundary=xyz",
    "application/x-www-form-urlencoded",
    "text/plain",
    "application/vnd.bentoml+pickle",
]


def test_post_body_that_is_not_json_is_415(client: TestClient, bearer) -> None:
    for path in POST_APIS:
        for content_type in NOT_JSON:
            headers = {**bearer("alice"), "content-type": content_type}
            r = client.post(path, content=b'{"user": "alice"}', headers=headers)
            assert r.status_code == 415, (path, content_type, r.text)
            assert "application/json" in ErrorBody.model_validate(r.json()).error


def test_json_with_charset_and_without_content_type_are_read(client: TestClient) -> None:
    body = b'{"query": "space", "limit": 1}'
    r = client.post(
        "/search", content=body, headers={"content-type": "application/json; charset=utf-8"}
    )
    assert r.status_code == 200, r.text
    r = client.post("/search", content=body)
    assert r.status_code == 200, r.text


def test_error_bodies_match_the_documented_schema(client: TestClient, bearer) -> None:
    answers = [
        client.post("/search", json={"query": ""}),  # 400 from the POST body validator
        client.post("/search", content=b"{nope", headers={"content-type": "application/json"}),
        client.get("/content/movie:603/availability", params={"country": "usa"}),  # 422
        client.put("/users/alice/preferences", json={"country": 1}, headers=bearer("alice")),
        client.get("/content/movie:0"),  # 404
        client.post("/recommend", json={"user": "alice"}),  # 401
        client.get("/users/bob/export", headers=bearer("alice")),  # 403
    ]
    statuses = []
    for r in answers:
        statuses.append(r.status_code)
        body = ErrorBody.model_validate(r.json())
        assert body.error
        if r.status_code in (400, 422):
            assert body.detail and all(issue.loc is not None for issue in body.detail)
    assert statuses == [400, 400, 422, 422, 404, 401, 403]


def test_types_are_strict_and_router_errors_are_json(client: TestClient, bearer) -> None:
    for body in (
        {"query": "x", "filters": {"min_rating": False}},  # was coerced to 0.0
        {"query": "x", "limit": "5"},  # was coerced to 5
        {"query": "x", "filters": {"year_min": True}},
    ):
        r = client.post("/search", json=body)
        assert r.status_code == 400, (body, r.text)
        assert ErrorBody.model_validate(r.json()).detail
    r = client.post("/recommend", json={"user": "alice", "context": {"time_available": "90"}},
                    headers=bearer("alice"))  # fmt: skip
    assert r.status_code == 400, r.text
    r = client.get("/no/such/route")
    assert r.status_code == 404 and r.json() == {"error": "Not Found"}
    r = client.delete("/search")
    assert r.status_code == 405 and r.json() == {"error": "Method Not Allowed"}
    assert r.headers["allow"] == "POST"
    r = client.put(
        "/users/alice/preferences",
        content=b"\xff\xfe{",
        headers={**bearer("alice"), "content-type": "application/json"},
    )
    assert 400 <= r.status_code < 500 and ErrorBody.model_validate(r.json()).error
    assert client.get("/livez").headers["content-type"].startswith("text/plain")
