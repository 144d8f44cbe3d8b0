"""What the server answers is what its OpenAPI document declares, key for key.

A tour of every operation through a real server (SQLite and PostgreSQL) records each JSON
answer and validates it against the operation's declared response schema, made strict:
an object whose model names its fields may carry no other key (the models are
``extra="allow"`` so that an addition does not break old clients; this test makes sure the
document still names every key a generated client will see). Objects declared without
fields (open-ended payloads: metric values, rule specs) stay open.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema_rs  # schemathesis' validator: no second JSON Schema library
import numpy as np
import pytest

from aiwarden.alerting.state import Transition
from tests.registry.models import fitted, skops_bytes
from tests.server.conftest import json_rows, register_model, scored_frame
from tests.server.live import ThreadServer, settings_for

Recorded = tuple[str, str, int, Any]  # method, path, status, body
# Operations added while this test was written (quarantine review, concept drift): each
# leaves this set when _tour calls it. It only shrinks.
UNTOURED: set[str] = set()


def _strict(node: Any) -> Any:
    """The schema with ``additionalProperties: false`` on every object that lists fields."""
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items()}
    if out.get("properties"):
        out["additionalProperties"] = False
    return out


class Contract:
    """The document's operations, matched by path template, and their strict schemas."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.components = _strict(doc["components"])
        self.ops: list[tuple[str, re.Pattern[str], str, dict[str, Any]]] = []
        for path, ops in doc["paths"].items():
            pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")
            for method, op in ops.items():
                self.ops.append((path, pattern, method.upper(), op))
        # literal paths first: /aliases/{alias}/history before /aliases/{alias}
        self.ops.sort(key=lambda o: o[0].count("{"))

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        for template, pattern, m, op in self.ops:
            if m == method and pattern.match(path):
                return f"{m} {template}", op
        raise AssertionError(f"{method} {path} is not in the document")

    def check(self, method: str, path: str, status: int, body: Any) -> str:
        where, op = self.operation(method, path)
        answer = op["responses"].get(str(status))
        assert answer is not None, f"{where} answered {status}, which it does not declare"
        schema = answer["content"]["application/json"]["schema"]
        root = {**_strict(schema), "components": self.components}
        errors = [f"{e.message} at {list(e.instance_path)}"
                  for e in jsonschema_rs.Draft202012Validator(root).iter_errors(body)]
        assert not errors, f"{where} {status}: {errors[:5]}\n{body!r:.2000}"
        return where


@pytest.fixture(scope="module")
def recorded(server: ThreadServer) -> Iterator[list[Recorded]]:
    """Every JSON answer of a tour that reaches every operation of the document."""
    seen: list[Recorded] = []

    def keep(r: httpx.Response) -> None:
        r.read()
        if r.headers.get("content-type", "").startswith("application/json"):
            seen.append((r.request.method, r.request.url.path, r.status_code, r.json()))

    with httpx.Client(base_url=server.url + "/api/v1", timeout=60,
                      event_hooks={"response": [keep]}) as http:
        _tour(http, server)
        yield seen


