"""API-key checks. A verified key is cached (scrypt is deliberately slow); revocation is
re-read at most every few seconds, so a key revoked from the CLI stops working quickly.

Failed checks are rate-limited (docs/security.md, Authentication): every key that is not in
the cache costs one scrypt whether its id exists or not (``keys.verify_key``), and each
client address and each key id may fail ``limit`` times per ``window`` seconds (token
buckets). Beyond that the answer is 429 with ``Retry-After``, before any scrypt runs:

* an address out of failures is refused whatever key it sends next, until a failure's worth
  of time has passed; other addresses are not affected;
* a key id out of failures is refused from addresses that themselves failed recently, but a
  clean address (the real key holder's) is still checked, so guessing at a key from many
  addresses cannot lock its owner out;
* a key this process already verified is answered from the cache and never limited.

The buckets live in the process: each server process limits on its own.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import Request

from aiwarden.server.errors import Forbidden, HttpError, Unauthorized
from aiwarden.store import keys
from aiwarden.store.database import Database

__all__ = ["MISS", "Authenticator", "FailureLimiter", "TooManyFailures"]

_RECHECK = 2.0
MISS: Any = object()  # ``cached`` could not answer without a database read or scrypt


class TooManyFailures(HttpError):
    status, kind = 429, "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, "authorization")
        self.retry_after = max(1, math.ceil(retry_after))
        self.headers = {"Retry-After": str(self.retry_after)}


class FailureLimiter:
    """Token buckets of failures: each name (``addr:...``, ``key:...``) holds ``limit``
    tokens, refilled at ``limit`` per ``window`` seconds; a failure takes one. Thread-safe;
    at most ``max_tracked`` names are kept (full buckets are forgotten first)."""

    def __init__(self, limit: int = 10, window: float = 60.0, max_tracked: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.max_tracked, self.clock = limit, window, max_tracked, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, at)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.limit > 0 and self.window > 0

    def _tokens(self, name: str, now: float) -> float:
        tokens, at = self._buckets.get(name, (float(self.limit), now))
        return min(float(self.limit), tokens + (now - at) * self.limit / self.window)

    def _wait(self, tokens: float) -> float:
        return (1.0 - tokens) * self.window / self.limit

    def take(self, address: str, key_id: str | None) -> float:
        """Take a failure's token from the address (and the key id) before a check; 0 when
        taken, else the seconds until the caller may try again (nothing taken)."""
        if not self.enabled:
            return 0.0
        names = [f"addr:{address}"] + ([f"key:{key_id}"] if key_id else [])
        with self._lock:
            now = self.clock()
            levels = [self._tokens(n, now) for n in names]
            if levels[0] < 1.0:
                return self._wait(levels[0])
            clean = levels[0] >= self.limit  # no recent failure from this address
            if len(levels) > 1 and levels[1] < 1.0 and not clean:
                return self._wait(levels[1])
            for name, level in zip(names, levels, strict=True):
                self._buckets[name] = (max(0.0, level - 1.0), now)
            self._prune(now)
        return 0.0

    def give_back(self, address: str, key_id: str | None) -> None:
        """The check succeeded: return what ``take`` took."""
        if not self.enabled:
            return
        with self._lock:
            now = self.clock()
            for name in [f"addr:{address}"] + ([f"key:{key_id}"] if key_id else []):
                self._buckets[name] = (min(float(self.limit), self._tokens(name, now) + 1.0),
                                       now)

    def _prune(self, now: float) -> None:
        if len(self._buckets) <= self.max_tracked:
            return
        for name in [n for n in self._buckets if self._tokens(n, now) >= self.limit]:
            del self._buckets[name]
        while len(self._buckets) > self.max_tracked:  # oldest first
            del self._buckets[next(iter(self._buckets))]


def client_address(request: Request) -> str:
    """The peer as uvicorn reports it (X-Forwarded-For only from its trusted proxies)."""
    return request.client.host if request.client is not None else "unknown"


class Authenticator:
    def __init__(self, db: Database, *, open_when_no_keys: bool,
                 limiter: FailureLimiter | None = None) -> None:
        self.db = db
        self.open_when_no_keys = open_when_no_keys
        self.limiter = limiter or FailureLimiter()
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
            if cached is None:
                info = self.verify(token, client_address(request))
            else:
                with self.db.read() as conn:
                    info = _still_valid(conn, cached[0])
            if info is None:
                with self._lock:
                    self._cache.pop(digest, None)
                raise Unauthorized("Unknown or revoked API key.")
            with self._lock:
                self._cache[digest] = (info, time.monotonic())
            cached = self._cache[digest]
        return _allowed(cached[0], scope)

    def verify(self, token: str, address: str) -> keys.KeyInfo | None:
        """One rate-limited scrypt check of a key sent from ``address`` (the API and the
        dashboard's sign-in); raises ``TooManyFailures`` without checking when the address
        or the key id is out of failures."""
        kid = keys.key_id(token)
        wait = self.limiter.take(address, kid)
        if wait > 0:
            raise TooManyFailures(
                f"Too many failed authentications from this client or for this key id; "
                f"retry in {max(1, math.ceil(wait))} s.", wait)
        with self.db.read() as conn:
            info = keys.verify_key(conn, token)
        if info is not None:
            self.limiter.give_back(address, kid)
        return info


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
