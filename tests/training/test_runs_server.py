"""Runs through a real server (SQLite): a pipeline that unions the previous training set
trains on it and says so on the run and the registered version; ``triggers.max_concurrent``
holds a model's second run queued while its first runs, and lets both run when raised."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.server.live import ThreadServer, database_url, settings_for
from tests.server.test_training_processes import labelled_model, wait_run

FINAL = ("succeeded", "failed", "blocked", "cancelled")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    tmp = tmp_path_factory.mktemp("runs")
    with ThreadServer(settings_for(f"sqlite:///{tmp / 'r.db'}", tmp, allow_code_artifacts=True,
                                   evaluate_every=0, bucket_seconds=3600)) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: ThreadServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as client:
        yield client


def _ended(http: httpx.Client, run_id: int) -> dict:
    return wait_run(http, run_id, lambda r: r["state"] in FINAL, timeout=180)


def test_union_previous_trains_on_the_last_training_set_and_the_lineage_names_it(
        http: httpx.Client) -> None:
    labelled_model(http, "unioned", n=600, reference=1000)
    http.put("/models/unioned/pipeline", json={
        "entry": "tests.training.pipelines:train_logreg",
        "data": {"window": "3d", "min_rows": 100, "union_previous": True},
        "holdout": {"window": None, "share": 0.3, "seed": 0}, "params": {"C": 0.5},
        "gates": {"latency_budget_ms": 10_000}, "promotion": {"mode": "manual"}}
             ).raise_for_status()
    first = _ended(http, http.post("/models/unioned/runs").json()["id"])
    assert first["state"] == "succeeded", (first["reason"], first["gates"])
    assert first["data"]["extra_rows"] == 0 and "extra" not in first["data"]  # none yet
    window_train = first["data"]["train_rows"]
    assert window_train == 420  # 600 labelled events, 30 % held out
    second = _ended(http, http.post("/models/unioned/runs").json()["id"])
    assert second["state"] == "succeeded", (second["reason"], second["gates"])
    data = second["data"]
    assert data["extra"] == [{"previous_run": first["id"], "rows": window_train}], data
    assert data["extra_rows"] == window_train
    assert data["train_rows"] == 2 * window_train  # the same window plus the last set
    assert data["holdout_rows"] == first["data"]["holdout_rows"]  # production rows only
    assert data["sha256"] != first["data"]["sha256"]
    meta = http.get(f"/registry/models/unioned/versions/{second['version']}").json()[
        "metadata"]
    lineage = meta["lineage"]["data"]
    assert lineage["extra"] == data["extra"] and lineage["train_rows"] == 2 * window_train
    assert (lineage["sha256"], lineage["window"]) == (data["sha256"], "3d")
    # the code and parameters it was made with, and what the run took
    assert meta["lineage"]["code"] == "tests.training.pipelines:train_logreg"
    assert meta["params"] == {"C": 0.5} and meta["lineage"]["run"] == second["id"]
    assert second["seconds"] > 0 and second["result"]["peak_memory_mb"] > 10
    assert second["result"]["seconds"] > 0 and second["result"]["exit_code"] == 0


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    tmp = tmp_path_factory.mktemp("runs-pg")
    with database_url("postgresql", tmp) as url, ThreadServer(settings_for(
            url, tmp, allow_code_artifacts=True, evaluate_every=0, bucket_seconds=3600)) as srv:
        yield srv


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_max_concurrent_holds_a_second_run_queued_until_the_first_ends(
        request: pytest.FixtureRequest, kind: str) -> None:
    """Counting a model's running runs and claiming a queued one are SQL: both databases."""
    server = request.getfixturevalue("server" if kind == "sqlite" else "pg_server")
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as http:
        _max_concurrent(http, server)


