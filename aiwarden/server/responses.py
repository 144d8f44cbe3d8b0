"""JSON answers rendered by orjson: numpy scalars and big metric payloads serialise fast."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

__all__ = ["JSONResponse"]

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, option=_OPTIONS)
        except TypeError as exc:  # an answer quoting input with a lone surrogate ("\ud8b4")
            if "surrogates" not in str(exc):
                raise
            return orjson.dumps(_scrubbed(content), option=_OPTIONS)


def _scrubbed(value: Any) -> Any:
    """``value`` with each lone surrogate in its text replaced by '?': JSON text may spell
    one (``"\\ud8b4"``) but UTF-8 cannot carry it, and an error quoting it was a 500."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_scrubbed(k): _scrubbed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(v) for v in value]
    return value
