"""JSON bodies hold JSON values only: a lone UTF-16 surrogate ("\\ud800", which JSON may
spell and UTF-8 cannot carry) is a 422 naming its field, never a 500 from the store (routes
whose bodies FastAPI parses itself as well as those read with orjson), and an integer field
takes a JSON integer, not false or "7"."""

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


@pytest.mark.parametrize(("value", "ok"), [(7, True), (7.0, True), (False, False),
                                           ("7", False), (7.5, False)])
def test_explain_integers_are_json_integers(value: object, ok: bool) -> None:
    # schemathesis (ST201): seed false was taken as 0 by pydantic's lax int
    from pydantic import ValidationError

    from aiwarden.server.explain_routes import ExplainOptionsBody

    if ok:
        assert ExplainOptionsBody.model_validate({"seed": value}).seed == 7
    else:
        with pytest.raises(ValidationError, match="expected an integer"):
            ExplainOptionsBody.model_validate({"seed": value})
