"""Embedding drift of an image model over real HTTP (SQLite and PostgreSQL): image events
carry the embedding the user computed; the ``embedding_drift`` metric (MMD² with a
permutation test) of a window agrees with a direct computation on the raw arrays, stays
quiet on an hour drawn like the reference and fires a rule on a shifted hour; a quarantined
image's embedding is not counted; malformed embeddings are 4xx naming the field.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from aiwarden.images import mmd_test, properties
from aiwarden.images.synthetic import fruit_jpeg
from tests.server.conftest import register_model
from tests.server.live import ThreadServer, settings_for

SIZE, DIM, N, HOUR = 96, 16, 60, 3600


@pytest.fixture(scope="module")
def server(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    with ThreadServer(settings_for(db_url, tmp_path_factory.mktemp("data"),
                                   evaluate_every=0)) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: ThreadServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as c:
        yield c


def _rows(rng: np.random.Generator, n: int, t: float, prefix: str, shift: float
          ) -> tuple[list[dict[str, Any]], list[bytes], np.ndarray]:
    kinds = rng.choice(["banana", "cucumber"], n).tolist()
    emb = rng.normal(shift, 1.0, (n, DIM))
    metas = [{"prediction_id": f"{prefix}{i}", "timestamp": t + 60 + i * 10, "prediction": k,
              "features": {"store": "s1"}, "embedding": emb[i].tolist()}
             for i, k in enumerate(kinds)]
    return metas, [fruit_jpeg(k, rng, SIZE) for k in kinds], emb


@pytest.fixture(scope="module")
def kiosk(http: httpx.Client) -> dict[str, Any]:
    """A fruit classifier with 200 reference embeddings; hour 0: 60 images whose embeddings
    are drawn like the reference (multipart) plus a truncated JPEG carrying one far away;
    hour 1: 60 images whose embeddings moved by 0.6 in every dimension (JSON, base64)."""
    from base64 import b64encode

    rng = np.random.default_rng(5)
    name = f"emb-{uuid.uuid4().hex[:8]}"
    kinds = rng.choice(["banana", "cucumber"], 40).tolist()
    ref = properties([fruit_jpeg(k, rng, SIZE) for k in kinds]).to_pandas()[
        ["brightness", "saturation"]]
    ref["store"], ref["pred"] = "s1", kinds
    register_model(http, name, ref, {"prediction": "pred"})
    reference = rng.normal(0.0, 1.0, (200, DIM))
    r = http.put(f"/models/{name}/versions/v1/embedding-reference",
                 json={"embeddings": reference.tolist()})
    assert r.status_code == 200, r.text
    assert r.json() == {"model": name, "version": "v1", "embeddings": 200, "received": 200,
                        "dimensions": DIM}
    t0 = float(int(time.time()) // HOUR * HOUR - 3 * HOUR)

    metas, files, same = _rows(rng, N, t0, "a", 0.0)
    broken = fruit_jpeg("banana", rng, SIZE)
    metas.append({"prediction_id": "a-broken", "timestamp": t0 + 30, "prediction": "banana",
                  "features": {"store": "s1"}, "embedding": [50.0] * DIM})
    files.append(broken[: len(broken) // 2])
    first = http.post(f"/models/{name}/images", files=[
        ("files", (f"{m['prediction_id']}.jpg", f, "image/jpeg"))
        for m, f in zip(metas, files, strict=True)], data={"metadata": json.dumps(metas)})
    assert first.status_code == 200, first.text
    assert (first.json()["accepted"], first.json()["embeddings"]) == (N, N), first.text

    metas, files, moved = _rows(rng, N, t0 + HOUR, "b", 0.6)
    for m, f in zip(metas, files, strict=True):
        m["image"] = b64encode(f).decode()
    second = http.post(f"/models/{name}/images", json={"rows": metas})
    assert second.status_code == 200, second.text
    assert second.json()["embeddings"] == N
    return {"name": name, "t0": t0, "reference": reference, "same": same, "moved": moved}


def _window(http: httpx.Client, kiosk: dict[str, Any], hour: int) -> dict[str, Any]:
    start = kiosk["t0"] + hour * HOUR
    r = http.get(f"/models/{kiosk['name']}/metrics", params={
        "metric": "embedding_drift", "start": start, "end": start + HOUR})
    assert r.status_code == 200, r.text
    (point,) = r.json()["points"]
    return point


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray, sigma: float) -> float:
    """The textbook unbiased MMD² (Gretton et al. 2012, eq. 3), written out on its own."""
    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return np.exp(-d2 / (2 * sigma**2))
    n, m = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1))
                 + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * k(x, y).mean())


@pytest.mark.parametrize(("hour", "key", "drifted"), [(0, "same", 0), (1, "moved", 1)])
def test_window_statistic_equals_a_direct_computation(
        http: httpx.Client, kiosk: dict[str, Any], hour: int, key: str, drifted: int) -> None:
    value = _window(http, kiosk, hour)["value"]
    assert value is not None
    # stored as float32: the direct computation reads the same numbers
    ref = kiosk["reference"].astype(np.float32).astype(np.float64)
    cur = kiosk[key].astype(np.float32).astype(np.float64)
    assert (value["n_reference"], value["n_current"], value["n_window"]) == (200, N, N)
    want = mmd_test(ref, cur, n_permutations=200, seed=0)
    assert value["bandwidth"] == pytest.approx(want.bandwidth, rel=1e-9)
    assert value["mmd2"] == pytest.approx(want.statistic, rel=1e-9, abs=1e-12)
    assert value["mmd2"] == pytest.approx(_mmd2_unbiased(ref, cur, want.bandwidth),
                                          rel=1e-6, abs=1e-9)
    assert value["drifted"] == drifted
    assert (value["p_value"] < 0.05) == bool(drifted), value
    assert 1 / 201 <= value["p_value"] <= 1


def test_a_rule_on_the_p_value_fires_on_the_shifted_hour(
        http: httpx.Client, kiosk: dict[str, Any]) -> None:
    name, t0 = kiosk["name"], kiosk["t0"]
    r = http.put(f"/rules/{name}/embeddings-moved", json={
        "metric": "embedding_drift", "stat": "p_value", "window": "1h", "op": "<",
        "critical": 0.01})
    assert r.status_code == 200, r.text
    r = http.post("/alerts/evaluate", params={"now": t0 + HOUR})
    assert r.status_code == 200 and r.json()["evaluated"], r.text
    assert not [t for t in r.json()["transitions"]
                if t["labels"]["rule"] == "embeddings-moved" and t["kind"] == "firing"]
    r = http.post("/alerts/evaluate", params={"now": t0 + 2 * HOUR})
    fired = [t for t in r.json()["transitions"]
             if t["labels"]["rule"] == "embeddings-moved" and t["kind"] == "firing"]
    assert len(fired) == 1, r.json()["transitions"]
    assert fired[0]["value"] == pytest.approx(_window(http, kiosk, 1)["value"]["p_value"])


def test_a_window_without_embeddings_or_reference_says_why(
        http: httpx.Client, kiosk: dict[str, Any]) -> None:
    point = _window(http, kiosk, 2)
    assert point["value"] is None and "0 embeddings in the window" in point["reason"]
    name = f"noref-{uuid.uuid4().hex[:6]}"
    register_model(http, name)
    r = http.get(f"/models/{name}/metrics", params={"metric": "embedding_drift",
                                                     "start": "-1h"})
    assert r.status_code == 200, r.text
    assert "no reference embeddings" in r.json()["points"][0]["reason"]


def test_the_model_page_charts_embedding_drift(server: ThreadServer,
                                               kiosk: dict[str, Any]) -> None:
    import re

    r = httpx.get(f"{server.url}/models/{kiosk['name']}/panels/charts",
                  params={"range": "6h"}, headers={"HX-Request": "true"}, timeout=120)
    assert r.status_code == 200, r.text
    specs = {s["id"]: s for s in (json.loads(x) for x in re.findall(
        r'<script type="application/json" class="chart-spec">(.*?)</script>', r.text, re.S))}
    mmd, pv = specs["embedding-mmd"], specs["embedding-p"]
    drawn = [(x, p) for x, p in pv["series"][0]["data"] if p is not None]
    # the windows holding the first hour's embeddings stay quiet, the last one (the shifted
    # hour's) stands out; windows without 20 embeddings are not drawn
    assert len(drawn) >= 2 and drawn[-1][1] < 0.05 < min(p for _, p in drawn[:-1]), drawn
    assert drawn[-1][0] / 1000 > kiosk["t0"] + N * 10, drawn  # after hour 0's rows
    assert any(t["label"] == "alpha" for t in pv["thresholds"])
    assert [p for _, p in mmd["series"][0]["data"] if p is not None]
    # a model without reference embeddings gets no such chart
    other = f"plain-{uuid.uuid4().hex[:6]}"
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as api:
        register_model(api, other)
    r = httpx.get(f"{server.url}/models/{other}/panels/charts", params={"range": "1h"},
                  headers={"HX-Request": "true"}, timeout=120)
    assert r.status_code == 200 and "embedding-mmd" not in r.text


@pytest.mark.parametrize(("body", "field"), [
    ({"rows": [{"image": "AAAA", "embedding": "x"}]}, "rows[0].embedding"),
    ({"rows": [{"image": "AAAA", "embedding": []}]}, "rows[0].embedding"),
    ({"rows": [{"image": "AAAA", "embedding": [1, "a"]}]}, "rows[0].embedding"),
    ({"rows": [{"image": "AAAA", "embedding": [1.0] * 5000}]}, "rows[0].embedding"),
    ({"rows": [{"image": "AAAA", "embedding": [1.0, 2.0]},
               {"image": "AAAA", "embedding": [1.0]}]}, "rows[1].embedding"),
])
def test_malformed_embeddings_are_422_naming_the_field(
        http: httpx.Client, kiosk: dict[str, Any], body: dict[str, Any], field: str) -> None:
    r = http.post(f"/models/{kiosk['name']}/images", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["field"] == field, r.text


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"embeddings": []}, 422, "embeddings"),
    ({"embeddings": [[1.0, 2.0], [1.0]]}, 422, "embeddings[1]"),
    ({"embeddings": [[1.0, 2.0]] * 3}, 422, "embeddings"),  # fewer than 20 vectors
    ([[True, 1.0]] * 30, 422, "embeddings[0]"),
])
def test_malformed_reference_embeddings_are_422(
        http: httpx.Client, kiosk: dict[str, Any], body: Any, status: int, field: str) -> None:
    r = http.put(f"/models/{kiosk['name']}/versions/v1/embedding-reference", json=body)
    assert r.status_code == status, r.text
    assert r.json()["detail"]["field"] == field, r.text


def test_a_vector_not_the_references_length_is_refused_and_nothing_stored(
        http: httpx.Client, kiosk: dict[str, Any]) -> None:
    """One such row once made the whole window's drift null (two lengths): the rule went
    to nodata, so any ingest client could blind it."""
    from base64 import b64encode

    rng = np.random.default_rng(11)
    metas, files, _ = _rows(rng, 3, kiosk["t0"] + 30, "short", 0.0)
    metas[2]["embedding"] = metas[2]["embedding"][: DIM // 2]
    for m, f in zip(metas, files, strict=True):
        m["image"] = b64encode(f).decode()
    for rows in (metas[2:], metas):  # alone, and after rows of the right length
        r = http.post(f"/models/{kiosk['name']}/images", json={"rows": rows})
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert detail["field"] == f"rows[{len(rows) - 1}].embedding", detail
        assert f"{DIM // 2} dimensions" in detail["message"] and str(DIM) in detail["message"]
    import io

    import pyarrow.parquet as pq

    r = http.get(f"/models/{kiosk['name']}/events",
                 params={"start": kiosk["t0"], "end": kiosk["t0"] + HOUR})
    assert r.status_code == 200, r.text
    ids = set(pq.read_table(io.BytesIO(r.content)).column("prediction_id").to_pylist())
    assert len(ids) >= N  # the export is the window's events
    assert not {m["prediction_id"] for m in metas} & ids  # nothing of either request
    assert _window(http, kiosk, 0)["value"] is not None  # the window still compares


def test_unknown_version_is_404_and_segment_rules_are_refused(
        http: httpx.Client, kiosk: dict[str, Any]) -> None:
    r = http.put(f"/models/{kiosk['name']}/versions/v9/embedding-reference",
                 json={"embeddings": [[1.0]] * 30})
    assert r.status_code == 404, r.text
    r = http.put(f"/rules/{kiosk['name']}/emb-seg", json={
        "metric": "embedding_drift", "segment_by": "store", "critical": 0.01, "op": "<",
        "stat": "p_value"})
    assert r.status_code == 422 and "not split by segment" in r.text, r.text
