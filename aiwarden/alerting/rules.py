"""Alert rules: what to watch, over which window, and when it is bad.

Rules are data (YAML in the user's repo, or JSON over the API) validated here with a
message naming the exact field. :func:`rule_value` turns one window's metric payload (what
``Monitor.series`` returns) into the number a rule compares; :func:`default_rules` is what
a newly registered model gets without anyone writing YAML.

A rule file::

    rules:
      - name: amount-drift
        model: fraud-detector      # or "*" for every model
        metric: drift              # drift | quality | performance | estimated_performance
                                   # | latency | volume | quarantined | concept_drift
                                   # | multivariate_drift | llm (docs/llm.md)
        column: amount             # drift: one column (omit: the share of drifted features)
        method: psi                # drift: the method that decides (default: the model's)
        window: 1h
        op: ">"
        warning: 0.1
        critical: 0.25
        for: 5m
        runbook: https://wiki/runbooks/drift
      - name: accuracy-by-country
        model: fraud-detector
        metric: performance
        stat: accuracy
        segment_by: country        # each segment apart, labelled segment="country=BR";
                                   # or segment: {country: BR} for one
        op: "<"
        critical: 0.7
      - name: bananas-called-cucumbers
        model: kiosk-fruit
        metric: confusion          # a classifier's confusion matrix (docs/confusion.md)
        pair: banana->cucumber     # true->predicted; "*": one alert per pair; omit: the
                                   # most confused pair
        stat: rate                 # share of true bananas predicted cucumber (or count)
        op: ">"
        warning: 0.05
        critical: 0.15
      - name: banana-recall
        metric: class_recall       # recall (or precision, f1) of one class
        class: banana              # omit: the worst class's
        op: "<"
        warning: 0.9

``min_rows``: a window with fewer rows is not judged; the rule's state is NoData with
the reason "not enough data: ..." instead of a guess. Default per metric in
:data:`DEFAULT_MIN_ROWS` (drift: 100 rows, where the drift rule's false-alarm rate is
measured within its 1 %, see docs/drift.md); 0 judges any window.

``min_labels``: likewise for labelled rows, on the metrics that read labels
(``performance``, ``estimate_gap``); the reason says "not enough labels: ...". Default
in :data:`DEFAULT_MIN_LABELS` (estimate_gap: 100).

``estimate_gap`` compares realised performance with its estimate (CBPE for classifiers,
DLE for regression) over the same window: the value is the gap's *severity*,
``|realised - estimate|`` over the larger of the half-width of the estimate's band
(widened to the labelled rows) and ``min_gap × |estimate|``, so above 1 the realised value
left the band by a material amount (what concept drift looks like: the inputs explain one
performance, the labels say another). ``min_gap`` (default 0.05) is the smallest relative
gap worth an alert: on large windows the band shrinks below the estimators' own error
(a few per cent under strong covariate shift, see bench/dle.py)::

      - name: accuracy-leaves-estimate
        metric: estimate_gap
        stat: accuracy             # regression: mae or rmse
        window: 1d
        op: ">"
        warning: 1.0               # outside the 95 % band
        critical: 2.0
        min_labels: 200
        min_gap: 0.05              # relative to the estimate
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aiwarden import _yaml as bounded_yaml
from aiwarden.alerting.state import Condition, Missing
from aiwarden.engine.class_confusion import (
    CLASS_STATS,
    PAIR_ARROW,
    PAIR_STATS,
    ClassConfusion,
    class_index,
    split_pair,
)
from aiwarden.engine.detectors import DETECTORS
from aiwarden.errors import ParameterError
from aiwarden.monitoring.llm_metrics import STATS as LLM_STATS
from aiwarden.monitoring.windows import parse_duration

__all__ = ["DEFAULT_MIN_GAP", "DEFAULT_MIN_LABELS", "DEFAULT_MIN_ROWS", "MAX_PAIR_CLASSES",
           "METRIC_STATS", "Rule",
           "RuleSet", "check_rule_classes", "default_rules", "labels_short", "load_rules",
           "payload_metric", "rule_value"]

Metric = Literal["drift", "quality", "performance", "estimated_performance", "latency",
                 "volume", "quarantined", "errors", "resources", "concept_drift",
                 "multivariate_drift", "estimate_gap", "llm", "text_drift",
                 "attribution_drift", "confusion", "class_recall", "embedding_drift"]
# The numbers each metric offers, the first being the default ``stat``.
METRIC_STATS: dict[str, tuple[str, ...]] = {
    "drift": ("severity", "value", "share_drifted", "drifted_count"),
    "quality": ("errors", "findings", "quarantined"),
    "performance": ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss",
                    "macro_f1", "weighted_f1", "mae", "rmse", "r2", "mape"),
    "estimated_performance": ("roc_auc", "accuracy", "precision", "recall", "f1", "macro_f1",
                              "weighted_f1", "mae", "rmse"),
    # severity of realised minus estimated performance (1: at the edge of the band)
    "estimate_gap": ("accuracy", "roc_auc", "precision", "recall", "f1", "macro_f1",
                     "weighted_f1", "mae", "rmse"),
    "latency": ("p95", "p50", "p90", "p99"),
    "volume": ("rows", "labels", "quarantined"),
    "quarantined": ("rate", "count"),
    "errors": ("rate", "count"),
    # change points found in the window (method: one detector, e.g. adwin)
    "concept_drift": ("change_points",),
    # from a sample of the window's raw rows: domain-classifier AUC (and its CI bounds), PCA
    # reconstruction error, drifted (1 if either detector decides drift)
    "multivariate_drift": ("auc", "auc_lower", "auc_upper", "reconstruction_error", "drifted"),
    # an LLM's window prompts vs its reference prompts (docs/llm.md): char n-gram classifier
    # AUC (and its CI bounds), drifted (1/0); MMD of embeddings when events carry them
    "text_drift": ("auc", "auc_lower", "auc_upper", "drifted", "embedding_mmd2",
                   "embedding_p_value", "embedding_drifted"),
    # the newest scheduled check of which features drive the model (docs/explain.md): nDCG
    # of the importance ranking vs the reference's, alarm (1 below the model's threshold),
    # features whose attribution distribution shifted, the largest KS statistic
    "attribution_drift": ("ndcg", "alarm", "shifted_count", "max_ks"),
    # an image model's event embeddings vs its reference embeddings (docs/image-events.md):
    # unbiased MMD² (RBF kernel), its permutation p-value, drifted (1 when p < 0.05)
    "embedding_drift": ("mmd2", "p_value", "drifted"),
    # any gauge works: <gauge>_mean, <gauge>_max or <gauge>_sum (see _RESOURCE_STAT)
    # an LLM's descriptor rates and sums (docs/llm.md): unsafe_rate, pii_rate, cost_sum...
    "llm": LLM_STATS,
    # a classifier's confusion matrix: the pair's (or the most confused pair's) rate, the
    # share of its true class predicted as the other class, or count
    "confusion": PAIR_STATS,
    # one class's (or the worst class's) recall, precision or F1
    "class_recall": CLASS_STATS,
    "resources": ("cpu_percent_mean", "cpu_percent_max", "rss_bytes_mean", "rss_bytes_max",
                  "gpu_utilization_mean", "gpu_memory_bytes_max", "cost_per_1k"),
}
_RESOURCE_STAT = re.compile(r"([a-z][a-z0-9_]*)_(mean|max|sum)")
# Metrics whose payload counts its labelled rows ("labels"): min_labels applies to them.
_LABELLED = ("performance", "estimate_gap", "confusion", "class_recall")


# pair: "*" (one alert per class pair) for models of at most this many classes (870 pairs)
MAX_PAIR_CLASSES = 30
_TOO_MANY_PAIRS = ("pair: '*' (one alert per class pair) takes models of at most "
                   f"{MAX_PAIR_CLASSES} classes; this one has {{n}}: name a pair, or omit "
                   "pair to watch the most confused one")

# Rows a window needs before a rule of the metric judges it (``Rule.min_rows`` overrides).
DEFAULT_MIN_ROWS: dict[str, int] = {"drift": 100}
# Labelled rows a window needs before a rule of the metric judges it (``Rule.min_labels``).
DEFAULT_MIN_LABELS: dict[str, int] = {"estimate_gap": 100}
# Smallest gap an estimate_gap rule counts, relative to the estimate (``Rule.min_gap``).
DEFAULT_MIN_GAP = 0.05


class Rule(BaseModel):
    """One rule; ``model: "*"`` applies it to every model."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    model: str = "*"
    metric: Metric
    stat: str | None = None
    column: str | None = None
    method: str | None = None
    window: str = "1h"
    op: Literal[">", ">=", "<", "<="] = ">"
    warning: float | None = None
    critical: float | None = None
    relative_to: Literal["reference", "previous"] | None = None
    # one segment ({country: BR}), or each segment of a column evaluated apart (country)
    segment: dict[str, str] | None = None
    segment_by: str | None = None
    pair: str | None = Field(None, min_length=1, max_length=401)  # confusion: "true->pred"
    class_: str | None = Field(None, alias="class", min_length=1, max_length=200)
    for_: str = Field("0s", alias="for")
    keep_firing_for: str = "0s"
    hysteresis: float = Field(0.05, ge=0, le=1)
    min_rows: int | None = Field(None, ge=0)  # default: DEFAULT_MIN_ROWS of the metric
    min_labels: int | None = Field(None, ge=0)  # default: DEFAULT_MIN_LABELS of the metric
    min_gap: float | None = Field(None, ge=0, le=1)  # estimate_gap: default DEFAULT_MIN_GAP
    no_data: Missing = Missing.NODATA
    on_error: Missing = Missing.ERROR
    severity: Literal["warning", "critical"] | None = None  # default: from the threshold hit
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    runbook: str | None = None
    enabled: bool = True

    @field_validator("warning", "critical", "hysteresis", "min_rows", "min_labels", "min_gap",
                     mode="before")
    @classmethod
    def _not_a_bool(cls, v: Any) -> Any:
        """true is not 1 nor false 0 (the OpenAPI document says number or integer; a lax
        model took min_rows: false as 0: schemathesis ST201)."""
        if isinstance(v, bool):
            raise ValueError(f"expected a number, got {str(v).lower()}")
        return v

    @field_validator("window")
    @classmethod
    def _duration(cls, v: str) -> str:
        parse_duration(v, "duration")
        return v

    @field_validator("for_", "keep_firing_for")
    @classmethod
    def _hold(cls, v: str) -> str:  # 0 (fire at once) is allowed, as in Prometheus
        parse_duration(v, "duration", allow_zero=True)
        return v

    @field_validator("pair")
    @classmethod
    def _pair(cls, v: str | None) -> str | None:
        if v is not None and v != "*" and PAIR_ARROW not in v[1:-1]:
            raise ValueError(f"expected 'true->predicted', e.g. 'banana->cucumber'; got {v!r}")
        return v

    @field_validator("segment", mode="before")
    @classmethod
    def _segment_text(cls, v: Any) -> Any:
        """YAML reads ``{flag: true}`` or ``{region: 1}`` as non-text: values are text, as
        the engine reads categories (booleans as true/false)."""
        if isinstance(v, dict):
            return {k: ("true" if x is True else "false" if x is False else
                        str(x) if isinstance(x, int | float) else x) for k, x in v.items()}
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        stats = METRIC_STATS[self.metric]
        if self.metric == "resources" and self.stat is None:
            raise ValueError("metric resources needs a stat: cost_per_1k or <gauge>_mean, "
                             "<gauge>_max, <gauge>_sum (e.g. cpu_percent_mean)")
        if self.stat is not None and self.stat not in stats and not (
                self.metric == "resources" and _RESOURCE_STAT.fullmatch(self.stat)):
            raise ValueError(f"stat {self.stat!r} is not offered by metric {self.metric!r}; "
                             f"choose from {list(stats)}")
        if self.metric == "concept_drift" and not self.column and self.method is not None:
            if self.method not in DETECTORS:
                raise ValueError(f"method {self.method!r} is not a concept-drift detector; "
                                 f"choose from {sorted(DETECTORS)}")
        elif (self.column or self.method) and self.metric != "drift":
            raise ValueError("column and method apply to the drift metric only")
        _check_segment(self)
        _check_classes(self)
        if self.metric in ("multivariate_drift", "text_drift", "embedding_drift") and (
                self.segment or self.segment_by):
            raise ValueError(f"{self.metric} is not split by segment")
        if self.metric == "drift" and self.stat in ("severity", "value", None) \
                and self.column is None and self.stat is not None:
            raise ValueError(f"stat {self.stat!r} needs a column; without one use "
                             "share_drifted or drifted_count")
        if self.min_gap is not None and self.metric != "estimate_gap":
            raise ValueError("min_gap applies to the estimate_gap metric only")
        if self.min_labels is not None and self.metric not in _LABELLED:
            raise ValueError(f"min_labels applies to the metrics that read labels: "
                             f"{', '.join(_LABELLED)}")
        if self.relative_to == "reference" and self.metric not in (
                "performance", "estimated_performance"):
            raise ValueError("relative_to: reference applies to performance metrics only")
        Condition(op=self.op, warning=self.warning, critical=self.critical,
                  hysteresis=self.hysteresis)  # threshold checks, with their messages
        return self

    @property
    def stat_name(self) -> str:
        if self.stat is not None:
            return self.stat
        if self.metric == "drift":
            return "severity" if self.column else "share_drifted"
        return METRIC_STATS[self.metric][0]

    @property
    def rows_needed(self) -> int:
        """Rows a window needs before this rule judges it."""
        return self.min_rows if self.min_rows is not None else DEFAULT_MIN_ROWS.get(
            self.metric, 0)

    @property
    def labels_needed(self) -> int:
        """Labelled rows a window needs before this rule judges it."""
        return self.min_labels if self.min_labels is not None else DEFAULT_MIN_LABELS.get(
            self.metric, 0)

    @property
    def window_seconds(self) -> int:
        return parse_duration(self.window, "window")

    def condition(self) -> Condition:
        return Condition(op=self.op, warning=self.warning, critical=self.critical,
                         hysteresis=self.hysteresis,
                         for_seconds=parse_duration(self.for_, "for", allow_zero=True),
                         keep_firing_for=parse_duration(self.keep_firing_for, "keep_firing_for",
                                                        allow_zero=True),
                         no_data=self.no_data, on_error=self.on_error)

    def applies_to(self, model: str) -> bool:
        return self.enabled and self.model in ("*", model)


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> RuleSet:
        seen: set[tuple[str, str]] = set()
        for r in self.rules:
            key = (r.model, r.name)
            if key in seen:
                raise ValueError(f"rule {r.name!r} for model {r.model!r} is defined twice")
            seen.add(key)
        return self


