"""REST API for rules and alerts (docs/alerting.md)."""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from aiwarden import _yaml as bounded_yaml
from aiwarden._json import non_finite
from aiwarden.alerting.apply import (
    apply_rules,
    field_changes,
    notification_changes,
    rule_spec,
)
from aiwarden.alerting.rules import load_rules
from aiwarden.errors import ParameterError
from aiwarden.llm.prices import parse_prices
from aiwarden.monitoring import confusion, llm_cost
from aiwarden.monitoring.windows import parse_instant, to_iso
from aiwarden.server.access import monitor as _monitor
from aiwarden.server.access import requires
from aiwarden.server.api_models import (
    AlertInstance,
    Applied,
    Evaluation,
    RcaReport,
    RuleFile,
    RuleSpec,
    RuleWritten,
    Status,
    StoredRule,
    answers,
    body_doc,
)
from aiwarden.server.errors import Malformed
from aiwarden.server.jsonbody import MAX_DEPTH, json_body, lone_surrogate
from aiwarden.server.jsonbody import _is_json as is_json
from aiwarden.server.pipeline_apply import apply_pipelines, check_pipelines
from aiwarden.store import alerts_repo as repo
from aiwarden.store.models_repo import NotFound

__all__ = ["router"]

router = APIRouter()
_NOTIFY_KEYS = ("route", "receivers", "inhibit_rules", "escalation_policies")
_NOTIFY_EMPTY: dict[str, Any] = {"route": None, "receivers": [], "inhibit_rules": [],
                                 "escalation_policies": {}}


def _or_default(key: str, value: Any) -> Any:
    """A notification section of a rule file, its empty values (null, false, 0, "", [],
    read as none) stored as the section's default: GET /notifications/config answered the
    ``null`` it stored where its document says a list (schemathesis ST108, 2026-12-06)."""
    empty = value is None or value is False or value == "" or value == [] or (
        isinstance(value, int | float) and value == 0)
    return copy.deepcopy(_NOTIFY_EMPTY[key]) if empty else value


@router.get("/rules", dependencies=[requires("read")],
            tags=["alerting"], responses=answers(list[StoredRule]))
def list_rules(request: Request, model: str | None = None) -> list[dict[str, Any]]:
    """Rules that apply to ``model`` (its own and ``*``), or every rule."""
    mon = _monitor(request)
    with mon.db.read() as conn:
        return [{"model": r.model, "name": r.name, "source": r.source, "rule": r.spec,
                 "updated_at": to_iso(r.updated_at)} for r in repo.list_rules(conn, model)]


@router.put("/rules/{model}/{name}", dependencies=[requires("admin")],
            tags=["alerting"], responses=answers(RuleWritten),
            openapi_extra=body_doc(json=RuleSpec))
async def put_rule(request: Request, model: str, name: str) -> dict[str, Any]:
    mon = _monitor(request)
    body = (await json_body(request, RuleSpec)).model_dump()
    rule = load_rules({"rules": [body | {"model": model, "name": name}]}, "rule").rules[0]
    confusion.check_rule(mon, rule)  # pair / class: names of the model's classes
    with mon.db.write() as conn:
        status = repo.upsert_rule(conn, model, name, rule_spec(rule), "api")
    return {"status": status, "rule": rule_spec(rule)}


@router.delete("/rules/{model}/{name}", dependencies=[requires("admin")],
               tags=["alerting"], responses=answers(Status))
def delete_rule(request: Request, model: str, name: str) -> dict[str, Any]:
    mon = _monitor(request)
    with mon.db.write() as conn:
        if not repo.delete_rule(conn, model, name):
            raise NotFound(f"No rule {name!r} for model {model!r}.", "name")
    return {"status": "deleted"}


def _no_lone_surrogates(value: Any, where: str) -> None:
    """YAML may spell a lone surrogate ("\\ud8b4"): refuse it by its field, as the JSON
    routes' parser does, before it reaches the store (it was a 500)."""
    at = lone_surrogate(value, where)
    if at is not None:
        raise ParameterError(f"{at if at != 'body' else 'rule file'}: the text holds a lone "
                             "UTF-16 surrogate, which is not text.", at)


@router.post("/rules/apply", dependencies=[requires("admin")],
             tags=["alerting"], responses=answers(Applied),
             openapi_extra=body_doc("application/yaml", json=RuleFile))
