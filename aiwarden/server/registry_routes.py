"""Registry API v1 (docs/registry.md): register versions, read them, move aliases.

Reads need the ``read`` scope, writes ``admin`` (declared per route). A key without
``admin`` that tries to register is told why beyond the missing scope: a code-running
artifact (pickle, joblib, entry point) needs an admin to vouch for it.
"""

from __future__ import annotations

import os
import re
import threading
import unicodedata
from typing import Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from aiwarden.registry import (
    Registry,
    default_artifacts_url,
)
from aiwarden.registry._skops_types import sklearn_own
from aiwarden.registry.formats import ArtifactFormat, detect_format, get_format
from aiwarden.registry.records import clean_filename
from aiwarden.server import access
from aiwarden.server.access import requires
from aiwarden.server.api_models import (
    AliasEvent,
    AliasMoved,
    RegisteredVersion,
    RegistryModel,
    answers,
    body_doc,
)
from aiwarden.server.errors import HttpError, Malformed
from aiwarden.server.jsonbody import TextBody, loads

__all__ = ["registry_for", "router"]

router = APIRouter(prefix="/registry", tags=["registry"])
_LOCK = threading.Lock()
_MULTIPART = "multipart/form-data"


class _Untrusted(HttpError):
    status, kind = 403, "untrusted_artifact"


def registry_for(app: Any) -> Registry:
    """The app's registry, made on first use: the store is ``AIWARDEN_ARTIFACTS_URL``, else
    ``<data dir>/artifacts``; a model it creates gets the default alert rules."""
    reg = getattr(app.state, "registry", None)
    if reg is None:
        with _LOCK:
            reg = getattr(app.state, "registry", None)
            if reg is None:
                from aiwarden.alerting.evaluator import install_defaults

                settings, monitor = app.state.settings, app.state.monitor
                url = (getattr(settings, "artifacts_url", None)
                       or os.environ.get("AIWARDEN_ARTIFACTS_URL")
                       or default_artifacts_url(settings.data_dir))
                reg = Registry(monitor.db, url, on_new_model=lambda name, task:
                               install_defaults(monitor, name, task))
                app.state.registry = reg
    return reg


def _who(request: Request) -> tuple[Registry, str, Any]:
    """(registry, actor, key info or None when the server runs open), as the route's
    declared scope admitted them."""
    key, who = access.key(request), access.actor(request)
    # registry errors answer through aiwarden.server.errors (one status table); a store
    # that cannot be opened is 503
    registry = registry_for(request.app)
    return registry, who, key


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _metadata(text: str | None) -> dict[str, Any] | None:
    if text in (None, ""):
        return None
    doc = loads(text, "metadata")
    if not isinstance(doc, dict):
        raise Malformed("metadata: expected a JSON object.", "metadata")
    return doc


async def _upload(request: Request, fields: dict[str, Any]) -> bytes:
    """The artifact bytes; multipart form fields override the query's."""
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media != _MULTIPART:
        return await request.body()
    form = await request.form()
    try:
        upload = form.get("artifact")
        if upload is None or isinstance(upload, str):
            raise Malformed("A multipart upload needs a file field named 'artifact'.",
                            "artifact")
        for key in fields:
            value = form.get(key)
            if isinstance(value, str) and value != "":
                fields[key] = value
        fields["filename"] = fields["filename"] or upload.filename
        return await upload.read()
    finally:
        await form.close()


@router.post("/models/{name}/versions", status_code=201, dependencies=[requires(
                 "admin", why="Registering a version needs an admin key; a code-running "
                 "artifact (pickle, joblib, entry point) also needs that admin to vouch for it "
                 "with trust=true: loading it runs arbitrary code.")],
             responses=answers(RegisteredVersion, 409, 503, status=201),
             openapi_extra=body_doc("application/octet-stream", multipart=True))
