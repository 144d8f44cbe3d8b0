"""When a pipeline should run: pure decisions over the spec, the clock and its bookkeeping.

Automatic triggers (schedule, alert, label volume) share one cooldown: after an automatic
run was queued, none other is for ``triggers.cooldown``, whatever fires (ten drift alerts, a
cron slot and a label milestone in one hour make one run). Each trigger also dedupes on its
kind: while a run of that kind is queued or running, another is not queued.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiwarden.monitoring.windows import parse_duration
from aiwarden.training.schedule import due_between
from aiwarden.training.spec import PipelineSpec

__all__ = ["alert_runs", "scheduled_runs"]

Queued = tuple[str, dict[str, Any], str]  # (trigger, detail, dedupe key)


def _cooling(spec: PipelineSpec, now: float, last_auto: float | None) -> bool:
    return last_auto is not None and now - last_auto < parse_duration(
        spec.triggers.cooldown, "triggers.cooldown")


def alert_runs(spec: PipelineSpec, rules: Sequence[str], now: float,
               last_auto: float | None) -> list[Queued]:
    """One run for the alerts that fired in a cycle, if any of them is a trigger."""
    wanted = spec.triggers.on_alerts
    hits = sorted({r for r in rules if r and ("*" in wanted or r in wanted)})
    if not spec.enabled or not hits or _cooling(spec, now, last_auto):
        return []
    return [("alert", {"rules": hits, "why": f"{', '.join(hits)} fired"}, "auto")]


def scheduled_runs(spec: PipelineSpec, state: dict[str, Any], now: float,
                   last_auto: float | None, labels_total: int
                   ) -> tuple[list[Queued], dict[str, Any]]:
    """(runs to queue, the new bookkeeping): the latest missed cron slot, and a run each
    time ``label_volume`` new labelled events arrived since the last labels run."""
    state = dict(state)
    out: list[Queued] = []
    t = spec.triggers
    if t.schedule:
        since = float(state.get("schedule_checked", now))  # a new pipeline starts from now
        slot = due_between(t.schedule, since, now)
        state["schedule_checked"] = now
        if slot is not None and spec.enabled:
            out.append(("schedule", {"slot": slot, "cron": t.schedule,
                                     "why": f"cron {t.schedule!r}"}, "auto"))
    if t.label_volume:
        base = int(state.setdefault("labels_at_last_run", labels_total))
        if labels_total - base >= t.label_volume and spec.enabled:
            out.append(("labels", {"new_labels": labels_total - base,
                                   "why": f"{labels_total - base} new labels"}, "auto"))
    if not out or _cooling(spec, now, last_auto):
        return [], state  # a label milestone waits out the cooldown; a cron slot is skipped
    if t.label_volume:  # the run reads every label so far: the count starts again
        state["labels_at_last_run"] = labels_total
    return out[:1], state
