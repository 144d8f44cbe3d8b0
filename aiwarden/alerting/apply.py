"""``aiwarden apply``: make the stored rules match a rule file, and say what changed.

Idempotent: applying the same file twice changes nothing the second time. A file owns
the models it names: their rules that came from an earlier apply and are no longer in
the file are deleted, so one file per model (or team) does not clobber another. Default
rules and rules set over the API are left alone unless the file names them (then the
file wins).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from aiwarden.alerting.rules import RuleSet
from aiwarden.store import alerts_repo as repo

__all__ = ["Plan", "apply_rules", "field_changes", "notification_changes", "rule_spec"]


def rule_spec(rule: Any) -> dict[str, Any]:
    """The stored form: only what differs from the defaults, so edits diff cleanly."""
    return rule.model_dump(by_alias=True, exclude_defaults=True, mode="json") | {
        "model": rule.model}


@dataclass
class Plan:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # per rule created, updated or deleted: {kind, name, action, fields: [{field, current,
    # desired}]}, so a dry run shows what would change, not only which rules
    diff: list[dict[str, Any]] = field(default_factory=list)

    @property
    def changes(self) -> int:
        return len(self.created) + len(self.updated) + len(self.deleted)

    def to_dict(self) -> dict[str, list[Any]]:
        return {"created": self.created, "updated": self.updated, "deleted": self.deleted,
                "unchanged": self.unchanged, "diff": self.diff}


_ABSENT = object()


def field_changes(current: Any, desired: Any, path: str = "") -> list[dict[str, Any]]:
    """``[{field, current, desired}]`` for every field that differs; nested mappings by
    dotted path (``labels.team``), other values whole. Absent is ``None``."""
    if isinstance(current, Mapping) and desired is _ABSENT:
        desired = {}  # a mapping that goes: each of its fields goes
    if current is _ABSENT and isinstance(desired, Mapping):
        current = {}
    if isinstance(current, Mapping) and isinstance(desired, Mapping):
        out = []
        for k in sorted(set(current) | set(desired), key=str):
            sub = f"{path}.{k}" if path else str(k)
            out += field_changes(current.get(k, _ABSENT), desired.get(k, _ABSENT), sub)
        return out
    if current == desired:
        return []
    return [{"field": path, "current": None if current is _ABSENT else current,
             "desired": None if desired is _ABSENT else desired}]


def _change(kind: str, name: str, current: Any, desired: Any) -> dict[str, Any] | None:
    action = "create" if current is None else "delete" if desired is None else "update"
    fields = field_changes(current or {}, desired or {})
    return {"kind": kind, "name": name, "action": action, "fields": fields} \
        if fields or action != "update" else None


def notification_changes(current: Mapping[str, Any], desired: Mapping[str, Any],
                         raw_current: Mapping[str, Any], raw_desired: Mapping[str, Any]
                         ) -> list[dict[str, Any]]:
    """What a rule file changes in receivers (by name), the route, inhibit rules and
    escalation policies. ``current``/``desired`` are described configs (secrets as
    ``***``); a receiver whose stored settings differ where only a secret shows says so."""
    out = []
    cur = {r["name"]: r for r in current.get("receivers") or []}
    new = {r["name"]: r for r in desired.get("receivers") or []}
    raw_cur = {r.get("name"): r for r in raw_current.get("receivers") or []}
    raw_new = {r.get("name"): r for r in raw_desired.get("receivers") or []}
    for name in sorted(set(cur) | set(new)):
        c = _change("receiver", name, cur.get(name), new.get(name))
        if c is None and raw_cur.get(name) != raw_new.get(name):
            c = {"kind": "receiver", "name": name, "action": "update", "fields": [
                {"field": "(secret)", "current": "***", "desired": "*** (changed)"}]}
        if c is not None:
            out.append(c)
    for key in ("route", "inhibit_rules", "escalation_policies"):
        fields = field_changes({key: current.get(key)}, {key: desired.get(key)})
        if fields:
            out.append({"kind": key, "name": key, "action": "update", "fields": fields})
    return out


def apply_rules(conn: Connection, ruleset: RuleSet, *, dry_run: bool = False) -> Plan:
    plan = Plan()
    stored = {(r.model, r.name): r for r in repo.list_rules(conn)}
    wanted = set()
    for rule in ruleset.rules:
        key = (rule.model, rule.name)
        wanted.add(key)
        spec = rule_spec(rule)
        label = f"{rule.model}/{rule.name}"
        old = stored.get(key)
        if old is not None and old.spec == spec and old.source == "apply":
            plan.unchanged.append(label)
            continue
        (plan.created if old is None else plan.updated).append(label)
        change = _change("rule", label, None if old is None else old.spec, spec)
        if change is not None and old is not None and old.source != "apply":
            change["fields"].append({"field": "(source)", "current": old.source,
                                     "desired": "apply"})
        plan.diff.append(change or {"kind": "rule", "name": label, "action": "update",
                                       "fields": [{"field": "(source)", "current":
                                                   old.source, "desired": "apply"}]})
        if not dry_run:
            repo.upsert_rule(conn, rule.model, rule.name, spec, "apply")
    owned = {model for model, _ in wanted}
    for key, old in stored.items():
        if old.source == "apply" and key[0] in owned and key not in wanted:
            plan.deleted.append(f"{key[0]}/{key[1]}")
            plan.diff.append(_change("rule", f"{key[0]}/{key[1]}", old.spec, None))
            if not dry_run:
                repo.delete_rule(conn, *key)
    return plan