def _check_segment(rule: Rule) -> None:
    """``segment`` names one column and value; ``segment_by`` one column; not both."""
    if rule.segment is None and rule.segment_by is None:
        return
    if rule.segment is not None and rule.segment_by is not None:
        raise ValueError("give segment (one segment) or segment_by (each segment of a "
                         "column), not both")
    if rule.metric == "resources":
        raise ValueError("resource samples have no segments: segment and segment_by do not "
                         "apply to metric resources")
    if rule.metric in ("concept_drift", "attribution_drift"):
        raise ValueError(f"{rule.metric} belongs to a whole version, not a segment: segment "
                         f"and segment_by do not apply to metric {rule.metric}")
    if rule.segment is not None and (len(rule.segment) != 1 or not all(rule.segment)):
        raise ValueError("segment names one column and its value, e.g. {country: BR}; got "
                         f"{rule.segment}")
    if rule.segment_by is not None and not rule.segment_by.strip():
        raise ValueError("segment_by names a segment column, e.g. country")


def _check_classes(rule: Rule) -> None:
    """``pair`` belongs to confusion, ``class`` to class_recall; the names are checked
    against the model's classes when it has them (:func:`check_rule_classes`)."""
    if rule.pair is not None and rule.metric != "confusion":
        raise ValueError("pair applies to the confusion metric only")
    if rule.class_ is not None and rule.metric != "class_recall":
        raise ValueError("class applies to the class_recall metric only")


