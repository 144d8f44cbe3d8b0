"""The monitoring service: what the HTTP API, the CLI and the demo call.

It owns no HTTP: every method takes plain values and returns plain dicts, so the
server stays a thin shell and the same calls work in a script.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import delete, func, select, text

from aiwarden.engine.reference import Reference
from aiwarden.engine.schema import Schema, Task
from aiwarden.errors import DataError, ParameterError, SchemaError
from aiwarden.llm.embeddings import LocalEmbedder
from aiwarden.monitoring import event_lookup, joins, metrics, profiles, rows, segments
from aiwarden.monitoring import quarantine as quarantine_rows
from aiwarden.monitoring.ingest import IngestResult, ingest_predictions
from aiwarden.monitoring.multivariate_window import (
    MultivariateSettings,
    MultivariateWindows,
    fit_state,
    state_key,
)
from aiwarden.monitoring.references import References
from aiwarden.monitoring.resources import ResourceResult, ingest_resources
from aiwarden.monitoring.retention import RetentionPolicy, downsample
from aiwarden.monitoring.text_drift_window import TextDriftWindows
from aiwarden.monitoring.tiles import TileCache
from aiwarden.monitoring.windows import levels_for, parse_duration, parse_instant, to_iso
from aiwarden.store import kv, partitions
from aiwarden.store import models_repo as repo
from aiwarden.store.database import Database
from aiwarden.store.tables import (
    bucket_profiles,
    event_batches,
    labels,
    llm_events,
    predictions,
    quarantine,
)
from aiwarden.tabular_io import read_parquet, write_parquet

__all__ = ["Monitor", "MonitorSettings"]

log = logging.getLogger("aiwarden.monitoring")
_LAYOUT = "monitor.layout"
_SEGMENTS = "model.segments."  # + model id: the segment columns declared with the model
_HINTS = ("target", "prediction", "scores", "id", "timestamp", "segments", "task")
_MAX_POINTS = 5000
_MAX_ROW_WINDOWS = 48  # windows per request of a metric computed from raw rows
_RETENTION_CHUNK = 5000  # raw batches deleted per transaction


@dataclass(frozen=True)
class MonitorSettings:
    bucket_seconds: int = 60
    retention_days: float = 30.0  # raw events; profiles are kept (downsampled)
    # rollup partials under an hour / under a day kept this long (days, 0: forever); day
    # partials are kept forever (monitoring/retention.py)
    minute_retention_days: float = 30.0
    hour_retention_days: float = 365.0
    sample_rows: int = 10_000
    tile_cache_bytes: int = 512 * 2**20  # decoded partials kept between window reads
    segment_top_n: int = segments.DEFAULT_TOP_N  # values kept per segment column (+ other)
    multivariate_rows: int = 1000  # rows sampled a side per window (multivariate_window)
    multivariate_max_columns: int = 1000  # wider references get no multivariate fit
    embedding_model: str = ""  # a local model2vec folder embedding LLM prompts (llm.embeddings)

    @property
    def retention(self) -> RetentionPolicy:
        return RetentionPolicy(self.minute_retention_days, self.hour_retention_days)

    @property
    def levels(self) -> tuple[int, ...]:
        """The rollup widths a new store uses; an existing store keeps its own (see
        :meth:`Monitor.levels`)."""
        return levels_for(self.bucket_seconds)


class Monitor:
    def __init__(self, db: Database, settings: MonitorSettings | None = None) -> None:
        self.db = db
        self.settings = settings or MonitorSettings()
        self.refs = References()
        self.tiles = TileCache(self.settings.tile_cache_bytes)
        self._reference_segments: dict[tuple[str, str, int], dict[str, Any]] = {}
        self.multivariate = MultivariateWindows(
            MultivariateSettings(rows=self.settings.multivariate_rows,
                                 max_columns=self.settings.multivariate_max_columns))
        self.text_drift = TextDriftWindows()  # an LLM's prompts vs its reference prompts
        # set by the server (it needs the registry): stored attribution-drift checks
        self.attribution: Any = None
        self.embedder: LocalEmbedder | None = None  # prompts sent without an embedding
        #: the operator's model-based LLM evaluators (llm.evaluators.external), run on ingest
        self.llm_evaluators: tuple[Any, ...] = ()
        if self.settings.embedding_model:
            self.embedder = LocalEmbedder(self.settings.embedding_model)
        self._levels: tuple[int, ...] | None = None
        self.retention = self.settings.retention  # checked here: a bad setting fails at start

    @property
    def levels(self) -> tuple[int, ...]:
        """The store's rollup layout, fixed when it first holds data.

        Reading with other widths than the data was written with would miss counts, so
        the layout is stored; a store written before the 10-minute level keeps its
        (bucket, hour, day) layout.
        """
        if self._levels is None:
            with self.db.read() as conn:  # usual case: no write lock needed
                layout = kv.get(conn, _LAYOUT)
            if layout is None:
                layout = self._store_layout()
            if layout["bucket_seconds"] != self.settings.bucket_seconds:
                log.warning("this store was written with %s-second buckets; using them, not "
                            "the configured %s", layout["bucket_seconds"],
                            self.settings.bucket_seconds)
                self.settings = replace(self.settings, bucket_seconds=layout["bucket_seconds"])
            self._levels = tuple(int(w) for w in layout["levels"])
        return self._levels

    def _store_layout(self) -> dict[str, Any]:
        """Record the layout once; concurrent first requests agree on the first one."""
        with self.db.write() as conn:
            legacy = conn.execute(select(bucket_profiles.c.id).limit(1)).first()
            widths = (3600, 86400) if legacy is not None else (600, 3600, 86400)
            return kv.put_if_absent(conn, _LAYOUT, {
                "bucket_seconds": self.settings.bucket_seconds,
                "levels": list(levels_for(self.settings.bucket_seconds, widths))})

    # ---------------------------------------------------------------- models
    def create_model(self, name: str, task: str | None = None,
                     description: str | None = None,
                     segment_columns: list[str] | None = None) -> dict[str, Any]:
        """``segment_columns``: the model's segment columns, used by every reference
        uploaded without its own ``segments`` option (docs/server.md, Segments)."""
        _check_name(name, "name")
        cols = segments.check_names(segment_columns)
        with self.db.write() as conn:
            m = repo.create_model(conn, name, task, description)
            if cols:
                kv.put(conn, f"{_SEGMENTS}{m.id}", cols)
        return m.to_dict() | ({"segments": cols} if cols else {})

    def list_models(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            return [m.to_dict() for m in repo.list_models(conn)]

    def model(self, name: str) -> repo.ModelRow:
        with self.db.peek() as conn:  # one statement, called by every route
            return repo.get_model(conn, name)

    def describe_model(self, name: str) -> dict[str, Any]:
        with self.db.read() as conn:
            m = repo.get_model(conn, name)
            versions = [v.to_dict() for v in repo.list_versions(conn, m)]
            waiting = joins.pending_count(conn, m.id)
            n_pred = conn.execute(select(func.count()).select_from(predictions)
                                  .where(predictions.c.model_id == m.id)).scalar()
            n_quar = conn.execute(select(func.count()).select_from(quarantine)
                                  .where(quarantine.c.model_id == m.id)).scalar()
            cols = kv.get(conn, f"{_SEGMENTS}{m.id}")
        return m.to_dict() | ({"segments": cols} if cols else {}) | {
            "versions": versions, "predictions": int(n_pred or 0),
            "labels_pending": waiting, "quarantined": int(n_quar or 0)}

    def create_version(self, name: str, version: str,
                       schema: dict[str, Any] | None = None) -> dict[str, Any]:
        _check_name(version, "version")
        parsed = Schema.from_dict(schema) if schema is not None else None
        if parsed is not None:
            segments.check_schema(parsed)
        with self.db.write() as conn:
            m = repo.get_model(conn, name)
            return repo.create_version(conn, m, version, parsed).to_dict()

    def version(self, name: str, version: str | None = None) -> dict[str, Any]:
        with self.db.read() as conn:
            return repo.get_version(conn, repo.get_model(conn, name), version).to_dict()

    def upload_reference(self, name: str, version: str, table: pa.Table,
                         hints: dict[str, Any] | None = None, *,
                         should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
        """Fit the version's reference (creating the version if needed); refs are immutable.

        ``should_stop`` goes to ``Reference.fit`` and the multivariate fit: the server stops
        fitting for a client that left (``Cancelled``), and nothing is stored then."""
        hints = {k: v for k, v in (hints or {}).items() if v not in (None, "", [])}
        unknown = sorted(set(hints) - set(_HINTS))
        if unknown:
            raise ParameterError(f"Unknown reference option(s) {unknown}; use {list(_HINTS)}.",
                                 unknown[0])
        m, existing = self.reference_target(name, version)
        if existing is not None and existing.schema is not None:
            if hints:
                raise SchemaError("This version has a schema already: the reference options "
                                  f"{sorted(hints)} cannot change it.", sorted(hints)[0])
            ref = Reference.fit(table, existing.schema, should_stop=should_stop)
        else:
            if m.task and "task" not in hints:
                hints["task"] = m.task
            if "segments" not in hints:  # the model's declared segment columns
                declared = self.declared_segments(m.id)
                if declared:
                    hints["segments"] = declared
            ref = Reference.fit(table, should_stop=should_stop, **hints)
        sample = sample_parquet(table, self.settings.sample_rows)
        return self.store_reference(m, existing, version, ref, table.num_rows, sample,
                                    should_stop)

    def declared_segments(self, model_id: int) -> list[str] | None:
        """The segment columns declared with the model (``POST /models {segments}``)."""
        with self.db.read() as conn:
            return kv.get(conn, f"{_SEGMENTS}{model_id}")

    def reference_target(self, name: str, version: str
                         ) -> tuple[repo.ModelRow, repo.VersionRow | None]:
        """The model and the version (None: not registered yet) a new reference is for;
        refused when the version has one already (references are immutable)."""
        _check_name(version, "version")
        with self.db.read() as conn:
            m = repo.get_model(conn, name)
            try:
                existing = repo.get_version(conn, m, version)
            except repo.NotFound:
                existing = None
        if existing is not None and existing.fingerprint is not None:
            raise repo.Conflict(f"Version {version!r} of {name!r} has a reference already; "
                                "references are immutable: register a new version.", "version")
        if existing is not None and existing.schema is None:
            self._refuse_if_inherited(m, existing)
        return m, existing

    def store_reference(self, m: repo.ModelRow, existing: repo.VersionRow | None,
                        version: str, ref: Reference, rows: int, sample: bytes | None,
                        should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
        """Store a fitted reference with its sample of rows (None: multivariate drift then
        says the reference has no sample) and the multivariate state fitted on it."""
        segments.check_schema(ref.schema_)
        # fitted once with the reference, so no window refits it (and no restart does);
        # without a sample there is nothing to store (another version's may come)
        multivariate = None if sample is None else fit_state(
            read_parquet(sample), ref.schema_, self.multivariate.settings, should_stop)
        with self.db.write(m.id) as conn:
            v = existing or repo.create_version(conn, m, version, None)
            repo.set_reference(conn, v, ref, rows, sample)
            if multivariate is not None:
                kv.put_if_absent(conn, state_key(ref.fingerprint), multivariate)
        return {"version": version, "rows": rows, "columns": len(ref.schema_.columns),
                "fingerprint": ref.fingerprint, "schema": ref.schema_.to_dict()}

    def _refuse_if_inherited(self, m: repo.ModelRow, v: repo.VersionRow) -> None:
        """A version that took events under an inherited reference keeps it: its profiles
        were binned by that reference and cannot be compared with another one."""
        with self.db.read() as conn:
            src = repo.reference_source(conn, v.id)
            has_rows = src is not None and conn.execute(
                select(bucket_profiles.c.id).where(bucket_profiles.c.model_id == m.id,
                                                   bucket_profiles.c.version_id == v.id,
                                                   bucket_profiles.c.n_rows > 0).limit(1)
            ).first() is not None
            source = repo.get_version_by_id(conn, src) if has_rows else None
        if source is not None:
            raise repo.Conflict(
                f"Version {v.version!r} of {m.name!r} has taken events monitored with version "
                f"{source.version!r}'s reference (it had none of its own); references are "
                "immutable: register a new version to monitor against another reference.",
                "version")

    def reference_sample(self, name: str, version: str | None = None) -> pa.Table | None:
        with self.db.read() as conn:
            v = repo.get_version(conn, repo.get_model(conn, name), version)
            blob = repo.load_sample(conn, v.id)
        return None if blob is None else read_parquet(blob)

    # ---------------------------------------------------------------- ingest
    def log_predictions(self, name: str, payload: list[Any] | pa.Table,
                        rejected: dict[int, tuple[str, str]] | None = None) -> IngestResult:
        m = self.model(name)
        levels = self.levels  # first: it may correct the bucket width to the store's
        return ingest_predictions(self.db, self.refs, m, payload,
                                  bucket_seconds=self.settings.bucket_seconds, levels=levels,
                                  segment_top_n=self.settings.segment_top_n,
                                  rejected=rejected)

    def log_resources(self, name: str, samples: list[Any]) -> ResourceResult:
        """CPU, memory, GPU and cost samples of the model's serving processes."""
        m = self.model(name)
        levels = self.levels
        return ingest_resources(self.db, m, samples,
                                bucket_seconds=self.settings.bucket_seconds, levels=levels)

    def log_labels(self, name: str, payload: list[Any] | pa.Table) -> joins.LabelResult:
        m = self.model(name)
        if isinstance(payload, pa.Table):
            missing = [c for c in (rows.PID, "label") if c not in payload.column_names]
            if missing:
                raise DataError(f"Label data needs the columns {missing}.", missing[0])
            ids, values, errors = (payload.column(rows.PID).combine_chunks(),
                                   payload.column("label").combine_chunks(), [])
            ignored = set(payload.column_names) - rows.LABEL_KEYS
        else:
            ids, values, errors, ignored = rows.label_rows(payload)
        levels = self.levels
        schema = self._serving_schema(m)
        res = joins.ingest_labels(self.db, self.refs, m, ids, values,
                                  bucket_seconds=self.settings.bucket_seconds,
                                  levels=levels, errors=errors,
                                  segment_top_n=self.settings.segment_top_n,
                                  classes=_binary_classes(schema),
                                  numeric=schema is not None
                                  and schema.task == Task.REGRESSION)
        res.ignored_columns = sorted(ignored)
        # a row that is not an object has one error, "row": its missing id is not another
        not_objects = {e.row for e in errors if e.field == "row"}
        if not_objects:
            res.errors = [e for e in res.errors
                          if e["row"] not in not_objects or e["field"] == "row"]
        return res

    def _serving_schema(self, m: repo.ModelRow) -> Any:
        with self.db.peek() as conn:
            try:
                v = repo.get_version(conn, m)
            except repo.NotFound:
                return None
            ref = self.refs.get(conn, v.id)
        return None if ref is None else ref.schema_


    # --------------------------------------------------------------- queries
    def _window(self, start: Any, end: Any, default_span: float = 86400) -> tuple[int, int]:
        self.levels  # noqa: B018 - settles the store's bucket width first
        b = self.settings.bucket_seconds
        t1 = parse_instant(end, "end") if end not in (None, "") else time.time()
        t0 = parse_instant(start, "start") if start not in (None, "") else t1 - default_span
        if t0 >= t1:
            raise ParameterError(f"start must be before end (got {to_iso(t0)} ≥ {to_iso(t1)}).",
                                 "start")
        return int(t0 // b * b), int(-(-t1 // b) * b)

    def _kept(self, t0: int, t1: int) -> tuple[int, int]:
        """A window widened onto the levels still kept at its age (downsampling)."""
        s, e = self.retention.snap([t0, t1], time.time(), self.levels)
        return s, e

    def series(self, name: str, metric: str, *, start: Any = None, end: Any = None,
               step: Any = None, version: str | None = None, method: str | None = None,
               columns: list[str] | None = None, segment: str | None = None) -> dict[str, Any]:
        """A metric over consecutive windows of ``step`` (or one window), from bucket merges;
        of one segment's rows (``country:BR``) when ``segment`` is given."""
        if metric not in metrics.METRICS and metric not in metrics.ROW_METRICS:
            raise ParameterError(f"metric: unknown {metric!r}; choose from "
                                 f"{sorted([*metrics.METRICS, *metrics.ROW_METRICS])}.",
                                 "metric")
        t0, t1 = self._window(start, end)
        b = self.settings.bucket_seconds
        width = t1 - t0 if step in (None, "") else parse_duration(step)
        if width % b:
            raise ParameterError(f"step must be a multiple of the bucket ({b} s); got {width}.",
                                 "step")
        n = -(-(t1 - t0) // width)
        if n > _MAX_POINTS:
            raise ParameterError(f"step: {n} points requested; at most {_MAX_POINTS}. "
                                 "Use a wider step or a shorter window.", "step")
        # boundaries in downsampled ranges move onto the level still kept there
        now = time.time()
        bounds = self.retention.snap([*(t0 + i * width for i in range(n)), t1], now,
                                     self.levels)
        windows = list(itertools.pairwise(bounds))
        coarse = self.retention.note(width, t0, now, self.levels)
        seg = self._segment(segment, metric)
        with self.db.read() as conn:
            m, v, ref = self._resolve(conn, name, version)
            unreadable = None if seg is None else segments.resolve(
                ref, seg, self.settings.segment_top_n)
            data = profiles.read_windows(conn, m.id, v.id, windows, self.levels, self.tiles,
                                         segment=None if seg is None else seg.key)
            by_rows = self._row_metric(conn, metric, m, v, ref, windows, data, seg)
        points = []
        for (s, e), d, row in zip(windows, data, by_rows, strict=True):
            value = row[0] if metric in metrics.ROW_METRICS else metrics.compute(
                metric, ref, d, method=method, columns=columns)
            point = {"start": to_iso(s), "end": to_iso(e), "rows": d.rows, "value": value}
            why = (unreadable or row[1] or (coarse if s == e else None)
                   or metrics.reason(metric, ref, d, value, v.version))
            if why is not None:
                point["reason"] = why
            points.append(point)
        out = {"model": name, "version": v.version, "metric": metric, "start": to_iso(t0),
               "end": to_iso(t1), "step": width, "points": points}
        if coarse is not None:
            out["downsampled"] = coarse
        if seg is not None:
            out["segment"] = {"column": seg.column, "value": seg.value}
        if ref is not None and ref.fingerprint != v.fingerprint:
            out["reference"] = {"inherited": True, "fingerprint": ref.fingerprint}
        return out

    def _row_metric(self, conn: Any, metric: str, m: Any, v: Any, ref: Any,
                    windows: list[tuple[int, int]], data: list[Any], seg: Any
                    ) -> list[tuple[Any, str | None]]:
        """``(value, reason)`` per window of a metric computed from raw rows, else Nones."""
        if metric not in metrics.ROW_METRICS:
            return [(None, None)] * len(windows)
        if seg is not None:
            raise ParameterError(f"segment: {metric} is not split by segment.", "segment")
        if len(windows) > _MAX_ROW_WINDOWS:
            raise ParameterError(f"step: {metric} fits a classifier per window; at most "
                                 f"{_MAX_ROW_WINDOWS} windows per request, {len(windows)} "
                                 "asked. Use a wider step or a shorter range.", "step")
        return [self.row_metric(conn, metric, m.id, v.id, v.version, ref, s, e, d.rows)
                for (s, e), d in zip(windows, data, strict=True)]

    def row_metric(self, conn: Any, metric: str, model_id: int, version_id: int,
                   version: str, ref: Any, t0: float, t1: float, n_rows: int
                   ) -> tuple[Any, str | None]:
        """A metric of :data:`metrics.ROW_METRICS` for one window: ``(value, reason)``."""
        t0, t1 = self._window(t0, t1)  # bucket-aligned, as the window's profiles are
        if metric == "attribution_drift":
            if self.attribution is None:
                return None, ("attribution drift is checked by an aiwarden server (it loads "
                              "the registered model); this process has none")
            found = self.attribution.value(conn, model_id, version, t0, t1)
            return (None, found["reason"]) if "reason" in found else (found, None)
        if metric == "embedding_drift":  # an image model's embeddings (image_embeddings.py)
            from aiwarden.monitoring.image_embeddings import EMBEDDING_DRIFT

            return EMBEDDING_DRIFT.compute(conn, model_id, version_id, t0, t1, n_rows)
        engine = self.text_drift if metric == "text_drift" else self.multivariate
        value, why = engine.compute(self.db, conn, model_id, version_id, version,
                                               ref, t0, t1, n_rows)
        return metrics._clean(value), why

    def _resolve(self, conn: Any, name: str, version: str | None) -> tuple[Any, Any, Any]:
        """``(model, version, reference or None)``; 404s name what is missing."""
        m = repo.get_model(conn, name)
        v = repo.get_version(conn, m, version)
        return m, v, self.refs.get(conn, v.id)

    def window(self, name: str, start: Any, end: Any, version: str | None = None,
               segment: str | None = None) -> tuple[Any, Any]:
        """``(reference, merged bucket data)`` of one window, for several metrics at once."""
        ref, (data,) = self.windows(name, [(start, end)], version, segment)
        return ref, data

    def versions_with_data(self, name: str, since: float) -> set[int]:
        """Ids of the versions with bucket data starting at or after ``since``."""
        levels = self.levels
        width = max((w for w in levels if w <= 3600), default=levels[0])
        with self.db.read() as conn:
            m = repo.get_model(conn, name)
            return profiles.versions_since(conn, m.id, width, int(since // width * width))

    def windows(self, name: str, spans: list[tuple[Any, Any]],
                version: str | None = None, segment: str | None = None
                ) -> tuple[Any, list[Any]]:
        """Several windows from one query: what an alert cycle reads for one model (or for
        one segment, ``country=BR``, of its rows)."""
        levels = self.levels  # outside the read: it may record the layout
        aligned = [self._kept(*self._window(s, e)) for s, e in spans]
        with self.db.read() as conn:
            m, v, ref = self._resolve(conn, name, version)
            data = profiles.read_windows(conn, m.id, v.id, aligned, levels, self.tiles,
                                         segment=segment)
        return ref, data

    def reference_segment(self, name: str, version: str | None, segment: str
                          ) -> Any | None:
        """The labelled reference rows of one segment (``country=BR``) as a labels-only
        partial, from the reference sample; None when the sample has no labels there.
        Cached per reference: references and their samples are immutable."""
        seg = segments.parse(segment)
        with self.db.read() as conn:
            _, v, ref = self._resolve(conn, name, version)
        if ref is None:
            return None
        key = (ref.fingerprint, seg.column, self.settings.segment_top_n)
        parts = self._reference_segments.get(key)
        if parts is None:
            with self.db.read() as conn:  # an inherited reference: its owner's sample
                owner = repo.reference_source(conn, v.id) or v.id
                blob = repo.load_sample(conn, owner)
            sample = None if blob is None else read_parquet(blob)
            parts = {} if sample is None else segments.reference_parts(
                ref, sample, seg.column, self.settings.segment_top_n)
            self._reference_segments[key] = parts
        return parts.get(seg.value)

    @staticmethod
    def _segment(segment: str | None, metric: str) -> segments.Segment | None:
        if segment in (None, ""):
            return None
        if metric == "resources":
            raise ParameterError("segment: resource samples come per serving process, not "
                                 "per row, so they have no segments.", "segment")
        return segments.parse(segment)

    def segments(self, name: str, version: str | None = None) -> dict[str, Any]:
        """The version's segment columns and the values each keeps (then ``__other__``)."""
        n = self.settings.segment_top_n
        with self.db.read() as conn:
            _, v, ref = self._resolve(conn, name, version)
        cols = [] if ref is None else segments.segment_columns(ref.schema_)
        return {"model": name, "version": v.version, "top_n": n, "other": segments.OTHER,
                "columns": {c: [*segments.kept_values(ref, c, n), segments.OTHER]
                            for c in cols}}

    def compare(self, name: str, *, start: Any, end: Any, baseline_start: Any = None,
                baseline_end: Any = None, version: str | None = None) -> dict[str, Any]:
        """Drift and quality of a window against another window, or against the reference."""
        t0, t1 = self._kept(*self._window(start, end))
        with self.db.read() as conn:
            m, v, ref = self._resolve(conn, name, version)
            if ref is None:
                raise DataError(f"Version {v.version!r} has no reference to compare with.",
                                "version")
            cur = profiles.read_window(conn, m.id, v.id, t0, t1, self.levels)
            base = None
            if baseline_start not in (None, "") or baseline_end not in (None, ""):
                b0, b1 = self._kept(*self._window(baseline_start, baseline_end))
                base = profiles.read_window(conn, m.id, v.id, b0, b1, self.levels)
        out: dict[str, Any] = {"model": name, "version": v.version,
                               "window": {"start": to_iso(t0), "end": to_iso(t1),
                                          "rows": cur.rows},
                               "baseline": "reference" if base is None else {
                                   "start": to_iso(b0), "end": to_iso(b1), "rows": base.rows}}
        if cur.profile is None or cur.profile.n_rows == 0:
            raise DataError("The window holds no profiled rows.", "start")
        if base is None:
            out["drift"] = metrics.compute("drift", ref, cur)
        else:
            if base.profile is None or base.profile.n_rows == 0:
                raise DataError("The baseline window holds no profiled rows.", "baseline_start")
            out["drift"] = metrics._clean(_window_drift(ref, base, cur))
        out["quality"] = metrics.compute("quality", ref, cur)
        return out

    def export_events(self, name: str, *, start: Any = None, end: Any = None) -> pa.Table:
        """The raw rows of a window with their labels, for slices, RCA and retraining."""
        t0, t1 = self._window(start, end, default_span=7 * 86400)
        with self.db.read() as conn:
            m = repo.get_model(conn, name)
            blobs = conn.execute(select(event_batches.c.data).where(
                event_batches.c.model_id == m.id, event_batches.c.max_ts >= t0,
                event_batches.c.min_ts < t1).order_by(event_batches.c.id)).scalars().all()
            parts = []
            for blob in blobs:
                t = read_parquet(blob)
                ts = t.column(rows.TS).to_numpy()
                keep = np.flatnonzero((ts >= t0) & (ts < t1))
                if len(keep):
                    parts.append(t.take(pa.array(keep)))
            if not parts:
                return pa.table({rows.PID: pa.array([], pa.string()),
                                 rows.TS: pa.array([], pa.float64())})
            table = rows.concat_stored(parts)
            found = joins.labels_for(conn, self.db, m.id, table.column(rows.PID).to_numpy(
                zero_copy_only=False))
        label_col = pa.array([found.get(p) for p in table.column(rows.PID).to_pylist()],
                             pa.string())
        return table.append_column("label", label_col)

    def events_by_id(self, name: str, ids: Sequence[str]) -> dict[str, Any]:
        """Logged rows by prediction id (at most ``event_lookup.MAX_IDS``), each with the
        name of the version that served it; unknown ids are listed under ``missing``."""
        if len(ids) > event_lookup.MAX_IDS:
            raise DataError(f"At most {event_lookup.MAX_IDS} prediction ids per lookup; got "
                            f"{len(ids)}.", "prediction_ids")
        with self.db.read() as conn:
            m = repo.get_model(conn, name)
            found = event_lookup.events_by_id(conn, self.db, m.id, ids)
            names = {int(v): repo.get_version_by_id(conn, int(v)).version
                     for v in np.unique(found.version_ids).tolist()}
        return {"table": found.table, "missing": found.missing,
                "versions": [names[int(v)] for v in found.version_ids]}

    def quarantined(self, name: str, limit: int = 100) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            m = repo.get_model(conn, name)
            return [q.to_dict() for q in quarantine_rows.list_rows(conn, m.id, limit=limit)]

    # ----------------------------------------------------------- maintenance
    def compact(self) -> int:
        """Merge bucket partials of every model; returns keys compacted."""
        total = 0
        with self.db.read() as conn:
            ids = [m.id for m in repo.list_models(conn)]
        for model_id in ids:
            with self.db.write(model_id) as conn:
                total += profiles.compact(conn, model_id)
        return total

    def _drop_partitions(self, now: float, cutoff: float) -> int:
        """Drop the day partitions of ``event_batches`` wholly past ``cutoff`` after
        deleting their index rows in chunks; make the next days' partitions. Returns the
        batches dropped."""
        with self.db.write() as conn:
            partitions.ensure_days(conn, now)
            old = partitions.droppable(conn, cutoff)
        removed = 0
        for part in old:
            last = -1
            while True:  # index rows first, chunk by chunk, under each model's lock
                with self.db.read() as conn:
                    chunk = conn.execute(text(
                        f"SELECT id, model_id FROM {part.name} WHERE id > :last ORDER BY id "
                        "LIMIT :n"), {"last": last, "n": _RETENTION_CHUNK}).all()
                if not chunk:
                    break
                last = chunk[-1].id
                by_model: dict[int, list[int]] = {}
                for bid, model_id in chunk:
                    by_model.setdefault(model_id, []).append(bid)
                for model_id, bids in by_model.items():
                    with self.db.write(model_id) as conn:
                        _forget_batches(conn, model_id, bids)
                removed += len(chunk)
            with self.db.write() as conn:
                # no insert can reach it now; batches a backfill added meanwhile go too
                conn.execute(text(f"LOCK TABLE {part.name} IN ACCESS EXCLUSIVE MODE"))
                late = conn.execute(text(f"SELECT id, model_id FROM {part.name} "
                                         "WHERE id > :last"), {"last": last}).all()
                for bid, model_id in late:
                    _forget_batches(conn, model_id, [bid])
                conn.execute(text(f"DROP TABLE {part.name}"))
                removed += len(late)
        return removed

    def downsample(self, now: float | None = None) -> int:
        """Delete rollup partials past their level's horizon (monitoring/retention.py);
        returns partials deleted."""
        return downsample(self.db, self.retention, self.levels, now)

    def enforce_retention(self, now: float | None = None) -> int:
        """Delete raw rows (and their index) past retention; profiles stay. On PostgreSQL
        whole day partitions past it are dropped first (store/partitions.py); rows left in
        a partition straddling the cutoff, or in the default one, are deleted as on SQLite."""
        if self.settings.retention_days <= 0:  # 0: forever, as for the rollup horizons
            return 0
        now = time.time() if now is None else now
        cutoff = now - self.settings.retention_days * 86400
        removed = 0 if self.db.is_sqlite else self._drop_partitions(now, cutoff)
        with self.db.read() as conn:
            ids = [m.id for m in repo.list_models(conn)]
        for model_id in ids:
            with self.db.write(model_id) as conn:
                # LLM conversations are raw events too: kept no longer than the rows
                conn.execute(delete(llm_events).where(llm_events.c.model_id == model_id,
                                                      llm_events.c.ts < cutoff))
            old = [0] * _RETENTION_CHUNK
            while len(old) == _RETENTION_CHUNK:  # bounded ids and lock time per transaction
                with self.db.write(model_id) as conn:
                    old = conn.execute(select(event_batches.c.id).where(
                        event_batches.c.model_id == model_id,
                        event_batches.c.max_ts < cutoff).limit(_RETENTION_CHUNK)
                    ).scalars().all()
                    if not old:
                        break
                    # labels go with their rows: by arrival time, a label that waited for a
                    # recent prediction would vanish while its row is kept
                    _forget_batches(conn, model_id, old)
                    removed += conn.execute(delete(event_batches).where(
                        event_batches.c.id.in_(old))).rowcount
        return removed


def _forget_batches(conn: Any, model_id: int, batch_ids: list[int]) -> None:
    """The index rows, and joined labels, of raw batches about to go."""
    of_batches = select(predictions.c.prediction_id).where(
        predictions.c.model_id == model_id, predictions.c.batch_id.in_(batch_ids))
    conn.execute(delete(labels).where(labels.c.model_id == model_id,
                                      labels.c.joined.is_(True),
                                      labels.c.prediction_id.in_(of_batches)))
    conn.execute(delete(predictions).where(predictions.c.model_id == model_id,
                                           predictions.c.batch_id.in_(batch_ids)))


def _window_drift(ref: Reference, base: Any, cur: Any) -> dict[str, Any]:
    """Window-vs-window drift: the baseline's counts stand in for the reference's."""
    from dataclasses import replace

    shadow = Reference(schema=ref.schema_, binnings=ref.binnings_,
                       profile=replace(base.profile, reference=ref.fingerprint),
                       instability=ref.instability_, settings=ref.settings,
                       random_state=ref.random_state)
    return metrics.drift(shadow, cur)


def sample_parquet(table: pa.Table, n: int) -> bytes:
    """A seeded sample of at most ``n`` rows, as the Parquet a reference keeps."""
    if table.num_rows > n:
        idx = np.sort(np.random.default_rng(0).choice(table.num_rows, n, replace=False))
        table = table.take(pa.array(idx))
    return write_parquet(table)


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,199}")


def _check_name(value: Any, field: str) -> None:
    """Names travel in URLs, file names and headers: letters, digits and ``._:@+-`` only."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ParameterError(f"{field}: expected 1-200 letters, digits or ._:@+- (starting "
                             f"with a letter or digit); got {value!r}.", field)


def _binary_classes(schema: Any) -> tuple[str, ...] | None:
    """The serving version's two classes when it is a binary classifier: a label that is
    neither ('banana', 7, 0.5) is refused, not counted as a third class."""
    if schema is None or schema.task != Task.BINARY or len(schema.classes) != 2:
        return None
    return schema.classes
