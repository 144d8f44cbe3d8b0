"""Multivariate drift of a window: a domain classifier and PCA reconstruction error on rows.

Every other metric is a function of merged bucket profiles; these two need rows, because a
change in how columns move together (a correlation that flips while every marginal stays put)
leaves no trace in per-column histograms. So a window's value is computed from a seeded,
bounded sample of its raw rows (``event_batches``) against the reference's stored sample
(``model_versions.sample``, at most ``sample_rows`` rows, typed here as ingest types events):

* what is fitted once per reference is stored with it (``kv_state`` under the reference's
  fingerprint): the PCA subspace with its out-of-chunk error band and the encoding; a
  reference uploaded before this existed is fitted from its stored sample on first use;
* the classifier's reference side is a seeded subsample of the stored sample; each window
  costs one cross-validated classifier on at most ``rows`` rows a side and the read of at most
  about ``rows / share`` event batches (``share``: the version's share of the rows stored in
  the window's time range), whatever the window's length;
* a thin window or reference gives ``None`` with a reason instead of a guess;
* the fit at upload is bounded: a reference with more than ``max_columns`` feature columns
  is not fitted (every window answers with the reason naming the limit and its setting),
  and the fit stops between its SVDs when the uploading client hangs up (``should_stop``).

Results are cached per (version, window, row count), so the alert loop, the REST API and a
scrape of the same window pay once.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, select

from aiwarden.engine.multivariate import DomainClassifierDrift, PCAReconstructionDrift
from aiwarden.engine.reference import Reference
from aiwarden.engine.schema import ColumnType, Schema
from aiwarden.errors import AiwardenError, Cancelled, ParameterError
from aiwarden.monitoring import rows as rowfmt
from aiwarden.monitoring.seeded_sample import window_rng
from aiwarden.store import kv
from aiwarden.store.models_repo import has_sample, load_sample, reference_source
from aiwarden.store.tables import event_batches
from aiwarden.tabular_io import read_parquet

__all__ = ["NO_SAMPLE", "MultivariateSettings", "MultivariateWindows", "fit_state",
           "state_key"]

_CACHE = 256  # window results kept per process
NO_SAMPLE = "the reference has no stored sample of rows"
_FITTED = 128  # references' fitted detectors kept per process (each ~rows x width floats)
MIN_ROWS, MAX_ROWS = 100, 100_000  # bounds of the rows sampled a side per window
_READ_CHUNK = 200  # event batches fetched per query


@dataclass(frozen=True)
class MultivariateSettings:
    """``rows``: sampled rows a side (window and reference); ``min_rows``: fewer in the
    window or the reference sample and the metric says so instead of guessing;
    ``max_columns``: a reference with more feature columns is not fitted (0: no bound)."""

    rows: int = 1000
    min_rows: int = 100
    n_splits: int = 5
    seed: int = 0
    max_columns: int = 1000

    def __post_init__(self) -> None:
        if not (isinstance(self.rows, int) and MIN_ROWS <= self.rows <= MAX_ROWS):
            raise ParameterError(f"multivariate_rows: expected an int in [{MIN_ROWS}, "
                                 f"{MAX_ROWS}]; got {self.rows!r}.", "multivariate_rows")
        if not (isinstance(self.max_columns, int) and self.max_columns >= 0):
            raise ParameterError(f"multivariate_max_columns: expected an int >= 0 (0: no "
                                 f"bound); got {self.max_columns!r}.",
                                 "multivariate_max_columns")


def _put_state(conn: Connection, key: str, state: dict[str, Any]) -> dict[str, Any]:
    """Store a fitted state unless one is stored (first writer wins); a stored "no sample"
    (written before samples could arrive with a profile reference) gives way."""
    stored = kv.get(conn, key)
    if stored is None or stored.get("reason") == NO_SAMPLE:
        kv.put(conn, key, state)
        return state
    return stored


def state_key(fingerprint: str) -> str:
    return f"multivariate:{fingerprint}"


def typed_features(table: pa.Table, schema: Schema) -> pa.Table:
    """The schema's feature columns typed as ingest stores events (numerical -> float64, the
    rest text), so reference and window rows meet in one encoding."""
    cols = {}
    for name in schema.features:
        if name not in table.column_names:
            continue
        arr = table.column(name).combine_chunks()
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        if schema[name].dtype == ColumnType.NUMERICAL:
            cols[name] = pc.cast(arr, pa.float64(), safe=False) if (
                pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)
                or pa.types.is_decimal(arr.type)) else arr
        else:
            if pa.types.is_floating(arr.type):
                arr = pc.if_else(pc.is_nan(arr), pa.scalar(None, arr.type), arr)
            cols[name] = arr if pa.types.is_string(arr.type) else pc.cast(arr, pa.string())
    return pa.table(cols)


def fit_state(sample: pa.Table | None, schema: Schema, settings: MultivariateSettings,
              should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """What a window needs fitted once: the PCA (with the encoding), or why it cannot be.

    ``should_stop`` goes to the PCA fit, which raises :class:`~aiwarden.errors.Cancelled`
    when it answers True (the upload of a client that left stores nothing)."""
    if sample is None:
        return {"reason": NO_SAMPLE}
    wide = sum(name in sample.column_names for name in schema.features)
    if settings.max_columns and wide > settings.max_columns:
        return {"reason": f"too many columns for the multivariate fit ({wide} feature "
                          f"columns > {settings.max_columns}); set "
                          f"AIWARDEN_MULTIVARIATE_MAX_COLUMNS to fit wider references"}
    try:
        features = typed_features(sample, schema)
        if features.num_columns == 0:
            return {"reason": "the schema has no feature column in the reference sample"}
        if features.num_rows < settings.min_rows:
            return {"reason": f"the reference sample has {features.num_rows} rows; "
                              f"multivariate drift needs at least {settings.min_rows}"}
        pca = PCAReconstructionDrift(features=features.column_names).fit(
            features.to_pandas(), should_stop=should_stop)
    except Cancelled:
        raise  # not a property of the reference: nothing is stored
    # An optional metric must not fail the reference upload: the reason is stored and every
    # window of this reference answers with it.
    except (AiwardenError, pa.ArrowException, ValueError, TypeError) as exc:
        return {"reason": f"cannot fit multivariate drift on the reference sample: {exc}"}
    return {"pca": pca.to_dict(), "reference_rows": features.num_rows}


@dataclass
class _Fitted:
    pca: PCAReconstructionDrift | None
    classifier: DomainClassifierDrift | None
    reason: str | None
    reference_rows: int = 0


class MultivariateWindows:
    """Per-process: fitted detectors per reference and recent window results."""

    def __init__(self, settings: MultivariateSettings | None = None) -> None:
        self.settings = settings or MultivariateSettings()
        self._fitted: OrderedDict[tuple[str, int | None], _Fitted] = OrderedDict()
        self._results: OrderedDict[tuple[Any, ...], tuple[Any, str | None]] = OrderedDict()
        self._lock = threading.Lock()

    def compute(self, db: Any, conn: Connection, model_id: int, version_id: int, version: str,
                ref: Reference | None, t0: float, t1: float, n_rows: int
                ) -> tuple[dict[str, Any] | None, str | None]:
        """``(value, None)`` or ``(None, reason)`` for the window ``[t0, t1)`` holding
        ``n_rows`` rows of the version (from its bucket profiles)."""
        if ref is None or n_rows == 0:
            return None, None  # the metrics layer names the missing reference or events
        st = self.settings
        if n_rows < st.min_rows:
            return None, (f"the window has {n_rows} rows; multivariate drift needs at least "
                          f"{st.min_rows} (multivariate_min_rows)")
        key = (version_id, ref.fingerprint, t0, t1, n_rows)
        with self._lock:
            if key in self._results:
                self._results.move_to_end(key)
                return self._results[key]
        fitted = self._fit(db, conn, version_id, ref)
        if fitted.reason is not None:
            return None, fitted.reason
        names = list(fitted.pca.encoder_.features_)
        table = window_rows(conn, model_id, version, t0, t1, n_rows, names, st.rows, st.seed)
        if table.num_rows < st.min_rows:
            out: tuple[Any, str | None] = (None, (
                f"the window's stored rows hold {table.num_rows} rows of version {version!r} "
                f"(raw rows past retention are gone); needs at least {st.min_rows}"))
        else:
            out = (self._value(fitted, typed_features(table, ref.schema_).to_pandas(),
                               n_rows), None)
        with self._lock:
            self._results[key] = out
            while len(self._results) > _CACHE:
                self._results.popitem(last=False)
        return out

    def _fit(self, db: Any, conn: Connection, version_id: int, ref: Reference) -> _Fitted:
        """Stored state, else fitted from the stored sample and stored (first writer wins).

        The state is shared by every version with the same reference (fingerprint), but a
        sample's absence is not: a reference sent as a profile without rows has none while
        another version of the same bins may, so "no sample" is never stored or shared."""
        source = reference_source(conn, version_id) or version_id
        owner = version_id if has_sample(conn, version_id) else (
            source if has_sample(conn, source) else None)
        cache_key = (ref.fingerprint, owner)
        with self._lock:
            found = self._fitted.get(cache_key)
            if found is not None:
                self._fitted.move_to_end(cache_key)
                return found
        if owner is None:
            fitted = _Fitted(None, None, NO_SAMPLE)
        else:
            sample = read_parquet(load_sample(conn, owner))
            key = state_key(ref.fingerprint)
            state = kv.get(conn, key)
            if state is None or state.get("reason") == NO_SAMPLE:  # stored before this rule
                state = fit_state(sample, ref.schema_, self.settings)
                with db.write() as wconn:
                    state = _put_state(wconn, key, state)
            if "reason" in state:
                fitted = _Fitted(None, None, state["reason"])
            else:
                st = self.settings
                pca = PCAReconstructionDrift.from_dict(state["pca"])
                names = list(pca.encoder_.features_)
                clf = DomainClassifierDrift(max_rows=st.rows, n_splits=st.n_splits,
                                            random_state=st.seed, features=names, n_threads=1)
                clf.fit(typed_features(sample, ref.schema_).to_pandas())
                fitted = _Fitted(pca, clf, None, int(state["reference_rows"]))
        with self._lock:
            self._fitted[cache_key] = fitted
            while len(self._fitted) > _FITTED:
                self._fitted.popitem(last=False)
        return fitted

    def _value(self, fitted: _Fitted, current: Any, window_rows_: int) -> dict[str, Any]:
        dc = fitted.classifier.compare(current)
        rec = fitted.pca.compare(current)
        importances = None
        if dc.importances:
            importances = [{"feature": f, "importance": i, "std": s} for f, i, s in
                           zip(dc.features, dc.importances, dc.importance_std, strict=True)]
        return {
            "auc": dc.auc, "auc_lower": dc.auc_ci[0], "auc_upper": dc.auc_ci[1],
            "auc_threshold": dc.threshold, "auc_noise_bound": dc.noise_bound,
            "classifier_drifted": dc.drift_detected, "fold_aucs": list(dc.fold_aucs),
            "importances": importances, "importance_reason": dc.importance_reason,
            "reconstruction_error": rec.error, "reconstruction_lower": rec.lower,
            "reconstruction_upper": rec.upper, "reconstruction_drifted": rec.drift_detected,
            "reconstruction_reason": rec.reason,
            "reconstruction_features": [
                {"feature": f, "current_error": c, "reference_error": r} for f, c, r in
                zip(rec.features, rec.current_errors, rec.reference_errors, strict=True)],
            "n_components": rec.n_components, "explained_variance": rec.explained_variance,
            "drifted": dc.drift_detected or rec.drift_detected,
            "n_reference": dc.n_reference, "n_current": dc.n_current,
            "n_sampled": len(current), "window_rows": window_rows_,
            "reference_sample_rows": fitted.reference_rows,
            "sample_rows": self.settings.rows, "n_invalid": dc.n_invalid,
        }


def window_rows(conn: Connection, model_id: int, version: str, t0: float, t1: float,
                n_rows: int, columns: list[str], rows: int, seed: int) -> pa.Table:
    """A seeded uniform sample of at most ``rows`` of the version's rows in ``[t0, t1)``.

    Positions are drawn over every row of the event batches overlapping the window (counts
    come from ``event_batches.n_rows``, without reading blobs), enough of them that about
    ``rows`` land on the version's rows inside the window (``n_rows`` of them, known from
    the bucket profiles); only the batches holding a drawn position are read, and only
    ``columns``. Each row of the window is equally likely to be kept.
    """
    found = conn.execute(select(event_batches.c.id, event_batches.c.n_rows).where(
        event_batches.c.model_id == model_id, event_batches.c.max_ts >= t0,
        event_batches.c.min_ts < t1).order_by(event_batches.c.id)).all()
    empty = pa.table({c: pa.array([], pa.string()) for c in columns})
    if not found:
        return empty
    ids = np.array([r[0] for r in found], dtype=np.int64)
    counts = np.array([r[1] for r in found], dtype=np.int64)
    total = int(counts.sum())
    rng = window_rng(seed, t0, t1)
    share = min(1.0, max(n_rows, 1) / total)
    k = min(total, math.ceil(rows / share * 1.2) + 10)
    positions = np.sort(rng.choice(total, size=k, replace=False))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    which = np.searchsorted(offsets, positions, side="right") - 1
    wanted = [rowfmt.TS, rowfmt.VERSION, *columns]
    parts = []
    hit = np.unique(which)
    for i in range(0, len(hit), _READ_CHUNK):
        chunk = hit[i:i + _READ_CHUNK]
        blobs = dict(conn.execute(select(event_batches.c.id, event_batches.c.data).where(
            event_batches.c.id.in_(ids[chunk].tolist()))).all())
        for b in chunk:
            blob = blobs.get(int(ids[b]))
            if blob is None:  # removed by retention meanwhile
                continue
            t = read_parquet(blob, wanted)
            local = positions[which == b] - offsets[b]
            local = local[local < t.num_rows]
            t = t.take(pa.array(local))
            ts = t.column(rowfmt.TS).to_numpy()
            keep = (ts >= t0) & (ts < t1)
            if rowfmt.VERSION in t.column_names:
                keep &= np.asarray(pc.equal(t.column(rowfmt.VERSION), version)
                                   .fill_null(False))
            if keep.any():
                parts.append(t.filter(pa.array(keep)))
    if not parts:
        return empty
    table = rowfmt.concat_stored(parts)
    if table.num_rows > rows:
        keep = np.sort(rng.choice(table.num_rows, size=rows, replace=False))
        table = table.take(pa.array(keep))
    for c in columns:  # a column no stored batch holds: all missing, named by the encoder
        if c not in table.column_names:
            table = table.append_column(c, pa.nulls(table.num_rows, pa.string()))
    return table.select(columns)
