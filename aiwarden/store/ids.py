"""The per-row prediction index: which ids a model has, and where each row is stored.

Both calls take whole arrays: one statement per request, not one per row. SQLite gets the
ids as one JSON array (``json_each``). PostgreSQL gets a request of up to ``ARRAY_MAX``
ids as one JSON text too, each id probed in the primary key by a pinned nested loop (one
round trip; psycopg's own list adapter quoted each id in Python and cost more CPU than the
rest of the statement), and the new rows with their batch in one statement
(:func:`insert_with_batch`). A bigger request goes through a temporary table filled by
``COPY`` and hash-joined, and its new rows arrive by ``COPY`` too (binding
100,000-element arrays cost psycopg more than the database's own work; for 1,000 ids the
temporary table's create, truncate and two-step ``COPY`` were five round trips, each a
wake-up of the backend, while the model's lock is held). SQLite's ``CROSS JOIN`` and
PostgreSQL's ``LATERAL ... LIMIT 1`` fix the loop order: the request's ids outside, the
index lookup inside; left to the planner, SQLite scanned the JSON once per stored
prediction and PostgreSQL hash-joined the ids with all the model's rows.

On PostgreSQL ingest skips the probe (:func:`existing`) and inserts straight away: the
primary key refuses an id the model has already, :func:`is_overlap` recognises that
refusal, and the caller rolls back and takes the probing path. The insert's own
uniqueness check walks the same B-tree a probe walks, so the common case (no id seen
before) no longer pays for the walk twice, nor for the probe's round trip.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Connection

from aiwarden.store.database import Database

__all__ = ["ARRAY_MAX", "Located", "existing", "insert", "insert_with_batch", "is_overlap",
           "locate"]

ARRAY_MAX = 10_000  # PostgreSQL: up to this many ids bound as one array, beyond by COPY


def is_overlap(error: BaseException) -> bool:
    """Whether ``error`` is PostgreSQL refusing an index row for an id the model has
    already (unique violation, SQLSTATE 23505, on ``predictions``), raised by psycopg
    itself (``COPY``) or wrapped by SQLAlchemy."""
    orig = getattr(error, "orig", None) or error
    diag = getattr(orig, "diag", None)
    return (getattr(orig, "sqlstate", None) == "23505" and diag is not None
            and diag.table_name == "predictions")


def _ids(values: np.ndarray) -> list[str]:
    """Ids as a list of str (they are str already after validation; the rest is a guard)."""
    out = values.tolist()
    return out if all(type(v) is str for v in out) else [str(v) for v in out]


def _json(values: np.ndarray) -> str:
    return orjson.dumps(_ids(values)).decode()


def _pairs(ids: np.ndarray, ts: np.ndarray) -> str:
    """``[[id, ts], ...]`` as JSON text (floats in their shortest exact form)."""
    return orjson.dumps(list(zip(_ids(ids), np.asarray(ts, np.float64).tolist(),
                                 strict=True))).decode()


def _csv(table: pa.Table) -> bytes:
    """CSV for ``COPY ... (FORMAT csv)``: Arrow quotes and escapes every id, vectorised."""
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False))
    return sink.getvalue()


def _copy(conn: Connection, sql: str, table: pa.Table) -> None:
    """PostgreSQL ``COPY FROM STDIN`` on the transaction's own connection."""
    with conn.connection.cursor() as cur, cur.copy(sql) as copy:
        copy.write(_csv(table))


def _pg_staged(conn: Connection, ids: np.ndarray) -> None:
    """The request's ids in a temporary table, for one hash join instead of n probes."""
    conn.exec_driver_sql("CREATE TEMP TABLE IF NOT EXISTS request_ids (pid text COLLATE \"C\") "
                         "ON COMMIT DELETE ROWS")
    conn.exec_driver_sql("TRUNCATE request_ids")
    _copy(conn, "COPY request_ids (pid) FROM STDIN (FORMAT csv)",
          pa.table({"pid": pa.array(_ids(ids), pa.string())}))


def existing(conn: Connection, db: Database, model_id: int, ids: np.ndarray) -> set[str]:
    """The ids among ``ids`` this model has already accepted."""
    if len(ids) == 0:
        return set()
    if db.is_sqlite:
        res = conn.exec_driver_sql(
            "SELECT p.prediction_id FROM json_each(?) j CROSS JOIN predictions p "
            "ON p.model_id = ? AND p.prediction_id = j.value", (_json(ids), model_id))
    elif len(ids) <= ARRAY_MAX:
        # LATERAL ... LIMIT 1 pins a nested loop of primary-key probes: left to the planner
        # (a fresh table has no statistics, a prepared statement a generic plan) it
        # hash-joined the ids with every row the model has, O(index) per request.
        res = conn.exec_driver_sql(
            "SELECT j.pid FROM json_array_elements_text(%s::json) j(pid), LATERAL "
            "(SELECT 1 FROM predictions p WHERE p.model_id = %s AND p.prediction_id = j.pid "
            "LIMIT 1) hit", (_json(ids), model_id))
    else:
        _pg_staged(conn, ids)
        res = conn.exec_driver_sql(
            "SELECT p.prediction_id FROM request_ids r JOIN predictions p "
            "ON p.model_id = %s AND p.prediction_id = r.pid", (model_id,))
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
            (model_id, version_id, batch_id, _pairs(ids, ts)))
    else:
        _copy(conn, "COPY predictions (model_id, prediction_id, version_id, ts, batch_id, "
              "row_idx) FROM STDIN (FORMAT csv)", pa.table({
                  "model_id": pa.repeat(pa.scalar(model_id, pa.int64()), n),
                  "prediction_id": pa.array(_ids(ids), pa.string()),
                  "version_id": pa.repeat(pa.scalar(version_id, pa.int64()), n),
                  "ts": pa.array(np.asarray(ts, np.float64)),
                  "batch_id": pa.repeat(pa.scalar(batch_id, pa.int64()), n),
                  "row_idx": pa.array(np.arange(n, dtype=np.int64))}))


