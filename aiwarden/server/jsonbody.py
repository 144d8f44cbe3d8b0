"""One validated parse for every JSON body: content type, JSON syntax, then a pydantic
model, each failure a 4xx naming the field (never a 500 from ``request.json()``).

JSON has no NaN or Infinity, but Python's ``json.dumps`` writes them; a body holding one is
refused with the row and field that hold it (``rows[3].amount``), not a parser position.

A body nested deeper than :data:`MAX_DEPTH` levels is refused too: no request needs it, and
deeper documents break later, recursive steps (validation, storing with ``orjson.dumps``,
which stops at 254 levels).
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError, model_validator

from aiwarden._json import non_finite
from aiwarden.server.errors import Malformed, UnsupportedMediaType

__all__ = [
    "MAX_DEPTH",
    "TextBody",
    "huge_int",
    "json_body",
    "json_rows",
    "loads",
    "lone_surrogate",
    "parse_json",
    "require_json",
]

M = TypeVar("M", bound=BaseModel)

MAX_DEPTH = 64
_CONTAINERS = (dict, list)


def _too_deep(doc: Any, limit: int) -> bool:
    """Whether ``doc`` nests containers deeper than ``limit``: level by level, no recursion."""
    level = [doc] if isinstance(doc, _CONTAINERS) else []
    for _ in range(limit):
        if not level:
            return False
        level = [v for c in level for v in (c.values() if isinstance(c, dict) else c)
                 if isinstance(v, _CONTAINERS)]
    return bool(level)


def _nested_too_deep(where: str, limit: int = MAX_DEPTH) -> Malformed:
    return Malformed(f"The {'body' if where == 'body' else where} is nested deeper than "
                     f"{limit} levels.", where)


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/")
                                           and media.endswith("+json"))


def loads(body: bytes | str, where: str = "body", *, positioned: bool = False,
          max_depth: int | None = MAX_DEPTH) -> Any:
    """JSON ``body``; 422 naming the line and column, or the field holding a NaN/Infinity.

    The error's ``field`` is ``where`` (``body:line:column`` with ``positioned``, as the
    ingest routes answer). ``max_depth=None``: a route that checks each row's depth itself
    (ingest quarantines the one deep row and keeps the others) takes up to orjson's 1024."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if exc.msg.startswith("depth limit"):  # orjson stops at 1024 levels
            raise _nested_too_deep(where, max_depth or 1024) from None
        found = non_finite(body, where)
        if found:
            raise Malformed(found[1], found[0]) from None
        raise Malformed(f"Malformed JSON{f' in {where}' if where != 'body' else ''} at line "
                        f"{exc.lineno}, column {exc.colno} (char {exc.pos}): {exc.msg}.",
                        f"{where}:{exc.lineno}:{exc.colno}" if positioned else where
                        ) from None
    # fewer brackets than the limit cannot nest deeper: most bodies skip the walk
    if max_depth is not None and body.count(b"[" if isinstance(body, bytes) else "[") + (
            body.count(b"{" if isinstance(body, bytes) else "{")) > max_depth and _too_deep(
            doc, max_depth):
        raise _nested_too_deep(where, max_depth)
    return doc


def parse_json(body: bytes, model: type[M]) -> M:
    """``body`` as ``model``; 422 naming the body, the position or the field at fault."""
    if not body.strip():
        raise Malformed("The body is empty: send a JSON object.", "body")
    doc = loads(body)
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise Malformed(f"{where}: {first['msg']}.", where) from None


def require_json(request: Request) -> None:
    """415 naming ``content-type`` unless the request says ``application/json`` (or
    ``application/*+json``): for routes that read their body with :func:`loads`."""
    if not _is_json(request.headers.get("content-type")):
        raise UnsupportedMediaType(
            f"Send the body as application/json (got "
            f"{request.headers.get('content-type') or 'no Content-Type'}).", "content-type")


async def json_body(request: Request, model: type[M]) -> M:
    """The request's JSON body as ``model``: 415 unless it says ``application/json``."""
    require_json(request)
    return parse_json(await request.body(), model)


async def json_rows(request: Request, what: str) -> list[Any]:
    """A JSON body of rows: one object, a list of them, or ``{"rows": [...]}`` (the LLM and
    image event routes); ``what`` names a row in the refusal."""
    require_json(request)
    body = await request.body()
    if not body.strip():
        raise Malformed("The body is empty.", "body")
    doc = loads(body)
    if isinstance(doc, dict):
        doc = doc.get("rows", [doc])
    if not isinstance(doc, list):
        raise Malformed(f"Expected {what} object, a list of them, or {{\"rows\": [...]}}.",
                        "rows")
    return doc


def lone_surrogate(value: Any, where: str = "") -> str | None:
    """The field of the first text in ``value`` holding a lone UTF-16 surrogate, else None.

    JSON ("\\ud8b4" through Python's json, which FastAPI's own body parsing uses) and YAML
    may spell one; UTF-8 cannot carry it, so the store fails on it with a 500."""
    return _first(value, where, _lone)


def huge_int(value: Any, where: str = "") -> str | None:
    """The field of the first integer in ``value`` beyond 64 bits, else None: Python's json
    reads any size, orjson (the store's JSON) refuses them with a 500."""
    return _first(value, where, lambda v: isinstance(v, int) and not -2**63 <= v < 2**64)


def _lone(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _first(value: Any, where: str, bad: Any) -> str | None:
    """The field of the first value (or key) in ``value`` that ``bad`` flags."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        v, at = stack.pop()
        if bad(v):
            return at or "body"
        if isinstance(v, dict):
            stack.extend((k, at) for k in v)
            stack.extend((x, f"{at}.{k}" if at else str(k)) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend((x, f"{at}[{i}]") for i, x in enumerate(v))
    return None


class LoneSurrogate(ValueError):
    """A lone surrogate in a body, with the field holding it (the 422 names it)."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field}: the text holds a lone UTF-16 surrogate, which is not text")
        self.field = field


class TextBody(BaseModel):
    """A JSON body FastAPI parses itself: a lone surrogate anywhere in it is a 422 naming
    the field, before a handler could write it (orjson, behind :func:`loads`, refuses them)."""

    @model_validator(mode="before")
    @classmethod
    def _no_lone_surrogates(cls, data: Any) -> Any:
        where = lone_surrogate(data)
        if where is not None:
            raise LoneSurrogate(where)
        return data
