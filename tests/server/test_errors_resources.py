"""Failed predictions and resource usage: ingested, validated, queried and alerted on,
through the real server (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import sys
import time
import uuid

import numpy as np
import pyarrow.parquet as pq

from aiwarden import Client
from aiwarden.process_usage import Prices, ProcessSampler
from tests.server.conftest import evaluate, json_rows, register_model, scored_frame


def _window(http, name: str, metric: str) -> dict:
    out = http.get(f"/models/{name}/metrics", params={"metric": metric, "start": "-2h"})
    out.raise_for_status()
    return out.json()["points"][0]["value"]


def test_failed_predictions_are_counted_and_kept_with_their_message(http) -> None:
    name = f"er-{uuid.uuid4().hex[:6]}"
    register_model(http, name)
    rows = json_rows(scored_frame(40, seed=3), time.time() - 600)
    for i, flag in {0: True, 1: "TimeoutError: model took 2.1 s", 2: False, 3: None,
                    4: "true", 5: ""}.items():
        rows[i]["error"] = flag
    rows[6]["error"] = 17  # not an error flag: the row is quarantined, and says why
    res = http.post(f"/models/{name}/predictions", json=rows).json()
    assert res["accepted"] == 39 and res["quarantined"] == 1
    assert res["errors"][0]["field"] == "error" and "true/false" in res["errors"][0]["reason"]
    value = _window(http, name, "errors")
    assert value == {"rows": 39, "errors": 3, "rate": 3 / 39}
    table = pq.read_table(io.BytesIO(http.get(f"/models/{name}/events").content))
    by_id = dict(zip(table.column("prediction_id").to_pylist(),
                     table.column("error").to_pylist(), strict=True))
    assert by_id["p0"] == "error" and by_id["p1"].startswith("TimeoutError")
    assert by_id["p4"] == "error" and by_id["p2"] is None and by_id["p5"] is None


def test_resource_samples_give_mean_peak_and_cost_per_thousand(http) -> None:
    name = f"rs-{uuid.uuid4().hex[:6]}"
    register_model(http, name)
    now = time.time()
    http.post(f"/models/{name}/predictions",
              json=json_rows(scored_frame(250, seed=4), now - 900)).raise_for_status()
    rng = np.random.default_rng(0)
    cpu, rss, cost = rng.uniform(5, 95, 30), rng.uniform(1e8, 3e8, 30), rng.uniform(0, 1e-3, 30)
    good = [{"timestamp": now - 900 + 20 * i, "cpu_percent": float(cpu[i]),
             "rss_bytes": float(rss[i]), "cost": float(cost[i])} for i in range(30)]
    # Two samples of 1.7e308 summed to inf, stored as null: every later alert evaluation
    # and /metrics answered 500, for every model on the server.
    bad = [{"cpu_percent": -1}, {"cpu_percent": "high"}, {"CPU": 3.0}, {"version": "v9",
           "cpu_percent": 1.0}, {"timestamp": "yesterday", "cpu_percent": 1.0}, ["x"], {},
           {"cpu_percent": 1.7e308}, {"rss_bytes": 1.7e308}]
    res = http.post(f"/models/{name}/resources", json={"samples": good + bad}).json()
    assert (res["accepted"], res["rejected"]) == (30, len(bad))
    assert [e["field"] for e in res["errors"]] == ["cpu_percent", "cpu_percent", "CPU",
                                                    "version", "timestamp", "sample", "sample",
                                                    "cpu_percent", "rss_bytes"]
    assert "1e+18" in res["errors"][-1]["reason"]
    assert evaluate(http)["evaluated"]  # the cycle that failed for every model
    value = _window(http, name, "resources")
    g = value["gauges"]
    assert g["cpu_percent"]["samples"] == 30
    assert np.isclose(g["cpu_percent"]["mean"], cpu.mean())
    assert np.isclose(g["cpu_percent"]["max"], cpu.max())
    assert np.isclose(g["rss_bytes"]["max"], rss.max())
    assert np.isclose(value["cost_per_1k"], cost.sum() / 250 * 1000)
    assert http.post(f"/models/{name}/resources", json={"x": 1}).status_code == 422


def test_rules_fire_on_error_rate_and_resource_usage(http) -> None:
    name = f"rr-{uuid.uuid4().hex[:6]}"
    register_model(http, name)
    now = time.time()
    rows = json_rows(scored_frame(100, seed=5), now - 300)
    for r in rows[:30]:
        r["error"] = "upstream 503"
    http.post(f"/models/{name}/predictions", json=rows).raise_for_status()
    http.post(f"/models/{name}/resources", json=[
        {"timestamp": now - 120, "cpu_percent": 97.0, "rss_bytes": 5e8},
        {"timestamp": now - 60, "cpu_percent": 40.0, "rss_bytes": 6e8}]).raise_for_status()
    yaml = f"""rules:
  - {{name: errors, model: {name}, metric: errors, window: 15m, critical: 0.2}}
  - {{name: cpu, model: {name}, metric: resources, stat: cpu_percent_max, window: 15m,
      critical: 90}}
  - {{name: rss, model: {name}, metric: resources, stat: rss_bytes_mean, window: 15m,
      critical: 1e9}}
"""
    http.post("/rules/apply", content=yaml).raise_for_status()
    bad = http.post("/rules/apply", content=f"rules:\n  - {{name: r, model: {name}, "
                                             "metric: resources, critical: 1}\n")
    assert bad.status_code == 422 and "needs a stat" in bad.json()["detail"]["message"]
    out = evaluate(http)
    fired = {t["labels"]["rule"]: t["value"] for t in out["transitions"]
             if t["labels"]["model"] == name and t["kind"] == "firing"}
    assert set(fired) == {"errors", "cpu"}
    assert np.isclose(fired["errors"], 0.3) and fired["cpu"] == 97.0


def test_the_sdk_sends_samples_the_server_aggregates(server, http) -> None:
    name = f"pu-{uuid.uuid4().hex[:6]}"
    register_model(http, name)
    sampler = ProcessSampler(Prices(cpu_core_hour=1.0), gpu=False)
    samples = [sampler.sample() for _ in range(3)]
    with Client(server.url) as client:
        assert client.log_resources(name, samples)["accepted"] == 3
        bad = client.log_resources(name, [{"rss_bytes": -1}])
        assert bad["rejected"] == 1 and bad["errors"][0]["field"] == "rss_bytes"
        usage = client.metrics(name, "resources", start="-10m")["points"][0]["value"]
    assert usage["gauges"]["rss_bytes"]["samples"] == 3
    assert usage["gauges"]["rss_bytes"]["max"] == max(s["rss_bytes"] for s in samples)


def test_gpu_gauges_from_a_fake_nvml_reach_the_server(server, http, monkeypatch) -> None:
    from tests.sdk.test_process_usage import _FakeNVML

    monkeypatch.setitem(sys.modules, "pynvml", _FakeNVML([(40.0, 2.0**30), (80.0, 2.0**30)]))
    name = f"gpu-{uuid.uuid4().hex[:6]}"
    register_model(http, name)
    with Client(server.url) as client:
        assert client.log_resources(name, [ProcessSampler().sample()])["accepted"] == 1
        usage = client.metrics(name, "resources", start="-10m")["points"][0]["value"]
    assert usage["gauges"]["gpu_utilization"]["max"] == 60.0
    assert usage["gauges"]["gpu_memory_bytes"]["max"] == 2.0**31
