"""Bucket partials in the store: append at every rollup level, compact, read a window.

Writers only ever insert partials (no read-modify-write, so no lost updates between
concurrent writers); a compaction pass later replaces a key's partials by their merge
in one transaction. Readers merge whatever partials exist, compacted or not.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np
from sqlalchemy import Connection, and_, delete, exists, func, or_, select

from aiwarden.monitoring.bucket import BucketData
from aiwarden.monitoring.tiles import TileCache
from aiwarden.monitoring.windows import cover
from aiwarden.store.tables import bucket_profiles as bp
from aiwarden.store.tables import model_versions
from aiwarden.store.tables import segment_profiles as sp

__all__ = ["append_partials", "append_segment_partials", "compact", "read_window",
           "read_windows", "versions_since"]

_RANGES_PER_QUERY = 200  # (level, start, end) ranges OR-ed in one query


def append_partials(conn: Connection, model_id: int, version_id: int,
                    by_bucket: dict[int, BucketData], levels: tuple[int, ...],
                    segment: str | None = None) -> None:
    """Insert one partial per bucket and per wider rollup the buckets fall in (of one
    segment, e.g. ``country=BR``, when ``segment`` is given)."""
    if not by_bucket:
        return
    rows = _rows(model_id, version_id, by_bucket, levels)
    if segment is None:
        conn.execute(bp.insert(), rows)
    else:
        conn.execute(sp.insert(), [r | {"segment": segment} for r in rows])


def append_segment_partials(conn: Connection, model_id: int, version_id: int,
                            by_segment: dict[str, dict[int, BucketData]],
                            levels: tuple[int, ...]) -> None:
    """Every segment's partials (``segment key -> bucket -> data``) in one insert."""
    rows = [r | {"segment": key} for key, by_bucket in by_segment.items()
            for r in _rows(model_id, version_id, by_bucket, levels)]
    if rows:
        conn.execute(sp.insert(), rows)


