"""The RCA's segment section: in which segment did performance fall?

For each segment column of the version's schema, every segment (its kept values, then
``__other__``) is read from the stored segment partials of the window, and its realised
performance (the estimate, for a classifier's window without labels) is compared with the
same segment's labelled reference rows (from the reference sample; the whole reference
when the sample has none). A segment "fell" when its value is worse than its baseline by
more than ``min_drop`` and by more than ``z`` standard errors of a proportion on its rows,
with at least ``min_rows`` rows (for a regression: a mean absolute error ``min_rise``
above its baseline): so a small segment's noise is not a finding.

A column where only some segments fell names them: "accuracy fell only for country = BR".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from aiwarden.alerting.rules import Rule, rule_value
from aiwarden.engine.schema import Task
from aiwarden.monitoring import metrics, segments
from aiwarden.monitoring.bucket import BucketData
from aiwarden.monitoring.service import Monitor

__all__ = ["SegmentSettings", "segment_findings"]


@dataclass(frozen=True)
class SegmentSettings:
    min_rows: int = 30  # labelled rows a segment needs before its value is judged
    min_drop: float = 0.05  # absolute drop of accuracy (classification)
    min_rise: float = 0.2  # relative rise of the mean absolute error (regression)
    z: float = 3.0  # standard errors of a proportion the drop must exceed
    rate: bool = False  # the metric is a proportion that should stay low (set per task)


def _stat(task: Task) -> tuple[str, bool]:
    """The metric compared and whether higher is better (an LLM: its unsafe rate)."""
    if task == Task.TEXT_GENERATION:
        return "unsafe_rate", False
    return ("mae", False) if task == Task.REGRESSION else ("accuracy", True)


def _value(ref: Any, data: Any, stat: str, estimated: bool = False) -> tuple[float | None, int]:
    if stat == "unsafe_rate":  # read from every row's descriptors, no labels needed
        return metrics.compute("llm", ref, data).get(stat), data.rows
    metric = "estimated_performance" if estimated else "performance"
    rule = Rule(name="rca", metric=metric, stat=stat, critical=0.0)
    value = rule_value(rule, metrics.compute(metric, ref, data))
    return value, (data.rows if estimated else data.labels)


def segment_findings(monitor: Monitor, model: str, ref: Any, version: str, start: float,
                     end: float, settings: SegmentSettings = SegmentSettings()
                     ) -> tuple[dict[str, Any], list[tuple[str, float, str, dict[str, Any]]]]:
    """``(section, suspects)``; a suspect is ``(name, score, summary, evidence)``."""
    cols = segments.segment_columns(ref.schema_)
    if not cols:
        return {"columns": {}, "fell": []}, []
    stat, higher = _stat(ref.schema_.task)
    if stat == "unsafe_rate":
        settings = replace(settings, rate=True)
    top_n = monitor.settings.segment_top_n
    whole_ref = (_value(ref, BucketData(rows=ref.profile_.n_rows, profile=ref.profile_), stat)[0]
                 if stat == "unsafe_rate" else
                 (ref.realised_performance(ref.profile_) or {}).get(stat))
    section: dict[str, Any] = {"metric": stat, "columns": {}, "fell": []}
    suspects = []
    for column in cols:
        values = [*segments.kept_values(ref, column, top_n), segments.OTHER]
        rows = []
        for value in values:
            key = segments.Segment(column, value).key
            _, (data,) = monitor.windows(model, [(start, end)], version, segment=key)
            current, n = _value(ref, data, stat)
            source = "realised"
            if current is None and higher:  # no labels yet: the estimate still speaks
                current, n = _value(ref, data, stat, estimated=True)
                source = "estimated"
            base_part = monitor.reference_segment(model, version, key)
            baseline = _value(ref, base_part, stat)[0] if base_part is not None else None
            baseline = whole_ref if baseline is None else baseline
            fell = _fell(current, baseline, n, higher, settings)
            rows.append({"segment": value, "rows": data.rows, "n": n, "value": current,
                         "baseline": baseline, "source": source, "fell": fell})
        section["columns"][column] = rows
        fallen = [r for r in rows if r["fell"]]
        judged = [r for r in rows if r["value"] is not None and r["n"] >= settings.min_rows]
        if not fallen:
            continue
        only = len(fallen) < len(judged)
        names = ", ".join(r["segment"] for r in fallen)
        for r in fallen:
            seg = segments.Segment(column, r["segment"])
            section["fell"].append(seg.key)
            rest = [x for x in judged if not x["fell"]]
            elsewhere = (f"; elsewhere {min(x['value'] for x in rest):.3g} to "
                         f"{max(x['value'] for x in rest):.3g}") if rest else ""
            moved = "rose" if stat == "unsafe_rate" else "fell"
            lead = (f"{stat} {moved} only for {seg}" if only and len(fallen) == 1 else
                    f"{stat} {moved} for {column} = {names}" if not only else
                    f"{stat} {moved} in every segment of {column}")
            summary = (f"{lead}: {r['value']:.3g} vs {r['baseline']:.3g} in the reference "
                       f"({r['source']}, {r['n']} rows){elsewhere}")
            # a fall confined to some segments locates the problem; one everywhere does not
            score = 0.9 if only else 0.5
            suspects.append((str(seg), score, summary, {"column": column, **r,
                                                        "segment_key": seg.key}))
    return section, suspects


def _fell(value: float | None, baseline: float | None, n: int, higher: bool,
          st: SegmentSettings) -> bool:
    if value is None or baseline is None or n < st.min_rows:
        return False
    if higher:  # a proportion (accuracy): its standard error on n rows
        se = math.sqrt(max(baseline * (1 - baseline), 1e-12) / n)
        return baseline - value > max(st.min_drop, st.z * se)
    if st.rate:  # a proportion that should stay low (an LLM's unsafe rate)
        se = math.sqrt(max(baseline * (1 - baseline), 1e-12) / n)
        return value - baseline > max(st.min_drop, st.z * se)
    return baseline > 0 and (value - baseline) / baseline > st.min_rise