async def register_version(
    request: Request, name: str, format: str | None = None, filename: str | None = None,
    entry_point: str | None = None, version: str | None = None, trust: str | None = None,
    task: str | None = None, metadata: str | None = None,
) -> dict[str, Any]:
    """Register the next version of ``name`` (created if new) from the body or a multipart
    ``artifact`` file; ``metadata`` is JSON (metrics, params, tags, source_commit, ...)."""
    registry, actor, key = _who(request)
    fields: dict[str, Any] = {"format": format, "filename": filename, "entry_point": entry_point,
                              "version": version, "trust": trust, "task": task,
                              "metadata": metadata}
    data = await _upload(request, fields)
    fields["filename"] = clean_filename(fields["filename"])  # as the registry will store it
    fmt = get_format(fields["format"]) if fields["format"] else detect_format(
        fields["filename"], fields["entry_point"])
    if key is None and not request.app.state.settings.allow_code_artifacts:
        # anyone who reaches an open server could run code on this machine through it
        await run_in_threadpool(_open_server_check, registry, fmt, data, _flag(fields["trust"]))
    info = await run_in_threadpool(
        registry.register, name, data, format=fmt.name, filename=fields["filename"],
        entry_point=fields["entry_point"], metadata=_metadata(fields["metadata"]),
        version=fields["version"], task=fields["task"], actor=actor, admin=True,
        trust=_flag(fields["trust"]))
    return info.to_dict()


_CREATE_KEY = ("Create a key (`aiwarden keys create NAME --scopes admin`) and register with "
               "it, or start the server with --allow-code-artifacts if only you can reach it.")


def _open_server_check(registry: Registry, fmt: ArtifactFormat, data: bytes,
                       trust: bool) -> None:
    """A server without keys and without --allow-code-artifacts: no code-running format,
    and ``trust=true`` extends only to scikit-learn's own model classes (issue 11)."""
    if fmt.runs_code:
        raise _Untrusted(f"This server has no API keys, so it does not accept {fmt.name} "
                         f"artifacts: loading one runs arbitrary code. {_CREATE_KEY}", "format")
    if not trust:
        return  # the registry refuses types off the allow-list itself, naming trust=true
    beyond = registry.beyond_allow_list(fmt.untrusted_types(data))  # os.system & co: 422
    foreign = [t for t in beyond if not sklearn_own(t)]
    if foreign:
        raise _Untrusted(
            f"This server has no API keys, so trust=true covers only scikit-learn's own model "
            f"classes; the skops artifact also holds {foreign}, and loading it calls them with "
            f"arguments the file chooses. {_CREATE_KEY}", "trust")


@router.get("/models", dependencies=[requires("read")], responses=answers(list[RegistryModel], 503))
def list_models(request: Request) -> list[dict[str, Any]]:
    return _who(request)[0].models()


@router.get("/models/{name}/versions", dependencies=[requires("read")],
            responses=answers(list[RegisteredVersion], 503))
def list_versions(request: Request, name: str) -> list[dict[str, Any]]:
    return [v.to_dict() for v in _who(request)[0].versions(name)]


@router.get("/models/{name}/versions/{version}", dependencies=[requires("read")],
            responses=answers(RegisteredVersion, 503))
def show_version(request: Request, name: str, version: str) -> dict[str, Any]:
    return _who(request)[0].get(name, version).to_dict()


@router.get("/models/{name}/versions/{version}/artifact", dependencies=[requires("read")],
            responses=answers(None, 409, 503, media="application/octet-stream"))
