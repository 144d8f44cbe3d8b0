"""The gates tests/server/test_training_api.py does not plant a defect for, each blocking a
run through a real server (SQLite; the gates are pure functions on the run's data, the same on
PostgreSQL): a feature that equals the label (labels), labels whose class balance moved
(labels), a candidate that learnt its training rows by heart (overfit), one trained on
shuffled labels against a real champion (comparison, significantly worse), a clean one under
an absolute floor (comparison, the floor), and an image training set holding a truncated JPEG
(image_audit; the repaired set passes). The clean candidate passing every gate is that
module's first test.

The holdout is a seeded share, not the most recent window: which rows are held out must not
depend on how long the module took to get here (a loaded CI box)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.server.conftest import json_rows, register_model, scored_frame
from tests.server.live import ThreadServer, settings_for

MODEL = "gated"
ENTRY = "tests.training.pipelines:{}"
BASE = {"data": {"window": "3d", "min_rows": 200},
        "holdout": {"window": None, "share": 0.3, "seed": 0},
        "promotion": {"mode": "manual"},
        # the infra budget has its own module, whose server is a process of its own
        # (tests/training/test_infra_gate_server.py)
        "gates": {"latency_budget_ms": 10_000}}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    tmp = tmp_path_factory.mktemp("gates")
    # hour buckets: runs read raw events; a day of minute buckets is profiled a row at a time
    with ThreadServer(settings_for(f"sqlite:///{tmp / 'g.db'}", tmp, allow_code_artifacts=True,
                                   evaluate_every=0, bucket_seconds=3600)) as server, \
            httpx.Client(base_url=server.url + "/api/v1", timeout=60) as http:
        _champion_with_traffic(http)
        yield http


def _champion_with_traffic(http: httpx.Client) -> None:
    """The model, its champion (a logistic regression fitted on the reference) and a day of
    labelled traffic."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    from tests.training.pipelines import _one_hot_c

    ref = scored_frame(1500, seed=1)
    register_model(http, MODEL, ref)
    champion = _one_hot_c(LogisticRegression()).fit(ref[["x", "c"]], ref["y"])
    http.post(f"/registry/models/{MODEL}/versions", content=sio.dumps(champion),
              params={"format": "skops"}).raise_for_status()
    http.put(f"/registry/models/{MODEL}/aliases/champion",
             json={"version": "1", "reason": "first"}).raise_for_status()
    live = scored_frame(1000, seed=2)
    rows = json_rows(live, time.time() - 86400, spacing=86.4)
    http.post(f"/models/{MODEL}/predictions", json=rows).raise_for_status()
    http.post(f"/models/{MODEL}/labels", json=[
        {"prediction_id": r["prediction_id"], "label": int(y)}
        for r, y in zip(rows, live["y"], strict=True)]).raise_for_status()


