"""``aiwarden apply``: make the stored rules match a rule file, and say what changed.

Idempotent: applying the same file twice changes nothing the second time. A file owns
the models it names: their rules that came from an earlier apply and are no longer in
the file are deleted, so one file per model (or team) does not clobber another. Default
rules and rules set over the API are left alone unless the file names them (then the
file wins).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from aiwarden.alerting.rules import RuleSet
from aiwarden.store import alerts_repo as repo

__all__ = ["Plan", "apply_rules", "rule_spec"]


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

    @property
    def changes(self) -> int:
        return len(self.created) + len(self.updated) + len(self.deleted)

    def to_dict(self) -> dict[str, list[str]]:
        return {"created": self.created, "updated": self.updated, "deleted": self.deleted,
                "unchanged": self.unchanged}


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
        if not dry_run:
            repo.upsert_rule(conn, rule.model, rule.name, spec, "apply")
    owned = {model for model, _ in wanted}
    for key, old in stored.items():
        if old.source == "apply" and key[0] in owned and key not in wanted:
            plan.deleted.append(f"{key[0]}/{key[1]}")
            if not dry_run:
                repo.delete_rule(conn, *key)
    return plan
