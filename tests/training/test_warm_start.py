"""The zygote starts in the background when a server has (or is given) a pipeline with an
entry point, so the first run of a server forks from a ready zygote instead of paying its
imports (~11 s on a loaded machine, bench/training.py). Through a real server: a PUT starts
it before any run; a server restarted on the same database starts it at start-up; the first
run is forked by that same zygote (its marker, no restart). A command pipeline starts none.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from aiwarden.training.contract import TrainingContext
from aiwarden.training.local_executor import Job, run_local
from aiwarden.training.warm import MARKER_FILE, WarmRunner
from tests.server.live import ThreadServer, database_url, settings_for
from tests.server.test_training_processes import labelled_model, wait_run

# numpy only: scikit-learn's imports would cost each start-up seconds nothing here uses
PRELOAD = "numpy,aiwarden.training.worker"


def _zygote_pid(server: ThreadServer, within: float = 30) -> int:
    """The pid of the server's zygote once it runs (waits for the start-up tick)."""
    deadline = time.monotonic() + within
    while True:
        svc = getattr(server.server.config.app.state, "training", None)
        pid = None if svc is None or svc.warm is None else svc.warm.pid
        if pid is not None:
            return pid
        assert time.monotonic() < deadline, "no zygote was started"
        time.sleep(0.05)


def test_prestart_returns_before_the_imports_and_the_first_run_uses_that_zygote(
        context: TrainingContext) -> None:
    slow = WarmRunner(preload=("tests.training.slow_import",))  # imports for 60 s
    try:
        assert slow.prestart() and slow.pid is not None
        assert not slow.wait_ready(0.2)  # returned while the 60 s import goes on
    finally:
        slow.close()
    runner = WarmRunner(preload=("numpy",))
    try:
        assert runner.prestart()
        zygote = runner.pid
        assert runner.prestart() and runner.pid == zygote  # no second zygote
        assert runner.wait_ready(120)
        out = run_local(Job(context, entry="tests.training.pipelines:train_ok"), warm=runner)
        assert out.state == "succeeded", out.reason
        assert runner.pid == zygote and runner.restarts == 0
        assert (Path(context.run_dir) / MARKER_FILE).is_file()  # forked, not a fresh python
    finally:
        runner.close()


def test_a_server_starts_its_zygote_for_a_pipeline_before_any_run(tmp_path: Path) -> None:
    with database_url("sqlite", tmp_path) as url:
        settings = settings_for(url, tmp_path, allow_code_artifacts=True, evaluate_every=0,
                                training_preload=PRELOAD)
        with ThreadServer(settings) as server, \
                httpx.Client(base_url=server.url + "/api/v1", timeout=60) as http:
            labelled_model(http, "early", n=600)
            http.put("/models/early/pipeline", json={
                "command": ["true"]}).raise_for_status()
            time.sleep(1.5)  # three maintenance ticks
            svc = server.server.config.app.state.training
            assert svc.warm is not None and svc.warm.pid is None  # a command forks nothing
            http.put("/models/early/pipeline", json={
                "entry": "tests.training.pipelines:train_raises"}).raise_for_status()
            first = _zygote_pid(server, within=1)  # the PUT started it, no run yet
            assert http.get("/models/early/runs").json() == []
        # a restart on the same database: the start-up tick finds the pipeline
        settings = settings_for(url, tmp_path, allow_code_artifacts=True, evaluate_every=0,
                                training_preload=PRELOAD)
        with ThreadServer(settings) as server, \
                httpx.Client(base_url=server.url + "/api/v1", timeout=60) as http:
            zygote = _zygote_pid(server)
            assert zygote != first
            warm = server.server.config.app.state.training.warm
            assert warm.wait_ready(120)  # what the time before the first trigger buys
            run_id = http.post("/models/early/runs").json()["id"]
            run = wait_run(http, run_id, lambda r: r["state"] not in ("queued", "running"))
            assert run["state"] == "failed" and "column 'y' is all zeros" in run["reason"]
            # forked by the zygote the start-up started: its marker, no restart
            assert (tmp_path / "training-runs" / f"run-{run_id}" / MARKER_FILE).is_file()
            assert warm.pid == zygote and warm.restarts == 0
