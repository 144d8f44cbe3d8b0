"""The serving gateway end to end through a real server (SQLite and PostgreSQL): predict
over HTTP, traffic policies over REST and the CLI, shadow mode (issue 5, test 2), an alias
move under load from another process, and a standalone ``aiwarden serve`` process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pandas as pd
import pytest

from aiwarden.cli import main as cli
from aiwarden.sdk import Client
from tests.gateway.models import FEATURES, fitted, frame, rows
from tests.server.live import ThreadServer, free_port, settings_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    """An open server that accepts entry-point artifacts: the flag a lone developer sets."""
    with ThreadServer(settings_for(db_url, tmp_path_factory.mktemp("data"),
                                   allow_code_artifacts=True)) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: ThreadServer) -> Iterator[Client]:
    with Client(server.url) as c:
        yield c


def _register(client: Client, name: str) -> tuple[Any, Any]:
    """Versions 1 and 2 with monitoring references; champion → 1."""
    v1, v2 = fitted(seed=0), fitted(seed=1, C=0.01)
    x, _ = frame(2000, seed=11)
    for model in (v1, v2):
        version = client.register_version(name, model)["version"]
        ref = x.assign(prediction=model.predict(x), score=model.predict_proba(x)[:, 1])
        client.upload_reference(name, version, ref, prediction="prediction", scores="score")
    client.promote(name, "1", reason="first release")
    return v1, v2


def _metric(client: Client, name: str, metric: str, version: str) -> dict[str, Any]:
    return client.metrics(name, metric, start=time.time() - 3600, end=time.time() + 3600,
                          version=version)["points"][0]


def _flush(http: httpx.Client, name: str) -> dict[str, Any]:
    out = http.post(f"/models/{name}/gateway/flush").json()
    assert out["flushed"], out
    return out


def test_predict_over_http_equals_the_model_and_logs_events(
        http: httpx.Client, client: Client) -> None:
    v1, _ = _register(client, "served")
    data = rows(30)
    x = pd.DataFrame(data)[FEATURES]
    answers = []
    for i, r in enumerate(data):
        resp = http.post("/models/served/predict", json={"features": r,
                                                         "prediction_id": f"h{i}"})
        assert resp.status_code == 200, resp.text
        assert resp.headers["x-aiwarden-version"] == "1"
        assert resp.headers["x-aiwarden-events-dropped"] == "0"
        answers.append(resp.json())
    assert [a["prediction"] for a in answers] == v1.predict(x).tolist()
    assert [a["scores"]["1"] for a in answers] == pytest.approx(
        v1.predict_proba(x)[:, 1].tolist(), abs=1e-12)
    batch = http.post("/models/served/predict", json={"rows": [{"features": r}
                                                                for r in data]}).json()
    assert [a["prediction"] for a in batch["predictions"]] == v1.predict(x).tolist()
    stats = _flush(http, "served")["gateways"][0]
    assert stats["events"]["sent"] == 60 and stats["version"] == "1"
    assert _metric(client, "served", "volume", "1")["rows"] == 60
    assert _metric(client, "served", "latency", "1")["value"]["count"] == 60
    events = client.export_events("served", time.time() - 3600,
                                  time.time() + 3600).to_pandas().set_index("prediction_id")
    assert events.loc["h0", "version"] == "1" and events.loc["h0", "latency_ms"] > 0
    # what cannot be served is refused with the field and the reason
    for body, status, field in (
            (b"{not json", 422, "body"), (b'{"features": 3}', 422, "features"),
            (b'{"features": {"x1": 1}}', 422, "features.x2")):
        resp = http.post("/models/served/predict", content=body)
        assert resp.status_code == status and resp.json()["detail"]["field"] == field, resp.text
    assert http.post("/models/nope/predict", json={"features": {"a": 1}}).status_code == 404
    resp = http.post("/models/served/predict", params={"alias": "staging"},
                     json={"features": data[0]})
    assert resp.status_code == 404 and "staging" in resp.json()["detail"]["message"]


def test_shadow_mode_callers_only_see_v1_while_v2_metrics_accumulate(
        http: httpx.Client, client: Client, server: ThreadServer) -> None:
    v1, v2 = _register(client, "shadow")
    assert cli(["traffic", "shadow", "--shadow", "2", "--reason", "try v2 on live traffic",
                "--url", server.url]) == 0
    policy = http.get("/models/shadow/traffic").json()
    assert (policy["mode"], policy["challenger"], policy["reason"]) == \
        ("shadow", "2", "try v2 on live traffic")
    data = rows(200, seed=5)
    x = pd.DataFrame(data)[FEATURES]
    answers = [http.post("/models/shadow/predict", json={"features": r}).json()
               for r in data]
    assert {a["version"] for a in answers} == {"1"}
    assert [a["prediction"] for a in answers] == v1.predict(x).tolist()
    assert v1.predict(x).tolist() != v2.predict(x).tolist()
    _flush(http, "shadow")
    for version in ("1", "2"):
        assert _metric(client, "shadow", "volume", version)["rows"] == len(data)
        assert _metric(client, "shadow", "latency", version)["value"]["count"] == len(data)
    pred = _metric(client, "shadow", "prediction", "2")["value"]
    assert pred is not None  # the shadow's own prediction distribution, from its answers
    assert cli(["traffic", "shadow", "--off", "--url", server.url]) == 0
    assert http.get("/models/shadow/traffic").json()["mode"] == "off"


def test_canary_over_rest_and_a_model_error(http: httpx.Client, client: Client) -> None:
    _register(client, "canary")
    bad = http.put("/models/canary/traffic", json={"mode": "canary", "challenger": "2",
                                                  "percent": 120})
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "percent"
    missing = http.put("/models/canary/traffic", json={"mode": "canary", "challenger": "9",
                                                      "percent": 10})
    assert missing.status_code == 404 and missing.json()["detail"]["field"] == "challenger"
    ok = http.put("/models/canary/traffic", json={"mode": "canary", "challenger": "2",
                                                 "percent": 30, "sticky_key": "customer"})
    assert ok.status_code == 200 and ok.json()["revision"] == 1
    feats = rows(1)[0]
    versions = {}
    for rnd in range(2):
        for c in range(60):
            r = http.post("/models/canary/predict", json={"features": feats,
                                                           "tags": {"customer": f"c{c}"},
                                                           "prediction_id": f"{rnd}-{c}"})
            versions.setdefault(c, set()).add(r.json()["version"])
    assert all(len(v) == 1 for v in versions.values())
    assert {v for vs in versions.values() for v in vs} == {"1", "2"}
    # a model that raises: the caller gets the reason, monitoring gets the event
    picky = client.register_version("canary", b"{}", format="python", trust=True,
                                    entry_point="tests.gateway.models:load_picky",
                                    filename="picky.json")["version"]
    client.set_alias("canary", "broken", picky, reason="try a model with a bug")
    resp = http.post("/models/canary/predict", params={"alias": "broken"},
                     json={"features": {"x1": 9.0}, "prediction_id": "boom"})
    detail = resp.json()["detail"]
    assert resp.status_code == 500 and detail["error"] == "model_error"
    assert detail["version"] == picky and "x1 above 3" in detail["message"]
    _flush(http, "canary")
    errors = _metric(client, "canary", "errors", picky)["value"]
    assert (errors["rows"], errors["errors"]) == (1, 1)


def test_an_alias_move_under_load_from_another_process_fails_no_request(
        http: httpx.Client, client: Client, server: ThreadServer, tmp_path: Path) -> None:
    _register(client, "moving")
    out = tmp_path / "load.json"
    load = subprocess.Popen(
        [sys.executable, "-m", "tests.gateway.load", f"{server.url}/api/v1/models/moving/"
         "predict", str(out), "--rate", "150", "--seconds", "3"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert load.stdout is not None and load.stdout.readline().strip() == "started"
    time.sleep(0.7)  # steady traffic on version 1 first
    moved_at = time.time()
    client.promote("moving", "2", reason="v2 under load")
    assert load.wait(60) == 0
    load.stdout.close()
    results = json.loads(out.read_text())
    assert len(results) > 200
    assert [r for r in results if r[3] != 200] == []  # zero failed requests
    for worker in {r[0] for r in results}:  # each caller: v1, then v2, never back
        seq = [r[4] for r in sorted(results, key=lambda r: r[1]) if r[0] == worker]
        assert seq == sorted(seq) and seq[0] == "1" and seq[-1] == "2", seq
    first_v2 = min(r[1] for r in results if r[4] == "2")
    print(f"switched {first_v2 - moved_at:.3f} s after the alias moved")  # timed in bench/


def _readme_serve_path() -> tuple[int, str]:
    """The port and path the README's `aiwarden serve` line tells a user to POST to."""
    line = next(x for x in (ROOT / "README.md").read_text().splitlines()
                if x.startswith("aiwarden serve "))
    port, path = re.search(r"POST :(\d+)(/\S*)", line).groups()
    return int(port), path


