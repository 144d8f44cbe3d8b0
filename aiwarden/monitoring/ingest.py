"""Ingesting predictions: validate, deduplicate, store the raw rows, fold them into buckets.

Everything a request changes happens in one transaction under the model's write lock:
the raw rows, the per-row index that makes a retry a no-op, the bucket partials, the
quarantine and the joins with labels that were waiting. A 2xx therefore means all of
it is committed, and a crash before commit leaves nothing half-counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
from sqlalchemy import Connection, select

from aiwarden.engine.schema import Role, Schema
from aiwarden.monitoring import latency, rows, segments
from aiwarden.monitoring.bucket import BucketData, bucket_starts, split_by_bucket
from aiwarden.monitoring.grouped import RowPass
from aiwarden.monitoring.joins import labelled_table, labels_partial, pending_labels
from aiwarden.monitoring.profiles import append_partials, append_segment_partials
from aiwarden.monitoring.references import References
from aiwarden.store import ids as id_store
from aiwarden.store import labels_repo
from aiwarden.store.database import Database
from aiwarden.store.models_repo import (
    ModelRow,
    VersionRow,
    inherits_from,
    versions_and_serving,
)
from aiwarden.store.tables import event_batches, quarantine
from aiwarden.tabular_io import write_parquet

__all__ = ["IngestResult", "Replaying", "ingest_predictions"]

_MAX_ERRORS = 100
_PAYLOAD_DEPTH = 32  # a quarantined row's stored payload: nesting kept at most this deep
_PAYLOAD_BYTES = 64 * 1024  # ... and this long


@dataclass
class IngestResult:
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    labels_joined: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)  # sent, but read by nothing
    schema_from: dict[str, str] = field(default_factory=dict)  # version → version inherited

    def to_dict(self) -> dict[str, Any]:
        out = {"received": self.received, "accepted": self.accepted,
               "duplicates": self.duplicates, "quarantined": self.quarantined,
               "labels_joined": self.labels_joined, "errors": self.errors[:_MAX_ERRORS]}
        if self.ignored_columns:  # named, so nothing sent disappears without a word
            out["ignored_columns"] = self.ignored_columns
        if self.schema_from:
            out["schema_from"] = self.schema_from
        return out


@dataclass
class _Group:
    """The rows of one request that belong to one model version."""

    positions: np.ndarray  # row positions in the request
    version: VersionRow | None
    batch: rows.Batch
    schema: Schema | None = None  # the version's own, or the one it inherits
    pid: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    ts: np.ndarray = field(default_factory=lambda: np.zeros(0))


def ingest_predictions(db: Database, refs: References, model: ModelRow, payload: Any, *,
                       bucket_seconds: int, levels: tuple[int, ...],
                       now: float | None = None,
                       segment_top_n: int = segments.DEFAULT_TOP_N,
                       replaying: Replaying | None = None,
                       rejected: dict[int, tuple[str, str]] | None = None) -> IngestResult:
    """``payload`` is a list of JSON rows or a ``pyarrow.Table`` of flat columns;
    ``replaying``: rows coming back from quarantine (:mod:`aiwarden.monitoring.quarantine`);
    ``rejected``: request row -> (field, reason) a caller found before (an image that does
    not decode): those rows are quarantined with that reason like any other bad row."""
    now = time.time() if now is None else now
    with db.peek() as conn:
        listed, serving = versions_and_serving(conn, model)
    versions = {v.version: v for v in listed}
    groups = _groups(payload, versions, serving)
    result = IngestResult(received=sum(len(g.positions) for g in groups))
    ignored: set[str] = set()
    for g in groups:
        if rejected:  # first: a row's first error is the one kept
            for i, pos in enumerate(g.positions.tolist()):
                if int(pos) in rejected:
                    g.batch.fail(np.array([i]), *rejected[int(pos)])
        g.pid, g.ts = rows.check(g.batch, g.schema, now=now)
        if replaying is not None:
            _release(g, replaying.release[g.positions])
        ignored |= g.batch.ignored
        if g.version is not None and g.schema is not g.version.schema:
            src = inherits_from(g.version, list(versions.values()), serving)
            if src is not None:
                result.schema_from[g.version.version] = src.version
    result.ignored_columns = sorted(ignored)
    _first_occurrence(groups)
    prepared = [_prepare(db, refs, g, now, bucket_seconds, top_n=segment_top_n)
                for g in groups]
    store = partial(_store, db, refs, model, groups, now=now, bucket_seconds=bucket_seconds,
                    levels=levels, segment_top_n=segment_top_n, replaying=replaying,
                    fallback=serving)  # rows of an unknown version count in the serving one
    if db.is_sqlite or replaying is not None:
        return store(prepared, result, probe=True)
    try:  # PostgreSQL: insert unprobed; the primary key tells of an id stored before
        return store(prepared, result, probe=False)
    except _Overlap:  # rolled back; _fold had merged waiting labels into the partials
        prepared = [_prepare(db, refs, g, now, bucket_seconds, top_n=segment_top_n)
                    for g in groups]
        return store(prepared, result, probe=True)


class _Overlap(Exception):
    """An unprobed insert met an id the model has already (a retry): roll back, probe."""


def _store(db: Database, refs: References, model: ModelRow, groups: list[_Group],
           prepared: list[_Prepared], before: IngestResult, *, probe: bool, now: float,
           bucket_seconds: int, levels: tuple[int, ...], segment_top_n: int,
           replaying: Replaying | None, fallback: VersionRow | None) -> IngestResult:
    """Everything the request changes, in one transaction under the model's lock.

    ``probe``: look the ids up first and store only the new ones. Without it (PostgreSQL,
    the common case of no id seen before) every candidate row is inserted and an id the
    model has already raises :class:`_Overlap`, the transaction rolled back: one statement
    and one B-tree walk per row fewer, the same result once the caller probes."""
    result = replace(before, errors=list(before.errors))
    with db.write(model.id) as conn:
        mine = None if replaying is None else replaying.claim(conn)
        for g, prep in zip(groups, prepared, strict=True):
            keep = None if mine is None else mine[g.positions]
            cand = prep.rows if keep is None else prep.rows[keep[prep.rows]]
            existing = (id_store.existing(conn, db, model.id, g.pid[cand]) if probe
                        else set())
            new = cand[~np.isin(g.pid[cand], list(existing))] if existing else cand
            dup = g.batch.duplicate if keep is None else g.batch.duplicate & keep
            result.duplicates += int(dup.sum()) + len(cand) - len(new)
            if len(new) and g.version is not None:
                if len(new) < len(prep.rows):  # a retry overlapped: redo what changed
                    prep = _prepare(db, refs, g, now, bucket_seconds, new,
                                    top_n=segment_top_n)
                try:
                    _, waiting = id_store.insert_with_batch(
                        conn, db, model.id, g.version.id, g.pid[new], g.ts[new],
                        partial(_insert_batch, conn, model.id, prep, now),
                        _batch_row(prep, now))
                except Exception as e:
                    if probe or not id_store.is_overlap(e):
                        raise
                    raise _Overlap from e
                result.labels_joined += _fold(conn, db, model, g, prep, levels,
                                              segment_top_n, waiting)
            result.accepted += len(new)
            _quarantine(conn, model.id, g, now, result, bucket_seconds, levels, fallback,
                        keep)
    return result


@dataclass(frozen=True)
class Replaying:
    """Rows coming back from quarantine.

    ``claim`` runs first inside the model's write transaction and returns, per request
    row, whether it is still the caller's to ingest (a row another replay took meanwhile
    is skipped: neither stored nor quarantined again). ``release`` marks rows whose bad
    values are read as missing instead of refused."""

    claim: Callable[[Connection], np.ndarray]
    release: np.ndarray


_NOT_RELEASABLE = ("row", rows.PID, rows.VERSION)  # no stored row without these


def _release(g: _Group, release: np.ndarray) -> None:
    """Drop released rows' errors (the checks already read their bad values as missing),
    unless the row has no usable prediction id or version."""
    for i in [i for i in g.batch.errors if release[i]]:
        e = g.batch.errors.pop(i)
        if e.field in _NOT_RELEASABLE:
            g.batch.fail(np.array([i]), e.field, f"cannot release: {e.reason}; correct it "
                         "and replay")
            continue
        pid = _pid(g, i)
        if pid is None or pid == "" or len(pid) > rows.MAX_ID:
            g.batch.fail(np.array([i]), rows.PID, "cannot release: no usable prediction "
                         "id; correct it and replay")
        elif g.version is None:
            g.batch.fail(np.array([i]), rows.VERSION, "cannot release: no known version; "
                         "correct it and replay")


@dataclass
class _Prepared:
    """What a group's rows become, computed before taking the model's lock."""

    rows: np.ndarray  # positions in the group
    table: pa.Table | None = None
    blob: bytes = b""
    by_bucket: dict[int, BucketData] = field(default_factory=dict)
    buckets: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ref: Any = None
    segments: dict[str, dict[int, BucketData]] = field(default_factory=dict)


def _prepare(db: Database, refs: References, g: _Group, now: float, bucket_seconds: int,
             rows_: np.ndarray | None = None, *,
             top_n: int = segments.DEFAULT_TOP_N) -> _Prepared:
    """Stored table, Parquet blob and bucket profiles of the candidate rows.

    Done outside the lock so one request's profiling overlaps another's database work;
    only a retry that overlaps stored ids has to redo it for fewer rows.
    """
    cand = (np.flatnonzero(g.batch.valid_mask() & ~g.batch.duplicate) if rows_ is None
            else rows_)
    prep = _Prepared(cand)
    if not len(cand) or g.version is None:
        return prep
    prep.ref = refs.cached(g.version.id)
    if prep.ref is None:
        with db.read() as conn:
            prep.ref = refs.get(conn, g.version.id)
    prep.table = _stored_table(g, cand)
    prep.blob = write_parquet(prep.table)
    ts = g.ts[cand]
    prep.buckets = bucket_starts(ts, bucket_seconds)
    lat = prep.table.column(rows.LATENCY).to_numpy(zero_copy_only=False)
    failed = np.asarray(prep.table.column(rows.ERROR).is_valid())
    feats = _profile_table(prep.ref.schema_, prep.table) if prep.ref is not None else None

    def make(part: np.ndarray, duplicates: bool = True) -> BucketData:
        profile = None
        if prep.ref is not None:
            profile = prep.ref.profile(feats if len(part) == len(cand)
                                       else feats.take(pa.array(part)),
                                       check_duplicates=duplicates)
        return BucketData(rows=len(part), profile=profile,
                          latency=latency.histogram(lat[part]), errors=int(failed[part].sum()))

    for b, part in split_by_bucket(prep.buckets):
        prep.by_bucket[b] = make(part)
    groupings = segments.groupings(prep.ref, prep.table, prep.buckets, top_n)
    if groupings:
        prep.segments = _segment_parts(RowPass(prep.ref, feats), groupings, lat, failed)
    return prep


def _segment_parts(rows_pass: RowPass, groupings: list[tuple[np.ndarray, list[tuple[str, int]]]],
                   lat: np.ndarray, failed: np.ndarray) -> dict[str, dict[int, BucketData]]:
    """Every segment's bucket partials, each segment column's in one grouped pass over the
    rows (:mod:`aiwarden.monitoring.grouped`). Duplicate rows are counted in the model's
    profile only: hashing every row again per segment would cost more than the rest."""
    out: dict[str, dict[int, BucketData]] = {}
    for group, labels in groupings:
        n = len(labels)
        sizes = np.bincount(group, minlength=n)
        errors = np.bincount(group[failed], minlength=n)
        hists = latency.histograms(lat, group, n)
        packed = rows_pass.packed(group, n)
        for i, (key, start) in enumerate(labels):
            out.setdefault(key, {})[start] = BucketData(
                rows=int(sizes[i]), packed=packed[i], latency=hists[i], errors=int(errors[i]))
    return out


def _groups(payload: Any, versions: dict[str, VersionRow],
            serving: VersionRow | None) -> list[_Group]:
    """Rows grouped by version; rows that name none go to the serving version."""
    unreadable: dict[int, str] = {}  # row -> why its version cannot be read as a name
    if isinstance(payload, pa.Table):
        if rows.VERSION in payload.column_names:  # any Arrow kind, read as the checks read it
            column, failures = rows.scalar_kind(payload.column(rows.VERSION).combine_chunks())
            names = column.to_pylist()
            unreadable = {int(i): why for where, why in failures for i in where}
        else:
            names = [None] * payload.num_rows
    else:
        names = [r.get(rows.VERSION) if isinstance(r, dict) else None for r in payload]
    codes, uniques = pd.factorize(pd.Series(names, dtype=object).astype("string"),
                                  use_na_sentinel=True)
    if unreadable:  # a group of their own, failed below with the reason
        codes[list(unreadable)] = -2
    groups = []
    for code in pd.unique(codes):
        positions = np.flatnonzero(codes == code)
        name = None if code < 0 else str(uniques[code])
        version = serving if name is None else versions.get(name)
        schema = _schema_of(version, versions, serving)
        if isinstance(payload, pa.Table):
            part = payload if len(positions) == payload.num_rows else payload.take(positions)
            batch = rows.from_arrow(part, schema)
        else:
            part_rows = [payload[i] for i in positions] if len(positions) < len(payload) \
                else payload
            batch = rows.from_json(part_rows, schema)
        if code == -2:
            batch.fail(np.arange(len(positions)), rows.VERSION,
                       [unreadable[int(i)] for i in positions])
        elif version is None:
            why = (f"unknown version {name!r} of this model" if name is not None
                   else "the model has no version yet: register one or upload a reference")
            batch.fail(np.arange(len(positions)), rows.VERSION, why)
        groups.append(_Group(positions, version, batch, schema))
    return groups


def _schema_of(version: VersionRow | None, versions: dict[str, VersionRow],
               serving: VersionRow | None) -> Schema | None:
    """The version's schema, or the one it inherits with its reference (a version
    registered without either is typed and profiled like the version it replaces)."""
    if version is None or version.schema is not None:
        return None if version is None else version.schema
    src = inherits_from(version, list(versions.values()), serving)
    return None if src is None else src.schema


def _first_occurrence(groups: list[_Group]) -> None:
    """A prediction id repeated inside one request counts once (the first row wins)."""
    ids = np.concatenate([g.pid for g in groups]) if groups else np.zeros(0, dtype=object)
    valid = np.concatenate([g.batch.valid_mask() for g in groups]) if groups else ids
    order = np.concatenate([g.positions for g in groups]) if groups else ids
    if len(ids) == 0 or len(pa.array(ids, pa.string()).unique()) == len(ids):
        for g in groups:  # the common case: every id distinct
            g.batch.duplicate = np.zeros(len(g.positions), dtype=bool)
        return
    s = pd.Series(ids[np.argsort(order)])
    ok = np.asarray(valid[np.argsort(order)], dtype=bool)
    dup_sorted = np.zeros(len(s), dtype=bool)
    dup_sorted[ok] = s[ok].duplicated().to_numpy()
    dup = np.empty_like(dup_sorted)
    dup[np.argsort(order)] = dup_sorted
    offset = 0
    for g in groups:
        g.batch.duplicate = dup[offset:offset + len(g.positions)]
        offset += len(g.positions)


def _stored_table(g: _Group, new: np.ndarray) -> pa.Table:
    everything = len(new) == g.batch.n  # the common case: no copy

    def pick(arr: pa.Array) -> pa.Array:
        return arr if everything else arr.take(pa.array(new))

    cols = {rows.PID: pa.array(g.pid[new], pa.string()),
            rows.TS: pa.array(g.ts[new], pa.float64()),
            rows.VERSION: pa.repeat(pa.scalar(g.version.version, pa.string()), len(new)),
            rows.LATENCY: pick(g.batch.columns[rows.LATENCY]),
            rows.ERROR: pick(g.batch.columns[rows.ERROR])}
    schema = g.schema
    if schema is not None:
        for col in schema.columns:
            if col.name in g.batch.columns and col.name not in cols:
                cols[col.name] = pick(g.batch.columns[col.name])
    return pa.table(cols)


def _batch_row(prep: _Prepared, now: float) -> tuple[int, float, float, float, bytes]:
    """The stored batch's (n_rows, min_ts, max_ts, created_at, data)."""
    ts = prep.table.column(rows.TS).to_numpy()
    return prep.table.num_rows, float(ts.min()), float(ts.max()), now, prep.blob


