"""The API contract: every body parsed one validated way (4xx naming the field, never 500),
and an OpenAPI document that says what the server really answers (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid

import httpx
import pytest

JSON = {"content-type": "application/json"}
BODY_ROUTES = [("POST", "/silences"), ("PUT", "/rules/m1/r1"),
               ("PUT", "/notifications/config")]


def _error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert set(detail) >= {"error", "message", "field"} and detail["message"]
    return detail


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize(("body", "field"), [
    (b"", "body"), (b"   ", "body"), (b"{not json", "body"), (b"[1, 2]", "body"),
    (b'"text"', "body"), (b"null", "body")])
def test_bad_json_bodies_answer_422_naming_the_body(http, method, path, body, field) -> None:
    detail = _error(http.request(method, path, content=body, headers=JSON), 422)
    assert detail["field"] == field


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_json_routes_refuse_other_content_types(http, method, path) -> None:
    for headers in ({}, {"content-type": "application/xml"}):
        detail = _error(http.request(method, path, content=b"{}", headers=headers), 415)
        assert detail["field"] == "content-type"


def test_silence_fields_are_validated_with_their_name(http) -> None:
    detail = _error(http.post("/silences", json={"matchers": ["model=x"]}), 422)
    assert detail["field"] == "ends_at"
    detail = _error(http.post("/silences", json={"matchers": ["model=x"], "ends_at": "+1h",
                                                 "owner": "me"}), 422)
    assert detail["field"] == "owner"
    made = http.post("/silences", json={"matchers": ["model=x"], "ends_at": 4102444800,
                                        "comment": "maintenance"})
    assert made.status_code == 201, made.text
    assert made.json()["comment"] == "maintenance"
    http.delete(f"/silences/{made.json()['id']}").raise_for_status()


@pytest.mark.parametrize(("schema", "field"), [
    ({}, "schema.columns"), ({"task": "binary"}, "schema.columns"),
    ({"columns": "x"}, "schema.columns"), ({"columns": [1]}, "schema.columns.0"),
    ({"columns": [{"name": "x"}]}, "schema.columns.0.dtype"),
    ({"columns": [{"dtype": "numerical"}]}, "schema.columns.0.name"),
    ({"columns": [{"name": "x", "dtype": "float"}]}, "schema.columns.0.dtype"),
    ({"columns": [{"name": "x", "dtype": "numerical", "role": "boss"}]},
     "schema.columns.0.role")])
def test_version_schemas_without_valid_columns_answer_422(http, schema, field) -> None:
    name = f"sc-{uuid.uuid4().hex[:6]}"
    http.post("/models", json={"name": name}).raise_for_status()
    detail = _error(http.post(f"/models/{name}/versions",
                              json={"version": "v1", "schema": schema}), 422)
    assert detail["field"] == f"body.{field}"
    ok = http.post(f"/models/{name}/versions", json={"version": "v1", "schema": {
        "task": "regression", "columns": [{"name": "x", "dtype": "numerical"},
                                          {"name": "y", "dtype": "numerical",
                                           "role": "target"}]}})
    assert ok.status_code == 201, ok.text
    assert [c["role"] for c in ok.json()["schema"]["columns"]] == ["feature", "target"]
