"""Resource samples of a model's serving processes: CPU, memory, GPU and cost.

A sample is a moment's gauges (``cpu_percent``, ``rss_bytes``, ``gpu_utilization``,
``gpu_memory_bytes``, or any other lower-case name) and, optionally, the ``cost`` spent
since the previous sample. Samples land in the same time buckets as predictions, as
``(samples, sum, max)`` per gauge, so a window answers mean and peak usage and, with the
window's prediction count, the cost per 1,000 predictions. Rules read them like any other
metric (``metric: resources``).

A sample with a bad field is rejected whole, with the field and the reason; the others
are kept.
"""

from __future__ import annotations

import math
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiwarden.monitoring.bucket import MAX_GAUGE, BucketData
from aiwarden.monitoring.profiles import append_partials
from aiwarden.monitoring.windows import parse_instant
from aiwarden.store import models_repo as repo
from aiwarden.store.database import Database
from aiwarden.store.models_repo import ModelRow

__all__ = ["KNOWN_GAUGES", "ResourceResult", "ingest_resources"]

KNOWN_GAUGES = ("cpu_percent", "rss_bytes", "gpu_utilization", "gpu_memory_bytes", "cost")
_GAUGE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_META = ("timestamp", "version")
_MAX_ERRORS = 100


@dataclass
class ResourceResult:
    received: int = 0
    accepted: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"received": self.received, "accepted": self.accepted,
                "rejected": self.rejected, "errors": self.errors[:_MAX_ERRORS]}


def _sample(s: Any, now: float) -> tuple[float, str | None, dict[str, float]]:
    """``(timestamp, version, gauges)``; raises ValueError('field', 'reason')."""
    if not isinstance(s, dict):
        raise ValueError("sample", "expected a JSON object")
    ts = now
    if s.get("timestamp") is not None:
        try:
            ts = parse_instant(s["timestamp"], "timestamp")
        except Exception as exc:
            raise ValueError("timestamp", str(exc)) from None
    version = s.get("version")
    if version is not None and not isinstance(version, str):
        raise ValueError("version", "expected a version name (text)")
    gauges: dict[str, float] = {}
    for key, value in s.items():
        if key in _META:
            continue
        if not _GAUGE.fullmatch(key):
            raise ValueError(key, "gauge names are lower-case letters, digits and _")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(key, f"expected a number, got {type(value).__name__}")
        if not math.isfinite(value) or not 0 <= value <= MAX_GAUGE:
            raise ValueError(key, f"expected a finite number from 0 to {MAX_GAUGE:g}, "
                                  f"got {value!r}")
        gauges[key] = float(value)
    if not gauges:
        raise ValueError("sample", f"no gauges; send e.g. {', '.join(KNOWN_GAUGES[:3])}")
    return ts, version, gauges


def ingest_resources(db: Database, model: ModelRow, samples: list[Any], *,
                     bucket_seconds: int, levels: tuple[int, ...]) -> ResourceResult:
    now = time.time()
    result = ResourceResult(received=len(samples))
    with db.read() as conn:
        versions = {v.version: v for v in repo.list_versions(conn, model)}
        latest = repo.get_version(conn, model) if versions else None  # the serving one
    grouped: dict[int, dict[int, dict[str, tuple[float, float, float]]]] = defaultdict(
        lambda: defaultdict(dict))
    for i, s in enumerate(samples):
        try:
            ts, name, gauges = _sample(s, now)
            version = latest if name is None else versions.get(name)
            if version is None:
                raise ValueError("version", f"model {model.name!r} has no version {name!r}"
                                 if name else f"model {model.name!r} has no version yet")
        except ValueError as exc:
            where, reason = exc.args
            result.rejected += 1
            result.errors.append({"row": i, "field": where, "reason": reason})
            continue
        bucket = int(ts // bucket_seconds * bucket_seconds)
        acc = grouped[version.id][bucket]
        for g, v in gauges.items():
            n, total, peak = acc.get(g, (0, 0.0, -math.inf))
            acc[g] = (n + 1, total + v, max(peak, v))
        result.accepted += 1
    for version_id, buckets in grouped.items():
        by_bucket = {b: BucketData(resources=dict(g)) for b, g in buckets.items()}
        with db.write(model.id) as conn:
            append_partials(conn, model.id, version_id, by_bucket, levels)
    return result