def check_rule_classes(rule: Rule, classes: tuple[Any, ...] | list[Any]) -> None:
    """Refuse a ``pair`` or ``class`` that names no class of ``classes`` (the model's
    reference schema): a ParameterError naming the field and listing the classes."""
    if rule.pair == "*" and len(classes) > MAX_PAIR_CLASSES:
        raise ParameterError(_TOO_MANY_PAIRS.format(n=len(classes)), "pair")
    if rule.pair not in (None, "*"):
        split_pair(rule.pair, classes, "pair")
    if rule.class_ is not None:
        class_index(rule.class_, classes, "class")


def load_rules(text: str | dict[str, Any], source: str = "rules") -> RuleSet:
    """Parse and validate; errors name the rule and field, e.g. ``rules[2].critical``."""
    try:
        doc = bounded_yaml.safe_load(text) if isinstance(text, str) else text
    except yaml.YAMLError as exc:
        raise ParameterError(f"{source}: not valid YAML: {exc}", "rules") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ParameterError(f"{source}: expected a mapping with a 'rules' list.", "rules")
    try:
        return RuleSet.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _where(first.get("loc", ()))
        raise ParameterError(f"{source}: {where}: {first['msg']}", where) from None


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in ("function-after[_consistent()]",):
            out += ("." if out else "") + ("for" if part == "for_" else str(part))
    return out or "rules"


