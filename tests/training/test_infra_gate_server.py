"""The infra gate through a real server: a candidate whose every predict call takes a second
is refused by its latency budget, with the timing stored on the run, and leaves no version;
the same model without the wait passes every gate on the same server.

The server is its own process (``aiwarden server``): the timing the gate stores is the
server's, not shared with this test's interpreter. The slow step is a custom scikit-learn type
saved with skops (never a pickle), loaded because the server's operator trusts its module
(``AIWARDEN_TRUSTED_MODULES``) and type (``AIWARDEN_SKOPS_TRUSTED``), as a user's own
transformer would be. Its wait is a sleep, never shorter than asked, so the refusal does not
depend on the machine's speed; the clean candidate's budget is ~100x its one-row predict.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.server.live import ProcessServer, database_url
from tests.training.test_gates_server import _champion_with_traffic, _refused_by

MODEL = "gated"  # _champion_with_traffic's model
WAIT_S, BUDGET_MS = 1.0, 500.0
SLOW_TYPE = "tests.training.slow_model.PerCallWait"
PIPELINE = {"data": {"window": "3d", "min_rows": 200},
            "holdout": {"window": None, "share": 0.3, "seed": 0},
            "promotion": {"mode": "manual"}, "gates": {"latency_budget_ms": BUDGET_MS}}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    tmp = tmp_path_factory.mktemp("infra")
    env = {"AIWARDEN_ALLOW_CODE_ARTIFACTS": "true", "AIWARDEN_EVALUATE_EVERY": "0",
           "AIWARDEN_BUCKET_SECONDS": "3600", "AIWARDEN_COMPACT_EVERY": "0.5",
           "AIWARDEN_TRUSTED_MODULES": "tests.training.slow_model",
           "AIWARDEN_SKOPS_TRUSTED": SLOW_TYPE}
    with database_url("sqlite", tmp) as url:
        server = ProcessServer(url, tmp, extra_env=env).start()
        try:
            with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as http:
                _champion_with_traffic(http)
                yield http
        finally:
            server.stop()


def _run(http: httpx.Client, entry: str, params: dict | None = None,
         budget_ms: float = BUDGET_MS) -> dict:
    http.put(f"/models/{MODEL}/pipeline", json={
        "entry": f"tests.training.pipelines:{entry}", "params": params or {}, **PIPELINE,
        "gates": {"latency_budget_ms": budget_ms}}).raise_for_status()
    run_id = http.post(f"/models/{MODEL}/runs").json()["id"]
    deadline = time.monotonic() + 600
    while (run := http.get(f"/runs/{run_id}").json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"run did not end: {run}"
        time.sleep(0.2)
    return run


def test_a_candidate_slower_than_its_budget_is_refused_with_the_timing_stored(
        api: httpx.Client) -> None:
    before = api.get(f"/registry/models/{MODEL}/versions").json()
    run = _run(api, "train_waits_per_call", {"seconds": WAIT_S})
    gate = _refused_by(run)  # every gate before it passed; no version was registered
    assert gate["gate"] == "infra" and [g["gate"] for g in run["gates"]] == [
        "data", "labels", "infra"], run["gates"]
    evidence = gate["evidence"]
    assert evidence["format"] == "skops" and evidence["budget_ms"] == BUDGET_MS
    # each timed row's fastest call still waited its second
    assert evidence["p50_ms"] >= WAIT_S * 1000 and evidence["p95_ms"] >= WAIT_S * 1000
    assert evidence["calls"] == evidence["rows_over_budget"] == 4  # 4 of 50 decide the p95
    assert gate["reason"] == (f"too slow: p95 {evidence['p95_ms']:.1f} ms per prediction, "
                              f"budget {BUDGET_MS:g} ms")
    assert run["reason"] == gate["reason"]
    assert api.get(f"/registry/models/{MODEL}/versions").json() == before  # none added


def test_the_same_model_without_the_wait_passes_every_gate(api: httpx.Client) -> None:
    run = _run(api, "train_logreg")
    assert run["state"] == "succeeded", (run["reason"], run["gates"])
    assert [g["gate"] for g in run["gates"]] == ["data", "labels", "infra", "overfit",
                                                 "slices", "comparison"]
    assert all(g["passed"] for g in run["gates"])
    infra = run["gates"][2]["evidence"]
    assert infra["calls"] == 50 and infra["rows_over_budget"] == 0
    assert infra["p95_ms"] < BUDGET_MS and infra["budget_ms"] == BUDGET_MS
    lineage = api.get(f"/registry/models/{MODEL}/versions/{run['version']}").json()[
        "metadata"]["lineage"]
    assert lineage["run"] == run["id"] and "infra" in lineage["gates"]


def test_a_predict_that_never_returns_is_cancellable_and_refused_at_the_limit(
        api: httpx.Client) -> None:
    """A candidate whose predict waits an hour: a cancel still ends the run while the gate
    waits on it, and, left alone, the run is refused at the gate's limit
    (30 s plus twice 151 calls at the budget: 30.3 s at a 1 ms budget)."""
    from aiwarden.training.run_steps import infra_limit

    http = api
    http.put(f"/models/{MODEL}/pipeline", json={
        "entry": "tests.training.pipelines:train_waits_per_call", "params": {"seconds": 3600},
        **PIPELINE}).raise_for_status()
    run_id = http.post(f"/models/{MODEL}/runs").json()["id"]
    # trained (the exit code is recorded), so the gate's first predict call is waiting
    deadline = time.monotonic() + 300
    while "exit_code" not in (run := http.get(f"/runs/{run_id}").json())["result"]:
        assert run["state"] in ("queued", "running") and time.monotonic() < deadline, run
        time.sleep(0.2)
    http.post(f"/runs/{run_id}/cancel").raise_for_status()
    while (run := http.get(f"/runs/{run_id}").json())["state"] == "running":
        assert time.monotonic() < deadline, run
        time.sleep(0.2)
    assert run["state"] == "cancelled", (run["state"], run["reason"], run["gates"])
    assert [g["gate"] for g in run["gates"]] == ["data", "labels"] and run["version"] is None

    limit = infra_limit(1.0)
    assert limit == pytest.approx(30.302)
    run = _run(http, "train_waits_per_call", {"seconds": 3600}, budget_ms=1.0)
    gate = _refused_by(run)
    assert gate["gate"] == "infra" and gate["reason"] == (
        f"too slow: the candidate's predictions did not finish within {limit:g} s (a "
        "predict call that does not return)"), gate
    assert gate["evidence"]["limit_s"] == limit and gate["evidence"]["budget_ms"] == 1.0


def test_a_candidate_that_hangs_after_the_infra_gate_is_cancellable_and_refused(
        api: httpx.Client) -> None:
    """Fine on the infra gate's batch of 200 rows and its single rows, the candidate hangs
    on the whole holdout (300 rows): the prediction is watched as the infra gate's is, so a
    cancel ends the run meanwhile and, left alone, the gate that asked for the predictions
    refuses it at its limit (30 s plus four times the rows at the infra gate's p95)."""
    from aiwarden.training.run_steps import predict_limit

    http = api
    params = {"seconds": 3600, "above_rows": 200}
    http.put(f"/models/{MODEL}/pipeline", json={
        "entry": "tests.training.pipelines:train_waits_per_call", "params": params,
        **PIPELINE}).raise_for_status()
    run_id = http.post(f"/models/{MODEL}/runs").json()["id"]
    deadline = time.monotonic() + 300
    while True:  # the infra gate passed: the holdout's predictions are waiting
        run = http.get(f"/runs/{run_id}").json()
        if any(g["gate"] == "infra" for g in run["gates"]):
            break
        assert run["state"] in ("queued", "running") and time.monotonic() < deadline, run
        time.sleep(0.2)
    assert run["gates"][-1]["passed"], run["gates"]
    http.post(f"/runs/{run_id}/cancel").raise_for_status()
    while (run := http.get(f"/runs/{run_id}").json())["state"] == "running":
        assert time.monotonic() < deadline, run
        time.sleep(0.2)
    assert run["state"] == "cancelled", (run["state"], run["reason"], run["gates"])
    assert [g["gate"] for g in run["gates"]] == ["data", "labels", "infra"]
    assert run["version"] is None and "cancelled" in run["reason"]

    run = _run(http, "train_waits_per_call", params)
    gate = _refused_by(run)
    assert [g["gate"] for g in run["gates"]] == ["data", "labels", "infra", "overfit"]
    per_row = run["gates"][2]["evidence"]["p95_ms"]
    limit = predict_limit(300, per_row)
    assert gate["evidence"] == {"rows": 300, "limit_s": limit, "per_row_ms": per_row}
    assert gate["reason"] == run["reason"] == (
        f"the candidate's predictions on 300 rows did not finish within {limit:g} s (a "
        "predict call that does not return)")
