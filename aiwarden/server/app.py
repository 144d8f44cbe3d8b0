"""The FastAPI application: wiring, lifespan, health and maintenance."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy import text

from aiwarden.alerting.evaluator import EvaluationLoop, Evaluator
from aiwarden.alerting.notifiers import Deliverer
from aiwarden.alerting.notify import NotificationCenter
from aiwarden.alerting.pipeline import AlertPipeline, Heartbeat, Leadership, heartbeat_every
from aiwarden.egress import EgressPolicy
from aiwarden.incidents import IncidentService
from aiwarden.incidents.rollback import Rollbacks
from aiwarden.monitoring.attribution_watch import AttributionLoop, AttributionWatch
from aiwarden.monitoring.segments import check_top_n
from aiwarden.monitoring.service import Monitor, MonitorSettings
from aiwarden.server import errors
from aiwarden.server.access import PUBLIC, requires
from aiwarden.server.admission import Admission, IngestAdmission
from aiwarden.server.alert_routes import router as alert_router
from aiwarden.server.api_models import Ready, Status, answers
from aiwarden.server.auth import Authenticator, FailureLimiter
from aiwarden.server.body import BodyLimit
from aiwarden.server.concept_drift_routes import router as concept_router
from aiwarden.server.confusion_routes import router as confusion_router
from aiwarden.server.dashboard import install_dashboard
from aiwarden.server.docs import install_docs, operation_id
from aiwarden.server.explain_routes import explanations_for
from aiwarden.server.explain_routes import router as explain_router
from aiwarden.server.gateway_routes import close_gateways, gateways_for
from aiwarden.server.gateway_routes import router as gateway_router
from aiwarden.server.guardrail_routes import close_guardrails
from aiwarden.server.guardrail_routes import router as guardrail_router
from aiwarden.server.image_routes import router as image_router
from aiwarden.server.incident_routes import router as incident_router
from aiwarden.server.llm_routes import router as llm_router
from aiwarden.server.notify_routes import router as notify_router
from aiwarden.server.origin import CrossSiteGuard
from aiwarden.server.otlp_routes import router as otlp_router
from aiwarden.server.profile_routes import router as profile_router
from aiwarden.server.prometheus import install_prometheus
from aiwarden.server.quarantine_routes import router as quarantine_router
from aiwarden.server.registry_routes import registry_for
from aiwarden.server.registry_routes import router as registry_router
from aiwarden.server.responses import JSONResponse
from aiwarden.server.rollback_routes import router as rollback_router
from aiwarden.server.routes import router
from aiwarden.server.settings import ServerSettings
from aiwarden.server.training_routes import router as training_router
from aiwarden.server.training_routes import training_for
from aiwarden.store.database import Database

__all__ = ["create_app"]

log = logging.getLogger("aiwarden.server")
logging.getLogger("alembic").setLevel(logging.WARNING)  # readyz checks the revision often


class _Maintenance(threading.Thread):
    """Compacts bucket partials every few seconds and enforces retention and downsamples
    hourly, in the process holding the lease only (``leads``); ticks the notification timers
    (once at start, so a restarted process resumes its outbox at once)."""

    def __init__(self, monitor: Monitor, every: float,
                 also: Callable[[], Any] | None = None,
                 leads: Callable[[], bool] = lambda: True) -> None:
        super().__init__(name="aiwarden-maintenance", daemon=True)
        self.monitor, self.every, self.also, self.leads = monitor, every, also, leads
        self.stop = threading.Event()
        self.retained_at = 0.0  # when this process last ran retention (time.monotonic)

    def run(self) -> None:
        if self.also is not None:
            try:
                self.also()
            except Exception:
                log.exception("notification tick failed")
        while not self.stop.wait(self.every):
            try:
                if self.also is not None:
                    self.also()  # notification timers (group_wait, repeat_interval)
                leads = self.leads()
                if leads:  # the others would list every model's keys only to find them done
                    merged = self.monitor.compact()
                    if merged:
                        log.debug("compacted %d partial key(s) (pid %d)", merged, os.getpid())
                due = not self.retained_at or time.monotonic() - self.retained_at >= 3600
                if due and leads:
                    self.retained_at = time.monotonic()
                    self.monitor.enforce_retention()
                    self.monitor.downsample()
            except Exception:  # keep the thread alive; the next tick retries
                log.exception("maintenance pass failed")


def _training_tick(app: Any) -> None:
    """Cron and label-volume triggers (by the lead process), dead runs, queued runs; only
    once a pipeline or a run exists (the registry is not made for nothing)."""
    svc = getattr(app.state, "training", None)
    if svc is None:
        from aiwarden.training import store

        with app.state.monitor.db.read() as conn:
            if not store.list_pipelines(conn) and not store.list_runs(conn, limit=1):
                return
        svc = training_for(app)
    svc.tick(lead=app.state.pipeline.lead())


def create_app(settings: ServerSettings | None = None,
               on_started: Callable[[], None] | None = None) -> FastAPI:
    settings = settings or ServerSettings.from_env()
    db = Database(settings.url)
    monitor = Monitor(db, MonitorSettings(bucket_seconds=settings.bucket_seconds,
                                          retention_days=settings.retention_days,
                                          minute_retention_days=(
                                              settings.minute_retention_days),
                                          hour_retention_days=settings.hour_retention_days,
                                          tile_cache_bytes=int(settings.cache_mb * 2**20),
                                          segment_top_n=check_top_n(settings.segment_top_n),
                                          multivariate_rows=settings.multivariate_rows,
                                          multivariate_max_columns=(
                                              settings.multivariate_max_columns),
                                          embedding_model=settings.embedding_model))
    if settings.llm_evaluators:  # read now: a broken file stops the start, naming the field
        from aiwarden.llm.evaluators.external import load_external

        monitor.llm_evaluators = load_external(settings.llm_evaluators,
                                               EgressPolicy(settings.egress_allow))
    auth = Authenticator(db, open_when_no_keys=settings.loopback, limiter=FailureLimiter(
        settings.auth_failures, settings.auth_failure_window))
    evaluator = Evaluator(monitor, lease_ttl=settings.lease_ttl)
    incidents = IncidentService(db, reopen_window=settings.incident_reopen_window)
    notifications = NotificationCenter(db, Deliverer(
        base_delay=min(1.0, settings.notify_max_delay), max_delay=settings.notify_max_delay),
        egress=EgressPolicy(settings.egress_allow), secrets_dir=settings.secrets_folder)
    # Only the process holding the evaluator lease notifies; one without an evaluation loop
    # takes part only when an evaluation it was asked to run took the lease.
    leadership = Leadership(db, evaluator.holder, settings.lease_ttl,
                            take=settings.evaluate_every > 0)
    if leadership.alive is not None:  # PostgreSQL: cycles take the lease as beats do
        evaluator.lease = leadership.check
    # the registry is made on first use (registry_for), so the lambda looks it up late
    rollbacks = Rollbacks(monitor, registry=lambda: registry_for(app))
    pipeline = AlertPipeline(monitor, incidents, notifications, leadership=leadership,
                             rollbacks=rollbacks, lock=evaluator.lock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db.migrate()
        notifications.load()
        if not auth.any_keys():
            if not settings.loopback:
                raise RuntimeError(
                    f"Refusing to listen on {settings.host} without an API key: create one with "
                    "`aiwarden keys create NAME --scopes admin`, or bind to 127.0.0.1.")
            log.warning("No API keys exist: the API is open to anyone who can reach "
                        "%s:%s (loopback only).", settings.host, settings.port)
        # retention on the lease holder; a process that never takes the lease (its
        # evaluation loop off) runs it too, or a store served only by such would keep all
        pipeline.start()  # the hand-over mark of alert events (docs/server.md)
        maintenance = _Maintenance(monitor, settings.compact_every,
                                   also=lambda: (pipeline.tick(), _training_tick(app)),
                                   leads=lambda: pipeline.leading or not leadership.take)
        maintenance.start()
        # the lease renewed apart from cycles: a dead leader is replaced within its TTL
        # (on PostgreSQL at the next beat, through the holder's session lock)
        heartbeat = Heartbeat(pipeline.beat, heartbeat_every(settings.lease_ttl,
                                                             postgres=not db.is_sqlite))
        alerts = EvaluationLoop(evaluator, settings.evaluate_every, after=after_cycle)
        attribution = AttributionLoop(monitor.attribution,
                                      tick=max(5.0, min(30.0, settings.evaluate_every)))
        notifications.deliverer.start()
        if settings.evaluate_every > 0:
            heartbeat.start()
            alerts.start()
            attribution.start()  # scheduled SHAP checks, apart from the alert cycle
        app.state.ready = True
        if on_started is not None:
            on_started()
        try:
            yield
        finally:
            maintenance.stop.set()
            heartbeat.stop.set()
            alerts.stop.set()
            attribution.stop.set()
            maintenance.join(timeout=10)
            # every thread that touches the store ends before its pool is disposed: one
            # still at work after dispose() opened a connection nobody closed
            for thread, limit in ((alerts, 30), (heartbeat, 5), (attribution, 30)):
                if thread.is_alive():
                    thread.join(timeout=limit)
            notifications.deliverer.stop(timeout=5)
            close_gateways(app)  # queued prediction events reach monitoring first
            close_guardrails(app)  # and queued guardrail events
            if getattr(app.state, "training", None) is not None:
                app.state.training.stop()  # running runs are killed with their server
            try:  # what is still queued stays in the outbox for whoever notifies next
                pipeline.release()
            except Exception:
                log.exception("could not hand the alert lease over")
            db.dispose()

    app = FastAPI(title="aiwarden", version="0.1.0", lifespan=lifespan, docs_url=None,
                  redoc_url=None,
                  default_response_class=JSONResponse, generate_unique_id_function=operation_id,
                  description="Keep production ML models honest. See docs/api.md.")
    app.state.monitor, app.state.auth, app.state.settings = monitor, auth, settings
    app.state.evaluator, app.state.incidents = evaluator, incidents
    app.state.pipeline, app.state.notifications = pipeline, notifications
    app.state.rollbacks = rollbacks

    def _switch_gateways(name: str) -> None:
        if getattr(app.state, "gateways", None) is not None:  # only if this process serves
            gateways_for(app).reload(name)

    pipeline.after_rollback = _switch_gateways
    pipeline.importance = lambda model, version: explanations_for(app).reference_importance(
        model, version)
    monitor.attribution = AttributionWatch(explanations_for(app), evaluator.holder)

    def after_cycle(report: Any) -> Any:
        touched = pipeline.after_cycle(report)
        if report.transitions and pipeline.lead():  # alert triggers of training pipelines
            training_for(app).on_transitions(report.transitions)
        return touched

    app.state.after_cycle = after_cycle
    app.state.ready = False
    # innermost: a write beyond the admitted work is refused (429) before its body is read
    app.state.admission = Admission(
        settings.ingest_max_inflight, settings.ingest_max_per_model, settings.ingest_max_queue,
        settings.ingest_max_wait_ms / 1000)
    app.add_middleware(IngestAdmission, admission=app.state.admission)
    app.add_middleware(BodyLimit, max_bytes=int(settings.max_body_mb * 1024 * 1024))
    # outermost: a foreign page's request is refused before anything reads it
    app.add_middleware(CrossSiteGuard, loopback_only=settings.loopback,
                       allowed_hosts=settings.host_list, allowed_origins=settings.origin_list)
    errors.install(app)
    install_docs(app)
    install_prometheus(app)
    app.include_router(router, prefix="/api/v1")
    app.include_router(alert_router, prefix="/api/v1")
    app.include_router(quarantine_router, prefix="/api/v1")
    app.include_router(concept_router, prefix="/api/v1")
    app.include_router(confusion_router, prefix="/api/v1")
    app.include_router(image_router, prefix="/api/v1")
    app.include_router(incident_router, prefix="/api/v1")
    app.include_router(notify_router, prefix="/api/v1")
    app.include_router(registry_router, prefix="/api/v1")
    install_dashboard(app)  # the web dashboard at / (docs/dashboard.md)
    app.include_router(rollback_router, prefix="/api/v1")
    app.include_router(gateway_router, prefix="/api/v1")
    app.include_router(llm_router, prefix="/api/v1")
    app.include_router(guardrail_router, prefix="/api/v1")
    app.include_router(training_router, prefix="/api/v1")
    app.include_router(explain_router, prefix="/api/v1")
    app.include_router(profile_router, prefix="/api/v1")
    app.include_router(otlp_router)  # OTLP/HTTP's default path, /v1/traces (docs/llm.md)

    @app.get("/healthz", tags=["service"], responses=answers(Status),
             dependencies=[requires(PUBLIC)])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["service"], dependencies=[requires(PUBLIC)],
             responses=answers(Ready) | {503: {"model": Ready, "description": "Not ready."}})
    def readyz() -> JSONResponse:
        try:
            with db.read() as conn:
                conn.execute(text("SELECT 1"))
            at_head = db.at_head()
        except Exception as exc:  # the database is down: say so, do not crash
            return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, 503)
        if not (app.state.ready and at_head):
            return JSONResponse({"status": "starting"}, 503)
        return JSONResponse({"status": "ready", "database": db.engine.dialect.name})

    return app