def _max_concurrent(http: httpx.Client, server: ThreadServer) -> None:
    from aiwarden.server.training_routes import training_for

    labelled_model(http, "limited", n=300, reference=600)
    svc = training_for(server.server.config.app)  # made on first use

    def pipeline(limit: int) -> None:
        http.put("/models/limited/pipeline", json={
            "entry": "tests.training.pipelines:train_hangs",
            "data": {"window": "3d", "min_rows": 100},
            "holdout": {"window": None, "share": 0.3, "seed": 0},
            "triggers": {"schedule": "0 3 * * *", "max_concurrent": limit, "cooldown": "1s"},
            "executor": {"time_limit": "10m"}}).raise_for_status()

    def training(run_id: int) -> dict:
        return wait_run(http, run_id, lambda r: any(
            "training on the local executor" in s["text"]
            for s in r["result"].get("steps", [])), timeout=120)

    def both(limit: int) -> tuple[int, int]:
        """A run by hand, training; then a cron slot queues an automatic one beside it."""
        pipeline(limit)
        manual = http.post("/models/limited/runs").json()["id"]
        training(manual)
        svc.tick()  # the schedule's last check: now
        svc.tick(now=time.time() + 86400)  # a 03:00 slot passed since the last check
        auto = [r for r in http.get("/models/limited/runs").json()
                if r["trigger"] == "schedule" and r["state"] not in FINAL]
        assert len(auto) == 1, auto
        return manual, auto[0]["id"]

    manual, auto = both(1)
    svc.start_queued()  # the server's own start of queued runs, once more: the limit holds
    assert http.get(f"/runs/{auto}").json()["state"] == "queued"
    assert http.get(f"/runs/{manual}").json()["state"] == "running"
    http.post(f"/runs/{manual}/cancel").raise_for_status()
    assert _ended(http, manual)["state"] == "cancelled"
    training(auto)  # the slot freed, the queued run starts
    http.post(f"/runs/{auto}/cancel").raise_for_status()
    assert _ended(http, auto)["state"] == "cancelled"

    manual, auto = both(2)  # raised to two: both train at once
    training(auto)
    assert http.get(f"/runs/{manual}").json()["state"] == "running"
    for run_id in (manual, auto):
        http.post(f"/runs/{run_id}/cancel").raise_for_status()
        assert _ended(http, run_id)["state"] == "cancelled"


def test_each_step_of_an_alert_triggered_run_lands_on_the_incident_timeline(
        http: httpx.Client) -> None:
    from tests.server.conftest import evaluate, json_rows, register_model, scored_frame

    name = "on-timeline"
    register_model(http, name, scored_frame(1000, seed=1))
    live = scored_frame(600, seed=5, shift=1.2)  # drifted, and labelled
    rows = json_rows(live, time.time() - 3000, prefix=f"{name}-", spacing=5)
    http.post(f"/models/{name}/predictions", json=rows).raise_for_status()
    http.post(f"/models/{name}/labels", json=[
        {"prediction_id": r["prediction_id"], "label": int(y)}
        for r, y in zip(rows, live["y"], strict=True)]).raise_for_status()
    http.put(f"/rules/{name}/x-drift", json={"metric": "drift", "column": "x", "window": "1h",
                                             "critical": 1.0}).raise_for_status()
    http.put(f"/models/{name}/pipeline", json={
        "entry": "tests.training.pipelines:train_raises", "triggers": {"on_alerts": ["*"]},
        "data": {"window": "3d", "min_rows": 100},
        # the drift moved the labels too: the window trains whatever the gates before it say
        "gates": {"data_policy": "quarantine", "max_bad_share": 1.0, "labels": False}}
             ).raise_for_status()
    evaluate(http)
    (run,) = http.get(f"/models/{name}/runs").json()
    assert run["trigger"] == "alert", run
    run = _ended(http, run["id"])
    assert run["state"] == "failed" and "column 'y' is all zeros" in run["reason"], (
        run["reason"], run["gates"])
    (incident,) = http.get("/incidents", params={"model": name}).json()
    timeline = http.get(f"/incidents/{incident['id']}").json()["timeline"]
    said = [e["detail"]["text"] for e in timeline
            if e["kind"] == "action" and e["detail"].get("run") == run["id"]]
    steps = [f"Run #{run['id']}: {s['text']}" for s in run["result"]["steps"]]
    assert "training on the local executor" in steps[-1], steps  # it got as far as training
    assert said == [f"Retraining run #{run['id']} queued: x-drift fired", *steps,
                    f"Run #{run['id']} failed: {run['reason']}"], said


