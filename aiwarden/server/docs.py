"""The OpenAPI document and the /docs page.

The document tells the truth about the server, so a client generated from it works:

* the answer of each route is its model from :mod:`aiwarden.server.api_models` (declared
  on the route with ``responses=answers(...)``), bytes routes name their media type;
* every error is :class:`~aiwarden.server.api_models.Error` (``{"detail": {error, message,
  field}}``), including FastAPI's own validation errors and unknown paths;
* Bearer and ``X-API-Key`` security schemes; on a server running open (loopback, no keys
  yet) each keyed route also lists the anonymous alternative ``{}``, so the document served
  is right for the server that serves it;
* the statuses every route shares are added here in one place: 401/403/429 on keyed
  routes (429: failed keys are rate-limited, ingest may be shed), 413/415 on methods that
  take a body, 403 on state-changing methods (cross-site guard), 404 where the path names
  something, 421 for a Host that is not this server's, 422 where anything is parsed.

The /docs page is served from the package: it works on a machine with no internet
(FastAPI's default page loads Swagger UI from a CDN).
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import TypeAdapter
from swagger_ui_bundle import swagger_ui_path

from aiwarden.server.access import PUBLIC, route_scope
from aiwarden.server.api_models import (
    ALIAS_PATTERN,
    BODY_MODELS,
    DURATION_PATTERN,
    INSTANT_PATTERN,
    NAME_PATTERN,
    SEGMENT_PATTERN,
    Error,
)
from aiwarden.server.route_table import RouteEntry, api_routes
from aiwarden.server.spec_models import RULE_NAME_PATTERN, notification_schemas

__all__ = ["install_docs", "openapi_document", "operation_id"]

_ASSETS = "/docs-assets"
_REF = "#/components/schemas/"
_ERROR_REF = {"$ref": _REF + "Error"}
_SAFE = {"get", "head", "options"}
SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer",
                   "description": "An API key: `Authorization: Bearer <key>` "
                                  "(`aiwarden keys create NAME --scopes read,ingest`)."},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                     "description": "The same key in an `X-API-Key` header."},
}
_WHY = {
    "400": "The request cannot be read.",
    "401": "No API key, or an unknown or revoked one (`WWW-Authenticate: Bearer`).",
    "403": "The key's scopes do not allow this, or a page of another site sent it "
           "(cross-site guard), or the artifact would run code unvouched for.",
    "404": "The model, version, alias, incident, rule or silence named does not exist.",
    "409": "Conflicts with what is stored (e.g. an immutable reference, an alias that moved).",
    "413": "The body is larger than AIWARDEN_MAX_BODY_MB, or holds too many columns.",
    "415": "The body's Content-Type is not one this route reads.",
    "421": "The Host header is not a name of this server (DNS-rebinding guard).",
    "422": "A parameter or the body is invalid; `field` names it.",
    "429": "Too many failed keys from this client, or ingest is saturated: retry after "
           "`Retry-After` seconds.",
    "503": "A dependency (database, artifact store) is unavailable.",
    "504": "The model version did not answer within its time limit "
           "(AIWARDEN_GATEWAY_SERVE_TIMEOUT, AIWARDEN_GATEWAY_TRIAL_TIMEOUT); `version` names it.",
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.",
                                "schema": {"type": "integer"}}}


def operation_id(route: APIRoute) -> str:
    """``<tag>_<handler>`` (``models_create_model``, ``registry_list_models``): what a
    generated client names its functions, instead of FastAPI's path-mangled ids."""
    return f"{route.tags[0]}_{route.name}" if route.tags else route.name


def _scope(entry: RouteEntry) -> str | None:
    """The scope the route declares in the route table (``requires(...)``)."""
    return route_scope(entry.route)


def _keyed(entry: RouteEntry) -> bool:
    return _scope(entry) not in (None, PUBLIC)


