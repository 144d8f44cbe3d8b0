"""A JSON document per key: state too small and too varied for tables of its own."""

from __future__ import annotations

import time
from typing import Any

import orjson
from sqlalchemy import Connection, select, update

from aiwarden.store.tables import kv_state

__all__ = ["get", "put"]


def get(conn: Connection, key: str, default: Any = None) -> Any:
    value = conn.execute(select(kv_state.c.value).where(kv_state.c.key == key)).scalar()
    return default if value is None else orjson.loads(value)


def put(conn: Connection, key: str, value: Any) -> None:
    body = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    res = conn.execute(update(kv_state).where(kv_state.c.key == key).values(
        value=body, updated_at=time.time()))
    if not res.rowcount:
        conn.execute(kv_state.insert().values(key=key, value=body, updated_at=time.time()))
