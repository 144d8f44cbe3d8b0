"""``aiwarden retrain``, ``aiwarden runs`` and ``pipelines:`` in ``aiwarden apply``, against a
real server (SQLite) that runs the training functions of tests/training/pipelines.py in real
subprocesses: exit codes say how a run ended, listings and shows print what the API answers,
a bad pipeline is refused naming its field, and an open server without
--allow-code-artifacts refuses pipelines saying what would let them in."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aiwarden.cli import main
from aiwarden.training.contract import TrainingContext, TrainingResult
from tests.server.conftest import json_rows, register_model, scored_frame
from tests.server.live import ThreadServer, settings_for

MODEL = "cli-train"
ENTRY = "tests.training.pipelines:{}"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    tmp = tmp_path_factory.mktemp("cli-training")
    # hour buckets: the runs read raw events; a day of one-minute buckets is profiled a row
    # at a time
    with ThreadServer(settings_for(f"sqlite:///{tmp / 't.db'}", tmp, allow_code_artifacts=True,
                                   evaluate_every=0, bucket_seconds=3600)) as s:
        with httpx.Client(base_url=s.url + "/api/v1", timeout=60) as http:
            register_model(http, MODEL, scored_frame(3000, seed=1))
            live = scored_frame(600, seed=2)
            rows = json_rows(live, time.time() - 86400, spacing=86400 / 600)
            http.post(f"/models/{MODEL}/predictions", json=rows).raise_for_status()
            http.post(f"/models/{MODEL}/labels", json=[
                {"prediction_id": r["prediction_id"], "label": int(y)}
                for r, y in zip(rows, live["y"], strict=True)]).raise_for_status()
        yield s


@pytest.fixture()
def api(srv: ThreadServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url + "/api/v1", timeout=60) as http:
        yield http


def train_pickle(ctx: TrainingContext) -> TrainingResult:
    """A candidate saved as a pickle (runs code when loaded): the infra gate refuses it."""
    import pickle

    with open(ctx.path("model.pkl"), "wb") as f:
        pickle.dump({"weights": [1.0]}, f)
    return TrainingResult("model.pkl")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _pipeline(fn: str, **extra: object) -> dict:
    return {"entry": ENTRY.format(fn), "data": {"window": "3d", "min_rows": 100},
            "holdout": {"window": "3h"}, **extra}


def _put(api: httpx.Client, fn: str) -> None:
    api.put(f"/models/{MODEL}/pipeline", json=_pipeline(fn)).raise_for_status()


def _rules_file(tmp_path: Path, *pipelines: dict) -> str:
    import yaml

    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"pipelines": list(pipelines)}, sort_keys=False))
    return str(path)


# ------------------------------------------------------------------ apply: pipelines:
def test_apply_dry_runs_a_pipeline_field_by_field_then_applies_it(
        srv: ThreadServer, api: httpx.Client, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    api.delete(f"/models/{MODEL}/pipeline")
    spec = {"model": MODEL, **_pipeline("train_raises")}
    path = _rules_file(tmp_path, spec)
    code, out, err = run(capsys, "apply", path, "--dry-run", "--url", srv.url)
    assert (code, err) == (1, "")  # changes pending
    assert f"+ pipeline {MODEL}" in out.splitlines()
    assert f'    entry: "{ENTRY.format("train_raises")}"' in out.splitlines()
    assert '    data.min_rows: 100' in out.splitlines()
    assert api.get(f"/models/{MODEL}/pipeline").status_code == 404  # the dry run wrote nothing

    code, out, err = run(capsys, "apply", path, "--url", srv.url, "-o", "json")
    assert (code, err) == (0, "")
    assert json.loads(out)["pipelines"] == [MODEL]
    stored = api.get(f"/models/{MODEL}/pipeline").json()
    assert stored["entry"] == spec["entry"] and stored["data"]["min_rows"] == 100
    assert run(capsys, "apply", path, "--dry-run", "--url", srv.url)[0] == 0  # idempotent

    spec["triggers"] = {"schedule": "0 3 * * *", "cooldown": "2h"}
    path = _rules_file(tmp_path, spec)
    code, out, _ = run(capsys, "apply", path, "--dry-run", "--url", srv.url)
    assert code == 1
    lines = out.splitlines()
    assert f"~ pipeline {MODEL}" in lines
    assert '    triggers.schedule: (absent) -> "0 3 * * *"' in lines
    assert '    triggers.cooldown: "6h" -> "2h"' in lines
    assert api.get(f"/models/{MODEL}/pipeline").json()["triggers"]["schedule"] is None


@pytest.mark.parametrize(("change", "field"), [
    ({"triggers": {"schedule": "every night"}}, "pipelines[0].triggers.schedule"),
    ({"trainer": "x"}, "pipelines[0].trainer"),
    ({"entry": "not an entry"}, "pipelines[0].entry"),
    ({"data": {"window": "forever"}}, "pipelines[0].data.window"),
    ({"model": "no-such-model"}, "pipelines[0].model"),
])
def test_a_bad_pipeline_exits_2_naming_the_field_and_writes_nothing(
        srv: ThreadServer, api: httpx.Client, capsys: pytest.CaptureFixture[str],
        tmp_path: Path, change: dict, field: str) -> None:
    _put(api, "train_raises")
    before = api.get(f"/models/{MODEL}/pipeline").json()
    path = tmp_path / "rules.yaml"
    import yaml

    path.write_text(yaml.safe_dump({
        "rules": [{"name": "never-written", "model": MODEL, "metric": "drift", "column": "x",
                   "critical": 1}],
        "pipelines": [{"model": MODEL, **_pipeline("train_ok"), **change}]}))
    for dry in ((), ("--dry-run",)):
        code, out, err = run(capsys, "apply", str(path), *dry, "--url", srv.url)
        assert code == 2 and out == ""
        assert err.startswith("aiwarden apply: error: HTTP 422: ") and field in err, err
    assert api.get(f"/models/{MODEL}/pipeline").json() == before
    assert all(r["name"] != "never-written" for r in api.get("/rules").json())


def test_an_open_server_without_allow_code_artifacts_refuses_pipelines_and_says_why(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with ThreadServer(settings_for(f"sqlite:///{tmp_path / 'o.db'}", tmp_path)) as s:
        with httpx.Client(base_url=s.url + "/api/v1", timeout=60) as http:
            register_model(http, MODEL)
        path = _rules_file(tmp_path, {"model": MODEL, **_pipeline("train_ok")})
        code, out, err = run(capsys, "apply", path, "--url", s.url)
        assert code == 2 and out == ""
        assert "HTTP 403" in err and "admin API key" in err
        assert "--allow-code-artifacts" in err
        assert httpx.get(f"{s.url}/api/v1/models/{MODEL}/pipeline").status_code == 404


def test_a_keyed_server_takes_a_pipeline_from_an_admin_key_and_refuses_others(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No --allow-code-artifacts needed once keys exist: the admin scope is the consent."""
    from aiwarden.store import keys
    from aiwarden.store.database import Database

    url = f"sqlite:///{tmp_path / 'k.db'}"
    db = Database(url)
    db.migrate()
    with db.write() as conn:
        admin, _ = keys.create_key(conn, "admin", ["admin"])
        operate, _ = keys.create_key(conn, "ops", ["read", "operate"])
    db.dispose()
    with ThreadServer(settings_for(url, tmp_path)) as s, httpx.Client(
            base_url=s.url + "/api/v1", timeout=60,
            headers={"Authorization": f"Bearer {admin}"}) as http:
        register_model(http, MODEL)
        path = _rules_file(tmp_path, {"model": MODEL, **_pipeline("train_raises")})
        code, _, err = run(capsys, "apply", path, "--url", s.url, "--api-key", operate)
        assert code == 2 and "HTTP 403" in err and "admin" in err, err
        assert http.get(f"/models/{MODEL}/pipeline").status_code == 404
        code, _, err = run(capsys, "apply", path, "--url", s.url, "--api-key", admin)
        assert (code, err) == (0, ""), err
        stored = http.get(f"/models/{MODEL}/pipeline").json()
        assert stored["entry"] == ENTRY.format("train_raises")


