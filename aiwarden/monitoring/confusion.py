"""Per-class monitoring of classifiers: the confusion matrix of each time window.

Nothing new is stored: late labels already join their predictions into labels-only
partials of the prediction's own bucket (:mod:`aiwarden.monitoring.joins`), whose
:class:`~aiwarden.engine.performance.ClassificationStats` hold the bucket's confusion
matrix. A window's matrix is the sum of its buckets' (``Monitor.series`` merges them), so
"banana -> cucumber" over a month costs a read of rollups, never of rows.

``confusion`` is a metric like ``performance`` (``GET /models/{m}/metrics?metric=
confusion``, alert rules ``metric: confusion`` / ``class_recall``); :func:`report` is what
``GET /models/{m}/confusion`` answers: every step's matrix, per-class recall and
precision and top pairs, and the same for the whole range.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from aiwarden.engine.class_confusion import ClassConfusion
from aiwarden.errors import ParameterError
from aiwarden.monitoring.bucket import BucketData
from aiwarden.monitoring.windows import parse_duration, parse_instant
from aiwarden.store import models_repo as repo

__all__ = ["MAX_CELLS", "TOP_PAIRS", "confusion", "report"]

TOP_PAIRS = 10  # pairs listed per window by the metric
MAX_CELLS = 2_000_000  # matrix cells per answer (points x classes²): a page, not a dump
_NICE_STEPS = (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604800)
_TARGET_POINTS = 48


def confusion(ref: Any, d: BucketData) -> dict[str, Any] | None:
    """The window's confusion matrix, per-class numbers and most confused pairs; None for a
    model that is not a classifier (or has no reference)."""
    if ref is None or not ref.schema_.classes:
        return None
    perf = None if d.profile is None else d.profile.performance
    if perf is None or not hasattr(perf, "confusion"):
        return {"labels": d.labels, "matrix": None}
    return {"labels": d.labels, **ClassConfusion.from_stats(perf).to_dict(TOP_PAIRS)}


def _default_step(span: float, bucket: int) -> int:
    """The smallest round step giving at most ~48 points (a multiple of the bucket)."""
    for s in _NICE_STEPS:
        if s % bucket == 0 and span / s <= _TARGET_POINTS:
            return s
    return int(-(-span // (_TARGET_POINTS * bucket)) * bucket)


def report(monitor: Any, name: str, *, window: Any = None, start: Any = None,
           end: Any = None, step: Any = None, version: str | None = None,
           segment: str | None = None, top: int = TOP_PAIRS) -> dict[str, Any]:
    """The confusion matrix over time: ``points`` (one per ``step``) and ``total`` (the
    range); ``window`` (``"1d"``) is the range ending at ``end`` (default now)."""
    if not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= 1000:
        raise ParameterError(f"top: expected an integer in [1, 1000]; got {top!r}.", "top")
    if window not in (None, ""):
        if start not in (None, ""):
            raise ParameterError("window: give window (a range ending at end) or start, "
                                 "not both.", "window")
        t1 = parse_instant(end, "end") if end not in (None, "") else time.time()
        start, end = t1 - parse_duration(window, "window"), t1
    t0, t1 = monitor._window(start, end)
    bucket = monitor.settings.bucket_seconds
    width = _default_step(t1 - t0, bucket) if step in (None, "") else parse_duration(step)
    with monitor.db.read() as conn:
        v = repo.get_version(conn, repo.get_model(conn, name), version)
        ref = monitor.refs.get(conn, v.id)
    classes = [] if ref is None else list(ref.schema_.classes)
    if ref is not None and not classes:
        raise ParameterError(f"{name!r} is not a classifier (its schema has no classes): a "
                             "confusion matrix needs predicted and true classes.", "name")
    points = -(-(t1 - t0) // width) if width > 0 else 0
    if points * max(len(classes), 1) ** 2 > MAX_CELLS:
        raise ParameterError(f"step: {points} windows of {len(classes)}x{len(classes)} "
                             f"matrices exceed {MAX_CELLS:,} cells; use a wider step or a "
                             "shorter range.", "step")
    series = monitor.series(name, "confusion", start=t0, end=t1, step=width,
                            version=version, segment=segment)
    total = np.zeros((len(classes), len(classes)), dtype=np.int64)
    out_points = []
    for p in series["points"]:
        value = p["value"]
        point = {"start": p["start"], "end": p["end"], "rows": p["rows"],
                 "labels": 0 if value is None else value["labels"]}
        if value is not None and value.get("matrix") is not None:
            cc = ClassConfusion(tuple(value["classes"]),
                                np.asarray(value["matrix"], dtype=np.int64))
            total += cc.matrix
            point.update(cc.to_dict(top))
            del point["classes"]
        elif "reason" in p:
            point["reason"] = p["reason"]
        out_points.append(point)
    whole = ClassConfusion(tuple(classes), total).to_dict(top)
    out = {"model": name, "version": series["version"], "classes": classes,
           "start": series["start"], "end": series["end"], "step": width,
           "total": {"labels": sum(p["labels"] for p in out_points),
                     **{k: v for k, v in whole.items() if k != "classes"}},
           "points": out_points}
    if "segment" in series:
        out["segment"] = series["segment"]
    return out


def check_rule(monitor: Any, rule: Any, where: str = "") -> None:
    """Refuse a confusion or class_recall rule whose ``pair`` / ``class`` names no class of
    its model (the newest version's reference), or whose model is not a classifier. A rule
    for every model (``*``), or for a model without a reference yet, is checked when it is
    evaluated instead (the alert says which name is unknown)."""
    from aiwarden.alerting.rules import check_rule_classes

    if rule.metric not in ("confusion", "class_recall") or rule.model == "*":
        return
    with monitor.db.read() as conn:
        try:
            v = repo.get_version(conn, repo.get_model(conn, rule.model), None)
        except repo.NotFound:
            return
        ref = monitor.refs.get(conn, v.id)
    if ref is None:
        return
    if not ref.schema_.classes:
        raise ParameterError(f"{where}metric: {rule.model!r} is not a classifier (its "
                             f"schema has no classes), so it has no {rule.metric}.",
                             f"{where}metric")
    try:
        check_rule_classes(rule, ref.schema_.classes)
    except ParameterError as exc:
        raise ParameterError(f"{where}{exc}", f"{where}{exc.field}") from None
