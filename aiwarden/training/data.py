"""The rows a run trains and is judged on, from labelled production events, with lineage.

Why the most recent labelled rows are the holdout: the candidate will serve the traffic of
tomorrow, which looks more like the last day than like a random draw of the last week; a
random split would also let near-duplicate neighbours of training rows into the holdout.
When the recent window is too thin, a seeded random share is used and the lineage says so.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from aiwarden.errors import DataError

__all__ = ["TrainingData", "labelled_rows", "parquet_bytes", "split"]

MIN_HOLDOUT = 50
LABEL, TS, PID = "label", "timestamp", "prediction_id"


@dataclass(frozen=True)
class TrainingData:
    train: pa.Table
    holdout: pa.Table
    lineage: dict[str, Any]


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def _typed_labels(labels: pa.Array) -> pa.Array:
    """Labels are stored as text; numbers go back to numbers (0/1 to int, scores to float)."""
    try:
        numbers = pc.cast(labels, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return labels
    values = numbers.to_numpy(zero_copy_only=False)
    if np.all(np.isfinite(values)) and np.all(values == np.round(values)):
        return pa.array(values.astype(np.int64))
    return numbers


def labelled_rows(events: pa.Table, *, target: str, features: Sequence[str]) -> pa.Table:
    """The events that have a label, as ``features + [target]`` (plus the event time, for
    the split; it is dropped before training)."""
    missing = [f for f in features if f not in events.column_names]
    if missing:
        raise DataError(f"The stored events lack the feature column(s) {missing}; the model's "
                        "schema and its logged events disagree.", missing[0])
    if LABEL not in events.column_names:
        return pa.table({**{f: pa.array([]) for f in features}, target: pa.array([])})
    labelled = events.filter(pc.is_valid(events.column(LABEL)))
    # the event's id rides along so a bad row can be named by it; dropped before training
    out = labelled.select([*features, TS, *([PID] if PID in labelled.column_names else [])])
    return out.append_column(target, _typed_labels(pc.cast(labelled.column(LABEL),
                                                           pa.string())))


def split(rows: pa.Table, *, now: float, holdout_window: float | None, share: float,
          seed: int, min_rows: int, extra: pa.Table | None = None) -> TrainingData:
    """Train/holdout split of labelled ``rows``; ``extra`` (a file, or the previous training
    set) joins the training side only, so the holdout stays production data."""
    n = rows.num_rows
    ts = rows.column(TS).to_numpy(zero_copy_only=False) if n else np.array([])
    how = None
    if holdout_window is not None and n:
        recent = ts >= now - holdout_window
        if recent.sum() >= MIN_HOLDOUT and (~recent).sum() >= min_rows:
            hold, how = recent, f"the most recent {holdout_window:g} s"
    if how is None:
        hold = np.zeros(n, dtype=bool)
        k = round(n * share)
        hold[np.random.default_rng(seed).choice(n, size=k, replace=False)] = True
        how = f"a random {share:.0%} (seed {seed})"
    train = rows.filter(pa.array(~hold)).drop_columns([TS])
    holdout = rows.filter(pa.array(hold)).drop_columns([TS])
    if extra is not None and extra.num_rows:
        columns = train.column_names
        lacking = [c for c in columns if c not in extra.column_names]
        if lacking:
            raise DataError(f"The extra training data lacks column(s) {lacking}.", lacking[0])
        train = pa.concat_tables([train, extra.select(columns).cast(train.schema)])
    if train.num_rows < min_rows:
        raise DataError(f"Only {train.num_rows} labelled training rows; the pipeline needs "
                        f"at least {min_rows} (data.min_rows).", "data.min_rows")
    if holdout.num_rows < 2:
        raise DataError(f"Only {holdout.num_rows} holdout rows: too few to judge a candidate.",
                        "holdout")
    train_bytes, holdout_bytes = parquet_bytes(train), parquet_bytes(holdout)
    digest = hashlib.sha256(train_bytes + b"\0" + holdout_bytes).hexdigest()
    lineage = {"rows": n, "train_rows": train.num_rows, "holdout_rows": holdout.num_rows,
               "extra_rows": 0 if extra is None else extra.num_rows, "holdout": how,
               "sha256": digest,
               "first_event": float(ts.min()) if n else None,
               "last_event": float(ts.max()) if n else None}
    return TrainingData(train, holdout, lineage)
