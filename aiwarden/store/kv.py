"""A JSON document per key: state too small and too varied for tables of its own."""

from __future__ import annotations

import time
from typing import Any

import orjson
from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from aiwarden.store.tables import kv_state

__all__ = ["create", "get", "put", "put_if_absent"]


def get(conn: Connection, key: str, default: Any = None) -> Any:
    value = conn.execute(select(kv_state.c.value).where(kv_state.c.key == key)).scalar()
    return default if value is None else orjson.loads(value)


def _body(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _insert(conn: Connection, key: str, body: str) -> bool:
    """Insert in a savepoint; False when another writer inserted the key first."""
    try:
        with conn.begin_nested():
            conn.execute(kv_state.insert().values(key=key, value=body, updated_at=time.time()))
        return True
    except IntegrityError:
        return False


def put(conn: Connection, key: str, value: Any) -> None:
    body = _body(value)
    stmt = update(kv_state).where(kv_state.c.key == key).values(value=body,
                                                                 updated_at=time.time())
    if not conn.execute(stmt).rowcount and not _insert(conn, key, body):
        conn.execute(stmt)  # lost the race to create it: now it exists


def create(conn: Connection, key: str, value: Any) -> bool:
    """Store ``value`` under a new key; False (nothing written) when the key exists."""
    return _insert(conn, key, _body(value))


def put_if_absent(conn: Connection, key: str, value: Any) -> Any:
    """Store ``value`` unless the key exists; returns what is stored (first writer wins)."""
    _insert(conn, key, _body(value))
    return get(conn, key)
