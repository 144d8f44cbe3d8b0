"""Training API: a model's pipeline, its runs, a retrain by hand, cancel, a run's log.

A pipeline names code the server will run (in a subprocess, but on this machine): declaring
one is an admin's act, and a server without keys refuses it unless it was started with
``--allow-code-artifacts``, as it refuses pickles (docs/training.md).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from aiwarden._validation import validated
from aiwarden.egress import EgressPolicy
from aiwarden.errors import ParameterError
from aiwarden.server.access import actor, key, monitor, requires
from aiwarden.server.api_models import Status, answers, body_doc
from aiwarden.server.errors import Forbidden
from aiwarden.server.jsonbody import TextBody, huge_int
from aiwarden.server.pipeline_schema import PipelineBody, pipeline_body
from aiwarden.store.models_repo import NotFound
from aiwarden.training.local_executor import LOG_FILE
from aiwarden.training.service import TrainingService
from aiwarden.training.spec import PipelineSpec
from aiwarden.training.store import RunRow

__all__ = ["parse_pipeline", "router", "run_dict", "training_for"]

router = APIRouter(tags=["training"])
_LOCK = threading.Lock()
_LOG_TAIL = 200_000
RunId = Annotated[int, Path(ge=1, le=2**62)]


class RunRequest(TextBody):
    """Why (kept on the run and its timeline)."""

    reason: str | None = Field(None, max_length=500)


class TrainingRun(BaseModel):
    id: int
    model: str
    state: str
    trigger: str
    trigger_detail: dict[str, Any]
    created_at: float
    started_at: float | None
    finished_at: float | None
    seconds: float | None
    reason: str | None
    cancel_requested: bool
    data: dict[str, Any]
    gates: list[dict[str, Any]]
    result: dict[str, Any]
    version: str | None


def training_for(app: Any) -> TrainingService:
    """The app's training service, made on first use (it needs the registry)."""
    svc = getattr(app.state, "training", None)
    if svc is None:
        with _LOCK:
            svc = getattr(app.state, "training", None)
            if svc is None:
                from aiwarden.server.gateway_routes import policies_for
                from aiwarden.server.registry_routes import registry_for

                settings = app.state.settings
                svc = app.state.training = TrainingService(
                    app.state.monitor, registry_for(app),
                    run_root=FilePath(settings.data_dir) / "training-runs",
                    holder=app.state.evaluator.holder, policies=policies_for(app),
                    stale_after=settings.training_stale_after,
                    warm=settings.training_warm,
                    preload=settings._listed(settings.training_preload) or None,
                    egress=EgressPolicy(settings.egress_allow),
                    on_event=lambda m, text, detail: _on_incident(app, m, text, detail))
    return svc


def _on_incident(app: Any, model: str, text: str, detail: Mapping[str, Any]) -> None:
    """A run's steps go on the model's open incident (the one that triggered it, usually);
    how a run ended and a promotion also go to the model's notification routes."""
    incidents = app.state.incidents
    found = incidents.list_incidents(model=model, open_only=True, limit=1)
    if found:
        incidents.record_action(found[0].id, text, "aiwarden-training", detail=dict(detail))
    if "state" in detail or "promotion" in detail:
        bad = detail.get("state") in ("failed", "blocked")
        app.state.pipeline.announce(model, "training", text,
                                    severity="warning" if bad else "info",
                                    labels={"run": str(detail.get("run", ""))},
                                    key=f"training-{detail.get('run')}-{detail.get('state')}")


def parse_pipeline(body: Mapping[str, Any], where: str = "") -> PipelineSpec:
    """A checked pipeline; the error names the field (``where.field`` inside a file)."""
    at = huge_int(dict(body), where)  # params hold any JSON; the store's orjson is 64-bit
    if at is not None:
        raise ParameterError(f"{at}: an integer beyond 64 bits.", at)
    return validated(PipelineSpec, body, where, what="pipeline")


def run_dict(run: RunRow, model: str) -> dict[str, Any]:
    return {"id": run.id, "model": model, "state": run.state, "trigger": run.trigger,
            "trigger_detail": run.trigger_detail, "created_at": run.created_at,
            "started_at": run.started_at, "finished_at": run.finished_at,
            "seconds": run.seconds, "reason": run.reason,
            "cancel_requested": run.cancel_requested, "data": run.data, "gates": run.gates,
            "result": run.result, "version": run.version}


def _model_name(request: Request, run: RunRow) -> str:
    return str(run.spec.get("model") or run.model_id)


