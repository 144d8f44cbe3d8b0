"""The LLM model page (a ``text_generation`` model): volume, latency, tokens, cost,
violation rates against the rules' thresholds, feedback, and the flagged conversations
with their findings highlighted; and one conversation's page.

The flagged list and the conversation are read through the API's own handlers
(``llm_routes``), so the page shows exactly what ``GET /models/{name}/llm-events``
answers: the texts as stored under the model's privacy policy (PII already masked).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from aiwarden.server import llm_routes
from aiwarden.server.dashboard import llm_charts
from aiwarden.server.dashboard.llm_text import conversation
from aiwarden.server.dashboard.ranges import DEFAULT, RANGES, Span, span
from aiwarden.server.dashboard.render import page
from aiwarden.server.dashboard.web import PageRoute, page_requires, viewer

__all__ = ["router"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)

#: categories the flagged list can be filtered by
CATEGORIES = ("self_harm", "violence", "hate", "sexual", "email", "phone", "card", "iban", "ssn",
              "ip", "api_key", "injection", "refusal", "empty", "truncated", "ungrounded")
_SHOWN = 20  # conversations listed on the page


def _flagged(request: Request, name: str, category: str | None, version: str | None,
             segment: str | None, sp: Span) -> list[dict[str, Any]]:
    """The range's newest flagged conversations (of one tag value when ``segment`` is
    ``locale:de``: read 10x as many and keep those whose tag matches)."""
    limit = _SHOWN * 10 if segment else _SHOWN
    found = llm_routes.query_llm_events(request.app.state.monitor, name, True,
                                        category or None, version, None, limit,
                                        start=sp.start, end=sp.end)["events"]
    if segment:
        col, _, value = segment.partition(":")
        found = [e for e in found if str((e.get("tags") or {}).get(col)) == value]
    return [conversation(e) for e in found[:_SHOWN]]


@router.get("/models/{name}/llm", dependencies=[page_requires("read")],
            response_class=HTMLResponse)
async def llm_page(request: Request, name: str) -> Response:
    viewer(request)
    q = request.query_params
    sp = span(q.get("range"), q.get("end"),
              bucket=request.app.state.monitor.settings.bucket_seconds)
    version, segment = q.get("version") or None, q.get("segment") or None
    category = q.get("category") or None
    started = time.perf_counter()
    data = await run_in_threadpool(llm_charts.llm_timeseries, request.app.state, name, sp,
                                   version, segment)
    ctx = data["ctx"]
    segs = ({} if ctx["version"] is None else (await run_in_threadpool(
        request.app.state.monitor.segments, name, ctx["version"]))["columns"])
    flagged = await run_in_threadpool(_flagged, request, name, category, version, segment, sp)
    return page(request, "llm.html", {
        "name": name, "span": sp, "range": sp.name, "end": q.get("end") or None,
        "version": version, "segment": segment, "category": category, "data": data,
        "ctx": ctx, "ranges": list(RANGES), "default_range": DEFAULT,
        "segment_options": segs, "categories": CATEGORIES, "flagged": flagged,
        "firing": [a for a in ctx["alerts"] if a.active],
        "seconds": time.perf_counter() - started})


@router.get("/models/{name}/llm/events/{request_id:path}",  # an id may hold "/"
            dependencies=[page_requires("read")], response_class=HTMLResponse)
async def llm_event_page(request: Request, name: str, request_id: str) -> Response:
    viewer(request)
    event = await run_in_threadpool(llm_routes.read_llm_event, request.app.state.monitor, name,
                                    request_id)
    return page(request, "llm_event.html", {"name": name, "e": conversation(event)})