# ------------------------------------------------------------------ retrain --wait
def test_retrain_wait_exits_6_for_a_failed_run_and_prints_why(
        srv: ThreadServer, api: httpx.Client, capsys: pytest.CaptureFixture[str]) -> None:
    _put(api, "train_raises")
    code, out, err = run(capsys, "retrain", MODEL, "--reason", "nightly check", "--wait",
                         "--url", srv.url)
    assert code == 6, (out, err)
    assert out.splitlines()[0].endswith(": failed")
    assert "is all zeros" in out  # the function's exception is the reason
    assert "trigger:   manual (nightly check)" in out
    assert "waiting for it to end" in err


def test_retrain_wait_exits_1_when_a_gate_blocks_and_names_the_gate(
        srv: ThreadServer, api: httpx.Client, capsys: pytest.CaptureFixture[str]) -> None:
    api.put(f"/models/{MODEL}/pipeline", json=_pipeline("x") | {
        "entry": f"{__name__}:train_pickle"}).raise_for_status()
    code, out, _ = run(capsys, "retrain", MODEL, "--wait", "--url", srv.url)
    assert code == 1, out
    assert out.splitlines()[0].endswith(": blocked")
    fails = [line for line in out.splitlines() if line.startswith("  FAIL  ")]
    assert len(fails) == 1 and fails[0].split()[1] == "infra", out
    assert "runs code when loaded" in fails[0]
    assert "  pass  data" in out and "version:   -" in out
    assert "  sha256: " in out  # lineage of the data it trained on


