"""Serving gateway API v1 (docs/gateway.md): predict, traffic policies, gateway state.

``POST /models/{name}/predict`` answers with the version behind an alias (``champion``
unless ``?alias=``) or the one the model's traffic policy picks, and queues the event for
monitoring in this process. Predicting needs the ``ingest`` scope (it writes events), a
reload ``operate``, setting a policy ``admin`` (docs/api.md, Scopes).
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from aiwarden.gateway import (
    DatabaseSource,
    GatewayHub,
    InvalidRequestError,
    PolicyStore,
    PredictionError,
    monitor_sink,
)
from aiwarden.gateway._rows import MAX_ROWS
from aiwarden.process_usage import Prices
from aiwarden.server.access import actor, requires
from aiwarden.server.api_models import (
    Flushed,
    GatewayState,
    GatewayStats,
    Prediction,
    Predictions,
    Reloaded,
    Traffic,
    TrafficSpec,
    answers,
    body_doc,
)
from aiwarden.server.errors import Malformed
from aiwarden.server.jsonbody import json_body, loads
from aiwarden.server.registry_routes import registry_for
from aiwarden.server.responses import JSONResponse

__all__ = ["close_gateways", "gateways_for", "policies_for", "router"]

router = APIRouter(tags=["gateway"])
_LOCK = threading.Lock()


def policies_for(app: Any) -> PolicyStore:
    store = getattr(app.state, "traffic_policies", None)
    if store is None:
        with _LOCK:
            store = getattr(app.state, "traffic_policies", None)
            if store is None:
                store = app.state.traffic_policies = PolicyStore(registry_for(app))
    return store


def gateways_for(app: Any) -> GatewayHub:
    """The process's gateways, made on first use. Automated rollback calls
    ``gateways_for(app).reload(name)`` after moving an alias: this process switches at
    once, other processes at their next poll (``AIWARDEN_GATEWAY_POLL``)."""
    hub = getattr(app.state, "gateways", None)
    if hub is None:
        policies = policies_for(app)
        with _LOCK:
            hub = getattr(app.state, "gateways", None)
            if hub is None:
                s, monitor = app.state.settings, app.state.monitor
                hub = app.state.gateways = GatewayHub(
                    lambda name: DatabaseSource(policies, name),
                    lambda name: monitor_sink(monitor, name), post_usage=monitor.log_resources,
                    resources_every=s.gateway_resources_every,
                    prices=Prices(s.price_cpu_core_hour, s.price_memory_gib_hour,
                                  s.price_gpu_hour),
                    poll=s.gateway_poll, max_queue=s.gateway_queue,
                    trial_timeout=s.gateway_trial_timeout,
                    serve_timeout=s.gateway_serve_timeout)
    return hub


def close_gateways(app: Any, timeout: float = 10.0) -> None:
    """At shutdown: run queued shadow copies and log queued events, then stop."""
    hub = getattr(app.state, "gateways", None)
    if hub is not None:
        hub.close(timeout)


def _json(body: bytes) -> Any:
    return loads(body)


def _error(exc: PredictionError, hub: GatewayHub, name: str, alias: str) -> JSONResponse:
    return JSONResponse({"detail": {"error": exc.kind, "message": str(exc),
                                    "field": exc.field, "version": exc.version}},
                        exc.status, headers=_headers(hub, name, alias, exc.version))


def _headers(hub: GatewayHub, name: str, alias: str, version: str) -> dict[str, str]:
    gw = hub.get(name, alias)
    return {"X-Aiwarden-Version": version,
            "X-Aiwarden-Events-Dropped": str(gw.events.stats()["dropped"])}


# one row as the gateway reads it (gateway/_rows.py): features required, an id of at most
# 200 characters (text or an integer), tags
_ROW = {"type": "object", "required": ["features"], "properties": {
    "features": {"type": "object", "minProperties": 1},
    "prediction_id": {"anyOf": [{"type": "string", "maxLength": 200}, {"type": "null"},
                                {"type": "integer", "minimum": -2**63, "maximum": 2**63 - 1}]},
    "tags": {"type": "object"}}}
_PREDICT_DOC = {
    "parameters": [
        {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "alias", "in": "query", "required": False,
         "schema": {"type": "string", "default": "champion"}}],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "oneOf": [_ROW, {"type": "object", "required": ["rows"], "properties": {
            "rows": {"type": "array", "items": _ROW, "minItems": 1, "maxItems": MAX_ROWS}},
            "not": {"required": ["features"]}}]}}}},
}


@router.post("/models/{name}/predict", dependencies=[requires("ingest")],
             openapi_extra=_PREDICT_DOC,
             responses=answers(Prediction | Predictions, 409, 503, 504))
async def predict(request: Request) -> JSONResponse:
    """One row ``{"features": {...}, "prediction_id"?, "tags"?}`` or ``{"rows": [...]}``;
    the answer names the version that made each prediction (docs/gateway.md)."""
    # Parameters are read from the request rather than injected, and a model that answers
    # within a millisecond predicts right here on the event loop: together that halves what
    # the server adds to a prediction. Slower models run on the gateway's own thread, and a
    # gateway's first load on the thread pool, so the loop stays free for everyone else.
    name = request.path_params["name"]
    alias = request.query_params.get("alias") or "champion"
    doc = _json(await request.body())
    hub = gateways_for(request.app)
    try:
        gw = hub.peek(name, alias) or await run_in_threadpool(hub.get, name, alias)
        out = await gw.predict_async(doc)
    except InvalidRequestError as exc:
        raise Malformed(str(exc), exc.field) from None
    except PredictionError as exc:
        return _error(exc, hub, name, alias)
    version = out["version"] if isinstance(out, dict) else ",".join(
        sorted({o["version"] for o in out}))
    body = out if isinstance(out, dict) else {"predictions": out}
    headers = _headers(hub, name, alias, version)
    dups = int("duplicate" in out) if isinstance(out, dict) else sum("duplicate" in o
                                                                      for o in out)
    if dups:  # retries of an id served before: monitoring keeps the first event
        headers["X-Aiwarden-Duplicates"] = str(dups)
    return JSONResponse(body, headers=headers)


@router.get("/models/{name}/traffic", dependencies=[requires("read")], responses=answers(Traffic))
def get_traffic(request: Request, name: str) -> dict[str, Any]:
    return policies_for(request.app).get(name)


@router.put("/models/{name}/traffic", dependencies=[requires("admin")], responses=answers(Traffic),
            openapi_extra=body_doc(json=TrafficSpec))
async def put_traffic(request: Request, name: str) -> dict[str, Any]:
    """``{"mode": "canary", "percent": 20, "challenger": "2", "sticky_key"?}``, ``{"mode":
    "shadow", "challenger"}``, ``{"mode": "ab", "weights": {...}}`` or ``{"mode": "off"}``;
    an optional ``reason`` is kept with it."""
    who = actor(request)
    doc = (await json_body(request, TrafficSpec)).model_dump(exclude_unset=True)
    reason = doc.pop("reason", None)
    app = request.app

    def store() -> dict[str, Any]:
        out = policies_for(app).set(name, doc, actor=who, reason=reason)
        gateways_for(app).reload(name)  # this process now; others at their next poll
        return out

    return await run_in_threadpool(store)


@router.get("/models/{name}/gateway", dependencies=[requires("read")],
            responses=answers(GatewayStats))
def gateway_stats(request: Request, name: str) -> dict[str, Any]:
    """This process's gateways of the model: versions served, counts, event queue."""
    return {"model": name, "gateways": gateways_for(request.app).stats(name)}


