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

The scheduler is an outbound connection like any other: its address is resolved and checked
against the egress policy (aiwarden/egress.py; a loopback or private scheduler must be listed
in ``AIWARDEN_EGRESS_ALLOW``) and a ``tcp://`` client connects to the checked address, never
to the name again. The training process on the worker is killed when the run is cancelled,
and also when nobody waits for the task any more (the server died or closed its client: the
scheduler releases the task, which the worker marks cancelled), since Dask itself never stops
a running task. A worker that dies outright (SIGKILL, the OOM killer) takes its training
processes with it: no server sees that host to clean up after it (aiwarden/training/
_deathsig.py; Linux). Dask then retries the task on another worker, as it does any task
whose worker died (``distributed.scheduler.allowed-failures``); the run's time limit holds.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from aiwarden.egress import EgressDenied, EgressPolicy
from aiwarden.errors import ParameterError
from aiwarden.training.contract import TrainingContext, TrainingResult
from aiwarden.training.local_executor import LOG_FILE, Job, Outcome, run_local

__all__ = ["prewarm_workers", "run_dask"]

EXTRA = "pip install 'aiwarden[dask]'"
_CANCEL_POLL = 1.0
_SCHEMES = ("tcp", "tls")
_DEFAULT_PORT = 8786
_WARM: list[Any] = []  # this worker process's zygote (aiwarden/training/warm.py), made once


def scheduler_target(address: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a scheduler address; ParameterError naming
    ``executor.address`` when it is not ``tcp://host:port`` or ``tls://host:port``."""
    scheme, sep, rest = address.strip().partition("://")
    if not sep:
        scheme, rest = "tcp", address.strip()
    if scheme not in _SCHEMES:
        raise ParameterError(f"executor.address: {address!r} must be tcp://host:port or "
                             "tls://host:port (the Dask scheduler)", "executor.address")
    host, port = rest, _DEFAULT_PORT
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port_text = tail.removeprefix(":")
    elif rest.count(":") == 1:
        host, _, port_text = rest.partition(":")
    else:
        port_text = ""
    try:
        port = int(port_text) if port_text else _DEFAULT_PORT
    except ValueError:
        raise ParameterError(f"executor.address: {address!r} has a port that is not a "
                             "number", "executor.address") from None
    if not host or not 0 < port < 65536:
        raise ParameterError(f"executor.address: {address!r} needs a host and a port in "
                             "1-65535", "executor.address")
    return scheme, host, port


def _denied(address: str, exc: EgressDenied) -> str:
    return (f"executor.address {address}: the egress policy refuses {exc.address} "
            f"({exc.reason}); list it in AIWARDEN_EGRESS_ALLOW (the egress_allow setting), "
            "e.g. the scheduler's address or network")


def check_address(address: str, egress: EgressPolicy) -> str:
    """The address to connect to: the scheduler's host resolved and every address checked
    against ``egress`` (:class:`EgressDenied` when none is allowed); ``tcp://`` goes to the
    checked IP itself, ``tls://`` keeps the name its certificate is for."""
    scheme, host, port = scheduler_target(address)
    allowed = egress.resolve(host, port)
    if scheme == "tls":
        return address
    ip = allowed[0]
    return f"tcp://[{ip}]:{port}" if ":" in ip else f"tcp://{ip}:{port}"


def _client(address: Any) -> Any:
    try:
        from distributed import Client
    except ImportError:
        raise ImportError(f"The dask executor needs the dask extra: {EXTRA}") from None
    if isinstance(address, Client):
        return address
    return Client(address, timeout="10s", set_as_default=False)


def _released(worker: Any, key: Any) -> bool:
    """Nobody wants this task any more: its future was cancelled or its client is gone (the
    scheduler then releases the task and the worker marks the running task cancelled)."""
    ts = worker.state.tasks.get(key)
    return ts is None or ts.state in ("cancelled", "released", "forgotten")


def _warm_runner(wanted: bool) -> Any:
    if not wanted:
        return None
    if not _WARM:
        import os

        from aiwarden.training.warm import DEFAULT_PRELOAD, WarmRunner

        # what the worker's zygote imports: the server's setting, read on the worker
        listed = os.environ.get("AIWARDEN_TRAINING_PRELOAD", "")
        preload = tuple(filter(None, (m.strip() for m in listed.split(",")))) or DEFAULT_PRELOAD
        _WARM.append(WarmRunner(preload, die_with_parent=True))
    return _WARM[0]


def _prestart_worker() -> bool:
    """On a worker: start its zygote's imports now (in the background), not in its first run."""
    return bool(_warm_runner(True).prestart())


def prewarm_workers(address: Any, egress: EgressPolicy | None = None) -> dict[str, bool]:
    """Start the zygote on every worker of the cluster at ``address`` (checked against
    ``egress`` as a run's is) or of a ``distributed.Client``, so that a worker's first run
    forks instead of paying the imports (21 s measured on a loaded worker); a worker that
    joins later starts its own on its first run. Returns each worker's answer."""
    if isinstance(address, str):
        address = check_address(address, egress or EgressPolicy.from_env())
    client = _client(address)
    try:
        return {str(w): bool(ok) for w, ok in client.run(_prestart_worker).items()}
    finally:
        if client is not address:
            client.close()


def _remote(payload: dict[str, Any]) -> dict[str, Any]:
    """On the worker: unpack the inputs, run the local executor, ship back what it made."""
    from distributed import Event, get_worker

    worker = get_worker()
    key = worker.get_current_task()
    cancel = Event(payload["cancel_event"])
    last = [0.0, False]

    def should_cancel() -> bool:  # one scheduler round trip a second, not every poll
        now = time.monotonic()
        if _released(worker, key):
            return True
        if now - last[0] >= _CANCEL_POLL:
            try:
                last[0], last[1] = now, cancel.is_set()
            except Exception:  # the scheduler is unreachable: nobody can take the result
                last[0], last[1] = now, True
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
        out = run_local(job, should_cancel=should_cancel,
                        warm=_warm_runner(payload.get("warm", True)), die_with_parent=True)
        artifact = None
        if out.result is not None:
            artifact = Path(out.result.artifact).read_bytes()
        log = root / "run" / LOG_FILE
        return {"outcome": out.to_dict(), "artifact": artifact,
                "artifact_name": Path(out.result.artifact).name if out.result else None,
                "log": log.read_bytes()[-1_000_000:] if log.is_file() else b""}


def run_dask(job: Job, address: Any, *, should_cancel: Callable[[], bool] = lambda: False,
             margin: float = 60.0, egress: EgressPolicy | None = None,
             warm: bool = True) -> Outcome:
    """Run ``job`` on the cluster at ``address`` (or a ``distributed.Client``, the caller's
    own connection); the outcome has the artifact and the log written into
    ``job.context.run_dir`` like a local run's. An address is checked against ``egress``
    (``AIWARDEN_EGRESS_ALLOW`` when None) first. ``warm``: entry points fork from a zygote
    on the worker (aiwarden/training/warm.py)."""
    if isinstance(address, str):
        try:
            address = check_address(address, egress or EgressPolicy.from_env())
        except EgressDenied as exc:
            return Outcome("failed", _denied(address, exc), None, 0.0, 0.0, None)
        except (ParameterError, OSError) as exc:
            return Outcome("failed", f"executor.address {address}: {exc}", None, 0.0, 0.0,
                           None)
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
                   "memory_mb": job.memory_mb, "cancel_event": event_name, "warm": warm,
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
