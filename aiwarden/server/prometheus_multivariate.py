"""``GET /metrics?multivariate=true``: multivariate drift of the scrape window as gauges.

Kept apart from :class:`~aiwarden.server.prometheus.MonitorCollector` because it costs a
cross-validated classifier per model version and window (see
:mod:`aiwarden.monitoring.multivariate_window`) where every other gauge is a profile merge:
scrape it from its own, slower job. Results are cached per (version, window, rows), so
scrapes within one bucket pay once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from aiwarden.monitoring import profiles
from aiwarden.server.prometheus import MonitorCollector, _num
from aiwarden.store import models_repo as repo

__all__ = ["STATS", "MultivariateCollector"]

log = logging.getLogger("aiwarden.server")

# What each series of aiwarden_multivariate_drift{stat=...} holds (the rule stats, plus the
# bounds the decision compares with).
STATS = ("auc", "auc_lower", "auc_upper", "auc_threshold", "reconstruction_error",
         "reconstruction_lower", "reconstruction_upper", "drifted", "n_current")


class MultivariateCollector(MonitorCollector):
    def collect(self) -> Iterator[Metric]:
        mon = self.monitor
        t0, t1 = self.window()
        gauge = GaugeMetricFamily(
            "aiwarden_multivariate_drift", "Multivariate drift of the window from a sample of "
            "its raw rows: domain-classifier AUC with its interval and threshold, PCA "
            "reconstruction error with its band, drifted (1/0), rows sampled.",
            labels=["model", "version", "stat"])
        levels = mon.levels
        with mon.db.read() as conn:
            for m in self.scraped_models(conn):
                for v in repo.list_versions(conn, m):
                    try:
                        ref = mon.refs.get(conn, v.id)
                        data = profiles.read_window(conn, m.id, v.id, t0, t1, levels)
                        value, _ = mon.row_metric(conn, "multivariate_drift", m.id, v.id,
                                                  v.version, ref, t0, t1, data.rows)
                    except Exception:  # one broken version must not blank the others
                        log.exception("multivariate drift of %s/%s failed", m.name, v.version)
                        continue
                    for stat in STATS if value else ():
                        if (x := _num(value.get(stat))) is not None:
                            gauge.add_metric([m.name, v.version, stat], x)
        yield gauge
