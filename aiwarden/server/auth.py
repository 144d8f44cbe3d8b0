"""API-key checks. A verified key is cached (scrypt is deliberately slow); revocation is
re-read at most every few seconds, so a key revoked from the CLI stops working quickly."""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

from fastapi import Request

from aiwarden.server.errors import Forbidden, Unauthorized
from aiwarden.store import keys
from aiwarden.store.database import Database

__all__ = ["MISS", "Authenticator"]

_RECHECK = 2.0
MISS: Any = object()  # ``cached`` could not answer without a database read or scrypt


class Authenticator:
    def __init__(self, db: Database, *, open_when_no_keys: bool) -> None:
        self.db = db
        self.open_when_no_keys = open_when_no_keys
        self._cache: dict[str, tuple[keys.KeyInfo, float]] = {}
        self._any_keys: tuple[bool, float] = (False, 0.0)
        self._lock = threading.Lock()

    def any_keys(self) -> bool:
        known, at = self._any_keys
        if time.monotonic() - at > _RECHECK:
            with self.db.read() as conn:  # revoked keys count: revoking never reopens
                known = bool(keys.list_keys(conn))
            self._any_keys = (known, time.monotonic())
        return known

    def cached(self, request: Request, scope: str) -> Any:
        """What ``check`` would answer when that needs no database read (an open server
        known as such, a key verified moments ago); else ``MISS``. Cheap: the event loop
        may call it."""
        if self.open_when_no_keys:
            known, at = self._any_keys
            if time.monotonic() - at > _RECHECK:
                return MISS
            if not known:
                return None
        token = _token(request)
        if not token:
            return MISS  # check raises the 401
        hit = self._cache.get(hashlib.sha256(token.encode()).hexdigest())
        if hit is None or time.monotonic() - hit[1] > _RECHECK:
            return MISS
        return _allowed(hit[0], scope)

    def check(self, request: Request, scope: str) -> keys.KeyInfo | None:
        """The caller's key info; raises 401/403. None when the server runs open."""
        if self.open_when_no_keys and not self.any_keys():
            return None
        token = _token(request)
        if not token:
            raise Unauthorized("An API key is required: send 'Authorization: Bearer <key>'.")
        digest = hashlib.sha256(token.encode()).hexdigest()
        cached = self._cache.get(digest)
        if cached is None or time.monotonic() - cached[1] > _RECHECK:
            with self.db.read() as conn:
                info = keys.verify_key(conn, token) if cached is None else \
                    _still_valid(conn, cached[0])
            if info is None:
                with self._lock:
                    self._cache.pop(digest, None)
                raise Unauthorized("Unknown or revoked API key.")
            with self._lock:
                self._cache[digest] = (info, time.monotonic())
            cached = self._cache[digest]
        return _allowed(cached[0], scope)


def _allowed(info: keys.KeyInfo, scope: str) -> keys.KeyInfo:
    if not info.allows(scope):
        raise Forbidden(f"This key's scopes {list(info.scopes)} do not include {scope!r}.",
                        "scope")
    return info


def _still_valid(conn, info: keys.KeyInfo) -> keys.KeyInfo | None:  # type: ignore[no-untyped-def]
    current = {k.key_id: k for k in keys.list_keys(conn)}.get(info.key_id)
    return current if current is not None and current.revoked_at is None else None


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("x-api-key")