async def apply(request: Request, dry_run: bool = Query(False)) -> dict[str, Any]:
    """Make the stored rules match a rule file (YAML or JSON body); idempotent."""
    mon = _monitor(request)
    text = (await request.body()).decode("utf-8", errors="replace")
    if not text.strip():  # an empty file is a mistake, not "delete every rule"
        raise ParameterError("The body is empty: send a rule file (YAML or JSON).", "body")
    doc = _rule_file(text, request.headers.get("content-type"))
    if doc is not _UNREADABLE:
        if not isinstance(doc, dict):  # null too: an empty file is not "no rules"
            raise ParameterError("rule file: expected a mapping with a 'rules' list.", "rules")
        _no_lone_surrogates(doc, "")
    notify = {k: _or_default(k, doc.pop(k)) for k in _NOTIFY_KEYS if k in doc} \
        if isinstance(doc, dict) else {}
    rollback = _rollback_policies(doc.pop("rollback_policies", None)) \
        if isinstance(doc, dict) else []
    prices = doc.pop("llm_prices", None) if isinstance(doc, dict) else None
    if prices is not None:  # checked before anything is written
        prices = {k: p.to_dict() for k, p in parse_prices(prices, "llm_prices").items()}
    guardrails = doc.pop("guardrails", None) if isinstance(doc, dict) else None
    if guardrails is not None:  # checked (fields, categories, egress) before anything is written
        from aiwarden.server.guardrail_routes import check_policies

        guardrails = check_policies(request.app, guardrails)
    pipelines = check_pipelines(request, doc.pop("pipelines", None)) \
        if isinstance(doc, dict) else []  # checked (fields, consent to run code) first
    ruleset = load_rules(doc if isinstance(doc, dict) else text, "rule file")
    for i, rule in enumerate(ruleset.rules):  # pair / class: names of the model's classes
        confusion.check_rule(mon, rule, f"rules[{i}].")
    center = request.app.state.notifications
    center.refresh()  # the diff is against what is stored now, by any process
    merged = {**center.config, **notify} if notify else None
    notify_diff: list[dict[str, Any]] = []
    if merged is not None:
        # a dry run and the apply check receivers the same way (egress policy included),
        # and the apply checks them before it writes any rule
        desired = center.configure(merged, dry_run=True)
        notify_diff = notification_changes(center.describe(), desired, center.config, merged)
    with mon.db.write() as conn:
        plan = apply_rules(conn, ruleset, dry_run=dry_run)
        if prices is not None:  # the file owns the server's price overrides
            fields = field_changes(llm_cost.get_overrides(conn), prices)
            if fields:
                plan.diff.append({"kind": "llm_prices", "name": "llm_prices",
                                  "action": "update", "fields": fields})
            if not dry_run:
                llm_cost.set_overrides(conn, prices)
        if guardrails:  # the policies of the models the file names
            from aiwarden.server.guardrail_routes import apply_policies

            plan.diff += apply_policies(conn, guardrails, dry_run)
    plan.diff += notify_diff
    if pipelines:
        plan.diff += apply_pipelines(request, pipelines, dry_run)
    if rollback:  # each policy the file names, against the one stored
        stored = request.app.state.rollbacks.policies()
        for policy in rollback:
            old = stored.get(policy.model)
            fields = field_changes({} if old is None else old.model_dump(mode="json"),
                                   policy.model_dump(mode="json"))
            if fields:
                plan.diff.append({"kind": "rollback_policy", "name": policy.model,
                                  "action": "create" if old is None else "update",
                                  "fields": fields})
    if not dry_run:
        if merged is not None:
            center.configure(merged)
        for policy in rollback:
            request.app.state.rollbacks.set_policy(policy)
    return {"dry_run": dry_run, **plan.to_dict(), "notifications": sorted(notify),
            "rollback_policies": [p.model for p in rollback],
            "llm_prices": None if prices is None else sorted(prices),
            "guardrails": None if guardrails is None else sorted(n for n, _ in guardrails),
            "pipelines": sorted(p.model for p in pipelines)}


_UNREADABLE = object()


