"""The one ingest bound on counters, costs, gauges and scores (docs/engine-conventions.md,
"Overflow").

Such values are summed into stored accumulators: two samples of 1.7e308 sum to inf, which
JSON stores as null, so a sum would silently leave the value out. Below this bound a sum
of 2**63 of them stays finite. Refused at ingest naming the field: /resources gauges, LLM
``tokens_in``/``tokens_out``/``latency_ms``/``cost``, feedback scores. Features,
predictions and labels are not bounded (any finite double is data); the metrics handle
them (overflowed sums read as NaN with a reason).
"""

from __future__ import annotations

__all__ = ["MAX_MAGNITUDE"]

MAX_MAGNITUDE = 1e18
