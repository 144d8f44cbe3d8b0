"""Migration 0012 on SQLite and PostgreSQL: quarantined rows kept before it survive with
``version_id = 0`` (read as the serving version), and ids are never given out twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select, text

from aiwarden.store.database import Database
from aiwarden.store.tables import quarantine
from tests.server.live import database_url


def _put(conn: object, pid: str) -> int:
    res = conn.execute(insert(quarantine).values(  # type: ignore[attr-defined]
        model_id=1, received_at=1.0, ts=60.0, prediction_id=pid, field="features.x",
        reason="expected a number, got 'abc'", payload=json.dumps({"prediction_id": pid})))
    return int(res.inserted_primary_key[0])


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migration_0012_keeps_rows_and_never_reuses_ids(kind: str, tmp_path: Path) -> None:
    from alembic import command

    from aiwarden.store.database import _alembic_config

    with database_url(kind, tmp_path) as url:
        database = Database(url)
        cfg = _alembic_config()
        with database.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0011")
            conn.execute(text(
                "INSERT INTO quarantine (model_id, received_at, ts, prediction_id, field, "
                "reason, payload) VALUES (1, 1.0, 60.0, 'old', 'features.x', 'bad', '{}')"))
        database.migrate()
        with database.read() as conn:
            (old,) = conn.execute(select(quarantine)).all()
        assert (old.prediction_id, old.reason, old.version_id) == ("old", "bad", 0)
        with database.write() as conn:
            a = _put(conn, "a")
            conn.execute(delete(quarantine).where(quarantine.c.id == a))  # the newest goes
            b = _put(conn, "b")
        assert b > a > old.id  # SQLite without AUTOINCREMENT would hand out a's id again
        database.dispose()
