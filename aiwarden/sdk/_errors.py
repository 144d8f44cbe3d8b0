"""The SDK's error and its retry timing, imported by the client, the registry mixin and the
background logger (none of which import each other at import time).

Errors, drawn once::

    AiwardenError (aiwarden.errors)
    └── ApiError        the server answered non-2xx (status = HTTP code), or could not
                        be reached (status = 0, kind "connection_error" or "timeout";
                        the httpx exception is kept as ``__cause__``)
"""

from __future__ import annotations

import random
from collections.abc import Mapping

import httpx
import orjson

from aiwarden.errors import AiwardenError

__all__ = ["ApiError", "overload_delay"]


class ApiError(AiwardenError):
    """The server refused a request, or could not be reached (``status == 0``)."""

    def __init__(self, status: int, kind: str, message: str, field: str | None = None) -> None:
        # args hold all four so the error pickles; the root's own __init__ is bypassed.
        Exception.__init__(self, status, kind, message, field)
        self.status, self.kind, self.message, self.field = status, kind, message, field

    def __str__(self) -> str:
        where = f" (field: {self.field})" if self.field else ""
        head = f"HTTP {self.status} {self.kind}" if self.status else self.kind
        return f"{head}: {self.message}{where}"

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        """Read ``{"detail": {"error", "message", "field"}}``; fall back to the body text."""
        status = response.status_code
        kind, message, field = response.reason_phrase or "error", response.text.strip(), None
        try:
            detail = orjson.loads(response.content).get("detail")
        except (orjson.JSONDecodeError, AttributeError):
            detail = None
        if isinstance(detail, Mapping):
            kind = str(detail.get("error") or kind)
            message = str(detail.get("message") or message)
            field = detail.get("field")
        elif isinstance(detail, list) and detail and isinstance(detail[0], Mapping):
            # FastAPI's own validation errors: [{"loc": [...], "msg": ..., "type": ...}]
            kind = "validation_error"
            message = "; ".join(str(d.get("msg", d)) for d in detail)
            loc = detail[0].get("loc")
            field = ".".join(map(str, loc)) if isinstance(loc, list) else None
        elif isinstance(detail, str):
            message = detail
        return cls(status, kind, message or f"HTTP {status}", field)


def overload_delay(response: httpx.Response, cap: float) -> float:
    """Seconds to wait before retrying a 429: its ``Retry-After`` (1 s when absent or an HTTP
    date), at most ``cap``, plus up to a quarter more so refused clients do not all come
    back in the same instant."""
    try:
        asked = max(0.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        asked = 1.0
    return min(cap, asked * random.uniform(1.0, 1.25))
