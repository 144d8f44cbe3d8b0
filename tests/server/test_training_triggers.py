"""Each trigger of a training pipeline through one real server, on SQLite and on PostgreSQL:
a drift rule firing on planted drift, ten rules firing in two cycles (one run: the cooldown
holds), label volume (queued by the server's own maintenance tick), a cron slot (the server's
training tick driven at a later instant, so the test does not wait for the clock) and a run
by hand."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from aiwarden.training import store
from tests.server.conftest import evaluate, json_rows, register_model, scored_frame
from tests.server.live import ThreadServer, database_url, settings_for

TRAIN = "tests.training.pipelines:train_ok"
FINAL = ("succeeded", "failed", "blocked", "cancelled")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[ThreadServer]:
    tmp = tmp_path_factory.mktemp("triggers")
    # no alert loop (cycles are run by the tests); one evaluation takes the lease for the
    # module, which makes this process the lead that runs cron and label triggers
    with database_url(request.param, tmp) as url, ThreadServer(settings_for(
            url, tmp, allow_code_artifacts=True, evaluate_every=0, lease_ttl=900)) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: ThreadServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as client:
        evaluate(client)
        yield client


def runs(http: httpx.Client, model: str) -> list[dict]:
    return http.get(f"/models/{model}/runs").json()


def wait_for(what: Callable[[], Any], timeout: float = 30, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while not (got := what()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)
    return got


def pipeline_state(server: ThreadServer, model: str) -> dict:
    svc = server.server.config.app.state.training
    with svc.monitor.db.read() as conn:
        row = store.get_pipeline(conn, svc._model_id(model))
    return {} if row is None else row.state


def drifted_model(http: httpx.Client, name: str) -> None:
    register_model(http, name)
    drifted = scored_frame(1500, seed=5, shift=1.2)
    http.post(f"/models/{name}/predictions", json=json_rows(
        drifted, time.time() - 1600, prefix=f"{name}-")).raise_for_status()


def drift_rule(http: httpx.Client, model: str, rule: str) -> None:
    http.put(f"/rules/{model}/{rule}", json={"metric": "drift", "column": "*", "window": "1h",
                                             "critical": 1.0}).raise_for_status()


def ended(http: httpx.Client, run_id: int) -> dict:
    return wait_for(lambda: (r := http.get(f"/runs/{run_id}").json())["state"] in FINAL and r,
                    timeout=60)


def test_a_drift_rule_firing_queues_a_run_naming_it(http: httpx.Client) -> None:
    drifted_model(http, "trig-alert")
    drift_rule(http, "trig-alert", "amount-drift")
    drift_rule(http, "trig-alert", "not-a-trigger")
    http.put("/models/trig-alert/pipeline", json={
        "entry": TRAIN, "triggers": {"on_alerts": ["amount-drift"]}}).raise_for_status()
    assert runs(http, "trig-alert") == []
    out = evaluate(http)
    fired = {t["labels"]["rule"] for t in out["transitions"]
             if t["labels"]["model"] == "trig-alert" and t["kind"] == "firing"}
    assert {"amount-drift", "not-a-trigger"} <= fired  # the drift was planted and seen
    (run,) = runs(http, "trig-alert")
    assert run["trigger"] == "alert"
    assert run["trigger_detail"]["rules"] == ["amount-drift"]  # only the pipeline's rule
    assert "amount-drift fired" in run["trigger_detail"]["why"]
    assert ended(http, run["id"])["state"] in FINAL
    http.delete("/models/trig-alert/pipeline").raise_for_status()


def test_ten_alerts_in_two_cycles_queue_one_run(http: httpx.Client) -> None:
    drifted_model(http, "trig-storm")
    for i in range(10):
        drift_rule(http, "trig-storm", f"drift-{i}")
    http.put("/models/trig-storm/pipeline", json={
        "entry": TRAIN, "triggers": {"on_alerts": ["*"], "cooldown": "1h"}}
             ).raise_for_status()
    out = evaluate(http)
    firing = {t["labels"]["rule"] for t in out["transitions"]
              if t["labels"]["model"] == "trig-storm" and t["kind"] == "firing"}
    assert {f"drift-{i}" for i in range(10)} <= firing
    (run,) = runs(http, "trig-storm")
    assert {f"drift-{i}" for i in range(10)} <= set(run["trigger_detail"]["rules"])
    # the run ends before the next cycle: only the cooldown (not the dedupe of an active
    # run) can hold back the second storm
    assert ended(http, run["id"])["state"] in FINAL
    for i in range(10, 20):
        drift_rule(http, "trig-storm", f"drift-{i}")
    out = evaluate(http)
    again = {t["labels"]["rule"] for t in out["transitions"]
             if t["labels"]["model"] == "trig-storm" and t["kind"] == "firing"}
    assert {f"drift-{i}" for i in range(10, 20)} <= again
    assert [r["id"] for r in runs(http, "trig-storm")] == [run["id"]]
    http.delete("/models/trig-storm/pipeline").raise_for_status()


def test_label_volume_queues_a_run_from_the_maintenance_tick(
        http: httpx.Client, server: ThreadServer) -> None:
    name = "trig-labels"
    register_model(http, name)
    rows = json_rows(scored_frame(150, seed=4), time.time() - 3600, prefix=f"{name}-")
    http.post(f"/models/{name}/predictions", json=rows).raise_for_status()
    http.put(f"/models/{name}/pipeline", json={
        "entry": TRAIN, "triggers": {"label_volume": 100}}).raise_for_status()
    wait_for(lambda: "labels_at_last_run" in pipeline_state(server, name))  # the baseline
    labels = [{"prediction_id": r["prediction_id"], "label": i % 2}
              for i, r in enumerate(rows)]
    http.post(f"/models/{name}/labels", json=labels[:99]).raise_for_status()
    time.sleep(2.0)  # four maintenance ticks: 99 labels are not enough
    assert runs(http, name) == []
    http.post(f"/models/{name}/labels", json=labels[99:100]).raise_for_status()
    (run,) = wait_for(lambda: runs(http, name), timeout=20)
    assert run["trigger"] == "labels" and run["trigger_detail"]["new_labels"] == 100, run
    assert pipeline_state(server, name)["labels_at_last_run"] == 100
    assert ended(http, run["id"])["state"] in FINAL
    http.delete(f"/models/{name}/pipeline").raise_for_status()


def test_a_cron_slot_due_since_the_last_check_queues_one_run(
        http: httpx.Client, server: ThreadServer) -> None:
    name = "trig-cron"
    register_model(http, name)
    http.put(f"/models/{name}/pipeline", json={
        "entry": TRAIN, "triggers": {"schedule": "0 3 * * *"}}).raise_for_status()
    checked = wait_for(lambda: pipeline_state(server, name).get("schedule_checked"))
    assert runs(http, name) == []  # a new pipeline starts from now: no slot is due yet
    svc = server.server.config.app.state.training
    later = checked + 3 * 86400  # the server slept through three 03:00 slots
    svc.tick(now=later)
    (run,) = runs(http, name)
    assert run["trigger"] == "schedule" and run["trigger_detail"]["cron"] == "0 3 * * *"
    slot = datetime.fromtimestamp(run["trigger_detail"]["slot"], UTC)
    assert (slot.hour, slot.minute) == (3, 0)
    assert later - 86400 < run["trigger_detail"]["slot"] <= later  # the latest slot only
    svc.tick(now=later + 60)  # ticking on (with the server's own ticks between): no more
    assert [r["id"] for r in runs(http, name)] == [run["id"]]
    assert ended(http, run["id"])["state"] in FINAL
    http.delete(f"/models/{name}/pipeline").raise_for_status()


def test_a_run_by_hand_records_who_and_why(http: httpx.Client) -> None:
    name = "trig-manual"
    register_model(http, name)
    refused = http.post(f"/models/{name}/runs")  # no pipeline yet
    assert refused.status_code == 404 and refused.json()["detail"]["field"] == "model"
    assert "has no training pipeline" in refused.json()["detail"]["message"]
    http.put(f"/models/{name}/pipeline", json={"entry": TRAIN}).raise_for_status()
    first = http.post(f"/models/{name}/runs", json={"reason": "new features shipped"})
    assert first.status_code == 202, first.text
    run = first.json()
    assert run["trigger"] == "manual"
    assert run["trigger_detail"]["reason"] == "new features shipped"
    assert run["trigger_detail"]["by"]
    done = ended(http, run["id"])
    assert done["state"] in FINAL and done["reason"]
    http.delete(f"/models/{name}/pipeline").raise_for_status()
