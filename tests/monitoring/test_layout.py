"""A store keeps the rollup layout it was written with."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa

from aiwarden.monitoring.bucket import BucketData
from aiwarden.monitoring.profiles import append_partials
from aiwarden.monitoring.service import Monitor, MonitorSettings
from aiwarden.store import models_repo
from aiwarden.store.database import Database
from aiwarden.store.tables import kv_state
from tests.server.conftest import HINTS, json_rows, scored_frame


def _monitor(path: Path, **settings: int) -> Monitor:
    mon = Monitor(Database(f"sqlite:///{path}"), MonitorSettings(**settings))
    mon.db.migrate()
    return mon


def test_a_new_store_has_ten_minute_rollups_and_keeps_them(tmp_path: Path) -> None:
    mon = _monitor(tmp_path / "a.db")
    assert mon.levels == (60, 600, 3600, 86400)
    mon.create_model("m")
    mon.upload_reference("m", "v1", pa.Table.from_pandas(scored_frame(1000)), HINTS)
    now = time.time()
    mon.log_predictions("m", json_rows(scored_frame(300, seed=1), now - 3000, spacing=10))
    again = _monitor(tmp_path / "a.db", bucket_seconds=300)  # a changed setting...
    assert again.levels == (60, 600, 3600, 86400)  # ...does not change the store
    assert again.settings.bucket_seconds == 60
    vol = again.series("m", "volume", start=now - 3600, end=now + 60)["points"][0]
    assert vol["value"]["rows"] == 300


def test_a_store_written_before_the_ten_minute_level_keeps_its_layout(tmp_path: Path) -> None:
    old = _monitor(tmp_path / "b.db")
    old.create_model("m")
    old.upload_reference("m", "v1", pa.Table.from_pandas(scored_frame(1000)), HINTS)
    with old.db.read() as conn:
        m = models_repo.get_model(conn, "m")
        v = models_repo.get_version(conn, m)
    now = int(time.time()) // 60 * 60
    with old.db.write() as conn:  # data as the old layout wrote it, and no stored layout
        append_partials(conn, m.id, v.id, {now - 60 * k: BucketData(rows=1) for k in range(90)},
                        (60, 3600, 86400))
        conn.execute(kv_state.delete())
    legacy = _monitor(tmp_path / "b.db")
    assert legacy.levels == (60, 3600, 86400)
    vol = legacy.series("m", "volume", start=now - 89 * 60, end=now + 60)["points"][0]
    assert vol["value"]["rows"] == 90


def test_concurrent_first_requests_agree_on_one_layout(db_url: str) -> None:
    """Several threads of a fresh server ask for the layout at once (PostgreSQL too)."""
    import threading

    mons = [Monitor(Database(db_url)) for _ in range(6)]
    mons[0].db.migrate()
    got, errors = [], []

    def ask(m: Monitor) -> None:
        try:
            got.append(m.levels)
        except Exception as exc:  # the failure this test is about
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(m,)) for m in mons]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for m in mons:
        m.db.dispose()
    assert not errors and set(got) == {(60, 600, 3600, 86400)}