def _insert_batch(conn: Connection, model_id: int, prep: _Prepared, now: float) -> int:
    n, lo, hi, at, data = _batch_row(prep, now)
    res = conn.execute(event_batches.insert().values(
        model_id=model_id, n_rows=n, min_ts=lo, max_ts=hi, created_at=at, data=data))
    return int(res.inserted_primary_key[0])


def _profile_table(schema: Schema, table: pa.Table) -> pa.Table:
    """The columns the reference profiles; the target stays absent (labels come later)."""
    cols = {}
    for col in schema.columns:
        if col.role == Role.TARGET:
            continue
        if col.role == Role.TIMESTAMP:
            micros = pa.array((table.column(rows.TS).to_numpy() * 1e6).astype(np.int64))
            cols[col.name] = micros.cast(pa.timestamp("us", tz="UTC"))
        elif col.name in table.column_names:
            cols[col.name] = table.column(col.name)
    return pa.table(cols)


def _fold(conn: Connection, db: Database, model: ModelRow, g: _Group, prep: _Prepared,
          levels: tuple[int, ...], top_n: int = segments.DEFAULT_TOP_N,
          any_waiting: bool | None = None) -> int:
    """Add the labels that were waiting for these rows, then append the bucket partials
    (the model's and its segments'); ``any_waiting``: see :func:`pending_labels`."""
    pids = g.pid[prep.rows]
    waiting = (pending_labels(conn, db, model.id, pids, any_waiting) if prep.ref is not None
               else {})
    by_bucket = prep.by_bucket
    if waiting:
        labelled = np.isin(pids, list(waiting))
        _fold_segment_labels(prep, pids, labelled, waiting, top_n)
        for b, part in split_by_bucket(prep.buckets):
            lab = part[labelled[part]]
            if len(lab):
                lt = labelled_table(prep.ref.schema_, prep.table.take(pa.array(lab)),
                                    [waiting[p] for p in pids[lab]])
                extra = labels_partial(prep.ref, lt)
                by_bucket[b] = BucketData.merge_all([by_bucket[b], extra])
        labels_repo.mark_joined(conn, db, model.id, pids[labelled])
    append_partials(conn, model.id, g.version.id, by_bucket, levels)
    append_segment_partials(conn, model.id, g.version.id, prep.segments, levels)
    return len(waiting)  # ids are distinct: each waiting label joined one row


