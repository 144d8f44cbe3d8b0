"""Late labels meet their predictions, whichever arrives first.

A label is stored once (the first wins); if its prediction is already indexed, the
prediction's outputs are read back from the stored raw rows and a labels-only profile
is added to the prediction's own time bucket. Otherwise it waits, and the prediction's
ingest joins it. Both sides run under the model's write lock, so neither can miss
the other.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import Connection, func, select

from aiwarden.engine.schema import Role, Schema, Task
from aiwarden.monitoring import rows, segments
from aiwarden.monitoring.bucket import BucketData, bucket_starts, split_by_bucket
from aiwarden.monitoring.profiles import append_partials, append_segment_partials
from aiwarden.monitoring.references import References
from aiwarden.store import ids as id_store
from aiwarden.store import labels_repo
from aiwarden.store.database import Database
from aiwarden.store.models_repo import ModelRow
from aiwarden.store.tables import event_batches, labels
from aiwarden.tabular_io import read_parquet

__all__ = ["LabelResult", "ingest_labels", "labelled_table", "labels_for", "labels_partial",
           "pending_count", "pending_labels"]


@dataclass
class LabelResult:
    received: int = 0
    joined: int = 0
    pending: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] | None = None
    ignored_columns: list[str] = field(default_factory=list)  # sent, but read by nothing

    def to_dict(self) -> dict[str, Any]:
        out = {"received": self.received, "joined": self.joined, "pending": self.pending,
               "duplicates": self.duplicates, "rejected": self.rejected,
               "errors": (self.errors or [])[:100]}
        if self.ignored_columns:
            out["ignored_columns"] = self.ignored_columns
        return out


def pending_labels(conn: Connection, db: Database, model_id: int,
                   ids: np.ndarray, any_waiting: bool | None = None) -> dict[str, str]:
    """Labels waiting for any of ``ids``; ``any_waiting``: whether the model has any
    label waiting at all, when the caller asked already (None: ask here)."""
    if len(ids) == 0:
        return {}
    if any_waiting is None:  # cheap test first: most models have no labels waiting at all
        any_waiting = conn.execute(select(labels.c.prediction_id).where(
            labels.c.model_id == model_id, labels.c.joined.is_(False)).limit(1)).first(
            ) is not None
    if not any_waiting:
        return {}
    return labels_repo.labels_of(conn, db, model_id, ids, pending_only=True)


def pending_count(conn: Connection, model_id: int) -> int:
    return int(conn.execute(select(func.count()).select_from(labels).where(
        labels.c.model_id == model_id, labels.c.joined.is_(False))).scalar() or 0)


def labelled_table(schema: Schema, outputs: pa.Table, label_text: list[str]) -> pa.Table:
    """Prediction and score columns plus the target, typed as the reference's target."""
    if schema.task == Task.TEXT_GENERATION:  # an LLM's labels are its users' feedback scores
        from aiwarden.monitoring.llm_feedback import feedback_table

        return feedback_table(label_text)
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


def labels_partial(ref: Any, labelled: pa.Table) -> BucketData:
    """The labels-only partial of :func:`labelled_table` rows. An LLM's labels are its
    users' feedback scores, summed like a gauge (``resources["llm_feedback"]``, see
    :mod:`aiwarden.monitoring.llm_feedback`): a score scale is not known in advance, so
    there are no reference bins to count them on."""
    if ref.schema_.task == Task.TEXT_GENERATION:
        from aiwarden.monitoring.llm_feedback import feedback_partial

        return feedback_partial(labelled)
    return BucketData(profile=ref.profile(labelled, labels_only=True),
                      labels=labelled.num_rows)


def ingest_labels(db: Database, refs: References, model: ModelRow, ids: pa.Array,
                  values: pa.Array, *, bucket_seconds: int, levels: tuple[int, ...],
                  errors: list[rows.RowError] | None = None,
                  segment_top_n: int = segments.DEFAULT_TOP_N,
                  classes: tuple[str, ...] | None = None,
                  numeric: bool = False) -> LabelResult:
    now = time.time()
    n = len(ids)
    errors = list(errors or [])
    res = LabelResult(received=n)
    ids, id_failures = rows.id_text(ids)  # the column kinds read as predictions' are
    text, label_failures = rows.label_text(values)
    pid = np.asarray(ids.to_numpy(zero_copy_only=False), dtype=object)
    lab = np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)
    unread = np.zeros(n, dtype=bool)
    for field_name, failures in ((rows.PID, id_failures), ("label", label_failures)):
        for at, reason in failures:
            errors += [rows.RowError(int(i), field_name, reason) for i in at]
            unread[at] = True
    bad = pd.isna(pid) | (pd.Series(pid, dtype=object).fillna("").str.len() == 0).to_numpy()
    errors += [rows.RowError(int(i), "prediction_id", "required: a non-empty prediction id")
               for i in np.flatnonzero(bad & ~unread)]
    nul = rows.nul_ids(ids) & ~bad
    errors += [rows.RowError(int(i), "prediction_id", rows.NUL_REASON)
               for i in np.flatnonzero(nul)]
    bad |= nul  # its id is not echoed either
    no_label = pd.isna(lab) & ~bad & ~unread
    errors += [rows.RowError(int(i), "label", "required: the label value")
               for i in np.flatnonzero(no_label)]
    if classes is not None:  # a binary model's label is one of its two classes
        lab = _as_class(lab, classes)
        other = ~bad & ~unread & ~no_label & ~np.isin(lab, np.array(classes, dtype=object))
        errors += [rows.RowError(int(i), "label", f"a binary model's label is one of "
                                 f"{list(classes)}, got {lab[i]!r}")
                   for i in np.flatnonzero(other)]
    if numeric:  # a regression model's label is a number: "x" was joined, then ignored
        values_ = pd.to_numeric(pd.Series(lab, dtype=object), errors="coerce").to_numpy()
        other = ~bad & ~unread & ~no_label & ~np.isfinite(values_.astype(np.float64))
        errors += [rows.RowError(int(i), "label", f"a regression model's label is a finite "
                                 f"number, got {lab[i]!r}")
                   for i in np.flatnonzero(other)]
    ok = np.ones(n, dtype=bool)
    ok[[e.row for e in errors]] = False
    res.rejected = int((~ok).sum())
    first: dict[tuple[int, str], rows.RowError] = {}  # one error per row and field
    for e in sorted(errors, key=lambda e: e.row):
        first.setdefault((e.row, e.field), e)
    res.errors = [{**e.to_dict(), "prediction_id": None if bad[e.row] else str(pid[e.row])}
                  for e in first.values()]
    dup_in_request = np.zeros(n, dtype=bool)  # among valid rows: a rejected row wins nothing
    dup_in_request[ok] = pd.Series(pid[ok]).duplicated().to_numpy()
    ok &= ~dup_in_request
    cand = np.flatnonzero(ok)
    with db.write(model.id) as conn:
        known = labels_repo.existing(conn, db, model.id, pid[cand])
        new = cand[~np.isin(pid[cand], list(known))] if known else cand
        res.duplicates = int(dup_in_request.sum()) + len(cand) - len(new)
        if len(new):
            joined = _join(conn, db, refs, model, pid[new], lab[new], bucket_seconds, levels,
                           segment_top_n)
            labels_repo.insert(conn, db, model.id, pid[new], lab[new], joined, now)
            res.joined = int(joined.sum())
        res.pending = len(new) - res.joined
    return res