_PG_BATCH_AND_INDEX = (
    "WITH b AS (INSERT INTO event_batches (model_id, n_rows, min_ts, max_ts, created_at, data) "
    "VALUES (%(m)s, %(n)s, %(lo)s, %(hi)s, %(at)s, %(data)s) RETURNING id), "
    "p AS (INSERT INTO predictions (model_id, prediction_id, version_id, ts, batch_id, row_idx) "
    "SELECT %(m)s, u.e ->> 0, %(v)s, (u.e ->> 1)::float8, b.id, u.ord - 1 FROM b, "
    "json_array_elements(%(rows)s::json) WITH ORDINALITY AS u(e, ord)) "
    "SELECT b.id, EXISTS (SELECT 1 FROM labels l WHERE l.model_id = %(m)s "
    "AND l.joined IS false) FROM b")


def insert_with_batch(conn: Connection, db: Database, model_id: int, version_id: int,
                      ids: np.ndarray, ts: np.ndarray, store_batch: Callable[[], int],
                      batch: tuple[int, float, float, float, bytes]) -> tuple[int, bool | None]:
    """Store a batch (``store_batch`` inserts its row and returns its id) and index its
    rows 0..n-1; returns the batch id and whether any label of the model waits for its
    prediction (None: not asked). ``batch`` is (n_rows, min_ts, max_ts, created_at,
    data), the same row for PostgreSQL, where up to ``ARRAY_MAX`` rows take one statement:
    the batch row, the index rows and the waiting-labels test in one round trip while the
    model's lock is held (the test was a statement of its own, asked on every request)."""
    if db.is_sqlite or len(ids) > ARRAY_MAX:
        batch_id = store_batch()
        insert(conn, db, model_id, version_id, ids, ts, batch_id)
        return batch_id, None
    n_rows, lo, hi, at, data = batch
    row = conn.exec_driver_sql(_PG_BATCH_AND_INDEX, {
        "m": model_id, "n": n_rows, "lo": lo, "hi": hi, "at": at, "data": data,
        "v": version_id, "rows": _pairs(ids, ts)}).one()
    return int(row[0]), bool(row[1])


@dataclass(frozen=True)
class Located:
    """Where each found id's row is stored, as parallel arrays."""

    pid: np.ndarray  # object (str)
    version_id: np.ndarray
    ts: np.ndarray
    batch_id: np.ndarray
    row_idx: np.ndarray

    def __len__(self) -> int:
        return len(self.pid)

    def take(self, idx: np.ndarray) -> Located:
        return Located(self.pid[idx], self.version_id[idx], self.ts[idx], self.batch_id[idx],
                       self.row_idx[idx])


_LOCATE_COLS = ("pid", "version_id", "ts", "batch_id", "row_idx")


def locate(conn: Connection, db: Database, model_id: int, ids: np.ndarray) -> Located:
    """Where the model's rows with these ids are (ids it does not have are left out)."""
    if len(ids) == 0:
        return _located([])
    if db.is_sqlite:
        res = conn.exec_driver_sql(
            "SELECT p.prediction_id, p.version_id, p.ts, p.batch_id, p.row_idx "
            "FROM json_each(?) j CROSS JOIN predictions p "
            "ON p.model_id = ? AND p.prediction_id = j.value", (_json(ids), model_id))
        return _located(res.fetchall())
    _pg_staged(conn, ids)
    # COPY out and parse with Arrow: fetching 10^6 rows one Python tuple at a time
    # cost more than the join.
    sink = io.BytesIO()
    with conn.connection.cursor() as cur, cur.copy(
            "COPY (SELECT p.prediction_id, p.version_id, p.ts, p.batch_id, p.row_idx "
            "FROM request_ids r JOIN predictions p ON p.model_id = "
            f"{int(model_id)} AND p.prediction_id = r.pid) TO STDOUT (FORMAT csv)") as copy:
        for chunk in copy:
            sink.write(chunk)
    if not sink.getvalue():
        return _located([])
    t = pacsv.read_csv(io.BytesIO(sink.getvalue()), read_options=pacsv.ReadOptions(
        column_names=list(_LOCATE_COLS)), convert_options=pacsv.ConvertOptions(column_types={
            "pid": pa.string(), "version_id": pa.int64(), "ts": pa.float64(),
            "batch_id": pa.int64(), "row_idx": pa.int64()}))
    return Located(np.asarray(t.column("pid").to_numpy(zero_copy_only=False), dtype=object),
                   *(t.column(c).to_numpy() for c in _LOCATE_COLS[1:]))


def _located(rows: list) -> Located:
    if not rows:
        return Located(np.zeros(0, object), np.zeros(0, np.int64), np.zeros(0),
                       np.zeros(0, np.int64), np.zeros(0, np.int64))
    cols = list(zip(*rows, strict=True))
    return Located(np.asarray(cols[0], dtype=object), np.asarray(cols[1], np.int64),
                   np.asarray(cols[2], np.float64), np.asarray(cols[3], np.int64),
                   np.asarray(cols[4], np.int64))
