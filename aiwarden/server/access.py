"""What every handler starts with: check the key's scope, then get the service or the actor."""

from __future__ import annotations

from fastapi import Request

from aiwarden.monitoring.service import Monitor

__all__ = ["actor", "monitor"]


def monitor(request: Request, scope: str) -> Monitor:
    request.app.state.auth.check(request, scope)
    return request.app.state.monitor


def actor(request: Request, scope: str) -> str:
    """Who is acting: the API key's name, else an ``X-Aiwarden-Actor`` header (open
    loopback servers), else "anonymous". Raises 401/403 like ``monitor``."""
    key = request.app.state.auth.check(request, scope)
    who = key.name if key is not None else request.headers.get("x-aiwarden-actor")
    return (who or "anonymous")[:200]
