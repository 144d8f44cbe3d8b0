"""Roll an alias back to the version it pointed at before its latest move.

Through the registry's alias API (``Registry.set_alias`` with ``kind="rollback"`` and
``expected`` = the version the viewer saw), so a rollback is one atomic, conditional move
in the alias's append-only history: if someone moved the alias meanwhile, it is refused
(409) instead of undoing their move. The automated rollback engine will call the same.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from aiwarden.errors import ParameterError
from aiwarden.server.dashboard.pages import model_panel, registry_or_none
from aiwarden.server.dashboard.render import page
from aiwarden.server.dashboard.web import PageRoute, form, is_htmx, viewer
from aiwarden.store.models_repo import NotFound

__all__ = ["perform", "router", "target", "targets"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def targets(registry: Any, model: str) -> list[dict[str, str]]:
    """Each alias that can go back: ``{alias, current, previous}``."""
    out = []
    try:
        aliases = registry.aliases(model)
    except NotFound:
        return []
    for alias, current in sorted(aliases.items()):
        prev = registry.previous(model, alias)
        if prev is not None and prev.version != current:
            out.append({"alias": alias, "current": current, "previous": prev.version})
    return out


def target(registry: Any, model: str, alias: str) -> dict[str, str]:
    if registry is None:
        raise ParameterError("The registry is not available on this server.", "alias")
    found = next((t for t in targets(registry, model) if t["alias"] == alias), None)
    if found is None:
        raise NotFound(f"Alias {alias!r} of {model!r} has no earlier version to go back to.",
                       "alias")
    return {**found, "model": model}


def perform(registry: Any, model: str, data: dict[str, str], actor: str) -> dict[str, Any]:
    """Move the alias from the version the viewer confirmed to its previous one."""
    alias, current, previous = (data.get(k, "") for k in ("alias", "current", "previous"))
    reason = data.get("reason") or f"rollback of {alias} from the dashboard"
    if registry is None:
        raise ParameterError("The registry is not available on this server.", "alias")
    registry.set_alias(model, alias, previous, reason=reason, actor=actor, kind="rollback",
                       expected=current)
    text = f"Rolled back {alias} of {model} from version {current} to {previous}"
    return {"text": text, "detail": {"alias": alias, "from": current, "to": previous,
                                     "reason": reason}}


@router.get("/models/{name}/rollback", response_class=HTMLResponse)
async def confirm(request: Request, name: str, alias: str) -> Response:
    viewer(request, "admin")
    found = await run_in_threadpool(target, registry_or_none(request), name, alias)
    return page(request, "_rollback_confirm.html", {
        "target": found, "action": f"/models/{name}/rollback",
        "reason": f"Rollback of {alias} from the dashboard", "swap": "#panel-versions",
        "cancel": f"/models/{name}"})


@router.post("/models/{name}/rollback", response_class=HTMLResponse)
async def rollback(request: Request, name: str) -> Response:
    who = viewer(request, "admin")
    data = await form(request)
    await run_in_threadpool(perform, registry_or_none(request), name, data, who.actor)
    if is_htmx(request):
        return await model_panel(request, name, "versions")
    return RedirectResponse(f"/models/{name}", status_code=303)
