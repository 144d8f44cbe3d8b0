"""The shared JSON body layer (aiwarden/server/jsonbody.py) through a real server, on SQLite
and PostgreSQL: a deeply nested body is a 422 naming ``body`` on every JSON route (never a
500), and the LLM routes refuse a body that is not declared JSON with 415."""

from __future__ import annotations

import httpx
import pytest

from aiwarden.server.jsonbody import MAX_DEPTH

JSON = {"content-type": "application/json"}

# (method, path) of routes reading their body through the shared layer: the LLM routes, the
# guardrail's chat completions, concept drift, quarantine, and older json_body routes.
NESTED_ROUTES = [
    ("PUT", "/llm/prices"), ("POST", "/models/bot/llm-events"),
    ("POST", "/models/bot/llm-feedback"), ("PUT", "/models/bot/versions/v1/llm-reference"),
    ("POST", "/models/bot/v1/chat/completions"), ("PUT", "/models/bot/guardrail"),
    ("PUT", "/models/tab/concept-drift"), ("POST", "/models/tab/quarantine/replay"),
    ("POST", "/models/tab/quarantine/release"), ("PUT", "/rules/tab/r1"),
    ("PUT", "/notifications/config"), ("POST", "/silences"),
]
# Routes whose body FastAPI parses into a pydantic model itself (json.loads): past Python's
# recursion limit they answer the same 422.
FASTAPI_ROUTES = [("POST", "/models"), ("PUT", "/models/bot/llm-privacy")]



def _events(n: int, prefix: str) -> list[dict]:
    return [{"request_id": f"{prefix}{i}", "version": "v1", "output": f"Answer number {i}.",
             "input": [{"role": "user", "content": "where is my order?"}]} for i in range(n)]


# The LLM routes whose bodies must say they are JSON.
LLM_ROUTES = [("PUT", "/llm/prices", {"prices": {}}),
              ("POST", "/models/bot/llm-events", _events(1, "typed")),
              ("POST", "/models/bot/llm-feedback", [{"request_id": "typed0", "score": 1}]),
              ("PUT", "/models/bot/versions/v9/llm-reference", _events(50, "ref9-"))]


@pytest.fixture(scope="module")
def api(server) -> httpx.Client:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as c:
        c.post("/models", json={"name": "bot", "task": "text_generation"}).raise_for_status()
        c.post("/models", json={"name": "tab"}).raise_for_status()
        c.put("/models/bot/versions/v1/llm-reference",
              json=_events(50, "ref-")).raise_for_status()
        yield c


def _nested(depth: int, kind: str) -> bytes:
    if kind == "list":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize(("method", "path"), NESTED_ROUTES)
def test_a_deeply_nested_body_is_a_422_naming_the_body(api, method, path) -> None:
    for depth in (5000, 1025, MAX_DEPTH + 1):  # past orjson's 1024 limit, and past ours
        for kind in ("list", "object"):
            r = api.request(method, path, content=_nested(depth, kind), headers=JSON)
            assert r.status_code == 422, (depth, kind, r.status_code, r.text[:300])
            detail = r.json()["detail"]
            assert detail["field"] == "body", detail
            assert detail["message"] == f"The body is nested deeper than {MAX_DEPTH} levels."
    assert api.get("/models/tab").json()["predictions"] == 0


def test_ingest_takes_deep_rows_one_by_one_and_refuses_past_orjsons_limit(api) -> None:
    """Ingest checks each row's depth itself (the deep row is quarantined, the others kept:
    tests/server/test_integrity.py), so its body may nest up to orjson's 1024 levels."""
    for depth in (5000, 1025):
        for kind in ("list", "object"):
            r = api.post("/models/tab/predictions", content=_nested(depth, kind),
                         headers=JSON)
            assert r.status_code == 422, (depth, kind, r.status_code, r.text[:300])
            assert r.json()["detail"]["message"] == "The body is nested deeper than 1024 levels."
    assert api.get("/models/tab").json()["predictions"] == 0


@pytest.mark.parametrize(("method", "path"), FASTAPI_ROUTES)
def test_a_body_too_deep_for_fastapi_is_the_same_422(api, method, path) -> None:
    for kind in ("list", "object"):
        r = api.request(method, path, content=_nested(5000, kind), headers=JSON)
        assert r.status_code == 422, r.text
        assert r.json()["detail"] == {"error": "malformed", "field": "body", "message":
                                      f"The body is nested deeper than {MAX_DEPTH} levels."}


def test_nesting_up_to_the_limit_is_read_as_usual(api) -> None:
    # MAX_DEPTH levels parse: the route answers about the content, not the nesting
    r = api.put("/llm/prices", content=_nested(MAX_DEPTH, "list"), headers=JSON)
    assert r.status_code == 422 and r.json()["detail"]["field"] == "prices", r.text
    r = api.post("/models/bot/llm-events", headers=JSON,
                 content=b'[{"request_id": "deep-ok", "version": "v1", "output": "fine", '
                         b'"input": [{"role": "user", "content": "hi"}]}]')
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text


def test_the_server_keeps_answering_after_nested_bodies(api) -> None:
    for _ in range(3):
        r = api.post("/silences", content=_nested(20000, "object"), headers=JSON)
        assert r.status_code == 422
    assert api.get("/models/bot").status_code == 200


@pytest.mark.parametrize(("method", "path", "doc"), LLM_ROUTES)
def test_llm_routes_refuse_a_body_not_declared_json(api, method, path, doc) -> None:
    import orjson

    body = orjson.dumps(doc)
    for headers, content in (
            ({}, body),  # no Content-Type at all
            ({"content-type": "application/octet-stream"}, body),
            ({"content-type": "text/plain"}, body),
            (None, None)):  # multipart, built by httpx
        if headers is None:
            r = api.request(method, path, files={"f": ("e.json", body, "application/json")})
        else:
            r = api.request(method, path, content=content, headers=headers)
        assert r.status_code == 415, (headers, r.status_code, r.text)
        assert r.json()["detail"]["field"] == "content-type"
    stored = "/models/bot/llm-events/typed0"
    if path.endswith("llm-events"):
        assert api.get(stored).status_code == 404  # the refused bodies stored nothing
    # declared JSON (with a charset) is read
    r = api.request(method, path, content=body,
                    headers={"content-type": "application/json; charset=utf-8"})
    assert r.status_code in (200, 201), r.text
    if path.endswith("llm-events"):
        assert api.get(stored).status_code == 200




@pytest.mark.parametrize("body", [b"null", b" null", b"null\n{\"a\": 1}", b"0", b'"AAA"'])
@pytest.mark.parametrize("path", ["/models/tab/versions/scalar/reference",
                                  "/models/tab/predictions", "/models/tab/labels"])
def test_a_json_body_that_is_no_rows_is_a_422_and_the_server_lives(api, path, body) -> None:
    """pyarrow's JSON-lines reader crashed the whole process (SIGSEGV) on a body starting
    with ``null``: table bodies reach it only when they start with an object."""
    method = api.put if path.endswith("/reference") else api.post
    got = method(path, content=body, headers=JSON)
    assert got.status_code == 422, got.text
    assert got.json()["detail"]["field"].startswith("body"), got.text
    assert api.get("/models/tab").status_code == 200  # still serving
