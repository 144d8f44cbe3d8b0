"""The fitted reference: what every later batch is profiled on and compared with.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> ref_df = pd.DataFrame({"amount": rng.lognormal(3, 1, 5000),
...                        "country": rng.choice(["FR", "DE", "US"], 5000)})
>>> ref = Reference.fit(ref_df)
>>> cur = ref_df.assign(amount=ref_df.amount * 3)
>>> ref.compare(ref.profile(cur)).drifted_features
('amount',)
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa

from aiwarden.engine import _accumulators as acc
from aiwarden.engine._binning import CategoricalBinning, NumericalBinning
from aiwarden.engine._drift_null import (
    ColumnNull,
    bridge_null,
    fit_sizes,
    simulated_null,
    sized,
)
from aiwarden.engine._frame import numeric_values, to_table
from aiwarden.engine._profiling import (
    Binning,
    ColumnPass,
    RowHasher,
    binned_kind,
    fit_binning,
    fit_categorical,
    fit_numerical,
    map_columns,
    profile_column,
    thread_count,
)
from aiwarden.engine._results import RealisedPerformance
from aiwarden.engine._streaming import STREAM_ROWS, Source, is_stream, open_source, sample
from aiwarden.engine.drift import (
    DriftReport,
    DriftSettings,
    decide,
    null_moments,
    p_value_for,
    power_of,
    unseen_aware,
)
from aiwarden.engine.drift_metrics import METRICS
from aiwarden.engine.profile import (
    CategoricalProfile,
    NumericalProfile,
    PresenceProfile,
    Profile,
    merge_optional,
)
from aiwarden.engine.quality import QualityReport, QualitySettings, check_quality
from aiwarden.engine.schema import Role, Schema, infer_schema
from aiwarden.errors import Cancelled, DataError, ParameterError, SchemaError, check_param

__all__ = ["Reference"]

_SCHEMA_HINTS = {"target", "prediction", "scores", "id", "timestamp", "segments", "task",
                 "dtypes"}
_DRIFT_ROLES = (Role.FEATURE, Role.PREDICTION, Role.SCORE, Role.TARGET, Role.SEGMENT)
REFERENCE_FORMAT = 1


class Reference:
    """Reference data fitted once: schema, bins, its own profile, its variability.

    Build it with :meth:`fit`; then :meth:`profile` any batch, :meth:`compare`
    a (merged) profile for drift, :meth:`check_quality` for data quality.
    """

    def __init__(
        self, *, schema: Schema, binnings: dict[str, Binning], profile: Profile,
        instability: dict[str, dict[str, float]], settings: DriftSettings,
        random_state: int, performance_model: Any = None,
        duplicate_rate: float = 0.0, residual_edges: np.ndarray | None = None,
        null: dict[tuple[str, str], ColumnNull] | None = None,
    ) -> None:
        self.schema_ = schema
        self.binnings_ = binnings
        self.profile_ = profile
        self.instability_ = instability
        self.settings = settings
        self.random_state = random_state
        self.performance_model_ = performance_model
        self.duplicate_rate_ = duplicate_rate
        self.residual_edges_ = residual_edges
        # Each monitored column's noise floor for its method, fitted with the reference and
        # stored with it; other methods (and old stored references) fill it in on first use.
        self.null_: dict[tuple[str, str], ColumnNull] = dict(null or {})
        self._noise_cache: dict[tuple[str, str, int], ColumnNull] = {}

    # ------------------------------------------------------------------ fit
    @classmethod
    def fit(
        cls,
        data: Any,
        schema: Schema | None = None,
        *,
        bins: int = 200,
        max_categories: int = 2000,
        far: float = 3.0,
        chunks: int = 10,
        drift: DriftSettings | Mapping[str, Any] | None = None,
        random_state: int = 0,
        should_stop: Callable[[], bool] | None = None,
        n_threads: int | None = None,
        sample_rows: int = 1_000_000,
        batch_rows: int = STREAM_ROWS,
        **schema_hints: Any,
    ) -> Reference:
        """Fit bins, profile the reference and measure its chunk-to-chunk variability.

        ``schema_hints`` (target=, prediction=, scores=, id=, timestamp=, segments=,
        task=, dtypes=) go to :func:`infer_schema` when no schema is given.
        ``should_stop`` is asked between columns; when it answers True the fit raises
        :class:`~aiwarden.errors.Cancelled` (a server stops the work of a client that left).
        ``n_threads`` columns are fitted at once (None: two on a large table when two cores
        are free to this process; 1: none in parallel); the result does not depend on it.
        The cost is linear in rows and in columns.

        ``data`` may also be streamed (a pyarrow dataset or ``RecordBatchReader``, a polars
        ``LazyFrame``, a Parquet file or directory path), read ``batch_rows`` at a time. A
        stream of at most ``sample_rows`` rows is fitted exactly as in memory. A longer one
        is fitted (schema, bins, categories, calibration) on a uniform sample of
        ``sample_rows`` rows; a re-readable source is then read again to count every row on
        those bins, a one-shot ``RecordBatchReader`` keeps the sample as the reference.
        """
        owner = "Reference"
        check_param(isinstance(bins, int) and 2 <= bins <= 10_000, "bins", owner,
                    "an int in [2, 10000]", bins)
        check_param(isinstance(max_categories, int) and 2 <= max_categories <= 1_000_000,
                    "max_categories", owner, "an int in [2, 1000000]", max_categories)
        check_param(isinstance(far, int | float) and far > 0, "far", owner,
                    "a positive number", far)
        check_param(isinstance(chunks, int) and 2 <= chunks <= 1000, "chunks", owner,
                    "an int in [2, 1000]", chunks)
        _check_threads(n_threads, owner)
        _check_stream_params(sample_rows, batch_rows, owner)
        unknown = sorted(set(schema_hints) - _SCHEMA_HINTS)
        if unknown:
            raise ParameterError(f"Unknown argument(s) {unknown} of Reference.fit; schema hints "
                                 f"are: {', '.join(sorted(_SCHEMA_HINTS))}.")
        if is_stream(data):
            source = open_source(data)
            wanted = None if schema is None else [n for n in source.names if n in schema]
            table, n_rows = sample(source, sample_rows, batch_rows=batch_rows,
                                   seed=random_state, columns=wanted,
                                   between=lambda: _check_stop(should_stop))
            ref = cls.fit(table, schema, bins=bins, max_categories=max_categories, far=far,
                          chunks=chunks, drift=drift, random_state=random_state,
                          should_stop=should_stop, n_threads=n_threads, **schema_hints)
            if n_rows > table.num_rows and source.reusable:
                ref._count_all(source, batch_rows, n_threads, should_stop)
            return ref
        settings = drift if isinstance(drift, DriftSettings) else DriftSettings.from_dict(drift)
        table = to_table(data)
        encodings: dict[str, Any] = {}  # text columns' dictionary encodings, from inference
        if schema is None:
            schema = infer_schema(table, max_categories=max_categories, _encodings=encodings,
                                  **schema_hints)
        elif schema_hints:
            raise SchemaError("Pass either a schema or schema hints, not both.")
        present = set(table.column_names)  # a set: the list form made wide frames quadratic
        missing = [c.name for c in schema.columns if c.name not in present]
        if missing:
            raise SchemaError(f"Reference data lacks schema columns {missing}.", missing[0])

        chunk_of_row = _chunk_ids(table, schema, chunks, settings.calibration)
        rows = RowHasher(table.num_rows)
        position = {c.name: i for i, c in enumerate(schema.columns)}

        def fit_column(col: Any) -> tuple[Binning, ColumnPass, np.ndarray | None]:
            binning, cp, per_chunk = fit_one(col)
            if cp.row_key is not None:  # folded now: no column's key outlives its pass
                rows.add(position[col.name], cp.row_key)
            return binning, replace(cp, row_key=None, bin_index=None), per_chunk

        def fit_one(col: Any) -> tuple[Binning, ColumnPass, np.ndarray | None]:
            _check_stop(should_stop)
            arr = table.column(col.name)
            want_rows = col.role == Role.FEATURE
            chunked = chunk_of_row if col.role in _DRIFT_ROLES else None
            if binned_kind(col) in ("numerical", "text"):
                return fit_numerical(col, arr, bins=bins, far=far, chunk_of_row=chunked,
                                     chunks=chunks, want_rows=want_rows)
            if binned_kind(col) == "categorical":
                binning, cp = fit_categorical(col, arr, max_categories=max_categories,
                                              want_rows=want_rows,
                                              encoded=encodings.pop(col.name, None))
            else:
                binning = fit_binning(col, arr, max_categories=max_categories)
                cp = profile_column(col, binning, arr, want_rows=want_rows)
            per_chunk = None
            if chunked is not None and binning is not None:
                present = np.asarray(arr.is_valid())  # missing values are not categories
                nb = binning.n_bins
                flat = np.bincount(chunked[present] * nb + cp.bin_index[present],
                                   minlength=chunks * nb)
                per_chunk = flat.reshape(chunks, nb)
            return binning, cp, per_chunk

        fitted = map_columns(fit_column, schema.columns,
                             thread_count(n_threads, table.num_rows))
        encodings.clear()  # (those of columns no fit_categorical took: ids, presence)
        binnings: dict[str, Binning] = {}
        columns = {}
        chunk_counts: dict[str, np.ndarray] = {}
        for col, (binning, cp, per_chunk) in zip(schema.columns, fitted, strict=True):
            binnings[col.name], columns[col.name] = binning, cp.profile
            if per_chunk is not None:
                chunk_counts[col.name] = per_chunk
        _check_stop(should_stop)
        duplicates = rows.duplicates()
        perf, model = acc.fit_performance(schema, table)
        profile = Profile(table.num_rows, columns, {}, duplicates, perf, None)
        ref = cls(
            schema=schema, binnings=binnings, profile=profile, instability={},
            settings=settings, random_state=random_state, performance_model=model,
            duplicate_rate=duplicates / max(table.num_rows, 1),
            residual_edges=acc.residual_edges(schema, table),
        )
        ref.instability_ = {name: ref._instability(name, cc) for name, cc in chunk_counts.items()}
        for name in ref._drift_columns():
            numerical = isinstance(binnings[name], NumericalBinning)
            ref._null(name, settings.method_for(name, numerical), settings.n_simulations)
        ref.profile_ = replace(ref.profile_, reference=ref.fingerprint)
        if model is not None:
            est = acc.estimate_batch(model, schema, table)
            ref.profile_ = replace(ref.profile_, estimated=est)
        _check_stop(should_stop)
        return ref

    # -------------------------------------------------------------- profile
    def profile(self, data: Any, *, check_duplicates: bool = True,
                labels_only: bool = False, n_threads: int | None = None,
                batch_rows: int = STREAM_ROWS) -> Profile:
        """Summarise a batch on the reference bins; merge the results of many batches freely.

        ``n_threads`` columns are profiled at once (None: two on a large batch when two
        cores are free to this process); the profile does not depend on it.

        Labels arrive late: profile the labelled rows (prediction, scores and target
        joined) with ``labels_only=True`` and add the result to the window's profile.
        It holds only the realised-performance counts and zero rows, so the window's
        features are not counted twice.

        Streamed ``data`` (a pyarrow dataset or ``RecordBatchReader``, a polars ``LazyFrame``,
        a Parquet file or directory path) is profiled ``batch_rows`` rows at a time and the
        chunk profiles merged: the counts are those of the whole input in memory, the
        moments equal up to rounding; ``duplicates`` counts repeats within a chunk, as a
        merged window of buckets does.
        """
        _check_threads(n_threads, "Reference.profile")
        if is_stream(data):
            _check_stream_params(1, batch_rows, "Reference.profile")
            return self._profile_stream(open_source(data), batch_rows, n_threads,
                                        check_duplicates=check_duplicates,
                                        labels_only=labels_only)
        if labels_only:
            table = to_table(data)
            perf = acc.realised_batch(self.schema_, table, self.residual_edges_)
            if perf is None:
                target = self.schema_.column_for(Role.TARGET)
                raise DataError(f"No labelled rows: labels_only needs the target {target!r} "
                                "and the prediction or scores of each row.", target)
            return Profile(0, {}, {}, 0, perf, None, self.fingerprint)
        return self._profile_table(to_table(data), check_duplicates, n_threads)

    def _profile_table(self, table: pa.Table, check_duplicates: bool,
                       n_threads: int | None) -> Profile:
        n = table.num_rows
        present = set(table.column_names)
        rows = RowHasher(n)
        position = {c.name: i for i, c in enumerate(self.schema_.columns)}

        def profile_one(col: Any) -> Any:
            if col.name not in present:
                return None
            cp = profile_column(col, self.binnings_[col.name], table.column(col.name),
                                want_rows=check_duplicates and col.role == Role.FEATURE)
            if cp.row_key is not None:  # folded now: no column's key outlives its pass
                rows.add(position[col.name], cp.row_key)
            return cp.profile

        profiles = map_columns(profile_one, self.schema_.columns, thread_count(n_threads, n))
        columns: dict[str, Any] = {}
        for col, prof in zip(self.schema_.columns, profiles, strict=True):
            columns[col.name] = _absent(self.binnings_[col.name], n) if prof is None else prof
        extra = {name: n for name in table.column_names if name not in self.schema_}
        perf = acc.realised_batch(self.schema_, table, self.residual_edges_)
        est = (acc.estimate_batch(self.performance_model_, self.schema_, table)
               if self.performance_model_ is not None else None)
        return Profile(n, columns, extra, rows.duplicates(), perf, est, self.fingerprint)

    def _profile_stream(self, source: Source, batch_rows: int, n_threads: int | None, *,
                        check_duplicates: bool = True, labels_only: bool = False,
                        should_stop: Callable[[], bool] | None = None) -> Profile:
        """Merge of the chunk profiles, example rows shifted to their place in the stream."""
        present = set(source.names)
        wanted = [c.name for c in self.schema_.columns if c.name in present]
        parts: list[Profile] = []
        perf = None
        n = 0
        for table in source.batches(wanted or source.names[:1], batch_rows):
            _check_stop(should_stop)
            if labels_only:
                perf = merge_optional(perf, acc.realised_batch(self.schema_, table,
                                                               self.residual_edges_))
            else:
                parts.append(self._profile_table(table, check_duplicates, n_threads).shifted(n))
                if len(parts) >= 64:  # a long stream keeps one running profile, not thousands
                    parts = [Profile.merge_all(parts)]
            n += table.num_rows
        if n == 0:
            raise source.no_rows()
        if labels_only:
            if perf is None:
                target = self.schema_.column_for(Role.TARGET)
                raise DataError(f"No labelled rows: labels_only needs the target {target!r} "
                                "and the prediction or scores of each row.", target)
            return Profile(0, {}, {}, 0, perf, None, self.fingerprint)
        extra = {name: n for name in source.names if name not in self.schema_}
        return replace(Profile.merge_all(parts), extra_columns=extra)

    def _count_all(self, source: Source, batch_rows: int, n_threads: int | None,
                   should_stop: Callable[[], bool] | None) -> None:
        """Replace a sample's profile with every row's counts on the sample's bins."""
        full = self._profile_stream(source, batch_rows, n_threads, should_stop=should_stop)
        self.profile_ = replace(full, extra_columns={}, reference=self.fingerprint)
        self.duplicate_rate_ = full.duplicates / full.n_rows
        self.null_, self._noise_cache = {}, {}  # the noise floor depends on the counts
        for name in self._drift_columns():
            numerical = isinstance(self.binnings_[name], NumericalBinning)
            self._null(name, self.settings.method_for(name, numerical),
                       self.settings.n_simulations)

    # -------------------------------------------------------------- compare
    def compare(
        self, current: Profile | Any, *, settings: DriftSettings | Mapping[str, Any] | None = None,
        columns: list[str] | None = None, detail: bool = True,
    ) -> DriftReport:
        """Drift of every monitored column of ``current`` against the reference.

        ``detail=False`` computes only each column's deciding method (no other distances,
        p-value NaN): the verdicts are identical, at a fraction of the cost, for callers
        that only need them, such as an alert cycle over many models.
        """
        cur = current if isinstance(current, Profile) else self.profile(current)
        self._check_own(cur)
        st = self.settings if settings is None else (
            settings if isinstance(settings, DriftSettings) else DriftSettings.from_dict(settings))
        names = self._drift_columns()
        if columns is not None:
            unknown = [c for c in columns if c not in names]
            if unknown:
                raise SchemaError(f"Cannot compute drift for columns {unknown}: not monitored "
                                  "columns of this reference.", unknown[0])
            names = [n for n in names if n in columns]
        unknown = sorted((set(st.methods) | set(st.thresholds)) - set(self.schema_.names))
        if unknown:
            raise SchemaError(f"Drift settings name columns {unknown} that are not in the "
                              f"schema; columns: {', '.join(self.schema_.names)}.", unknown[0])
        m = max(len(names), 1)
        out = []
        for name in names:
            col = self.schema_[name]
            ref_p, cur_p = self.profile_.columns[name], cur.columns.get(name)
            binning = self.binnings_[name]
            if cur_p is None:
                cur_p = _absent(binning, 0)
            numerical = isinstance(binning, NumericalBinning)
            method = st.method_for(name, numerical)
            ref_c, cur_c, metrics = _distances(binning, ref_p, cur_p,
                                               None if detail else method)
            n_ref, n_cur = int(ref_c.sum()), int(cur_c.sum())
            null = self._null(name, method, st.n_simulations, n_cur)
            noise = null.quantile(n_cur, 1.0 - st.alpha / m)
            value = metrics[method]
            span = null.span(n_cur)
            if span is not None and n_cur > 0:
                assert isinstance(binning, NumericalBinning)
                value = float(METRICS[method][0](ref_c, cur_c, binning.w1_edges,
                                                 discrete=binning.discrete, span=span)
                              ) / _w1_scale(binning)
            instability = self.instability_.get(name, {}).get(method, 0.0)
            if st.calibration == "none":
                instability = 0.0
            kind = "numerical" if numerical else "categorical"
            out.append(decide(
                column=name, role=col.role.value, kind=kind, method=method, metrics=metrics,
                floor=st.floor_for(name, method), noise=noise, instability=instability,
                n_ref=n_ref, n_cur=n_cur, min_reference=st.min_reference, value=value,
                p_value=(p_value_for(kind, metrics, ref_c, cur_c) if n_cur else 1.0)
                if detail else float("nan"),
            ))
        return DriftReport(tuple(out), self.profile_.n_rows, cur.n_rows, st.alpha)

    def check_quality(self, current: Profile | Any,
                      settings: QualitySettings | Mapping[str, Any] | None = None
                      ) -> QualityReport:
        """Data-quality findings of ``current`` (a profile or raw data) against the reference."""
        cur = current if isinstance(current, Profile) else self.profile(current)
        if isinstance(settings, Mapping):
            settings = QualitySettings(**settings)
        return check_quality(self, cur, settings)

    def realised_performance(self, current: Profile | Any) -> RealisedPerformance | None:
        """Metrics on the labelled rows of ``current`` (None when it has no labels).

        The result reads like a ``{metric: value}`` dict and has ``to_dict()`` /
        ``to_pandas()`` like the estimate.
        """
        cur = current if isinstance(current, Profile) else self.profile(current)
        return None if cur.performance is None else RealisedPerformance.from_stats(
            cur.performance)

    def estimated_performance(self, current: Profile | Any) -> Any:
        """Performance of ``current`` without labels: a CBPEResult for a scored classifier,
        a DLEResult (MAE, RMSE) for a regression model; None when the reference could not
        fit an estimator (no scores, no features, or fewer than 100 labelled rows).
        """
        cur = current if isinstance(current, Profile) else self.profile(current)
        if self.performance_model_ is None or cur.estimated is None:
            return None
        return self.performance_model_.estimate(cur.estimated)

    @property
    def fingerprint(self) -> str:
        """Short hash of the schema and bins: profiles from other references cannot merge."""
        cached = self.__dict__.get("_fingerprint")
        if cached is None:
            blob = json.dumps([self.schema_.to_dict(), {k: None if b is None else b.to_dict()
                                                         for k, b in self.binnings_.items()}],
                              sort_keys=True)
            cached = hashlib.sha256(blob.encode()).hexdigest()[:12]
            self.__dict__["_fingerprint"] = cached
        return cached

    # ------------------------------------------------------------- internals
    def _check_own(self, profile: Profile) -> None:
        if profile.reference not in (None, self.fingerprint):
            raise DataError(f"This profile was counted on reference {profile.reference}, not on "
                            f"this one ({self.fingerprint}); profile the data with this reference.")

    def _rng(self, *parts: object) -> np.random.Generator:
        seed = zlib.crc32(repr(parts).encode()) ^ self.random_state
        return np.random.default_rng(seed)

    def _drift_columns(self) -> list[str]:
        return [c.name for c in self.schema_.columns
                if c.role in _DRIFT_ROLES and self.binnings_[c.name] is not None]

    def _null(self, name: str, method: str, n_sim: int, n_cur: int = 0) -> ColumnNull:
        """The column's noise floor for ``method``: stored, or computed once and kept.

        A simulated floor without the sizes around ``n_cur`` rows simulates its size once
        and keeps it (with the reference, when it is stored again)."""
        key = (name, method)
        null = self.null_.get(key)
        if null is not None and null.kind == "simulated" and null.n_simulations != n_sim:
            # Another simulation count than the stored one: computed once per process.
            key3 = (name, method, n_sim)
            if key3 not in self._noise_cache:
                self._noise_cache[key3] = self._fit_null(name, method, n_sim)
            null = self._noise_cache[key3]
            if n_cur and not null.covers(n_cur):
                null = self._noise_cache[key3] = self._fit_null(name, method, n_sim, n_cur, null)
            return null
        if null is None:
            null = self.null_[key] = self._fit_null(name, method, n_sim)
        if n_cur and not null.covers(n_cur):
            null = self.null_[key] = self._fit_null(name, method, n_sim, n_cur, null)
        return null

    def _fit_null(self, name: str, method: str, n_sim: int, n_cur: int = 0,
                  previous: ColumnNull | None = None) -> ColumnNull:
        binning = self.binnings_[name]
        ref_c = self.profile_.columns[name].counts
        numerical = isinstance(binning, NumericalBinning)
        if numerical:
            ref_c = _collapse(ref_c)
            if method == "wasserstein":
                return bridge_null(ref_c, np.diff(binning.w1_edges), binning.discrete,
                                   _w1_scale(binning))
        p = ref_c.astype(np.float64)
        sizes = (sized(n_cur),) if previous is not None else fit_sizes(len(p))
        return simulated_null(method, _bound(method, binning, ref_c), p,
                              p if numerical else unseen_aware(ref_c), int(ref_c.sum()), n_sim,
                              power_of(method), lambda n: self._rng(name, method, n),
                              sizes, previous)

    def _instability(self, name: str, chunk_counts: np.ndarray) -> dict[str, float]:
        """Excess of chunk-vs-rest distances over what sampling noise alone gives."""
        binning = self.binnings_[name]
        total = chunk_counts.sum(axis=0)
        if isinstance(binning, NumericalBinning):
            total, chunk_counts = _collapse(total), _collapse(chunk_counts)
        sizes = chunk_counts.sum(axis=1)
        if sizes.min() < 2:
            return {}
        rest = total - chunk_counts
        fns = {m: _bound(m, binning, total) for m, (_, ordered) in METRICS.items()
               if ordered is False or isinstance(binning, NumericalBinning)}
        null = null_moments(total.astype(float), int(rest.sum(axis=1).mean()),
                            int(sizes.mean()), fns, self.settings.n_simulations,
                            self._rng(name, "chunks"))
        out = {}
        for m, fn in fns.items():
            pw = power_of(m)
            observed = float(np.mean(fn(rest, chunk_counts) ** pw))
            null_mean, null_var = null[m]
            # Only an excess beyond two standard errors of the chunk mean is real variability.
            if observed <= null_mean + 2.0 * np.sqrt(null_var / len(sizes)):
                out[m] = 0.0
                continue
            excess = observed - null_mean
            out[m] = excess ** (1.0 / pw)
        return out

    # ---------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REFERENCE_FORMAT,
            "schema": self.schema_.to_dict(),
            "binnings": {k: None if b is None else b.to_dict() for k, b in self.binnings_.items()},
            "profile": self.profile_.to_dict(),
            "instability": self.instability_,
            "settings": self.settings.to_dict(),
            "random_state": self.random_state,
            "duplicate_rate": self.duplicate_rate_,
            "performance_model": acc.model_to_dict(self.performance_model_),
            "residual_edges": (None if self.residual_edges_ is None
                               else self.residual_edges_.tolist()),
            "null": _nulls_to_dict(self.null_),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Reference:
        if d.get("format") != REFERENCE_FORMAT:
            raise DataError(f"Reference format {d.get('format')!r} is not supported.")
        missing = [k for k in ("schema", "binnings", "profile", "instability", "settings",
                               "random_state") if k not in d]
        if missing:
            raise DataError(f"A stored reference needs the keys {missing}; it is incomplete.")
        binnings: dict[str, Binning] = {}
        for k, b in d["binnings"].items():
            if b is None:
                binnings[k] = None
            elif b["kind"] == "numerical":
                binnings[k] = NumericalBinning.from_dict(b)
            else:
                binnings[k] = CategoricalBinning.from_dict(b)
        ref = cls(
            schema=Schema.from_dict(d["schema"]), binnings=binnings,
            profile=Profile.from_dict(d["profile"]),
            instability={k: dict(v) for k, v in d["instability"].items()},
            settings=DriftSettings.from_dict(d["settings"]),
            random_state=int(d["random_state"]),
            performance_model=acc.model_from_dict(d.get("performance_model")),
            duplicate_rate=float(d.get("duplicate_rate", 0.0)),
            residual_edges=(None if d.get("residual_edges") is None
                            else np.asarray(d["residual_edges"], dtype=np.float64)),
            # References stored before the floor was kept compute it on first compare.
            null={(col, m): ColumnNull.from_dict(v) for col, by_method in
                  (d.get("null") or {}).items() for m, v in by_method.items()},
        )
        # Its own profile names the fingerprint it was fitted with: hashing the schema and
        # bins again costs more than the rest of loading (~6 ms for 50 columns), on every
        # reference a restarted server loads for its first alert cycle.
        if isinstance(ref.profile_.reference, str):
            ref.__dict__["_fingerprint"] = ref.profile_.reference
        return ref

    def __repr__(self) -> str:
        s = self.schema_
        return (f"Reference(rows={self.profile_.n_rows}, columns={len(s.columns)}, "
                f"task={s.task.value!r})")


