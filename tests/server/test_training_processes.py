"""Training runs across processes: a server killed with SIGKILL mid-run and restarted on the
same database ends the run once, as failed naming the dead server, and kills the training
process it left behind (a warm run forked from the server's zygote, which goes with its
server); the Dask executor trains a pipeline on a real LocalCluster started here, through a
real server, its loopback scheduler allowed by the egress allowlist and a private one
refused."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aiwarden.training.orphans import find_run_processes
from tests.server.conftest import json_rows, register_model, scored_frame
from tests.server.live import ProcessServer, ThreadServer, database_url, settings_for

ENV = {"AIWARDEN_ALLOW_CODE_ARTIFACTS": "true", "AIWARDEN_EVALUATE_EVERY": "0",
       "AIWARDEN_COMPACT_EVERY": "0.5", "AIWARDEN_TRAINING_STALE_AFTER": "3",
       # the runs here need numpy only: the default preload (scikit-learn...) would cost each
       # server start-up seconds of imports that nothing here uses
       "AIWARDEN_TRAINING_PRELOAD": "numpy,aiwarden.training.worker"}


def labelled_model(http: httpx.Client, name: str, n: int = 1200, reference: int = 3000
                   ) -> None:
    """``name`` with its reference and ``n`` labelled predictions over the last day."""
    register_model(http, name, scored_frame(reference, seed=1))
    live = scored_frame(n, seed=2)
    rows = json_rows(live, time.time() - 86400, prefix=f"{name}-", spacing=86400 / n)
    http.post(f"/models/{name}/predictions", json=rows).raise_for_status()
    http.post(f"/models/{name}/labels", json=[
        {"prediction_id": r["prediction_id"], "label": int(y)}
        for r, y in zip(rows, live["y"], strict=True)]).raise_for_status()


def wait_run(http: httpx.Client, run_id: int, until: object, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = http.get(f"/runs/{run_id}").json()
        if until(run):  # type: ignore[operator]
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} never got there: {run}")
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it is dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _zygotes(parent: int) -> list[int]:
    """The warm runner's zygote(s) the process ``parent`` started."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmd = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"aiwarden.training.warm" in cmd:
            found.append(int(stat.parent.name))
    return found


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


# Kept cheap for CI (measured in docs/training.md): hour buckets (the run reads raw events; a
# day of minute buckets is profiled a row at a time), 400 labelled rows, a run that needs
# numpy only, a 3 s lease; the restarted server is the same server code on the same database
# in this process (a second `aiwarden server` would import the app again, ~5 CPU-s)
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_kill_9_mid_run_then_restart_ends_the_run_once_and_kills_its_process(
        kind: str, tmp_path: Path) -> None:
    with database_url(kind, tmp_path) as url:
        first = ProcessServer(url, tmp_path, extra_env=ENV | {
            "AIWARDEN_BUCKET_SECONDS": "3600"}).start()
        try:
            with httpx.Client(base_url=first.url + "/api/v1", timeout=60) as http:
                labelled_model(http, "hangs", n=400, reference=1000)
                http.put("/models/hangs/pipeline", json={
                    "entry": "tests.training.pipelines:train_hangs",
                    "data": {"window": "3d", "min_rows": 100}, "holdout": {"window": "3h"},
                    "executor": {"time_limit": "10m"}}).raise_for_status()
                run_id = http.post("/models/hangs/runs", json={"reason": "kill me"}).json()["id"]
                wait_run(http, run_id, lambda r: any(
                    "training on the local executor" in s["text"]
                    for s in r["result"].get("steps", [])))
            run_dir = str(tmp_path / "training-runs" / f"run-{run_id}")
            deadline = time.monotonic() + 30
            while not (orphans := find_run_processes(run_dir)):
                assert time.monotonic() < deadline, "the training process never started"
                time.sleep(0.05)
            # the run was forked warm: /proc shows the zygote's environment, the marker finds it
            assert (Path(run_dir) / "process.json").is_file()
            assert first.proc is not None
            (zygote,) = _zygotes(first.proc.pid)
            first.kill()
            (pid,) = orphans
            deadline = time.monotonic() + 30
            while _alive(zygote):  # the zygote goes with its server; the run does not
                assert time.monotonic() < deadline, f"the zygote {zygote} outlived its server"
                time.sleep(0.05)
            assert _alive(pid), "the training process died with the server: nothing to test"

            lines = _Lines()
            logging.getLogger("aiwarden.training").addHandler(lines)
            try:
                with ThreadServer(settings_for(
                        url, tmp_path, allow_code_artifacts=True, evaluate_every=0,
                        compact_every=0.25, bucket_seconds=3600, training_stale_after=3,
                        training_preload=ENV["AIWARDEN_TRAINING_PRELOAD"])) as second, \
                        httpx.Client(base_url=second.url + "/api/v1", timeout=60) as http:
                    ended = wait_run(http, run_id, lambda r: r["state"] != "running",
                                     timeout=60)
                    assert ended["state"] == "failed", ended
                    assert "the server process running it stopped" in ended["reason"], ended
                    assert f"its training process (pid {pid}) was killed" in ended["reason"]
                    deadline = time.monotonic() + 30
                    while _alive(pid):
                        assert time.monotonic() < deadline, f"pid {pid} still runs"
                        time.sleep(0.05)
                    assert find_run_processes(run_dir) == []
                    time.sleep(1.25)  # five more maintenance ticks: nothing ends it again
                    again = http.get(f"/runs/{run_id}").json()
                    assert (again["state"], again["reason"], again["finished_at"]) == (
                        ended["state"], ended["reason"], ended["finished_at"])
                    gone = [m for m in lines.lines if m.startswith(f"training run {run_id} ")]
                    assert len(gone) == 1 and "is gone" in gone[0], lines.lines
                    # the model can train again: the dead run holds no slot
                    again_id = http.post("/models/hangs/runs").json()["id"]
                    assert again_id != run_id
                    wait_run(http, again_id, lambda r: r["state"] == "running")
                    http.post(f"/runs/{again_id}/cancel").raise_for_status()
                    assert wait_run(http, again_id, lambda r: r["state"] != "running"
                                    )["state"] == "cancelled"
            finally:
                logging.getLogger("aiwarden.training").removeHandler(lines)
        finally:
            if first.proc is not None and first.proc.poll() is None:
                first.kill()
            for d in (tmp_path / "training-runs").glob("run-*"):  # never leave one behind
                for pid in find_run_processes(str(d)):
                    os.killpg(pid, 9)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as c:
        yield c.scheduler_address


