"""Root-cause analysis: who are the suspects for what went wrong in a window, with evidence.

Each section asks the engine one question about the window (against the reference, or
the window just before it), using the stored profiles and the raw events kept for this:

* drift: which features moved, and how much each explains the change (a domain
  classifier's permutation importances over reference sample vs the window's rows),
  weighed by how much the model leans on each (its mean |SHAP| on the reference, when an
  ``importance`` source is given): drift that matters ranks above drift the model ignores;
* quality: which violations are in the window, whether they started in it, and the
  prediction ids of the rows behind them;
* slices: where the model fails on the window's labelled rows (the engine slice finder);
* segments: which segment of each segment column saw performance fall, from the stored
  segment partials ("accuracy fell only for country = BR", :mod:`aiwarden.rca.segments`);
  (a text-generation model: where its answers are unsafe, over version and tags, with
  example conversations from :mod:`aiwarden.rca.llm`);
* prediction: whether the prediction/score distribution shifted;
* changes: model versions and rules that changed within the look-back.

Suspects from every section are ranked on one scale (0–1) for the headline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select

from aiwarden.engine.schema import Role, Task
from aiwarden.monitoring.rows import PID
from aiwarden.monitoring.service import Monitor
from aiwarden.monitoring.windows import parse_duration, parse_instant, to_iso
from aiwarden.rca.llm import with_examples
from aiwarden.rca.segments import segment_findings
from aiwarden.store import alerts_repo, models_repo
from aiwarden.store.tables import alias_events

__all__ = ["Suspect", "analyse", "example_ids", "failing_slices"]

_MAX_ROWS = 20_000
# (model, version) -> (importance per feature, or None and why not)
Importance = Callable[[str, str], tuple[Mapping[str, float] | None, str | None]]
_HARD = {"invalid_type", "infinite", "far_out_of_range", "missing_column", "nan"}


@dataclass(frozen=True)
class Suspect:
    kind: str  # drift | quality | slice | segment | prediction | change
    name: str
    score: float
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "score": round(self.score, 4),
                "summary": self.summary, "evidence": self.evidence}


def analyse(monitor: Monitor, model: str, *, start: Any = None, end: Any = None,
            lookback: str = "7d", version: str | None = None,
            symptom: str | None = None, importance: Importance | None = None
            ) -> dict[str, Any]:
    """The RCA report of ``model`` over [start, end) (default: the last hour), as a dict.

    ``symptom`` is the metric of the alert being explained. For a drop in realised
    performance the failing slices are the direct decomposition of the extra errors, so
    they rank above drift, which may or may not have caused them."""
    started = time.perf_counter()
    end_ts = time.time() if end is None else _instant(end, "end")
    start_ts = end_ts - 3600 if start is None else _instant(start, "start")
    with monitor.db.read() as conn:
        m = models_repo.get_model(conn, model)
        v = models_repo.get_version(conn, m, version)
        ref = monitor.refs.get(conn, v.id)
        versions = models_repo.list_versions(conn, m)
        rules = alerts_repo.list_rules(conn, model)
        since = end_ts - parse_duration(lookback, "lookback")
        moves = conn.execute(select(alias_events).where(
            alias_events.c.model_id == m.id, alias_events.c.at >= since,
            alias_events.c.at <= end_ts).order_by(alias_events.c.id)).all()
    rows = _window_rows(monitor, model, start_ts, end_ts, v.version if version else None)
    sections: dict[str, Any] = {}
    suspects: list[Suspect] = []
    if ref is not None and rows.num_rows:
        drift, s = _drift(monitor, model, ref, rows, start_ts, end_ts, v.version,
                          importance)
        sections["drift"], suspects = drift, suspects + s
        quality, s = _quality(monitor, model, ref, rows, start_ts, end_ts)
        sections["quality"], suspects = quality, suspects + s
        slices, s = _slices(ref, rows)
        if ref.schema_.task == Task.TEXT_GENERATION:  # the conversations behind each slice
            s = with_examples(monitor, model, rows, s)
        sections["slices"], suspects = slices, suspects + s
        by_segment, found = segment_findings(monitor, model, ref, v.version, start_ts, end_ts)
        sections["segments"] = by_segment
        suspects += [Suspect("segment", *f) for f in found]
        prediction, s = _prediction(drift)
        sections["prediction"], suspects = prediction, suspects + s
    changes, s = _changes(versions, rules, moves, since, end_ts, v.version)
    sections["changes"], suspects = changes, suspects + s
    ranked = sorted(_focus(_symptoms(suspects), symptom), key=lambda x: -x.score)
    return {"model": model, "version": v.version, "window": {
        "start": to_iso(start_ts), "end": to_iso(end_ts), "rows": rows.num_rows},
        "suspects": [x.to_dict() for x in ranked], **sections,
        "seconds": round(time.perf_counter() - started, 3)}


def _symptoms(suspects: list[Suspect]) -> list[Suspect]:
    """Drift on a column with hard quality errors is their symptom, not a cause of its own."""
    broken = {x.evidence.get("column") for x in suspects
              if x.kind == "quality" and x.evidence.get("check") in _HARD}
    return [Suspect(x.kind, x.name, x.score * 0.5,
                    x.summary + "; likely a symptom of the data-quality errors in this column",
                    x.evidence) if x.kind == "drift" and x.name in broken else x
            for x in suspects]


# an LLM's answers change with its prompt or model version, so a move of an alias onto the
# version that answers badly explains unsafe output as directly as the slice it hits
_LEADS = {"performance": ("slice", "segment"), "drift": ("drift",), "quality": ("quality",),
          "llm": ("slice", "segment", "change"),
          # a class pair confused more (bananas called cucumbers in one store): where it fails
          "confusion": ("slice", "segment"), "class_recall": ("slice", "segment")}


def _focus(suspects: list[Suspect], symptom: str | None) -> list[Suspect]:
    """The kind of evidence that explains the symptom directly leads: failing slices for a
    performance drop, drifted columns for drift, violations for data quality."""
    lead = _LEADS.get(symptom or "")
    if lead is None:
        return suspects
    return [Suspect(x.kind, x.name, (0.5 + 0.5 * x.score) if x.kind in lead
                    else x.score * 0.85, x.summary, x.evidence) for x in suspects]


def _instant(value: Any, name: str = "time") -> float:
    return parse_instant(value, name)


def _window_rows(monitor: Monitor, model: str, start: float, end: float,
                 version: str | None = None) -> pa.Table:
    """The window's raw events (one version's when named: a canary beside its champion)."""
    rows = monitor.export_events(model, start=start, end=end)
    if version is not None and "version" in rows.column_names:
        rows = rows.filter(pc.equal(rows.column("version"), version))
    if rows.num_rows > _MAX_ROWS:  # an even sample keeps the classifier and slices fast
        idx = np.sort(np.random.default_rng(0).choice(rows.num_rows, _MAX_ROWS, replace=False))
        rows = rows.take(pa.array(idx))
    return rows


def _drift(monitor: Monitor, model: str, ref: Any, rows: pa.Table, start: float, end: float,
           version: str, importance: Importance | None = None
           ) -> tuple[dict[str, Any], list[Suspect]]:
    payload = monitor.compare(model, start=start, end=end, version=version)["drift"] or {}
    columns = payload.get("columns", {})
    drifted = [c for c in payload.get("drifted_features", [])]
    contribution = _contributions(monitor, model, ref, rows, version) if drifted else {}
    total_sev = sum(max(columns[c]["severity"] or 0, 0) for c in drifted) or 1.0
    leans, why_not = (importance(model, version) if importance is not None and drifted
                      else (None, None))
    weights = _leaning(leans, drifted, {c: columns[c]["severity"] for c in drifted})
    out, suspects = [], []
    for c in drifted:
        info = columns[c]
        share = contribution.get(c, (info["severity"] or 0) / total_sev)
        out.append({"column": c, "method": info["method"], "value": info["value"],
                    "threshold": info["threshold"], "severity": info["severity"],
                    "contribution": round(share, 4)})
        score, summary = min(1.0, 0.5 + share / 2), (
            f"{c} drifted ({info['method']} {info['value']:.3g} > {info['threshold']:.3g}); "
            f"explains {share:.0%} of the change")
        if c in weights:
            imp_share, impact, weight = weights[c]
            out[-1] |= {"importance_share": round(imp_share, 4), "impact": round(impact, 4)}
            score *= weight
            summary += (f"; the model leans on it ({imp_share:.0%} of its attribution)"
                        if weight >= 0.8 else
                        f"; the model barely uses it ({imp_share:.0%} of its attribution)")
        suspects.append(Suspect("drift", c, score, summary, out[-1]))
    out.sort(key=lambda d: (-d.get("impact", -1.0), -d["contribution"]))
    outputs = [{"column": c, "role": i["role"], "method": i["method"], "value": i["value"],
                "threshold": i["threshold"], "drifted": i["drifted"], "severity": i["severity"]}
               for c, i in columns.items() if i.get("role") in ("prediction", "score")]
    return {"drifted_features": [d["column"] for d in out], "features": out,
            "outputs": outputs,
            "share_drifted": payload.get("share_drifted"),
            "contribution_method": "domain classifier" if contribution else "severity",
            "impact_method": "severity x share of mean |SHAP| on the reference"
            if weights else None,
            **({"impact_unavailable": why_not} if why_not else {})}, suspects


def _leaning(importance: Mapping[str, float] | None, drifted: list[str],
             severity: Mapping[str, Any]) -> dict[str, tuple[float, float, float]]:
    """Per drifted feature: (share of the model's attribution, impact, score weight). The
    weight keeps a drifted feature as important as the model's most important input at full
    score and scales one it ignores down to 0.6 of it: its drift is real, its effect on the
    answers is not."""
    if not importance:
        return {}
    from aiwarden.explain import weigh_drift

    found = [c for c in drifted if c in importance]
    if not found:
        return {}
    impacts = weigh_drift({c: float(severity[c] or 0.0) for c in found}, importance,
                          only_drifted=True)
    total = sum(max(float(v), 0.0) for v in importance.values())
    top = (max(importance.values()) / total if total > 0 else 0.0) or 1.0  # of all inputs
    return {imp.feature: (imp.importance_share or 0.0, imp.impact or 0.0,
                          0.6 + 0.4 * (imp.importance_share or 0.0) / top)
            for imp in impacts}


def _contributions(monitor: Monitor, model: str, ref: Any, rows: pa.Table,
                   version: str) -> dict[str, float]:
    """Permutation importances of a reference-vs-window classifier (sum to 1); empty when
    the classifier finds no drift (its importances would explain noise)."""
    from aiwarden.engine.multivariate import DomainClassifierDrift

    sample = monitor.reference_sample(model, version)
    features = [c for c in ref.schema_.features if c in rows.column_names]
    if sample is None or len(features) < 2 or rows.num_rows < 50:
        return {}
    det = DomainClassifierDrift(max_rows=3000, features=features, n_splits=3)
    result = det.fit(sample.select(features)).compare(rows.select(features))
    if not result.importances:
        return {}
    return {f: float(i) for f, i in zip(result.features, result.importances, strict=True)}


def _quality(monitor: Monitor, model: str, ref: Any, rows: pa.Table, start: float,
             end: float) -> tuple[dict[str, Any], list[Suspect]]:
    """Findings on the window's raw rows, named by prediction id, and whether they are new."""
    cols = [c.name for c in ref.schema_.columns if c.role != Role.TARGET
            and c.name in rows.column_names]
    report = ref.check_quality(ref.profile(rows.select(cols)))
    before = monitor.series(model, "quality", start=start - (end - start), end=start)
    earlier = {(f["check"], f["column"]) for f in
               (before["points"][0]["value"] or {}).get("findings", [])}
    ids = rows.column("prediction_id").to_pylist()
    quarantined = [q for q in monitor.quarantined(model, limit=1000)
                   if start <= _instant(q["timestamp"]) < end]
    findings, suspects = [], []
    for f in report.findings:
        new = (f.check, f.column) not in earlier
        named = [ids[i] for i in f.examples if i < len(ids)]
        d = {"check": f.check, "column": f.column, "severity": f.severity, "count": f.count,
             "rate": f.rate, "new": new, "prediction_ids": named, "message": f.message}
        findings.append(d)
        hard = f.check in _HARD or f.severity == "error"
        score = (0.95 if hard else 0.5) * (1.0 if new else 0.6)
        suspects.append(Suspect("quality", f"{f.check}:{f.column}", score,
                                f"{f.message}{' (new in this window)' if new else ''}", d))
    if quarantined:
        by_field: dict[str, list[str]] = {}
        for q in quarantined:
            by_field.setdefault(q["field"], []).append(q["prediction_id"])
        for fld, pids in by_field.items():
            d = {"field": fld, "count": len(pids), "prediction_ids": pids[:20]}
            # one bad row in thousands is a fact to show, not the lead: weigh by its share
            share = len(pids) / max(len(pids) + rows.num_rows, 1)
            suspects.append(Suspect("quality", f"quarantined:{fld}",
                                    0.45 + 0.4 * min(1.0, share / 0.01),
                                    f"{len(pids)} row(s) rejected for {fld}", d))
    return {"findings": findings, "quarantined": len(quarantined)}, suspects


EXAMPLES = 5  # example prediction ids per slice: enough to open a few, few enough to read


def failing_slices(schema: Any, rows: pa.Table, top_k: int = 5, examples: int = EXAMPLES
                   ) -> tuple[int, list[dict[str, Any]]]:
    """(labelled rows, slices): where the model errs most on the rows' labelled part
    (error rate, or absolute error for regression); no slices under 50 labelled rows.

    Each slice of a tabular model carries ``example_ids``: at most ``examples`` prediction
    ids of its rows (:func:`example_ids`), so "the model fails on amount < 10" leads to the
    explained page of one such prediction."""
    from aiwarden.engine.slices import find_failing_slices

    if schema.task == Task.TEXT_GENERATION:
        return _unsafe_slices(schema, rows, top_k)
    pred = schema.column_for(Role.PREDICTION)
    if "label" not in rows.column_names or pred is None or pred not in rows.column_names:
        return 0, []
    labelled = rows.filter(rows.column("label").is_valid())
    if labelled.num_rows < 50:
        return labelled.num_rows, []
    # segment columns are candidates too: a slice may be exactly one segment
    feats = [c.name for c in schema.columns if c.role in (Role.FEATURE, Role.SEGMENT)
             and c.name in labelled.column_names]
    data = labelled.select(feats).to_pandas()
    y_pred = labelled.column(pred).to_pandas().astype(str)
    y_true = labelled.column("label").to_pandas().astype(str)
    if schema.task == Task.REGRESSION:
        errors = np.abs(y_true.astype(float).to_numpy() - y_pred.astype(float).to_numpy())
        report = find_failing_slices(data, errors=errors, features=feats, metric="abs_error",
                                     top_k=top_k)
    else:
        errors = (y_true.to_numpy() != y_pred.to_numpy()).astype(int)
        report = find_failing_slices(data, errors=errors, features=feats, top_k=top_k)
    out = [s.to_dict() for s in report.slices]
    if PID in labelled.column_names:
        ids = np.asarray(labelled.column(PID).to_numpy(zero_copy_only=False), object)
        candidates = labelled.select(feats)
        for d, s in zip(out, report.slices, strict=True):
            # "wrong": misclassified, or (regression) an error above the rest's mean
            wrong = errors > s.rest_value if schema.task == Task.REGRESSION else errors == 1
            in_slice = s.mask(candidates) & np.isfinite(errors)  # a regressor's unparsed label
            d["example_ids"] = example_ids(ids, in_slice, wrong, examples)
    return labelled.num_rows, out


def example_ids(ids: np.ndarray, in_slice: np.ndarray, wrong: np.ndarray, count: int,
                seed: int = 0) -> list[str]:
    """At most ``count`` ids of the slice's rows, preferring its wrong predictions: a
    seeded sample of them (the same window gives the same examples on every reload),
    topped up with right ones when fewer are wrong, listed in the window's order."""
    count = max(0, count)
    wrong_rows = np.flatnonzero(in_slice & wrong)
    rng = np.random.default_rng(seed)
    picked = rng.choice(wrong_rows, min(count, wrong_rows.size), replace=False)
    if picked.size < count:
        right_rows = np.flatnonzero(in_slice & ~wrong)
        picked = np.concatenate([picked, rng.choice(
            right_rows, min(count - picked.size, right_rows.size), replace=False)])
    return [str(i) for i in ids[np.sort(picked.astype(np.int64))]]


# Every LLM response is judged on arrival (no labels to wait for), and the slice finder's own
# tests guard small groups: 20 judged responses may name a slice, where an alert on unsafe
# answers fires after a few dozen (50, as for late labels, left the first analysis empty).
_MIN_JUDGED = 20


def _unsafe_slices(schema: Any, rows: pa.Table, top_k: int) -> tuple[int, list[dict[str, Any]]]:
    """An LLM's slices: where its responses are unsafe most (``llm_unsafe``), over its
    version, tags and provider model (prompt version x locale x channel); every row is
    judged, no labels needed. The descriptor columns themselves are no candidates (a slice
    "llm_unsafe_self_harm = 1" says nothing)."""
    from aiwarden.engine.slices import find_failing_slices

    if "llm_unsafe" not in rows.column_names or rows.num_rows < _MIN_JUDGED:
        return 0, []
    feats = [c.name for c in schema.columns
             if c.role == Role.SEGMENT or c.name == "llm_provider_model"]
    feats = [f for f in (*feats, "version") if f in rows.column_names]
    if not feats:
        return rows.num_rows, []
    unsafe = rows.column("llm_unsafe").to_numpy(zero_copy_only=False).astype(float)
    report = find_failing_slices(rows.select(feats).to_pandas(), features=feats, top_k=top_k,
                                 errors=np.nan_to_num(unsafe).astype(int))
    return rows.num_rows, [s.to_dict() for s in report.slices]


def _slices(ref: Any, rows: pa.Table) -> tuple[dict[str, Any], list[Suspect]]:
    """Where the model fails on the window's labelled rows."""
    labelled, slices = failing_slices(ref.schema_, rows)
    task = ref.schema_.task
    metric = ("unsafe_rate" if task == Task.TEXT_GENERATION else
              "abs_error" if task == Task.REGRESSION else "error_rate")
    if not slices:
        return {"labelled_rows": labelled, "metric": metric, "slices": []}, []
    # relative to the worst slice, not to the sum: more candidate columns (segments, tags)
    # must not dilute the slice that explains the drop below an unrelated drift
    worst = max(max(s["excess"], 0) for s in slices) or 1.0
    suspects = [Suspect("slice", s["description"], min(1.0, 0.4 + 0.6 * max(s["excess"], 0) /
                                                      worst),
                        f"{s['description']}: {slice_values(metric, s)} on "
                        f"{s['support']} rows", s)
                for s in slices]
    return {"labelled_rows": labelled, "metric": metric, "slices": slices}, suspects


def slice_values(metric: str, s: dict[str, Any]) -> str:
    """"error 75.4% vs 24.5% elsewhere": a rate in percent, a regressor's mean absolute
    error in the label's units (it read "error 250.6%" for an error of 2.506)."""
    if metric == "abs_error":
        return (f"mean absolute error {s['metric_value']:.3g} vs {s['rest_value']:.3g} "
                "elsewhere")
    what = "unsafe" if metric == "unsafe_rate" else "error"
    return f"{what} {s['metric_value']:.1%} vs {s['rest_value']:.1%} elsewhere"


def _output_name(role: str, column: str) -> str:
    """The output as the text names it: role and column ("score p1"), or the column alone
    when it names its role ("score", "fraud_score"): it read "the score score shifted"."""
    return column if role.lower() in column.lower() else f"{role} {column}"


def _prediction(drift: dict[str, Any]) -> tuple[dict[str, Any], list[Suspect]]:
    """Did what the model outputs shift? Evidence that drift reached the decisions."""
    outputs = drift.get("outputs", [])
    suspects = [Suspect("prediction", o["column"], 0.6,
                        f"the {_output_name(o['role'], o['column'])} shifted ({o['method']} "
                        f"{o['value']:.3g} > {o['threshold']:.3g})", o)
                for o in outputs if o["drifted"]]
    return {"columns": outputs, "shifted": [o["column"] for o in outputs if o["drifted"]]}, \
        suspects


def _changes(versions: list[Any], rules: list[Any], moves: list[Any], since: float,
             until: float, version: str | None = None
             ) -> tuple[list[dict[str, Any]], list[Suspect]]:
    """New versions, alias moves (promotions, rollbacks) and rules applied in the look-back.

    An alias move changes what answers requests, so it is the strongest of these
    suspects, the more so the closer it came before the end of the window, and most of all
    when it moved onto ``version``, the one analysed: that is when it started answering."""
    label = {v.id: v.version for v in versions}
    out: list[dict[str, Any]] = []
    for v in versions:
        if since <= v.created_at <= until:
            out.append({"kind": "model_version", "name": v.version, "at": to_iso(v.created_at)})
    for e in moves:
        out.append({"kind": "alias", "name": e.alias, "at": to_iso(e.at), "move": e.kind,
                    "from": label.get(e.from_version_id), "to": label.get(e.to_version_id),
                    "actor": e.actor, "reason": e.reason, "_at": e.at})
    for r in rules:
        if since <= r.updated_at <= until and r.source != "default":
            out.append({"kind": "rule", "name": f"{r.model}/{r.name}",
                        "at": to_iso(r.updated_at)})
    suspects = []
    span = max(until - since, 1.0)
    # when ``version`` last became what an alias serves (a later rollback onto it counts: the
    # promotion before that one no longer explains what it answers)
    onto_last = {}
    for c in out:
        if c["kind"] == "alias" and version is not None and c["to"] == version:
            onto_last[c["name"]] = max(onto_last.get(c["name"], c["_at"]), c["_at"])
    for c in out:
        if c["kind"] == "model_version":
            suspects.append(Suspect("change", f"model_version:{c['name']}", 0.3,
                                    f"model version {c['name']} registered at {c['at']}", c))
        elif c["kind"] == "alias" and c["move"] != "rollback":
            at = c.pop("_at")
            recency = 1.0 - (until - at) / span
            onto = c["to"] == version and onto_last.get(c["name"]) == at
            suspects.append(Suspect(
                "change", f"alias:{c['name']}", (0.6 if onto else 0.4) + 0.3 * recency,
                f"{c['name']} moved {c['from'] or '(unset)'} -> {c['to'] or '(removed)'} "
                f"({c['move']} by {c['actor']}) at {c['at']}: {c['reason']}", c))
        c.pop("_at", None)
    return out, suspects
