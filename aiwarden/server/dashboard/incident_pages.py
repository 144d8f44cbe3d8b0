"""Incidents: the list, one incident with its timeline and RCA, and what people do about it
(acknowledge, assign, comment, resolve, silence, roll back), through ``IncidentService``
and the notification center exactly as the REST API does."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from aiwarden.alerting.pipeline import RCA_ACTION
from aiwarden.errors import ParameterError
from aiwarden.incidents.lifecycle import TRANSITIONS, Status
from aiwarden.server.dashboard import rollback
from aiwarden.server.dashboard.pages import registry_or_none
from aiwarden.server.dashboard.render import iso, page
from aiwarden.server.dashboard.web import PageRoute, form, is_htmx, page_requires, viewer
from aiwarden.server.incident_routes import IncidentId
from aiwarden.store.models_repo import NotFound

__all__ = ["incident_context", "router"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)
_ACTIONS = {"acknowledge": Status.ACKNOWLEDGED, "mitigate": Status.MITIGATED,
            "resolve": Status.RESOLVED, "decline": Status.DECLINED}
SILENCE_FOR = {"1h": 3600, "4h": 4 * 3600, "24h": 86400, "7d": 7 * 86400}


@router.get("/incidents", dependencies=[page_requires("read")], response_class=HTMLResponse)
async def incidents_page(request: Request, status: str = "open",
                         model: str | None = None) -> Response:
    viewer(request)
    svc = request.app.state.incidents
    if status not in ("open", "all", *(s.value for s in Status)):
        raise ParameterError(f"status: expected open, all or one of "
                             f"{[s.value for s in Status]}; got {status!r}.", "status")
    found = await run_in_threadpool(
        svc.list_incidents, model=model or None, open_only=status == "open",
        status=None if status in ("open", "all") else [status], limit=500)
    return page(request, "incidents.html", {"incidents": found, "status": status,
                                            "model": model, "statuses": list(Status)})


def _suspects_chart(suspects: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not suspects:
        return None
    top = suspects[:8]
    return {"id": "suspects", "kind": "hbars", "title": "Suspects, ranked", "unit": "",
            "max": 1, "categories": [f"{s['kind']}: {s['name']}" for s in top],
            "series": [{"name": "score", "data": [s["score"] for s in top]}]}


def _slices_chart(suspects: list[dict[str, Any]]) -> dict[str, Any] | None:
    found = [s["evidence"] for s in suspects if s["kind"] == "slice"
             and "metric_value" in s.get("evidence", {})][:5]
    if not found:
        return None
    what = "unsafe" if "examples" in found[0] else "error"  # an LLM's (aiwarden.rca.llm)
    return {"id": "suspect-slices", "kind": "hbars", "title": f"Failing slices: {what} rate",
            "unit": "%", "categories": [e["description"] for e in found], "series": [
                {"name": "in the slice", "color": "#D55E00",
                 "data": [round(100 * e["metric_value"], 2) for e in found]},
                {"name": "elsewhere", "color": "#9aa4b1",
                 "data": [round(100 * e["rest_value"], 2) for e in found]}]}


def _is_llm(request: Request, model: str) -> bool:
    try:
        return bool(request.app.state.monitor.model(model).task == "text_generation")
    except NotFound:  # a deleted model: the ordinary link, whose page says so
        return False


def incident_context(request: Request, incident_id: int) -> dict[str, Any]:
    """The incident, its timeline (oldest first), the RCA attached to it and what the
    viewer may do next."""
    svc = request.app.state.incidents
    inc = svc.get(incident_id)
    timeline = svc.timeline(incident_id)
    entry = next((e for e in reversed(timeline)
                  if e.kind == "action" and e.detail.get("text") == RCA_ACTION), None)
    rca = entry.detail if entry is not None else None
    suspects = (rca or {}).get("suspects", [])
    # the RCA looked at the hour before it ran: its drift suspects' evidence is that window
    window = f"range=1h&end={iso(entry.at)}" if entry is not None else "range=1h"
    drift = next((s["name"] for s in suspects if s["kind"] == "drift"), None)
    end = None if inc.is_open else iso((inc.resolved_at or inc.declined_at or
                                        inc.created_at) + 1800)
    evidence = "/models/{}?range=6h{}{}".format(
        inc.model, f"&end={end}" if end else "", f"&feature={drift}" if drift else "")
    if _is_llm(request, inc.model):  # rates, thresholds and the flagged conversations
        evidence = "/models/{}/llm?range=6h{}".format(inc.model, f"&end={end}" if end else "")
    registry = registry_or_none(request)
    versions = {a.labels["version"] for a in inc.alerts if a.labels.get("version")}
    offers = (rollback.offers(registry, inc.model, versions or None)
              if registry is not None else [])
    return {"inc": inc, "timeline": timeline, "rca": rca, "suspects": suspects,
            "suspects_chart": _suspects_chart(suspects), "evidence": evidence,
            "rca_window": window, "slices_chart": _slices_chart(suspects),
            "next": [a for a, s in _ACTIONS.items() if s in TRANSITIONS[inc.status]],
            "targets": [o for o in offers if "previous" in o],
            "not_offered": [o for o in offers if "previous" not in o],
            "silence_for": list(SILENCE_FOR)}


@router.get("/incidents/{incident_id}", dependencies=[page_requires("read")],
            response_class=HTMLResponse)
async def incident_page(request: Request, incident_id: IncidentId) -> Response:
    viewer(request)
    ctx = await run_in_threadpool(incident_context, request, incident_id)
    return page(request, "incident.html", ctx)


def _done(request: Request, incident_id: int, notice: str | None = None) -> Response:
    """After an action: the refreshed incident section for htmx, else back to the page."""
    if is_htmx(request):
        ctx = incident_context(request, incident_id)
        return page(request, "_incident_main.html", {**ctx, "notice": notice})
    return RedirectResponse(f"/incidents/{incident_id}", status_code=303)


@router.post("/incidents/{incident_id}/act/{action}", dependencies=[page_requires("operate")],
             response_class=HTMLResponse)
async def act(request: Request, incident_id: IncidentId, action: str) -> Response:
    who = viewer(request)
    data = await form(request)
    if action not in _ACTIONS:
        raise ParameterError(f"action: expected one of {list(_ACTIONS)}; got {action!r}.",
                             "action")
    svc = request.app.state.incidents
    await run_in_threadpool(getattr(svc, action), incident_id, who.actor)
    if data.get("note"):
        await run_in_threadpool(svc.comment, incident_id, data["note"], who.actor)
    return _done(request, incident_id, f"Incident {_ACTIONS[action].value}.")


@router.post("/incidents/{incident_id}/comment", dependencies=[page_requires("operate")],
             response_class=HTMLResponse)
async def comment(request: Request, incident_id: IncidentId) -> Response:
    who = viewer(request)
    data = await form(request)
    await run_in_threadpool(request.app.state.incidents.comment, incident_id,
                            data.get("text", ""), who.actor)
    return _done(request, incident_id, "Comment added.")


@router.post("/incidents/{incident_id}/assign", dependencies=[page_requires("operate")],
             response_class=HTMLResponse)
async def assign(request: Request, incident_id: IncidentId) -> Response:
    who = viewer(request)
    data = await form(request)
    assignee = data.get("assignee") or None
    if assignee is not None and len(assignee) > 200:
        raise ParameterError("assignee: at most 200 characters.", "assignee")
    await run_in_threadpool(request.app.state.incidents.assign, incident_id, assignee,
                            who.actor)
    return _done(request, incident_id, f"Assigned to {assignee}." if assignee else
                 "Unassigned.")


@router.post("/incidents/{incident_id}/silence", dependencies=[page_requires("operate")],
             response_class=HTMLResponse)
async def silence(request: Request, incident_id: IncidentId) -> Response:
    """Mute the incident's notifications (its model, or one rule of it) for a while; the
    incident itself stays open."""
    who = viewer(request)
    data = await form(request)
    svc = request.app.state.incidents
    inc = await run_in_threadpool(svc.get, incident_id)
    seconds = SILENCE_FOR.get(data.get("duration", ""), 0)
    if not seconds:
        raise ParameterError(f"duration: expected one of {list(SILENCE_FOR)}.", "duration")
    matchers = [f"model={inc.model}"]
    if data.get("scope") == "rule":
        matchers.append(f"rule={inc.key}")
    body = {"matchers": matchers, "ends_at": time.time() + seconds,
            "comment": data.get("comment") or f"from incident #{incident_id}"}
    made = await run_in_threadpool(request.app.state.notifications.add_silence, body,
                                   who.actor)
    text = f"Silenced {', '.join(matchers)} for {data['duration']}"
    await run_in_threadpool(svc.record_action, incident_id, text, who.actor, None,
                            {"silence": made["id"]})
    return _done(request, incident_id, text + ".")


@router.get("/incidents/{incident_id}/rollback", dependencies=[page_requires("operate")],
            response_class=HTMLResponse)
async def confirm_rollback(request: Request, incident_id: IncidentId, alias: str) -> Response:
    """The confirmation step: what will move where, and a reason to give."""
    viewer(request)
    inc = await run_in_threadpool(request.app.state.incidents.get, incident_id)
    target = rollback.target(registry_or_none(request), inc.model, alias)
    return page(request, "_rollback_confirm.html", {
        "target": target, "action": f"/incidents/{incident_id}/rollback",
        "reason": f"Rollback from incident #{incident_id}: {inc.title}",
        "swap": "#incident-main", "cancel": f"/incidents/{incident_id}"})


@router.post("/incidents/{incident_id}/rollback", dependencies=[page_requires("operate")],
             response_class=HTMLResponse)
async def do_rollback(request: Request, incident_id: IncidentId) -> Response:
    who = viewer(request)
    data = await form(request)
    svc = request.app.state.incidents
    inc = await run_in_threadpool(svc.get, incident_id)
    started = time.time()
    moved = await run_in_threadpool(rollback.perform, request.app.state,
                                    registry_or_none(request), inc.model, data, who.actor)
    timeline = await run_in_threadpool(svc.timeline, incident_id)
    if not any(e.kind == "action" and e.at >= started - 1 and
               e.detail.get("text") == moved["text"] for e in timeline):
        # the engine records on the model's newest open incident: this one must say it too
        await run_in_threadpool(svc.record_action, incident_id, moved["text"], who.actor,
                                None, moved["detail"])
    return _done(request, incident_id, moved["text"] + ".")
