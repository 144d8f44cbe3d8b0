"""The app's routes as one flat table: what route-wide checks and tests iterate.

FastAPI keeps included routers as nested entries of ``app.routes``; this flattens them with
their full paths, so a check over "every route" cannot miss a router.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

__all__ = ["RouteEntry", "api_routes"]


@dataclass(frozen=True)
class RouteEntry:
    method: str
    path: str  # full path with its {parameters}, e.g. /api/v1/models/{name}; as OpenAPI
    # writes it: a convertor ({request_id:path}) left out
    route: APIRoute  # the declared route: endpoint, dependencies, openapi_extra


def api_routes(app: FastAPI) -> Iterator[RouteEntry]:
    """Every (method, path) the app answers through a FastAPI route (API and dashboard)."""
    for ctx in iter_route_contexts(app.routes):
        original = ctx.original_route
        if isinstance(original, APIRoute) and ctx.path:
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", ctx.path)
            for method in sorted(ctx.methods or ()):
                yield RouteEntry(method, path, original)