def payload_metric(metric: str) -> str:
    """The monitoring metric whose window payload a rule of ``metric`` reads."""
    return {"quarantined": "volume", "class_recall": "confusion"}.get(metric, metric)


def labels_short(rule: Rule, value: dict[str, Any] | None) -> str | None:
    """Why ``rule`` does not judge this window (too few labels), or None when it may."""
    need = rule.labels_needed
    if not need or rule.metric not in _LABELLED or value is None:
        return None
    have = int(value.get("labels") or 0)
    if have >= need:
        return None
    return (f"not enough labels: {have} labelled rows in the {rule.window} window, the rule "
            f"needs {need} (min_labels)")


def rule_value(rule: Rule, value: dict[str, Any] | None,
               baseline: float | None = None) -> float | None:
    """The number ``rule`` compares for one window (None: no data).

    ``baseline`` is the reference's or the previous window's number when the rule is
    relative; the result is then the relative change ``(v - b) / |b|``.
    """
    v = _raw(rule, value)
    if v is None or rule.relative_to is None:
        return v
    if baseline is None or not math.isfinite(baseline) or baseline == 0:
        return None
    return (v - baseline) / abs(baseline)


def _raw(rule: Rule, value: dict[str, Any] | None) -> float | None:
    if value is None:
        return None
    stat = rule.stat_name
    if rule.metric == "drift":
        if rule.column is None:
            if stat == "drifted_count":
                return float(len(value.get("drifted_features", [])))
            return _num(value.get("share_drifted"))
        col = value.get("columns", {}).get(rule.column)
        return None if col is None else _num(col.get(stat))
    if rule.metric == "estimate_gap":
        return _gap_severity(rule, (value.get("metrics") or {}).get(stat))
    if rule.metric == "performance":
        metrics = value.get("metrics") or {}
        return _num(metrics.get(stat))
    if rule.metric == "estimated_performance":
        m = (value.get("metrics") or {}).get(stat)
        return None if m is None else _num(m.get("estimate"))
    if rule.metric == "quality":
        if stat == "findings":
            return float(len(value.get("findings", [])))
        return _num(value.get(stat))
    if rule.metric == "latency":
        return _num(value.get(stat)) if value.get("count") else None
    if rule.metric == "volume":
        return _num(value.get(stat))
    if rule.metric == "errors":
        return float(value.get("errors", 0)) if stat == "count" else _num(value.get("rate"))
    if rule.metric == "resources":
        if stat == "cost_per_1k":
            return _num(value.get("cost_per_1k"))
        m = _RESOURCE_STAT.fullmatch(stat)
        gauge = (value.get("gauges") or {}).get(m.group(1)) if m else None
        return None if gauge is None else _num(gauge.get(m.group(2)))
    if rule.metric in ("multivariate_drift", "llm", "text_drift", "attribution_drift",
                       "embedding_drift"):
        return _num(value.get(stat))
    if rule.metric in ("confusion", "class_recall"):
        return _class_value(rule, stat, value)
    if rule.metric == "concept_drift":  # change points counted in the window
        if rule.method is not None:
            return float((value.get("by_detector") or {}).get(rule.method, 0))
        return float(value.get("change_points", 0))
    if rule.metric == "quarantined":  # from the volume payload
        rows, bad = value.get("rows", 0), value.get("quarantined", 0)
        if stat == "count":
            return float(bad)
        return bad / (rows + bad) if rows + bad else None
    return None