@pytest.mark.parametrize(("entry", "executor", "reason"), [
    ("train_hangs", {"time_limit": "2s"}, "time limit of 2 s"),
    ("train_hogs_memory", {"memory_mb": 1500}, "memory limit of 1500 MB"),
    ("train_without_artifact", {}, "'never-written.bin' the function returned does not exist"),
    ("train_returns_nothing", {}, "returned NoneType, not a TrainingResult"),
])
def test_a_pipeline_that_fails_ends_the_run_failed_with_the_reason(
        http: httpx.Client, entry: str, executor: dict, reason: str) -> None:
    name = f"bad-{entry.replace('_', '-')}"
    labelled_model(http, name, n=300, reference=600)
    http.put(f"/models/{name}/pipeline", json={
        "entry": f"tests.training.pipelines:{entry}", "executor": executor,
        "data": {"window": "3d", "min_rows": 100}}).raise_for_status()
    run = _ended(http, http.post(f"/models/{name}/runs").json()["id"])
    assert run["state"] == "failed" and reason in run["reason"], (run["state"], run["reason"])
    assert run["version"] is None and run["finished_at"] is not None
    assert [g["gate"] for g in run["gates"]] == ["data", "labels"]  # it got to training


COMMAND = """\
import json, os, pathlib
import pandas as pd, skops.io as sio
from sklearn.linear_model import LogisticRegression

ctx = json.loads(pathlib.Path(os.environ["AIWARDEN_TRAINING_CONTEXT"]).read_text())
train = pd.read_parquet(ctx["train_path"])
model = LogisticRegression().fit(train[["x"]], train[ctx["target"]])
run = pathlib.Path(ctx["run_dir"])
(run / "model.skops").write_bytes(sio.dumps(model))
(run / "result.json").write_text(json.dumps({"artifact": "model.skops", "format": "skops"}))
"""


def test_a_command_pipeline_trains_through_the_server(http: httpx.Client, tmp_path) -> None:
    import sys

    script = tmp_path / "train.py"
    script.write_text(COMMAND)
    labelled_model(http, "by-command", n=600, reference=1000)
    http.put("/models/by-command/pipeline", json={
        "command": [sys.executable, str(script)], "data": {"window": "3d", "min_rows": 100},
        "holdout": {"window": None, "share": 0.3, "seed": 0},
        "gates": {"latency_budget_ms": 10_000}, "promotion": {"mode": "manual"}}
             ).raise_for_status()
    run = _ended(http, http.post("/models/by-command/runs").json()["id"])
    assert run["state"] == "succeeded", (run["reason"], run["gates"])
    assert run["version"] == "1" and run["result"]["exit_code"] == 0
    lineage = http.get("/registry/models/by-command/versions/1").json()["metadata"]["lineage"]
    assert lineage["code"] == [sys.executable, str(script)] and lineage["run"] == run["id"]


