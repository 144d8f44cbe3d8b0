"""The local executor on real processes, cold (a fresh interpreter per run) and warm (forked
from the zygote, aiwarden/training/warm.py): success, and every way a run can fail, each
ending as failed with its reason; what only the warm path has (zygote survival and restart,
the marker the orphan finder reads)."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiwarden.training.contract import TrainingContext
from aiwarden.training.local_executor import LOG_FILE, Job, run_local
from aiwarden.training.orphans import find_run_processes
from aiwarden.training.warm import WarmRunner

# what the runs here import (no scikit-learn): the zygote's start is the first warm run's wait
PRELOAD = ("numpy", "pandas", "pyarrow.parquet", "aiwarden.training.worker")


@pytest.fixture(scope="module")
def zygote() -> Iterator[WarmRunner]:
    runner = WarmRunner(PRELOAD)
    yield runner
    runner.close()


@pytest.fixture(params=["cold", "warm"])
def warm(request, zygote) -> WarmRunner | None:
    """Every test below runs on both paths: they must read the same."""
    return zygote if request.param == "warm" else None


def _job(ctx: TrainingContext, fn: str, **kw) -> Job:
    return Job(ctx, entry=f"tests.training.pipelines:{fn}", **kw)


def test_a_training_function_runs_in_its_own_process_and_returns_its_artifact(
        context, warm) -> None:
    out = run_local(_job(context, "train_ok"), warm=warm)
    assert out.state == "succeeded", out
    model = json.loads(Path(out.result.artifact).read_text())
    assert model == {"weights": {"amount": 2.5}, "params": {"C": 0.5}}
    assert out.result.train_metrics == {"rows": 4.0} and out.result.holdout_metrics == {
        "rows": 2.0}
    assert out.peak_memory_mb > 10 and out.exit_code == 0


@pytest.mark.parametrize(("fn", "reason"), [
    ("train_raises", "raised RuntimeError: column 'label' is all zeros"),
    ("train_without_artifact", "'never-written.bin' the function returned does not exist"),
    ("train_returns_nothing", "returned NoneType, not a TrainingResult"),
    ("no_such_function", "AttributeError"),
])
def test_a_failing_function_ends_failed_with_its_reason(context, fn, reason, warm) -> None:
    out = run_local(_job(context, fn), warm=warm)
    assert out.state == "failed" and reason in out.reason, out.reason
    assert out.result is None


def test_a_run_past_its_time_limit_is_killed(context, warm) -> None:
    started = time.monotonic()
    out = run_local(_job(context, "train_hangs", time_limit=1.5), warm=warm)
    assert out.state == "failed" and "time limit of 1.5 s" in out.reason
    assert time.monotonic() - started < 10


def test_a_run_past_its_memory_limit_fails_with_the_limit_named(context, warm) -> None:
    out = run_local(_job(context, "train_hogs_memory", memory_mb=1500), warm=warm)
    assert out.state == "failed" and "memory limit of 1500 MB" in out.reason, out.reason


def test_a_running_run_can_be_cancelled(context, warm) -> None:
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    out = run_local(_job(context, "train_hangs"), should_cancel=stop.is_set, warm=warm)
    assert out.state == "cancelled" and out.seconds < 10


def test_a_command_pipeline_gets_the_context_file_and_writes_its_result(context) -> None:
    script = Path(context.run_dir).parent / "train.py"
    script.write_text(
        "import json, os, pathlib\n"
        "ctx = json.loads(pathlib.Path(os.environ['AIWARDEN_TRAINING_CONTEXT']).read_text())\n"
        "run = pathlib.Path(ctx['run_dir'])\n"
        "(run / 'm.bin').write_bytes(b'model')\n"
        "(run / 'result.json').write_text(json.dumps({'artifact': 'm.bin', "
        "'holdout_metrics': {'roc_auc': 0.91}}))\n")
    out = run_local(Job(context, command=(sys.executable, str(script))))
    assert out.state == "succeeded", out.reason
    assert out.result.holdout_metrics == {"roc_auc": 0.91}
    # resolved against the run directory (the server's working directory is elsewhere)
    assert out.result.artifact == str(Path(context.run_dir) / "m.bin")
    crashed = run_local(Job(context, command=(sys.executable, "-c", "import sys; sys.exit(4)")))
    assert crashed.state == "failed" and "exited with code 4" in crashed.reason


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_cancel_kills_the_runs_whole_tree(context, warm) -> None:
    pids = Path(context.run_dir) / "pids.json"
    child: list[int] = []
    started: list[int] = []

    def should_cancel() -> bool:
        if pids.is_file() and not child:
            child.append(json.loads(pids.read_text())["child"])
        return bool(child)

    out = run_local(_job(context, "train_spawns_and_hangs"), should_cancel=should_cancel,
                    on_start=started.append, warm=warm)
    assert out.state == "cancelled", out.reason
    (pid,) = started
    assert not _alive(pid)
    deadline = time.monotonic() + 30
    while _alive(child[0]):  # the run's own child went with its session
        assert time.monotonic() < deadline, f"the run's child {child[0]} survived the cancel"
        time.sleep(0.05)


def test_a_run_that_crashes_is_failed_and_its_log_kept(context, warm) -> None:
    out = run_local(_job(context, "train_segfaults"), warm=warm)
    assert out.state == "failed" and "killed by SIGSEGV" in out.reason, out.reason
    printed = run_local(_job(context, "train_prints_markup"), warm=warm)
    assert printed.state == "failed" and "printed markup, then stopped" in printed.reason
    log = (Path(context.run_dir) / LOG_FILE).read_text()
    assert "<b>not bold</b>" in log and "RuntimeError: printed markup" in log, log


def test_the_zygote_outlives_a_crashed_run_and_is_restarted_when_it_dies(context) -> None:
    runner = WarmRunner(preload=("numpy",))
    try:
        assert run_local(_job(context, "train_segfaults"), warm=runner).state == "failed"
        zygote = runner.pid
        assert zygote is not None and _alive(zygote)  # a run's crash is the run's alone
        ok = run_local(_job(context, "train_ok"), warm=runner)
        assert ok.state == "succeeded" and runner.pid == zygote and runner.restarts == 0
        os.kill(zygote, signal.SIGKILL)
        while _alive(zygote):
            time.sleep(0.05)
        again = run_local(_job(context, "train_ok"), warm=runner)
        assert again.state == "succeeded", again.reason
        assert runner.restarts == 1 and runner.pid not in (None, zygote)
    finally:
        runner.close()
    assert runner.pid is None


def test_a_warm_runs_process_is_found_by_its_marker_and_killed(context, zygote) -> None:
    """/proc shows the zygote's environment for a forked run: the marker must find it."""
    started: list[int] = []
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(run_local(
        _job(context, "train_hangs"), on_start=started.append, warm=zygote)))
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not find_run_processes(context.run_dir):
            assert time.monotonic() < deadline, "the warm run was never found"
            time.sleep(0.05)
        assert find_run_processes(context.run_dir) == started
        assert find_run_processes(str(Path(context.run_dir).parent / "run-other")) == []
    finally:
        for pid in started:
            os.killpg(pid, signal.SIGKILL)
        thread.join(30)
    (out,) = result
    assert out.state == "failed" and "killed by SIGKILL" in out.reason, out.reason
    assert find_run_processes(context.run_dir) == []