def _nulls_to_dict(nulls: Mapping[tuple[str, str], ColumnNull]) -> dict[str, Any]:
    out: dict[str, dict[str, Any]] = {}
    for (col, method), null in nulls.items():
        out.setdefault(col, {})[method] = null.to_dict()
    return out


def _check_threads(n_threads: int | None, owner: str) -> None:
    check_param(n_threads is None or (isinstance(n_threads, int) and 1 <= n_threads <= 64),
                "n_threads", owner, "None or an int in [1, 64]", n_threads)


def _check_stream_params(sample_rows: int, batch_rows: int, owner: str) -> None:
    check_param(isinstance(sample_rows, int) and sample_rows >= 1, "sample_rows", owner,
                "a positive int", sample_rows)
    check_param(isinstance(batch_rows, int) and batch_rows >= 1, "batch_rows", owner,
                "a positive int", batch_rows)


def _check_stop(should_stop: Callable[[], bool] | None) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled("Reference.fit stopped: its caller asked it to (should_stop).")


def _chunk_ids(table: pa.Table, schema: Schema, chunks: int, calibration: str) -> np.ndarray | None:
    """Chunk number of every row in time order; None without a timestamp column.

    Row order alone says nothing reliable about time (validation sets are often
    exported sorted by some column), so without timestamps no variability is measured.
    """
    n = table.num_rows
    ts = schema.column_for(Role.TIMESTAMP)
    if calibration == "none" or n < 2 * chunks or ts is None:
        return None
    col = table.column(ts)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        import pandas as pd  # ISO strings from CSV: parse them, never fall back to row order

        parsed = pd.to_datetime(pd.Series(col.to_numpy(zero_copy_only=False)), errors="coerce",
                                utc=True, format="mixed")
        t = parsed.astype("int64").to_numpy(dtype=np.float64)
        t[parsed.isna().to_numpy()] = np.nan
    else:
        t = numeric_values(col).raw
    if np.isnan(t).mean() > 0.5:
        return None  # not a usable clock
    order = np.argsort(np.where(np.isnan(t), np.inf, t), kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return rank * chunks // n


def _absent(binning: Binning, n: int) -> Any:
    if binning is None:
        return PresenceProfile(n=n, missing=n, absent=n)
    if isinstance(binning, NumericalBinning):
        return NumericalProfile(np.zeros(binning.n_bins, np.int64), n=n, missing=n, absent=n)
    return CategoricalProfile(np.zeros(binning.n_bins, np.int64), n=n, missing=n, absent=n)


def _collapse(counts: np.ndarray) -> np.ndarray:
    """Numerical bins to ``[below, interior..., above]``: how far out does not matter for drift."""
    below = counts[..., :2].sum(axis=-1, keepdims=True)
    above = counts[..., -2:].sum(axis=-1, keepdims=True)
    return np.concatenate([below, counts[..., 2:-2], above], axis=-1)


def _bound(method: str, binning: Binning, ref_c: np.ndarray) -> Any:
    """The distance function for simulated histograms (no mass beyond the reference range)."""
    fn, _ = METRICS[method]
    if method == "wasserstein":
        assert isinstance(binning, NumericalBinning)
        edges, scale, discrete = binning.w1_edges, _w1_scale(binning), binning.discrete
        return lambda a, b: fn(a, b, edges, discrete=discrete) / scale
    return fn


def _tails(binning: NumericalBinning, p: NumericalProfile) -> tuple[float, float]:
    """Mass-weighted mean distance beyond the reference range, below and above."""
    n = p.count
    if n == 0:
        return 0.0, 0.0
    grid = binning.w1_edges
    lo, hi = float(grid[0]), float(grid[-1])
    below = int(p.counts[0] + p.counts[1])
    above = int(p.counts[-1] + p.counts[-2])
    with np.errstate(over="ignore", invalid="ignore"):
        return (below * lo - p.below_sum) / n, (p.above_sum - above * hi) / n


def _w1_scale(binning: NumericalBinning) -> float:
    if binning.std > 0:
        return binning.std
    return max(abs(float(binning.interior[0])), 1.0)


def _distances(binning: Binning, ref_p: Any, cur_p: Any, only: str | None = None
               ) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Every distance of the column's kind, or ``only`` the one named."""
    ref_c, cur_c = ref_p.counts, cur_p.counts
    metrics: dict[str, float] = {}
    wanted = METRICS if only is None else {only: METRICS[only]}
    if isinstance(binning, NumericalBinning):
        ref_c, cur_c = _collapse(ref_c), _collapse(cur_c)
        if cur_c.sum() == 0:
            return ref_c, cur_c, {m: 0.0 for m in wanted}
        (rb, ra), (cb, ca) = _tails(binning, ref_p), _tails(binning, cur_p)
        for name, (fn, _) in wanted.items():
            if name == "wasserstein":
                w = fn(ref_c, cur_c, binning.w1_edges, abs(rb - cb), abs(ra - ca),
                       discrete=binning.discrete)
                metrics[name] = float(w) / _w1_scale(binning)
            else:
                metrics[name] = float(fn(ref_c, cur_c))
        return ref_c, cur_c, metrics
    if cur_c.sum() == 0:
        return ref_c, cur_c, {m: 0.0 for m, (_, o) in wanted.items() if not o}
    for name, (fn, ordered) in wanted.items():
        if not ordered:
            metrics[name] = float(fn(ref_c, cur_c))
    return ref_c, cur_c, metrics
