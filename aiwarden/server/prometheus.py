"""``GET /metrics``: the model metrics of a recent window in Prometheus exposition format.

Everything is computed on scrape from merged bucket profiles, one window read per model
version, never from raw events: a collector that keeps no state between scrapes cannot
drift from what the JSON API answers for the same window. Window values are gauges (a
sliding window goes up and down); the latency histogram is the window's histogram, so
``histogram_quantile`` is applied to it directly, without ``rate()``; the one counter is
the all-time number of accepted rows, a cheap sum over the widest rollup.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, Query, Request, Response
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString
from sqlalchemy import Connection, func, select

from aiwarden.engine.reference import Reference
from aiwarden.monitoring import latency, llm_guardrail, metrics, profiles
from aiwarden.monitoring.bucket import BucketData
from aiwarden.monitoring.service import Monitor
from aiwarden.monitoring.windows import parse_duration
from aiwarden.server.access import requires
from aiwarden.server.api_models import answers
from aiwarden.store import models_repo as repo
from aiwarden.store.tables import bucket_profiles

__all__ = ["DEFAULT_WINDOW", "LATENCY_LE_MS", "MonitorCollector", "install_prometheus"]

log = logging.getLogger("aiwarden.server")

DEFAULT_WINDOW = "5m"
# Coarse `le` bounds in ms. Each is served by the nearest stored log-spaced edge (within
# 0.6 %, finer than the stored bins' own ~6 % width), so bucket counts are exact counts.
LATENCY_LE_MS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500,
                                    1000, 2500, 5000, 10_000, 25_000, 50_000, 100_000)

_MV = ["model", "version"]


@dataclass(frozen=True)
class _Window:
    """What one model version holds in the window: read inside the transaction."""

    model: str
    version: str
    ref: Reference | None
    data: BucketData
    rows_total: int
    llm_totals: dict[str, float] | None = None  # text_generation: all-time cost and tokens


class MonitorCollector(Collector):
    """Reads the window when collected, so every scrape sees the store as it is now.

    ``window_seconds`` is rounded up to whole buckets; the window ends at the end of the
    current bucket, like the JSON API's ``end=now``. ``models`` limits the scrape.
    """

    def __init__(self, monitor: Monitor, window_seconds: int, *,
                 models: Sequence[str] | None = None,
                 latency_le: Sequence[float] = LATENCY_LE_MS,
                 now: Callable[[], float] = time.time) -> None:
        self.monitor = monitor
        self.window_seconds = int(window_seconds)
        self.models = list(models) if models else None
        self.latency_le = tuple(latency_le)
        self.now = now

    def window(self) -> tuple[int, int]:
        """``[start, end)`` in epoch seconds, bucket-aligned."""
        b = self.monitor.settings.bucket_seconds
        end = math.ceil(self.now() / b) * b
        width = math.ceil(self.window_seconds / b) * b
        return end - width, end

    def scraped_models(self, conn: Connection) -> list[Any]:
        """Every model, or the ones the scrape names: a typo in a scrape config fails
        loudly instead of scraping nothing."""
        if self.models is None:
            return repo.list_models(conn)
        return [repo.get_model(conn, name) for name in dict.fromkeys(self.models)]

    def collect(self) -> Iterator[Metric]:
        t0, t1 = self.window()
        families = _Families()
        families.window(t0, t1)
        for w in self._read(t0, t1):
            try:
                families.add(w, self.latency_le)
            except Exception:  # one broken version must not blank every other model's metrics
                log.exception("metrics of %s/%s failed", w.model, w.version)
                families.error(w)
        yield from families.all()

    def _read(self, t0: int, t1: int) -> list[_Window]:
        mon = self.monitor
        levels = mon.levels
        out = []
        with mon.db.read() as conn:
            for m in self.scraped_models(conn):
                for v in repo.list_versions(conn, m):
                    data = profiles.read_window(conn, m.id, v.id, t0, t1, levels)
                    totals = (_llm_totals(conn, m.id, v.id, t1, levels)
                              if m.task == "text_generation" else None)
                    out.append(_Window(m.name, v.version, mon.refs.get(conn, v.id), data,
                                       _rows_total(conn, m.id, v.id, levels[-1]), totals))
        return out


def _rows_total(conn: Connection, model_id: int, version_id: int, level: int) -> int:
    """Every accepted row lands once in the widest rollup: its ``n_rows`` sum is a counter."""
    bp = bucket_profiles
    return int(conn.execute(select(func.coalesce(func.sum(bp.c.n_rows), 0)).where(
        bp.c.model_id == model_id, bp.c.version_id == version_id,
        bp.c.level == level)).scalar() or 0)


def _llm_totals(conn: Connection, model_id: int, version_id: int, t1: int,
                levels: Any) -> dict[str, float]:
    """Sums of the cost and token columns over every bucket up to ``t1`` (counters)."""
    cols = profiles.read_window(conn, model_id, version_id, 0, t1, levels).profile
    out = {}
    for col in ("llm_cost", "llm_tokens_in", "llm_tokens_out"):
        p = None if cols is None else cols.columns.get(col)
        n = 0 if p is None else int(getattr(p, "count", 0))
        out[col] = float(p.mean) * n if n else 0.0
    return out


def _num(v: Any) -> float | None:
    """A finite number, or None for anything Prometheus should not see."""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, int | float | np.integer | np.floating) and math.isfinite(v):
        return float(v)
    return None


class _Families:
    """The metric families of one scrape; ``add`` fills them from one model version."""

    def __init__(self) -> None:
        def g(name: str, doc: str, labels: list[str] = _MV) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=labels)

        mvc = [*_MV, "column"]
        self.window_seconds = g("aiwarden_window_seconds", "Length of the window.", [])
        self.window_start = g("aiwarden_window_start_timestamp_seconds",
                              "Start of the window (epoch seconds).", [])
        self.window_end = g("aiwarden_window_end_timestamp_seconds",
                            "End of the window (epoch seconds, exclusive).", [])
        self.drift_score = g("aiwarden_drift_score",
                             "Drift of a column against the reference, by distance.",
                             [*mvc, "method"])
        self.drift_threshold = g("aiwarden_drift_threshold",
                                 "Threshold of the method deciding the column's drift.",
                                 [*mvc, "method"])
        self.drifted = g("aiwarden_drifted", "1 if the deciding method flags the column.",
                         [*mvc, "method"])
        self.dataset_drifted = g("aiwarden_dataset_drifted",
                                 "1 if the reference's rule flags the dataset as drifted.")
        self.findings = g("aiwarden_quality_findings", "Data-quality findings in the window.",
                          [*_MV, "check", "severity"])
        self.quality_rate = g("aiwarden_quality_rate",
                              "Share of the window's rows affected by a finding.",
                              [*_MV, "check", "column"])
        self.quality_ok = g("aiwarden_quality_ok",
                            "1 if no warning or error finding and no quarantined row.")
        self.quarantined = g("aiwarden_quarantined_rows", "Rows quarantined in the window.")
        self.performance = g("aiwarden_performance", "Realised performance, from labels.",
                             [*_MV, "metric"])
        self.estimated = g("aiwarden_estimated_performance",
                           "Performance estimated without labels (CBPE for classifiers, DLE "
                           "for regression).", [*_MV, "metric"])
        self.estimated_lower = g("aiwarden_estimated_performance_lower",
                                 "Lower confidence bound of the estimate.", [*_MV, "metric"])
        self.estimated_upper = g("aiwarden_estimated_performance_upper",
                                 "Upper confidence bound of the estimate.", [*_MV, "metric"])
        self.estimate_gap = g("aiwarden_estimate_gap_severity",
                              "|realised - estimated| over the band's half-width, on the "
                              "window's labelled rows (above 1: outside the band).",
                              [*_MV, "metric"])
        self.rows = g("aiwarden_volume_rows", "Rows accepted in the window.")
        self.labels = g("aiwarden_volume_labels", "Labels joined to the window's predictions.")
        self.rows_total = CounterMetricFamily("aiwarden_ingested_rows",
                                              "Rows accepted since the version was created.",
                                              labels=_MV)
        self.latency = HistogramMetricFamily(
            "aiwarden_latency_ms", "Prediction latency in the window (ms); sum from bin "
            "midpoints.", labels=_MV)
        self.failed = g("aiwarden_failed_predictions",
                        "Predictions reported with an error in the window.")
        self.resource_mean = g("aiwarden_resource_mean", "Mean of a resource gauge's samples "
                               "in the window (cpu_percent, rss_bytes, gpu_*, ...).",
                               [*_MV, "resource"])
        self.resource_max = g("aiwarden_resource_max", "Peak of a resource gauge's samples "
                              "in the window.", [*_MV, "resource"])
        self.cost_per_1k = g("aiwarden_cost_per_1k_predictions",
                             "Reported cost per 1,000 predictions in the window.")
        self.llm_cost = CounterMetricFamily(
            "aiwarden_llm_cost", "LLM cost (USD) of the version's events since it was "
            "created: sent, or priced from the price table.", labels=_MV)
        self.llm_tokens = CounterMetricFamily(
            "aiwarden_llm_tokens", "LLM tokens of the version's events since it was created "
            "(direction in/out; sent, or counted on ingest).", labels=[*_MV, "direction"])
        self.guardrail_rate = g("aiwarden_guardrail_rate",
                                "Share of the window's guardrail calls the guardrail "
                                "blocked, redacted or flagged (llm metric guardrail_*_rate).",
                                [*_MV, "action"])
        self.errors = g("aiwarden_scrape_error",
                        "1 if this version's metrics could not be computed (see the log).")

    def all(self) -> Iterator[Metric]:
        yield from (m for m in vars(self).values() if isinstance(m, Metric))

    def window(self, t0: int, t1: int) -> None:
        self.window_seconds.add_metric([], t1 - t0)
        self.window_start.add_metric([], t0)
        self.window_end.add_metric([], t1)

    def error(self, w: _Window) -> None:
        self.errors.add_metric([w.model, w.version], 1)

    def add(self, w: _Window, latency_le: Sequence[float]) -> None:
        """Computes first, then adds: a version that fails is flagged, not half-served."""
        mv, d = [w.model, w.version], w.data
        drift = metrics.compute("drift", w.ref, d)
        quality = metrics.compute("quality", w.ref, d)
        realised = (metrics.compute("performance", w.ref, d) or {}).get("metrics") or {}
        estimated = (metrics.compute("estimated_performance", w.ref, d) or {}).get("metrics")
        self.rows.add_metric(mv, d.rows)
        self.labels.add_metric(mv, d.labels)
        self.quarantined.add_metric(mv, d.quarantined)
        self.failed.add_metric(mv, d.errors)
        usage = metrics.compute("resources", w.ref, d)
        for name, gauge in usage["gauges"].items():
            if (x := _num(gauge["mean"])) is not None:
                self.resource_mean.add_metric([*mv, name], x)
            if (x := _num(gauge["max"])) is not None:
                self.resource_max.add_metric([*mv, name], x)
        if (x := _num(usage["cost_per_1k"])) is not None:
            self.cost_per_1k.add_metric(mv, x)
        guarded = llm_guardrail.stats(d.resources)[0]
        for action in llm_guardrail.ACTIONS:
            if (x := _num(guarded[f"guardrail_{action}_rate"])) is not None:
                self.guardrail_rate.add_metric([*mv, action], x)
        self.rows_total.add_metric(mv, w.rows_total)
        if w.llm_totals is not None:
            self.llm_cost.add_metric(mv, w.llm_totals["llm_cost"])
            for d_ in ("in", "out"):
                self.llm_tokens.add_metric([*mv, d_], w.llm_totals[f"llm_tokens_{d_}"])
        if d.latency.sum():
            buckets, total = _latency_buckets(d.latency, latency_le)
            self.latency.add_metric(mv, buckets, total)
        self._drift(mv, drift)
        self._quality(mv, quality)
        for name, value in realised.items():
            if (x := _num(value)) is not None:
                self.performance.add_metric([*mv, name], x)
        for name, e in (estimated or {}).items():
            for family, key in ((self.estimated, "estimate"), (self.estimated_lower, "lower"),
                                (self.estimated_upper, "upper")):
                if (x := _num(e.get(key))) is not None:
                    family.add_metric([*mv, name], x)
        if estimated and realised:
            gap = (metrics.compute("estimate_gap", w.ref, d) or {}).get("metrics") or {}
            for name, e in gap.items():
                if (x := _num(e.get("severity"))) is not None:
                    self.estimate_gap.add_metric([*mv, name], x)

    def _drift(self, mv: list[str], drift: dict[str, Any] | None) -> None:
        if not drift:
            return
        self.dataset_drifted.add_metric(mv, float(bool(drift["dataset_drifted"])))
        for col, c in drift["columns"].items():
            method = c["method"]
            scores = {**(c.get("metrics") or {}), method: c["value"]}  # the decider's own value
            for name, value in scores.items():
                if (x := _num(value)) is not None:
                    self.drift_score.add_metric([*mv, col, name], x)
            if (x := _num(c.get("threshold"))) is not None:
                self.drift_threshold.add_metric([*mv, col, method], x)
            self.drifted.add_metric([*mv, col, method], float(bool(c["drifted"])))

    def _quality(self, mv: list[str], q: dict[str, Any]) -> None:
        self.quality_ok.add_metric(mv, float(bool(q["ok"])))
        found = q["findings"]
        for (check, severity), n in sorted(Counter((f["check"], f["severity"])
                                                   for f in found).items()):
            self.findings.add_metric([*mv, check, severity], n)
        rates: dict[tuple[str, str], float] = {}
        for f in found:
            if (x := _num(f.get("rate"))) is not None:
                key = (f["check"], f.get("column") or "")
                rates[key] = max(rates.get(key, 0.0), x)
        for (check, col), x in sorted(rates.items()):
            self.quality_rate.add_metric([*mv, check, col], x)


@functools.cache
def _midpoints() -> np.ndarray:
    """A representative value per stored latency bin: geometric midpoints of log bins."""
    e = latency.EDGES
    return np.concatenate([[e[0] / 2], np.sqrt(e[:-1] * e[1:]), [e[-1]]])


@functools.cache
def _edge_index(le: float) -> int:
    """The stored edge nearest ``le`` on a log scale."""
    return int(np.argmin(np.abs(np.log(latency.EDGES) - math.log(le))))


def _latency_buckets(counts: np.ndarray, le_ms: Sequence[float]
                     ) -> tuple[list[tuple[str, float]], float]:
    """Cumulative ``(le, count)`` pairs ending in ``+Inf``, and the approximate sum."""
    cum = np.cumsum(counts)
    # bin i holds values below EDGES[i], so "values below edge j" is cum[j]
    buckets = [(floatToGoString(le), float(cum[_edge_index(le)])) for le in sorted(le_ms)]
    buckets.append(("+Inf", float(cum[-1])))
    return buckets, float(np.dot(counts, _midpoints()))


def install_prometheus(app: FastAPI, default_window: str | int = DEFAULT_WINDOW) -> None:
    """Mount ``GET /metrics``; ``?window=`` overrides ``default_window`` per scrape."""
    default = parse_duration(default_window, "window")

    @app.get("/metrics", dependencies=[requires("read")], tags=["service"],
             response_class=Response, responses=answers(None, 404, media="text/plain"),
             summary="Model metrics of a recent window, Prometheus exposition format")
    def prometheus_metrics(request: Request, window: str | None = None,
                           model: Annotated[list[str] | None, Query()] = None,
                           multivariate: bool = False, segments: bool = True) -> Response:
        # multivariate=true adds aiwarden_multivariate_drift: a classifier per version and
        # window, so it is asked for (from its own, slower scrape job), not always computed
        seconds = default if window in (None, "") else parse_duration(window, "window")
        registry = CollectorRegistry(auto_describe=False)
        registry.register(MonitorCollector(request.app.state.monitor, seconds, models=model))
        if segments:  # aiwarden_segment_*: bounded by the top-N policy (docs/prometheus.md)
            from aiwarden.server.prometheus_segments import SegmentCollector

            registry.register(SegmentCollector(request.app.state.monitor, seconds,
                                               models=model))
        if multivariate:
            from aiwarden.server.prometheus_multivariate import MultivariateCollector

            registry.register(MultivariateCollector(request.app.state.monitor, seconds,
                                                    models=model))
        from aiwarden.server.concept_drift_routes import ConceptDriftCollector

        registry.register(ConceptDriftCollector(request.app.state.monitor, models=model))
        from aiwarden.server.guardrail_routes import GuardrailCollector

        registry.register(GuardrailCollector(request.app))  # this process's interventions
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(registry), media_type=content_type)