def _class_value(rule: Rule, stat: str, value: dict[str, Any]) -> float | None:
    """A pair's rate or count (the most confused pair's without ``pair``), or a class's
    recall, precision or F1 (the worst class's without ``class``); an unknown name raises."""
    if value.get("matrix") is None:
        return None
    cc = ClassConfusion(tuple(value["classes"]), np.asarray(value["matrix"], dtype=np.int64))
    if rule.metric == "confusion":
        table = cc.rates() if stat == "rate" else cc.matrix.astype(np.float64)
        if rule.pair == "*":  # evaluated pair by pair (alerting.evaluator); not here
            raise ParameterError(_TOO_MANY_PAIRS.format(n=len(cc.classes)), "pair")
        if rule.pair is not None:
            return _num(table[split_pair(rule.pair, cc.classes, "pair")])
        off = table[~np.eye(len(cc.classes), dtype=bool)]
        off = off[np.isfinite(off)]
        return float(off.max()) if len(off) else None
    per = cc.arrays()[stat]
    if rule.class_ is not None:
        return _num(per[class_index(rule.class_, cc.classes, "class")])
    defined = per[np.isfinite(per)]
    return float(defined.min()) if len(defined) else None


def _gap_severity(rule: Rule, m: dict[str, Any] | None) -> float | None:
    """``|realised - estimate|`` over the larger of the band's half-width and the material
    floor ``min_gap × |estimate|``; None when either value is undefined."""
    if m is None:
        return None
    est, real = _num(m.get("estimate")), _num(m.get("realised"))
    lower, upper = _num(m.get("lower")), _num(m.get("upper"))
    if est is None or real is None or lower is None or upper is None:
        return None
    floor = (DEFAULT_MIN_GAP if rule.min_gap is None else rule.min_gap) * abs(est)
    scale = max((upper - lower) / 2.0, floor)
    if scale <= 0:
        return 0.0 if real == est else None
    return abs(real - est) / scale


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None