def may_run(request: Request, entry: str | None) -> bool:
    """Whether this request may declare a pipeline running ``entry`` (None: a command):
    with a key, on a server started with --allow-code-artifacts, or when the entry is one the
    operator listed in ``trusted_entries`` (the demo's own training)."""
    settings = request.app.state.settings
    return (key(request) is not None or settings.allow_code_artifacts
            or (entry is not None and entry in settings.entry_list))


@router.get("/models/{name}/pipeline", dependencies=[requires("read")],
            responses=answers(PipelineSpec, 404))
def get_pipeline(request: Request, name: str) -> dict[str, Any]:
    monitor(request).model(name)
    spec = training_for(request.app).pipeline(name)
    if spec is None:
        raise NotFound(f"Model {name!r} has no training pipeline.", "model")
    return spec.model_dump(mode="json")


@router.put("/models/{name}/pipeline", dependencies=[requires("admin")],
            responses=answers(PipelineSpec, 404),
            openapi_extra=body_doc(json=PipelineBody, schema=pipeline_body()))
def put_pipeline(request: Request, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """Declare or replace the model's training pipeline (validated; the model must exist)."""
    entry = body.get("entry") if "command" not in body else None
    if not may_run(request, entry if isinstance(entry, str) else None):
        raise Forbidden("This server has no API keys, so it does not accept training "
                        "pipelines: a pipeline runs code on this machine. Create a key "
                        "(`aiwarden keys create NAME --scopes admin`), or start the server "
                        "with --allow-code-artifacts if only you can reach it.", "entry")
    monitor(request).model(name)
    spec = parse_pipeline({**body, "model": name})
    return training_for(request.app).put_pipeline(spec, actor(request)).model_dump(mode="json")


@router.delete("/models/{name}/pipeline", dependencies=[requires("admin")],
               responses=answers(Status, 404))
def delete_pipeline(request: Request, name: str) -> dict[str, str]:
    monitor(request).model(name)
    if not training_for(request.app).delete_pipeline(name):
        raise NotFound(f"Model {name!r} has no training pipeline.", "model")
    return {"status": "deleted"}


@router.post("/models/{name}/runs", dependencies=[requires("operate")], status_code=202,
             responses=answers(TrainingRun, 404, status=202))
async def retrain(request: Request, name: str, body: RunRequest | None = None
                  ) -> dict[str, Any]:
    """Queue a run by hand (it starts at once when a slot is free)."""
    monitor(request).model(name)
    svc = training_for(request.app)
    if await run_in_threadpool(svc.pipeline, name) is None:  # as GET .../pipeline: 404
        raise NotFound(f"Model {name!r} has no training pipeline; PUT one first (or declare "
                       "it under pipelines: and aiwarden apply).", "model")
    run = await run_in_threadpool(svc.retrain, name, actor(request),
                                  body.reason if body else None)
    await run_in_threadpool(svc.start_queued)
    return run_dict(svc.run(run.id), name)


@router.get("/models/{name}/runs", dependencies=[requires("read")],
            responses=answers(list[TrainingRun]))
def list_runs(request: Request, name: str,
              limit: int = Query(50, ge=1, le=500)) -> list[dict[str, Any]]:
    monitor(request).model(name)
    return [run_dict(r, name) for r in training_for(request.app).runs(name, limit=limit)]


@router.get("/runs/{run_id}", dependencies=[requires("read")],
            responses=answers(TrainingRun, 404))
def get_run(request: Request, run_id: RunId) -> dict[str, Any]:
    monitor(request)
    run = training_for(request.app).run(run_id)
    return run_dict(run, _model_name(request, run))


@router.post("/runs/{run_id}/cancel", dependencies=[requires("operate")],
             responses=answers(TrainingRun, 404))
def cancel_run(request: Request, run_id: RunId, body: RunRequest | None = None
               ) -> dict[str, Any]:
    """A queued run ends at once; a running one is killed within a heartbeat."""
    monitor(request)
    run = training_for(request.app).cancel(run_id, actor(request))
    return run_dict(run, _model_name(request, run))


@router.get("/runs/{run_id}/log", dependencies=[requires("read")],
            responses=answers(None, 404, media="text/plain"))
def run_log(request: Request, run_id: RunId) -> PlainTextResponse:
    """The last 200 kB of what the training process printed."""
    monitor(request)
    run = training_for(request.app).run(run_id)
    path = FilePath(run.run_dir or "") / LOG_FILE
    if not run.run_dir or not path.is_file():
        raise NotFound(f"Run {run_id} has no log (it has not started).", "run")
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - _LOG_TAIL))
        text = f.read().decode("utf-8", "replace")
    return PlainTextResponse(text)
