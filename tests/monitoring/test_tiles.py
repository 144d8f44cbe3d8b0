"""The decoded-partial cache never changes an answer, only what a re-read costs."""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa

from aiwarden.monitoring.bucket import BucketData
from aiwarden.monitoring.service import Monitor, MonitorSettings
from aiwarden.monitoring.tiles import TileCache
from aiwarden.store.database import Database
from tests.server.conftest import HINTS, json_rows, scored_frame


def test_the_cache_is_bounded_by_bytes_and_evicts_the_least_recently_used() -> None:
    one = BucketData(rows=1)
    size = TileCache(10**9)
    size.put((1, 60, 0, 1), one)
    per_item = size.nbytes
    cache = TileCache(max_bytes=3 * per_item)
    for i in range(3):
        cache.put((i, 60, 0, 1), one)
    assert cache.get((0, 60, 0, 1)) is one  # 0 is now the most recently used
    cache.put((3, 60, 0, 1), one)
    assert len(cache) == 3 and cache.nbytes <= cache.max_bytes
    assert cache.get((1, 60, 0, 1)) is None  # the least recently used went first
    assert cache.get((0, 60, 0, 1)) is one and cache.get((3, 60, 0, 1)) is one
    assert (cache.hits, cache.misses) == (3, 1)
    assert TileCache(max_bytes=10).put((9, 60, 0, 1), one) is None  # too big: not kept


def _answers(mon: Monitor, now: float) -> list[Any]:
    spans = [(now - 900, now), (now - 3600, now), (now - 86400, now)]
    _, data = mon.windows("m", spans)
    return [(d.rows, d.labels, d.profile.to_dict() if d.profile else None) for d in data]


def test_cached_reads_equal_uncached_ones_through_new_data_and_compaction(
        monitor: Monitor, db_url: str) -> None:
    monitor.create_model("m")
    monitor.upload_reference("m", "v1", pa.Table.from_pandas(scored_frame(1500)), HINTS)
    now = time.time()
    monitor.log_predictions("m", json_rows(scored_frame(400, seed=1), now - 7000, spacing=15))
    plain = Monitor(Database(db_url), MonitorSettings(tile_cache_bytes=0))
    try:
        first = _answers(monitor, now + 60)
        assert first == _answers(plain, now + 60)
        assert first[2][0] == 400 and len(monitor.tiles) > 0
        misses = monitor.tiles.misses
        assert _answers(monitor, now + 60) == first
        assert monitor.tiles.misses == misses  # nothing decoded twice
        # New rows land in buckets already cached, then compaction replaces the partials:
        # the cache must answer with the new rows, exactly as an uncached read does.
        monitor.log_predictions("m", json_rows(scored_frame(120, seed=2), now - 600,
                                               prefix="q", spacing=5))
        assert monitor.compact() > 0
        after = _answers(monitor, now + 60)
        assert after == _answers(plain, now + 60)
        assert after[0][0] > first[0][0] and after[2][0] == 520
    finally:
        plain.db.dispose()


class _CompactsAfterListing:
    """A connection whose first statement (the listing) is followed by a committed compaction
    from another connection: what a read on PostgreSQL saw in CI (KeyError on a partial id)."""

    def __init__(self, conn: Any, monitor: Monitor) -> None:
        self.conn, self.monitor, self.statements = conn, monitor, 0

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        result = self.conn.execute(*args, **kwargs)
        self.statements += 1
        if self.statements == 1:
            rows = result.all()
            assert self.monitor.compact() > 0  # commits on its own connection
            return _Listed(rows)
        return result


class _Listed:
    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows

    def all(self) -> list[Any]:
        return self.rows


def test_a_partial_compacted_away_between_listing_and_fetch_is_read_again(
        monitor: Monitor, db_url: str) -> None:
    from aiwarden.monitoring import profiles

    monitor.create_model("race")
    monitor.upload_reference("race", "v1", pa.Table.from_pandas(scored_frame(300)), HINTS)
    now = time.time()
    for seed in (1, 2):  # two ingests: two partials per bucket, so compaction has work
        monitor.log_predictions("race", json_rows(scored_frame(60, seed=seed), now - 1800,
                                                  prefix=f"r{seed}", spacing=20))
    with monitor.db.read() as conn:
        m, v, _ = monitor._resolve(conn, "race", None)
        mid, vid = m.id, v.id
        start = int(now - 3600) // 60 * 60
        window = [(start, start + 7200)]
        expected = profiles.read_windows(conn, mid, vid, window, monitor.levels)[0].rows
        racing = _CompactsAfterListing(conn, monitor)
        got = profiles.read_windows(racing, mid, vid, window, monitor.levels,  # type: ignore[arg-type]
                                    cache=TileCache(10**8))[0]
    if db_url.startswith("postgresql"):  # read committed: listed, a partial gone, listed again
        assert racing.statements >= 3
    else:  # SQLite's read transaction keeps one snapshot: the fetch still finds the partials
        assert racing.statements == 2
    assert got.rows == expected == 120
