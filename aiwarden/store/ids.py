"""The per-row prediction index: which ids a model has, and where each row is stored.

Both calls take whole arrays: one statement per request, not one per row. SQLite gets the
ids as one JSON array (``json_each``), PostgreSQL as arrays (``unnest``). SQLite's
``CROSS JOIN`` fixes the loop order: the request's ids outside, the index lookup inside;
left to the planner it scanned the JSON once per stored prediction.
"""

from __future__ import annotations

import numpy as np
import orjson
from sqlalchemy import Connection

from aiwarden.store.database import Database

__all__ = ["existing", "insert", "locate"]


def _json(values: np.ndarray) -> str:
    return orjson.dumps([str(v) for v in values]).decode() if values.dtype == object \
        else orjson.dumps(values.tolist()).decode()


def existing(conn: Connection, db: Database, model_id: int, ids: np.ndarray) -> set[str]:
    """The ids among ``ids`` this model has already accepted."""
    if len(ids) == 0:
        return set()
    if db.is_sqlite:
        res = conn.exec_driver_sql(
            "SELECT p.prediction_id FROM json_each(?) j CROSS JOIN predictions p "
            "ON p.model_id = ? AND p.prediction_id = j.value", (_json(ids), model_id))
    else:
        res = conn.exec_driver_sql(
            "SELECT prediction_id FROM predictions WHERE model_id = %s "
            "AND prediction_id = ANY(%s)", (model_id, [str(v) for v in ids]))
    return {r[0] for r in res}


def insert(conn: Connection, db: Database, model_id: int, version_id: int, ids: np.ndarray,
           ts: np.ndarray, batch_id: int) -> None:
    """Index rows 0..n-1 of ``batch_id``; the caller has removed the ids that exist."""
    n = len(ids)
    if n == 0:
        return
    if db.is_sqlite:
        conn.exec_driver_sql(
            "INSERT INTO predictions (model_id, prediction_id, version_id, ts, batch_id, row_idx) "
            "SELECT ?, j.value ->> '$[0]', ?, j.value ->> '$[1]', ?, j.key FROM json_each(?) j",
            (model_id, version_id, batch_id, orjson.dumps(
                list(zip([str(v) for v in ids], np.asarray(ts, np.float64).tolist(),
                         strict=True))).decode()))
    else:
        conn.exec_driver_sql(
            "INSERT INTO predictions (model_id, prediction_id, version_id, ts, batch_id, row_idx) "
            "SELECT %s, u.pid, %s, u.ts, %s, u.ord - 1 FROM unnest(%s::text[], %s::float8[]) "
            "WITH ORDINALITY AS u(pid, ts, ord)",
            (model_id, version_id, batch_id, [str(v) for v in ids],
             np.asarray(ts, np.float64).tolist()))


def locate(conn: Connection, db: Database, model_id: int,
           ids: np.ndarray) -> list[tuple[str, int, float, int, int]]:
    """``(prediction_id, version_id, ts, batch_id, row_idx)`` of the ids the model has."""
    if len(ids) == 0:
        return []
    if db.is_sqlite:
        res = conn.exec_driver_sql(
            "SELECT p.prediction_id, p.version_id, p.ts, p.batch_id, p.row_idx "
            "FROM json_each(?) j CROSS JOIN predictions p "
            "ON p.model_id = ? AND p.prediction_id = j.value", (_json(ids), model_id))
    else:
        res = conn.exec_driver_sql(
            "SELECT prediction_id, version_id, ts, batch_id, row_idx FROM predictions "
            "WHERE model_id = %s AND prediction_id = ANY(%s)", (model_id, [str(v) for v in ids]))
    return [tuple(r) for r in res]