def _error_response(code: str) -> dict[str, Any]:
    out: dict[str, Any] = {"description": _WHY.get(code, "Error."),
                           "content": {"application/json": {"schema": dict(_ERROR_REF)}}}
    if code == "429":
        out["headers"] = _RETRY_AFTER
    if code == "401":
        out["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return out


def _own_body(response: dict[str, Any] | None) -> bool:
    """Whether a route declared this status with a body of its own (not the error)."""
    text = str((response or {}).get("content", ""))
    return bool(response and response.get("content")) and "HTTPValidationError" not in text \
        and _REF + "Error'" not in text


def _clean_content(response: dict[str, Any]) -> None:
    """A model merged over FastAPI's placeholder keeps the model alone; a bytes answer
    drops the placeholder JSON entry."""
    content = response.get("content")
    if not content:
        return
    js = content.get("application/json")
    if js is not None:
        schema = js.get("schema", {})
        if "$ref" in schema:
            js["schema"] = {"$ref": schema["$ref"]}
        elif "anyOf" in schema:
            schema.pop("type", None)
        elif schema.get("type") == "array":
            schema.pop("additionalProperties", None)
        if schema == {"type": "string"} and len(content) > 1:
            del content["application/json"]


# path parameters that name what a route creates: the server checks them against a pattern
_V1 = "/api/v1"
_PATH_PATTERNS = {
    ("PUT", f"{_V1}/models/{{name}}/versions/{{version}}/reference"): {"version": NAME_PATTERN},
    ("POST", f"{_V1}/registry/models/{{name}}/versions"): {"name": NAME_PATTERN},
    ("PUT", f"{_V1}/registry/models/{{name}}/aliases/{{alias}}"): {"alias": ALIAS_PATTERN},
    ("PUT", f"{_V1}/rules/{{model}}/{{name}}"): {"name": RULE_NAME_PATTERN},
}
# query parameters that name what a route creates (the multipart field of the same name
# says the same in api_models.body_doc)
_QUERY_PATTERNS = {
    ("POST", f"{_V1}/registry/models/{{name}}/versions"): {"version": NAME_PATTERN},
}


# parameters every route reads the same way, by (location, name): what the server accepts
_BY_NAME: dict[tuple[str, str], dict[str, Any]] = {
    ("path", "alias"): {"pattern": ALIAS_PATTERN},
    **{("query", n): {"pattern": INSTANT_PATTERN}
       for n in ("start", "end", "now", "baseline_start", "baseline_end")},
    **{("query", n): {"pattern": DURATION_PATTERN}
       for n in ("step", "lookback", "window")},
    ("query", "segment"): {"pattern": SEGMENT_PATTERN},
}


def _enums() -> dict[tuple[str, str, str], list[str]]:
    """Names the server looks up in a registry, by (path, location, parameter)."""
    from aiwarden.monitoring import metrics
    from aiwarden.registry.formats import FORMATS

    return {(f"{_V1}/models/{{name}}/metrics", "query", "metric"):
            sorted([*metrics.METRICS, *metrics.ROW_METRICS]),
            (f"{_V1}/registry/models/{{name}}/versions", "query", "format"): sorted(FORMATS)}


def _constrain(param: dict[str, Any], extra: dict[str, Any]) -> None:
    """Add ``extra`` to the parameter's string schema (inside ``anyOf`` when optional)."""
    schema = param.setdefault("schema", {})
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") == "string":
            branch.update(extra)


def _operation(op: dict[str, Any], entry: RouteEntry, open_server: bool) -> None:
    method = entry.method.lower()
    patterns = _PATH_PATTERNS.get((entry.method, entry.path), {})
    queried = _QUERY_PATTERNS.get((entry.method, entry.path), {})
    enums = _enums()
    for param in op.get("parameters", []):
        where = (param["in"], param["name"])
        if param["in"] == "path" and param["name"] in patterns:
            param.setdefault("schema", {})["pattern"] = patterns[param["name"]]
        if param["in"] == "query" and param["name"] in queried:
            _constrain(param, {"pattern": queried[param["name"]]})
        if where in _BY_NAME:
            _constrain(param, _BY_NAME[where])
        if (entry.path, *where) in enums:
            _constrain(param, {"enum": enums[(entry.path, *where)]})
        schema = param.get("schema", {})
        if "items" in schema and "anyOf" in schema:  # a Query's json_schema_extra items:
            items = schema.pop("items")  # into the array branch, where generators read it
            for branch in schema["anyOf"]:
                if branch.get("type") == "array":
                    branch["items"] = items
    for media in op.get("requestBody", {}).get("content", {}).values():
        if "$ref" in media.get("schema", {}):  # a documented body over FastAPI's own
            media["schema"] = {"$ref": media["schema"]["$ref"]}
    responses = op.setdefault("responses", {})
    for r in responses.values():
        _clean_content(r)
    codes: set[str] = {"421"}
    if entry.route.path_format.count("{") and entry.path.startswith("/api/"):
        codes.add("404")
    if op.get("parameters") or op.get("requestBody") or "422" in responses:
        codes.add("422")
    if method not in _SAFE:
        codes |= {"403", "413", "415"}
    if _keyed(entry):
        codes |= {"401", "403", "429"}
        alternatives: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKeyHeader": []}]
        op["security"] = alternatives + ([{}] if open_server else [])
        scope = _scope(entry)
        op["x-scope"] = scope
        op["description"] = (op.get("description", "") +
                             f"\n\nNeeds a key with the `{scope}` scope.").strip()
    codes |= {code for code in responses if code.startswith(("4", "5"))}
    for code in sorted(codes):
        if not _own_body(responses.get(code)):
            responses[code] = _error_response(code)


# what a 201 answer names, by path parameter: the created resource's path in the answer
_CREATED = {
    f"{_V1}/models": {"name": "name"},
    f"{_V1}/models/{{name}}/versions": {"version": "version"},
    f"{_V1}/registry/models/{{name}}/versions": {"name": "model", "version": "version"},
    f"{_V1}/silences": {"silence_id": "id"},
}


# what a new model does not have until it is set: a link from the creation to these
# methods would promise an answer that is a 404 by design (a guardrail, rollback policy or
# training pipeline is PUT first, an alias registered before it can roll back)
_NOT_YET = {"/guardrail": {"get", "delete"}, "/rollback-policy": {"get", "delete"},
            "/pipeline": {"get", "delete"}, "/rollback": {"post"},
            "/completions": {"post"},  # the guardrail's upstream
            "/traffic": {"put"},  # a canary, shadow or ab names a registered version
            "/reference": {"get"}}  # a version registered without one


def _links(paths: dict[str, Any]) -> None:
    """OpenAPI links from each creating operation to the operations on what it created, so
    generated clients and stateful tests can follow them (``$response.body#/name``)."""
    for base, fields in _CREATED.items():
        created = paths.get(base, {}).get("post", {}).get("responses", {}).get("201")
        if created is None:
            continue
        given = {p: f"$response.body#/{f}" for p, f in fields.items()}
        given |= {p: f"$request.path.{p}" for p in _params(base) if p not in given}
        links = {}
        for path, ops in paths.items():
            if path == base or not path.startswith(base.rsplit("/", 1)[0]) or \
                    not set(_params(path)) <= set(given) or \
                    not set(fields) <= set(_params(path)):
                continue
            for method, op in ops.items():
                if method in _NOT_YET.get("/" + path.rsplit("/", 1)[-1], ()):
                    continue
                links[op["operationId"]] = {
                    "operationId": op["operationId"],
                    "parameters": {p: given[p] for p in _params(path)}}
        if links:
            created["links"] = links


def _params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def openapi_document(app: FastAPI, *, open_server: bool) -> dict[str, Any]:
    """The document for ``app`` as a server that runs open (or keyed) serves it."""
    doc = get_openapi(title=app.title, version=app.version, description=app.description,
                      routes=app.routes, tags=app.openapi_tags, servers=app.servers)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    for name, model in [("Error", Error), *BODY_MODELS.items()]:
        found = copy.deepcopy(model) if isinstance(model, dict) else TypeAdapter(model).json_schema(
            ref_template=_REF + "{model}")
        for sub_name, sub in found.pop("$defs", {}).items():
            schemas.setdefault(sub_name, sub)
        schemas.setdefault(name, found)
    for name, sub in notification_schemas().items():  # what NotificationConfig refers to
        schemas.setdefault(name, sub)
    doc["components"]["securitySchemes"] = copy.deepcopy(SECURITY_SCHEMES)
    paths = doc.get("paths", {})
    for entry in api_routes(app):
        op = paths.get(entry.path, {}).get(entry.method.lower())
        if op is not None:
            _operation(op, entry, open_server)
    _links(paths)
    return doc


def install_docs(app: FastAPI) -> None:
    cache: dict[bool, dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        auth = getattr(app.state, "auth", None)
        try:
            open_server = auth is not None and auth.open_when_no_keys and not auth.any_keys()
        except Exception:  # no database yet (a document built before start-up): keyed
            open_server = False
        if open_server not in cache:
            cache[open_server] = openapi_document(app, open_server=open_server)
        return cache[open_server]

    app.openapi = openapi  # type: ignore[method-assign]
    app.mount(_ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title="aiwarden API",
            swagger_js_url=f"{_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{_ASSETS}/favicon-32x32.png")
        # "Try it out" sends same-origin requests: framed by another site, a few clicks
        # would change state past the cross-site guard, so no page may frame it
        page.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
        page.headers["X-Frame-Options"] = "DENY"
        return page
