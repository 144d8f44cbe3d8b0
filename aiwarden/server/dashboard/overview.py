"""The overview: every model, worst first, with the numbers that say why.

Health comes from the stored alert states (cheap: one query for every model); traffic,
drift and performance from one read of each model's bucket rollups (24 hour rows and
the last hour), so 100 models cost 100 small reads, never a scan of events.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiwarden.monitoring import metrics
from aiwarden.monitoring.bucket import BucketData
from aiwarden.server.dashboard import alertview
from aiwarden.store import models_repo

__all__ = ["ModelSummary", "main_metric", "summaries"]

log = logging.getLogger("aiwarden.dashboard")


@dataclass
class ModelSummary:
    name: str
    task: str | None
    version: str | None = None
    health: str = "nodata"
    reasons: list[str] = field(default_factory=list)
    incidents: int = 0
    rows_1h: int = 0
    traffic: list[int] = field(default_factory=list)  # rows per hour, last 24 h
    drift_share: float | None = None
    drifted: list[str] = field(default_factory=list)
    metric: str | None = None
    realised: float | None = None
    estimated: dict[str, Any] | None = None
    labels_24h: int = 0
    aliases: dict[str, str] = field(default_factory=dict)

    @property
    def sort_key(self) -> tuple[int, int, str]:
        return alertview.HEALTH_ORDER[self.health], -self.incidents, self.name


def main_metric(task: str | None) -> str:
    """The number a model's default performance rules watch."""
    return {"binary": "roc_auc", "regression": "rmse"}.get(task or "", "accuracy")


def _numbers(s: ModelSummary, ref: Any, hours: list[BucketData], last: BucketData) -> None:
    s.traffic = [d.rows for d in hours]
    s.rows_1h = last.rows
    drift = metrics.compute("drift", ref, last, detail=False) if ref is not None else None
    if drift:
        s.drift_share, s.drifted = drift.get("share_drifted"), drift["drifted_features"]
    day = BucketData.merge_all(hours)
    s.labels_24h = day.labels
    task = ref.schema_.task.value if ref is not None and ref.schema_.task else s.task
    s.metric = main_metric(task)
    real = metrics.compute("performance", ref, day) if ref is not None else None
    s.realised = ((real or {}).get("metrics") or {}).get(s.metric)
    est = metrics.compute("estimated_performance", ref, day) if ref is not None else None
    s.estimated = ((est or {}).get("metrics") or {}).get(s.metric)


def summaries(app_state: Any, registry_aliases: dict[str, dict[str, str]],
              now: float | None = None) -> list[ModelSummary]:
    """Every model's summary, sorted by what needs attention."""
    now = time.time() if now is None else now
    monitor, incidents = app_state.monitor, app_state.incidents
    with monitor.db.read() as conn:
        by_model = alertview.alerts(conn)
        models = models_repo.list_models(conn)
        current = {m.id: _current(conn, m) for m in models}
    open_count = Counter(i.model for i in incidents.list_incidents(open_only=True))
    hour = 3600
    top = int(now // hour + 1) * hour
    spans: list[tuple[float, float]] = [(top - (24 - i) * hour, top - (23 - i) * hour)
                                        for i in range(24)]
    spans.append((now - hour, now))
    out = []
    for m in models:
        s = ModelSummary(m.name, m.task, version=current[m.id],
                         incidents=open_count.get(m.name, 0),
                         aliases=registry_aliases.get(m.name, {}))
        if s.version is not None:
            try:
                ref, data = monitor.windows(m.name, spans, s.version)
                _numbers(s, ref, data[:-1], data[-1])
            except Exception as exc:  # one model's unreadable data must not hide the rest
                log.warning("overview: %s: %s", m.name, exc)
        s.health, s.reasons = alertview.health(by_model.get(m.id, []),
                                               has_data=s.rows_1h > 0)
        out.append(s)
    return sorted(out, key=lambda x: x.sort_key)


def _current(conn: Any, model: Any) -> str | None:
    try:
        return models_repo.get_version(conn, model, None).version
    except models_repo.NotFound:
        return None
