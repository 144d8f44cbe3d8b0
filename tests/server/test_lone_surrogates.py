"""A lone UTF-16 surrogate ("\\ud800", which JSON may spell and UTF-8 cannot carry) in any
JSON body is a 422 naming its field, never a 500 from the store: the routes whose bodies
FastAPI parses itself (pydantic models) as well as those read with orjson."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.server.conftest import register_model

JSON = {"content-type": "application/json"}
LONE = "\\ud800"  # as the JSON text spells it


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("POST", "/models", '{"name": "s-%s", "description": "x%sy"}', "description"),
    ("POST", "/models", '{"name": "s-%s", "segments": ["ok", "%s"]}', "segments[1]"),
    ("PUT", "/registry/models/{m}/aliases/champion",
     '{"version": "1", "reason": "%s%s"}', "reason"),
    ("POST", "/models/{m}/runs", '{"reason": "%s %s"}', "reason"),
])
def test_a_lone_surrogate_is_a_422_naming_its_field(
        http: httpx.Client, method: str, path: str, body: str, field: str) -> None:
    model = register_model(http, f"sur-{uuid.uuid4().hex[:8]}")
    text = body % (uuid.uuid4().hex[:6], LONE)
    got = http.request(method, path.format(m=model), content=text.encode(), headers=JSON)
    assert got.status_code == 422, got.text
    detail = got.json()["detail"]
    assert "surrogate" in detail["message"] and field in detail["message"], detail
    # a pair of surrogates is one character, and text
    fine = http.post("/models", json={"name": f"ok-{uuid.uuid4().hex[:6]}",
                                      "description": "\U0001f600"})
    assert fine.status_code == 201, fine.text