@pytest.fixture(scope="module")
def server(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    """The shared server, allowing code (a training pipeline is part of the tour)."""
    with ThreadServer(settings_for(db_url, tmp_path_factory.mktemp("data"),
                                   allow_code_artifacts=True)) as srv:
        yield srv


def _ok(r: httpx.Response) -> httpx.Response:
    assert r.is_success, (r.request.method, r.request.url, r.status_code, r.text)
    return r


def _explain_tour(http: httpx.Client, now: float) -> None:
    """A registered skops model with a reference and logged rows: explain and importance."""
    import pyarrow as pa
    from sklearn.linear_model import LogisticRegression

    from aiwarden.sdk._payload import to_parquet

    df = scored_frame(400, seed=7)
    model = LogisticRegression().fit(df[["x"]], df.y)
    _ok(http.post("/registry/models/why/versions", content=skops_bytes(model),
                  params={"format": "skops"},
                  headers={"content-type": "application/octet-stream"}))
    _ok(http.put("/models/why/versions/1/reference", content=to_parquet(
        pa.Table.from_pandas(df, preserve_index=False)),
        params={"target": "y", "prediction": "pred", "scores": "score"},
        headers={"content-type": "application/vnd.apache.parquet"}))
    _ok(http.post("/models/why/predictions", json=json_rows(df.head(40), now - 600, "w")))
    _ok(http.post("/models/why/explain", json={"prediction_ids": ["w1", "w2", "gone"]}))
    _ok(http.get("/models/why/importance", params={"start": "-1h", "end": "now",
                                                   "sample_size": 40, "where": "x<0"}))
    _ok(http.put("/models/why/attribution-drift", json={"sample_size": 40}))
    _ok(http.post("/models/why/attribution-drift/check"))
    _ok(http.get("/models/why/attribution-drift"))


def _imported_tour(http: httpx.Client, now: float) -> None:
    """A reference fitted elsewhere, read back, and a batch profile counted on it."""
    from aiwarden.engine import Reference

    ref = Reference.fit(scored_frame(500, seed=8), target="y", prediction="pred",
                        scores="score")
    _ok(http.post("/models", json={"name": "offline"}))
    _ok(http.put("/models/offline/versions/v1/reference-profile", json=ref.to_dict()))
    got = _ok(http.get("/models/offline/versions/v1/reference")).json()
    assert got["profile"]["reference"] == ref.fingerprint
    profile = ref.profile(scored_frame(200, seed=9)).to_dict()
    _ok(http.post("/models/offline/versions/v1/profiles",
                  json={"batch": "b1", "at": now - 300, "profile": profile}))


def _llm_tour(http: httpx.Client, now: float) -> None:
    """An LLM model: reference, privacy, events (one huge, one bad), feedback, queries."""
    _ok(http.post("/models", json={"name": "chat", "task": "text_generation"}))
    event = {"request_id": "c0", "timestamp": now - 60, "input": "hi, I am a@b.org",
             "output": "hello", "tokens_in": 3, "tokens_out": 2, "tags": {"locale": "fr"}}
    _ok(http.put("/models/chat/versions/v1/llm-reference",
                 json=[dict(event, request_id=f"r{i}") for i in range(50)]))
    _ok(http.put("/models/chat/llm-privacy", json={"pii": "hash"}))
    _ok(http.get("/models/chat/llm-privacy"))
    _ok(http.put("/llm/prices", json={"prices": {"acme/house": {"input": 1, "output": 2}}}))
    _ok(http.get("/llm/prices"))
    _ok(http.post("/models/chat/llm-events", json=[
        event, dict(event, request_id="c1", output="x" * 40_000),
        {"request_id": "c2", "output": 1}]))
    _ok(http.post("/models/chat/llm-feedback", json=[
        {"request_id": "c0", "score": 1, "comment": "thanks"},
        {"request_id": "later", "score": 0}]))
    _ok(http.get("/models/chat/llm-events", params={"flagged": "true"}))
    _ok(http.get("/models/chat/llm-events/c0"))
    _ok(http.get("/models/chat/metrics", params={"metric": "llm", "start": "-1h"}))
    from tests.gateway.fake_llm_upstream import FakeUpstream

    with FakeUpstream({"default": "Hello, write to a@b.org."}) as fake:  # guardrails
        _ok(http.put("/models/chat/guardrail", json={"upstream": {"base_url": fake.base_url},
                                                     "redact": ["pii"], "version": "v1"}))
        _ok(http.get("/models/chat/guardrail"))
        _ok(http.post("/models/chat/v1/chat/completions",
                      json={"messages": [{"role": "user", "content": "hi"}]}))
        _ok(http.post("/models/chat/guardrail/flush"))


def _images_tour(http: httpx.Client, now: float) -> None:
    from aiwarden.images.synthetic import fruit_jpeg

    image = fruit_jpeg("banana", np.random.default_rng(0), 32)
    (meta,) = json_rows(scored_frame(1, seed=6), now - 60)  # the model's features, and
    meta["prediction_id"] = "img0"  # the image's properties (read by nothing: ignored)
    meta["embedding"] = [0.5, 1.5]
    out = _ok(http.post("/models/tour/images", files=[("files", ("a.jpg", image, "image/jpeg"))],
                        data={"metadata": json.dumps([meta])})).json()
    assert out["accepted"] == 1 and "features.brightness" in out["ignored_columns"], out
    assert out["embeddings"] == 1, out
    _ok(http.put("/models/tour/versions/v1/embedding-reference",
                 json={"embeddings": [[0.5, 1.0]] * 20}))
    _ok(http.get("/models/tour/images/quarantined"))


def _tour(http: httpx.Client, server: ThreadServer) -> None:
    now = time.time()
    register_model(http, "tour")
    _ok(http.post("/models", json={"name": "bare"}))
    _ok(http.post("/models/bare/versions", json={"version": "v0", "schema": {
        "columns": [{"name": "x", "dtype": "numerical"}]}}))
    rows = json_rows(scored_frame(300, seed=5), now - 900)
    rows[0]["features"]["unknown"] = 1.0  # an ignored column
    rows[1]["features"]["x"] = "not a number"  # a quarantined row
    ingested = _ok(http.post("/models/tour/predictions", json=rows)).json()
    assert ingested["ignored_columns"] == ["features.unknown"], ingested
    _ok(http.post("/models/tour/labels", json=[{"prediction_id": r["prediction_id"],
                                                "label": 1} for r in rows[:100]]))
    _ok(http.post("/models/tour/resources", json=[{"timestamp": now - 60, "cpu": 0.5}]))
    _ok(http.get("/models"))
    _ok(http.get("/models/tour"))
    _ok(http.get("/models/tour/versions/v1"))
    window = {"start": "-1h", "end": "now"}
    for metric in ("drift", "performance", "volume"):
        _ok(http.get("/models/tour/metrics", params={"metric": metric, **window}))
    _ok(http.get("/models/tour/segments", params=window))
    _ok(http.get("/models/tour/compare", params=window))
    _ok(http.get("/models/tour/confusion", params={"window": "1h", "step": "10m"}))
    (bad,) = _ok(http.get("/models/tour/quarantine")).json()
    _ok(http.get(f"/models/tour/quarantine/rows/{bad['id']}"))
    again = _ok(http.post("/models/tour/quarantine/replay", json={"ids": [bad["id"]]})).json()
    (still,) = again["still_quarantined"]  # replayed as stored: still bad, a new id
    _ok(http.post("/models/tour/quarantine/release", json={"ids": [still["new_id"]]}))
    _ok(http.post("/models/tour/quarantine/drop", json={"ids": [still["new_id"]]}))  # gone
    _ok(http.get("/models/tour/rca", params=window))
    _ok(http.get("/models/tour/response-times"))
    _llm_tour(http, now)
    _explain_tour(http, now)
    _images_tour(http, now)
    _imported_tour(http, now)
    from tests.llm.test_otlp import GENAI, as_json, span

    _ok(http.post(f"{server.url}/v1/traces", headers={"content-type": "application/json"},
                  content=as_json([span("00000000000000c1", GENAI | {"aiwarden.version": "v1"}),
                                   span("00000000000000c2", {"http.route": "/"})],
                                  {"service.name": "chat"})))  # partialSuccess: 1 skipped

    rules = _ok(http.get("/rules", params={"model": "tour"})).json()
    spec = rules[0]["rule"]
    _ok(http.put("/rules/tour/copy", json=spec))
    _ok(http.post("/rules/apply", params={"dry_run": "true"},
                  json={"rules": [{**spec, "model": "tour", "name": "applied"}]}))
    _ok(http.delete("/rules/tour/copy"))
    # a hair-trigger detector, so the change points answer holds one to check
    _ok(http.put("/models/tour/concept-drift", json={"label_delay": "0s", "detectors": {
        "adwin": {}, "page_hinkley": {"threshold": 0.1, "min_instances": 1}}}))
    _ok(http.post("/alerts/evaluate"))
    _ok(http.get("/models/tour/alerts"))
    assert _ok(http.get("/models/tour/change-points")).json()["change_points"]
    _ok(http.get("/models/tour/concept-drift"))

    incident = server.server.config.app.state.incidents.on_transition(
        {"model": "tour", "rule": rules[0]["name"]},
        Transition("firing", time.time(), "warning", 0.4))
    iid = incident.id
    _ok(http.get("/incidents"))
    _ok(http.get(f"/incidents/{iid}"))
    _ok(http.post(f"/incidents/{iid}/comments", json={"text": "looking"}))
    _ok(http.put(f"/incidents/{iid}/assignee", json={"assignee": "ana"}))
    _ok(http.put(f"/incidents/{iid}/hold", json={"held": True}))
    _ok(http.put(f"/incidents/{iid}/postmortem", json={"text": "root cause"}))
    _ok(http.get(f"/incidents/{iid}/postmortem"))
    _ok(http.post(f"/incidents/{iid}/acknowledge"))

    _ok(http.put("/notifications/config", json={"receivers": [
        {"name": "hook", "type": "webhook", "url": "http://127.0.0.1:9/hook"}],
        "route": {"receiver": "hook"}}))
    _ok(http.get("/notifications/config"))
    _ok(http.get("/notifications/attempts"))
    _ok(http.get("/notifications/queue"))
    silence = _ok(http.post("/silences", json={"matchers": ["model=tour"],
                                               "ends_at": now + 3600})).json()
    _ok(http.get("/silences"))
    _ok(http.delete(f"/silences/{silence['id']}"))

    model = fitted()
    for version in ("r1", "r2"):
        _ok(http.post("/registry/models/tour/versions", content=skops_bytes(model),
                      params={"format": "skops", "version": version}))
    # rows without a version now go to r2, which has no reference: typed by v1's schema
    inherited = _ok(http.post("/models/tour/predictions", json=json_rows(
        scored_frame(5, seed=6), now - 600, prefix="q"))).json()
    assert inherited["schema_from"] == {"r2": "v1"}, inherited
    _ok(http.get("/registry/models"))
    _ok(http.get("/registry/models/tour/versions"))
    _ok(http.get("/registry/models/tour/versions/r1"))
    _ok(http.put("/registry/models/tour/aliases/champion", json={"version": "r1",
                                                                "reason": "first"}))
    _ok(http.put("/registry/models/tour/aliases/champion", json={"version": "r2",
                                                                "reason": "second"}))
    _ok(http.get("/registry/models/tour/aliases"))
    _ok(http.get("/registry/models/tour/aliases/champion"))
    _ok(http.get("/registry/models/tour/aliases/champion/history"))
    _ok(http.get("/registry/models/tour/aliases/champion/previous"))
    _ok(http.get("/registry/models/tour/history"))
    _ok(http.put("/registry/models/tour/aliases/staging", json={"version": "r1", "reason": "try"}))
    _ok(http.delete("/registry/models/tour/aliases/staging",
                    params={"reason": "done"}))

    _ok(http.put("/models/tour/rollback-policy", json={}))
    _ok(http.get("/models/tour/rollback-policy"))
    _ok(http.post("/models/tour/rollback", json={"reason": "tour"}))
    _ok(http.get("/rollbacks/pending"))
    _ok(http.get("/models/tour/compare-versions",
                 params={"champion": "r1", "challenger": "r2", **window}))
    _ok(http.delete("/models/tour/rollback-policy"))

    features = {"x1": 0.1, "x2": -0.2, "x3": 0.3}
    _ok(http.post("/models/tour/predict", json={"features": features}))
    _ok(http.post("/models/tour/predict", json={"rows": [{"features": features}] * 2}))
    _ok(http.get("/models/tour/traffic"))
    _ok(http.put("/models/tour/traffic", json={"mode": "off"}))
    _ok(http.get("/models/tour/gateway"))
    _ok(http.get("/models/tour/gateway/state"))
    _ok(http.post("/models/tour/gateway/reload"))
    _ok(http.post("/models/tour/gateway/flush"))
    _training_tour(http)
    for path in ("/healthz", "/readyz"):
        _ok(http.get(server.url + path))


def _training_tour(http: httpx.Client) -> None:
    """A pipeline whose run fails at once (the training function raises), and its reads."""
    _ok(http.put("/models/tour/pipeline", json={
        "entry": "tests.training.pipelines:train_raises", "data": {"min_rows": 1}}))
    _ok(http.get("/models/tour/pipeline"))
    run = _ok(http.post("/models/tour/runs", json={"reason": "tour"})).json()
    _ok(http.get("/models/tour/runs"))
    _ok(http.get(f"/runs/{run['id']}"))
    _ok(http.post(f"/runs/{run['id']}/cancel", json={"reason": "tour"}))
    _ok(http.delete("/models/tour/pipeline"))


def test_every_json_answer_matches_its_declared_model_key_for_key(
        server: ThreadServer, recorded: list[Recorded]) -> None:
    contract = Contract(httpx.get(server.url + "/openapi.json", timeout=60).json())
    checked, broken = set(), []
    for method, path, status, body in recorded:
        if 200 <= status < 300:
            try:
                checked.add(contract.check(method, path, status, body))
            except AssertionError as e:
                broken.append(str(e))
    assert not broken, "\n\n".join(broken)
    json_ops = {f"{m} {template}" for template, _, m, op in contract.ops
                for code, answer in op["responses"].items()
                if code.startswith("2") and "application/json" in answer.get("content", {})}
    missing = sorted(json_ops - checked - UNTOURED)
    assert not missing, f"add these operations to _tour (no 2xx of them was checked): {missing}"


def test_an_undeclared_key_fails_the_check(server: ThreadServer) -> None:
    contract = Contract(httpx.get(server.url + "/openapi.json", timeout=60).json())
    good = {"name": "m", "task": None, "description": None, "created_at": 1.0}
    contract.check("GET", "/api/v1/models", 200, [good])
    with pytest.raises(AssertionError, match="not allowed"):
        contract.check("GET", "/api/v1/models", 200, [{**copy.deepcopy(good), "extra": 1}])
    with pytest.raises(AssertionError, match="required property"):
        contract.check("GET", "/api/v1/models", 200, [{"name": "m"}])
