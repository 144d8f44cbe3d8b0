"""Metric values of a merged window: what the API, alert rules and dashboard read.

Each metric is a function of (reference, merged bucket data); none touches raw rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from aiwarden.engine._binning import CategoricalBinning
from aiwarden.engine.drift import DriftSettings
from aiwarden.engine.drift_metrics import get_metric
from aiwarden.engine.profile import CategoricalProfile, NumericalProfile
from aiwarden.engine.reference import Reference
from aiwarden.engine.schema import Role
from aiwarden.errors import ParameterError
from aiwarden.monitoring import confusion, latency, llm_metrics
from aiwarden.monitoring.bucket import BucketData

__all__ = ["METRICS", "ROW_METRICS", "compute", "reason"]


def _clean(v: Any) -> Any:
    """JSON-safe: NaN and infinities become None."""
    if isinstance(v, float | np.floating):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if isinstance(v, np.integer):
        return int(v)
    return v


def volume(_: Reference | None, d: BucketData) -> dict[str, Any]:
    return {"rows": d.rows, "quarantined": d.quarantined, "labels": d.labels}


def errors(_: Reference | None, d: BucketData) -> dict[str, Any]:
    """Failed predictions (events sent with ``error``) among all events of the window."""
    return {"rows": d.rows, "errors": d.errors, "rate": d.errors / d.rows if d.rows else None}


def resources(_: Reference | None, d: BucketData) -> dict[str, Any]:
    """Each gauge's mean and peak over the window's samples; cost per 1,000 predictions
    when samples reported a ``cost`` and the window served predictions."""
    out: dict[str, Any] = {"gauges": {
        name: {"samples": int(n), "mean": total / n if n else None, "max": peak, "sum": total}
        for name, (n, total, peak) in sorted(d.resources.items())}}
    cost = d.resources.get("cost")
    out["cost_per_1k"] = cost[1] / d.rows * 1000 if cost and d.rows else None
    return out


def latency_metric(_: Reference | None, d: BucketData) -> dict[str, Any]:
    return {"count": int(d.latency.sum()), **latency.percentiles(d.latency)}


def drift_settings(ref: Reference, method: str | None) -> DriftSettings | None:
    """The reference's settings with ``method`` deciding every column it applies to."""
    if not method:
        return None
    try:
        ordered = get_metric(method)[1]
    except ParameterError as exc:
        raise ParameterError(f"method: {exc}", "method") from None
    st = ref.settings
    return replace(st, numerical_method=method,
                   categorical_method=st.categorical_method if ordered else method)


def drift(ref: Reference | None, d: BucketData, method: str | None = None,
          columns: list[str] | None = None, detail: bool = True) -> dict[str, Any] | None:
    """Per column: the deciding method's value and threshold, plus every distance
    (``detail``) or only the verdicts (alert rules need nothing more)."""
    if ref is None or d.profile is None or d.profile.n_rows == 0:
        return None
    report = ref.compare(d.profile, settings=drift_settings(ref, method), columns=columns,
                         detail=detail)
    cols = {c.column: {k: v for k, v in c.to_dict().items() if k != "column"}
            for c in report.columns if c.n_current}
    return {"n_current": report.n_current, "drifted_features": list(report.drifted_features),
            "share_drifted": report.share_drifted, "dataset_drifted": report.dataset_drifted(),
            "columns": cols}


def quality(ref: Reference | None, d: BucketData) -> dict[str, Any] | None:
    out: dict[str, Any] = {"rows": d.rows, "quarantined": d.quarantined,
                           "quarantine_reasons": d.quarantine_reasons}
    if ref is not None and d.profile is not None and d.profile.n_rows:
        q = ref.check_quality(d.profile)
        out["findings"] = [f.to_dict() for f in q.findings]
        out["errors"] = len(q.errors)
        out["ok"] = q.ok and d.quarantined == 0
    else:
        out["findings"], out["errors"], out["ok"] = [], 0, d.quarantined == 0
    return out


def performance(ref: Reference | None, d: BucketData) -> dict[str, Any] | None:
    if ref is None or d.profile is None or d.profile.performance is None:
        return {"labels": d.labels, "metrics": None}
    realised = ref.realised_performance(d.profile)
    out = {"labels": d.labels, "metrics": None if realised is None else dict(realised)}
    if realised is not None and realised.reasons:  # a metric lost to overflow says so
        out["reasons"] = dict(realised.reasons)
    return out


def estimated_performance(ref: Reference | None, d: BucketData) -> dict[str, Any] | None:
    if ref is None or d.profile is None:
        return None
    est = ref.estimated_performance(d.profile)
    return None if est is None else est.to_dict()


