"""The API contract: every body parsed one validated way (4xx naming the field, never 500),
and an OpenAPI document that says what the server really answers (SQLite and PostgreSQL)."""

from __future__ import annotations

import sys
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


# -- the document -----------------------------------------------------------------------------

def _document(url: str) -> dict:
    r = httpx.get(f"{url}/openapi.json", timeout=60)  # ~1 s of CPU: past 5 s under load
    r.raise_for_status()
    return r.json()


def _resolve(doc: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def test_every_json_answer_has_a_model_and_every_error_the_house_schema(server) -> None:
    doc = _document(server.url)
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert set(_resolve(doc, {"$ref": "#/components/schemas/Error"})["properties"]) == {
        "detail"}
    assert set(schemas["ErrorDetail"]["required"]) == {"error", "message", "field"}
    operations = [(p, m, op) for p, ops in doc["paths"].items() for m, op in ops.items()]
    assert len(operations) >= 60
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        ok = [c for c in op["responses"] if c.startswith("2")]
        assert len(ok) == 1, where
        content = op["responses"][ok[0]].get("content")
        assert content, f"{where}: the answer has no media type"
        if "application/json" in content:
            schema = content["application/json"]["schema"]
            assert schema != {"type": "string"}, where
            resolved = _resolve(doc, schema)
            assert resolved.get("type") in ("object", "array") or "anyOf" in resolved, where
        for code, answer in op["responses"].items():
            if code.startswith(("4", "5")) and not (path == "/readyz" and code == "503"):
                assert answer["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"}, (where, code)
        if method in ("post", "put") and not path.endswith(("/evaluate", "/reload",
                                                              "/flush")):
            assert op.get("requestBody", {}).get("content"), f"{where}: no request body"


def test_keyed_routes_name_both_security_schemes(server) -> None:
    doc = _document(server.url)
    assert doc["components"]["securitySchemes"] == {
        "bearerAuth": {"type": "http", "scheme": "bearer", "description": ANY},
        "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                         "description": ANY}}
    from aiwarden.server.access import PUBLIC, route_scope
    from aiwarden.server.route_table import api_routes

    declared = {(e.path, e.method.lower()): route_scope(e.route)
                for e in api_routes(server.server.config.app)}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if declared[(path, method)] == PUBLIC:
                assert "security" not in op and "401" not in op["responses"], path
                continue
            # the scope the route table declares, as the route checks it
            assert op["x-scope"] == declared[(path, method)], (method, path)
            assert f"`{op['x-scope']}` scope" in op["description"]
            # this server has no keys yet: anonymous is an alternative, as it really is
            assert op["security"] == [{"bearerAuth": []}, {"apiKeyHeader": []}, {}], path
            assert {"401", "403", "429"} <= set(op["responses"]), (method, path)
            assert "Retry-After" in op["responses"]["429"]["headers"]


class _Any:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(other)


ANY = _Any()


@pytest.fixture(scope="module")
def keyed(db_url: str, tmp_path_factory: pytest.TempPathFactory):
    """A keyed server with a small body limit and one ingest slot per model."""
    from aiwarden.store import keys
    from aiwarden.store.database import Database
    from tests.server.live import ThreadServer, settings_for

    db = Database(db_url)
    db.migrate()
    with db.write() as conn:
        admin = keys.create_key(conn, "contract-admin", ["admin"])[0]
        reader = keys.create_key(conn, "contract-reader", ["read"])[0]
    db.dispose()
    settings = settings_for(db_url, tmp_path_factory.mktemp("keyed"), max_body_mb=0.05,
                            ingest_max_inflight=2, ingest_max_per_model=1,
                            ingest_max_queue=0, ingest_max_wait_ms=0.0,
                            gateway_serve_timeout=0.5)
    with pytest.MonkeyPatch.context() as env:  # a champion that hangs may load: 504
        env.setenv("AIWARDEN_TRUSTED_MODULES", "tests.training.slow_model")
        env.setenv("AIWARDEN_SKOPS_TRUSTED", "tests.training.slow_model.PerCallWait")
        with ThreadServer(settings) as srv:
            yield srv, admin, reader


def _held_write(srv, key: str, name: str):
    """A prediction write admitted and left waiting for the rest of its body."""
    import socket
    import time

    body = b'[{"prediction_id": "h", "features": {"x": 1.0}}]'
    sock = socket.create_connection(("127.0.0.1", srv.settings.port), timeout=30)
    sock.sendall((f"POST /api/v1/models/{name}/predictions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
                 + body[:1])
    deadline = time.monotonic() + 30
    while srv.server.config.app.state.admission.stats()["inflight"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return sock, body


def _hanging_champion(api: str, auth: dict[str, str], name: str) -> httpx.Response:
    """A champion whose every call waits an hour (tests/training/slow_model.py, a skops
    artifact this server trusts), predicting under the server's 0.5 s limit: 504."""
    import skops.io as sio
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import make_pipeline

    from tests.training.slow_model import PerCallWait

    model = make_pipeline(PerCallWait(3600.0), DummyClassifier()).fit([[0.0], [1.0]], [0, 1])
    httpx.post(f"{api}/registry/models/{name}/versions", content=sio.dumps(model),
               params={"format": "skops"}, headers=auth).raise_for_status()
    httpx.put(f"{api}/registry/models/{name}/aliases/champion", headers=auth,
              json={"version": "1", "reason": "hangs"}).raise_for_status()
    return httpx.post(f"{api}/models/{name}/predict", headers=auth,
                      json={"features": {"x": 1.0}}, timeout=60)


def test_every_error_status_the_document_lists_is_reachable(keyed, monkeypatch) -> None:
    srv, admin, reader = keyed
    doc = _document(srv.url)
    listed = {code for ops in doc["paths"].values() for op in ops.values()
              for code in op["responses"] if code.startswith(("4", "5"))}
    # a keyed server's document has no anonymous alternative
    assert doc["paths"]["/api/v1/models"]["get"]["security"] == [{"bearerAuth": []},
                                                                  {"apiKeyHeader": []}]
    api = f"{srv.url}/api/v1"
    auth = {"Authorization": f"Bearer {admin}"}
    name = f"st-{uuid.uuid4().hex[:6]}"
    reached: dict[str, httpx.Response] = {}
    reached["400"] = httpx.post(f"{srv.url}/v1/traces", content=b"{nope", headers=auth | JSON)
    reached["401"] = httpx.get(f"{api}/models")
    reached["403"] = httpx.post(f"{api}/models", json={"name": name},
                                headers={"X-API-Key": reader})
    httpx.post(f"{api}/models", json={"name": name}, headers=auth).raise_for_status()
    reached["404"] = httpx.get(f"{api}/models/{name}-missing", headers=auth)
    reached["409"] = httpx.post(f"{api}/models", json={"name": name}, headers=auth)
    reached["413"] = httpx.post(f"{api}/models/{name}/predictions", headers=auth | JSON,
                                content=b"[" + b"{}," * 30_000 + b"{}]")
    reached["415"] = httpx.post(f"{api}/silences", content=b"{}",
                                headers=auth | {"content-type": "application/xml"})
    reached["421"] = httpx.get(f"{api}/models", headers=auth | {"host": "evil.example"})
    reached["422"] = httpx.post(f"{api}/models", json={}, headers=auth)
    sock, body = _held_write(srv, admin, name)
    try:
        reached["429"] = httpx.post(f"{api}/models/{name}/predictions", headers=auth,
                                    json=[{"prediction_id": "r"}])
    finally:
        sock.sendall(body[1:])
        sock.recv(65536)
        sock.close()
    from tests.server.live import free_port  # a guardrail upstream that is down: 502

    httpx.put(f"{api}/models/{name}/guardrail", headers=auth, json={"upstream": {
        "base_url": f"http://127.0.0.1:{free_port()}/v1"}}).raise_for_status()
    reached["502"] = httpx.post(f"{api}/models/{name}/v1/chat/completions", headers=auth,
                                json={"messages": [{"role": "user", "content": "hi"}]})
    reached["504"] = _hanging_champion(api, auth, name)
    with monkeypatch.context() as no_shap:  # a server without the explain extra: 501
        no_shap.setitem(sys.modules, "shap", None)
        reached["501"] = httpx.post(f"{api}/models/{name}/explain", headers=auth,
                                    json={"rows": [{"x": 1.0}]})
    monkeypatch.setenv("AIWARDEN_ARTIFACTS_URL", "nosuch://bucket/artifacts")
    srv.server.config.app.state.registry = None  # made again on first use, from the env
    reached["503"] = httpx.get(f"{api}/registry/models", headers=auth)
    srv.server.config.app.state.registry = None
    for code, response in reached.items():
        assert str(response.status_code) == code, (code, response.text)
        assert _error(response, int(code))["error"]
    assert "Retry-After" in reached["429"].headers
    assert reached["401"].headers["WWW-Authenticate"] == "Bearer"
    assert listed <= set(reached), f"no reproduction here for {listed - set(reached)}"


# -- patterns that state the server's bounds ---------------------------------------------------

@pytest.mark.parametrize(("lo", "hi"), [(1, 315_360_000), (60, 604_800), (0, 1234), (7, 123),
                                        (5, 5), (1, 9), (10, 999)])
def test_int_pattern_is_exactly_the_range(lo: int, hi: int) -> None:
    import random
    import re

    from aiwarden.server.spec_models import int_pattern

    pattern = re.compile(f"(?:{int_pattern(lo, hi)})")
    rng = random.Random(7)
    for n in [*range(0, 1500), *(rng.randrange(10 ** 10) for _ in range(5000)),
              lo - 1, lo, hi, hi + 1, 10 ** len(str(hi))]:
        assert bool(pattern.fullmatch(str(n))) == (lo <= n <= hi), n
    assert not pattern.fullmatch("0" + str(hi))  # no leading zero


def test_instant_and_duration_patterns_state_the_ten_year_bound() -> None:
    """A relative instant or a duration is in the document exactly when parse_instant and
    parse_duration read it (schemathesis ST202: now-6121d was documented, refused)."""
    import re

    from aiwarden.errors import ParameterError
    from aiwarden.monitoring.windows import MAX_DURATION, parse_duration, parse_instant
    from aiwarden.server.api_models import DURATION_PATTERN, INSTANT_PATTERN

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    for unit, size in units.items():
        most = MAX_DURATION // size
        for n in (1, most // 2, most, most + 1, 10 * most):
            for parse, pattern, text in (
                    (parse_duration, DURATION_PATTERN, f"{n}{unit}"),
                    (parse_instant, INSTANT_PATTERN, f"now-{n}{unit}"),
                    (parse_instant, INSTANT_PATTERN, f"-{n}{unit}")):
                try:
                    parse(text)
                    read = True
                except ParameterError:
                    read = False
                assert bool(re.fullmatch(pattern, text)) == read == (n <= most), text
