"""The ``llm`` metric: rates and sums of an LLM model's descriptor columns over a window.

Read from the window's merged profiles (the 0/1 descriptor columns' means are the rates),
the feedback gauge and the guardrail's gauges (``guardrail_block_rate``...: llm_guardrail);
a stat whose column is not profiled says why in ``reasons`` (its evaluator was not
available, or no event in the window carried the value).
"""

from __future__ import annotations

from typing import Any

from aiwarden.llm.descriptors import FEEDBACK, SAFETY_CATEGORIES
from aiwarden.monitoring import llm_guardrail
from aiwarden.monitoring.bucket import BucketData

__all__ = ["STATS", "llm"]

#: stat → (column, "mean" | "sum")
_COLUMN_STATS: dict[str, tuple[str, str]] = {
    "unsafe_rate": ("llm_unsafe", "mean"),
    **{f"unsafe_{c}_rate": (f"llm_unsafe_{c}", "mean") for c in SAFETY_CATEGORIES},
    "pii_rate": ("llm_pii", "mean"),
    "secret_rate": ("llm_secret", "mean"),
    "refusal_rate": ("llm_refusal", "mean"),
    "injection_rate": ("llm_injection", "mean"),
    "empty_rate": ("llm_empty", "mean"),
    "truncated_rate": ("llm_truncated", "mean"),
    "groundedness_mean": ("llm_groundedness", "mean"),
    "cost_sum": ("llm_cost", "sum"),
    "cost_mean": ("llm_cost", "mean"),
    "tokens_in_sum": ("llm_tokens_in", "sum"),
    "tokens_out_sum": ("llm_tokens_out", "sum"),
    "tokens_out_mean": ("llm_tokens_out", "mean"),
    "latency_ms_mean": ("llm_latency_ms", "mean"),
    "output_chars_mean": ("llm_output_chars", "mean"),
}
#: Every stat of the metric, the first being the default.
STATS = ("unsafe_rate", *[s for s in _COLUMN_STATS if s != "unsafe_rate"], "feedback_mean",
         "feedback_count", *llm_guardrail.STATS)


def llm(_: Any, d: BucketData) -> dict[str, Any]:
    """Each stat's value (None with a reason when it cannot be read from this window)."""
    out: dict[str, Any] = {"rows": d.rows}
    reasons: dict[str, str] = {}
    cols = {} if d.profile is None else d.profile.columns
    for stat, (col, how) in _COLUMN_STATS.items():
        p = cols.get(col)
        count = 0 if p is None else int(getattr(p, "count", 0))
        if p is None:
            out[stat] = None
            reasons[stat] = ("no event in this window was profiled" if d.rows == 0 or
                             d.profile is None else f"{col} is not in the version's reference "
                             "(its evaluator was not available, or no reference event had a "
                             "value of it: see absent_columns of the reference upload)")
        elif count == 0:
            out[stat] = None
            reasons[stat] = f"no event in this window has a value of {col}"
        else:
            out[stat] = float(p.mean) if how == "mean" else float(p.mean) * count
    n, total, _peak = d.resources.get(FEEDBACK, (0.0, 0.0, 0.0))
    out["feedback_count"] = int(n)
    out["feedback_mean"] = total / n if n else None
    if not n:
        reasons["feedback_mean"] = "no feedback joined to this window's events yet"
    guarded, why = llm_guardrail.stats(d.resources)  # guardrail interventions (gauges)
    out.update(guarded)
    reasons.update(why)
    out["reasons"] = reasons
    return out
