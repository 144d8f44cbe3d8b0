"""The evaluation loop: every stored rule, for every model it applies to, each cycle.

A cycle reads each rule's window from the bucket rollups (never raw events), turns it
into one number per label set, steps that alert instance's stored state and records the
transitions. Only the holder of the ``alert-evaluator`` lease evaluates, so several
server processes on one PostgreSQL evaluate exactly once per cycle; the state lives in
the database, so a restart continues where it stopped.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiwarden.alerting.apply import rule_spec
from aiwarden.alerting.rules import (
    MAX_PAIR_CLASSES,
    Rule,
    default_rules,
    labels_short,
    payload_metric,
    rule_value,
)
from aiwarden.alerting.state import AlertState, Evaluation, Transition, step
from aiwarden.engine.class_confusion import PAIR_ARROW
from aiwarden.engine.schema import Role
from aiwarden.monitoring import metrics, segments
from aiwarden.monitoring.concept_drift import ConceptDrift
from aiwarden.monitoring.service import Monitor
from aiwarden.store import alerts_repo as repo
from aiwarden.store import models_repo

__all__ = ["CycleReport", "EvaluationLoop", "Evaluator", "LeaseLost", "install_defaults"]

log = logging.getLogger("aiwarden.alerting")
LEASE = "alert-evaluator"


def install_defaults(monitor: Monitor, model: str, task: str | None) -> list[str]:
    """Add the default rules a model lacks (never overwriting an edited one)."""
    added = []
    with monitor.db.write() as conn:
        have = {r.name for r in repo.list_rules(conn, model) if r.model == model}
        for rule in default_rules(task):
            if rule.name not in have:
                spec = rule_spec(rule) | {"model": model}
                repo.upsert_rule(conn, model, rule.name, spec, "default")
                added.append(rule.name)
    return added


@dataclass
class CycleReport:
    evaluated: bool = True
    instances: int = 0
    transitions: list[tuple[dict[str, str], Transition]] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    change_points: list[dict[str, Any]] = field(default_factory=list)


class Evaluator:
    def __init__(self, monitor: Monitor, *, holder: str | None = None,
                 lease_ttl: float = 90.0) -> None:
        self.monitor = monitor
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.lease_ttl = lease_ttl
        # set by the server on PostgreSQL: its Leadership's check, so a cycle takes the
        # lease by the heartbeat's rules (the session lock first), never around them
        self.lease: Callable[[], bool] | None = None
        self.concept = ConceptDrift(monitor.db, monitor.refs)
        # one cycle and its follow-up (the pipeline's hand-over to incidents and
        # notifications) at a time in this process: the loop's and an API request's
        self.lock = threading.RLock()
        # model -> why its last cycle failed: logged when it starts failing, not every tick
        self._failing: dict[str, str] = {}

    def evaluate_once(self, now: float | None = None) -> CycleReport:
        started = time.perf_counter()
        now = time.time() if now is None else now
        if self.lease is not None:
            if not self.lease():
                return CycleReport(evaluated=False)
        else:
            with self.monitor.db.write() as conn:
                if not repo.acquire_lease(conn, LEASE, self.holder, self.lease_ttl, now):
                    return CycleReport(evaluated=False)
        report = CycleReport()
        # concept-drift detectors first (same lease), so rules read this cycle's change points
        report.change_points = self.concept.feed(now).change_points
        try:
            for model in self.monitor.list_models():
                try:
                    self._model(model["name"], now, report)
                except LeaseLost:
                    raise
                except Exception as exc:  # one model must never stop the others' cycle
                    report.errors += 1
                    self._failed(model["name"], [], exc)
        except LeaseLost:  # another process took over mid-cycle: it evaluates from here
            log.warning("the %s lease moved to another process mid-cycle; stopping", LEASE)
            report.evaluated = False
        report.seconds = time.perf_counter() - started
        return report

    def warm(self, now: float | None = None) -> int:
        """Read what a cycle reads (each model's references and the partials of its rules'
        windows, the model's and its segments'), evaluating nothing: a started server runs
        this before its first cycle (:class:`EvaluationLoop`), so that cycle decodes only
        what is new since, as a steady one does, instead of every partial of every window.
        Returns the windows read; a model that fails is logged and skipped (the cycle
        reports it)."""
        now = time.time() if now is None else now
        read = 0
        for model in self.monitor.list_models():
            try:
                read += self._warm_model(model["name"], now)
            except Exception:  # warming is an optimisation: the cycle will say what failed
                log.warning("warming the alert windows of %s failed", model["name"],
                            exc_info=True)
        return read

    def _warm_model(self, name: str, now: float) -> int:
        plan = self._plan(name, now)
        if plan is None:
            return 0
        _, rules, spans, versions = plan
        read = 0
        for version in versions:
            ref, _ = self.monitor.windows(name, spans, version)
            read += len(spans)
            keys = {seg.key for _, rule in rules for seg, why in self._segments(rule, ref)
                    if seg is not None and why is None}
            for key in sorted(keys):
                self.monitor.windows(name, spans, version, segment=key)
                read += len(spans)
        return read

    def _plan(self, name: str, now: float
              ) -> tuple[Any, list[tuple[int, Rule]], list[tuple[float, float]], list[str]] | None:
        """``(model row, its rules, every span they read, the versions to evaluate)``, or
        None when the model has no rule or no version.

        Every version that served in the rules' horizon is evaluated (a canary and its
        champion, a version just rolled back from), plus the latest one, whose silence
        is news too."""
        with self.monitor.db.read() as conn:
            stored = repo.list_rules(conn, name)
            m = models_repo.get_model(conn, name)
            versions = models_repo.list_versions(conn, m)
        rules = [(sr.id, r) for sr in stored
                 if (r := Rule.model_validate(sr.spec)).applies_to(name)]
        if not rules or not versions:
            return None
        spans = sorted({span for _, r in rules for span in _spans(r, now)})
        served = self.monitor.versions_with_data(name, min(s for s, _ in spans))
        return m, rules, spans, [v.version for v in versions
                                 if v.id == versions[-1].id or v.id in served]

    def _model(self, name: str, now: float, report: CycleReport) -> None:
        """Read every window the model's rules need at once, evaluate, then save every
        instance's step in one transaction (one commit per model, not one per instance)."""
        plan = self._plan(name, now)
        if plan is None:
            return
        m, rules, spans, versions = plan
        results, failed = [], False
        for version in versions:
            try:
                results += self._version(name, version, rules, spans, now)
            except LeaseLost:
                raise
            except Exception as exc:  # its rules read an error state, the cycle goes on
                failed = True
                why = self._failed(name, [r.name for _, r in rules], exc, version)
                results += self._errors(m.id, name, version, rules, why)
        if not failed and self._failing.pop(name, None) is not None:
            log.info("alert evaluation of model %s works again", name)
        self._save(m.id, results, now, report)

    def _failed(self, name: str, rules: list[str], exc: Exception,
                version: str | None = None) -> str:
        """Log a model's failure once (again only when the reason changes); the reason."""
        where = f"model {name!r}" + (f" version {version!r}" if version else "")
        why = f"evaluating {where} failed: {type(exc).__name__}: {exc}"
        if self._failing.get(name) != why:
            self._failing[name] = why
            log.warning("alert evaluation of %s failed (rules: %s); the other models go on",
                        where, ", ".join(rules) or "?", exc_info=exc)
        return why

    def _errors(self, model_id: int, name: str, version: str, rules: list[tuple[int, Rule]],
                why: str) -> list[Any]:
        """An error evaluation for each instance of each rule on ``version`` (the ones
        stored, or the rule's own when it has none yet), so ``GET .../alerts`` says why."""
        with self.monitor.db.read() as conn:
            stored = repo.list_instances(conn, model_id)
        out = []
        for rule_id, rule in rules:
            labels = [i.labels for i in stored
                      if i.rule_id == rule_id and i.labels.get("version") == version]
            for one in labels or [{"rule": rule.name, "model": name, "version": version,
                                   **rule.labels}]:
                out.append((rule_id, rule, dict(one), Evaluation(None, error=why)))
        return out

    def _version(self, name: str, version: str, rules: list[tuple[int, Rule]],
                 spans: list[tuple[float, float]], now: float) -> list[Any]:
        ref, data = self.monitor.windows(name, spans, version)
        by_segment = {None: dict(zip(spans, data, strict=True))}
        cache: dict[tuple[Any, ...], Any] = {}
        if any(r.metric == "concept_drift" for _, r in rules):  # not from bucket windows
            with self.monitor.db.read() as conn:
                found = self.concept.counts(conn, models_repo.get_model(conn, name).id,
                                            version, spans)
            cache.update({("concept_drift", None, span, None): v for span, v in found.items()})
        for row_metric in metrics.ROW_METRICS:  # from raw rows (multivariate_drift, text_drift)
            if any(r.metric == row_metric for _, r in rules):
                cache.update(self._multivariate(name, version, ref, rules, by_segment[None],
                                                now, row_metric))
        results = []
        for rule_id, rule in rules:
            for seg, unreadable in self._segments(rule, ref):
                key = None if seg is None else seg.key
                if key not in by_segment and unreadable is None:
                    _, part = self.monitor.windows(name, spans, version, segment=key)
                    by_segment[key] = dict(zip(spans, part, strict=True))
                for column in self._columns(rule, ref):
                    labels = {"rule": rule.name, "model": name, "version": version,
                              **({_instance_key(rule): column} if column else {}),
                              **({"segment": key} if key else {}), **rule.labels}
                    base = (self.monitor.reference_segment(name, version, key)
                            if key and rule.relative_to == "reference" and not unreadable
                            else None)
                    ev = (Evaluation(None, error=f"segment {key}: {unreadable}") if unreadable
                          else self._evaluate(rule, column, ref, now, by_segment[key], cache,
                                              key, base, version))
                    results.append((rule_id, rule, labels, ev))
        return results

    def _multivariate(self, name: str, version: str, ref: Any, rules: list[tuple[int, Rule]],
                      windows: dict[tuple[float, float], Any], now: float,
                      metric: str = "multivariate_drift") -> dict[tuple[Any, ...], Any]:
        """A row metric (multivariate or text drift) of each span its rules read, once per
        cycle; a window it cannot judge is ``{"reason": ...}``, which the rule reports as no
        data."""
        spans = {s for _, r in rules if r.metric == metric for s in _spans(r, now)}
        out: dict[tuple[Any, ...], Any] = {}
        with self.monitor.db.read() as conn:
            m = models_repo.get_model(conn, name)
            v = models_repo.get_version(conn, m, version)
            for span in sorted(spans):
                value, why = self.monitor.row_metric(
                    conn, metric, m.id, v.id, version, ref, *span, windows[span].rows)
                out[(metric, None, span, None)] = (
                    value if value is not None or why is None else {"reason": why})
        return out

    def _segments(self, rule: Rule, ref: Any) -> list[tuple[Any, str | None]]:
        """``(segment or None, why it cannot be read or None)`` for each instance: the whole
        model, the rule's one segment, or every segment of its ``segment_by`` column (the
        kept values, then ``__other__``). A rule for every model (``model: "*"``) skips the
        models that have no such segment column; a rule naming the model says why not."""
        top_n = self.monitor.settings.segment_top_n
        if rule.segment is None and rule.segment_by is None:
            return [(None, None)]
        column = rule.segment_by or next(iter(rule.segment))
        if rule.model == "*" and (ref is None or
                                  column not in segments.segment_columns(ref.schema_)):
            return []
        if rule.segment is not None:
            seg = segments.Segment(column, rule.segment[column])
            return [(seg, segments.resolve(ref, seg, top_n))]
        probe = segments.Segment(rule.segment_by, segments.OTHER)
        unreadable = segments.resolve(ref, probe, top_n)
        if unreadable is not None:
            return [(probe, unreadable)]
        values = [*segments.kept_values(ref, rule.segment_by, top_n), segments.OTHER]
        return [(segments.Segment(rule.segment_by, v), None) for v in values]

    @staticmethod
    def _columns(rule: Rule, ref: Any) -> list[str | None]:
        """Each instance's column (drift ``*``: every feature), or pair (confusion ``*``:
        every pair of up to :data:`MAX_PAIR_CLASSES` classes)."""
        if rule.metric == "confusion":
            classes = () if ref is None else ref.schema_.classes
            if rule.pair == "*" and len(classes) <= MAX_PAIR_CLASSES:
                return [f"{a}{PAIR_ARROW}{b}" for a in classes for b in classes if a != b]
            return [None]
        if rule.metric != "drift" or rule.column != "*":
            return [rule.column]
        return [] if ref is None else [c.name for c in ref.schema_.columns
                                       if c.role == Role.FEATURE]

    @staticmethod
    def _payload(rule: Rule, ref: Any, data: Any, span: tuple[float, float],
                 cache: dict[tuple[Any, ...], Any], segment: str | None = None) -> Any:
        """One metric of one window is computed once per cycle, whatever rules read it."""
        metric = payload_metric(rule.metric)
        method = rule.method if metric == "drift" else None
        key = (metric, method, span, segment)
        if key not in cache:
            options = {"method": method, "detail": False} if metric == "drift" else {}
            cache[key] = metrics.compute(metric, ref, data, **options)
        return cache[key]

    def _evaluate(self, rule: Rule, column: str | None, ref: Any, now: float,
                  windows: dict[tuple[float, float], Any],
                  cache: dict[tuple[Any, ...], Any], segment: str | None = None,
                  reference_part: Any = None, version: str = "") -> Evaluation:
        """``reference_part``: a segment's labelled reference rows, the baseline of a
        segment rule ``relative_to: reference`` (the whole reference's otherwise)."""
        key = _instance_key(rule)
        one = rule if column in (None, getattr(rule, key)) else rule.model_copy(
            update={key: column})
        if key == "column" and column and ref is not None and column not in ref.schema_:
            return Evaluation(None, error=f"column {column!r} is not in the model's schema")
        current, *previous = _spans(rule, now)
        rows = getattr(windows[current], "rows", None)
        if rows is not None and rows < rule.rows_needed:
            return Evaluation(None, reason=f"not enough data: {rows} rows in the {rule.window} "
                              f"window, the rule needs {rule.rows_needed} (min_rows)")
        try:
            value = self._payload(rule, ref, windows[current], current, cache, segment)
            if isinstance(value, dict) and set(value) == {"reason"}:  # a row metric's why-not
                return Evaluation(None, reason=value["reason"])
            if (short := labels_short(rule, value)) is not None:
                return Evaluation(None, reason=short)
            baseline = None
            if previous:
                baseline = rule_value(one.model_copy(update={"relative_to": None}),
                                      self._payload(rule, ref, windows[previous[0]],
                                                    previous[0], cache, segment))
            elif rule.relative_to == "reference" and segment is not None:
                if reference_part is None:
                    return Evaluation(None, error=f"segment {segment}: the reference sample "
                                      "holds no labelled rows of it to compare with")
                baseline = rule_value(
                    one.model_copy(update={"relative_to": None, "metric": "performance"}),
                    metrics.compute("performance", ref, reference_part))
            elif rule.relative_to == "reference" and ref is not None:
                realised = ref.realised_performance(ref.profile_) or {}
                baseline = realised.get(rule.stat_name)
            result = rule_value(one, value, baseline)
            if result is None:  # say why, in the words the metrics API uses for this window
                metric = payload_metric(rule.metric)
                why = (_stat_reason(one, value)
                       or metrics.reason(metric, ref, windows[current], value, version)
                       or f"{one.stat_name} is not computable from this window")
                return Evaluation(None, reason=why)
            return Evaluation(result)
        except Exception as exc:  # one bad rule must not stop the cycle
            log.warning("rule %s failed: %s", rule.name, exc)
            return Evaluation(None, error=f"{type(exc).__name__}: {exc}")

    def _save(self, model_id: int, results: list[tuple[int, Rule, dict[str, str], Evaluation]],
              now: float, report: CycleReport) -> None:
        with self.monitor.db.write(model_id) as conn:
            # fenced: a process that stalled past its lease must not step states (and
            # record transitions) that its successor steps too
            if not repo.fence(conn, LEASE, self.holder):
                raise LeaseLost(self.holder)
            have = {(i.rule_id, i.fingerprint): i for i in repo.list_instances(conn, model_id)}
            for rule_id, rule, labels, ev in results:
                inst = have.get((rule_id, repo.fingerprint(labels)))
                state = AlertState() if inst is None else AlertState.from_dict(inst.state)
                new, events = step(state, ev, rule.condition(), now)
                report.instances += 1
                if inst is None and not events and new == AlertState(value=new.value):
                    continue  # a quiet normal instance: not worth a row yet
                iid = repo.save_state(conn, rule_id, model_id, labels, new.to_dict(), inst)
                repo.add_events(conn, iid, events)
                report.errors += ev.error is not None
                report.transitions += [(labels, e) for e in events]


