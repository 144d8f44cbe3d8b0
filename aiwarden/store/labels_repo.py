"""Labels by prediction id, set-at-a-time like the prediction index (see ``ids``).

Every call takes the request's ids as one array: a JSON array on SQLite, a staged
temporary table on PostgreSQL (filled by ``COPY``), so 1,000,000 labels cost a handful of
statements, not thousands of ``IN`` lists.
"""

from __future__ import annotations

import numpy as np
import orjson
import pyarrow as pa
from sqlalchemy import Connection

from aiwarden.store.database import Database
from aiwarden.store.ids import _copy, _ids, _json, _pg_staged

__all__ = ["existing", "insert", "labels_of", "mark_joined"]


def _from(conn: Connection, db: Database, ids: np.ndarray) -> tuple[str, tuple]:
    """A FROM clause naming the ids as ``r.pid``, and its parameters."""
    if db.is_sqlite:
        return "(SELECT value AS pid FROM json_each(?)) r CROSS JOIN labels l", (_json(ids),)
    _pg_staged(conn, ids)
    return "request_ids r JOIN labels l", ()


def _mark(db: Database) -> str:
    return "?" if db.is_sqlite else "%s"


def existing(conn: Connection, db: Database, model_id: int, ids: np.ndarray) -> set[str]:
    """The ids among ``ids`` that have a label already."""
    if len(ids) == 0:
        return set()
    src, params = _from(conn, db, ids)
    res = conn.exec_driver_sql(
        f"SELECT l.prediction_id FROM {src} ON l.model_id = {_mark(db)} "
        "AND l.prediction_id = r.pid", (*params, model_id))
    return {r[0] for r in res}


def labels_of(conn: Connection, db: Database, model_id: int, ids: np.ndarray, *,
              pending_only: bool = False) -> dict[str, str]:
    """``prediction id → label`` for the ids that have one (only unjoined, if asked)."""
    if len(ids) == 0:
        return {}
    src, params = _from(conn, db, ids)
    extra = " AND l.joined = false" if pending_only else ""
    res = conn.exec_driver_sql(
        f"SELECT l.prediction_id, l.label FROM {src} ON l.model_id = {_mark(db)} "
        f"AND l.prediction_id = r.pid{extra}", (*params, model_id))
    return {r[0]: r[1] for r in res}


def insert(conn: Connection, db: Database, model_id: int, ids: np.ndarray,
           values: np.ndarray, joined: np.ndarray, now: float) -> None:
    """Store new labels (the caller removed the ids that have one), joined or waiting.

    Writing the joined flag at insert time spares updating a million rows afterwards.
    """
    n = len(ids)
    if n == 0:
        return
    flags = np.asarray(joined, dtype=bool)
    if db.is_sqlite:
        conn.exec_driver_sql(
            "INSERT INTO labels (model_id, prediction_id, label, received_at, joined) "
            "SELECT ?, j.value ->> '$[0]', j.value ->> '$[1]', ?, j.value ->> '$[2]' "
            "FROM json_each(?) j",
            (model_id, now, orjson.dumps(list(zip(_ids(ids), _ids(values),
                                                   flags.astype(np.int64).tolist(),
                                                   strict=True))).decode()))
        return
    _copy(conn, "COPY labels (model_id, prediction_id, label, received_at, joined) "
          "FROM STDIN (FORMAT csv)", pa.table({
              "model_id": pa.repeat(pa.scalar(model_id, pa.int64()), n),
              "prediction_id": pa.array(_ids(ids), pa.string()),
              "label": pa.array(_ids(values), pa.string()),
              "received_at": pa.repeat(pa.scalar(now, pa.float64()), n),
              "joined": pa.array(flags)}))


def mark_joined(conn: Connection, db: Database, model_id: int, ids: np.ndarray) -> None:
    if len(ids) == 0:
        return
    if db.is_sqlite:
        conn.exec_driver_sql(  # rowids found id by id, not a scan of the model's labels
            "UPDATE labels SET joined = 1 WHERE rowid IN (SELECT l.rowid FROM json_each(?) j "
            "CROSS JOIN labels l ON l.model_id = ? AND l.prediction_id = j.value)",
            (_json(ids), model_id))
        return
    _pg_staged(conn, ids)
    conn.exec_driver_sql(
        "UPDATE labels l SET joined = true FROM request_ids r "
        "WHERE l.model_id = %s AND l.prediction_id = r.pid", (model_id,))
