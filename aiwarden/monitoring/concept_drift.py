"""Concept drift in the server: each version's labelled outcomes, in prediction-time order,
streamed through the engine's detectors (ADWIN, Page–Hinkley, DDM).

Ordering. Labels arrive late and in any order, but the detectors are sequential. So the
stream is cut at a watermark: at each cycle the outcomes whose prediction time lies in
``[previous watermark, now - label_delay)`` are read (prediction rows joined to their
labels), sorted by (prediction time, prediction id) and fed; the watermark then moves to
``now - label_delay``. Every label that arrives within ``label_delay`` of its prediction
is fed in exactly the order of an in-order stream, whatever order it arrived in. A label
(or a prediction logged with an old timestamp) that arrives after the watermark passed its
prediction time is not fed — it still counts in realised performance.

An outcome is the row's error: 1/0 for a wrong/right class, the absolute error for a
regressor (:func:`aiwarden.engine._accumulators.row_errors`, the same rows as realised
accuracy or MAE). Rows without a usable label or prediction are counted, not fed.

State. One JSON document per model (``kv_state``) holds the watermark, every detector's
checkpoint (``DriftDetector.state_dict``), the counts and the latest change points. It is
written by compare-and-swap on the text read before the work: feeding runs only in the
process holding the ``alert-evaluator`` lease, and if that lease moved mid-cycle the swap of
the stale holder fails and its work is dropped, so no outcome is ever fed twice and a
restarted server (or another process) continues exactly where the last swap left off.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from sqlalchemy import Connection, select, update

from aiwarden.engine._accumulators import row_errors
from aiwarden.engine.detectors import DETECTORS, make_detector
from aiwarden.engine.schema import Role
from aiwarden.monitoring.concept_settings import ConceptDriftSettings
from aiwarden.monitoring.joins import labelled_table
from aiwarden.monitoring.references import References
from aiwarden.monitoring.rows import PID, TS
from aiwarden.monitoring.windows import to_iso
from aiwarden.store import ids as id_store
from aiwarden.store import kv, labels_repo
from aiwarden.store import models_repo as repo
from aiwarden.store.database import Database
from aiwarden.store.tables import event_batches, kv_state, labels
from aiwarden.tabular_io import read_parquet

__all__ = ["MAX_CHANGE_POINTS", "ConceptDrift", "FeedReport", "Outcomes"]

log = logging.getLogger("aiwarden.monitoring")

#: Change points kept per model (oldest dropped first); the totals count every one.
MAX_CHANGE_POINTS = 500
_CHUNK_ROWS = 200_000  # prediction rows read per swap when catching up
_HOUR = 3600  # late labels are counted up to the last whole hour before the watermark


def _settings_key(model_id: int) -> str:
    return f"concept_drift.settings.{model_id}"


def _state_key(model_id: int) -> str:
    return f"concept_drift.state.{model_id}"


@dataclass(frozen=True)
class Outcomes:
    """Labelled outcomes of one span, sorted by (prediction time, prediction id)."""

    ts: np.ndarray
    pid: np.ndarray
    version_id: np.ndarray
    value: np.ndarray  # NaN: the row could not be scored

    @classmethod
    def empty(cls) -> Outcomes:
        return cls(np.empty(0), np.empty(0, dtype=object), np.empty(0, dtype=np.int64),
                   np.empty(0))

    def sorted(self) -> Outcomes:
        order = np.lexsort((self.pid.astype(str), self.ts))
        return Outcomes(self.ts[order], self.pid[order], self.version_id[order],
                        self.value[order])


@dataclass
class FeedReport:
    outcomes: int = 0
    change_points: list[dict[str, Any]] = field(default_factory=list)
    conflicts: int = 0  # swaps lost to another process: its state stands


class ConceptDrift:
    """Settings, feeding and reading of one store's concept-drift detectors."""

    def __init__(self, db: Database, refs: References) -> None:
        self.db, self.refs = db, refs

    # ------------------------------------------------------------- settings
    def settings(self, conn: Connection, model: repo.ModelRow) -> ConceptDriftSettings:
        doc = kv.get(conn, _settings_key(model.id))
        return ConceptDriftSettings() if doc is None else ConceptDriftSettings.parse(doc)

    def task(self, conn: Connection, model: repo.ModelRow) -> str | None:
        """The model's task, or the latest version's reference's when the model names none."""
        if model.task:
            return model.task
        for v in reversed(repo.list_versions(conn, model)):
            ref = self.refs.get(conn, v.id)
            if ref is not None:
                return str(ref.schema_.task)
        return None

    def put_settings(self, name: str, doc: Any) -> dict[str, Any]:
        with self.db.read() as conn:
            m = repo.get_model(conn, name)
            task = self.task(conn, m)
        parsed = ConceptDriftSettings.parse(doc, task)
        with self.db.write() as conn:
            kv.put(conn, _settings_key(m.id), parsed.stored())
        return parsed.to_dict(task)

    # --------------------------------------------------------------- feeding
    def feed(self, now: float) -> FeedReport:
        """Feed every model's outcomes up to its watermark (call while holding the lease)."""
        report = FeedReport()
        with self.db.read() as conn:
            models = repo.list_models(conn)
        for m in models:
            try:
                self.feed_model(m, now, report)
            except Exception:  # one model's failure must not stop the others
                log.exception("concept-drift feed of %s failed", m.name)
        return report

    def feed_model(self, m: repo.ModelRow, now: float, report: FeedReport) -> None:
        while (planned := self.plan(m, now)) is not None:
            old, new, points, done = planned
            if not self.commit(m, old, new, now):
                report.conflicts += 1
                log.warning("concept-drift state of %s was advanced by another process; "
                            "this cycle's work on it is dropped", m.name)
                return
            report.outcomes += new["fed_in_step"]
            report.change_points += [p | {"model": m.name} for p in points]
            if done:
                return

    def plan(self, m: repo.ModelRow, now: float
             ) -> tuple[str | None, dict[str, Any], list[dict[str, Any]], bool] | None:
        """One step of feeding, not yet stored: ``(text read, new state, change points,
        caught up)``, or None when there is nothing to feed."""
        with self.db.read() as conn:
            if conn.execute(select(labels.c.prediction_id).where(
                    labels.c.model_id == m.id).limit(1)).first() is None:
                return None  # no label at all yet: nothing to feed, no write (see docs)
            settings = self.settings(conn, m)
            wanted = settings.resolved(self.task(conn, m)) if settings.enabled else {}
            if not wanted:
                return None
            old = _raw_state(conn, m.id)
            state = orjson.loads(old) if old is not None else {}
            lo, target = state.get("watermark"), now - settings.label_delay
            if lo is not None and target <= lo:
                return None
            hi, batch_ids = _next_chunk(conn, m.id, lo, target)
            outcomes = self._outcomes(conn, m, batch_ids, lo, hi)
            names = {v.id: v.version for v in repo.list_versions(conn, m)}
        new, points = _advance(state, wanted, outcomes, hi, now, names)
        return old, new, points, hi >= target

    def commit(self, m: repo.ModelRow, old: str | None, new: dict[str, Any],
               now: float) -> bool:
        """Store a planned step unless another process stored one since it was read."""
        with self.db.write(m.id) as conn:
            return _swap(conn, m.id, old, new, now)

    def _outcomes(self, conn: Connection, m: repo.ModelRow, batch_ids: list[int],
                  lo: float | None, hi: float) -> Outcomes:
        """Labelled rows of ``batch_ids`` with prediction time in ``[lo, hi)``."""
        if not batch_ids:
            return Outcomes.empty()
        blobs: dict[int, bytes] = {}
        pids = []
        for bid in batch_ids:
            blob = conn.execute(select(event_batches.c.data)
                                .where(event_batches.c.id == bid)).scalar()
            if blob is None:
                continue
            blobs[bid] = blob
            t = read_parquet(blob, columns=[PID, TS])
            ts = t.column(TS).to_numpy()
            keep = (ts < hi) & (ts >= lo if lo is not None else True)
            pids.append(np.asarray(t.column(PID).to_numpy(zero_copy_only=False),
                                   dtype=object)[keep])
        if not pids or not sum(len(p) for p in pids):
            return Outcomes.empty()
        all_pids = np.concatenate(pids)
        found_labels = labels_repo.labels_of(conn, self.db, m.id, all_pids)
        if not found_labels:
            return Outcomes.empty()
        loc = id_store.locate(conn, self.db, m.id,
                              np.asarray(list(found_labels), dtype=object))
        values = np.full(len(loc), np.nan)
        for bid in np.unique(loc.batch_id).tolist():
            at = np.flatnonzero(loc.batch_id == bid)
            ref = self.refs.get(conn, int(loc.version_id[at[0]]))
            if ref is None or bid not in blobs:
                continue  # no reference: nothing to score against (counted as unscored)
            schema = ref.schema_
            cols = [c.name for c in schema.columns if c.role in (Role.PREDICTION, Role.SCORE)]
            stored = read_parquet(blobs[bid], columns=cols).take(pa.array(loc.row_idx[at]))
            table = labelled_table(schema, stored, [found_labels[p] for p in loc.pid[at]])
            values[at] = row_errors(schema, table)
        keep = (loc.ts < hi) & (loc.ts >= lo if lo is not None else True)
        return Outcomes(loc.ts[keep], loc.pid[keep], loc.version_id[keep],
                        values[keep]).sorted()

    # --------------------------------------------------------------- reading
    def state(self, conn: Connection, model_id: int) -> dict[str, Any]:
        raw = _raw_state(conn, model_id)
        return {} if raw is None else orjson.loads(raw)

    def counts(self, conn: Connection, model_id: int, version: str,
               spans: list[tuple[float, float]]) -> dict[tuple[float, float], Any]:
        """Per span ``(start, end]``: change points found (by detection time), in total and
        per detector; ``{"reason": ...}`` for a version whose outcomes were never fed."""
        state = self.state(conn, model_id)
        vs = next((s for s in state.get("versions", {}).values()
                   if s.get("version") == version), None)
        out: dict[tuple[float, float], Any] = {}
        for start, end in spans:
            if vs is None:
                out[(start, end)] = {"reason": _why_unfed(conn, model_id, version, state)}
                continue
            hit = [p for p in state.get("change_points", []) if p["version"] == version
                   and start < p["detected_at"] <= end]
            by = {name: sum(p["detector"] == name for p in hit) for name in vs["detectors"]}
            out[(start, end)] = {"change_points": len(hit), "by_detector": by,
                                 "outcomes": vs["fed"]}
        return out


