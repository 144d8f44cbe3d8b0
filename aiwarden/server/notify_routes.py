"""REST API for notifications: receivers and routing (secrets never returned), silences,
and the record of delivery attempts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from aiwarden.alerting.notify import NotificationCenter
from aiwarden.server.access import actor, requires
from aiwarden.server.api_models import (
    Attempt,
    NotificationConfig,
    NotificationSettings,
    Queued,
    Silence,
    SilenceSpec,
    answers,
    body_doc,
)
from aiwarden.server.jsonbody import json_body

__all__ = ["router"]

router = APIRouter()


def _center(request: Request) -> tuple[NotificationCenter, str]:
    return request.app.state.notifications, actor(request)


@router.get("/notifications/config", dependencies=[requires("read")], tags=["notifications"],
            responses=answers(NotificationSettings))
def get_config(request: Request) -> dict[str, Any]:
    center, _ = _center(request)
    center.refresh()  # another process may have changed it
    return center.describe()


@router.put("/notifications/config", dependencies=[requires("admin")], tags=["notifications"],
            responses=answers(NotificationSettings),
            openapi_extra=body_doc(json=NotificationConfig))
async def put_config(request: Request) -> dict[str, Any]:
    """``{route, receivers, inhibit_rules}``; validated before anything is replaced."""
    center, _ = _center(request)
    body = await json_body(request, NotificationConfig)
    return center.configure(body.model_dump(exclude_unset=True))


@router.get("/notifications/attempts", dependencies=[requires("read")],
            tags=["notifications"], responses=answers(list[Attempt]))
def attempts(request: Request, limit: int = Query(500, ge=1, le=10_000)
             ) -> list[dict[str, Any]]:
    """Recent delivery attempts of every process, newest last (receiver, ok, status,
    error — no secrets); kept across restarts."""
    center, _ = _center(request)
    return center.recent_attempts(limit)


@router.get("/notifications/queue", dependencies=[requires("read")],
            tags=["notifications"], responses=answers(list[Queued]))
def queue(request: Request) -> list[dict[str, Any]]:
    """Messages still owed, oldest first, with their tries so far and next attempt."""
    center, _ = _center(request)
    return center.queue()


@router.get("/silences", dependencies=[requires("read")],
            tags=["notifications"], responses=answers(list[Silence]))
def list_silences(request: Request) -> list[dict[str, Any]]:
    center, _ = _center(request)
    center.refresh()
    return center.silences.to_dict().get("silences", [])


@router.post("/silences", dependencies=[requires("operate")],
             tags=["notifications"], status_code=201,
             responses=answers(Silence, status=201),
             openapi_extra=body_doc(json=SilenceSpec))
async def add_silence(request: Request) -> dict[str, Any]:
    """``{matchers: ["model=fraud"], ends_at: ISO|epoch, comment}``."""
    center, actor = _center(request)
    body = await json_body(request, SilenceSpec)
    return center.add_silence(body.model_dump(exclude_none=True), actor)


@router.delete("/silences/{silence_id}", dependencies=[requires("operate")],
               tags=["notifications"], responses=answers(Silence, 409))
def expire_silence(request: Request, silence_id: str) -> dict[str, Any]:
    center, _ = _center(request)
    return center.expire_silence(silence_id)
