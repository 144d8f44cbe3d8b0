"""The local executor on real subprocesses: success, and every way a run can fail, each
ending as failed with its reason."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest

from aiwarden.training.contract import TrainingContext
from aiwarden.training.local_executor import Job, run_local


def _job(ctx: TrainingContext, fn: str, **kw) -> Job:
    return Job(ctx, entry=f"tests.training.pipelines:{fn}", **kw)


def test_a_training_function_runs_in_its_own_process_and_returns_its_artifact(context) -> None:
    out = run_local(_job(context, "train_ok"))
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
def test_a_failing_function_ends_failed_with_its_reason(context, fn, reason) -> None:
    out = run_local(_job(context, fn))
    assert out.state == "failed" and reason in out.reason, out.reason
    assert out.result is None


def test_a_run_past_its_time_limit_is_killed(context) -> None:
    started = time.monotonic()
    out = run_local(_job(context, "train_hangs", time_limit=1.5))
    assert out.state == "failed" and "time limit of 1.5 s" in out.reason
    assert time.monotonic() - started < 10


def test_a_run_past_its_memory_limit_fails_with_the_limit_named(context) -> None:
    out = run_local(_job(context, "train_hogs_memory", memory_mb=1500))
    assert out.state == "failed" and "memory limit of 1500 MB" in out.reason, out.reason


def test_a_running_run_can_be_cancelled(context) -> None:
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    out = run_local(_job(context, "train_hangs"), should_cancel=stop.is_set)
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
