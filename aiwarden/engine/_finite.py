"""Accumulator floats past float64's range: how they are stored and read back.

A finite but huge input (a diverging regressor predicting 1e200 is a valid double) can
push a sum of squares, a moment or a Chan merge past float64's range. JSON has no inf or
NaN, so such a value is stored as null. The rule (docs/engine-conventions.md,
"Overflow"): accumulating never raises on overflow, a stored null reads back as NaN
("lost to overflow"), and every metric derived from it is NaN with a reason naming the
overflow; never a decoding error.
"""

from __future__ import annotations

from typing import Any

__all__ = ["OVERFLOW", "overflowed", "stored_float"]

#: the reason a metric read from an overflowed accumulator gives
OVERFLOW = ("not computable: {what} overflowed float64 (the window holds values too large "
            "to square or sum, e.g. an error beyond ~1.3e154)")


def stored_float(v: Any) -> float:
    """A stored accumulator float; null (non-finite when written) reads as NaN."""
    return float("nan") if v is None else float(v)


def overflowed(*values: float) -> bool:
    """Whether any accumulated value is inf or NaN (lost to overflow)."""
    return any(v != v or v in (float("inf"), float("-inf")) for v in values)