def _rows(model_id: int, version_id: int, by_bucket: dict[int, BucketData],
          levels: tuple[int, ...]) -> list[dict[str, object]]:
    rows = []
    # A wider level usually merges the same buckets as the one below it (a request spans
    # a minute or two): merge and encode each distinct set of buckets once.
    encoded: dict[tuple[int, ...], tuple[int, bytes]] = {}
    for level in levels:
        grouped: dict[int, list[int]] = defaultdict(list)
        for start in by_bucket:
            grouped[start // level * level].append(start)
        for start, members in grouped.items():
            key = tuple(members)
            if key not in encoded:
                merged = BucketData.merge_all([by_bucket[b] for b in members])
                encoded[key] = (merged.rows, merged.to_bytes())
            n_rows, blob = encoded[key]
            rows.append({"model_id": model_id, "version_id": version_id, "level": level,
                         "start": start, "n_rows": n_rows, "data": blob})
    return rows


def _where(model_id: int, version_id: int, ranges: Iterable[tuple[int, int, int]],
           segment: str | None = None):
    t = bp if segment is None else sp
    return and_(t.c.model_id == model_id, t.c.version_id == version_id,
                *([] if segment is None else [sp.c.segment == segment]), or_(*[
                    and_(t.c.level == lvl, t.c.start >= lo, t.c.start < hi)
                    for lvl, lo, hi in ranges]))


def read_window(conn: Connection, model_id: int, version_id: int, start: int, end: int,
                levels: tuple[int, ...], segment: str | None = None) -> BucketData:
    """The merge of every partial covering [start, end) (bucket-aligned)."""
    return read_windows(conn, model_id, version_id, [(start, end)], levels,
                        segment=segment)[0]


class _PartialVanished(Exception):
    """A listed partial was merged away before its bytes were fetched."""


_READ_ATTEMPTS = 5


def read_windows(conn: Connection, model_id: int, version_id: int,
                 windows: list[tuple[int, int]], levels: tuple[int, ...],
                 cache: TileCache | None = None, segment: str | None = None
                 ) -> list[BucketData]:
    """Several consecutive windows from one query: the steps of a time series.

    With a ``cache``, the partials are listed first and only those not decoded before
    are fetched, so re-reading a sliding window costs the new partials only. With a
    ``segment`` (``country=BR``), that segment's partials are read instead of the model's.
    Listing and fetching are two statements: on PostgreSQL (read committed) a compaction
    may replace a listed partial in between, so the read starts over on the new listing.
    """
    for _ in range(_READ_ATTEMPTS - 1):
        try:
            return _read_windows(conn, model_id, version_id, windows, levels, cache, segment)
        except _PartialVanished:
            continue
    try:
        return _read_windows(conn, model_id, version_id, windows, levels, cache, segment)
    except _PartialVanished:
        raise RuntimeError(f"bucket partials kept changing during {_READ_ATTEMPTS} reads "
                           "(a compaction loop?); retry the request") from None


def _read_windows(conn: Connection, model_id: int, version_id: int,
                  windows: list[tuple[int, int]], levels: tuple[int, ...],
                  cache: TileCache | None, segment: str | None) -> list[BucketData]:
    covers = [cover(s, e, levels) for s, e in windows]
    ranges = [r for c in covers for r in c]
    if not ranges:
        return [BucketData() for _ in windows]
    merged = _merge_ranges(ranges)
    t = bp if segment is None else sp
    cols = [t.c.id, t.c.level, t.c.start, t.c.n_rows]
    if cache is None:
        cols.append(t.c.data)
    # SQLite refuses an expression nested deeper than 1,000 (one OR per range): a long
    # series of short steps is read in chunks of ranges (disjoint, so no row twice)
    rows = [r for i in range(0, len(merged), _RANGES_PER_QUERY)
            for r in conn.execute(select(*cols).where(_where(
                model_id, version_id, merged[i:i + _RANGES_PER_QUERY], segment))).all()]
    if not rows:
        return [BucketData() for _ in windows]
    levels_arr = np.array([r.level for r in rows], dtype=np.int64)
    starts = np.array([r.start for r in rows], dtype=np.int64)
    masks = []
    for c in covers:
        mask = np.zeros(len(rows), dtype=bool)
        for lvl, lo, hi in c:
            mask |= (levels_arr == lvl) & (starts >= lo) & (starts < hi)
        masks.append(mask)
    used = np.flatnonzero(np.logical_or.reduce(masks)).tolist()
    decoded = (_decode_cached(conn, [rows[i] for i in used], cache, segment)
               if cache is not None else [BucketData.from_bytes(rows[i].data) for i in used])
    by_row = dict(zip(used, decoded, strict=True))  # windows overlap: decode each once
    return [BucketData.merge_all([by_row[i] for i in np.flatnonzero(m).tolist()])
            for m in masks]


def _decode_cached(conn: Connection, rows: list[Any], cache: TileCache,
                   segment: str | None = None) -> list[BucketData]:
    # ids of the segment table are another sequence: its keys carry the segment too
    tail = () if segment is None else (segment,)
    keys = [(r.id, r.level, r.start, r.n_rows, *tail) for r in rows]
    found = [cache.get(k) for k in keys]
    missing = [k for k, d in zip(keys, found, strict=True) if d is None]
    fetched: dict[int, bytes] = {}
    t = bp if segment is None else sp
    for i in range(0, len(missing), 500):
        ids = [k[0] for k in missing[i:i + 500]]
        fetched.update(conn.execute(select(t.c.id, t.c.data).where(t.c.id.in_(ids))).all())
    out = []
    for k, d in zip(keys, found, strict=True):
        if d is None:
            if k[0] not in fetched:
                raise _PartialVanished
            d = BucketData.from_bytes(fetched[k[0]])
            cache.put(k, d)
        out.append(d)
    return out


def versions_since(conn: Connection, model_id: int, level: int, since: int) -> set[int]:
    """Versions with partials of ``level`` starting at or after ``since`` (the ones serving).

    One EXISTS per version, each a seek on the bucket index, rather than a DISTINCT over
    every bucket of the model."""
    mv = model_versions
    served = exists().where(bp.c.model_id == model_id, bp.c.version_id == mv.c.id,
                            bp.c.level == level, bp.c.start >= since)
    return set(conn.execute(select(mv.c.id).where(mv.c.model_id == model_id, served))
               .scalars())


def _merge_ranges(ranges: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Adjacent ranges of one level as one, so a long series stays a short SQL query."""
    out: list[tuple[int, int, int]] = []
    for lvl, lo, hi in sorted(ranges):
        if out and out[-1][0] == lvl and out[-1][2] >= lo:
            out[-1] = (lvl, out[-1][1], max(out[-1][2], hi))
        else:
            out.append((lvl, lo, hi))
    return out


def compact(conn: Connection, model_id: int, limit: int = 500) -> int:
    """Merge the partials of up to ``limit`` keys holding more than one (the model's and its
    segments'); returns keys merged."""
    merged = 0
    for t in (bp, sp):
        seg = [t.c.segment] if t is sp else []
        keys = conn.execute(
            select(t.c.version_id, t.c.level, t.c.start, *seg)
            .where(t.c.model_id == model_id)
            .group_by(t.c.version_id, t.c.level, t.c.start, *seg)
            .having(func.count() > 1).limit(limit - merged)).all()
        for version_id, level, start, *segment in keys:
            at = [t.c.segment == segment[0]] if segment else []
            rows = conn.execute(select(t.c.id, t.c.data).where(
                t.c.model_id == model_id, t.c.version_id == version_id, t.c.level == level,
                t.c.start == start, *at)).all()
            if len(rows) < 2:
                continue
            data = BucketData.merge_all([BucketData.from_bytes(r.data) for r in rows])
            # Insert first: the merged row's id is then above every deleted one, so an id
            # never names two different partials (the tile cache relies on it).
            conn.execute(t.insert().values(model_id=model_id, version_id=version_id,
                                           level=level, start=start, n_rows=data.rows,
                                           data=data.to_bytes(),
                                           **({"segment": segment[0]} if segment else {})))
            conn.execute(delete(t).where(t.c.id.in_([r.id for r in rows])))
        merged += len(keys)
        if merged >= limit:
            break
    return merged
