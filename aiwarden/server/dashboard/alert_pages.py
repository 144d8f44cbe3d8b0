"""Alerts and rules: every alert's state, every rule with its last values, and silences
(create, expire) through the notification center, as ``/api/v1/silences`` does."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from aiwarden.errors import ParameterError
from aiwarden.server.dashboard import alertview
from aiwarden.server.dashboard.incident_pages import SILENCE_FOR
from aiwarden.server.dashboard.render import page
from aiwarden.server.dashboard.web import PageRoute, form, is_htmx, page_requires, viewer
from aiwarden.store import models_repo

__all__ = ["router"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)
_PHASE_ORDER = {"firing": 0, "recovering": 1, "pending": 2, "error": 3, "nodata": 4,
                "normal": 5}


def alerts_context(state: Any, model: str | None) -> dict[str, Any]:
    """Alerts worst first, rules with the values their alerts last saw."""
    with state.monitor.db.read() as conn:
        names = {m.id: m.name for m in models_repo.list_models(conn)}
        by_model = alertview.alerts(conn)
        rules = alertview.rules_of(conn, model)
    alerts = [(names.get(mid, "?"), a) for mid, found in by_model.items() for a in found
              if model in (None, names.get(mid))]
    alerts.sort(key=lambda x: (_PHASE_ORDER.get(x[1].phase, 9),
                               0 if x[1].severity == "critical" else 1, x[0], x[1].title))
    by_rule: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for name, a in alerts:
        by_rule[(name, a.rule_name)].append(a)
    rows = []
    for stored, parsed in rules:
        found = [a for (m, r), lst in by_rule.items() for a in lst
                 if r == stored.name and (stored.model in ("*", m))]
        values = [a.state.get("value") for a in found if a.state.get("value") is not None]
        rows.append({"stored": stored, "rule": parsed, "instances": len(found),
                     "active": sum(a.active for a in found),
                     "value": max(values, key=abs) if values else None,
                     "worst": next((a for a in sorted(found, key=lambda a: _PHASE_ORDER.get(
                         a.phase, 9))), None)})
    center = state.notifications
    center.refresh()
    now = time.time()
    silences = sorted(center.silences.to_dict().get("silences", []),
                      key=lambda s: -s["ends_at"])
    return {"alerts": alerts, "rules": rows, "model": model, "models": sorted(names.values()),
            "active_silences": [s for s in silences if s["starts_at"] <= now < s["ends_at"]],
            "past_silences": [s for s in silences if s["ends_at"] <= now][:20],
            "silence_for": list(SILENCE_FOR)}


@router.get("/alerts", dependencies=[page_requires("read")], response_class=HTMLResponse)
async def alerts_page(request: Request, model: str | None = None) -> Response:
    viewer(request)
    ctx = await run_in_threadpool(alerts_context, request.app.state, model or None)
    return page(request, "alerts.html", ctx)


def _silences(request: Request, notice: str, model: str | None) -> Response:
    if is_htmx(request):
        ctx = alerts_context(request.app.state, model)
        return page(request, "_silences.html", {**ctx, "notice": notice})
    back = f"/alerts?model={quote(model)}" if model else "/alerts"
    return RedirectResponse(back + "#silences", status_code=303)


@router.post("/silences", dependencies=[page_requires("operate")], response_class=HTMLResponse)
async def create_silence(request: Request) -> Response:
    who = viewer(request)
    data = await form(request)
    seconds = SILENCE_FOR.get(data.get("duration", ""), 0)
    if not seconds:
        raise ParameterError(f"duration: expected one of {list(SILENCE_FOR)}.", "duration")
    if not data.get("matchers"):
        raise ParameterError("matchers: say what to mute, e.g. model=\"fraud-detector\".",
                             "matchers")
    body = {"matchers": data["matchers"], "ends_at": time.time() + seconds,
            "comment": data.get("comment", "")}
    made = await run_in_threadpool(request.app.state.notifications.add_silence, body,
                                   who.actor)
    return _silences(request, f"Silence {made['id'][:8]} created.", data.get("model") or None)


@router.post("/silences/{silence_id}/expire", dependencies=[page_requires("operate")],
             response_class=HTMLResponse)
async def expire_silence(request: Request, silence_id: str) -> Response:
    viewer(request)
    data = await form(request)
    await run_in_threadpool(request.app.state.notifications.expire_silence, silence_id)
    return _silences(request, f"Silence {silence_id[:8]} expired.", data.get("model") or None)
