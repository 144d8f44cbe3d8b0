"""Who may call a route: each route declares its scope in the route table.

Every route says what it needs with ``dependencies=[requires("operate")]`` (dashboard pages
with ``page_requires``, aiwarden/server/dashboard/web.py). The declaration is the check
itself, so it cannot drift from what the server does, and it is readable from
``app.routes``: ``route_scope(route)`` answers it, tests fail for an API route without one
(tests/server/test_scopes.py) and the OpenAPI document derives its security requirements
from it. Handlers then ask ``monitor(request)`` / ``actor(request)`` / ``key(request)`` for
what the check found; a handler of an undeclared route gets an error, never an open door.

The scopes and what each may do are in docs/api.md ("Scopes"); the rule itself is
``aiwarden.store.keys.KeyInfo.allows``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute

from aiwarden.monitoring.service import Monitor
from aiwarden.server.auth import MISS
from aiwarden.server.errors import Forbidden
from aiwarden.store.keys import SCOPES, KeyInfo

__all__ = ["PUBLIC", "SCOPES", "Scope", "actor", "key", "monitor", "must_declare", "requires",
           "route_scope", "undeclared"]

PUBLIC = "public"  # declared open on purpose: health, sign-in (no key is asked for)
_CHECKED = "aiwarden_key"  # request.state attribute the declared check sets


class Scope:
    """The dependency a route declares: checks the caller's key for ``scope`` (401/403)."""

    def __init__(self, scope: str, why: str | None = None) -> None:
        if scope not in (*SCOPES, PUBLIC):
            raise ValueError(f"Unknown scope {scope!r}; use one of {[*SCOPES, PUBLIC]}.")
        self.scope, self.why = scope, why

    async def __call__(self, request: Request) -> None:
        found = None
        if self.scope != PUBLIC:
            auth = request.app.state.auth
            try:
                found = auth.cached(request, self.scope)  # a known key: no thread hop
                if found is MISS:  # scrypt (or a database read): off the event loop
                    found = await run_in_threadpool(auth.check, request, self.scope)
            except Forbidden as exc:
                if self.why is None:
                    raise
                raise Forbidden(f"{exc.message} {self.why}", exc.field) from None
        setattr(request.state, _CHECKED, found)

    def __repr__(self) -> str:
        return f"Scope({self.scope!r})"


def requires(scope: str, why: str | None = None) -> Any:
    """``dependencies=[requires("read")]``: the route's declared scope, checked before the
    handler runs; ``why`` is added to the 403's message."""
    return Depends(Scope(scope, why))


def route_scope(route: Any) -> str | None:
    """The scope ``route`` declares ("read", "ingest", "operate", "admin" or "public"),
    None when it declares none (only non-API routes such as /docs may)."""
    if not isinstance(route, APIRoute):
        return None
    found = [d.call for d in route.dependant.dependencies if isinstance(d.call, Scope)]
    return found[0].scope if found else None


def must_declare(method: str, path: str) -> bool:
    """Routes that may not go without a declared scope: the API, /metrics, and every
    dashboard route that changes state (its pages declare one too, but a GET that only
    renders is not required to)."""
    return path.startswith("/api/") or path == "/metrics" or method not in ("GET", "HEAD")


def undeclared(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every route that must declare a scope and does not."""
    from aiwarden.server.route_table import api_routes

    return [(e.method, e.path) for e in api_routes(app)
            if must_declare(e.method, e.path) and route_scope(e.route) is None]


def key(request: Request) -> KeyInfo | None:
    """The key the route's declared check admitted; None on an open server."""
    try:
        return getattr(request.state, _CHECKED)  # type: ignore[no-any-return]
    except AttributeError:  # a route without requires(...): refuse, never run open
        raise RuntimeError(f"{request.method} {request.url.path} declares no scope; add "
                           "dependencies=[requires(...)] to its route.") from None


def monitor(request: Request) -> Monitor:
    key(request)
    return request.app.state.monitor  # type: ignore[no-any-return]


def actor(request: Request) -> str:
    """Who is acting: the API key's name, else an ``X-Aiwarden-Actor`` header (open
    loopback servers), else "anonymous"."""
    found = key(request)
    who = found.name if found is not None else request.headers.get("x-aiwarden-actor")
    return (who or "anonymous")[:200]
