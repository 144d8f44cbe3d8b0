"""Text drift through a real server on SQLite and PostgreSQL: prompts switching language or
topic fire a ``text_drift`` rule, a control from the reference's distribution stays silent, a
thin window says why, embeddings' MMD equals the engine's on the raw vectors, and descriptor
drift works on the ``llm_*`` columns."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest

from aiwarden.engine.text_drift import mmd_rbf
from tests.engine.test_text_drift import BILLING, GERMAN, ORDERS, prompts
from tests.server.conftest import evaluate

DIM = 8


OUTPUTS = ["Your order ships tomorrow.", "It left our warehouse this morning and should "
           "arrive within two days.", "Sorry for the wait!", "The courier has it; here is "
           "the tracking link you asked for, and the address it goes to."]


def _events(texts: list[str], prefix: str, *, embeddings: np.ndarray | None = None,
            output: str | None = None) -> list[dict]:
    ts = time.time() - 300
    out = []
    for i, t in enumerate(texts):
        e = {"request_id": f"{prefix}{i}", "timestamp": ts + i * 0.01, "version": "v1",
             "input": t, "output": OUTPUTS[i % 4] if output is None else output,
             "tokens_in": 10, "tokens_out": 8}
        if embeddings is not None:
            e["embedding"] = [float(x) for x in embeddings[i]]
        out.append(e)
    return out


@pytest.fixture(scope="module")
def http_module(server):
    with httpx.Client(base_url=server.url + "/api/v1", timeout=120) as c:
        yield c


def _model(http: httpx.Client, name: str, ref_embeddings: np.ndarray | None = None) -> None:
    http.post("/models", json={"name": name, "task": "text_generation"}).raise_for_status()
    r = http.put(f"/models/{name}/versions/v1/llm-reference", json=_events(
        prompts(ORDERS, 300, 1), f"ref-{name}-", embeddings=ref_embeddings))
    assert r.status_code == 201, r.text
    assert r.json()["text_reference"]["prompts"] == 300


def _value(http: httpx.Client, name: str) -> dict:
    point = http.get(f"/models/{name}/metrics", params={"metric": "text_drift",
                                                         "start": "-1h"}).json()["points"][0]
    return point


def test_language_and_topic_switches_fire_and_the_control_is_silent(http_module) -> None:
    http = http_module
    for name in ("td-german", "td-billing", "td-same"):
        _model(http, name)
    http.post("/models/td-german/llm-events", json=_events(
        prompts(GERMAN, 200, 2), "g")).raise_for_status()
    http.post("/models/td-billing/llm-events", json=_events(
        prompts(BILLING, 200, 3), "b")).raise_for_status()
    http.post("/models/td-same/llm-events", json=_events(
        prompts(ORDERS, 200, 4), "s")).raise_for_status()
    same = _value(http, "td-same")["value"]
    assert same["drifted"] == 0 and same["auc"] < same["threshold"]
    assert same["top_ngrams"] == {} and "no drift" in same["reasons"]["top_ngrams"]
    german = _value(http, "td-german")["value"]
    assert german["drifted"] == 1 and german["auc"] > 0.9
    assert german["n_current"] == 200
    german_text = " ".join(prompts(GERMAN, 200, 2)).lower()
    named = german["top_ngrams"]["current"]
    assert named and all(g.strip() in german_text and w > 0 for g, w in named)
    assert any(g.strip() in ("order", "rder", "orde") for g, _ in
               german["top_ngrams"]["reference"])
    http.put("/rules/*/prompts-moved", json={
        "metric": "text_drift", "stat": "drifted", "window": "1h", "op": ">",
        "critical": 0.5, "min_rows": 50}).raise_for_status()
    try:
        out = evaluate(http)
        fired = {t["labels"]["model"] for t in out["transitions"]
                 if t["kind"] == "firing" and t["labels"]["rule"] == "prompts-moved"}
        assert fired == {"td-german", "td-billing"}, out["transitions"]
    finally:
        http.delete("/rules/*/prompts-moved")


def test_a_thin_window_says_why(http_module) -> None:
    http = http_module
    _model(http, "td-thin")
    http.post("/models/td-thin/llm-events", json=_events(
        prompts(GERMAN, 20, 2), "t")).raise_for_status()
    point = _value(http, "td-thin")
    assert point["value"] is None
    assert "20 prompts stored in this window" in point["reason"]
    r = http.put("/rules/*/bad-td", json={"metric": "text_drift", "stat": "auc",
                                          "segment_by": "locale"})
    assert r.status_code in (400, 422) and "not split by segment" in r.text


def test_embedding_drift_equals_the_engine_on_the_raw_vectors(http_module) -> None:
    http = http_module
    rng = np.random.default_rng(7)
    ref = rng.normal(size=(300, DIM))
    for name in ("td-emb-moved", "td-emb-same"):
        _model(http, name, ref_embeddings=ref)
    moved = rng.normal(size=(100, DIM)) + np.r_[1.0, np.zeros(DIM - 1)]
    same = rng.normal(size=(100, DIM))
    text = prompts(ORDERS, 100, 5)
    http.post("/models/td-emb-moved/llm-events", json=_events(
        text, "m", embeddings=moved)).raise_for_status()
    http.post("/models/td-emb-same/llm-events", json=_events(
        text, "q", embeddings=same)).raise_for_status()
    v = _value(http, "td-emb-moved")["value"]
    direct = mmd_rbf(ref, moved, n_permutations=200, max_rows=300)
    assert v["embedding_mmd2"] == pytest.approx(direct.mmd2, rel=1e-9)
    assert v["embedding_p_value"] == pytest.approx(direct.p_value)
    assert v["embedding_drifted"] == 1
    c = _value(http, "td-emb-same")["value"]
    assert c["embedding_drifted"] == 0 and c["embedding_p_value"] > 0.05
    assert c["drifted"] == 0  # the prompts are the reference's distribution


def test_descriptor_drift_works_on_the_llm_columns(http_module) -> None:
    http = http_module
    _model(http, "td-desc")
    long = "Your order ships tomorrow. " * 40  # ~1,000 characters instead of 26
    http.post("/models/td-desc/llm-events", json=_events(
        prompts(ORDERS, 200, 6), "d", output=long)).raise_for_status()
    drift = http.get("/models/td-desc/metrics", params={
        "metric": "drift", "start": "-1h"}).json()["points"][0]["value"]
    assert drift["columns"]["llm_output_chars"]["drifted"] is True, drift["columns"][
        "llm_output_chars"]
    assert drift["columns"]["llm_unsafe"]["drifted"] is False


def test_events_without_a_version_are_the_serving_versions_and_drift(http_module) -> None:
    """They were stored with version null, so no window of any version read them."""
    http = http_module
    _model(http, "td-unnamed")
    events = _events(prompts(GERMAN, 200, 2), "u")
    for e in events:
        del e["version"]
    r = http.post("/models/td-unnamed/llm-events", json=events)
    assert r.json()["accepted"] == 200, r.text
    listed = http.get("/models/td-unnamed/llm-events", params={"limit": 1000}).json()["events"]
    assert len(listed) == 200 and {e["version"] for e in listed} == {"v1"}
    value = _value(http, "td-unnamed")["value"]
    assert value["n_current"] == 200 and value["drifted"] == 1
    # a newer version serves: unnamed events are its own, as their descriptor rows are
    r = http.put("/models/td-unnamed/versions/v2/llm-reference", json=_events(
        prompts(GERMAN, 300, 8), "ref2-"))
    assert r.status_code == 201, r.text
    later = _events(prompts(GERMAN, 100, 9), "w")
    for e in later:
        del e["version"]
    http.post("/models/td-unnamed/llm-events", json=later).raise_for_status()
    assert http.get("/models/td-unnamed/llm-events/w5").json()["version"] == "v2"
    v2 = http.get("/models/td-unnamed/metrics", params={
        "metric": "text_drift", "start": "-1h", "version": "v2"}).json()["points"][0]
    assert v2["value"]["n_current"] == 100 and v2["value"]["drifted"] == 0, v2
    requests = http.get("/models/td-unnamed/metrics", params={
        "metric": "volume", "start": "-1h", "version": "v2"}).json()["points"][0]
    assert requests["value"]["rows"] == 100, requests
