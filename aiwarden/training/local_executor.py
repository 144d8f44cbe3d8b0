"""The default executor: one process per run, with a time limit, a memory limit and cancel.

Why a subprocess: user training code must never run inside the server (a crash, a leak or
a ``sys.exit`` would take monitoring down with it), and only a process of its own can be
held to a memory limit (``RLIMIT_AS``: an allocation past it fails with ``MemoryError``) and
killed whole when it overstays (its own session, so its children go too).

An entry point runs *warm* when the caller passes a :class:`~aiwarden.training.warm.
WarmRunner`: the process is forked from a zygote that has imported the scientific stack
already (milliseconds, not the seconds of a fresh interpreter), with the same session, limits,
log and result; a command, or a zygote that cannot take the run, runs cold as before.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aiwarden.training._deathsig import death_signal_hook
from aiwarden.training.contract import (
    CONTEXT_ENV,
    CONTEXT_FILE,
    RESULT_FILE,
    TrainingContext,
    TrainingResult,
)

if TYPE_CHECKING:
    from aiwarden.training.warm import WarmRunner

__all__ = ["Job", "Outcome", "run_local"]

_log = logging.getLogger("aiwarden.training")

LOG_FILE = "log.txt"
_POLL = 0.05


@dataclass(frozen=True)
class Job:
    """One run to execute: its context (written to the run directory) and what to call."""

    context: TrainingContext
    entry: str | None = None
    command: tuple[str, ...] | None = None
    time_limit: float = 3600.0
    memory_mb: int | None = None


@dataclass(frozen=True)
class Outcome:
    """How a run ended: ``succeeded`` with a result, or ``failed`` / ``cancelled`` with the
    reason; what it cost either way."""

    state: str
    reason: str
    result: TrainingResult | None
    seconds: float
    peak_memory_mb: float
    exit_code: int | None

    def to_dict(self) -> dict[str, object]:
        return {"state": self.state, "reason": self.reason, "seconds": round(self.seconds, 3),
                "peak_memory_mb": round(self.peak_memory_mb, 1), "exit_code": self.exit_code,
                "result": None if self.result is None else self.result.to_dict()}


def _argv(job: Job) -> list[str]:
    if job.entry is not None:
        return [sys.executable, "-m", "aiwarden.training.worker", "--entry", job.entry,
                job.context.run_dir]
    assert job.command is not None
    return list(job.command)


def _limits(memory_mb: int | None, die_with_parent: bool) -> Callable[[], None] | None:
    """What the child does between fork and exec: the memory limit, and the death signal
    (``die_with_parent``: this thread waits for the child until it ends, so the kernel sends
    SIGKILL only when this process dies)."""
    hook = death_signal_hook(signal.SIGKILL) if die_with_parent else None
    if memory_mb is None:
        return hook
    size = memory_mb * 2 ** 20

    def apply() -> None:  # in the child, before exec
        if hook is not None:
            hook()
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    return apply


def run_local(job: Job, *, should_cancel: Callable[[], bool] = lambda: False,
              on_start: Callable[[int], None] | None = None,
              warm: WarmRunner | None = None, die_with_parent: bool = False) -> Outcome:
    """Run ``job`` to its end; never raises for anything the training code does. An entry
    point is forked from ``warm``'s zygote when given (cold when it cannot).
    ``die_with_parent`` (a Dask worker, where nobody would clean up after a dead one): a
    cold run's process is killed by the kernel when this process dies (Linux); a warm
    run's goes with ``warm``'s zygote when that runner was made ``die_with_parent``."""
    run_dir = Path(job.context.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONTEXT_FILE).write_text(job.context.to_json())
    (run_dir / RESULT_FILE).unlink(missing_ok=True)
    env = dict(os.environ, **{CONTEXT_ENV: str(run_dir / CONTEXT_FILE),
                              "PYTHONPATH": os.pathsep.join(
                                  [os.getcwd(), *filter(None, [os.environ.get("PYTHONPATH")])])})
    started = time.monotonic()
    if warm is not None and job.entry is not None:
        from aiwarden.training.warm import WarmUnavailable

        try:
            return _run_warm(job, run_dir, env, warm, started, should_cancel, on_start)
        except WarmUnavailable as exc:
            _log.warning("training run %s runs cold: %s", job.context.run_id, exc)
    with open(run_dir / LOG_FILE, "ab") as log:
        try:
            proc = subprocess.Popen(_argv(job), cwd=os.getcwd(), env=env, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True,
                                    preexec_fn=_limits(job.memory_mb, die_with_parent))
        except OSError as exc:
            return Outcome("failed", f"could not start {_argv(job)[0]!r}: {exc}", None, 0.0,
                           0.0, None)
        if on_start is not None:
            on_start(proc.pid)
        status, rusage, stopped = _wait(proc, started, job.time_limit, should_cancel)
    seconds = time.monotonic() - started
    peak = rusage.ru_maxrss / 1024 if rusage is not None else 0.0  # KiB on Linux
    code = os.waitstatus_to_exitcode(status) if status is not None else None
    if stopped == "cancel":
        return Outcome("cancelled", "cancelled while running", None, seconds, peak, code)
    if stopped == "time":
        return Outcome("failed", f"exceeded its time limit of {job.time_limit:g} s and was "
                       "killed", None, seconds, peak, code)
    return _judge(job, run_dir, code, seconds, peak)


def _run_warm(job: Job, run_dir: Path, env: dict[str, str], warm: WarmRunner,
              started: float, should_cancel: Callable[[], bool],
              on_start: Callable[[int], None] | None) -> Outcome:
    """The warm path: the zygote forks the run process, its shepherd reports how it ended."""
    from aiwarden.training.orphans import kill_run_processes
    from aiwarden.training.warm import WarmStopped

    assert job.entry is not None

    def halt() -> str | None:
        if time.monotonic() - started > job.time_limit:
            return "time"
        return "cancel" if should_cancel() else None

    try:
        run = warm.start({"run_dir": str(run_dir), "log": str(run_dir / LOG_FILE),
                          "entry": job.entry, "cwd": os.getcwd(), "env": env,
                          "memory_mb": job.memory_mb}, halt=halt)
    except WarmStopped as stop:  # while the zygote was still importing: nothing ran
        seconds = time.monotonic() - started
        if stop.why == "cancel":
            return Outcome("cancelled", "cancelled before it started", None, seconds, 0.0,
                           None)
        return Outcome("failed", f"exceeded its time limit of {job.time_limit:g} s before "
                       "it started (the warm runner was still importing)", None, seconds,
                       0.0, None)
    if on_start is not None:
        on_start(run.pid)
    stopped = None
    try:
        while (report := run.poll(_POLL)) is None:
            if stopped is None:
                if time.monotonic() - started > job.time_limit:
                    stopped = "time"
                elif should_cancel():
                    stopped = "cancel"
                if stopped is not None:  # the shepherd has not reaped it: the pid is its
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(run.pid, signal.SIGKILL)
    finally:
        run.close()
    seconds = time.monotonic() - started
    if not report:  # the shepherd died: whatever is left of the run goes, found by marker
        kill_run_processes(str(run_dir))
        return Outcome("failed", "the warm runner's process watching it died; the run was "
                       "killed", None, seconds, 0.0, None)
    status = int(report["status"])
    peak = float(report["maxrss_kb"]) / 1024
    code = os.waitstatus_to_exitcode(status)
    if stopped == "cancel":
        return Outcome("cancelled", "cancelled while running", None, seconds, peak, code)
    if stopped == "time":
        return Outcome("failed", f"exceeded its time limit of {job.time_limit:g} s and was "
                       "killed", None, seconds, peak, code)
    return _judge(job, run_dir, code, seconds, peak)


def _wait(proc: subprocess.Popen[bytes], started: float, limit: float,
          should_cancel: Callable[[], bool]) -> tuple[int | None, object, str | None]:
    """(wait status, rusage of the child, why it was stopped early or None)."""
    stopped = None
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return status, rusage, stopped
        if stopped is None:
            if time.monotonic() - started > limit:
                stopped = "time"
            elif should_cancel():
                stopped = "cancel"
            if stopped is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(_POLL)


def _judge(job: Job, run_dir: Path, code: int | None, seconds: float, peak: float) -> Outcome:
    def failed(reason: str) -> Outcome:
        return Outcome("failed", reason, None, seconds, peak, code)

    path = run_dir / RESULT_FILE
    if not path.is_file():
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            hint = (f" (memory limit {job.memory_mb} MB)" if job.memory_mb else "")
            return failed(f"killed by {name}{hint} before reporting a result")
        return failed(f"exited with code {code} without writing {RESULT_FILE}"
                      + ("; see its log (aiwarden runs log)" if code else ""))
    try:
        report = json.loads(path.read_text())
    except ValueError as exc:
        return failed(f"{RESULT_FILE} is not JSON: {exc}")
    if not isinstance(report, dict):
        return failed(f"{RESULT_FILE} must hold a JSON object")
    if job.command is not None and "ok" not in report:  # a command writes the result itself
        report = {"ok": True, "result": report}
    if not report.get("ok"):
        error = str(report.get("error") or "failed without saying why")
        if report.get("kind") == "memory":
            return failed(f"exceeded its memory limit of {job.memory_mb} MB ({error})")
        return failed(f"the training function raised {error}")
    try:
        result = TrainingResult.from_dict(report.get("result") or {})
    except (TypeError, ValueError) as exc:
        return failed(f"returned no usable result: {exc}")
    artifact = Path(result.artifact)
    artifact = artifact if artifact.is_absolute() else run_dir / artifact
    if not artifact.is_file():
        return failed(f"returned no artifact: {result.artifact!r} does not exist")
    # resolved against the run directory, as the worker does for a function's result
    result = TrainingResult(**(result.to_dict() | {"artifact": str(artifact)}))
    return Outcome("succeeded", "trained", result, seconds, peak, code)
