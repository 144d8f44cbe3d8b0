"""Dashboard pages: sign-in, the overview and the model page with its lazily loaded panels.

Every page's state is in its URL (model, range, end, version, feature, method), so a
notification can link straight to the evidence and a reload shows the same thing.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from aiwarden.errors import ParameterError
from aiwarden.server.auth import TooManyFailures, client_address
from aiwarden.server.dashboard import charts, evidence, features, overview
from aiwarden.server.dashboard.image_pages import is_image_model
from aiwarden.server.dashboard.ranges import DEFAULT, RANGES, span
from aiwarden.server.dashboard.render import page
from aiwarden.server.dashboard.session import COOKIE, TTL
from aiwarden.server.dashboard.web import (
    PageRoute,
    form,
    is_htmx,
    page_requires,
    sessions,
    viewer,
)

__all__ = ["registry_or_none", "router"]

log = logging.getLogger("aiwarden.dashboard")
router = APIRouter(route_class=PageRoute, include_in_schema=False)
_PANELS = ("charts", "drift", "feature", "slices", "versions")


def registry_or_none(request: Request) -> Any:
    """The app's registry, or None when its artifact store cannot be opened."""
    from aiwarden.server.registry_routes import registry_for

    try:
        return registry_for(request.app)
    except Exception as exc:
        log.warning("dashboard: registry unavailable: %s", exc)
        return None


def _safe_next(target: str | None) -> str:
    """Only paths on this site: the login form must not redirect anywhere else."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login", dependencies=[page_requires("public")], response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    if sessions(request).open():
        return RedirectResponse(_safe_next(next), status_code=303)
    return page(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login", dependencies=[page_requires("public")], response_class=HTMLResponse)
async def login(request: Request) -> Response:
    data = await form(request)
    target = _safe_next(data.get("next"))
    try:
        found = await run_in_threadpool(sessions(request).login, data.get("key", ""),
                                        client_address(request))
    except TooManyFailures as exc:
        return page(request, "login.html", {"next": target, "error": exc.message},
                    status=429, headers=exc.headers)
    if found is None:  # never echo or log the key
        return page(request, "login.html", {"next": target, "error":
                    "Unknown or revoked key, or one without the read scope."})
    info, token = found
    log.info("dashboard sign-in with key %s (%s)", info.key_id, info.name)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token, max_age=int(TTL), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return response


@router.post("/logout", dependencies=[page_requires("public")])
async def logout(request: Request) -> Response:
    await form(request)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


async def _aliases(request: Request) -> dict[str, dict[str, str]]:
    registry = registry_or_none(request)
    if registry is None:
        return {}
    try:
        return {m["name"]: m["aliases"] for m in await run_in_threadpool(registry.models)}
    except Exception as exc:
        log.warning("dashboard: registry models: %s", exc)
        return {}


@router.get("/", dependencies=[page_requires("read")], response_class=HTMLResponse)
async def overview_page(request: Request) -> Response:
    viewer(request)
    aliases = await _aliases(request)
    started = time.perf_counter()
    rows = await run_in_threadpool(overview.summaries, request.app.state, aliases)
    counts = {h: sum(r.health == h for r in rows) for h in ("critical", "warning", "nodata",
                                                            "ok")}
    return page(request, "overview.html", {"rows": rows, "counts": counts,
                                           "seconds": time.perf_counter() - started})


@router.get("/overview/rows/{name}", dependencies=[page_requires("read")],
            response_class=HTMLResponse)
async def overview_row(request: Request, name: str) -> Response:
    """One model's row of the overview, for the rows the page did not fill in time."""
    viewer(request)
    aliases = await _aliases(request)
    rows = await run_in_threadpool(overview.summaries, request.app.state, aliases, None,
                                   60.0, name)
    return page(request, "_overview_row.html", {"r": rows[0]})