def _as_class(lab: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    """A label written as the number of a class is that class: "1.0" is class "1" (pandas
    writes a label column that has a blank as floats, and JSON may send "1.0"), as 1.0
    and 1 are. Labels that are neither stay as sent, for the check to name."""
    todo = np.flatnonzero(~np.isin(lab, np.array(classes, dtype=object)) & ~pd.isna(lab))
    numbers = pd.to_numeric(pd.Series(classes, dtype=object), errors="coerce")
    by_value = {float(v): c for v, c in zip(numbers, classes, strict=True) if not pd.isna(v)}
    if not len(todo) or not by_value:
        return lab
    values = pd.to_numeric(pd.Series(lab[todo], dtype=object), errors="coerce")
    lab = lab.copy()
    for i, v in zip(todo.tolist(), values.tolist(), strict=True):
        if not pd.isna(v) and float(v) in by_value:
            lab[i] = by_value[float(v)]
    return lab


def _join(conn: Connection, db: Database, refs: References, model: ModelRow,
          ids: np.ndarray, values: np.ndarray, bucket_seconds: int,
          levels: tuple[int, ...], top_n: int = segments.DEFAULT_TOP_N) -> np.ndarray:
    """Fold the labels whose predictions are stored (into the model's partials and its
    rows' segments'); returns which of ``ids`` joined."""
    joined = np.zeros(len(ids), dtype=bool)
    found = id_store.locate(conn, db, model.id, ids)
    if not len(found):
        return joined
    position = pd.Index(ids).get_indexer(found.pid)  # ids are distinct
    per_version: dict[int, list[tuple[pa.Table, np.ndarray]]] = defaultdict(list)
    for batch_id in np.unique(found.batch_id).tolist():
        at = np.flatnonzero(found.batch_id == batch_id)
        blob = conn.execute(select(event_batches.c.data)
                            .where(event_batches.c.id == batch_id)).scalar()
        version_id = int(found.version_id[at[0]])  # one version per stored batch
        ref = refs.get(conn, version_id)
        if blob is None or ref is None:  # raw rows past retention: cannot be scored
            continue
        wanted = [c.name for c in ref.schema_.columns
                  if c.role in (Role.PREDICTION, Role.SCORE, Role.SEGMENT)]
        stored = read_parquet(blob, columns=wanted)
        per_version[version_id].append((stored.take(pa.array(found.row_idx[at])), at))
    for version_id, parts in per_version.items():
        ref = refs.get(conn, version_id)
        at = np.concatenate([p[1] for p in parts])
        stored = rows.concat_stored([p[0] for p in parts])
        table = labelled_table(ref.schema_, stored, values[position[at]].tolist())
        starts = bucket_starts(found.ts[at], bucket_seconds)
        groups = split_by_bucket(starts)
        by_bucket = {}
        for b, part in groups:
            sub = table if len(groups) == 1 else table.take(pa.array(part))
            by_bucket[b] = labels_partial(ref, sub)
        append_partials(conn, model.id, version_id, by_bucket, levels)
        append_segment_partials(conn, model.id, version_id,
                                _segment_labels(ref, stored, table, starts, top_n), levels)
        joined[position[at]] = True
    return joined


def _segment_labels(ref: Any, stored: pa.Table, labelled: pa.Table, starts: np.ndarray,
                    top_n: int) -> dict[str, dict[int, BucketData]]:
    """Labels-only partials of each segment the labelled rows fall in."""
    return segments.split(ref, stored, starts, top_n, lambda part: labels_partial(
        ref, labelled.take(pa.array(part))))


def labels_for(conn: Connection, db: Database, model_id: int, ids: np.ndarray) -> dict[str, str]:
    """Every stored label (joined or not) of ``ids``."""
    return labels_repo.labels_of(conn, db, model_id, ids)
