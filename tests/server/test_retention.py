"""Retention deletes raw rows past the limit; the bucket profiles (the metrics) stay."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select, update

from aiwarden.engine import Reference
from aiwarden.monitoring.service import Monitor, MonitorSettings
from aiwarden.store.database import Database
from aiwarden.store.tables import bucket_profiles, event_batches, labels, models, predictions
from tests.server.conftest import HINTS
from tests.server.live import ThreadServer, settings_for
from tests.server.test_metrics import frame, parquet, rows_json

DAY, HOUR = 86400, 3600


@pytest.fixture(scope="module")
def monitor(db_url: str) -> Iterator[Monitor]:
    """A monitor with no maintenance thread: retention runs only when the test says so."""
    db = Database(db_url)
    db.migrate()
    try:
        yield Monitor(db, MonitorSettings(retention_days=30))
    finally:
        db.dispose()


def count(m: Monitor, table, name: str) -> int:
    with m.db.read() as conn:
        model_id = conn.execute(select(models.c.id).where(models.c.name == name)).scalar_one()
        return int(conn.execute(select(func.count()).select_from(table).where(
            table.c.model_id == model_id)).scalar_one())


def test_retention_deletes_old_raw_rows_and_keeps_their_metrics(monitor: Monitor) -> None:
    m = monitor
    name = f"ret-{uuid.uuid4().hex[:8]}"
    m.create_model(name)
    ref_df = frame(2000, seed=0)
    m.upload_reference(name, "v1", pq.read_table(io.BytesIO(parquet(ref_df))),
                       {"target": "y", "prediction": "pred", "scores": "score"})
    ref = Reference.fit(ref_df, **HINTS)
    now = time.time()
    old_h = (int(now) // HOUR) * HOUR - 40 * DAY  # past the 30-day retention
    new_h = (int(now) // HOUR) * HOUR - 2 * DAY  # inside it

    def batch(start: int, seed: int, prefix: str, scale: float = 1.0):
        df = frame(300, seed=seed, amount_scale=scale)
        df["ts"] = start + np.sort(np.random.default_rng(seed).uniform(0, 2 * HOUR, len(df)))
        df["pid"] = [f"{prefix}{i}" for i in range(len(df))]
        df["latency"] = np.random.default_rng(seed).lognormal(1, 1, len(df))
        return df

    old, new = batch(old_h, 1, "old-", scale=2.0), batch(new_h, 2, "new-")
    # one label of a recent prediction arrived long before it (it waited, then joined)
    m.log_labels(name, [{"prediction_id": "new-0", "label": int(new.y[0])}])
    with m.db.write() as conn:
        conn.execute(update(labels).where(labels.c.prediction_id == "new-0")
                     .values(received_at=now - 35 * DAY))
    for df in (old, new):
        for part in np.array_split(np.arange(len(df)), 3):
            assert m.log_predictions(name, rows_json(df.iloc[part])).accepted == len(part)
    m.log_labels(name, [{"prediction_id": p, "label": int(y)}
                        for p, y in zip(old.pid[:100], old.y[:100], strict=True)]
                 + [{"prediction_id": p, "label": int(y)}
                    for p, y in zip(new.pid[1:50], new.y[1:50], strict=True)])

    old_window = {"start": old_h, "end": old_h + 2 * HOUR}
    new_window = {"start": new_h, "end": new_h + 2 * HOUR}
    queries = [(k, w) for k in ("drift", "volume", "latency", "performance", "quality")
               for w in (old_window, new_window)]
    before = [m.series(name, k, **w, step="1h") for k, w in queries]
    assert m.export_events(name, **old_window).num_rows == len(old)
    n_profiles = count(m, bucket_profiles, name)

    # a retention pass at a time when nothing is old yet removes nothing
    assert m.enforce_retention(now=now - 20 * DAY) == 0
    assert count(m, event_batches, name) == 6

    removed = m.enforce_retention(now=now)
    assert removed == 3  # the three requests of the old traffic
    assert count(m, event_batches, name) == 3
    assert count(m, predictions, name) == len(new)
    assert count(m, bucket_profiles, name) == n_profiles
    assert m.enforce_retention(now=now) == 0  # idempotent

    # raw rows of the old window are gone; the recent window is intact, labels included
    assert m.export_events(name, **old_window).num_rows == 0
    recent = m.export_events(name, **new_window)
    assert sorted(recent.column("prediction_id").to_pylist()) == sorted(new.pid)
    got = dict(zip(recent.column("prediction_id").to_pylist(),
                   recent.column("label").to_pylist(), strict=True))
    assert got["new-0"] == str(new.y[0])  # the early label of a kept row survives
    assert [got[p] for p in new.pid[1:50]] == [str(y) for y in new.y[1:50]]
    assert all(got[p] is None for p in new.pid[50:])
    # labels of deleted rows go with them; those of kept rows stay
    assert count(m, labels, name) == 50

    # every metric of both windows answers exactly as before retention
    after = [m.series(name, k, **w, step="1h") for k, w in queries]
    assert after == before
    whole = m.series(name, "drift", **old_window)["points"][0]
    assert whole["rows"] == len(old)
    want = ref.compare(ref.profile(old[["x", "c", "amount", "score", "pred"]]))
    assert whole["value"]["drifted_features"] == list(want.drifted_features) == ["amount"]
    for c in want.columns:
        if c.n_current:
            assert whole["value"]["columns"][c.column]["value"] == pytest.approx(
                c.value, rel=1e-9, abs=1e-12)
    vol = m.series(name, "volume", **old_window)["points"][0]["value"]
    assert vol == {"rows": len(old), "quarantined": 0, "labels": 100}


def test_zero_retention_days_keeps_raw_events_forever(db_url: str) -> None:
    """0 means forever, as for the rollup horizons: it once deleted every raw event (and the
    id index, so a retried id was accepted again) on the first maintenance tick."""
    db = Database(db_url)
    try:
        m = Monitor(db, MonitorSettings(retention_days=0))
        name = f"ret0-{uuid.uuid4().hex[:8]}"
        m.create_model(name)
        ref_df = frame(500, seed=0)
        m.upload_reference(name, "v1", pq.read_table(io.BytesIO(parquet(ref_df))),
                           {"target": "y", "prediction": "pred", "scores": "score"})
        df = frame(50, seed=3)
        df["ts"] = time.time() - 400 * DAY  # older than any finite retention
        df["pid"] = [f"r0-{i}" for i in range(len(df))]
        df["latency"] = 1.0
        assert m.log_predictions(name, rows_json(df)).accepted == len(df)
        assert m.enforce_retention() == 0
        assert count(m, predictions, name) == len(df)
        again = m.log_predictions(name, rows_json(df.iloc[:5]))
        assert again.accepted == 0 and again.duplicates == 5
    finally:
        db.dispose()


def test_export_over_http_is_empty_for_an_expired_window(
        db_url: str, tmp_path: Path) -> None:
    """A real server (maintenance idle for an hour, so only the test runs retention)."""
    with ThreadServer(settings_for(db_url, tmp_path, compact_every=3600)) as srv, \
            httpx.Client(base_url=srv.url + "/api/v1", timeout=60) as http:
        name = f"ret-http-{uuid.uuid4().hex[:8]}"
        assert http.post("/models", json={"name": name}).status_code == 201
        assert http.post(f"/models/{name}/versions", json={"version": "v0"}).status_code == 201
        t0 = (int(time.time()) // HOUR) * HOUR - 45 * DAY
        df = frame(50, seed=3)
        df["ts"] = t0 + np.arange(len(df)) * 60.0
        df["pid"] = [f"x{i}" for i in range(len(df))]
        df["latency"] = 1.0
        r = http.post(f"/models/{name}/predictions", json=rows_json(df))
        assert r.status_code == 200 and r.json()["accepted"] == len(df), r.text
        window = {"start": t0, "end": t0 + HOUR}

        def exported() -> list[str]:
            r = http.get(f"/models/{name}/events", params=window)
            assert r.status_code == 200, r.text
            return pq.read_table(io.BytesIO(r.content)).column("prediction_id").to_pylist()

        assert sorted(exported()) == sorted(df.pid)
        app_monitor: Monitor = srv.server.config.app.state.monitor
        assert app_monitor.settings.retention_days == 30
        assert app_monitor.enforce_retention(now=time.time()) >= 1
        assert exported() == []
        vol = http.get(f"/models/{name}/metrics", params={"metric": "volume", **window})
        assert vol.status_code == 200 and vol.json()["points"][0]["rows"] == len(df)
