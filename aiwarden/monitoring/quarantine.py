"""Quarantined rows: list and inspect them, correct and replay them, release them as they
are, or drop them (docs/api.md, Quarantine).

A quarantined row is a prediction that ingest refused, kept as it was sent with the field
and the reason, and counted in its bucket's ``quarantined``. Replaying sends the stored row
(or a corrected one) through ingest again, so it is validated by the same code as any
request: valid, it leaves quarantine and enters the profiles; still bad, it stays
quarantined with the new field and reason. Releasing replays it with its bad values read
as missing (a row without a usable prediction id, or naming an unknown version, cannot be
released: correct it instead). Dropping deletes the stored row; the count stays, since the
bad row did arrive.

Counted once: the replay claims its rows inside the model's write transaction (the lock
every ingest takes), deletes them there and takes them out of the quarantine count in the
same commit that adds them to the profiles. A retried or concurrent replay of the same row
finds it gone and changes nothing; a row whose prediction id is already stored counts as a
duplicate, as a retried request would.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Connection, delete, select

from aiwarden.errors import DataError, ParameterError
from aiwarden.monitoring.bucket import BucketData
from aiwarden.monitoring.ingest import Replaying, ingest_predictions
from aiwarden.monitoring.profiles import append_partials
from aiwarden.monitoring.windows import to_iso
from aiwarden.store.models_repo import NotFound, get_version
from aiwarden.store.tables import quarantine

__all__ = ["MAX_IDS", "QuarantinedRow", "ReplayResult", "drop", "get_row", "list_rows",
           "replay"]

MAX_IDS = 1000  # rows one replay, release or drop call takes
_CHUNK = 100  # rows per ingest call: every re-quarantined row's reason comes back
_UNKNOWN_VERSION = 0  # version_id of rows kept before migration 0012 (see there)
_NESTED = ("features", "scores", "tags")  # dotted bulk column prefixes


@dataclass(frozen=True)
class QuarantinedRow:
    id: int
    received_at: float
    ts: float
    prediction_id: str | None
    field: str | None
    reason: str
    payload: str | None  # the row as sent, as JSON text
    version_id: int | None

    @property
    def row(self) -> Any:
        """The row as sent, parsed."""
        try:
            return None if self.payload is None else orjson.loads(self.payload)
        except orjson.JSONDecodeError:
            return self.payload

    @property
    def cut(self) -> bool:
        """True when the stored row was cut at 64 KiB (it cannot be replayed as it is)."""
        row = self.row
        return isinstance(row, dict) and set(row) == {"truncated", "head"}

    def to_dict(self, parsed: bool = False) -> dict[str, Any]:
        """``payload`` as stored (JSON text); ``parsed`` adds it as an object (``row``)."""
        out = {"id": self.id, "received_at": to_iso(self.received_at),
               "timestamp": to_iso(self.ts), "prediction_id": self.prediction_id,
               "field": self.field, "reason": self.reason, "payload": self.payload}
        return out | {"row": self.row} if parsed else out


def _row(r: Any) -> QuarantinedRow:
    return QuarantinedRow(int(r.id), float(r.received_at), float(r.ts), r.prediction_id,
                          r.field, r.reason, r.payload, r.version_id)


def list_rows(conn: Connection, model_id: int, *, field: str | None = None,
              prediction_id: str | None = None, limit: int = 100,
              before: int | None = None) -> list[QuarantinedRow]:
    """Newest first; ``before`` (an id) pages on."""
    q = select(quarantine).where(quarantine.c.model_id == model_id)
    if field is not None:
        q = q.where(quarantine.c.field == field)
    if prediction_id is not None:
        q = q.where(quarantine.c.prediction_id == prediction_id)
    if before is not None:
        q = q.where(quarantine.c.id < before)
    return [_row(r) for r in conn.execute(q.order_by(quarantine.c.id.desc()).limit(limit))]


def get_row(conn: Connection, model_id: int, row_id: int) -> QuarantinedRow:
    r = conn.execute(select(quarantine).where(quarantine.c.model_id == model_id,
                                              quarantine.c.id == row_id)).first()
    if r is None:
        raise NotFound(f"No quarantined row {row_id} for this model (replayed, released or "
                       "dropped already, or never there).", "id")
    return _row(r)


def _rows(conn: Connection, model_id: int, ids: Sequence[int]) -> dict[int, QuarantinedRow]:
    if not ids:
        return {}
    res = conn.execute(select(quarantine).where(quarantine.c.model_id == model_id,
                                                quarantine.c.id.in_(list(ids))))
    return {int(r.id): _row(r) for r in res}


@dataclass
class ReplayResult:
    requested: int = 0
    accepted: int = 0  # rows that entered the profiles
    duplicates: int = 0  # rows whose prediction id was stored already (left quarantine too)
    replayed: list[int] = field(default_factory=list)  # ids that left quarantine
    still_quarantined: list[dict[str, Any]] = field(default_factory=list)
    gone: list[int] = field(default_factory=list)  # not (or no longer) in quarantine
    refused: list[dict[str, Any]] = field(default_factory=list)  # not tried, with why

    def to_dict(self) -> dict[str, Any]:
        return {"requested": self.requested, "accepted": self.accepted,
                "duplicates": self.duplicates, "replayed": self.replayed,
                "still_quarantined": self.still_quarantined, "gone": self.gone,
                "refused": self.refused}


def _ids(ids: Sequence[Any]) -> list[int]:
    out: list[int] = []
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, int) or i < 1:
            raise ParameterError(f"ids: expected positive whole numbers; got {i!r}.", "ids")
        out.append(i)
    if not out:
        raise ParameterError("ids: name at least one quarantined row.", "ids")
    if len(out) > MAX_IDS:
        raise ParameterError(f"ids: at most {MAX_IDS} rows per call; got {len(out)}.", "ids")
    return list(dict.fromkeys(out))


def set_path(row: dict[str, Any], path: str, value: Any) -> None:
    """Set ``features.amount`` (or ``prediction_id``, ``tags.country``, ...) in a stored row,
    where the row holds it: nested, as a dotted column, or flat; else nested."""
    head, dot, tail = path.partition(".")
    if not dot:
        row[path] = value
    elif isinstance(row.get(head), dict):
        row[head][tail] = value
    elif path in row:
        row[path] = value
    elif head in ("features", "tags") and tail in row:
        row[tail] = value
    elif head in ("features", "scores", "tags"):
        row[head] = {tail: value}
    else:
        row[path] = value


def _undotted(row: dict[str, Any]) -> dict[str, Any]:
    """Bulk rows are stored with their column names (``features.x``): nested again, the
    form JSON rows use."""
    for key in [k for k in row if "." in k and k.split(".", 1)[0] in _NESTED]:
        head, tail = key.split(".", 1)
        if not isinstance(row.get(head), dict):
            row[head] = {}
        row[head].setdefault(tail, row.pop(key))
    return row


def _corrected(q: QuarantinedRow, row: Any, sets: Mapping[str, Any] | None,
               release: bool) -> tuple[dict[str, Any] | None, str | None]:
    """The row to ingest, or ``(None, why not)``."""
    if row is None:
        if q.cut:
            return None, ("the stored row was cut at 64 KiB: send the corrected row "
                          "(\"row\") instead")
        row = q.row
    if not isinstance(row, dict):
        return None, "the stored row is not a JSON object: send the corrected row (\"row\")"
    row = _undotted(orjson.loads(orjson.dumps(row)))  # a copy: the stored row stays
    for path, value in (sets or {}).items():
        set_path(row, path, value)
    # the event time it was quarantined with: the one sent, or when it arrived if it had
    # none or a bad one (released rows keep the arrival time instead of a bad value)
    ts_given = "timestamp" in (sets or {})
    if not ts_given and (release or q.field != "timestamp" or row.get("timestamp") is None):
        row["timestamp"] = q.ts
    return row, None


def replay(monitor: Any, name: str, ids: Sequence[Any], *,
           rows: Mapping[int, Any] | None = None, sets: Mapping[str, Any] | None = None,
           release: bool = False, now: float | None = None) -> ReplayResult:
    """Send quarantined rows through ingest again (see the module docstring).

    ``rows``: id → a corrected row replacing the stored one; ``sets``: ``path → value``
    applied to every row (e.g. ``{"features.amount": 12.5}``); ``release``: bad values read
    as missing instead of refused.
    """
    wanted = _ids(ids)
    rows = dict(rows or {})
    extra = set(rows) - set(wanted)
    if extra:
        raise ParameterError(f"rows: corrections for ids not being replayed: {sorted(extra)}.",
                             "rows")
    if sets is not None and not isinstance(sets, Mapping):
        raise ParameterError("set: expected an object of field path -> value.", "set")
    m = monitor.model(name)
    levels = monitor.levels  # first: it may correct the bucket width to the store's
    bucket_seconds = monitor.settings.bucket_seconds
    out = ReplayResult(requested=len(wanted))
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        with monitor.db.read() as conn:
            found = _rows(conn, m.id, chunk)
        out.gone += [i for i in chunk if i not in found]
        payload, qids = [], []
        for qid in chunk:
            if qid not in found:
                continue
            row, why = _corrected(found[qid], rows.get(qid), sets, release)
            if row is None:
                out.refused.append({"id": qid, "reason": why})
            else:
                payload.append(row)
                qids.append(qid)
        if payload:
            _replay_chunk(monitor, m, qids, payload, release, bucket_seconds, levels, now, out)
    return out


def _replay_chunk(monitor: Any, m: Any, qids: list[int], payload: list[dict[str, Any]],
                  release: bool, bucket_seconds: int, levels: tuple[int, ...],
                  now: float | None, out: ReplayResult) -> None:
    claimed: dict[int, QuarantinedRow] = {}

    def claim(conn: Connection) -> np.ndarray:
        """Inside the model's write transaction: take the rows still in quarantine."""
        present = _rows(conn, m.id, qids)
        claimed.update(present)
        if present:
            conn.execute(delete(quarantine).where(quarantine.c.id.in_(list(present))))
            _uncount(conn, m, list(present.values()), bucket_seconds, levels)
        return np.array([q in present for q in qids], dtype=bool)

    try:
        res = ingest_predictions(monitor.db, monitor.refs, m, payload,
                                 bucket_seconds=bucket_seconds, levels=levels,
                                 now=time.time() if now is None else now,
                                 replaying=Replaying(claim, np.full(len(payload), release)),
                                 **_top_n(monitor))
    except DataError as exc:  # refused whole, before anything was claimed: all stay
        out.refused += [{"id": qid, "reason": str(exc)} for qid in qids]
        return
    bad = {e["row"]: e for e in res.errors}
    for pos, qid in enumerate(qids):
        if qid not in claimed:
            out.gone.append(qid)
        elif pos in bad:
            e = bad[pos]
            out.still_quarantined.append({"id": qid, "new_id": _new_id(monitor, m, e),
                                          "prediction_id": e["prediction_id"],
                                          "field": e["field"], "reason": e["reason"]})
        else:
            out.replayed.append(qid)
    out.accepted += res.accepted
    out.duplicates += res.duplicates


