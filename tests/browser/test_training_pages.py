"""The training pages in a real browser against a real server (SQLite): the runs list with
each run's state, a run's gates with their evidence (the corrupted row named, champion vs
challenger with the p-value), its log shown as text, and the Retrain now and Cancel buttons
(checked through the API)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from aiwarden.store import keys
from aiwarden.store.database import Database
from tests.server.conftest import json_rows, register_model, scored_frame
from tests.server.live import ThreadServer, settings_for
from tests.server.test_training_api import BUCKET, MODEL, PIPELINE, _champion_with_traffic

BARE = "no-pipeline"
# the infra gate's default 50 ms p95 is about this machine's load, not about these pages
CLEAN = PIPELINE | {"gates": {"latency_budget_ms": 5000}}


def _run(http: httpx.Client, pipeline: dict[str, Any], reason: str,
         timeout: float = 180) -> dict[str, Any]:
    http.put(f"/models/{MODEL}/pipeline", json=pipeline).raise_for_status()
    run = http.post(f"/models/{MODEL}/runs", json={"reason": reason})
    assert run.status_code == 202, run.text
    return _ended(http, run.json()["id"], timeout)


def _ended(http: httpx.Client, run_id: int, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = http.get(f"/runs/{run_id}").json()
        if got["state"] not in ("queued", "running"):
            return got
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} did not end: {got}")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[ThreadServer, httpx.Client, dict[str, dict]]]:
    """A champion with labelled traffic and four ended runs: succeeded (a clean candidate),
    failed (a function printing markup, then raising), biased (a candidate trained on biased
    labels, refused by a gate), blocked (one corrupted record)."""
    tmp = tmp_path_factory.mktemp("training-pages")
    settings = settings_for(f"sqlite:///{tmp / 't.db'}", tmp, allow_code_artifacts=True,
                            evaluate_every=3600, bucket_seconds=BUCKET)
    with ThreadServer(settings) as srv, httpx.Client(base_url=srv.url + "/api/v1",
                                                     timeout=60) as http:
        _champion_with_traffic(http)
        register_model(http, BARE, scored_frame(300, seed=5))
        runs = {"succeeded": _run(http, CLEAN, "a clean candidate"),
                "failed": _run(http, CLEAN | {
                    "entry": "tests.training.pipelines:train_prints_markup"}, "markup"),
                "biased": _run(http, CLEAN | {"params": {"fraud_category": "c"}}, "biased")}
        bad = json_rows(scored_frame(1, seed=3), time.time() - 3600, prefix="bad")
        bad[0]["features"]["x"] = 4.2e9
        http.post(f"/models/{MODEL}/predictions", json=bad).raise_for_status()
        http.post(f"/models/{MODEL}/labels", json=[{"prediction_id": "bad0", "label": 1}]
                  ).raise_for_status()
        runs["blocked"] = _run(http, CLEAN, "after the corruption")
        assert {k: r["state"] for k, r in runs.items()} == {
            "succeeded": "succeeded", "failed": "failed", "biased": "blocked",
            "blocked": "blocked"}, [
            (r["reason"], [g for g in r["gates"] if not g["passed"]]) for r in runs.values()]
        yield srv, http, runs


def test_the_runs_list_shows_each_run_with_its_state(trained, watched) -> None:
    server, _, runs = trained
    page = watched.page
    watched.open(f"{server.url}/models/{MODEL}")
    page.click("text=Training runs")
    page.wait_for_selector("#runs")
    watched.shot("training-runs")
    shown = {int(r.get_attribute("data-run")): r.get_attribute("data-state")
             for r in page.locator("#runs tr[data-run]").all()}
    assert shown == {r["id"]: r["state"] for r in runs.values()}
    blocked = page.locator(f"#runs tr[data-run='{runs['blocked']['id']}']")
    assert "blocked" in blocked.locator("[data-state]").inner_text()
    assert "data: blocked: 1 corrupted row(s)" in blocked.locator(".refusal").inner_text()
    succeeded = page.locator(f"#runs tr[data-run='{runs['succeeded']['id']}']")
    assert succeeded.locator("td[data-label=Version]").inner_text() == runs["succeeded"][
        "version"]
    assert succeeded.locator(".refusal").inner_text() == ""
    failed = page.locator(f"#runs tr[data-run='{runs['failed']['id']}'] .refusal")
    assert failed.inner_text() == runs["failed"]["reason"]


def test_a_blocked_run_names_the_refusing_gate_and_the_corrupted_row(trained, watched
                                                                      ) -> None:
    server, _, runs = trained
    page = watched.page
    watched.open(f"{server.url}/runs/{runs['blocked']['id']}")
    watched.shot("training-run-blocked")
    gate = page.locator("section.gate[data-gate=data]")
    assert gate.get_attribute("data-passed") == "false"
    assert "refused" in gate.locator("h3").inner_text()
    (expected,) = [g for g in runs["blocked"]["gates"] if g["gate"] == "data"]
    assert gate.locator(".gate-reason").inner_text() == expected["reason"]
    cells = gate.locator("table.data-problems tbody tr").first.locator("th, td").all_inner_texts()
    problem = expected["evidence"]["problems"][0]
    assert cells[:3] == [str(problem["row"]), "x", problem["value"]]
    assert float(cells[2]) == 4.2e9 and problem["reason"] in cells[3]
    assert page.locator("#cancel-run").count() == 0  # an ended run cannot be cancelled
    lineage = page.locator("#run-lineage").inner_text()
    assert "tests.training.pipelines:train_logreg" in lineage
    for k, v in runs["blocked"]["data"].items():  # what was known when the gate refused
        if isinstance(v, str | int):
            shown = f"{v:,}" if isinstance(v, int) else v
            assert k.replace("_", " ") in lineage and shown in lineage, (k, v)


def test_a_succeeded_run_shows_the_comparison_lineage_and_promotion(trained, watched) -> None:
    server, _, runs = trained
    run = runs["succeeded"]
    page = watched.page
    watched.open(f"{server.url}/runs/{run['id']}")
    watched.shot("training-run-succeeded")
    assert [g.get_attribute("data-gate") for g in page.locator("section.gate").all()] == [
        g["gate"] for g in run["gates"]]
    assert page.locator("section.gate[data-passed=false]").count() == 0
    (cmp,) = [g["evidence"] for g in run["gates"] if g["gate"] == "comparison"]
    row = page.locator("section.gate[data-gate=comparison] table.comparison tbody tr")
    champion = row.locator("td[data-label=Champion]").inner_text()
    challenger = row.locator("td[data-label=Challenger]").inner_text()
    assert abs(float(champion) - cmp["champion"]) < 1e-3
    assert abs(float(challenger) - cmp["challenger"]) < 1e-3
    assert abs(float(row.locator(".p-value").inner_text()) - cmp["p_value"]) <= max(
        1e-3, 0.01 * cmp["p_value"])
    assert page.locator("section.gate[data-gate=slices]").count() == 1
    lineage = page.locator("#run-lineage").inner_text()
    assert run["data"]["sha256"][:16] in lineage
    for k in ("train_rows", "holdout_rows"):
        assert f"{k.replace('_', ' ')}\n{run['data'][k]:,}" in lineage
    assert "canary" in page.locator("#run-promotion").inner_text()
    steps = page.locator("#run-steps li").all_inner_texts()
    assert len(steps) == len(run["result"]["steps"])
    assert any(f"registered as version {run['version']}" in s for s in steps)


def test_a_biased_candidate_shows_the_gate_that_refused_it(trained, watched) -> None:
    server, _, runs = trained
    run = runs["biased"]
    refused = run["gates"][-1]
    assert not refused["passed"] and refused["gate"] in ("comparison", "slices"), refused
    page = watched.page
    watched.open(f"{server.url}/runs/{run['id']}")
    watched.shot("training-run-biased")
    gate = page.locator(f"section.gate[data-gate={refused['gate']}]")
    assert gate.get_attribute("data-passed") == "false"
    assert gate.locator(".gate-reason").inner_text() == refused["reason"]
    if refused["gate"] == "slices":
        rows = gate.locator("table.slices tbody tr th").all_inner_texts()
        assert rows == [s["description"] for s in refused["evidence"]["slices"]]
        assert any("c = c" in r for r in rows), rows
    else:  # p below the six decimals evidence keeps reads "< 1e-06", not 0
        shown = gate.locator("table.comparison .p-value").inner_text()
        p = refused["evidence"]["p_value"]
        assert shown == "< 1e-06" if p == 0 else abs(float(shown) - p) <= max(1e-3, p / 100)
    assert "did not pass" in page.inner_text("#run-promotion")


def test_the_log_is_shown_as_text_never_run(trained, watched) -> None:
    server, http, runs = trained
    page = watched.page
    run = runs["failed"]
    log = http.get(f"/runs/{run['id']}/log").text
    assert "<script>window.__trainingLogRan" in log  # the markup reached the log
    watched.open(f"{server.url}/runs/{run['id']}")
    watched.shot("training-run-failed")
    assert "<script>window.__trainingLogRan = true</script><b>not bold</b>" in page.inner_text(
        "#run-log")
    assert page.locator("#run-log script, #run-log b").count() == 0
    assert page.evaluate("() => window.__trainingLogRan === undefined")
    assert run["reason"] in page.inner_text("#run-reason")


def test_retrain_now_queues_a_run_and_cancel_cancels_it(trained, watched) -> None:
    server, http, runs = trained
    http.put(f"/models/{MODEL}/pipeline", json=PIPELINE | {
        "entry": "tests.training.pipelines:train_hangs",
        "gates": {"data_policy": "quarantine", "latency_budget_ms": 5000}}).raise_for_status()
    page = watched.page
    watched.open(f"{server.url}/models/{MODEL}/runs")
    page.fill("#retrain-reason", "pressed in the browser test")
    page.click("#retrain-now")
    page.wait_for_selector("#run-notice")
    run_id = int(page.url.rsplit("/", 1)[1].split("?")[0])
    assert run_id not in {r["id"] for r in runs.values()}
    assert f"Run #{run_id} queued" in page.inner_text("#run-notice")
    got = http.get(f"/runs/{run_id}").json()
    assert got["trigger"] == "manual" and got["state"] in ("queued", "running")
    assert got["trigger_detail"]["reason"] == "pressed in the browser test"
    listed = http.get(f"/models/{MODEL}/runs").json()
    assert listed[0]["id"] == run_id
    watched.shot("training-run-active")

    page.wait_for_selector("#cancel-run")
    page.click("#cancel-run")
    page.wait_for_selector("#run-notice")
    assert f"run #{run_id}" in page.inner_text("#run-notice").lower()
    ended = _ended(http, run_id, timeout=60)
    assert ended["state"] == "cancelled", ended
    # the open page follows the run by itself (htmx reloads it while it is active)
    page.wait_for_selector("h1 [data-state=cancelled]", timeout=15_000)
    watched.open(f"{server.url}/runs/{run_id}")
    assert page.locator("#run-state [data-state]").get_attribute("data-state") == "cancelled"
    assert page.locator("#cancel-run").count() == 0


def test_cancel_of_an_ended_run_is_refused(trained) -> None:
    server, _, runs = trained
    before = len(httpx.get(f"{server.url}/api/v1/models/{MODEL}/runs", timeout=30).json())
    r = httpx.post(f"{server.url}/runs/{runs['failed']['id']}/cancel", data={},
                   headers={"Origin": server.url}, timeout=30)
    assert r.status_code == 409 and "already ended (failed)" in r.text
    other = httpx.post(f"{server.url}/models/{MODEL}/runs", data={"reason": "x"},
                       headers={"Origin": "https://evil.example"}, timeout=30)
    assert other.status_code == 403
    after = httpx.get(f"{server.url}/api/v1/models/{MODEL}/runs", timeout=30).json()
    assert len(after) == before  # the cross-site POST queued nothing


def test_a_model_without_pipeline_says_how_to_declare_one(trained, watched) -> None:
    server, _, _ = trained
    page = watched.page
    watched.open(f"{server.url}/models/{BARE}/runs")
    text = page.inner_text("#no-pipeline")
    assert "pipelines:" in text and f"model: {BARE}" in text and "docs/training.md" in text
    assert page.locator("#retrain-now").count() == 0
    assert page.locator("#runs-empty").is_visible()


def test_the_pages_fit_a_phone(trained, watched) -> None:
    server, _, runs = trained
    watched.page.set_viewport_size({"width": 390, "height": 900})
    for path in [f"/models/{MODEL}/runs", *(f"/runs/{r['id']}" for r in runs.values())]:
        watched.open(server.url + path)
        overflow = watched.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, (path, overflow)
        watched.shot(f"phone-{path.strip('/')}")


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadServer, dict]]:
    """A server with keys (read, operate, admin) and a model whose pipeline an admin set."""
    tmp = tmp_path_factory.mktemp("training-keyed")
    url = f"sqlite:///{tmp / 'k.db'}"
    db = Database(url)
    db.migrate()
    with db.write() as conn:
        found = {scope: keys.create_key(conn, name, [scope])[0] for scope, name in
                 (("read", "rita"), ("operate", "olga"), ("admin", "adam"))}
    db.dispose()
    with ThreadServer(settings_for(url, tmp, evaluate_every=3600)) as srv, httpx.Client(
            base_url=srv.url + "/api/v1", timeout=60,
            headers={"Authorization": f"Bearer {found['admin']}"}) as admin:
        register_model(admin, MODEL, scored_frame(300, seed=6))
        admin.put(f"/models/{MODEL}/pipeline", json={
            "entry": "tests.training.pipelines:train_hangs"}).raise_for_status()
        yield srv, found | {"client": admin}


@contextmanager
def _signed_in(server: ThreadServer, key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.post("/login", data={"key": key, "next": "/"}).status_code == 303
        yield client


def test_the_buttons_need_the_operate_scope(keyed, watched) -> None:
    server, found = keyed
    admin: httpx.Client = found["client"]
    page = watched.page
    page.goto(f"{server.url}/models/{MODEL}/runs")
    page.fill("#key", found["read"])
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_selector("#retrain-form")
    assert "Your key can read only" in page.inner_text("section.card")

    origin = {"origin": server.url}
    with _signed_in(server, found["read"]) as rita, _signed_in(server, found["operate"]) as olga:
        denied = rita.post(f"/models/{MODEL}/runs", data={"reason": "r"}, headers=origin)
        assert denied.status_code == 403 and "operate" in denied.text
        assert admin.get(f"/models/{MODEL}/runs").json() == []
        queued = olga.post(f"/models/{MODEL}/runs", data={"reason": "by olga"}, headers=origin)
        assert queued.status_code == 303 and queued.headers["location"].startswith("/runs/")
        (run,) = admin.get(f"/models/{MODEL}/runs").json()
        assert run["trigger_detail"] == {"by": "olga", "reason": "by olga"}
        assert rita.get(f"/runs/{run['id']}").status_code == 200  # reading needs read only
        assert rita.post(f"/runs/{run['id']}/cancel", headers=origin).status_code == 403
        assert olga.post(f"/runs/{run['id']}/cancel", headers=origin).status_code in (303, 409)
        assert _ended(admin, run["id"], timeout=60)["state"] in ("cancelled", "failed")
