"""Templates, filters and the headers every dashboard page carries.

Pages are rendered on the server (Jinja2); the browser only draws charts from the JSON
embedded in them and swaps fragments with htmx, so no page needs a build step.
"""

from __future__ import annotations

import hashlib
import math
import time
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Undefined

__all__ = ["HEADERS", "STATIC", "TEMPLATES", "page", "query", "templates"]

_SERVER = Path(__file__).resolve().parent.parent
TEMPLATES = _SERVER / "templates"
STATIC = _SERVER / "static"

# Scripts only from our own origin, nothing inline that could run: JSON blocks are data.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
                               "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                               "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@cache
def asset_version(name: str) -> str:
    """A short content hash, so a new release busts cached assets without stale pages."""
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:10]


def static_url(name: str) -> str:
    return f"/static/{name}?v={asset_version(name)}"


def iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def when(ts: float | None) -> str:
    """A readable UTC time; the page's script rewrites it in the viewer's time zone."""
    if ts is None:
        return "–"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def ago(ts: float | None, now: float | None = None) -> str:
    if ts is None:
        return "never"
    s = max(0.0, (now or time.time()) - ts)
    for unit, width in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= width:
            return f"{int(s // width)} {unit} ago"
    return "just now"


def num(v: Any, digits: int = 3) -> str:
    """Numbers for people: three significant digits, thousands separated, dash for none
    (or for a key the data does not have: a column whose value could not be computed)."""
    if v is None or isinstance(v, Undefined) or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) >= 1000):
        return f"{int(v):,}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def pct(v: Any, digits: int = 1) -> str:
    if v is None or isinstance(v, Undefined) or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v * 100:.{digits}f} %"


def size(n: Any) -> str:
    """Bytes for people."""
    if not isinstance(n, int | float):
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def query(request: Request, **changes: Any) -> str:
    """This page's query string with some parameters changed (None removes one): deep links
    keep the model, range and feature the viewer chose."""
    params = {k: v for k, v in request.query_params.items()}
    for k, v in changes.items():
        if v is None:
            params.pop(k, None)
        else:
            params[k] = str(v)
    return "?" + urlencode(params) if params else "?"


@cache
def templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=str(TEMPLATES))
    t.env.filters.update(when=when, ago=ago, num=num, pct=pct, iso=iso, size=size)
    t.env.globals.update(static=static_url, query=query)
    t.env.trim_blocks = t.env.lstrip_blocks = True
    return t


def page(request: Request, name: str, context: dict[str, Any], status: int = 200,
         headers: dict[str, str] | None = None) -> HTMLResponse:
    """Render a page or fragment with the security headers and the viewer in context."""
    ctx = {"viewer": getattr(request.state, "viewer", None), "now": time.time(), **context}
    return templates().TemplateResponse(request, name, ctx, status_code=status,
                                        headers={**HEADERS, **(headers or {})})