@router.get("/models/{name}/gateway/state", dependencies=[requires("read")],
            responses=answers(GatewayState))
def gateway_state(request: Request, name: str,
                  since: str | None = Query(None, description="the stamp the caller has, "
                                            "as 'aliases.policy'")) -> dict[str, Any]:
    """What a standalone gateway polls: the stamp alone while it equals ``since``, else
    the stamp with the aliases and the policy."""
    policies = policies_for(request.app)
    source = DatabaseSource(policies, name)
    stamp = source.stamp()
    if since is not None and since == ".".join(map(str, stamp)):
        return {"stamp": list(stamp)}
    return source.state().to_dict()


@router.post("/models/{name}/gateway/reload", dependencies=[requires("operate")],
             responses=answers(Reloaded))
def gateway_reload(request: Request, name: str) -> dict[str, Any]:
    """Re-read aliases and policy now in this process (what a rollback does)."""
    return {"model": name, "reloaded": gateways_for(request.app).reload(name)}


@router.post("/models/{name}/gateway/flush", dependencies=[requires("ingest")],
             responses=answers(Flushed))
def gateway_flush(request: Request, name: str,
                  timeout: float = Query(30.0, gt=0, le=300)) -> dict[str, Any]:
    """Wait until this process's queued events of the model reached monitoring."""
    hub = gateways_for(request.app)
    return {"model": name, "flushed": hub.flush(name, timeout), "gateways": hub.stats(name)}
