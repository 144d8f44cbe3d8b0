"""A model's quarantined rows in the dashboard: the field and the reason, the row as sent,
and buttons to replay (corrected or as stored), release or drop them, through the same
code as ``/api/v1/models/{name}/quarantine/...`` (forms are same-origin only)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from aiwarden.errors import ParameterError
from aiwarden.monitoring import quarantine as q
from aiwarden.server.dashboard.render import page
from aiwarden.server.dashboard.web import PageRoute, form, page_requires, viewer

__all__ = ["router"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)
_SHOWN = 200  # rows on the page, newest first
_ACTIONS = ("replay", "release", "drop")


def _context(state: Any, name: str, field: str | None) -> dict[str, Any]:
    mon = state.monitor
    m = mon.model(name)
    with mon.db.read() as conn:
        rows = q.list_rows(conn, m.id, field=field or None, limit=_SHOWN)
        fields = sorted({r.field or "" for r in q.list_rows(conn, m.id, limit=10_000)})
    # a row whose id was accepted since (sent again, corrected) links to its explained page
    pids = [r.prediction_id for r in rows if r.prediction_id]
    accepted = set(mon.events_by_id(name, pids)["table"].column("prediction_id")
                   .to_pylist()) if pids else set()
    return {"name": name, "rows": [r.to_dict(parsed=True) | {
        "pretty": json.dumps(r.row, indent=2, default=str),
        "accepted": r.prediction_id in accepted} for r in rows],
        "fields": fields, "field": field, "shown": _SHOWN}


@router.get("/models/{name}/quarantine", dependencies=[page_requires("read")],
            response_class=HTMLResponse)
async def quarantine_page(request: Request, name: str, field: str | None = None,
                          notice: str | None = None) -> Response:
    viewer(request)
    ctx = await run_in_threadpool(_context, request.app.state, name, field)
    return page(request, "quarantine.html", {**ctx, "notice": notice})


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


@router.post("/models/{name}/quarantine", dependencies=[page_requires("operate")],
             response_class=HTMLResponse)
async def quarantine_act(request: Request, name: str) -> Response:
    viewer(request)
    data = await form(request)  # refused unless same-origin
    ids_text = (await request.form()).getlist("id")
    action = data.get("action", "")
    if action not in _ACTIONS:
        raise ParameterError(f"action: expected one of {list(_ACTIONS)}.", "action")
    try:
        ids = [int(i) for i in ids_text]
    except ValueError:
        raise ParameterError("id: expected quarantined row ids.", "id") from None
    if not ids:
        raise ParameterError("id: tick at least one row.", "id")
    mon = request.app.state.monitor
    if action == "drop":
        out = await run_in_threadpool(q.drop, mon, name, ids)
        notice = f"Dropped {len(out['dropped'])} row(s)."
    else:
        sets = ({data["path"]: _value(data.get("value", ""))} if data.get("path")
                else None)
        res = await run_in_threadpool(lambda: q.replay(mon, name, ids, sets=sets,
                                                       release=action == "release"))
        notice = (f"{action.capitalize()}: {len(res.replayed)} of {res.requested} row(s) left "
                  f"quarantine ({res.accepted} accepted, {res.duplicates} duplicate(s))")
        if res.still_quarantined:
            notice += f"; {len(res.still_quarantined)} still quarantined: " + "; ".join(
                f"{s['field']}: {s['reason']}" for s in res.still_quarantined[:3])
        if res.gone:
            notice += f"; {len(res.gone)} no longer in quarantine"
        notice += "."
    back = {"notice": notice} | ({"field": data["field"]} if data.get("field") else {})
    return RedirectResponse(f"/models/{quote(name, safe='')}/quarantine?{urlencode(back)}",
                            status_code=303)
