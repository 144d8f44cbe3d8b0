"""Guardrail interventions as window statistics: block, redact and flag rates.

Every chat completion the guardrail handles (docs/guardrails.md) adds one sample of three
0/1 gauges to its event's time bucket: ``llm_guardrail_block``, ``llm_guardrail_redact``,
``llm_guardrail_flag`` (the verdict's action; a pass is 0 in all three). Gauges merge as
``(samples, sum, max)`` like every resource gauge, so over any window the samples count the
guarded calls and the sum the interventions: the ``llm`` metric's
``guardrail_block_rate`` (and ``_redact_``, ``_flag_``) is their ratio, a rule stat like
``unsafe_rate``. They are gauges rather than profiled columns because no reference event
went through the guardrail: a column the reference lacks is not profiled.

>>> samples([{"timestamp": 5.0, "version": "v1", "tags": {"guardrail_action": "block"}},
...          {"timestamp": 6.0, "tags": {"locale": "de"}}])
[{'timestamp': 5.0, 'llm_guardrail_block': 1, 'llm_guardrail_redact': 0, \
'llm_guardrail_flag': 0, 'version': 'v1'}]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["ACTIONS", "GAUGES", "STATS", "samples", "stats"]

ACTIONS = ("block", "redact", "flag")
GAUGES = {a: f"llm_guardrail_{a}" for a in ACTIONS}
#: The ``llm`` metric's guardrail stats.
STATS = (*(f"guardrail_{a}_rate" for a in ACTIONS), "guardrail_calls",
         *(f"guardrail_{a}_count" for a in ACTIONS))


def samples(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One gauge sample per guardrail event (those tagged ``guardrail_action``)."""
    out = []
    for e in events:
        tags = e.get("tags")
        action = tags.get("guardrail_action") if isinstance(tags, Mapping) else None
        if not isinstance(action, str):
            continue
        s: dict[str, Any] = {"timestamp": e.get("timestamp"),
                             **{g: int(a == action) for a, g in GAUGES.items()}}
        if e.get("version") is not None:
            s["version"] = e["version"]
        out.append(s)
    return out


def stats(resources: Mapping[str, tuple[float, float, float]]
          ) -> tuple[dict[str, Any], dict[str, str]]:
    """The guardrail stats of a window's merged gauges, and why those that are None are."""
    out: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    calls = 0
    for a, g in GAUGES.items():
        n, total, _ = resources.get(g, (0.0, 0.0, 0.0))
        calls = max(calls, int(n))
        out[f"guardrail_{a}_count"] = int(total)
        out[f"guardrail_{a}_rate"] = total / n if n else None
        if not n:
            reasons[f"guardrail_{a}_rate"] = ("no call went through the guardrail in this "
                                              "window")
    out["guardrail_calls"] = calls
    return out, reasons
