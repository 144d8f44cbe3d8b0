"""Roll an alias back to the version it pointed at before its latest move.

The same path as ``POST /api/v1/models/{name}/rollback`` (``AlertPipeline.rollback_by_hand``:
a conditional move in the alias's append-only history, this process's gateways switched at
once, the model's open incident and receivers told, the result verified later), after
checking that the alias still points where the viewer confirmed: if someone moved it
meanwhile, the rollback is refused (409) instead of undoing their move. A server without
the rollback engine moves the alias through ``Registry.set_alias`` directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from aiwarden.errors import ParameterError
from aiwarden.server.dashboard.pages import model_panel, registry_or_none
from aiwarden.server.dashboard.render import ago, page
from aiwarden.server.dashboard.web import PageRoute, form, is_htmx, page_requires, viewer
from aiwarden.store.models_repo import Conflict, NotFound

__all__ = ["offers", "perform", "router", "target", "targets"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def targets(registry: Any, model: str, versions: Iterable[str] | None = None
            ) -> list[dict[str, str]]:
    """Each alias that can sensibly go back: ``{alias, current, previous, does}``.

    An alias whose latest move was a rollback is not offered (going back would redeploy the
    version just rolled away from), nor, with ``versions`` (an incident's), an alias that
    serves none of them: moving it would not touch what the incident is about.
    """
    return [t for t in offers(registry, model, versions) if "previous" in t]


def offers(registry: Any, model: str, versions: Iterable[str] | None = None
           ) -> list[dict[str, str]]:
    """Every alias with ``does`` (what rolling it back does) or ``why_not``."""
    out = []
    try:
        aliases = registry.aliases(model)
    except NotFound:
        return []
    concerned = None if versions is None else {str(v) for v in versions}
    for alias, current in sorted(aliases.items()):
        prev, last, why_not = registry.rollback_target(model, alias)
        offer = {"alias": alias, "current": current}
        if last is not None and last.kind == "rollback":
            offer["why_not"] = why_not or ""
        elif concerned and current not in concerned:
            offer["why_not"] = (f"{alias} serves version {current}, which this incident's "
                                f"alerts are not about ({', '.join(sorted(concerned))}).")
        elif prev is None or prev.version == current:
            offer["why_not"] = why_not or f"{alias} already points at {current}."
        else:
            offer["previous"] = prev.version
            offer["does"] = (
                f"Requests served through {alias} get version {prev.version} again instead "
                f"of {current}, which {last.actor} set {ago(last.at)} ({last.reason}). The "
                "move is checked later like an automatic rollback.")
        out.append(offer)
    return out


def target(registry: Any, model: str, alias: str) -> dict[str, str]:
    if registry is None:
        raise ParameterError("The registry is not available on this server.", "alias")
    found = next((t for t in offers(registry, model) if t["alias"] == alias), None)
    if found is None:
        raise NotFound(f"Model {model!r} has no alias {alias!r}.", "alias")
    if "previous" not in found:
        raise Conflict(f"No rollback of {alias!r} is offered: {found['why_not']}", "alias")
    return {**found, "model": model}


def perform(app_state: Any, registry: Any, model: str, data: dict[str, str],
            actor: str) -> dict[str, Any]:
    """Move the alias from the version the viewer confirmed to its previous one."""
    alias, current, previous = (data.get(k, "") for k in ("alias", "current", "previous"))
    reason = data.get("reason") or f"rollback of {alias} from the dashboard"
    if registry is None:
        raise ParameterError("The registry is not available on this server.", "alias")
    now = registry.aliases(model).get(alias)
    if now != current:
        raise Conflict(f"Alias {alias!r} of {model!r} points at {now or 'nothing'} now, not "
                       f"{current} as shown; someone moved it first. Reload and decide "
                       "again.", "current")
    pipeline = getattr(app_state, "pipeline", None)
    if getattr(pipeline, "rollbacks", None) is not None:
        rolled = pipeline.rollback_by_hand(model, alias, previous, reason, actor)
        text = (f"Rolled {model}@{alias} back from version {rolled.from_version} to "
                f"{rolled.to_version}")
        return {"text": text, "detail": rolled.to_dict(), "recorded": True}
    registry.set_alias(model, alias, previous, reason=reason, actor=actor, kind="rollback",
                       expected=current)
    text = f"Rolled {model}@{alias} back from version {current} to {previous}"
    return {"text": text, "detail": {"alias": alias, "from": current, "to": previous,
                                     "reason": reason}, "recorded": False}


@router.get("/models/{name}/rollback", dependencies=[page_requires("operate")],
            response_class=HTMLResponse)
async def confirm(request: Request, name: str, alias: str) -> Response:
    viewer(request)
    found = await run_in_threadpool(target, registry_or_none(request), name, alias)
    return page(request, "_rollback_confirm.html", {
        "target": found, "action": f"/models/{name}/rollback",
        "reason": f"Rollback of {alias} from the dashboard", "swap": "#panel-versions",
        "cancel": f"/models/{name}"})


@router.post("/models/{name}/rollback", dependencies=[page_requires("operate")],
             response_class=HTMLResponse)
async def rollback(request: Request, name: str) -> Response:
    who = viewer(request)
    data = await form(request)
    await run_in_threadpool(perform, request.app.state, registry_or_none(request), name, data,
                            who.actor)
    if is_htmx(request):
        return await model_panel(request, name, "versions")
    return RedirectResponse(f"/models/{name}", status_code=303)
