"""Embedding drift through a real server with a local embedding model (the embeddings extra,
``AIWARDEN_EMBEDDING_MODEL``) on SQLite and PostgreSQL: prompts sent without an embedding are
embedded at ingest and at reference upload, a planted topic shift fires and a control stays
silent (MMD equal to the engine's on vectors embedded here), events' own embeddings are kept
and never compared with the local model's, and a bad model folder stops the server in one
line."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from aiwarden.engine.text_drift import mmd_rbf
from aiwarden.llm.embeddings import LocalEmbedder
from tests.engine.test_text_drift import BILLING, ORDERS, prompts
from tests.llm import tiny_embedding_model
from tests.server.conftest import evaluate
from tests.server.live import ThreadServer, settings_for

DIM = 16  # the tiny model's width: events' own embeddings of the same width must not mix


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_embedding_model.build(tmp_path_factory.mktemp("m2v") / "tiny", dim=DIM)


@pytest.fixture(scope="module")
def http(db_url: str, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[httpx.Client]:
    settings = settings_for(db_url, tmp_path_factory.mktemp("data"),
                            embedding_model=str(model_dir))
    with ThreadServer(settings) as srv, httpx.Client(base_url=srv.url + "/api/v1",
                                                     timeout=120) as c:
        yield c


def _events(texts: list[str], prefix: str, embeddings: np.ndarray | None = None) -> list[dict]:
    ts = time.time() - 300
    out = []
    for i, t in enumerate(texts):
        e = {"request_id": f"{prefix}{i}", "timestamp": ts + i * 0.01, "version": "v1",
             "input": t, "output": "Your order ships tomorrow.", "tokens_in": 10,
             "tokens_out": 8}
        if embeddings is not None:
            e["embedding"] = [float(x) for x in embeddings[i]]
        out.append(e)
    return out


def _model(http: httpx.Client, name: str, ref: list[str],
           embeddings: np.ndarray | None = None) -> dict:
    http.post("/models", json={"name": name, "task": "text_generation"}).raise_for_status()
    r = http.put(f"/models/{name}/versions/v1/llm-reference",
                 json=_events(ref, f"ref-{name}-", embeddings))
    assert r.status_code == 201, r.text
    return r.json()["text_reference"]


def _value(http: httpx.Client, name: str) -> dict:
    return http.get(f"/models/{name}/metrics", params={"metric": "text_drift",
                                                        "start": "-1h"}).json()["points"][0]


def test_prompts_are_embedded_and_a_topic_shift_fires_a_control_stays_silent(
        http: httpx.Client, model_dir: Path) -> None:
    emb = LocalEmbedder(model_dir)
    ref = prompts(ORDERS, 300, 1)
    moved = prompts(ORDERS, 100, 2) + prompts(BILLING, 100, 3)  # half the traffic moved
    same = prompts(ORDERS, 200, 4)
    for name in ("le-moved", "le-same"):
        assert _model(http, name, ref) == {"prompts": 300, "embeddings": 300,
                                           "embedding_source": emb.source}
    http.post("/models/le-moved/llm-events", json=_events(moved, "m")).raise_for_status()
    http.post("/models/le-same/llm-events", json=_events(same, "s")).raise_for_status()
    stored = http.get("/models/le-moved/llm-events/m150").json()["detail"]
    assert stored["embedding"] == emb.embed([moved[150]])[0]
    assert stored["embedding_source"] == emb.source
    v = _value(http, "le-moved")["value"]
    direct = mmd_rbf(np.array(emb.embed(ref)), np.array(emb.embed(moved)), n_permutations=200,
                     max_rows=300)
    assert v["embedding_mmd2"] == pytest.approx(direct.mmd2, rel=1e-9)
    assert v["embedding_p_value"] == pytest.approx(direct.p_value)
    assert v["embedding_drifted"] == 1 and direct.p_value < 0.01
    c = _value(http, "le-same")["value"]
    assert c["embedding_drifted"] == 0 and c["embedding_p_value"] > 0.05, c
    assert c["drifted"] == 0
    http.put("/rules/*/prompt-embeddings-moved", json={
        "metric": "text_drift", "stat": "embedding_drifted", "window": "1h", "op": ">",
        "critical": 0.5, "min_rows": 50}).raise_for_status()
    try:
        out = evaluate(http)
        fired = {t["labels"]["model"] for t in out["transitions"] if t["kind"] == "firing"
                 and t["labels"]["rule"] == "prompt-embeddings-moved"}
        assert fired & {"le-moved", "le-same"} == {"le-moved"}, out["transitions"]
    finally:
        http.delete("/rules/*/prompt-embeddings-moved")


def test_events_own_embeddings_are_kept_and_never_mixed_with_the_local_models(
        http: httpx.Client) -> None:
    rng = np.random.default_rng(7)
    ref = rng.normal(size=(300, DIM))
    text = prompts(ORDERS, 300, 1)
    for name in ("le-own-moved", "le-own-same"):
        assert _model(http, name, text, ref)["embedding_source"] == "event"
    # events without an embedding are embedded by the local model: another source than the
    # reference's, so they are left out, not compared with the caller's vectors
    http.post("/models/le-own-moved/llm-events", json=_events(
        prompts(ORDERS, 100, 5), "x")).raise_for_status()
    point = _value(http, "le-own-moved")["value"]
    assert point["embedding_p_value"] is None
    assert ("0 in this window (100 embeddings of another source than the reference's 'event' "
            "left out)") in point["reasons"]["embedding_p_value"]
    moved = rng.normal(size=(100, DIM)) + np.r_[1.0, np.zeros(DIM - 1)]
    same = rng.normal(size=(100, DIM))
    http.post("/models/le-own-moved/llm-events", json=_events(
        prompts(ORDERS, 100, 6), "m", moved)).raise_for_status()
    http.post("/models/le-own-same/llm-events", json=_events(
        prompts(ORDERS, 100, 7), "q", same)).raise_for_status()
    assert http.get("/models/le-own-moved/llm-events/m3").json()["detail"]["embedding"] == [
        float(x) for x in moved[3]]
    v = _value(http, "le-own-moved")["value"]
    direct = mmd_rbf(ref, moved, n_permutations=200, max_rows=300)
    assert v["embedding_mmd2"] == pytest.approx(direct.mmd2, rel=1e-9)
    assert v["embedding_drifted"] == 1
    c = _value(http, "le-own-same")["value"]
    assert c["embedding_drifted"] == 0 and c["embedding_p_value"] > 0.05


def test_a_bad_model_folder_stops_the_server_in_one_line(tmp_path: Path) -> None:
    env = {"AIWARDEN_EMBEDDING_MODEL": str(tmp_path / "no-such-model"),
           "AIWARDEN_DATA_DIR": str(tmp_path), "AIWARDEN_LOG_LEVEL": "warning", "PATH": ""}
    run = subprocess.run([sys.executable, "-m", "aiwarden.cli", "server", "--port", "0"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not a folder" in lines[0], run.stderr
    assert "no-such-model" in lines[0]
