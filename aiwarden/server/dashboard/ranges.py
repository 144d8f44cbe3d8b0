"""Time ranges of the charts: each range has a step that keeps every chart under ~200
points and lines windows up with the store's rollups (minute, 10 minutes, hour, day),
so a 90-day chart reads 90 day rows, not 129,600 minute buckets."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from aiwarden.errors import ParameterError
from aiwarden.monitoring.windows import parse_instant

__all__ = ["DEFAULT", "RANGES", "Span", "span"]

# name -> (seconds, step of the time series, of the drift heatmap, of performance). The
# heatmap and performance need more rows per window (drift tests and AUCs on 20 rows are
# noise); each wider step is a multiple of the narrower ones.
RANGES: dict[str, tuple[int, int, int, int]] = {
    "1h": (3600, 60, 60, 600),
    "6h": (6 * 3600, 120, 360, 1800),
    "24h": (86400, 600, 1200, 3600),
    "7d": (7 * 86400, 3600, 3 * 3600, 6 * 3600),
    "30d": (30 * 86400, 6 * 3600, 12 * 3600, 86400),
    "90d": (90 * 86400, 86400, 2 * 86400, 4 * 86400),
}
DEFAULT = "6h"


@dataclass(frozen=True)
class Span:
    """``[start, end)`` cut into windows of ``step`` seconds aligned to the step (UTC)."""

    name: str
    start: int
    end: int
    step: int
    heat_step: int
    perf_step: int
    pinned: bool  # the URL named the end: a deep link to a past moment

    def windows(self, step: int | None = None) -> list[tuple[int, int]]:
        """Step-aligned windows; the last one stops at ``end`` (it may be partial)."""
        width = step or self.step
        return [(s, min(s + width, self.end)) for s in range(self.start, self.end, width)]

    @property
    def seconds(self) -> int:
        return self.end - self.start


def span(name: Any, end: Any = None, bucket: int = 60, now: float | None = None) -> Span:
    """The range called ``name`` (default 6 h) ending at ``end`` (default now)."""
    name = name or DEFAULT
    if name not in RANGES:
        raise ParameterError(f"range: expected one of {list(RANGES)}; got {name!r}.", "range")
    seconds, step, heat, perf = RANGES[name]
    pinned = end not in (None, "")
    t1 = parse_instant(end, "end") if pinned else (time.time() if now is None else now)
    stop = int(math.ceil(t1 / bucket) * bucket)  # the current bucket counts, partly filled
    start = (stop - seconds) // perf * perf  # aligned for every step
    return Span(name, start, stop, step, heat, perf, pinned)
