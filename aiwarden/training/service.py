"""The training loop of a server: triggers queue runs, runs pass the gates, candidates canary.

One ``TrainingService`` per server process. Runs are claimed through the database (any
process may take a queued run, exactly one does), executed in a thread of their own that
drives the executor's subprocess, beat while they run, and end exactly once; a run whose
process died is found by its stale heartbeat and ended as failed, once. Every step is kept on
the run (``result.steps``) and told to ``on_event`` (the server puts it on the model's open
incident and notifies the model's routes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from aiwarden.egress import EgressDenied, EgressPolicy
from aiwarden.engine.schema import Role, Task
from aiwarden.errors import AiwardenError, ParameterError
from aiwarden.monitoring.windows import parse_duration
from aiwarden.store import models_repo as repo
from aiwarden.training import store
from aiwarden.training.orphans import kill_run_processes
from aiwarden.training.run_steps import RunSteps
from aiwarden.training.spec import PipelineSpec
from aiwarden.training.triggers import alert_runs, scheduled_runs
from aiwarden.training.warm import DEFAULT_PRELOAD, WarmRunner

__all__ = ["TrainingService"]

log = logging.getLogger("aiwarden.training")

Event = Callable[[str, str, Mapping[str, Any]], None]


class TrainingService:
    def __init__(self, monitor: Any, registry: Any, *, run_root: str | Path, holder: str,
                 policies: Any = None, on_event: Event | None = None, max_parallel: int = 2,
                 heartbeat: float = 2.0, stale_after: float = 60.0,
                 dask_client: Any = None, warm: bool = True,
                 preload: tuple[str, ...] | None = None, egress: Any = None) -> None:
        self.monitor, self.registry, self.policies = monitor, registry, policies
        self.run_root = Path(run_root)
        self.holder = holder
        self.on_event = on_event
        self.max_parallel = max_parallel
        self.heartbeat, self.stale_after = heartbeat, stale_after
        self.dask_client = dask_client
        # entry points fork from one zygote that has the scientific stack imported (started
        # in the background once a pipeline with an entry point exists, :meth:`prewarm`;
        # aiwarden/training/warm.py); None: a fresh interpreter per run
        self.warm: WarmRunner | None = (
            WarmRunner(DEFAULT_PRELOAD if preload is None else preload) if warm else None)
        # the Dask scheduler is an outbound connection like any other (aiwarden/egress.py)
        self.egress = egress if egress is not None else EgressPolicy.from_env()
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._prewarmed = float("-inf")  # when prewarm last started a zygote (time.monotonic)
        self._dask_prewarmed: set[str] = set()  # schedulers whose workers were asked to
        self._scanned = False  # the first tick looked for Dask pipelines to prewarm

    # ------------------------------------------------------------ pipelines
    def _model_id(self, model: str) -> int:
        with self.monitor.db.read() as conn:
            return repo.get_model(conn, model).id

    def put_pipeline(self, spec: PipelineSpec | Mapping[str, Any], actor: str) -> PipelineSpec:
        spec = spec if isinstance(spec, PipelineSpec) else PipelineSpec.model_validate(spec)
        self.check_executor(spec)
        model_id = self._model_id(spec.model)
        with self.monitor.db.write(model_id) as conn:
            store.put_pipeline(conn, model_id, spec.model_dump(mode="json", by_alias=True),
                               actor, time.time())
        if _forks_locally(spec):
            self.prewarm(want=True)
        self._prewarm_dask(spec)
        return spec

    def _prewarm_dask(self, spec: PipelineSpec) -> None:
        """A Dask pipeline with an entry point: start its workers' zygotes, once per
        scheduler per server process, in a thread (connecting may take seconds); a failure
        only means the first run on each worker pays the imports."""
        address = spec.executor.address if spec.executor.kind == "dask" else None
        if spec.entry is None or not address:
            return
        with self._lock:
            if address in self._dask_prewarmed:
                return
            self._dask_prewarmed.add(address)

        def start() -> None:
            from aiwarden.training.dask_executor import prewarm_workers

            try:
                log.info("zygotes started on %s's workers: %s", address,
                         prewarm_workers(address, self.egress))
            except Exception as exc:  # its first run on each worker pays the imports
                log.warning("could not start the zygotes on %s's workers: %s", address, exc)

        threading.Thread(target=start, name="aiwarden-dask-prewarm", daemon=True).start()

    def prewarm(self, want: bool | None = None) -> bool:
        """Start the zygote's imports in the background when a pipeline here runs an entry
        point on the local executor (``want``: known already), so that the first run of a
        server does not pay them (~11 s on a loaded machine); a zygote that died since is
        replaced now rather than by the next run. The first call also starts the zygotes of
        the Dask workers its pipelines name. True when one is starting or ready."""
        if self._stopping.is_set():
            return False
        scan = want is None and not self._scanned
        if self.warm is not None and self.warm.pid is not None and not scan:
            return True
        if want is None and not scan and time.monotonic() - self._prewarmed < 60:
            return False  # it died soon after a start: not a restart every tick
        if want is None:
            with self.monitor.db.read() as conn:
                specs = [PipelineSpec.model_validate(r.spec) for r in store.list_pipelines(conn)]
            if scan:
                self._scanned = True
                for spec in specs:
                    self._prewarm_dask(spec)
            want = any(_forks_locally(spec) for spec in specs)
        if self.warm is None or not want:
            return False
        if self.warm.pid is not None:
            return True
        self._prewarmed = time.monotonic()
        return self.warm.prestart()

    def check_executor(self, spec: PipelineSpec, where: str = "") -> None:
        """A Dask scheduler the egress policy refuses by its literal address (loopback,
        private, metadata) is refused when the pipeline is declared, the field named; a host
        name is resolved and checked on every run."""
        if spec.executor.kind != "dask" or not spec.executor.address:
            return
        from aiwarden.training.dask_executor import scheduler_target

        field = f"{where}.executor.address" if where else "executor.address"
        try:
            _, host, port = scheduler_target(spec.executor.address)
        except ParameterError as exc:
            raise ParameterError(str(exc).replace("executor.address", field, 1),
                                 field) from None
        try:
            self.egress.check_host(host, port)
        except EgressDenied as exc:
            raise ParameterError(f"{field}: the egress policy refuses {exc.address} "
                                 f"({exc.reason}); list it in AIWARDEN_EGRESS_ALLOW (the "
                                 "egress_allow setting) to train there", field) from None

    def pipeline(self, model: str) -> PipelineSpec | None:
        model_id = self._model_id(model)
        with self.monitor.db.read() as conn:
            row = store.get_pipeline(conn, model_id)
        return None if row is None else PipelineSpec.model_validate(row.spec)

    def delete_pipeline(self, model: str) -> bool:
        model_id = self._model_id(model)
        with self.monitor.db.write(model_id) as conn:
            return store.delete_pipeline(conn, model_id)

    # ----------------------------------------------------------------- runs
    def retrain(self, model: str, actor: str, reason: str | None = None) -> store.RunRow:
        """A manual run: no cooldown (someone asked), still one per model at a time."""
        spec = self.pipeline(model)
        if spec is None:
            raise ParameterError(f"Model {model!r} has no training pipeline; PUT one first "
                                 "(or declare it under pipelines: and aiwarden apply).",
                                 "model")
        model_id = self._model_id(model)
        with self.monitor.db.write(model_id) as conn:
            run = store.enqueue(conn, model_id, trigger="manual",
                                detail={"by": actor, "reason": reason or "by hand"},
                                spec=spec.model_dump(mode="json", by_alias=True),
                                now=time.time(), dedupe_key="manual")
            if run is None:
                (run,) = [r for r in store.list_runs(conn, model_id, states=store.ACTIVE)
                          if r.dedupe_key == "manual"][:1]
        self._event(model, f"Retraining run #{run.id} queued by {actor}", {"run": run.id})
        return run

    def runs(self, model: str | None = None, limit: int = 50) -> list[store.RunRow]:
        model_id = None if model is None else self._model_id(model)
        with self.monitor.db.read() as conn:
            return store.list_runs(conn, model_id, limit=limit)

    def run(self, run_id: int) -> store.RunRow:
        with self.monitor.db.read() as conn:
            run = store.get_run(conn, run_id)
        if run is None:
            raise repo.NotFound(f"No training run {run_id}.", "run")
        return run

    def cancel(self, run_id: int, actor: str) -> store.RunRow:
        with self.monitor.db.write() as conn:
            run = store.request_cancel(conn, run_id, time.time(), actor)
        if run is None:
            raise repo.NotFound(f"No training run {run_id}.", "run")
        if run.cancel_requested or run.state == "cancelled":
            self._event(str(run.spec.get("model")), f"Run #{run.id}: {run.reason}",
                        {"run": run.id})
        return run

    def on_transitions(self, transitions: Iterable[tuple[Mapping[str, str], Any]]
                       ) -> list[store.RunRow]:
        """Queue the runs the cycle's firing alerts call for (cooldown and dedupe hold)."""
        fired: dict[str, list[str]] = {}
        for labels, tr in transitions:
            if getattr(tr, "kind", None) in ("firing", "escalated") and labels.get("model"):
                fired.setdefault(labels["model"], []).append(labels.get("rule", ""))
        queued = []
        now = time.time()
        for model, rules in fired.items():
            try:
                model_id = self._model_id(model)
            except repo.NotFound:
                continue
            with self.monitor.db.write(model_id) as conn:
                row = store.get_pipeline(conn, model_id)
                if row is None:
                    continue
                spec = PipelineSpec.model_validate(row.spec)
                last = store.last_started(conn, model_id, ("alert", "schedule", "labels"))
                for trigger, detail, key in alert_runs(spec, rules, now, last):
                    run = store.enqueue(conn, model_id, trigger=trigger, detail=detail,
                                        spec=row.spec, now=now, dedupe_key=key)
                    if run is not None:
                        queued.append(run)
        for run in queued:
            self._event(run.spec["model"], f"Retraining run #{run.id} queued: "
                        f"{', '.join(run.trigger_detail.get('rules', []))} fired",
                        {"run": run.id})
        return queued

    # ----------------------------------------------------------------- loop
    def tick(self, now: float | None = None, *, lead: bool = True) -> None:
        """Scheduled and label-volume triggers and promotions (by the lead process only:
        two processes must not both queue one cron slot), dead runs, then start what is
        queued (any process may: claiming is a compare-and-set)."""
        now = time.time() if now is None else now
        self.prewarm()
        if lead:
            self._scheduled(now)
            self._promote_due(now)
        self._recover(now)
        self.start_queued()

    def _scheduled(self, now: float) -> None:
        with self.monitor.db.read() as conn:
            rows = store.list_pipelines(conn)
        for row in rows:
            spec = PipelineSpec.model_validate(row.spec)
            labels = (self._labels_count(row.model_id) if spec.triggers.label_volume
                      else 0)
            with self.monitor.db.write(row.model_id) as conn:
                current = store.get_pipeline(conn, row.model_id)
                if current is None:
                    continue
                last = store.last_started(conn, row.model_id, ("alert", "schedule", "labels"))
                runs, state = scheduled_runs(spec, dict(current.state), now, last, labels)
                if state != current.state:
                    store.save_pipeline_state(conn, row.model_id, state)
                for trigger, detail, key in runs:
                    run = store.enqueue(conn, row.model_id, trigger=trigger, detail=detail,
                                        spec=current.spec, now=now, dedupe_key=key)
                    if run is not None:
                        self._event(spec.model, f"Retraining run #{run.id} queued: "
                                    f"{detail.get('why', trigger)}", {"run": run.id})

    def _labels_count(self, model_id: int) -> int:
        from sqlalchemy import func, select

        from aiwarden.store.tables import labels

        with self.monitor.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(labels).where(
                labels.c.model_id == model_id)).scalar_one())

    def _recover(self, now: float) -> None:
        with self.monitor.db.write() as conn:
            stale = store.stale_running(conn, now - self.stale_after)
            for run in stale:
                if run.holder == self.holder and run.id in self._threads:
                    continue  # ours and alive: its thread beats
                # its process outlived the server (a session of its own): kill what is left
                killed = kill_run_processes(run.run_dir or "")
                left = (f"; its training process (pid {', '.join(map(str, killed))}) was "
                        "killed" if killed else "")
                if store.finish(conn, run.id, run.holder, "failed", "the server process "
                                f"running it stopped (last heartbeat {now - run.heartbeat_at:.0f}"
                                f" s ago){left}; queue a new run", now):
                    log.warning("training run %s of model %s: holder %s is gone", run.id,
                                run.model_id, run.holder)

    def start_queued(self) -> None:
        with self._lock:
            self._threads = {k: t for k, t in self._threads.items() if t.is_alive()}
            free = self.max_parallel - len(self._threads)
        if free <= 0 or self._stopping.is_set():
            return
        with self.monitor.db.read() as conn:
            queued = list(reversed(store.list_runs(conn, states=("queued",), limit=100)))
        for run in queued:
            if free <= 0:
                break
            spec = PipelineSpec.model_validate(run.spec)
            run_dir = str(self.run_root / f"run-{run.id}")
            with self.monitor.db.write(run.model_id) as conn:
                if store.running_count(conn, run.model_id) >= spec.triggers.max_concurrent:
                    continue
                if not store.claim(conn, run.id, self.holder, time.time(), run_dir):
                    continue
            thread = threading.Thread(target=self._execute, args=(run.id,),
                                      name=f"aiwarden-training-{run.id}", daemon=True)
            with self._lock:
                self._threads[run.id] = thread
            thread.start()
            free -= 1

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Every run this process started has ended (tests and shutdown)."""
        deadline = time.monotonic() + timeout
        for thread in list(self._threads.values()):
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads.values())

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self.wait_idle(timeout)
        if self.warm is not None:
            self.warm.close()

    # -------------------------------------------------------------- one run
    def _execute(self, run_id: int) -> None:
        run = self.run(run_id)
        steps = RunSteps(self, run)
        try:
            state, reason = steps.run_all()
        except AiwardenError as exc:  # thin data, a schema without a label...: said as is
            state, reason = "failed", str(exc)
        except Exception as exc:  # a bug of ours must still end the run, with the reason
            log.exception("training run %s failed", run_id)
            state, reason = "failed", f"internal error: {type(exc).__name__}: {exc}"
        steps.finish(state, reason)

    def _event(self, model: str, text: str, detail: Mapping[str, Any]) -> None:
        log.info("%s: %s", model, text)
        if self.on_event is not None:
            try:
                self.on_event(model, text, detail)
            except Exception:  # the run's record is the source of truth; a listener may fail
                log.exception("reporting a training event of %s failed", model)

    # ------------------------------------------------------------ promotion
    def _promote_due(self, now: float) -> None:
        """Canary candidates whose hold passed with the challenger alias still on them take
        the champion alias; one the rollback moved away is marked rolled back."""
        with self.monitor.db.read() as conn:
            candidates = [r for r in store.list_runs(conn, states=("succeeded",), limit=200)
                          if (r.result.get("promotion") or {}).get("state") == "canary"]
        for run in candidates:
            promo = dict(run.result["promotion"])
            model = run.spec["model"]
            aliases = self.registry.aliases(model)
            newer = self._run_of_version(run.model_id, aliases.get("challenger"))
            if newer is not None and newer.id > run.id:  # a later candidate took its place
                promo |= {"state": "superseded", "by": newer.id, "at": now}
                text = (f"Version {run.version} (run #{run.id}) was replaced in the canary by "
                        f"version {newer.version} (run #{newer.id})")
            elif aliases.get("challenger") != run.version:
                promo |= {"state": "rolled_back", "at": now}
                text = (f"Version {run.version} (run #{run.id}) left the canary before its "
                        "hold ended: not promoted")
            elif now >= promo["hold_until"]:
                self.registry.set_alias(model, "champion", run.version, actor="aiwarden-training",
                                        reason=f"run #{run.id}: canary held for {promo['hold']}")
                if self.policies is not None:
                    self.policies.set(model, {"mode": "off"}, actor="aiwarden-training",
                                      reason=f"run #{run.id} promoted")
                promo |= {"state": "promoted", "at": now}
                text = f"Version {run.version} (run #{run.id}) promoted to champion"
            else:
                continue
            with self.monitor.db.write(run.model_id) as conn:
                store.update_result(conn, run.id, run.result | {"promotion": promo})
            self._event(model, text, {"run": run.id, "version": run.version,
                                      "promotion": promo["state"]})


    def _run_of_version(self, model_id: int, version: str | None) -> store.RunRow | None:
        if version is None:
            return None
        with self.monitor.db.read() as conn:
            return next((r for r in store.list_runs(conn, model_id, states=("succeeded",),
                                                    limit=200) if r.version == version), None)


def _forks_locally(spec: PipelineSpec) -> bool:
    """The pipeline's runs fork from this server's zygote (an entry point, local executor)."""
    return spec.entry is not None and spec.executor.kind == "local"


def default_metric(task: str, has_scores: bool) -> str:
    if task == Task.REGRESSION:
        return "mae"
    if task == Task.BINARY and has_scores:
        return "roc_auc"
    return "accuracy"


def features_of(schema: Any) -> tuple[str, list[str]]:
    """(the label's column name, the features): the schema's target, else ``label``, the
    name late labels are joined under."""
    target = schema.column_for(Role.TARGET) or "label"
    return target, [c.name for c in schema.columns if c.role == Role.FEATURE]


def seconds(value: str) -> float:
    return parse_duration(value, "duration")

