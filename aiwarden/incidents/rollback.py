"""Automated rollback: a bad alert on a freshly promoted version moves its alias back.

A policy per model says which alerts may roll back (a minimum severity, optionally only
some rules), which alias (``champion`` by default) and how recent a promotion must be to
be blamed (``lookback``): a version that served well for a week is not rolled back by a
drift alert, someone should look first. The move is a compare-and-set on the alias
(the registry refuses it if someone moved the alias meanwhile), recorded in the alias
history as ``rollback`` with the rule, the value and the version it left.

A rollback is verified: the rule that triggered it is evaluated again on the restored
version after ``verify_for``, and the verdict (recovered, still breaching, no data) is
reported to whoever records it on the incident timeline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aiwarden._validation import validated
from aiwarden.alerting.state import Transition
from aiwarden.errors import ParameterError
from aiwarden.incidents.canary import CanaryCompare, Split, compare_rates, live_split
from aiwarden.incidents.verify import Verdict, judge
from aiwarden.monitoring.service import Monitor
from aiwarden.monitoring.windows import parse_duration
from aiwarden.store import kv
from aiwarden.store.models_repo import Conflict, NotFound

__all__ = ["RollbackPolicy", "Rollbacks", "Rolled", "Verdict"]

log = logging.getLogger("aiwarden.rollback")
POLICIES, PENDING = "rollback.policies", "rollback.pending"
_RANK = {"warning": 1, "critical": 2}
_FIRING = {"firing", "escalated", "refiring"}


class RollbackPolicy(BaseModel):
    # strict: false is not 0.0 and "1" not True, as the OpenAPI document says
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    model: str = Field(min_length=1, max_length=200)
    alias: str = "champion"
    severity: Literal["warning", "critical"] = "critical"
    rules: list[str] | None = None  # None: any rule of the model
    lookback: str = "1h"  # only a version the alias moved to this recently is blamed
    verify_for: str = "15m"  # how long after the rollback the metric is checked again
    compare: CanaryCompare | None = None  # also stop a canary that is measurably worse
    enabled: bool = True

    @field_validator("lookback", "verify_for")
    @classmethod
    def _duration(cls, v: str) -> str:
        parse_duration(v, "duration")
        return v


def parse_policy(spec: Mapping[str, Any], where: str = "") -> RollbackPolicy:
    """A checked policy; the error names the field (``where.field`` inside a file)."""
    return validated(RollbackPolicy, spec, where, what="policy")


@dataclass(frozen=True)
class Rolled:
    """One rollback done: what moved, why, and when to check it worked."""

    model: str
    alias: str
    from_version: str
    to_version: str
    rule: str | None
    value: float | None
    reason: str
    actor: str
    at: float
    verify_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Rollbacks:
    def __init__(self, monitor: Monitor, registry: Callable[[], Any]) -> None:
        self.monitor, self._registry = monitor, registry

    # --------------------------------------------------------------- policies
    def policies(self) -> dict[str, RollbackPolicy]:
        with self.monitor.db.read() as conn:
            stored = kv.get(conn, POLICIES, {})
        return {m: RollbackPolicy.model_validate(p) for m, p in stored.items()}

    def set_policy(self, policy: RollbackPolicy) -> None:
        with self.monitor.db.write() as conn:
            stored = kv.get(conn, POLICIES, {})
            stored[policy.model] = policy.model_dump()
            kv.put(conn, POLICIES, stored)

    def delete_policy(self, model: str) -> bool:
        with self.monitor.db.write() as conn:
            stored = kv.get(conn, POLICIES, {})
            found = stored.pop(model, None) is not None
            kv.put(conn, POLICIES, stored)
        return found

    # -------------------------------------------------------------- automatic
    def on_transitions(self, transitions: Iterable[tuple[Mapping[str, str], Transition]],
                       now: float | None = None) -> list[Rolled]:
        """Roll back where a policy says a firing alert condemns a new version."""
        now = time.time() if now is None else now
        policies = self.policies()
        done: list[Rolled] = []
        for labels, tr in transitions:
            p = policies.get(labels.get("model", ""))
            if (p is None or not p.enabled or tr.kind not in _FIRING
                    or _RANK.get(tr.severity or "", 0) < _RANK[p.severity]
                    or (p.rules is not None and labels.get("rule") not in p.rules)
                    or any(d.model == p.model for d in done)):
                continue
            rolled = self._automatic(p, labels, tr, now)
            if rolled is not None:
                done.append(rolled)
        return done

    def _automatic(self, p: RollbackPolicy, labels: Mapping[str, str], tr: Transition,
                   now: float) -> Rolled | None:
        reg = self._registry()
        if reg is None:
            return None
        current = reg.aliases(p.model).get(p.alias)
        if current is not None and labels.get("version") != current:
            split = live_split(reg, p.model, p.alias)
            if split is None or labels.get("version") != split.challenger:
                return None  # the alert is about a version that serves nobody
            value = "no value" if tr.value is None else f"{tr.value:.4g}"
            return self._stop_split(p, split, f"automatic rollback of the {split.mode}: rule "
                                    f"{labels.get('rule')} fired {tr.severity} ({value}) on "
                                    f"version {split.challenger}", now,
                                    rule=labels.get("rule"), value=tr.value)
        if current is None:
            return None
        moves = reg.history(p.model, p.alias, limit=1)
        if not moves or moves[0].at < now - parse_duration(p.lookback, "lookback"):
            return None  # not a fresh promotion: a person decides
        value = "no value" if tr.value is None else f"{tr.value:.4g}"
        reason = (f"automatic rollback: rule {labels.get('rule')} fired {tr.severity} "
                  f"({value}) on version {current}, promoted "
                  f"{(now - moves[0].at) / 60:.0f} min ago")
        return self._move(p.model, p.alias, current, None, reason, "aiwarden", now,
                          rule=labels.get("rule"), value=tr.value, verify_for=p.verify_for)

    # ----------------------------------------------------------------- canaries
    def check_canaries(self, now: float | None = None) -> list[Rolled]:
        """Stop every canary / A-B split its policy's comparison finds worse."""
        now = time.time() if now is None else now
        done = []
        for p in self.policies().values():
            if not p.enabled or p.compare is None:
                continue
            reg = self._registry()
            split = None if reg is None else live_split(reg, p.model, p.alias)
            if split is None:
                continue
            c = p.compare
            start = now - parse_duration(c.window, "window")
            result = compare_rates(self._rate(p.model, split.champion, c.metric, start, now),
                                   self._rate(p.model, split.challenger, c.metric, start, now),
                                   alpha=c.alpha, min_effect=c.min_effect,
                                   min_samples=c.min_samples)
            if result is not None and result.worse:
                rolled = self._stop_split(p, split, "automatic rollback of the "
                                          f"{split.mode}: {result.text(c.metric)}", now,
                                          rule=None, value=result.p_value)
                if rolled is not None:
                    done.append(rolled)
        return done

    def _rate(self, model: str, version: str, metric: str, start: float, end: float
              ) -> tuple[int, int]:
        """(bad, total): failed events among all, or wrong answers among labelled ones."""
        _, d = self.monitor.window(model, start, end, version)
        if metric == "error_rate":
            return d.errors, d.rows
        perf = None if d.profile is None else d.profile.performance
        confusion = getattr(perf, "confusion", None)
        if confusion is None:
            return 0, 0
        total = int(confusion.sum())
        return total - int(confusion.trace()), total

    def _stop_split(self, p: RollbackPolicy, split: Split, reason: str, now: float, *,
                    rule: str | None, value: float | None) -> Rolled | None:
        """All traffic back to the champion; an alias the split followed returns there too."""
        from aiwarden.gateway.policies import PolicyStore

        reg = self._registry()
        alias = split.target[1:] if split.target.startswith("@") else None
        if alias is not None:
            try:
                reg.set_alias(p.model, alias, split.champion, reason=reason, actor="aiwarden",
                              kind="rollback", expected=split.challenger)
            except Conflict as exc:
                log.warning("rollback of %s@%s skipped: %s", p.model, alias, exc)
                return None
        PolicyStore(reg).set(p.model, {"mode": "off"}, actor="aiwarden", reason=reason)
        return self._pending(Rolled(
            p.model, alias or f"{split.mode}:{split.target}", split.challenger,
            split.champion, rule, value, reason, "aiwarden", now,
            now + parse_duration(p.verify_for, "verify_for")))

    def _pending(self, rolled: Rolled) -> Rolled:
        with self.monitor.db.write() as conn:
            kv.put(conn, PENDING, [*kv.get(conn, PENDING, []), rolled.to_dict()])
        log.info("rolled %s@%s back from %s to %s: %s", rolled.model, rolled.alias,
                 rolled.from_version, rolled.to_version, rolled.reason)
        return rolled

    # ------------------------------------------------------------------ manual
    def rollback(self, model: str, alias: str = "champion", *, to: str | None = None,
                 reason: str, actor: str, now: float | None = None) -> Rolled:
        """By hand (``aiwarden rollback``): to the previous version, or to ``to``."""
        reg = self._registry()
        if reg is None:
            raise ParameterError("No model registry is configured on this server.", "model")
        current = reg.aliases(model).get(alias)
        if current is None:
            raise NotFound(f"Model {model!r} has no alias {alias!r}.", "alias")
        policy = self.policies().get(model)
        rolled = self._move(model, alias, current, to, reason, actor,
                            time.time() if now is None else now, rule=None, value=None,
                            verify_for=policy.verify_for if policy else "15m")
        if rolled is None:
            raise Conflict(f"{model}@{alias} already points at {to}.", "to")
        return rolled

    def _move(self, model: str, alias: str, current: str, to: str | None, reason: str,
              actor: str, now: float, *, rule: str | None, value: float | None,
              verify_for: str) -> Rolled | None:
        reg = self._registry()
        if to is None:
            prev, last, why_not = reg.rollback_target(model, alias)
            if prev is None:  # never moved, or already rolled back: never redeploy the bad one
                if rule is None:
                    error = Conflict if last is not None and last.kind == "rollback" else NotFound
                    raise error(f"{model}@{alias}: {why_not} Name a version with --to.", "to")
                return None
            to = prev.version
        try:
            event = reg.set_alias(model, alias, to, reason=reason, actor=actor,
                                  kind="rollback", expected=current)
        except Conflict as exc:  # someone moved it first: theirs stands
            if rule is None:
                raise
            log.warning("rollback of %s@%s skipped: %s", model, alias, exc)
            return None
        if event is None:
            return None
        return self._pending(Rolled(model, alias, current, to, rule, value, reason, actor,
                                    now, now + parse_duration(verify_for, "verify_for")))

    # ------------------------------------------------------------ verification
    def verify_due(self, now: float | None = None) -> list[Verdict]:
        """Check the rollbacks whose wait is over; each is judged once."""
        now = time.time() if now is None else now
        with self.monitor.db.read() as conn:
            pending = [Rolled(**r) for r in kv.get(conn, PENDING, [])]
        due = [r for r in pending if r.verify_at <= now]
        if not due:
            return []
        verdicts = [judge(self.monitor, r, now) for r in due]
        with self.monitor.db.write() as conn:  # others may have been added meanwhile
            keep = [r for r in kv.get(conn, PENDING, [])
                    if Rolled(**r) not in due]
            kv.put(conn, PENDING, keep)
        return verdicts