def test_a_file_unioned_with_the_window_passes_the_data_gate_too(
        http: httpx.Client, tmp_path) -> None:
    """The seed's war story was one corrupted record in the training data: a record in a
    file the pipeline adds is named like one in the window (by its row in the file), and
    blocks the run or is quarantined as the pipeline says."""
    from tests.server.conftest import scored_frame

    extra = scored_frame(300, seed=7)[["x", "c", "y"]]
    extra.loc[5, "x"] = 4.2e9
    path = tmp_path / "extra.parquet"
    extra.to_parquet(path)
    labelled_model(http, "with-file", n=600, reference=1000)
    pipeline = {"entry": "tests.training.pipelines:train_logreg",
                "data": {"window": "3d", "min_rows": 100, "uri": str(path)},
                "holdout": {"window": None, "share": 0.3, "seed": 0},
                "gates": {"latency_budget_ms": 10_000}, "promotion": {"mode": "manual"}}
    http.put("/models/with-file/pipeline", json=pipeline).raise_for_status()
    run = _ended(http, http.post("/models/with-file/runs").json()["id"])
    assert run["state"] == "blocked", (run["reason"], run["gates"])
    *passed, gate = run["gates"]
    assert [g["gate"] for g in passed] == ["data", "labels"] and all(
        g["passed"] for g in passed)
    assert gate["gate"] == "data_file" and not gate["passed"], gate
    assert gate["reason"].startswith(f"{path}: blocked: 1 corrupted row(s) of 300, first "
                                     "row 5 column 'x'"), gate["reason"]
    (problem,) = gate["evidence"]["problems"]
    assert (problem["row"], problem["column"], float(problem["value"])) == (5, "x", 4.2e9)
    assert run["version"] is None and "exit_code" not in run["result"]

    http.put("/models/with-file/pipeline", json=pipeline | {"gates": pipeline["gates"] | {
        "data_policy": "quarantine"}}).raise_for_status()
    run = _ended(http, http.post("/models/with-file/runs").json()["id"])
    assert run["state"] == "succeeded", (run["reason"], run["gates"])
    gate = next(g for g in run["gates"] if g["gate"] == "data_file")
    assert gate["passed"] and gate["evidence"]["quarantined_rows"] == [5], gate
    assert run["data"]["extra"] == [{"uri": str(path), "rows": 299, "quarantined_rows": 1}]
    assert run["data"]["train_rows"] == 420 + 299 and run["data"]["extra_rows"] == 299


@pytest.mark.parametrize(("metric", "stat"), [("performance", "accuracy"),
                                              ("estimated_performance", "roc_auc")])
def test_a_performance_rule_firing_queues_a_run_naming_it(
        http: httpx.Client, metric: str, stat: str) -> None:
    """Realised (labels) and estimated (no labels needed) performance rules are triggers like
    the drift rules of tests/server/test_training_triggers.py; the limit (0.99) is one
    this model can never reach, so the rule fires on its ordinary traffic."""
    from tests.server.conftest import evaluate, json_rows, register_model, scored_frame

    name = f"perf-{metric.replace('_', '-')}"
    register_model(http, name, scored_frame(1000, seed=1))
    live = scored_frame(600, seed=2)
    rows = json_rows(live, time.time() - 3000, prefix=f"{name}-", spacing=5)
    http.post(f"/models/{name}/predictions", json=rows).raise_for_status()
    http.post(f"/models/{name}/labels", json=[
        {"prediction_id": r["prediction_id"], "label": int(y)}
        for r, y in zip(rows, live["y"], strict=True)]).raise_for_status()
    rule = f"{stat}-low"
    http.put(f"/rules/{name}/{rule}", json={"metric": metric, "stat": stat, "window": "1h",
                                            "op": "<", "critical": 0.99}).raise_for_status()
    http.put(f"/models/{name}/pipeline", json={
        "entry": "tests.training.pipelines:train_raises", "triggers": {"on_alerts": [rule]},
        "data": {"window": "3d", "min_rows": 100}}).raise_for_status()
    assert http.get(f"/models/{name}/runs").json() == []
    out = evaluate(http)
    fired = [t for t in out["transitions"] if t["labels"].get("model") == name
             and t["labels"].get("rule") == rule and t["kind"] == "firing"]
    assert fired, out["transitions"]
    (run,) = http.get(f"/models/{name}/runs").json()
    assert run["trigger"] == "alert" and run["trigger_detail"]["rules"] == [rule], run
    assert _ended(http, run["id"])["state"] == "failed"  # train_raises: it did train
