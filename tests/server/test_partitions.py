"""Raw events by day: on PostgreSQL retention drops whole day partitions of event_batches
(their index rows and joined labels first); on SQLite it deletes rows. Either way the
metrics stay and ingest goes on."""

from __future__ import annotations

import io
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select, text

from aiwarden.monitoring.service import Monitor
from aiwarden.store import partitions
from aiwarden.store.tables import event_batches, labels, models, predictions
from tests.server.live import database_url
from tests.server.test_metrics import frame, parquet, rows_json

DAY, HOUR = 86400, 3600


def count(m: Monitor, table, name: str) -> int:
    with m.db.read() as conn:
        model_id = conn.execute(select(models.c.id).where(models.c.name == name)).scalar_one()
        return int(conn.execute(select(func.count()).select_from(table).where(
            table.c.model_id == model_id)).scalar_one())


def names(m: Monitor) -> set[str]:
    with m.db.read() as conn:
        return {p.name for p in partitions.list_partitions(conn)}


def test_retention_drops_day_partitions_on_postgresql(monitor: Monitor) -> None:
    m, name = monitor, f"part-{uuid.uuid4().hex[:8]}"
    m.create_model(name)
    m.upload_reference(name, "v1", pq.read_table(io.BytesIO(parquet(frame(500, seed=0)))),
                       {"target": "y", "prediction": "pred", "scores": "score"})
    now = time.time()

    def send(ts0: float, prefix: str) -> None:
        df = frame(60, seed=len(prefix))
        df["ts"] = ts0 + np.arange(len(df)) * 10.0
        df["pid"] = [f"{prefix}{i}" for i in range(len(df))]
        df["latency"] = 1.0
        assert m.log_predictions(name, rows_json(df)).accepted == len(df)
        m.log_labels(name, [{"prediction_id": p, "label": int(y)}
                            for p, y in zip(df.pid[:20], df.y[:20], strict=True)])

    send(now - 40 * DAY, "old-")
    send(now - 700, "new-")
    window = {"start": now - 40 * DAY - HOUR, "end": now + HOUR, "step": "1d"}
    volume = m.series(name, "volume", **window)
    assert sum(p["rows"] for p in volume["points"]) == 120
    today = f"event_batches_p{time.strftime('%Y%m%d', time.gmtime(now))}"
    if m.db.is_sqlite:
        assert names(m) == set()
    else:  # made by migration 0015 from the day it ran: an empty table, so today on
        assert {"event_batches_legacy", "event_batches_default", today} <= names(m)

    # now: the old batch (in the legacy partition, which reaches today) goes row by row
    assert m.enforce_retention(now=now) == 1
    assert (count(m, event_batches, name), count(m, predictions, name)) == (1, 60)
    assert count(m, labels, name) == 20

    # 40 days on: on PostgreSQL today's partition and the legacy one are dropped whole
    later = now + 40 * DAY
    assert m.enforce_retention(now=later) == 1
    assert (count(m, event_batches, name), count(m, predictions, name)) == (0, 0)
    assert count(m, labels, name) == 0
    if not m.db.is_sqlite:
        left = names(m)
        assert today not in left and "event_batches_legacy" not in left
        ahead = f"event_batches_p{time.strftime('%Y%m%d', time.gmtime(later))}"
        assert {ahead, "event_batches_default"} <= left
    # the metrics stay; ingest goes on (today's rows now land in the default partition)
    assert m.series(name, "volume", **window) == volume
    send(now - 100, "again-")
    assert count(m, event_batches, name) == 1
    assert m.export_events(name, start=now - HOUR, end=now + HOUR).num_rows == 60


def test_row_deletes_go_in_bounded_chunks(monitor: Monitor,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Five old batches, two per transaction: every one goes, with its index rows."""
    from aiwarden.monitoring import service

    monkeypatch.setattr(service, "_RETENTION_CHUNK", 2)
    m, name = monitor, f"chunk-{uuid.uuid4().hex[:8]}"
    m.create_model(name)
    m.create_version(name, "v0")
    t0 = time.time() - 45 * DAY
    for k in range(5):
        df = frame(10, seed=k)
        df["ts"] = t0 + k * HOUR + np.arange(len(df))
        df["pid"] = [f"b{k}-{i}" for i in range(len(df))]
        df["latency"] = 1.0
        assert m.log_predictions(name, rows_json(df)).accepted == len(df)
    assert count(m, event_batches, name) == 5
    assert m.enforce_retention() == 5
    assert (count(m, event_batches, name), count(m, predictions, name)) == (0, 0)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migration_0015_keeps_rows_in_place_and_goes_back(kind: str, tmp_path: Path) -> None:
    """Rows stored before 0015 stay (same ids, one legacy partition reaching past the newest
    row's day); new ids continue the sequence; the downgrade keeps every row."""
    from alembic import command

    from aiwarden.store.database import Database, _alembic_config

    now = time.time()
    stamps = [now - 40 * DAY, now, now + 10 * DAY]
    insert = text("INSERT INTO event_batches (model_id, n_rows, min_ts, max_ts, created_at, "
                  "data) VALUES (1, 1, :t, :t, :t, :d)")
    with database_url(kind, tmp_path) as url:
        database = Database(url)
        cfg = _alembic_config()

        def to(revision: str, down: bool = False) -> None:
            with database.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                (command.downgrade if down else command.upgrade)(cfg, revision)

        def stored() -> list[tuple[int, float]]:
            with database.read() as conn:
                return [tuple(r) for r in conn.execute(
                    text("SELECT id, max_ts FROM event_batches ORDER BY id")).all()]

        to("0014")
        with database.write() as conn:
            for t in stamps:
                conn.execute(insert, {"t": t, "d": b"x"})
        before = stored()
        database.migrate()
        assert stored() == before
        with database.write() as conn:
            conn.execute(insert, {"t": now, "d": b"y"})
            parts = {p.name: p for p in partitions.list_partitions(conn)}
        assert [i for i, _ in stored()] == [1, 2, 3, 4]
        if kind == "postgresql":
            assert parts["event_batches_legacy"].hi >= (now + 11 * DAY) // DAY * DAY
            assert "event_batches_default" in parts
            # a row of a day without a partition waits in the default one, and moves into
            # that day's partition when it is made
            later = now + 40 * DAY
            where = text("SELECT tableoid::regclass::text FROM event_batches WHERE id = 5")
            with database.write() as conn:
                conn.execute(insert, {"t": later, "d": b"z"})
                assert conn.execute(where).scalar() == "event_batches_default"
            with database.write() as conn:
                assert partitions.ensure_days(conn, later, ahead=0) == 1
            with database.read() as conn:
                assert conn.execute(where).scalar() == (
                    f"event_batches_p{time.strftime('%Y%m%d', time.gmtime(later))}")
        else:
            assert parts == {}
        kept = stored()
        to("0014", down=True)
        assert stored() == kept and len(kept) == (5 if kind == "postgresql" else 4)
        database.dispose()
