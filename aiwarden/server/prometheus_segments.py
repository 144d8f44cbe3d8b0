"""``GET /metrics``: per-segment gauges of the scrape window (``aiwarden_segment_*``).

Labelled ``segment_column`` and ``segment`` (the value, or ``__other__``). Cardinality is
bounded by the same top-N policy as storage (:mod:`aiwarden.monitoring.segments`): a
segment column yields at most ``top_n + 1`` label values whatever the traffic sends, and
only segments with rows in the window are exported. Values come from the stored segment
partials, so they equal what ``GET /models/{name}/metrics?segment=`` answers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from aiwarden.monitoring import latency, metrics, profiles, segments
from aiwarden.server.prometheus import MonitorCollector, _num
from aiwarden.store import models_repo as repo

__all__ = ["SegmentCollector"]

log = logging.getLogger("aiwarden.server")
_LABELS = ["model", "version", "segment_column", "segment"]


class SegmentCollector(MonitorCollector):
    def collect(self) -> Iterator[Metric]:
        mon = self.monitor
        t0, t1 = self.window()
        f = _Families()
        levels, top_n = mon.levels, mon.settings.segment_top_n
        with mon.db.read() as conn:
            for m in self.scraped_models(conn):
                for v in repo.list_versions(conn, m):
                    ref = mon.refs.get(conn, v.id)
                    if ref is None:
                        continue
                    for column in segments.segment_columns(ref.schema_):
                        for value in [*segments.kept_values(ref, column, top_n),
                                      segments.OTHER]:
                            key = segments.Segment(column, value).key
                            d = profiles.read_window(conn, m.id, v.id, t0, t1, levels,
                                                     segment=key)
                            if not d.rows and not d.labels:
                                continue
                            try:
                                f.add([m.name, v.version, column, value], ref, d)
                            except Exception:  # one segment must not blank the others
                                log.exception("segment metrics of %s/%s %s failed", m.name,
                                              v.version, key)
        yield from f.all()


class _Families:
    def __init__(self) -> None:
        def g(name: str, doc: str, extra: tuple[str, ...] = ()) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=[*_LABELS, *extra])

        self.rows = g("aiwarden_segment_volume_rows", "Rows of the segment in the window.")
        self.labels = g("aiwarden_segment_volume_labels",
                        "Labels joined to the segment's predictions in the window.")
        self.failed = g("aiwarden_segment_failed_predictions",
                        "The segment's predictions reported with an error in the window.")
        self.latency = g("aiwarden_segment_latency_ms",
                         "Latency percentile of the segment's predictions in the window (ms).",
                         ("quantile",))
        self.share_drifted = g("aiwarden_segment_drift_share",
                               "Share of the segment's monitored columns that drifted from "
                               "the reference.")
        self.quality_ok = g("aiwarden_segment_quality_ok",
                            "1 if no warning or error finding in the segment's rows.")
        self.performance = g("aiwarden_segment_performance",
                             "Realised performance of the segment, from labels.", ("metric",))
        self.estimated = g("aiwarden_segment_estimated_performance",
                           "Performance of the segment estimated without labels.", ("metric",))

    def all(self) -> Iterator[Metric]:
        yield from (m for m in vars(self).values() if isinstance(m, Metric))

    def add(self, lv: list[str], ref: object, d: object) -> None:
        """Computes first, then adds: a segment that fails is skipped whole."""
        drift = metrics.compute("drift", ref, d, detail=False)
        quality = metrics.compute("quality", ref, d)
        realised = (metrics.compute("performance", ref, d) or {}).get("metrics") or {}
        if isinstance(realised.get("metrics"), dict):  # a result document, not {name: value}
            realised = realised["metrics"]
        estimated = (metrics.compute("estimated_performance", ref, d) or {}).get("metrics")
        self.rows.add_metric(lv, d.rows)
        self.labels.add_metric(lv, d.labels)
        self.failed.add_metric(lv, d.errors)
        for q, value in latency.percentiles(d.latency, (50, 95, 99)).items():
            self.latency.add_metric([*lv, str(int(q[1:]) / 100)], value)
        if drift and (x := _num(drift.get("share_drifted"))) is not None:
            self.share_drifted.add_metric(lv, x)
        if d.rows:
            self.quality_ok.add_metric(lv, float(bool(quality["ok"])))
        for name, value in realised.items():
            if (x := _num(value)) is not None:
                self.performance.add_metric([*lv, name], x)
        for name, e in (estimated or {}).items():
            if isinstance(e, dict) and (x := _num(e.get("estimate"))) is not None:
                self.estimated.add_metric([*lv, name], x)