def test_standalone_serve_against_a_server_url(http: httpx.Client, client: Client,
                                               server: ThreadServer, tmp_path: Path) -> None:
    v1, v2 = _register(client, "alone")
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    env = {**os.environ, "AIWARDEN_PRICE_CPU_CORE_HOUR": "0.05"}
    proc = subprocess.Popen([sys.executable, "-m", "aiwarden.cli", "serve", "alone",
                             "--port", str(port), "--url", server.url, "--poll", "0.1",
                             "--resources-every", "0.3"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as g:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                try:
                    if g.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "aiwarden serve never became ready"
                time.sleep(0.1)
            data = rows(20, seed=9)
            x = pd.DataFrame(data)[FEATURES]
            answers = [g.post("/predict", json={"features": r, "prediction_id": f"a{i}"}
                              ).json() for i, r in enumerate(data)]
            assert [a["prediction"] for a in answers] == v1.predict(x).tolist()
            assert {a["version"] for a in answers} == {"1"}
            http.put("/models/alone/traffic", json={"mode": "canary", "challenger": "2",
                                                    "percent": 100}).raise_for_status()
            while g.post("/predict", json={"features": data[0]}).json()["version"] != "2":
                assert time.monotonic() < deadline, "the policy never reached the process"
                time.sleep(0.05)
            same_path = g.post("/api/v1/models/alone/predict",
                               json={"features": data[1], "prediction_id": "b1"}).json()
            assert same_path["version"] == "2"
            readme_port, readme_path = _readme_serve_path()  # the README's path answers
            assert readme_port == 8080  # `aiwarden serve`'s default port
            assert g.post(readme_path, json={"features": data[1]}).status_code == 200
            nan = g.post("/predict", content=b'{"features": {"a": NaN}}',
                         headers={"Content-Type": "application/json"})
            assert nan.status_code == 422 and nan.json()["detail"]["field"] == "features.a"
            assert same_path["prediction"] == v2.predict(x.iloc[[1]]).tolist()[0]
            stats = g.post("/gateway/flush").json()
            assert stats["flushed"] and stats["events"]["failed"] == 0
            assert stats["events"]["sent"] == stats["events"]["accepted"] >= 22
            assert "aiwarden_gateway_events_total" in g.get("/metrics").text
            while not _metric(client, "alone", "resources", "2")["value"]["gauges"]:
                assert time.monotonic() < deadline, "no resource sample arrived"
                time.sleep(0.1)
            last = g.post("/predict", json={"features": data[2], "prediction_id": "last"})
            assert last.status_code == 200
            for headers in ({"Origin": "http://evil.example"}, {"Content-Type": "text/plain"},
                            {"Host": "evil.example"}):  # a page in the user's browser
                foreign = g.post("/predict", headers=headers, content=orjson.dumps(
                    {"features": data[3], "prediction_id": "planted"}))
                assert foreign.status_code in (403, 415, 421), foreign.text
        proc.terminate()  # a graceful stop sends what is still queued
        assert proc.wait(30) in (0, -15), (tmp_path / "serve.log").read_text()
        assert _metric(client, "alone", "volume", "1")["rows"] >= 20
        events = client.export_events("alone", time.time() - 3600, time.time() + 3600)
        ids = set(events.column("prediction_id").to_pylist())
        assert {f"a{i}" for i in range(20)} | {"b1", "last"} <= ids
        assert "planted" not in ids
        usage = _metric(client, "alone", "resources", "2")["value"]
        assert usage["gauges"]["cpu_percent"]["samples"] >= 1
        assert "cost" in usage["gauges"] and "rss_bytes" in usage["gauges"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        log.close()
