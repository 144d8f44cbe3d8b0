"""The prediction index's two PostgreSQL paths (and SQLite's one), tested through ingest.

Up to ``ids.ARRAY_MAX`` ids a request is probed and indexed from JSON text in single
statements; beyond it through a temporary table and ``COPY``. Both must count a retried id
as a duplicate and store it once, keep ids with any characters exactly, keep timestamps
exactly, and point each id at its own row of its stored batch. ``ARRAY_MAX`` is lowered
here so both paths run on small requests; the statements are the real ones.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import select

from aiwarden.store import ids as id_store
from aiwarden.store import models_repo as repo
from aiwarden.store.tables import event_batches
from aiwarden.tabular_io import read_parquet

HINTS = {"target": "y", "prediction": "pred", "scores": "score"}
ODD = ['a"b', "c,d", "e\\f", "g'h", "{i}", "j k", "ü-ß-漢", "l\nm", "n\tö", "NULL", ""]


def _model(monitor: Any) -> str:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, 300)
    score = 1 / (1 + np.exp(-2 * x))
    ref = pd.DataFrame({"x": x, "score": score, "pred": (score > 0.5).astype(int),
                        "y": (rng.random(300) < score).astype(int)})
    name = f"paths-{uuid.uuid4().hex[:8]}"
    monitor.create_model(name)
    monitor.upload_reference(name, "v1", pa.Table.from_pandas(ref, preserve_index=False),
                             HINTS)
    return name


def _rows(ids: list[str], t0: float) -> list[dict[str, Any]]:
    return [{"prediction_id": pid, "timestamp": t0 + i / 7, "features": {"x": i / 10},
             "prediction": i % 2, "scores": 0.3 + (i % 5) / 10} for i, pid in enumerate(ids)]


@pytest.mark.parametrize("array_max", [10_000, 5], ids=["one-statement", "copy-staged"])
def test_retries_count_duplicates_once_and_every_id_finds_its_own_row(
        monitor: Any, monkeypatch: pytest.MonkeyPatch, array_max: int) -> None:
    monkeypatch.setattr(id_store, "ARRAY_MAX", array_max)
    name = _model(monitor)
    t0 = 1_780_000_000.123456789
    first = [f"p{i}" for i in range(12)] + [f"x{s}" for s in ODD[:-1]]  # "" is refused
    ans = monitor.log_predictions(name, _rows(first, t0))
    assert (ans.accepted, ans.duplicates, ans.quarantined) == (len(first), 0, 0), ans.errors
    # a retry overlapping half of it, plus new ids and one repeated inside the request
    second = first[::2] + [f"q{i}" for i in range(9)] + ["q0"]
    ans = monitor.log_predictions(name, _rows(second, t0 + 100))
    assert ans.accepted == 9
    assert ans.duplicates == len(first[::2]) + 1
    # a row without a usable id is quarantined and counted, not stored
    ans = monitor.log_predictions(name, _rows(["", "r1"], t0 + 200))
    assert (ans.accepted, ans.quarantined) == (1, 1)

    sent = {r["prediction_id"]: r["timestamp"] for r in _rows(first, t0)}
    for r in _rows(second, t0 + 100):  # the first of a repeated id is the one kept
        sent.setdefault(r["prediction_id"], r["timestamp"])
    sent["r1"] = t0 + 200 + 1 / 7
    db = monitor.db
    with db.read() as conn:
        m = repo.get_model(conn, name)
        found = id_store.locate(conn, db, m.id, np.array([*sent, "never-sent"], dtype=object))
        blobs = {b: read_parquet(d) for b, d in conn.execute(select(
            event_batches.c.id, event_batches.c.data).where(event_batches.c.model_id == m.id))}
        stored = id_store.existing(conn, db, m.id, np.array([*sent, "zz"], dtype=object))
    assert stored == set(sent)
    assert sorted(found.pid.tolist()) == sorted(sent)
    assert sum(t.num_rows for t in blobs.values()) == len(sent)  # nothing stored twice
    for pid, ts, batch, row in zip(found.pid, found.ts, found.batch_id, found.row_idx,
                                   strict=True):
        assert ts == sent[pid]  # exact: the float went through JSON text and back
        assert blobs[int(batch)].column("prediction_id")[int(row)].as_py() == pid


def test_a_retry_overlapping_a_later_group_rolls_back_and_joins_waiting_labels_once(
        monitor: Any) -> None:
    """On PostgreSQL ingest inserts without probing; an id stored before fails the insert
    of the request's second group (version v2) after the first group had joined its
    waiting labels, and the request is redone from a rollback with the probe: the labels
    must be joined, and counted in the profiles, once."""
    from aiwarden.monitoring.profiles import read_window

    name = _model(monitor)
    monitor.create_version(name, "v2")
    t0 = 1_780_000_000.0
    ans = monitor.log_predictions(name, [r | {"version": "v2"} for r in _rows(["old"], t0)])
    assert ans.accepted == 1, ans.errors
    assert monitor.log_labels(name, [{"prediction_id": p, "label": "1"} for p in ("a1", "a2")])
    body = _rows(["a1", "a2", "a3"], t0) + [r | {"version": "v2"} for r in _rows(["old"], t0)]
    ans = monitor.log_predictions(name, [r | {"version": "v1"} for r in body[:3]] + body[3:])
    assert (ans.accepted, ans.duplicates, ans.labels_joined) == (3, 1, 2), ans.errors
    levels, db = monitor.levels, monitor.db
    with db.read() as conn:
        m = repo.get_model(conn, name)
        v1 = repo.get_version(conn, m, "v1")
        span = max(levels)
        lo = int(t0 // span * span)
        got = read_window(conn, m.id, v1.id, lo, lo + 2 * span, levels)
        stored = id_store.existing(conn, db, m.id, np.array(["a1", "a2", "a3", "old"],
                                                            dtype=object))
    assert (got.rows, got.labels) == (3, 2)
    assert stored == {"a1", "a2", "a3", "old"}