def _run(http: httpx.Client, model: str, pipeline: dict, timeout: float = 600) -> dict:
    http.put(f"/models/{model}/pipeline", json=pipeline).raise_for_status()
    run_id = http.post(f"/models/{model}/runs").json()["id"]
    deadline = time.monotonic() + timeout
    while (run := http.get(f"/runs/{run_id}").json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"run did not end: {run}"
        time.sleep(0.2)
    return run


def _refused_by(run: dict) -> dict:
    """The gate that blocked ``run`` (the last one, every one before it passed)."""
    assert run["state"] == "blocked", (run["state"], run["reason"], run["gates"])
    *passed, last = run["gates"]
    assert all(g["passed"] for g in passed) and not last["passed"], run["gates"]
    assert run["version"] is None  # a refused candidate leaves no version behind
    return last


def test_a_feature_that_equals_the_label_blocks_before_anything_trains(api) -> None:
    ref = scored_frame(600, seed=1)
    ref["leak"] = ref["y"]
    register_model(api, "leaky", ref)
    live = scored_frame(400, seed=2)
    rows = json_rows(live, time.time() - 86400, prefix="leak", spacing=200)
    for row, y in zip(rows, live["y"], strict=True):
        row["features"]["leak"] = int(y)  # the label copied into the features upstream
    api.post("/models/leaky/predictions", json=rows).raise_for_status()
    api.post("/models/leaky/labels", json=[
        {"prediction_id": r["prediction_id"], "label": int(y)}
        for r, y in zip(rows, live["y"], strict=True)]).raise_for_status()
    run = _run(api, "leaky", {"entry": ENTRY.format("train_logreg"), **BASE})
    gate = _refused_by(run)
    assert gate["gate"] == "labels" and "'leak' equals the label" in gate["reason"], gate
    assert [g["gate"] for g in run["gates"]] == ["data", "labels"]
    assert "exit_code" not in run["result"]  # refused before a training process started


def test_labels_whose_class_balance_moved_block_before_anything_trains(api) -> None:
    # the reference is about half positive; the labelled window comes back 90 % positive (a
    # labelling job that marked nearly everything as fraud): the label gate names the shift
    register_model(api, "tilted", scored_frame(800, seed=1))
    live = scored_frame(500, seed=3)
    rng = __import__("numpy").random.default_rng(4)
    labels = (rng.random(len(live)) < 0.9).astype(int)
    rows = json_rows(live, time.time() - 86400, prefix="tilt", spacing=150)
    api.post("/models/tilted/predictions", json=rows).raise_for_status()
    api.post("/models/tilted/labels", json=[
        {"prediction_id": r["prediction_id"], "label": int(y)}
        for r, y in zip(rows, labels, strict=True)]).raise_for_status()
    run = _run(api, "tilted", {"entry": ENTRY.format("train_logreg"), **BASE})
    gate = _refused_by(run)
    assert gate["gate"] == "labels" and "the class balance moved by" in gate["reason"], gate
    balance = gate["evidence"]["balance"]
    assert balance["shifted"] and balance["p_value"] < 1e-6, balance
    trained = balance["training"]
    assert trained["1"] / sum(trained.values()) > 0.85 > 0.6 > (
        balance["reference"]["1"] / sum(balance["reference"].values()))
    assert "exit_code" not in run["result"]  # refused before a training process started


def test_a_candidate_that_learnt_its_training_rows_by_heart_is_refused(api) -> None:
    run = _run(api, MODEL, {"entry": ENTRY.format("train_memorizes"), **BASE})
    gate = _refused_by(run)
    assert gate["gate"] == "overfit", gate
    evidence = gate["evidence"]
    assert evidence["metric"] == "roc_auc" and evidence["train"] > 0.99
    assert evidence["gap"] > evidence["max_gap"] == 0.05, evidence
    assert "better on the training data than on the holdout" in gate["reason"]


def test_a_candidate_significantly_worse_than_the_champion_is_refused(api) -> None:
    # the slice gate (which would name a group first) and the overfit gate are set aside:
    # the overall comparison is under test
    gates = BASE["gates"] | {"slice_min_drop": None, "max_overfit_gap": None}
    run = _run(api, MODEL, {"entry": ENTRY.format("train_on_shuffled_labels"),
                            **BASE, "gates": gates})
    gate = _refused_by(run)
    assert gate["gate"] == "comparison" and gate["reason"].endswith("significantly worse")
    assert "vs the champion's" in gate["reason"] and run["data"]["champion"] == "1"
    evidence = gate["evidence"]
    assert evidence["p_value"] < 0.05 and evidence["challenger"] < evidence["champion"] - 0.2
    assert [g["gate"] for g in run["gates"]][-1] == "comparison"


def test_a_clean_candidate_under_the_absolute_floor_is_refused(api) -> None:
    gates = BASE["gates"] | {"min_value": 0.99}
    run = _run(api, MODEL, {"entry": ENTRY.format("train_logreg"), **BASE, "gates": gates})
    gate = _refused_by(run)
    assert gate["gate"] == "comparison" and "below the floor of 0.99" in gate["reason"], gate
    # everything else passed: the floor alone refused it
    assert [g["gate"] for g in run["gates"]] == ["data", "labels", "infra", "overfit",
                                                 "slices", "comparison"]


def test_an_image_set_with_a_truncated_jpeg_is_blocked_before_anything_trains(
        api, tmp_path) -> None:
    from tests.training.images import fruit_set, truncate

    images = fruit_set(tmp_path / "fruit")
    truncate(images / "banana" / "banana_04.jpg")
    pipeline = {"entry": ENTRY.format("train_logreg"), **BASE,
                "data": BASE["data"] | {"images": str(images)}}
    bad = api.put(f"/models/{MODEL}/pipeline", json=pipeline | {
        "gates": BASE["gates"] | {"image_audit": {"max_corrupt": -1}}})
    assert bad.status_code == 422 and "image_audit.max_corrupt" in bad.text, bad.text
    run = _run(api, MODEL, pipeline)
    gate = _refused_by(run)
    assert gate["gate"] == "image_audit" and [g["gate"] for g in run["gates"]] == [
        "image_audit"], run["gates"]
    assert gate["reason"] == ("blocked: 1 corrupt image(s) (limit 0), first "
                              "banana/banana_04.jpg: truncated")
    assert gate["evidence"]["findings"][0]["path"] == "banana/banana_04.jpg"
    assert run["data"]["images"] == str(images) and "exit_code" not in run["result"]
    # the same set, repaired: the gate passes and the run goes on through every other gate
    fruit_set(tmp_path / "fruit")
    run = _run(api, MODEL, pipeline)
    assert run["state"] == "succeeded", (run["reason"], run["gates"])
    assert [g["gate"] for g in run["gates"]][:2] == ["image_audit", "data"]
    assert run["gates"][0]["passed"] and run["gates"][0]["evidence"]["images"] == 16
    assert run["data"]["image_count"] == 16
    lineage = api.get(f"/registry/models/{MODEL}/versions/{run['version']}").json()[
        "metadata"]["lineage"]["data"]
    assert (lineage["images"], lineage["image_count"]) == (str(images), 16)