def _new_id(monitor: Any, m: Any, e: Mapping[str, Any]) -> int | None:
    """The id a still-bad row is kept under now (None when it has no prediction id)."""
    if e["prediction_id"] is None:
        return None
    with monitor.db.read() as conn:
        found = conn.execute(select(quarantine.c.id).where(
            quarantine.c.model_id == m.id, quarantine.c.prediction_id == e["prediction_id"],
            quarantine.c.field == e["field"], quarantine.c.reason == e["reason"])
            .order_by(quarantine.c.id.desc()).limit(1)).scalar()
    return None if found is None else int(found)


def _top_n(monitor: Any) -> dict[str, Any]:
    n = getattr(monitor.settings, "segment_top_n", None)
    return {} if n is None else {"segment_top_n": n}


def _uncount(conn: Connection, m: Any, gone: list[QuarantinedRow], bucket_seconds: int,
             levels: tuple[int, ...]) -> None:
    """Take rows out of the quarantine count of the buckets and version that counted them."""
    by_version: dict[int, dict[int, dict[str, int]]] = {}
    serving = None
    for q in gone:
        vid = q.version_id
        if vid == _UNKNOWN_VERSION:
            try:
                serving = serving or get_version(conn, m)
            except NotFound:  # no version at all: it was counted nowhere
                continue
            vid = serving.id
        if vid is None:
            continue  # counted nowhere: the model had no version when it arrived
        b = int(q.ts // bucket_seconds * bucket_seconds)
        reasons = by_version.setdefault(vid, {}).setdefault(b, {})
        key = q.field or ""
        reasons[key] = reasons.get(key, 0) - 1
    for vid, buckets in by_version.items():
        append_partials(conn, m.id, vid, {
            b: BucketData(quarantined=sum(r.values()), quarantine_reasons=r)
            for b, r in buckets.items()}, levels)


def drop(monitor: Any, name: str, ids: Sequence[Any]) -> dict[str, list[int]]:
    """Delete quarantined rows for good; the bucket counts stay (they did arrive)."""
    wanted = _ids(ids)
    m = monitor.model(name)
    with monitor.db.write(m.id) as conn:
        present = _rows(conn, m.id, wanted)
        if present:
            conn.execute(delete(quarantine).where(quarantine.c.id.in_(list(present))))
    return {"dropped": [i for i in wanted if i in present],
            "gone": [i for i in wanted if i not in present]}
