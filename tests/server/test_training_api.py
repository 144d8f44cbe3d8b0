"""Retraining end to end through a real server (SQLite and PostgreSQL): a pipeline declared
over REST trains a real scikit-learn candidate in a subprocess; the gates pass a clean one,
which becomes the canary, and refuse a corrupted window (the row named) and a candidate
trained on biased data (the slice named)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.alerting.receivers import WebhookServer
from tests.server.conftest import json_rows, register_model, scored_frame
from tests.server.live import ThreadServer, database_url, settings_for

MODEL = "fraud-train"
PIPELINE = {"entry": "tests.training.pipelines:train_logreg", "data": {"window": "3d",
                                                                         "min_rows": 500},
            "holdout": {"window": "6h"}, "promotion": {"mode": "canary", "share": 0.2,
                                                       "hold": "1h"},
            # one-row predictions on a loaded CI box take tens of ms; the budget is tested
            # where time is not shared (tests/training/test_candidate.py)
            "gates": {"latency_budget_ms": 10_000}}
# Runs read the raw events, never the buckets; the traffic spans two days, which one-minute
# buckets would profile one row at a time (tens of seconds of ingest on a loaded box)
BUCKET = 3600


@pytest.fixture(scope="module")
def hook() -> Iterator[WebhookServer]:
    with WebhookServer() as server:
        yield server


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        hook: WebhookServer) -> Iterator[httpx.Client]:
    tmp = tmp_path_factory.mktemp("training")
    with database_url(request.param, tmp) as url, ThreadServer(settings_for(
            url, tmp, allow_code_artifacts=True, evaluate_every=3600,
            bucket_seconds=BUCKET)) as server, httpx.Client(
            base_url=server.url + "/api/v1", timeout=60) as http:
        http.put("/notifications/config", json={
            "receivers": [{"type": "webhook", "name": "hook", "url": hook.url()}],
            "route": {"receiver": "none", "routes": [
                {"receiver": "hook", "matchers": ["kind=training"]}]}}).raise_for_status()
        _champion_with_traffic(http)
        yield http


def _champion_with_traffic(http: httpx.Client) -> None:
    """The model, its champion (version 1, fitted on the reference) and two days of labelled
    traffic."""
    import skops.io as sio
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    ref = scored_frame(3000, seed=1)
    register_model(http, MODEL, ref)
    model = make_pipeline(ColumnTransformer([("c", OneHotEncoder(handle_unknown="ignore"),
                                              ["c"])], remainder="passthrough"),
                          LogisticRegression()).fit(ref[["x", "c"]], ref["y"])
    http.post(f"/registry/models/{MODEL}/versions", content=sio.dumps(model),
              params={"format": "skops"}).raise_for_status()
    http.put(f"/registry/models/{MODEL}/aliases/champion",
             json={"version": "1", "reason": "first"}).raise_for_status()
    live = scored_frame(4000, seed=2)
    start = time.time() - 2 * 86400
    rows = json_rows(live, start, spacing=2 * 86400 / 4000)
    for i in range(0, len(rows), 1000):
        http.post(f"/models/{MODEL}/predictions", json=rows[i:i + 1000]).raise_for_status()
    http.post(f"/models/{MODEL}/labels", json=[
        {"prediction_id": r["prediction_id"], "label": int(y)}
        for r, y in zip(rows, live["y"], strict=True)]).raise_for_status()


def _run(http: httpx.Client, reason: str, model: str = MODEL, timeout: float = 120) -> dict:
    """Queue a run by hand and wait for its end."""
    run = http.post(f"/models/{model}/runs", json={"reason": reason})
    assert run.status_code == 202, run.text
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = http.get(f"/runs/{run.json()['id']}").json()
        if got["state"] not in ("queued", "running"):
            return got
        time.sleep(0.3)
    raise AssertionError(f"run did not end: {got}")


def test_a_clean_candidate_passes_every_gate_and_becomes_the_canary(api, hook) -> None:
    assert api.put(f"/models/{MODEL}/pipeline", json=PIPELINE).status_code == 200
    run = _run(api, "first retrain")
    assert run["state"] == "succeeded", (run["reason"], run["gates"])
    assert [g["gate"] for g in run["gates"]] == ["data", "labels", "infra", "overfit",
                                                 "slices", "comparison"]
    assert all(g["passed"] for g in run["gates"])
    assert run["version"] == "2" and run["data"]["champion"] == "1"
    assert run["data"]["holdout_rows"] >= 400 and len(run["data"]["sha256"]) == 64
    assert run["result"]["promotion"]["state"] == "canary"
    assert api.get(f"/registry/models/{MODEL}/aliases").json()["challenger"] == "2"
    traffic = api.get(f"/models/{MODEL}/traffic").json()
    assert (traffic["mode"], traffic["percent"]) == ("canary", 20.0)
    # monitored for good with the reference its data was checked against (inherited, it
    # would switch to another once promoted and its stored profiles would not merge)
    assert run["data"]["monitored_with_reference_of"] == "v1"
    assert (api.get(f"/models/{MODEL}/versions/2").json()["fingerprint"]
            == api.get(f"/models/{MODEL}/versions/v1").json()["fingerprint"])
    lineage = api.get(f"/registry/models/{MODEL}/versions/2").json()["metadata"]["lineage"]
    assert lineage["run"] == run["id"] and lineage["data"]["sha256"] == run["data"]["sha256"]
    log = api.get(f"/runs/{run['id']}/log")
    assert log.status_code == 200
    told = f"Run #{run['id']} succeeded"
    deadline = time.monotonic() + 20  # the outbox delivers in the background
    while time.monotonic() < deadline and not any(
            told in r.body.decode() for r in hook.delivered):
        time.sleep(0.2)
    assert any(told in r.body.decode() for r in hook.delivered), hook.delivered
    api.put(f"/models/{MODEL}/traffic", json={"mode": "off"}).raise_for_status()


def test_a_biased_candidate_is_refused_by_the_slice_gate(api) -> None:
    api.put(f"/models/{MODEL}/pipeline", json=PIPELINE | {"params": {"fraud_category": "c"}}
            ).raise_for_status()
    run = _run(api, "biased data")
    assert run["state"] == "blocked", run
    slices = run["gates"][-1]  # the slice gate comes before the overall comparison
    assert slices["gate"] == "slices" and not slices["passed"], run["gates"]
    assert "c = c" in slices["reason"], slices
    assert run["version"] is None  # nothing registered for a refused candidate


def test_one_corrupted_record_blocks_the_run_and_is_named(api) -> None:
    bad = json_rows(scored_frame(1, seed=3), time.time() - 3600, prefix="bad")
    bad[0]["features"]["x"] = 4.2e9
    api.post(f"/models/{MODEL}/predictions", json=bad).raise_for_status()
    api.post(f"/models/{MODEL}/labels", json=[{"prediction_id": "bad0", "label": 1}]
             ).raise_for_status()
    api.put(f"/models/{MODEL}/pipeline", json=PIPELINE).raise_for_status()
    run = _run(api, "after the corruption")
    assert run["state"] == "blocked", run
    (data_gate,) = [g for g in run["gates"] if g["gate"] == "data"]
    assert not data_gate["passed"] and "'x'" in data_gate["reason"]
    (problem,) = data_gate["evidence"]["problems"]
    assert problem["column"] == "x" and float(problem["value"]) == 4.2e9
    assert problem["prediction_id"] == "bad0" and "prediction_id bad0" in data_gate["reason"]
    quarantine = PIPELINE | {"gates": PIPELINE["gates"] | {"data_policy": "quarantine"}}
    api.put(f"/models/{MODEL}/pipeline", json=quarantine).raise_for_status()
    run = _run(api, "quarantine the bad row")
    assert run["gates"][0]["passed"] and run["data"]["quarantined_rows"] == 1, run


def test_bad_pipelines_and_runs_are_refused_by_name(api) -> None:
    bad = api.put(f"/models/{MODEL}/pipeline", json={"entry": "not an entry"})
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "entry"
    assert api.get("/runs/999999").status_code == 404
    assert api.post("/models/no-such-model/runs").status_code == 404


def test_a_text_models_dataset_is_audited_before_it_trains(api, tmp_path) -> None:
    """The seed's moral: an unsafe reply or a customer's e-mail in a fine-tuning set blocks
    the run, the row named; a clean set trains a prompt version."""
    import json

    bot = "bot-train"
    api.post("/models", json={"name": bot, "task": "text_generation"}).raise_for_status()
    rows = [{"prompt": f"my order {i} is late", "completion": "Sorry about that, I have "
             f"checked order {i} and it ships tomorrow."} for i in range(30)]
    clean = tmp_path / "clean.jsonl"
    clean.write_text("\n".join(json.dumps(r) for r in rows))
    rows[7]["completion"] = "Honestly, just kill yourself, nobody will miss you."
    rows[19]["prompt"] = "write to me at jane.doe@example.com"
    dirty = tmp_path / "dirty.jsonl"
    dirty.write_text("\n".join(json.dumps(r) for r in rows))
    pipeline = {"entry": "tests.training.pipelines:train_prompt",
                "data": {"source": "file", "uri": str(dirty)}, "promotion": {"mode": "manual"}}
    api.put(f"/models/{bot}/pipeline", json=pipeline).raise_for_status()
    run = _run(api, "audit", bot)
    assert run["state"] == "blocked", run
    audit = run["gates"][0]
    assert audit["gate"] == "text_audit" and "2 of 30 training rows" in audit["reason"]
    assert "first row 8" in audit["reason"]  # 1-based, as the audit command counts
    assert {f["row"] for f in audit["evidence"]["findings"]} == {8, 20}
    assert "jane.doe@example.com" not in json.dumps(run)  # excerpts are redacted
    api.put(f"/models/{bot}/pipeline", json=pipeline | {"data": {
        "source": "file", "uri": str(clean)}}).raise_for_status()
    run = _run(api, "audit", bot)
    assert run["state"] == "succeeded", run
    assert run["version"] == "1" and run["result"]["promotion"] == {"state": "challenger"}
    assert api.get(f"/registry/models/{bot}/aliases").json() == {"challenger": "1"}

