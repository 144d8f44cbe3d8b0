"""The same pipelines on a real Dask cluster (a LocalCluster of worker processes); the
scheduler address through the egress policy; a worker kills its training process when the
client that wanted it is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from aiwarden.egress import EgressPolicy
from aiwarden.training.local_executor import Job

distributed = pytest.importorskip("distributed")

from aiwarden.training.dask_executor import run_dask  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    # the runs here need no scikit-learn: the worker's zygote (started by the first run)
    # imports what they use, read from the worker's environment
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIWARDEN_TRAINING_PRELOAD",
                   "numpy,pandas,pyarrow.parquet,aiwarden.training.worker")
        with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                      dashboard_address=":0") as c, \
                distributed.Client(c) as client:
            yield client


def test_a_pipeline_runs_unchanged_on_the_cluster(cluster, context) -> None:
    out = run_dask(Job(context, entry="tests.training.pipelines:train_ok"), cluster)
    assert out.state == "succeeded", out.reason
    artifact = Path(out.result.artifact)
    assert artifact.parent == Path(context.run_dir)  # shipped back to the server's run dir
    assert json.loads(artifact.read_text()) == {"weights": {"amount": 2.5},
                                                "params": {"C": 0.5}}
    assert out.result.holdout_metrics == {"rows": 2.0}
    # the worker ran it in a process of its own, not in the worker's
    assert out.peak_memory_mb > 10
    # forked from the worker's zygote, which imported what the worker's environment listed
    (preload,) = cluster.run(_worker_preload).values()
    assert preload == ["numpy", "pandas", "pyarrow.parquet", "aiwarden.training.worker"]


def _worker_preload() -> list[str]:
    from aiwarden.training import dask_executor

    return list(dask_executor._WARM[0].preload)


def test_failures_on_the_cluster_read_as_they_do_locally(cluster, context) -> None:
    out = run_dask(Job(context, entry="tests.training.pipelines:train_raises"), cluster)
    assert out.state == "failed"
    assert "raised RuntimeError: column 'label' is all zeros" in out.reason
    assert "RuntimeError" in (Path(context.run_dir) / "log.txt").read_text()
    slow = run_dask(Job(context, entry="tests.training.pipelines:train_hangs",
                        time_limit=1.0), cluster)
    assert slow.state == "failed" and "time limit of 1 s" in slow.reason


def test_a_run_on_the_cluster_can_be_cancelled(cluster, context) -> None:
    stop = threading.Event()
    threading.Timer(1.5, stop.set).start()
    out = run_dask(Job(context, entry="tests.training.pipelines:train_hangs"), cluster,
                   should_cancel=stop.is_set)
    assert out.state == "cancelled" and out.seconds < 20, out


def test_the_scheduler_address_goes_through_the_egress_policy(cluster, context) -> None:
    address = cluster.scheduler.address  # tcp://127.0.0.1:PORT, loopback
    job = Job(context, entry="tests.training.pipelines:train_ok")
    refused = run_dask(job, address, egress=EgressPolicy())
    assert refused.state == "failed", refused
    assert "AIWARDEN_EGRESS_ALLOW" in refused.reason and "127.0.0.1" in refused.reason
    assert "loopback" in refused.reason and not (Path(context.run_dir) / "log.txt").exists()
    bad = run_dask(job, "udp://127.0.0.1:1", egress=EgressPolicy("127.0.0.1"))
    assert bad.state == "failed" and "executor.address" in bad.reason, bad.reason
    allowed = run_dask(job, address, egress=EgressPolicy("127.0.0.1"))
    assert allowed.state == "succeeded", allowed.reason


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# a server's run, in a process of its own, so that it can die with SIGKILL mid-run
CLIENT = """
import sys
from aiwarden.egress import EgressPolicy
from aiwarden.training.contract import TrainingContext
from aiwarden.training.dask_executor import run_dask
from aiwarden.training.local_executor import Job
ctx = TrainingContext.from_file(sys.argv[2])
run_dask(Job(ctx, entry="tests.training.pipelines:train_spawns_and_hangs"), sys.argv[1],
         egress=EgressPolicy("127.0.0.1"))
