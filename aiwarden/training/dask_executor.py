"""The distributed executor: the same run, on a worker of an existing Dask cluster.

Why Dask (docs/training.md says more): it is pure Python, installs with pip next to the
scientific stack users already have, a ``LocalCluster`` is a real cluster in a test, and a
production scheduler is one address. Ray would bring a second object store and a daemon per
node for the same job.

How: the run's inputs travel with the task (Parquet bytes), so workers need no shared file
system; on the worker the task runs the *local* executor (its own subprocess, time and memory
limits), so a pipeline behaves the same on both executors; the artifact and the log come back
as bytes into the server's run directory. Cancelling sets a named Dask ``Event`` that the
worker polls. Workers must be able to import the pipeline's code (install it on them, as any
Dask job needs).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from aiwarden.training.contract import TrainingContext, TrainingResult
from aiwarden.training.local_executor import LOG_FILE, Job, Outcome, run_local

__all__ = ["run_dask"]

EXTRA = "pip install 'aiwarden[dask]'"
_CANCEL_POLL = 1.0


def _client(address: Any) -> Any:
    try:
        from distributed import Client
    except ImportError:
        raise ImportError(f"The dask executor needs the dask extra: {EXTRA}") from None
    if isinstance(address, Client):
        return address
    return Client(address, timeout="10s", set_as_default=False)


def _remote(payload: dict[str, Any]) -> dict[str, Any]:
    """On the worker: unpack the inputs, run the local executor, ship back what it made."""
    from distributed import Event

    cancel = Event(payload["cancel_event"])
    last = [0.0, False]

    def should_cancel() -> bool:  # one scheduler round trip a second, not every poll
        now = time.monotonic()
        if now - last[0] >= _CANCEL_POLL:
            last[0], last[1] = now, cancel.is_set()
        return bool(last[1])

    with tempfile.TemporaryDirectory(prefix="aiwarden-run-") as tmp:
        root = Path(tmp)
        for name, data in payload["files"].items():
            (root / name).write_bytes(data)
        ctx = TrainingContext(**(payload["context"] | {
            "train_path": str(root / "train.parquet"),
            "holdout_path": str(root / "holdout.parquet"), "run_dir": str(root / "run")}))
        job = Job(ctx, entry=payload["entry"], command=payload["command"],
                  time_limit=payload["time_limit"], memory_mb=payload["memory_mb"])
        out = run_local(job, should_cancel=should_cancel)
        artifact = None
        if out.result is not None:
            artifact = Path(out.result.artifact).read_bytes()
        log = root / "run" / LOG_FILE
        return {"outcome": out.to_dict(), "artifact": artifact,
                "artifact_name": Path(out.result.artifact).name if out.result else None,
                "log": log.read_bytes()[-1_000_000:] if log.is_file() else b""}


def run_dask(job: Job, address: Any, *, should_cancel: Callable[[], bool] = lambda: False,
             margin: float = 60.0) -> Outcome:
    """Run ``job`` on the cluster at ``address`` (or a ``distributed.Client``); the outcome
    has the artifact and the log written into ``job.context.run_dir`` like a local run's."""
    client = _client(address)
    owned = client is not address
    run_dir = Path(job.context.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        from distributed import Event

        event_name = f"aiwarden-cancel-{job.context.run_id}-{time.time_ns()}"
        cancel = Event(event_name, client=client)
        payload = {"context": asdict(job.context), "entry": job.entry,
                   "command": job.command, "time_limit": job.time_limit,
                   "memory_mb": job.memory_mb, "cancel_event": event_name,
                   "files": {"train.parquet": Path(job.context.train_path).read_bytes(),
                             "holdout.parquet": Path(job.context.holdout_path).read_bytes()}}
        future = client.submit(_remote, payload, pure=False, key=f"aiwarden-run-{event_name}")
        while not future.done():
            if should_cancel():
                cancel.set()
            if time.monotonic() - started > job.time_limit + margin:
                future.cancel()
                return Outcome("failed", f"the cluster did not finish the run within its time "
                               f"limit of {job.time_limit:g} s (+{margin:g} s)", None,
                               time.monotonic() - started, 0.0, None)
            time.sleep(0.1)
        try:
            shipped = future.result()
        except Exception as exc:  # the worker died, or the task could not run
            return Outcome("failed", f"the cluster could not run it: {type(exc).__name__}: "
                           f"{exc}", None, time.monotonic() - started, 0.0, None)
    finally:
        if owned:
            client.close()
    (run_dir / LOG_FILE).write_bytes(shipped["log"])
    o = shipped["outcome"]
    result = None
    if o["result"] is not None and shipped["artifact"] is not None:
        local = run_dir / shipped["artifact_name"]
        local.write_bytes(shipped["artifact"])
        result = replace(TrainingResult.from_dict(o["result"]), artifact=str(local))
    return Outcome(o["state"], o["reason"], result, o["seconds"], o["peak_memory_mb"],
                   o["exit_code"])
