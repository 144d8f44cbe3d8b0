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

__all__ = ["BUDGET", "ModelSummary", "fill", "main_metric", "summaries"]

BUDGET = 1.5  # seconds the overview spends reading numbers before the page answers

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
    model_id: int = 0
    pending: bool = True  # numbers not read yet (the page loads them later)

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


def _spans(now: float) -> list[tuple[float, float]]:
    """The 24 hours before the current hour's end, then the last 60 minutes."""
    top = int(now // 3600 + 1) * 3600
    return [(top - (24 - i) * 3600, top - (23 - i) * 3600) for i in range(24)] + \
        [(now - 3600, now)]


def fill(monitor: Any, s: ModelSummary, found: list[Any], now: float) -> ModelSummary:
    """Read the model's windows once and set its numbers and health."""
    if s.version is not None:
        try:
            ref, data = monitor.windows(s.name, _spans(now), s.version)
            _numbers(s, ref, data[:-1], data[-1])
        except Exception as exc:  # one model's unreadable data must not hide the rest
            log.warning("overview: %s: %s", s.name, exc)
    s.health, s.reasons = alertview.health(found, has_data=s.rows_1h > 0)
    s.pending = False
    return s


def summaries(app_state: Any, registry_aliases: dict[str, dict[str, str]],
              now: float | None = None, budget: float | None = None,
              only: str | None = None) -> list[ModelSummary]:
    """Every model's summary (or ``only`` one), sorted by what needs attention.

    Models are filled in the order their alert states rank them until ``budget`` seconds
    have passed; the rest come back ``pending`` and the page loads them one by one. Warm,
    100 models take well under the budget; right after a restart, before the stored window
    partials are decoded (the alert evaluator's first cycle does it too), the page still
    answers at once.
    """
    now = time.time() if now is None else now
    budget = BUDGET if budget is None else budget
    started = time.perf_counter()
    monitor, incidents = app_state.monitor, app_state.incidents
    with monitor.db.read() as conn:
        by_model = alertview.alerts(conn)
        models = [m for m in models_repo.list_models(conn) if only in (None, m.name)]
        if only is not None and not models:
            raise models_repo.NotFound(f"No model {only!r}.", "name")
        current = {m.id: _current(conn, m) for m in models}
    open_count = Counter(i.model for i in incidents.list_incidents(open_only=True))
    out = []
    for m in models:
        s = ModelSummary(m.name, m.task, version=current[m.id],
                         incidents=open_count.get(m.name, 0),
                         aliases=registry_aliases.get(m.name, {}), model_id=m.id)
        s.health, s.reasons = alertview.health(by_model.get(m.id, []), has_data=True)
        out.append(s)
    out.sort(key=lambda x: x.sort_key)  # alert states first: the worst get filled first
    for s in out:
        if time.perf_counter() - started < budget:
            fill(monitor, s, by_model.get(s.model_id, []), now)
    return sorted(out, key=lambda x: (x.pending, x.sort_key))


def _current(conn: Any, model: Any) -> str | None:
    try:
        return models_repo.get_version(conn, model, None).version
    except models_repo.NotFound:
        return None
