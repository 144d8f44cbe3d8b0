"""Late labels meet their predictions, whichever arrives first.

A label is stored once (the first wins); if its prediction is already indexed, the
prediction's outputs are read back from the stored raw rows and a labels-only profile
is added to the prediction's own time bucket. Otherwise it waits, and the prediction's
ingest joins it. Both sides run under the model's write lock, so neither can miss
the other.
"""

from __future__ import annotations

import io
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Connection, func, select

from aiwarden.engine.schema import Role, Schema, Task
from aiwarden.monitoring import rows
from aiwarden.monitoring.bucket import BucketData
from aiwarden.monitoring.profiles import append_partials
from aiwarden.monitoring.references import References
from aiwarden.store import ids as id_store
from aiwarden.store import labels_repo
from aiwarden.store.database import Database
from aiwarden.store.models_repo import ModelRow
from aiwarden.store.tables import event_batches, labels

__all__ = ["LabelResult", "ingest_labels", "labelled_table", "labels_for", "pending_count",
           "pending_labels"]


@dataclass
class LabelResult:
    received: int = 0
    joined: int = 0
    pending: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"received": self.received, "joined": self.joined, "pending": self.pending,
                "duplicates": self.duplicates, "rejected": self.rejected,
                "errors": (self.errors or [])[:100]}


def pending_labels(conn: Connection, db: Database, model_id: int,
                   ids: np.ndarray) -> dict[str, str]:
    """Labels waiting for any of ``ids``."""
    if len(ids) == 0:
        return {}
    # Cheap test first: most models have no labels waiting at all.
    any_waiting = conn.execute(select(labels.c.prediction_id).where(
        labels.c.model_id == model_id, labels.c.joined.is_(False)).limit(1)).first()
    if any_waiting is None:
        return {}
    return labels_repo.labels_of(conn, db, model_id, ids, pending_only=True)


def pending_count(conn: Connection, model_id: int) -> int:
    return int(conn.execute(select(func.count()).select_from(labels).where(
        labels.c.model_id == model_id, labels.c.joined.is_(False))).scalar() or 0)


def labelled_table(schema: Schema, outputs: pa.Table, label_text: list[str]) -> pa.Table:
    """Prediction and score columns plus the target, typed as the reference's target."""
    target = schema.column_for(Role.TARGET)
    cols = {c.name: outputs.column(c.name) for c in schema.columns
            if c.role in (Role.PREDICTION, Role.SCORE) and c.name in outputs.column_names}
    text = pa.array(label_text, pa.string())
    if schema.task == Task.REGRESSION:
        values = pd.to_numeric(pd.Series(label_text, dtype=object), errors="coerce")
        cols[target] = pa.array(values.to_numpy(np.float64), pa.float64(),
                                mask=values.isna().to_numpy())
    else:
        cols[target] = text
    return pa.table(cols)


def ingest_labels(db: Database, refs: References, model: ModelRow, ids: pa.Array,
                  values: pa.Array, *, bucket_seconds: int, levels: tuple[int, ...],
                  errors: list[rows.RowError] | None = None) -> LabelResult:
    now = time.time()
    n = len(ids)
    errors = list(errors or [])
    res = LabelResult(received=n)
    ids = pc.cast(ids, pa.string()) if not pa.types.is_string(ids.type) else ids
    text = rows.label_text(values)
    pid = np.asarray(ids.to_numpy(zero_copy_only=False), dtype=object)
    lab = np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)
    bad = pd.isna(pid) | (pd.Series(pid, dtype=object).fillna("").str.len() == 0).to_numpy()
    errors += [rows.RowError(int(i), "prediction_id", "required: a non-empty prediction id")
               for i in np.flatnonzero(bad)]
    no_label = pd.isna(lab) & ~bad
    errors += [rows.RowError(int(i), "label", "required: the label value")
               for i in np.flatnonzero(no_label)]
    ok = np.ones(n, dtype=bool)
    ok[[e.row for e in errors]] = False
    res.rejected = int((~ok).sum())
    res.errors = [e.to_dict() for e in sorted(errors, key=lambda e: e.row)]
    dup_in_request = np.zeros(n, dtype=bool)  # among valid rows: a rejected row wins nothing
    dup_in_request[ok] = pd.Series(pid[ok]).duplicated().to_numpy()
    ok &= ~dup_in_request
    cand = np.flatnonzero(ok)
    with db.write(model.id) as conn:
        known = labels_repo.existing(conn, db, model.id, pid[cand])
        new = cand[~np.isin(pid[cand], list(known))] if known else cand
        res.duplicates = int(dup_in_request.sum()) + len(cand) - len(new)
        if len(new):
            labels_repo.insert(conn, db, model.id, pid[new], lab[new], now)
            res.joined = _join(conn, db, refs, model, dict(zip(pid[new].tolist(),
                                                               lab[new].tolist(), strict=True)),
                               bucket_seconds, levels)
        res.pending = len(new) - res.joined
    return res