def test_retrain_wait_exits_0_for_a_run_that_succeeds_with_version_and_promotion(
        srv: ThreadServer, api: httpx.Client, capsys: pytest.CaptureFixture[str]) -> None:
    # the default infra budget (50 ms p95): single-call wall times came back blocked at load
    # 15, each row's fastest of three calls does not (aiwarden/training/candidate.py)
    api.put(f"/models/{MODEL}/pipeline", json=_pipeline(
        "train_logreg", promotion={"mode": "manual"})).raise_for_status()
    code, out, _ = run(capsys, "retrain", MODEL, "--wait", "-o", "json", "--url", srv.url)
    run_ = json.loads(out)
    assert code == 0, run_
    assert run_["state"] == "succeeded" and run_["version"]
    assert run_ == api.get(f"/runs/{run_['id']}").json()
    code, out, _ = run(capsys, "runs", "show", str(run_["id"]), "--url", srv.url)
    assert code == 0
    assert f"version:   {run_['version']}" in out and "promotion: challenger" in out
    assert f"  code: {ENTRY.format('train_logreg')}" in out  # the version's lineage
    assert f"registered as version {run_['version']}" in out  # its steps


def test_retrain_without_wait_answers_at_once_and_timeout_exits_6(
        srv: ThreadServer, api: httpx.Client, capsys: pytest.CaptureFixture[str]) -> None:
    _put(api, "train_hangs")
    code, out, _ = run(capsys, "retrain", MODEL, "--url", srv.url)
    assert code == 0 and out.startswith("run #")
    run_id = int(out.split()[1].lstrip("#"))
    code, out, err = run(capsys, "retrain", MODEL, "--wait", "--timeout", "1", "--url",
                         srv.url)
    assert code == 6 and "still" in err and f"runs cancel {run_id}" in err
    assert out.startswith(f"run #{run_id} ")  # a manual run queued already is the same run
    code, out, _ = run(capsys, "runs", "cancel", str(run_id), "--url", srv.url)
    assert code == 0 and out.startswith(f"run #{run_id} is ")
    deadline = time.monotonic() + 60
    while api.get(f"/runs/{run_id}").json()["state"] != "cancelled":
        assert time.monotonic() < deadline, "the cancelled run did not end"
        time.sleep(0.3)


# ------------------------------------------------------------------ runs list/show/log
@pytest.mark.parametrize("flag", [("--json",), ("-o", "json")])
def test_runs_list_and_show_print_what_the_api_answers(
        srv: ThreadServer, api: httpx.Client, capsys: pytest.CaptureFixture[str],
        flag: tuple[str, ...]) -> None:
    _put(api, "train_raises")
    run(capsys, "retrain", MODEL, "--wait", "--url", srv.url)
    code, out, err = run(capsys, "runs", "list", MODEL, *flag, "--url", srv.url)
    assert (code, err) == (0, "")
    listed = json.loads(out)
    assert listed == api.get(f"/models/{MODEL}/runs").json() and listed
    code, out, _ = run(capsys, "runs", "show", str(listed[0]["id"]), *flag, "--url", srv.url)
    assert code == 0 and json.loads(out) == api.get(f"/runs/{listed[0]['id']}").json()


def test_runs_list_table_and_log(srv: ThreadServer, api: httpx.Client,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    _put(api, "train_raises")
    run(capsys, "retrain", MODEL, "--reason", "see the log", "--wait", "--url", srv.url)
    code, out, _ = run(capsys, "runs", "list", MODEL, "--url", srv.url)
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["id", "state", "trigger"]
    newest = lines[1].split()
    assert newest[1:3] == ["failed", "manual"] and lines[1].endswith("is all zeros")
    code, out, _ = run(capsys, "runs", "log", newest[0], "--url", srv.url)
    assert code == 0
    assert out == api.get(f"/runs/{newest[0]}/log").text and "all zeros" in out


def test_missing_things_exit_3_a_model_without_pipeline_too(
        srv: ThreadServer, api: httpx.Client, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (("runs", "show", "999999"), ("runs", "cancel", "999999"),
                 ("runs", "log", "999999"), ("runs", "list", "no-such-model"),
                 ("retrain", "no-such-model")):
        code, out, err = run(capsys, *argv, "--url", srv.url)
        assert code == 3 and out == "" and "HTTP 404" in err, argv
    api.post("/models", json={"name": "cli-no-pipeline", "task": "binary"}).raise_for_status()
    # the API answers a run without a pipeline 404, as GET .../pipeline does (a116f4e)
    code, out, err = run(capsys, "retrain", "cli-no-pipeline", "--url", srv.url)
    assert (code, out) == (3, "") and "HTTP 404" in err, err
    assert "'cli-no-pipeline' has no training pipeline; PUT one first" in err
    code, _, err = run(capsys, "runs", "list", MODEL, "--url", "http://127.0.0.1:9")
    assert code == 4


def test_the_pipeline_example_of_docs_training_md_dry_runs_as_written(
        srv: ThreadServer, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import re

    docs = Path(__file__).resolve().parents[1] / "docs" / "training.md"
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", docs.read_text(), re.S)
                 if b.startswith("pipelines:"))
    path = tmp_path / "pipelines.yaml"
    path.write_text(block.replace("model: fraud-detector", f"model: {MODEL}"))
    code, out, err = run(capsys, "apply", str(path), "--dry-run", "--url", srv.url)
    assert (code, err) == (1, "")  # valid, and differs from every pipeline the tests put
    assert f" pipeline {MODEL}" in out and '    triggers.schedule: ' in out
