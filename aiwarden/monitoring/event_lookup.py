"""The stored rows of logged predictions, found by their ids.

Explanations, the prediction page and anyone asking "what did the model see for order 42"
need the features exactly as they were accepted, not a window's profile. The id index says
which batch and row hold each id; each batch is read once, only for its rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.engine import Connection

from aiwarden.monitoring import joins, rows
from aiwarden.store import ids as id_store
from aiwarden.store.database import Database
from aiwarden.store.tables import event_batches
from aiwarden.tabular_io import read_parquet

__all__ = ["FoundEvents", "events_by_id"]

MAX_IDS = 10_000  # one lookup; a window's worth of rows goes through export_events


@dataclass(frozen=True)
class FoundEvents:
    """Rows in the order their ids were asked (ids asked twice appear once), each with its
    version id and joined label; ``missing`` lists the ids the model never accepted."""

    table: pa.Table
    version_ids: np.ndarray
    missing: list[str]


def events_by_id(conn: Connection, db: Database, model_id: int,
                 ids: Sequence[str]) -> FoundEvents:
    """The accepted rows of these prediction ids; ids unknown to the model are listed, not
    an error, so one typo does not hide the other answers."""
    wanted = list(dict.fromkeys(str(i) for i in ids))
    # an id holding a NUL byte is never stored (ingest refuses it), and PostgreSQL text
    # cannot even hold one: it is missing, not a query (the long fuzz's 500)
    loc = id_store.locate(conn, db, model_id, np.asarray(
        [p for p in wanted if "\x00" not in p], dtype=object))
    order = {pid: i for i, pid in enumerate(wanted)}
    found = {str(p) for p in loc.pid}
    missing = [p for p in wanted if p not in found]
    if not len(loc):
        return FoundEvents(pa.table({rows.PID: pa.array([], pa.string())}),
                           np.array([], np.int64), missing)
    parts, pids, versions = [], [], []
    for bid in np.unique(loc.batch_id).tolist():
        at = np.flatnonzero(loc.batch_id == bid)
        blob = conn.execute(select(event_batches.c.data).where(
            event_batches.c.id == bid)).scalar()
        if blob is None:  # aged out between the index read and this one
            missing.extend(str(p) for p in loc.pid[at])
            continue
        parts.append(read_parquet(blob).take(pa.array(loc.row_idx[at])))
        pids.extend(str(p) for p in loc.pid[at])
        versions.append(loc.version_id[at])
    if not parts:
        return FoundEvents(pa.table({rows.PID: pa.array([], pa.string())}),
                           np.array([], np.int64), sorted(missing, key=order.__getitem__))
    table = rows.concat_stored(parts)
    rank = np.argsort([order[p] for p in pids], kind="stable")
    table = table.take(pa.array(rank))
    version_ids = np.concatenate(versions)[rank]
    labels = joins.labels_for(conn, db, model_id, np.asarray(
        table.column(rows.PID).to_pylist(), dtype=object))
    table = table.append_column("label", pa.array(
        [labels.get(p) for p in table.column(rows.PID).to_pylist()], pa.string()))
    return FoundEvents(table, version_ids, sorted(missing, key=order.__getitem__))
