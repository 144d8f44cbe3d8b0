"""30 days of 1-minute bucket profiles, written through the store's own append path.

Backfilling that history through HTTP ingest would profile 43,200 separate buckets;
the query benchmark only needs the stored partials, so they are written directly
(each day: 1,440 minute partials plus its hour and day rollups, as ingest writes them).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pyarrow as pa

from aiwarden.monitoring.bucket import BucketData
from aiwarden.monitoring.metrics import compute
from aiwarden.monitoring.profiles import append_partials, read_window
from aiwarden.monitoring.service import Monitor
from aiwarden.store import models_repo
from aiwarden.store.database import Database

__all__ = ["fill_history", "unrolled_query"]


def fill_history(url: str, ref: pd.DataFrame, days: int = 30, rows_per_bucket: int = 50,
                 distinct: int = 60) -> tuple[int, int, float]:
    """Returns (model id, version id, end of the history as epoch seconds)."""
    db = Database(url)
    mon = Monitor(db)
    mon.create_model("history")
    mon.upload_reference("history", "v1", pa.Table.from_pandas(ref, preserve_index=False),
                         {"target": "label", "prediction": "prediction", "scores": "score"})
    with db.read() as conn:
        m = models_repo.get_model(conn, "history")
        v = models_repo.get_version(conn, m, "v1")
        r = mon.refs.get(conn, v.id)
    rng = np.random.default_rng(5)
    feats = ref.drop(columns=["label"])
    parts = [BucketData(rows=rows_per_bucket, profile=r.profile(
        feats.iloc[rng.integers(0, len(ref), rows_per_bucket)]))
        for _ in range(distinct)]
    mon.levels  # noqa: B018 - settle the store layout before the write transactions
    end = float(int(time.time()) // 86400 * 86400)
    start = end - days * 86400
    for d in range(days):
        day0 = int(start + d * 86400)
        by_bucket = {day0 + i * 60: parts[(d * 1440 + i) % distinct] for i in range(1440)}
        with db.write(m.id) as conn:
            append_partials(conn, m.id, v.id, by_bucket, mon.levels)
    db.dispose()
    return m.id, v.id, end


def unrolled_query(url: str, model_id: int, version_id: int, end: float) -> None:
    """The same 30-day drift query merging every 1-minute bucket (no rollups)."""
    db = Database(url)
    mon = Monitor(db)
    with db.read() as conn:
        ref = mon.refs.get(conn, version_id)
        data = read_window(conn, model_id, version_id, int(end - 30 * 86400), int(end), (60,))
    compute("drift", ref, data)
    db.dispose()
