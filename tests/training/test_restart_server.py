"""A server stopped the ordinary way (SIGTERM: a deploy, a restart) in the middle of a run
ends the run itself, as failed saying why, kills its training process, and the server
started again on the same database reads that state, once. (kill -9 is
tests/server/test_training_processes.py's.)"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx

from aiwarden.training.orphans import find_run_processes
from tests.server.live import ProcessServer, database_url
from tests.server.test_training_processes import ENV, labelled_model, wait_run


def test_a_run_in_flight_when_the_server_stops_ends_failed_and_stays_so(
        tmp_path: Path) -> None:
    env = ENV | {"AIWARDEN_BUCKET_SECONDS": "3600"}
    with database_url("sqlite", tmp_path) as url:
        first = ProcessServer(url, tmp_path, extra_env=env).start()
        second = None
        try:
            with httpx.Client(base_url=first.url + "/api/v1", timeout=60) as http:
                labelled_model(http, "restarted", n=400, reference=1000)
                http.put("/models/restarted/pipeline", json={
                    "entry": "tests.training.pipelines:train_hangs",
                    "data": {"window": "3d", "min_rows": 100},
                    "executor": {"time_limit": "10m"}}).raise_for_status()
                run_id = http.post("/models/restarted/runs").json()["id"]
                wait_run(http, run_id, lambda r: any(
                    "training on the local executor" in s["text"]
                    for s in r["result"].get("steps", [])))
            run_dir = str(tmp_path / "training-runs" / f"run-{run_id}")
            deadline = time.monotonic() + 30
            while not (pids := find_run_processes(run_dir)):
                assert time.monotonic() < deadline, "the training process never started"
                time.sleep(0.05)
            # SIGTERM: uvicorn shuts down (the app's lifespan stops the training service)
            # and then re-raises the signal, so the exit status is -15 either way
            first.stop()
            assert find_run_processes(run_dir) == [], f"{pids} outlived its server"
            second = ProcessServer(url, tmp_path, extra_env=env).start()
            with httpx.Client(base_url=second.url + "/api/v1", timeout=60) as http:
                run = http.get(f"/runs/{run_id}").json()
                assert run["state"] == "failed", run
                assert run["reason"] == "the server stopped while it trained; queue a new run"
                time.sleep(1.5)  # maintenance ticks of the new server: nothing ends it again
                again = http.get(f"/runs/{run_id}").json()
                assert (again["state"], again["reason"], again["finished_at"]) == (
                    run["state"], run["reason"], run["finished_at"])
                # the model trains again: the stopped run holds no slot
                new = http.post("/models/restarted/runs").json()["id"]
                wait_run(http, new, lambda r: r["state"] == "running")
                http.post(f"/runs/{new}/cancel").raise_for_status()
                assert wait_run(http, new, lambda r: r["state"] not in (
                    "queued", "running"))["state"] == "cancelled"
        finally:
            for server in (first, second):
                if server is not None and server.proc is not None and \
                        server.proc.poll() is None:
                    server.kill()
            for d in (tmp_path / "training-runs").glob("run-*"):  # never leave one behind
                for pid in find_run_processes(str(d)):
                    os.killpg(pid, 9)
