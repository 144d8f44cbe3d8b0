"""One validated parse for every JSON body: content type, JSON syntax, then a pydantic
model, each failure a 4xx naming the field (never a 500 from ``request.json()``).

JSON has no NaN or Infinity, but Python's ``json.dumps`` writes them; a body holding one is
refused with the row and field that hold it (``rows[3].amount``), not a parser position.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError

from aiwarden._json import non_finite
from aiwarden.server.errors import Malformed, UnsupportedMediaType

__all__ = ["json_body", "loads", "parse_json"]

M = TypeVar("M", bound=BaseModel)


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/")
                                           and media.endswith("+json"))


def loads(body: bytes | str, where: str = "body", *, positioned: bool = False) -> Any:
    """JSON ``body``; 422 naming the line and column, or the field holding a NaN/Infinity.

    The error's ``field`` is ``where`` (``body:line:column`` with ``positioned``, as the
    ingest routes answer)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        found = non_finite(body, where)
        if found:
            raise Malformed(found[1], found[0]) from None
        raise Malformed(f"Malformed JSON{f' in {where}' if where != 'body' else ''} at line "
                        f"{exc.lineno}, column {exc.colno} (char {exc.pos}): {exc.msg}.",
                        f"{where}:{exc.lineno}:{exc.colno}" if positioned else where
                        ) from None


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


async def json_body(request: Request, model: type[M]) -> M:
    """The request's JSON body as ``model``: 415 unless it says ``application/json``."""
    if not _is_json(request.headers.get("content-type")):
        raise UnsupportedMediaType(
            f"Send the body as application/json (got "
            f"{request.headers.get('content-type') or 'no Content-Type'}).", "content-type")
    return parse_json(await request.body(), model)
