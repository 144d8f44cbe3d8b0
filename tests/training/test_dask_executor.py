"""The same pipelines on a real Dask cluster (a LocalCluster of worker processes)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from aiwarden.training.local_executor import Job

distributed = pytest.importorskip("distributed")

from aiwarden.training.dask_executor import run_dask  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                  dashboard_address=None) as c, distributed.Client(c) as client:
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