def _params(request: Request) -> dict[str, Any]:
    q = request.query_params
    method = q.get("method") or None
    if method is not None and method not in features.METHODS:
        raise ParameterError(f"method: expected one of {list(features.METHODS)}; got "
                             f"{method!r}.", "method")
    sort = q.get("sort") or None
    if sort not in (None, "impact"):
        raise ParameterError(f"sort: expected 'impact' or nothing; got {sort!r}.", "sort")
    sp = span(q.get("range"), q.get("end"),
              bucket=request.app.state.monitor.settings.bucket_seconds)
    return {"span": sp, "range": sp.name, "end": q.get("end") or None,
            "version": q.get("version") or None, "feature": q.get("feature") or None,
            "method": method, "perf": q.get("perf") or None,
            "segment": q.get("segment") or None, "sort": sort}


@router.get("/models/{name}", dependencies=[page_requires("read")], response_class=HTMLResponse)
async def model_page(request: Request, name: str) -> Response:
    viewer(request)
    p = _params(request)
    ctx = await run_in_threadpool(charts.model_context, request.app.state, name, p["version"])
    segs = ({} if ctx["version"] is None else (await run_in_threadpool(
        request.app.state.monitor.segments, name, ctx["version"]))["columns"])
    return page(request, "model.html", {
        **p, "name": name, "ctx": ctx, "ranges": list(RANGES), "default_range": DEFAULT,
        "segment_options": segs,
        "methods": features.METHODS, "panels": _PANELS,
        "image_model": is_image_model(ctx["versions"], ctx["version"]),  # gallery link
        "firing": [a for a in ctx["alerts"] if a.active]})


def _panel(app: Any, registry: Any, panel: str, name: str, p: dict[str, Any]
           ) -> dict[str, Any]:
    state, sp, version = app.state, p["span"], p["version"]
    if panel == "charts":
        return charts.timeseries(state, name, sp, version, p["perf"], p["segment"])
    seg = (charts.segment_of(state.monitor, name, version, p["segment"])
           if panel in ("drift", "feature", "slices") else None)
    if panel == "drift":
        ctx = charts.model_context(state, name, version)
        leans = None
        if p["sort"] == "impact" and ctx["version"] is not None:
            from aiwarden.server.explain_routes import explanations_for

            leans = explanations_for(app).reference_importance(name, ctx["version"])
        return features.heatmap(state, name, sp, ctx["version"], p["method"], ctx, seg,
                                leans=leans)
    if panel == "feature":
        return features.feature_view(state, name, sp, version, p["feature"], p["method"], seg)
    if panel == "slices":
        return evidence.failing_slices(state.monitor, name, sp.start, sp.end, version, seg)
    out = evidence.registry_view(registry, state.monitor, name)
    out["traffic"] = _traffic(app, name) if registry is not None else None
    return out


def _traffic(app: Any, name: str) -> dict[str, Any] | None:
    """The gateway's traffic policy (canary, shadow, A/B), when the gateway is there."""
    try:
        from aiwarden.server.gateway_routes import policies_for

        return policies_for(app).get(name)
    except Exception as exc:  # no gateway in this build, or no policy table yet
        log.debug("dashboard: traffic policy of %s: %s", name, exc)
        return None


@router.get("/models/{name}/panels/{panel}", dependencies=[page_requires("read")],
            response_class=HTMLResponse)
async def model_panel(request: Request, name: str, panel: str) -> Response:
    """One section of the model page (loaded by htmx after the page, so a slow one never
    holds the others up); also a page of its own when opened directly."""
    who = viewer(request)
    if panel not in _PANELS:
        raise ParameterError(f"panel: expected one of {list(_PANELS)}; got {panel!r}.", "panel")
    p = _params(request)
    registry = registry_or_none(request) if panel == "versions" else None
    started = time.perf_counter()
    data = await run_in_threadpool(_panel, request.app, registry, panel, name, p)
    ctx = {**p, "name": name, "data": data, "panel": panel, "methods": features.METHODS,
           "can_operate": who.allows("operate"), "seconds": time.perf_counter() - started}
    if panel == "feature" and request.query_params.get("compact"):
        return page(request, "_feature_chart.html", ctx)  # an RCA suspect's evidence
    if is_htmx(request):
        return page(request, f"_panel_{panel}.html", ctx)
    return page(request, "panel.html", ctx)
