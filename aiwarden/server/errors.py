"""Every error answers ``{"detail": {"error", "message", "field"}}`` with a fitting status."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException

from aiwarden.alerting.silences import NoSuchSilence, SilenceExpired
from aiwarden.errors import AiwardenError
from aiwarden.explain._deps import MissingExtraError
from aiwarden.registry._errors import (
    ArtifactFormatError,
    ArtifactIntegrityError,
    ArtifactStoreError,
    UntrustedArtifactError,
)
from aiwarden.server.responses import JSONResponse
from aiwarden.store.models_repo import Conflict, NotFound

__all__ = ["BodyTooLarge", "Forbidden", "HttpError", "Malformed", "Unauthorized",
           "UnsupportedMediaType", "domain_status", "install"]

# Domain errors with their own status; any other AiwardenError is 422. One table, so a
# changed artifact answers the same wherever it is met: download, predict, reload.
_DOMAIN: dict[type[AiwardenError], tuple[int, str]] = {
    NotFound: (404, "not_found"), Conflict: (409, "conflict"),
    NoSuchSilence: (404, "not_found"), SilenceExpired: (409, "conflict"),
    ArtifactIntegrityError: (409, "artifact_integrity"),
    UntrustedArtifactError: (403, "untrusted_artifact"),
    ArtifactFormatError: (422, "invalid_artifact"),
    ArtifactStoreError: (503, "artifact_store"),
    MissingExtraError: (501, "missing_extra"),  # e.g. explanations on a server without shap
}


def domain_status(exc: AiwardenError) -> tuple[int, str]:
    """(status, error kind) of a domain error, by its nearest listed class."""
    for cls in type(exc).__mro__:
        if cls in _DOMAIN:
            return _DOMAIN[cls]
    return 422, type(exc).__name__.replace("Error", "").lower() or "invalid"


class HttpError(Exception):
    status = 400
    kind = "bad_request"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message, self.field = message, field


class Unauthorized(HttpError):
    status, kind = 401, "unauthorized"


class Forbidden(HttpError):
    status, kind = 403, "forbidden"


class BodyTooLarge(HttpError):
    status, kind = 413, "body_too_large"


class Malformed(HttpError):
    status, kind = 422, "malformed"


class UnsupportedMediaType(HttpError):
    status, kind = 415, "unsupported_media_type"


def _body(kind: str, message: str, field: str | None) -> dict:
    return {"detail": {"error": kind, "message": message, "field": field}}


def _allowed(request: Request) -> list[str]:
    """Every method some route answers on this path (Starlette names only the first)."""
    from starlette.routing import compile_path

    from aiwarden.server.route_table import api_routes

    path = request.url.path
    found = [e for e in api_routes(request.app) if compile_path(e.path)[0].match(path)]
    # /incidents/1/hold is the hold route's, not /incidents/{id}/{action}'s: fewest params
    fewest = min((e.path.count("{") for e in found), default=0)
    return sorted({e.method for e in found if e.path.count("{") == fewest})


def install(app: FastAPI) -> None:
    @app.exception_handler(HttpError)
    async def _http(_: Request, exc: HttpError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else \
            getattr(exc, "headers", None)  # e.g. Retry-After of a 429
        return JSONResponse(_body(exc.kind, exc.message, exc.field), exc.status, headers)

    @app.exception_handler(AiwardenError)
    async def _domain(_: Request, exc: AiwardenError) -> JSONResponse:
        status, kind = domain_status(exc)
        return JSONResponse(_body(kind, str(exc), getattr(exc, "field", None)), status)

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        """A value the database cannot hold or compare (a NUL byte in a name on PostgreSQL,
        a number out of range) came from the request: 422, not 500. A NUL byte in a path
        or query parameter is a lookup of something that cannot exist (no stored text holds
        one): 404 naming the parameter, not a 422 naming nothing (schemathesis ST202, on
        PostgreSQL only: SQLite finds no match)."""
        params = {**request.query_params, **request.path_params}
        nul = [k for k, v in params.items() if "\x00" in str(v)]
        if nul:  # 404 where the route documents it: one whose path names something
            return JSONResponse(_body("not_found" if request.path_params else "invalid",
                                      f"No {nul[0]} {params[nul[0]]!r}: stored names never "
                                      "hold a NUL byte.", nul[0]),
                                404 if request.path_params else 422)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else "invalid"
        return JSONResponse(_body("invalid", f"A value in the request cannot be stored or "
                                  f"looked up: {reason}.", None), 422)

    @app.exception_handler(HTTPException)
    async def _starlette(request: Request, exc: HTTPException) -> JSONResponse:
        """Unknown paths and methods answer the house body too (404, 405 with every
        method of the path in ``Allow``); a body FastAPI cannot parse is 422 like ours."""
        status, headers = exc.status_code, dict(exc.headers or {})
        if status == 400:  # FastAPI: "There was an error parsing the body"
            if isinstance(exc.__cause__, RecursionError):  # json.loads of a deep body
                from aiwarden.server.jsonbody import MAX_DEPTH

                return JSONResponse(_body("malformed", f"The body is nested deeper than "
                                          f"{MAX_DEPTH} levels.", "body"), 422)
            return JSONResponse(_body("malformed", f"{exc.detail}: send valid JSON.", "body"),
                                422)
        if status == 405:
            headers["Allow"] = ", ".join(_allowed(request))
        kind = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
        return JSONResponse(_body(kind, str(exc.detail), None), status, headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        inner = getattr(first.get("ctx", {}).get("error"), "field", None)
        if isinstance(inner, str):  # a body-wide check that names its field (LoneSurrogate)
            where = f"{where}.{inner}" if where else inner
        return JSONResponse(_body("invalid", f"{where}: {first.get('msg', 'invalid')}",
                                    where or None), 422)