def test_a_run_is_cancelled_while_the_zygote_still_imports(context) -> None:
    runner = WarmRunner(preload=("tests.training.slow_import",))
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    try:
        out = run_local(_job(context, "train_ok"), should_cancel=stop.is_set, warm=runner)
        assert (out.state, out.reason) == ("cancelled", "cancelled before it started"), out
        assert runner.pid is not None  # the zygote goes on starting, for the next run
        assert not (Path(context.run_dir) / "result.json").exists()
    finally:
        runner.close()


# a Dask worker's part, in a process of its own that the test kills with SIGKILL
PARENT = """
import sys
from aiwarden.training.contract import TrainingContext
from aiwarden.training.local_executor import Job, run_local
from aiwarden.training.warm import WarmRunner
ctx = TrainingContext.from_file(sys.argv[1])
warm = (WarmRunner(preload=("aiwarden.training.worker",), die_with_parent=True)
        if sys.argv[2] == "warm" else None)
run_local(Job(ctx, entry="tests.training.pipelines:train_spawns_and_hangs"), warm=warm,
          die_with_parent=True)
"""


@pytest.mark.parametrize("path", ["cold", "warm"])
def test_die_with_parent_a_run_dies_with_the_process_that_started_it(
        context, tmp_path: Path, path: str) -> None:
    """Cold: the kernel kills the run process; warm: the zygote's exit makes each shepherd
    kill its run's process group, the run's own child too."""
    import subprocess

    ctx = context.__class__(**{**context.__dict__, "params": {"pid_dir": str(tmp_path)}})
    (tmp_path / "context.json").write_text(ctx.to_json())
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path / "context.json"),
                               path], cwd=os.getcwd())
    pids = tmp_path / "pids.json"
    try:
        deadline = time.monotonic() + 60
        while not pids.is_file():
            assert parent.poll() is None, "the parent ended before the run started"
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.05)
        started = json.loads(pids.read_text())
        assert _alive(started["pid"]) and _alive(started["child"])
        parent.kill()
        parent.wait()
        # cold: only the run process has the death signal (its own children are its own)
        watched = [started["pid"]] + ([started["child"]] if path == "warm" else [])
        deadline = time.monotonic() + 30
        while any(map(_alive, watched)):
            assert time.monotonic() < deadline, f"{path}: the run outlived its parent: {started}"
            time.sleep(0.05)
    finally:
        if parent.poll() is None:
            parent.kill()
        if pids.is_file():
            for pid in json.loads(pids.read_text()).values():
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
