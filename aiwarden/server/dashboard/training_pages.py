"""A model's training runs in the dashboard: the list, one run with its steps, gates and
their evidence, lineage, promotion and the end of its log, and the buttons to retrain now
and to cancel a run (docs/training.md, docs/dashboard.md).

The pages read the same ``TrainingService`` as ``/api/v1/models/{name}/runs`` and
``/api/v1/runs/{id}``; the buttons are same-origin POSTs needing ``operate``, like the API's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from aiwarden.server.dashboard.render import num, page, when
from aiwarden.server.dashboard.web import PageRoute, form, page_requires, viewer
from aiwarden.server.training_routes import training_for
from aiwarden.store.models_repo import Conflict
from aiwarden.training.local_executor import LOG_FILE
from aiwarden.training.store import RunRow

__all__ = ["duration", "first_refusal", "log_tail", "router"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)
_SHOWN = 100  # runs on the list, newest first
_LOG_TAIL = 20_000  # bytes of the log shown on the run page (the API gives 200 kB)
ACTIVE = ("queued", "running")
# the data lineage in the order people read it; other keys follow
_LINEAGE = ("sha256", "rows", "train_rows", "holdout_rows", "holdout", "window",
            "quarantined_rows", "champion", "reference_version")


def duration(seconds: float | None) -> str:
    """'4.2 s', '3 min 05 s', '1 h 02 min'; a dash before the run started."""
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(round(seconds), 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def first_refusal(run: RunRow) -> str | None:
    """Why the run did not pass: the first refusing gate's reason, else the run's reason for
    a failed or cancelled run (a succeeded or active run has none)."""
    refused = next((g for g in run.gates if not g.get("passed")), None)
    if refused is not None:
        return f"{refused.get('gate')}: {refused.get('reason')}"
    if run.state in ("failed", "cancelled", "blocked"):
        return run.reason
    return None


def log_tail(run: RunRow, limit: int = _LOG_TAIL) -> tuple[str | None, bool]:
    """(the last ``limit`` bytes of the training log or None, whether it was cut)."""
    if not run.run_dir:
        return None, False
    path = Path(run.run_dir) / LOG_FILE
    if not path.is_file():
        return None, False
    size = path.stat().st_size
    with open(path, "rb") as f:
        f.seek(max(0, size - limit))
        return f.read().decode("utf-8", "replace"), size > limit


def _text(value: Any, key: str = "") -> str:
    """A lineage or evidence value for people: numbers as the dashboard writes them, epoch
    seconds as times, mappings as ``key: value, key: value``."""
    if value is None:
        return "–"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_text(v, str(k))}" for k, v in value.items()) or "–"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value) or "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if key.endswith(("_event", "_at")) and value > 1e9:
        return when(value)
    return num(value, 4)


def _row(run: RunRow) -> dict[str, Any]:
    return {"id": run.id, "state": run.state, "trigger": run.trigger,
            "detail": run.trigger_detail, "created_at": run.created_at,
            "started_at": run.started_at, "duration": duration(run.seconds),
            "version": run.version, "refusal": first_refusal(run)}


def _runs_context(app: Any, name: str) -> dict[str, Any]:
    app.state.monitor.model(name)  # 404 for an unknown model
    svc = training_for(app)
    spec = svc.pipeline(name)
    runs = svc.runs(name, limit=_SHOWN)
    return {"name": name, "pipeline": None if spec is None else spec.model_dump(
        mode="json", exclude_defaults=True), "runs": [_row(r) for r in runs], "shown": _SHOWN,
        "active": any(r.state in ACTIVE for r in runs)}


def _run_context(app: Any, run_id: int) -> dict[str, Any]:
    run = training_for(app).run(run_id)
    name = str(run.spec.get("model") or run.model_id)
    data = dict(run.data)
    lineage = [(k, _text(data.pop(k), k)) for k in _LINEAGE if k in data]
    lineage += [(k, _text(v, k)) for k, v in sorted(data.items())]
    log, cut = log_tail(run)
    result = dict(run.result)
    return {"name": name, "run": _row(run), "reason": run.reason,
            "cancel_requested": run.cancel_requested, "finished_at": run.finished_at,
            "steps": result.get("steps") or [], "gates": run.gates, "lineage": lineage,
            "code": run.spec.get("entry") or run.spec.get("command"),
            "params": json.dumps(run.spec.get("params") or {}, default=str),
            "metrics": [(f"{k} (computed here)", _text(v)) for k, v in
                        sorted((result.get("metrics") or {}).items())]
            + [(f"{k} (reported by the pipeline)", _text(v)) for k, v in
               sorted((result.get("reported_metrics") or {}).items())],
            "resources": [(k, v) for k, v in (
                ("training time", result.get("seconds") is not None
                 and duration(result["seconds"])),
                ("peak memory", result.get("peak_memory_mb") is not None
                 and f"{result['peak_memory_mb']} MB"),
                ("exit code", result.get("exit_code"))) if v not in (None, False)],
            "promotion": result.get("promotion"), "log": log, "log_cut": cut,
            "log_limit": _LOG_TAIL, "active": run.state in ACTIVE, "text": _text}


@router.get("/models/{name}/runs", dependencies=[page_requires("read")],
            response_class=HTMLResponse)
async def runs_page(request: Request, name: str, notice: str | None = None) -> Response:
    viewer(request)
    ctx = await run_in_threadpool(_runs_context, request.app, name)
    return page(request, "training_runs.html", {**ctx, "notice": notice})


@router.post("/models/{name}/runs", dependencies=[page_requires("operate")],
             response_class=HTMLResponse)
async def retrain_now(request: Request, name: str) -> Response:
    who = viewer(request)
    data = await form(request)  # refused unless same-origin
    reason = (data.get("reason") or "")[:500] or "Retrain now, from the dashboard"
    request.app.state.monitor.model(name)
    svc = training_for(request.app)
    run = await run_in_threadpool(svc.retrain, name, who.actor, reason)
    await run_in_threadpool(svc.start_queued)  # as POST /api/v1/models/{name}/runs does
    notice = f"Run #{run.id} queued by {who.actor}."
    return RedirectResponse(f"/runs/{run.id}?{urlencode({'notice': notice})}",
                            status_code=303)


@router.get("/runs/{run_id}", dependencies=[page_requires("read")],
            response_class=HTMLResponse)
async def run_page(request: Request, run_id: int = PathParam(ge=1, le=2**62),
                   notice: str | None = None) -> Response:
    viewer(request)
    ctx = await run_in_threadpool(_run_context, request.app, run_id)
    return page(request, "training_run.html", {**ctx, "notice": notice})


@router.post("/runs/{run_id}/cancel", dependencies=[page_requires("operate")],
             response_class=HTMLResponse)
async def cancel_run(request: Request, run_id: int = PathParam(ge=1, le=2**62)) -> Response:
    who = viewer(request)
    await form(request)  # refused unless same-origin
    svc = training_for(request.app)
    run = await run_in_threadpool(svc.run, run_id)
    if run.state not in ACTIVE:
        raise Conflict(f"Run #{run_id} has already ended ({run.state}); there is nothing to "
                       "cancel.", "run")
    run = await run_in_threadpool(svc.cancel, run_id, who.actor)
    notice = (f"Run #{run_id} cancelled by {who.actor}." if run.state == "cancelled" else
              f"Cancel of run #{run_id} requested by {who.actor}: its process is stopped "
              "within a heartbeat.")
    return RedirectResponse(f"/runs/{run_id}?{urlencode({'notice': notice})}", status_code=303)
