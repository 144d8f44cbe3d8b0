"""Did the rollback help? The rule that triggered it, judged again on the restored version.

Only the time since the rollback counts (the restored version's data from before it says
nothing about the rollback), over at most the rule's own window.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from aiwarden.alerting.rules import Rule, payload_metric, rule_value
from aiwarden.monitoring import metrics
from aiwarden.monitoring.service import Monitor
from aiwarden.store import alerts_repo

if TYPE_CHECKING:
    from aiwarden.incidents.rollback import Rolled

__all__ = ["Verdict", "judge"]

log = logging.getLogger("aiwarden.rollback")


@dataclass(frozen=True)
class Verdict:
    rolled: Rolled
    outcome: Literal["recovered", "still breaching", "no data"]
    value: float | None

    def text(self) -> str:
        r = self.rolled
        what = f"{r.rule} on version {r.to_version}" if r.rule else f"version {r.to_version}"
        shown = "no value" if self.value is None else f"{self.value:.4g}"
        return {"recovered": f"Rollback verified: {what} is back within its threshold "
                             f"({shown}).",
                "still breaching": f"Rollback did not help: {what} still breaches ({shown}).",
                "no data": f"Rollback unverified: no data for {what} since the rollback."
                }[self.outcome]


def judge(monitor: Monitor, r: Rolled, now: float) -> Verdict:
    """Recovered, still breaching, or no data: the rule on the version now serving."""
    rule = _rule(monitor, r.model, r.rule)
    if rule is None:  # a manual rollback: judge the traffic, not a rule
        _, data = monitor.window(r.model, r.at, now, r.to_version)
        return Verdict(r, "recovered" if data.rows else "no data", float(data.rows))
    start = max(r.at, now - rule.window_seconds)
    try:
        ref, data = monitor.window(r.model, start, now, r.to_version)
        metric = payload_metric(rule.metric)
        value = rule_value(rule.model_copy(update={"relative_to": None}),
                           metrics.compute(metric, ref, data))
        if rule.relative_to == "reference" and value is not None and ref is not None:
            base = (ref.realised_performance(ref.profile_) or {}).get(rule.stat_name)
            value = rule_value(rule, metrics.compute(metric, ref, data), base)
    except Exception as exc:
        log.warning("verifying the rollback of %s failed: %s", r.model, exc)
        value = None
    if value is None:
        return Verdict(r, "no data", None)
    bad = rule.condition().level(value, None) is not None
    return Verdict(r, "still breaching" if bad else "recovered", value)


def _rule(monitor: Monitor, model: str, name: str | None) -> Rule | None:
    if name is None:
        return None
    with monitor.db.read() as conn:
        for sr in alerts_repo.list_rules(conn, model):
            if sr.name == name:
                return Rule.model_validate(sr.spec)
    return None
