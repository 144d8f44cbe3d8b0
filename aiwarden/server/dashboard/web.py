"""What every dashboard route shares: sign-in, error pages, form bodies, static files."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.staticfiles import StaticFiles

from aiwarden.errors import AiwardenError
from aiwarden.server.access import PUBLIC, Scope
from aiwarden.server.dashboard.render import page
from aiwarden.server.dashboard.session import Sessions, Viewer, same_origin
from aiwarden.server.errors import Forbidden, HttpError
from aiwarden.store.models_repo import Conflict, NotFound

__all__ = ["PageRoute", "PageScope", "Static", "form", "is_htmx", "page_requires", "viewer"]


class SignIn(Exception):
    """The request needs a signed-in viewer."""


def sessions(request: Request) -> Sessions:
    state = request.app.state
    if getattr(state, "sessions", None) is None:
        state.sessions = Sessions(state)
    return state.sessions


class PageScope(Scope):
    """A page's declared scope: the signed-in viewer must hold it; others go to sign in."""

    def __call__(self, request: Request) -> None:  # type: ignore[override]
        # not async: reading the session's key may touch the database
        if self.scope == PUBLIC:
            return
        found = sessions(request).viewer(request)
        if found is None:
            raise SignIn()
        found.require(self.scope)
        request.state.viewer = found


def page_requires(scope: str) -> Any:
    """``dependencies=[page_requires("operate")]``: a dashboard route's declared scope
    (``access.route_scope`` reads it as it reads the API's ``requires``)."""
    return Depends(PageScope(scope))


def viewer(request: Request) -> Viewer:
    """The viewer the route's declared scope admitted."""
    found = getattr(request.state, "viewer", None)
    if found is None:  # a page without page_requires(...): refuse, never run open
        raise RuntimeError(f"{request.url.path} declares no scope; add "
                           "dependencies=[page_requires(...)] to its route.")
    return found  # type: ignore[no-any-return]


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


async def form(request: Request) -> dict[str, str]:
    """A POSTed form as text fields; refused when it comes from another site."""
    if not same_origin(request):
        raise Forbidden("This form was sent from another site.", "origin")
    data = await request.form()
    return {k: v.strip() for k, v in data.items() if isinstance(v, str)}


def _status(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, HttpError):
        return exc.status, exc.message
    if isinstance(exc, NotFound):
        return 404, str(exc)
    if isinstance(exc, Conflict):
        return 409, str(exc)
    return 422, str(exc)


class PageRoute(APIRoute):
    """Routes that answer HTML: sign-in redirects and readable error pages instead of the
    API's JSON errors (an htmx fragment gets a short message it can show in place)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await inner(request)
            except SignIn:
                target = request.url.path + (f"?{request.url.query}" if request.url.query
                                             else "")
                login = f"/login?next={quote(target, safe='')}"
                if is_htmx(request):
                    return Response(status_code=401, headers={"HX-Redirect": login})
                return RedirectResponse(login, status_code=303)
            except (HttpError, AiwardenError) as exc:
                status, message = _status(exc)
                name = "_error.html" if is_htmx(request) else "error.html"
                return page(request, name, {"status": status, "message": message},
                            status=status, headers=getattr(exc, "headers", None))

        return handler


class Static(StaticFiles):
    """Assets are addressed with a content hash (``?v=``) or a versioned file name, so
    browsers may keep them for a year."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
