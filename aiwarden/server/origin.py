"""Browsers are clients too: what a web page on another site may not make this server do.

An open server on loopback is reachable by every page in the user's browser. Three checks,
applied to every request before any route runs (pure ASGI, nothing is read from the body):

* **Host**: a loopback-bound server answers only to loopback names (``localhost``,
  ``127.0.0.1``, ``[::1]``) plus ``allowed_hosts``, so a DNS-rebinding page (its own name
  resolving to 127.0.0.1) can neither read nor write. A server bound elsewhere checks the
  Host only when ``allowed_hosts`` is set.
* **Origin**: a state-changing method (anything but GET/HEAD/OPTIONS) is refused when the
  browser says it comes from another origin: an ``Origin`` header that is not this server
  (or an ``allowed_origins`` entry), ``Origin: null``, or ``Sec-Fetch-Site`` other than
  ``same-origin``/``none``. Scripts, the SDK, the CLI and curl send none of these and pass.
* **Content type**: the API takes JSON, Arrow, Parquet, CSV or a multipart artifact upload;
  the types a page may send cross-site without a CORS preflight and that no API route reads
  (``text/plain``, ``application/x-www-form-urlencoded``) are refused with 415.

No CORS headers are ever sent, so a foreign page cannot read answers either.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

import orjson

__all__ = ["CrossSiteGuard", "host_allowed", "same_origin"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})
_BROWSER_ONLY_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded"})


def _split_host(value: str) -> str:
    """The host name of a ``Host`` header or origin authority, without port or brackets."""
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:8000
        return value[1:value.find("]")] if "]" in value else value[1:]
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value


def is_loopback_name(host: str) -> bool:
    name = _split_host(host)
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_allowed(host: str | None, *, loopback_only: bool, allowed: Iterable[str]) -> bool:
    """Whether a request's Host header names this server. ``allowed`` entries are host names
    (any port), ``*`` for any, or ``.example.com`` for a domain and its sub-domains."""
    if not host:
        return False  # HTTP/1.1 requires it; a client that omits it gets a clear refusal
    name = _split_host(host)
    entries = [a.strip().lower() for a in allowed if a.strip()]
    if "*" in entries:
        return True
    for entry in entries:
        if entry.startswith(".") and (name == entry[1:] or name.endswith(entry)):
            return True
        if name == _split_host(entry):
            return True
    if loopback_only:
        return is_loopback_name(name)
    return not entries  # bound elsewhere and no list: any Host (keys guard the data)


def same_origin(headers: dict[str, str], allowed_origins: Iterable[str] = ()) -> bool:
    """Whether a browser request comes from a page of this server (or an allowed origin);
    True for clients that are not browsers (no ``Origin``, no ``Sec-Fetch-Site``)."""
    fetch_site = headers.get("sec-fetch-site")
    origin = headers.get("origin")
    allowed = {a.strip().rstrip("/").lower() for a in allowed_origins if a.strip()}
    if origin is not None:
        origin = origin.strip().rstrip("/").lower()
        if origin in allowed:
            return True
        if origin == "null" or "://" not in origin:  # sandboxed frames, file:// pages
            return False
        # scheme aside (a TLS proxy may sit in front), the authority must be our Host
        if origin.split("://", 1)[1] != headers.get("host", "").strip().lower():
            return False
    # "same-site" is another port or sub-domain of this site: another origin all the same
    return fetch_site is None or fetch_site in ("same-origin", "none")


class CrossSiteGuard:
    """ASGI middleware: the Host, Origin and content-type checks described above."""

    def __init__(self, app: Any, *, loopback_only: bool, allowed_hosts: Iterable[str] = (),
                 allowed_origins: Iterable[str] = (), data_paths: tuple[str, ...] = ("/api/",)
                 ) -> None:
        self.app, self.loopback_only, self.data_paths = app, loopback_only, data_paths
        self.allowed_hosts = tuple(allowed_hosts)
        self.allowed_origins = tuple(allowed_origins)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers") or []}
        host = headers.get("host")
        if not host_allowed(host, loopback_only=self.loopback_only,
                            allowed=self.allowed_hosts):
            hint = ("this server listens on loopback and answers only to localhost, "
                    "127.0.0.1 and [::1]" if self.loopback_only else
                    "it is not in AIWARDEN_ALLOWED_HOSTS")
            await _refuse(send, 421, "host_not_allowed", "host",
                          f"Host {host!r} is not a name of this server: {hint}. Add it to "
                          "AIWARDEN_ALLOWED_HOSTS (or --allowed-hosts) if it is.")
            return
        if scope["method"] not in SAFE_METHODS:
            if not same_origin(headers, self.allowed_origins):
                await _refuse(send, 403, "cross_site", "origin",
                              "A page from another site may not change anything here (Origin "
                              f"{headers.get('origin')!r}, Sec-Fetch-Site "
                              f"{headers.get('sec-fetch-site')!r}). Add the origin to "
                              "AIWARDEN_ALLOWED_ORIGINS if it is yours.")
                return
            media = headers.get("content-type", "").split(";")[0].strip().lower()
            if media in _BROWSER_ONLY_TYPES and scope["path"].startswith(self.data_paths):
                await _refuse(send, 415, "unsupported_media_type", "content-type",
                              f"The API does not read {media} bodies: send application/json "
                              "(or Arrow, Parquet, CSV, multipart where the route says so).")
                return
        await self.app(scope, receive, send)


async def _refuse(send: Any, status: int, kind: str, field: str, message: str) -> None:
    body = orjson.dumps({"detail": {"error": kind, "message": message, "field": field}})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"vary", b"Origin")]})
    await send({"type": "http.response.body", "body": body})