def _stat_reason(rule: Rule, value: Any) -> str | None:
    """The payload's own reason for the one number ``rule`` reads (a drift column's
    'no data', a metric lost to overflow), when it gives one."""
    if not isinstance(value, dict):
        return None
    if rule.metric == "drift" and rule.column:
        col = (value.get("columns") or {}).get(rule.column)
        why = col.get("reason") if isinstance(col, dict) else None
        return f"column {rule.column}: {why}" if why else None
    reasons = value.get("reasons")
    return reasons.get(rule.stat_name) if isinstance(reasons, dict) else None


def _instance_key(rule: Rule) -> str:
    """The label telling a rule's instances apart: a drift rule's column, a confusion
    rule's pair."""
    return "pair" if rule.metric == "confusion" else "column"


def _spans(rule: Rule, now: float) -> list[tuple[float, float]]:
    """The rule's window, then the one before it when the rule compares with it."""
    w = rule.window_seconds
    spans = [(now - w, now)]
    if rule.relative_to == "previous":
        spans.append((now - 2 * w, now - w))
    return spans


class LeaseLost(Exception):
    """This process no longer holds the evaluator lease (it expired and was taken)."""


class EvaluationLoop(threading.Thread):
    """Runs :meth:`Evaluator.evaluate_once` every ``every`` seconds until stopped."""

    def __init__(self, evaluator: Evaluator, every: float,
                 after: Callable[[CycleReport], Any] | None = None) -> None:
        super().__init__(name="aiwarden-alerts", daemon=True)
        self.evaluator, self.every, self.after = evaluator, every, after
        self.stop = threading.Event()

    def run(self) -> None:
        # The first cycle after a start would decode every partial its windows read and
        # load every reference; do that now, inside the wait before it, not in it.
        started = time.monotonic()
        try:
            self.evaluator.warm()
        except Exception:
            log.exception("warming the alert windows failed")
        if self.stop.wait(max(0.0, self.every - (time.monotonic() - started))):
            return
        while True:
            try:
                with self.evaluator.lock:
                    report = self.evaluator.evaluate_once()
                    if self.after is not None:
                        self.after(report)
            except Exception:  # keep evaluating; the next cycle retries
                log.exception("alert evaluation cycle failed")
            if self.stop.wait(self.every):
                return