def _fold_segment_labels(prep: _Prepared, pids: np.ndarray, labelled: np.ndarray,
                         waiting: dict[str, str], top_n: int) -> None:
    """The waiting labels' labels-only profiles, added to each row's segments."""
    lab = np.flatnonzero(labelled)
    if not len(lab) or not prep.segments:
        return
    rows_ = prep.table.take(pa.array(lab))
    lt = labelled_table(prep.ref.schema_, rows_, [waiting[p] for p in pids[lab]])
    extra = segments.split(prep.ref, rows_, prep.buckets[lab], top_n,
                           lambda part: labels_partial(prep.ref, lt.take(pa.array(part))))
    for key, parts in extra.items():
        mine = prep.segments.setdefault(key, {})
        for b, d in parts.items():
            mine[b] = BucketData.merge_all([mine[b], d]) if b in mine else d


def _quarantine(conn: Connection, model_id: int, g: _Group, now: float, result: IngestResult,
                bucket_seconds: int, levels: tuple[int, ...],
                fallback: VersionRow | None = None, keep: np.ndarray | None = None) -> None:
    bad = sorted(i for i in g.batch.errors if keep is None or keep[i])
    if not bad:
        return
    result.quarantined += len(bad)
    records, by_bucket = [], {}
    version = g.version or fallback
    ids = [_pid(g, i) for i in bad]
    seen = _quarantined_before(conn, model_id, [p for p in ids if p is not None])
    for i, pid in zip(bad, ids, strict=True):
        e = g.batch.errors[i]
        row = int(g.positions[i])
        if len(result.errors) < _MAX_ERRORS:
            result.errors.append({"row": row, "prediction_id": pid, "field": e.field,
                                  "reason": e.reason})
        if (pid, e.field, e.reason) in seen:
            continue  # a client retry: rejected again, but kept and counted once
        ts = float(g.ts[i]) if len(g.ts) else now
        records.append({"model_id": model_id, "received_at": now, "ts": ts,
                        "prediction_id": pid, "field": e.field, "reason": e.reason,
                        "payload": _payload(g.batch, i),
                        "version_id": None if version is None else version.id})
        b = int(ts // bucket_seconds * bucket_seconds)
        d = by_bucket.setdefault(b, {})
        d[e.field] = d.get(e.field, 0) + 1
    if not records:
        return
    conn.execute(quarantine.insert(), records)
    if version is not None:
        append_partials(conn, model_id, version.id, {
            b: BucketData(quarantined=sum(r.values()), quarantine_reasons=r)
            for b, r in by_bucket.items()}, levels)


def _pid(g: _Group, i: int) -> str | None:
    """A quarantined row's id as stored: a NUL (refused in ids) written ``\\x00``, since
    PostgreSQL keeps no NUL in text."""
    pid = g.pid[i] if len(g.pid) else None
    if pid is None or (isinstance(pid, float) and np.isnan(pid)):
        return None
    return str(pid).replace("\x00", "\\x00")


def _quarantined_before(conn: Connection, model_id: int,
                        ids: list[str]) -> set[tuple[str, str, str]]:
    """``(id, field, reason)`` already in quarantine: bad rows are few, a plain IN will do."""
    found: set[tuple[str, str, str]] = set()
    for i in range(0, len(ids), 1000):
        found.update((r[0], r[1], r[2]) for r in conn.execute(
            select(quarantine.c.prediction_id, quarantine.c.field, quarantine.c.reason).where(
                quarantine.c.model_id == model_id,
                quarantine.c.prediction_id.in_(ids[i:i + 1000]))))
    return found


def _payload(batch: rows.Batch, i: int) -> str:
    """The row as sent, as JSON text; a row nested too deep (orjson stops at 254 levels) or
    too long is stored cut, saying so, rather than failing the whole request."""
    value = _bounded(batch.original(i), _PAYLOAD_DEPTH)
    text = orjson.dumps(value, default=str,
                        option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY).decode()
    if len(text) > _PAYLOAD_BYTES:
        text = orjson.dumps({"truncated": f"{len(text)} characters; the first "
                                          f"{_PAYLOAD_BYTES} follow",
                             "head": text[:_PAYLOAD_BYTES]}).decode()
    return text


def _bounded(value: Any, depth: int) -> Any:
    """``value`` with containers deeper than ``depth`` replaced by a note."""
    if isinstance(value, dict):
        if depth <= 0:
            return f"(an object nested deeper than {_PAYLOAD_DEPTH} levels, not kept)"
        return {k: _bounded(v, depth - 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if depth <= 0:
            return f"(a list nested deeper than {_PAYLOAD_DEPTH} levels, not kept)"
        return [_bounded(v, depth - 1) for v in value]
    return value