def download(request: Request, name: str, version: str) -> Response:
    """The artifact's bytes, verified against the SHA-256 recorded at upload."""
    registry = _who(request)[0]
    info, data = registry.artifact(name, version)  # changed bytes: 409 artifact_integrity
    fname = clean_filename(info.filename) or f"{name}-{info.version}.{info.format}"
    return Response(data, media_type="application/octet-stream", headers={
        "Content-Disposition": content_disposition(fname), "ETag": f'"{info.sha256}"',
        "X-Aiwarden-SHA256": info.sha256, "X-Aiwarden-Format": info.format})


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII ``filename`` for old clients, the exact name as UTF-8 in
    ``filename*`` (RFC 8187); header values must be Latin-1 and free of CR/LF."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", filename)
                    if not unicodedata.combining(c))  # é -> e; other letters become _
    plain = re.sub(r'[^A-Za-z0-9 !#$&+,.;=@^_`{}~()\[\]-]+', "_", plain).strip()
    stem, dot, ext = plain.rpartition(".")
    if not (stem if dot else plain).strip("_ ."):
        plain = f"artifact.{ext}" if dot else "artifact"
    exact = quote(filename, safe="!#$&+-.^_`|~")
    return f'attachment; filename="{plain}"; filename*=UTF-8\'\'{exact}'


class AliasMove(TextBody):
    version: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=2000)
    kind: Literal["set", "promote", "rollback", "import"] = "set"
    expected_version: str | None = None  # when sent (even null): move only from that version


@router.get("/models/{name}/aliases", dependencies=[requires("read")],
            responses=answers(dict[str, str], 503))
def list_aliases(request: Request, name: str) -> dict[str, str]:
    return _who(request)[0].aliases(name)


@router.get("/models/{name}/aliases/{alias}", dependencies=[requires("read")],
            responses=answers(RegisteredVersion, 503))
def resolve_alias(request: Request, name: str, alias: str) -> dict[str, Any]:
    return _who(request)[0].get(name, alias=alias).to_dict()


@router.put("/models/{name}/aliases/{alias}", dependencies=[requires("admin")],
            responses=answers(AliasMoved, 409, 503))
def move_alias(request: Request, name: str, alias: str, body: AliasMove) -> dict[str, Any]:
    """Point the alias at a version, atomically; the move and its reason join the history."""
    registry, actor, _ = _who(request)
    kw: dict[str, Any] = {}
    if "expected_version" in body.model_fields_set:
        kw["expected"] = body.expected_version
    event = registry.set_alias(name, alias, body.version, reason=body.reason, actor=actor,
                               kind=body.kind, **kw)
    return {"model": name, "alias": alias, "version": body.version, "changed": event is not None,
            "previous": None if event is None else event.from_version,
            "event": None if event is None else event.to_dict()}


@router.delete("/models/{name}/aliases/{alias}", dependencies=[requires("admin")],
               responses=answers(AliasEvent, 503))
def delete_alias(request: Request, name: str, alias: str,
                 reason: str = Query(..., min_length=1)) -> dict[str, Any]:
    registry, actor, _ = _who(request)
    return registry.delete_alias(name, alias, reason=reason, actor=actor).to_dict()


@router.get("/models/{name}/aliases/{alias}/history", dependencies=[requires("read")],
            responses=answers(list[AliasEvent], 503))
def alias_history(request: Request, name: str, alias: str,
                  limit: int = Query(100, ge=1, le=10_000)) -> list[dict[str, Any]]:
    return [e.to_dict() for e in _who(request)[0].history(name, alias, limit)]


@router.get("/models/{name}/history", dependencies=[requires("read")],
            responses=answers(list[AliasEvent], 503))
def model_history(request: Request, name: str,
                  limit: int = Query(100, ge=1, le=10_000)) -> list[dict[str, Any]]:
    return [e.to_dict() for e in _who(request)[0].history(name, None, limit)]


@router.get("/models/{name}/aliases/{alias}/previous", dependencies=[requires("read")],
            responses=answers(RegisteredVersion, 503))
def previous(request: Request, name: str, alias: str) -> dict[str, Any]:
    """The version the alias pointed at before its latest move: the rollback target."""
    found = _who(request)[0].previous(name, alias)
    if found is None:
        from aiwarden.store.models_repo import NotFound

        raise NotFound(f"Alias {alias!r} of {name!r} has never moved away from a version.",
                       "alias")
    return found.to_dict()