def late_labels(conn: Connection, model_id: int, version_id: int, vs: dict[str, Any],
                watermark: float, levels: tuple[int, ...]) -> int:
    """Labels joined to the version's predictions before the watermark's hour that the
    detectors never read (they arrived after the watermark passed their prediction): the
    rollups' label count there minus the outcomes read there."""
    from aiwarden.monitoring import profiles

    hour = int(watermark // _HOUR * _HOUR)
    if hour <= 0:
        return 0
    joined = profiles.read_window(conn, model_id, version_id, 0, hour, levels).labels
    read = vs["fed"] + vs["unscored"] - sum(vs.get("tail", {}).values())
    return max(0, int(joined) - read)


def _why_unfed(conn: Connection, model_id: int, version: str, state: dict[str, Any]) -> str:
    settings = kv.get(conn, _settings_key(model_id)) or {}
    if settings.get("enabled") is False:
        return "concept-drift detectors are disabled for this model"
    mark = state.get("watermark")
    until = "" if mark is None else f" (outcomes predicted before {to_iso(mark)} were read)"
    return (f"no labelled outcome of version {version!r} has reached the concept-drift "
            f"detectors yet{until}: labels wait label_delay after their prediction")


def _raw_state(conn: Connection, model_id: int) -> str | None:
    return conn.execute(select(kv_state.c.value)
                        .where(kv_state.c.key == _state_key(model_id))).scalar()


def _swap(conn: Connection, model_id: int, old: str | None, new: dict[str, Any],
          now: float) -> bool:
    """Write ``new`` only if the stored text is still ``old`` (None: still absent)."""
    key, body = _state_key(model_id), orjson.dumps(new, option=orjson.OPT_SORT_KEYS).decode()
    if old is None:  # the first writer creates it; a later one finds it exists
        return kv.create(conn, key, new)
    res = conn.execute(update(kv_state).where(kv_state.c.key == key, kv_state.c.value == old)
                       .values(value=body, updated_at=now))
    return res.rowcount == 1


def _next_chunk(conn: Connection, model_id: int, lo: float | None,
                target: float) -> tuple[float, list[int]]:
    """Batches holding rows in ``[lo, target)``, cut to about ``_CHUNK_ROWS`` rows, and the
    end of the span they cover completely (every batch starting before it is included)."""
    eb = event_batches
    q = select(eb.c.id, eb.c.n_rows, eb.c.min_ts).where(eb.c.model_id == model_id,
                                                        eb.c.min_ts < target)
    if lo is not None:
        q = q.where(eb.c.max_ts >= lo)
    rows = conn.execute(q.order_by(eb.c.min_ts, eb.c.id)).all()
    taken, n = [], 0
    for i, r in enumerate(rows):
        if n >= _CHUNK_ROWS and (lo is None or r.min_ts > lo) and r.min_ts > rows[i - 1].min_ts:
            return float(r.min_ts), taken
        taken.append(int(r.id))
        n += int(r.n_rows)
    return target, taken


def _advance(state: dict[str, Any], wanted: dict[str, dict[str, Any]], out: Outcomes,
             hi: float, now: float, names: dict[int, str]
             ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The state after feeding ``out``, and the change points found.

    A detector whose parameters changed (or that is new) starts afresh at the watermark;
    one no longer wanted is dropped. Totals of change points are kept whatever changes.
    """
    state = copy.deepcopy(state)
    state["detectors"] = wanted
    versions: dict[str, Any] = state.setdefault("versions", {})
    points: list[dict[str, Any]] = []
    for vid in dict.fromkeys(out.version_id.tolist()):
        at = out.version_id == vid
        vs = versions.setdefault(str(vid), {"version": names.get(vid, str(vid)), "fed": 0,
                                            "unscored": 0, "detectors": {}, "totals": {}})
        values, ts, pid = out.value[at], out.ts[at], out.pid[at]
        ok = ~np.isnan(values)
        vs["unscored"] += int((~ok).sum())
        tail = vs.setdefault("tail", {})  # outcomes read per hour, at and after the watermark's
        hours, n = np.unique(ts // _HOUR * _HOUR, return_counts=True)
        for h, k in zip(hours.tolist(), n.tolist(), strict=True):
            tail[str(int(h))] = tail.get(str(int(h)), 0) + k
        values, ts, pid = values[ok], ts[ok], pid[ok]
        if not len(values):
            continue
        for name, params in wanted.items():
            found = _run(vs, name, params, values, ts, pid, now, int(vid))
            vs["totals"][name] = vs["totals"].get(name, 0) + len(found)
            points += found
        vs["fed"] += len(values)
        vs["last_prediction_at"] = float(ts[-1])
    for vs in versions.values():
        vs["detectors"] = {k: v for k, v in vs["detectors"].items()
                           if wanted.get(k) == v["params"]}
        vs["tail"] = {h: k for h, k in vs.get("tail", {}).items() if int(h) >= hi // _HOUR * _HOUR}
    state["watermark"] = hi
    kept = state.get("change_points", []) + points
    state["change_points"] = kept[-MAX_CHANGE_POINTS:]
    state["dropped_change_points"] = state.get("dropped_change_points", 0) + max(
        0, len(kept) - MAX_CHANGE_POINTS)
    state["fed_at"] = now
    state["fed_in_step"] = len(out.ts)
    return state, points


def _run(vs: dict[str, Any], name: str, params: dict[str, Any], values: np.ndarray,
         ts: np.ndarray, pid: np.ndarray, now: float, vid: int) -> list[dict[str, Any]]:
    """Feed one detector of one version; its checkpoint and segment sums are updated."""
    saved = vs["detectors"].get(name)
    if saved is None or saved["params"] != params:
        det, seg = make_detector(name, **params), {"sum": 0.0, "n": 0}
    else:
        det, seg = DETECTORS[name].from_state(saved["checkpoint"]), saved["segment"]
    if name == "ddm" and not np.isin(values, (0.0, 1.0)).all():
        vs.setdefault("skipped", {})[name] = ("DDM needs 0/1 outcomes; this version streams "
                                              "absolute errors (a regressor)")
        return []
    # A dry run on a copy finds the positions; the real run stops at each one so the
    # detector's own estimate at the change point can be read (it restarts lazily).
    probe = copy.deepcopy(det)
    hits = probe.detect(values)
    points = []
    start = 0
    if not hits:
        det = probe
    for h in hits:
        det.detect(values[start:h + 1])
        before = values[start:h + 1]
        points.append({"version": vs["version"], "version_id": vid, "detector": name,
                       "at": float(ts[h]), "prediction_id": str(pid[h]),
                       "position": det.n_seen - 1, "detected_at": now,
                       "statistic": float(det.estimation),
                       "mean_before": (seg["sum"] + float(before.sum()))
                       / (seg["n"] + len(before))})
        seg = {"sum": 0.0, "n": 0}
        start = h + 1
    rest = values[start:]
    if hits and len(rest):
        det.detect(rest)
    seg = {"sum": seg["sum"] + float(rest.sum()), "n": seg["n"] + len(rest)}
    vs["detectors"][name] = {"params": params, "checkpoint": det.state_dict(), "segment": seg,
                             "n_seen": det.n_seen, "estimation": float(det.estimation),
                             "warning": bool(getattr(det, "warning_detected", False))}
    return points