def test_the_dask_executor_trains_a_pipeline_on_a_local_cluster(
        cluster: str, tmp_path: Path) -> None:
    with database_url("sqlite", tmp_path) as url, ThreadServer(settings_for(
            url, tmp_path, allow_code_artifacts=True, evaluate_every=0)) as server, \
            httpx.Client(base_url=server.url + "/api/v1", timeout=60) as http:
        labelled_model(http, "on-dask")
        # the egress policy: a private scheduler not on the allowlist is refused, named
        refused = http.put("/models/on-dask/pipeline", json={
            "entry": "tests.training.pipelines:train_logreg",
            "executor": {"kind": "dask", "address": "tcp://10.1.2.3:8786"}})
        assert refused.status_code == 422, refused.text
        assert "executor.address" in refused.text and "AIWARDEN_EGRESS_ALLOW" in refused.text
        # the loopback LocalCluster is allowed by the test server's egress_allow=127.0.0.1
        http.put("/models/on-dask/pipeline", json={
            "entry": "tests.training.pipelines:train_logreg",
            "executor": {"kind": "dask", "address": cluster, "time_limit": "5m"},
            # the executor is under test, not the latency of a loaded CI machine
            "gates": {"latency_budget_ms": 5000},
            "promotion": {"mode": "manual"}}).raise_for_status()
        run_id = http.post("/models/on-dask/runs").json()["id"]
        run = wait_run(http, run_id, lambda r: r["state"] not in ("queued", "running"),
                       timeout=180)
        assert run["state"] == "succeeded", (run["reason"], run["gates"])
        assert any("training on the dask executor" in s["text"]
                   for s in run["result"]["steps"])
        assert run["version"] == "1" and run["result"]["peak_memory_mb"] > 0
        assert run["result"]["exit_code"] == 0
        # the artifact came back from the worker and was registered with its lineage
        version = http.get(f"/registry/models/on-dask/versions/{run['version']}").json()
        assert version["metadata"]["lineage"]["run"] == run_id
        assert http.get(f"/runs/{run_id}/log").status_code == 200


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_training_warm_false_runs_each_entry_point_in_a_fresh_interpreter(
        kind: str, tmp_path: Path) -> None:
    """The setting that turns the warm runner off: a run is cold (no zygote marker), and
    reads as a warm one would."""
    with database_url(kind, tmp_path) as url, ThreadServer(settings_for(
            url, tmp_path, allow_code_artifacts=True, evaluate_every=0,
            training_warm=False)) as server, \
            httpx.Client(base_url=server.url + "/api/v1", timeout=60) as http:
        labelled_model(http, "cold", n=600)
        http.put("/models/cold/pipeline", json={
            "entry": "tests.training.pipelines:train_raises"}).raise_for_status()
        run_id = http.post("/models/cold/runs").json()["id"]
        run = wait_run(http, run_id, lambda r: r["state"] not in ("queued", "running"))
        assert run["state"] == "failed", run
        assert "raised RuntimeError: column 'y' is all zeros" in run["reason"], run["reason"]
        run_dir = tmp_path / "training-runs" / f"run-{run_id}"
        assert not (run_dir / "process.json").exists()  # no zygote forked it
        assert "RuntimeError" in http.get(f"/runs/{run_id}/log").text
        assert server.server.config.app.state.training.warm is None
