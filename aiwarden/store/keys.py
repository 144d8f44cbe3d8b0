"""API keys: ``aw_<id>_<secret>``; only a salted scrypt hash of the secret is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from aiwarden.errors import ParameterError
from aiwarden.store.tables import api_keys

__all__ = ["IMPLIES", "SCOPES", "KeyInfo", "count_active", "create_key", "key_id", "list_keys",
           "revoke_key", "verify_key"]

SCOPES = ("read", "ingest", "operate", "admin")
# What a scope grants beyond itself (docs/api.md, "Scopes"): admin may do everything, an
# operator must see what they act on; ingest stays write-only for producers.
IMPLIES: dict[str, frozenset[str]] = {"admin": frozenset(SCOPES),
                                      "operate": frozenset({"operate", "read"})}
_PREFIX = "aw"
# what an unknown id's secret is checked against (no real hash equals 64 zeros)
_DUMMY_SALT, _DUMMY_HASH = "00" * 16, "0" * 64


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: float
    revoked_at: float | None

    def allows(self, scope: str) -> bool:
        return any(scope in IMPLIES.get(s, (s,)) for s in self.scopes)

    def to_dict(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "name": self.name, "scopes": list(self.scopes),
                "created_at": self.created_at, "revoked_at": self.revoked_at}


def _hash(secret: str, salt: str) -> str:
    # scrypt, not a bare hash: a leaked table must not be cheap to brute-force offline.
    return hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1,
                          dklen=32).hex()


def _info(row: Any) -> KeyInfo:
    return KeyInfo(row.key_id, row.name, tuple(row.scopes.split(",")), row.created_at,
                   row.revoked_at)


def create_key(conn: Connection, name: str, scopes: list[str] | tuple[str, ...]) -> tuple[str,
                                                                                           KeyInfo]:
    """Returns the full key (shown once) and its public info."""
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise ParameterError(f"scopes: expected some of {list(SCOPES)}, got {list(scopes)}.",
                             "scopes")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    now = time.time()
    conn.execute(api_keys.insert().values(key_id=key_id, hash=_hash(secret, salt), salt=salt,
                                          name=name, scopes=",".join(scopes), created_at=now))
    return f"{_PREFIX}_{key_id}_{secret}", KeyInfo(key_id, name, tuple(scopes), now, None)


def key_id(key: str) -> str | None:
    """The public id of a well-formed key (``aw_<id>_<secret>``), else None."""
    parts = key.split("_", 2)
    ok = len(parts) == 3 and parts[0] == _PREFIX and 0 < len(parts[1]) <= 64 and parts[2]
    return parts[1] if ok else None


def verify_key(conn: Connection, key: str) -> KeyInfo | None:
    """The key's info if it is well formed, known, unrevoked and its secret matches.

    Every call runs one scrypt and one lookup, whatever the outcome: an unknown id, a revoked
    key or a malformed token costs what a wrong secret costs, so the time of an answer does
    not tell which key ids exist.
    """
    kid = key_id(key)
    row = conn.execute(select(api_keys).where(api_keys.c.key_id == (kid or ""))).first()
    salt, stored = (row.salt, row.hash) if row is not None else (_DUMMY_SALT, _DUMMY_HASH)
    matches = hmac.compare_digest(_hash(key.split("_", 2)[-1], salt), stored)
    if kid is None or row is None or row.revoked_at is not None or not matches:
        return None
    return _info(row)


def revoke_key(conn: Connection, key_id: str) -> bool:
    res = conn.execute(api_keys.update().where(api_keys.c.key_id == key_id,
                                               api_keys.c.revoked_at.is_(None))
                       .values(revoked_at=time.time()))
    return res.rowcount > 0


def list_keys(conn: Connection) -> list[KeyInfo]:
    return [_info(r) for r in conn.execute(select(api_keys).order_by(api_keys.c.id))]


def count_active(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(api_keys)
                            .where(api_keys.c.revoked_at.is_(None))).scalar() or 0)