"""


def test_a_workers_training_process_is_killed_when_its_server_dies(
        cluster, context, tmp_path: Path) -> None:
    ctx = context.__class__(**{**context.__dict__, "params": {"pid_dir": str(tmp_path)}})
    (tmp_path / "context.json").write_text(ctx.to_json())
    server = subprocess.Popen([sys.executable, "-c", CLIENT, cluster.scheduler.address,
                               str(tmp_path / "context.json")], cwd=os.getcwd())
    pids = tmp_path / "pids.json"
    try:
        deadline = time.monotonic() + 120
        while not pids.is_file():
            assert server.poll() is None, "the client process ended before the run started"
            assert time.monotonic() < deadline, "the run never started on the worker"
            time.sleep(0.1)
        started = json.loads(pids.read_text())
        assert _alive(started["pid"]) and _alive(started["child"])
        server.kill()  # kill -9: no cancel is ever sent
        server.wait()
        deadline = time.monotonic() + 60
        while _alive(started["pid"]) or _alive(started["child"]):
            assert time.monotonic() < deadline, f"the worker left {started} running"
            time.sleep(0.2)
    finally:
        if server.poll() is None:
            server.kill()
        if pids.is_file():
            for pid in json.loads(pids.read_text()).values():
                if _alive(pid):
                    os.kill(pid, 9)
    # the worker is free again: the next run trains
    after = run_dask(Job(context, entry="tests.training.pipelines:train_ok"), cluster)
    assert after.state == "succeeded", after.reason


def test_a_training_process_dies_with_its_worker(cluster, context, tmp_path: Path) -> None:
    """kill -9 of the worker process mid-run: no server sees that host to clean up after it,
    so the run (forked warm on the worker) and its own child go with the worker. Dask then
    retries the task on the worker its nanny restarted; the run's cancel ends that one."""
    ctx = context.__class__(**{**context.__dict__, "params": {"pid_dir": str(tmp_path)}})
    (worker,) = cluster.run(os.getpid).values()
    stop = threading.Event()
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(run_dask(
        Job(ctx, entry="tests.training.pipelines:train_spawns_and_hangs"), cluster,
        should_cancel=stop.is_set)))
    thread.start()
    pids = tmp_path / "pids.json"
    started: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 120
        while not pids.is_file():
            assert thread.is_alive(), f"the run ended before it started: {result}"
            assert time.monotonic() < deadline, "the run never started on the worker"
            time.sleep(0.05)
        started = json.loads(pids.read_text())
        assert _alive(started["pid"]) and _alive(started["child"])
        os.kill(worker, 9)
        deadline = time.monotonic() + 20
        while _alive(started["pid"]) or _alive(started["child"]):
            assert time.monotonic() < deadline, f"the dead worker left {started} running"
            time.sleep(0.05)
    finally:
        stop.set()  # the retry waits for the restarted worker (a minute or two at load 20)
        thread.join(600)
        for pid in {*started.values(), *(json.loads(pids.read_text()).values()
                                         if pids.is_file() else ())}:
            if _alive(pid):
                os.kill(pid, 9)
    assert not thread.is_alive(), "run_dask never returned after the cancel"
    (out,) = result
    assert out.state in ("cancelled", "failed"), out


def test_prewarm_starts_each_workers_zygote_before_its_first_run(context) -> None:
    """A cluster of its own (the module's worker has its zygote already): prewarm_workers
    starts the zygote on every worker, and the first run forks from that same one."""
    from aiwarden.training.dask_executor import prewarm_workers

    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIWARDEN_TRAINING_PRELOAD", "numpy,aiwarden.training.worker")
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=":0") as c, \
                distributed.Client(c) as client:
            assert set(client.run(_zygote_pid).values()) == {None}  # none before
            started = prewarm_workers(c.scheduler_address, EgressPolicy("127.0.0.1"))
            assert sorted(started) == sorted(client.scheduler_info()["workers"])
            assert all(started.values())
            before = client.run(_zygote_pid)
            assert None not in before.values() and len(set(before.values())) == 2
            out = run_dask(Job(context, entry="tests.training.pipelines:train_ok"), client)
            assert out.state == "succeeded", out.reason
            assert client.run(_zygote_pid) == before  # no other zygote was started
            assert set(client.run(_zygote_restarts).values()) == {0}


def _zygote_pid() -> int | None:
    from aiwarden.training import dask_executor

    return dask_executor._WARM[0].pid if dask_executor._WARM else None


def _zygote_restarts() -> int:
    from aiwarden.training import dask_executor

    return dask_executor._WARM[0].restarts