def default_rules(task: str | None) -> list[Rule]:
    """Sensible rules for a new model: visible and editable like any other."""
    rules = [
        Rule(name="drift-share", metric="drift", window="1h", op=">", warning=0.2,
             critical=0.5, for_="10m", annotations={
                 "summary": "A large share of the model's features drifted from the reference."}),
        Rule(name="data-quality-errors", metric="quality", stat="errors", window="15m",
             op=">", critical=0.0, hysteresis=0.0, no_data=Missing.OK, annotations={
                 "summary": "Records violate the schema or the reference's ranges."}),
        Rule(name="quarantine-rate", metric="quarantined", window="15m", op=">",
             warning=0.01, critical=0.05, no_data=Missing.OK),
        Rule(name="latency-p95", metric="latency", stat="p95", window="15m",
             relative_to="previous", op=">", warning=0.5, critical=1.0, for_="10m",
             no_data=Missing.OK),
    ]
    main = {"regression": "rmse"}.get(task or "", "roc_auc" if task == "binary" else "accuracy")
    if task == "regression":
        for metric, name in (("performance", "realised"), ("estimated_performance",
                                                           "estimated")):
            rules.append(Rule(name=f"{name}-rmse", metric=metric, stat="rmse",
                              window="1d", relative_to="reference", op=">", warning=0.1,
                              critical=0.25, no_data=Missing.OK))
    elif task in ("binary", "multiclass"):
        for metric, name in (("performance", "realised"), ("estimated_performance",
                                                           "estimated")):
            rules.append(Rule(name=f"{name}-{main}", metric=metric, stat=main, window="1d",
                              relative_to="reference", op="<", warning=-0.05,
                              critical=-0.10, no_data=Missing.OK))
    if task == "text_generation":  # a chatbot that starts saying harmful things
        rules.append(Rule(name="llm-unsafe-rate", metric="llm", stat="unsafe_rate",
                          window="15m", op=">", warning=0.01, critical=0.05, min_rows=20,
                          no_data=Missing.OK, annotations={
                              "summary": "Responses flagged unsafe (self-harm, violence, "
                              "hate, sexual) exceed the threshold."}))
    if task in ("regression", "binary", "multiclass"):  # concept drift: labels vs estimate
        rules.append(Rule(name=f"estimate-gap-{main}", metric="estimate_gap", stat=main,
                          window="1d", op=">", warning=1.5, critical=3.0, no_data=Missing.OK,
                          annotations={"summary": "Realised performance left the band of "
                                       "its estimate from the inputs: the labels no longer "
                                       "follow the inputs as in the reference."}))
    return rules