def _rule_file(text: str, content_type: str | None) -> Any:
    """The rule file's document; :data:`_UNREADABLE` when the YAML does not parse
    (``load_rules`` then reports the error with its position). A JSON body is read as
    JSON: YAML 1.1 (PyYAML) reads the JSON numbers 1e-05 and 1E+20 as text and the escaped
    pair "\\ud83d\\ude00" as two lone surrogates, so a schema-valid price or p-value was
    refused."""
    try:
        if is_json(content_type):
            try:  # Python's json, as FastAPI reads bodies: integers of any size stay exact
                return json.loads(text, parse_constant=_not_json)
            except _NotJson:  # NaN or Infinity: the field holding it
                field, message = non_finite(text) or ("body", "NaN is not a JSON number.")
                raise Malformed(message, field) from None
            except json.JSONDecodeError as exc:
                raise Malformed(f"Malformed JSON at line {exc.lineno}, column {exc.colno}: "
                                f"{exc.msg}.", "body") from None
        try:
            return bounded_yaml.safe_load(text)
        except yaml.YAMLError:
            return _UNREADABLE
    except RecursionError:
        raise Malformed(f"The body is nested deeper than {MAX_DEPTH} levels.", "body") from None


class _NotJson(ValueError):
    pass


def _not_json(literal: str) -> Any:
    raise _NotJson(literal)


def _rollback_policies(specs: Any) -> list[Any]:
    """``rollback_policies:`` of a rule file: a list of policies, each naming its model."""
    from aiwarden.incidents.rollback import parse_policy

    if specs is None:
        return []
    if not isinstance(specs, list):
        raise ParameterError("rollback_policies: expected a list of policies.",
                             "rollback_policies")
    return [parse_policy(s if isinstance(s, dict) else {}, f"rollback_policies[{i}]")
            for i, s in enumerate(specs)]


@router.get("/models/{name}/alerts", dependencies=[requires("read")],
            tags=["alerting"], responses=answers(list[AlertInstance]))
def model_alerts(request: Request, name: str, events: int = Query(20, ge=0, le=1000)
                 ) -> list[dict[str, Any]]:
    """Every alert instance of the model with its state and latest transitions."""
    mon = _monitor(request)
    m = mon.model(name)
    with mon.db.read() as conn:
        rules = {r.id: r for r in repo.list_rules(conn, name)}
        out = []
        for inst in repo.list_instances(conn, m.id):
            rule = rules.get(inst.rule_id)
            history = repo.events_of(conn, inst.id)[-events:] if events else []
            out.append({"labels": inst.labels, "state": inst.state,
                        "rule": rule.spec if rule else None,
                        "runbook": (rule.spec.get("runbook") if rule else None),
                        "events": history})
    return out


def _cycle(app: Any, at: float | None) -> tuple[Any, Any]:
    """A cycle and its hand-over, under the lock the evaluation loop takes too."""
    with app.state.evaluator.lock:
        report = app.state.evaluator.evaluate_once(at)
        return report, app.state.after_cycle(report)


@router.post("/alerts/evaluate", dependencies=[requires("operate")],
             tags=["alerting"], responses=answers(Evaluation))
async def evaluate_now(request: Request, now: str | None = None) -> dict[str, Any]:
    """Run one evaluation cycle now (when this process holds the evaluator lease); ``now``
    (ISO 8601 or epoch seconds) evaluates as of another time, for backfills and tests."""
    _monitor(request)
    at = None if now in (None, "") else parse_instant(now, "now")
    report, touched = await run_in_threadpool(_cycle, request.app, at)
    return {"incidents": [i.id for i in touched], "evaluated": report.evaluated,
            "instances": report.instances,
            "errors": report.errors, "seconds": round(report.seconds, 4),
            "transitions": [{"labels": labels, "kind": e.kind, "severity": e.severity,
                             "value": e.value, "at": to_iso(e.at)}
                            for labels, e in report.transitions]}



@router.get("/models/{name}/rca", dependencies=[requires("read")],
            tags=["alerting"], responses={200: {
                "model": RcaReport,
                "content": {"text/markdown": {"schema": {"type": "string"}}}}})
def root_cause(request: Request, name: str, start: str | None = None, end: str | None = None,
               lookback: str = "7d", format: str = Query("json", pattern="^(json|markdown)$"),
               ) -> Any:
    """Ranked suspects with evidence for a window (default: the last hour)."""
    from fastapi.responses import PlainTextResponse

    from aiwarden.rca import analyse, to_markdown
    from aiwarden.server.explain_routes import explanations_for

    mon = _monitor(request)
    report = analyse(mon, name, start=start or None, end=end or None,  # "": the default
                     lookback=lookback or "7d",
                     importance=explanations_for(request.app).reference_importance)
    if format == "markdown":
        return PlainTextResponse(to_markdown(report), media_type="text/markdown")
    return report