def estimate_gap(ref: Reference | None, d: BucketData) -> dict[str, Any] | None:
    """Realised performance against the estimate (CBPE / DLE) of the same window.

    Per metric: ``estimate``, ``realised``, ``difference``, the band ``lower`` / ``upper``
    widened to the labelled rows, ``severity`` (``|gap|`` over the band's half-width, above
    1 outside) and ``within_band``; ``labels`` counts the labelled rows, ``rows`` the
    estimated ones. ``metrics`` is None until labels arrive.
    """
    if ref is None or d.profile is None:
        return None
    est = ref.estimated_performance(d.profile)
    if est is None:
        return None
    perf = d.profile.performance
    labels = 0 if perf is None else int(perf.n)
    out = {"labels": labels, "rows": est.n, "confidence": est.confidence,
           "metrics": est.compare(perf) if labels else None}
    lost = perf.reasons() if labels and hasattr(perf, "reasons") else {}
    if lost:  # the realised side of these metrics overflowed
        out["reasons"] = {k: f"realised {why}" for k, why in lost.items()}
    return out


def prediction(ref: Reference | None, d: BucketData) -> dict[str, Any] | None:
    """The prediction column's distribution next to the reference's, on the same bins."""
    if ref is None or d.profile is None:
        return None
    name = ref.schema_.column_for(Role.PREDICTION)
    if name is None:
        scores = ref.schema_.score_columns
        name = scores[0].name if scores else None
    if name is None or name not in d.profile.columns:
        return None
    cur, base = d.profile.columns[name], ref.profile_.columns[name]
    binning = ref.binnings_[name]
    out: dict[str, Any] = {"column": name, "n": int(cur.count)}
    if isinstance(cur, CategoricalProfile) and isinstance(binning, CategoricalBinning):
        out["categories"] = [*binning.categories, "(unseen)"]
        out["current"] = cur.counts.tolist()
        out["reference"] = base.counts.tolist()
    elif isinstance(cur, NumericalProfile):
        out["edges"] = binning.edges.tolist()
        out["current"] = cur.counts.tolist()
        out["reference"] = base.counts.tolist()
        out["mean"] = cur.mean if cur.count else None
        out["reference_mean"] = base.mean
    return out


METRICS: dict[str, Callable[[Reference | None, BucketData], Any]] = {
    "volume": volume, "latency": latency_metric, "drift": drift, "quality": quality,
    "performance": performance, "estimated_performance": estimated_performance,
    "prediction": prediction, "errors": errors, "resources": resources,
    "estimate_gap": estimate_gap,
    "llm": llm_metrics.llm,  # an LLM's unsafe, PII, refusal... rates (docs/llm.md)
    "confusion": confusion.confusion,  # a classifier's matrix, per class (docs/confusion.md)
}
# Metrics that need the window's raw rows, not only its merged profiles: computed by
# aiwarden.monitoring.multivariate_window (Monitor.series, the alert loop, /metrics).
# attribution_drift: read from the stored scheduled checks (attribution_watch.py)
# embedding_drift: an image model's event embeddings vs its reference embeddings (MMD)
ROW_METRICS = ("multivariate_drift", "text_drift", "attribution_drift", "embedding_drift")


def compute(metric: str, ref: Reference | None, d: BucketData, **options: Any) -> Any:
    """``options`` (drift only: ``method``, ``columns``, ``detail``) are passed when given."""
    given = {k: v for k, v in options.items() if v or v is False}
    if given and metric != "drift":
        raise ParameterError(f"{sorted(given)} apply to the drift metric only.", sorted(given)[0])
    return _clean(METRICS[metric](ref, d, **given))


_NEEDS_REFERENCE = ("drift", "performance", "estimated_performance", "prediction",
                    "multivariate_drift", "estimate_gap", "confusion")


def reason(metric: str, ref: Reference | None, d: BucketData, value: Any,
           version: str) -> str | None:
    """Why ``value`` (what :func:`compute` answered) holds no number, or None when it does.

    Every null a client reads comes with one of these sentences, so "no data", "no
    reference" and "no labels yet" are never confused.
    """
    if metric in ("performance", "estimate_gap"):
        missing = value is None or value.get("metrics") is None
    elif metric == "confusion":
        missing = value is None or value.get("matrix") is None
    elif metric in ("latency",):
        missing = not value or not value.get("count")
    elif metric == "errors":
        missing = value is None or value.get("rate") is None
    else:
        missing = value is None
    if not missing:
        return None
    if metric in _NEEDS_REFERENCE and ref is None:
        return (f"version {version!r} has no reference (and none to inherit): upload one "
                f"with PUT /models/{{name}}/versions/{version}/reference")
    if d.rows == 0:
        return "no events in this window"
    if metric in ("latency",):
        return "no event in this window reported latency_ms"
    if metric in _NEEDS_REFERENCE and (d.profile is None or d.profile.n_rows == 0):
        return "no event in this window was profiled against the reference"
    if metric == "estimate_gap" and value is None:
        metric = "estimated_performance"  # no estimate: the same reason
    if metric == "confusion" and value is None:
        return "the model is not a classifier: its reference schema has no classes"
    if metric in ("performance", "estimate_gap", "confusion"):
        return "no labels joined to this window's predictions yet"
    if metric == "estimated_performance":
        return ("the reference cannot estimate performance (needs a classifier's scores, or "
                "a regression model's features, prediction and at least 100 labelled rows)")
    if metric == "prediction":
        return "the schema has no prediction or score column, or none was sent"
    return "not computable from this window"
