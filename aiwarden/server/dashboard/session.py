"""Who is looking at the dashboard: the API keys, carried by a signed session cookie.

The login form takes an API key once and checks it (scrypt, like the API). The cookie
then holds only the key's public id and an expiry, signed with a secret kept in the
database (so every server process accepts it and a restart keeps people signed in), never
the key itself: a stolen cookie cannot be turned into an API key, expires, and dies with
its key when the key is revoked. The cookie is HttpOnly and SameSite=Strict; actions are
POSTs whose Origin must be this site, so another site cannot act with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from fastapi import Request

from aiwarden.server import origin
from aiwarden.server.errors import Forbidden
from aiwarden.store import keys, kv

__all__ = ["COOKIE", "Sessions", "Viewer"]

COOKIE = "aiwarden_session"
TTL = 12 * 3600.0
_SECRET = "dashboard.session_secret"
_RECHECK = 2.0  # seconds a key's revocation may take to reach a signed-in viewer


@dataclass(frozen=True)
class Viewer:
    """The person behind a request: their key (None on an open loopback server)."""

    key: keys.KeyInfo | None

    @property
    def actor(self) -> str:
        """The name written on timelines: the key's name, as the API does."""
        return self.key.name if self.key is not None else "dashboard"

    @property
    def signed_in(self) -> bool:
        return self.key is not None

    def allows(self, scope: str) -> bool:
        return self.key is None or self.key.allows(scope)

    def require(self, scope: str) -> None:
        if not self.allows(scope):
            raise Forbidden(f"This key's scopes {list(self.key.scopes) if self.key else []} "
                            f"do not include {scope!r}.", "scope")


class Sessions:
    """Issues and checks session cookies for one app (any number of processes)."""

    def __init__(self, app_state: object) -> None:
        self.state = app_state
        self._secret: bytes | None = None
        self._keys: tuple[dict[str, keys.KeyInfo], float] = ({}, 0.0)
        self._lock = threading.Lock()

    @property
    def auth(self):  # type: ignore[no-untyped-def]
        return self.state.auth  # type: ignore[attr-defined]

    def open(self) -> bool:
        """No key was ever created and the server is on loopback: open, like the API."""
        return self.auth.open_when_no_keys and not self.auth.any_keys()

    def secret(self) -> bytes:
        if self._secret is None:
            with self.auth.db.write() as conn:  # first writer wins across processes
                self._secret = bytes.fromhex(
                    kv.put_if_absent(conn, _SECRET, secrets.token_hex(32)))
        return self._secret

    def _sign(self, payload: str) -> str:
        mac = hmac.new(self.secret(), payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def login(self, key: str, address: str) -> tuple[keys.KeyInfo, str] | None:
        """Check a typed key sent from ``address``; returns its info and the cookie value, or
        None. Failures count against the address and the key id as on the API (the same
        limiter, aiwarden/server/auth.py): beyond the limit ``TooManyFailures`` (429)."""
        key = key.strip()
        if not key or len(key) > 500:
            return None
        info = self.auth.verify(key, address)
        if info is None or not info.allows("read"):
            return None
        payload = f"{info.key_id}.{int(time.time() + TTL)}"
        return info, f"{payload}.{self._sign(payload)}"

    def _active(self, key_id: str) -> keys.KeyInfo | None:
        known, at = self._keys
        if time.monotonic() - at > _RECHECK:
            with self.auth.db.read() as conn:
                known = {k.key_id: k for k in keys.list_keys(conn) if k.revoked_at is None}
            with self._lock:
                self._keys = (known, time.monotonic())
        return known.get(key_id)

    def check(self, token: str | None) -> keys.KeyInfo | None:
        """The key behind a cookie when its signature holds, it has not expired and the key
        is still active."""
        if not token or token.count(".") != 2:
            return None
        key_id, expires, sig = token.split(".")
        if not hmac.compare_digest(sig, self._sign(f"{key_id}.{expires}")):
            return None
        if not expires.isdigit() or int(expires) < time.time():
            return None
        return self._active(key_id)

    def viewer(self, request: Request) -> Viewer | None:
        """The viewer, or None when the request must sign in first. A bearer key (scripts,
        curl) works as on the API."""
        if self.open():
            return Viewer(None)
        if request.headers.get("authorization") or request.headers.get("x-api-key"):
            info = self.auth.check(request, "read")  # 401/403 like the API
            return Viewer(info)
        info = self.check(request.cookies.get(COOKIE))
        return None if info is None else Viewer(info)


def same_origin(request: Request) -> bool:
    """A state-changing request must come from a page of this server (defence in depth
    beside SameSite=Strict and the app-wide CrossSiteGuard)."""
    allowed = getattr(request.app.state.settings, "origin_list", ())
    return origin.same_origin({k.lower(): v for k, v in request.headers.items()}, allowed)