def _join(conn: Connection, db: Database, refs: References, model: ModelRow,
          new_labels: dict[str, str], bucket_seconds: int, levels: tuple[int, ...]) -> int:
    """Fold labels whose predictions are indexed; returns how many joined."""
    located = id_store.locate(conn, db, model.id, np.asarray(list(new_labels), dtype=object))
    if not located:
        return 0
    by_batch: dict[int, list[tuple[str, int, float, int]]] = defaultdict(list)
    for pid, version_id, ts, batch_id, row_idx in located:
        by_batch[batch_id].append((pid, version_id, ts, row_idx))
    per_version: dict[int, list[tuple[pa.Table, list[str], np.ndarray]]] = defaultdict(list)
    joined_ids: list[str] = []
    for batch_id, items in by_batch.items():
        blob = conn.execute(select(event_batches.c.data)
                            .where(event_batches.c.id == batch_id)).scalar()
        if blob is None:  # raw rows past retention: the label cannot be scored
            continue
        version_ids = {v for _, v, _, _ in items}
        ref = refs.get(conn, next(iter(version_ids)))
        if ref is None:
            continue
        wanted = [c.name for c in ref.schema_.columns if c.role in (Role.PREDICTION, Role.SCORE)]
        stored = pq.read_table(io.BytesIO(blob), columns=[
            c for c in wanted if c in pq.read_schema(io.BytesIO(blob)).names])
        take = np.array([r for _, _, _, r in items], dtype=np.int64)
        joined_ids.extend(p for p, _, _, _ in items)
        per_version[items[0][1]].append((
            stored.take(pa.array(take)), [new_labels[p] for p, _, _, _ in items],
            np.array([t for _, _, t, _ in items], dtype=np.float64)))
    for version_id, parts in per_version.items():
        ref = refs.get(conn, version_id)
        outputs = pa.concat_tables([p[0] for p in parts])
        texts = [t for p in parts for t in p[1]]
        ts = np.concatenate([p[2] for p in parts])
        table = labelled_table(ref.schema_, outputs, texts)
        buckets = (ts // bucket_seconds).astype(np.int64) * bucket_seconds
        order = np.argsort(buckets, kind="stable")
        starts, first = np.unique(buckets[order], return_index=True)
        by_bucket = {}
        for b, part in zip(starts.tolist(), np.split(order, first[1:]), strict=True):
            sub = table if len(starts) == 1 else table.take(pa.array(part))
            by_bucket[b] = BucketData(profile=ref.profile(sub, labels_only=True),
                                      labels=len(part))
        append_partials(conn, model.id, version_id, by_bucket, levels)
    labels_repo.mark_joined(conn, db, model.id, np.asarray(joined_ids, dtype=object))
    return len(joined_ids)



def labels_for(conn: Connection, db: Database, model_id: int, ids: np.ndarray) -> dict[str, str]:
    """Every stored label (joined or not) of ``ids``."""
    return labels_repo.labels_of(conn, db, model_id, ids)
