"""Time: parsing instants and durations, and covering a window with the fewest rollups."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import numpy as np

from aiwarden.errors import ParameterError

__all__ = ["MAX_DURATION", "cover", "levels_for", "parse_duration", "parse_instant", "to_iso"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_MAX_EPOCH = 32503680000  # year 3000
# Ten years: longer than any window, hold or lookback means, and far from the overflows
# (datetime, timedelta, int(inf)) that a duration of 1e10 seconds or more runs into.
MAX_DURATION = 10 * 365 * 86400


def levels_for(bucket_seconds: int, widths: tuple[int, ...] = (600, 3600, 86400)
               ) -> tuple[int, ...]:
    """Rollup widths: the bucket, then 10 minutes, hour and day when each is a multiple of
    the previous. The 10-minute level keeps the ragged edges of a window short: a 1-day
    window reads ~50 partials instead of ~120."""
    out = [bucket_seconds]
    for w in widths:
        if w > out[-1] and w % out[-1] == 0:
            out.append(w)
    return tuple(out)


def parse_duration(value: str | float | int, name: str = "step", *,
                   allow_zero: bool = False) -> int:
    """Whole seconds from ``300`` or ``'5m'``; ``allow_zero`` for holds like ``for: 0m``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value != value or abs(value) > MAX_DURATION:  # NaN, inf, 1e300: before int()
            raise ParameterError(f"{name}: must be at most {MAX_DURATION} seconds (10 years), "
                                 f"got {value!r}.", name)
        seconds = int(value)
    else:
        # at most 12 digits: int() of a few thousand digits is slow, of more it raises
        m = re.fullmatch(r"\s*(\d{1,12})\s*([smhdw]?)\s*", str(value))
        if not m:
            if re.fullmatch(r"\s*\d+\s*[smhdw]?\s*", str(value)):
                raise ParameterError(f"{name}: must be at most {MAX_DURATION} seconds "
                                     f"(10 years), got {str(value)[:40]!r}.", name)
            raise ParameterError(f"{name}: expected seconds or a duration like '5m', '1h', '1d'; "
                                 f"got {value!r}.", name)
        seconds = int(m.group(1)) * _UNITS[m.group(2) or "s"]
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ParameterError(f"{name}: must be positive, got {value!r}.", name)
    if seconds > MAX_DURATION:
        raise ParameterError(f"{name}: must be at most {MAX_DURATION} seconds (10 years), "
                             f"got {value!r}.", name)
    return seconds


def parse_instant(value: str | float | int | datetime, name: str = "time") -> float:
    """Epoch seconds from epoch numbers, ISO 8601 strings or datetimes (naive = UTC).

    ``now`` and ``-1h`` / ``now-30m`` (a duration before now) are accepted too, so a
    URL typed by hand can say ``start=-1h``.
    """
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
        return dt.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _plausible(float(value), value, name)
    text = str(value).strip()
    relative = re.fullmatch(r"(?:now)?\s*(?:-\s*(\d+\s*[smhdw]))?", text.lower())
    if text and relative:
        ago = parse_duration(relative.group(1), name) if relative.group(1) else 0
        return time.time() - ago
    if re.fullmatch(r"-?\d+(\.\d+)?([eE][+-]?\d+)?", text):  # not float()'s 1_0, inf, nan
        return _plausible(_epoch(text, value, name), value, name)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ParameterError(f"{name}: expected ISO 8601 or epoch seconds, got {value!r}.",
                             name) from None
    return _plausible((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp(), value, name)


def _epoch(text: str, value: object, name: str) -> float:
    """Epoch seconds typed as text are not negative: ``start=-1`` in a URL is a typo of
    ``-1h``, not 1969 (a number in a JSON body keeps its plain meaning); ``-0`` neither."""
    if text.startswith("-"):
        raise ParameterError(f"{name}: epoch seconds are not negative, got {value!r}; a time "
                             "before now is written '-1h' or 'now-30m'.", name)
    return float(text)


def _plausible(ts: float, value: object, name: str) -> float:
    """Finite and within ±year 3000 (as ingest checks), so windows and ISO output work."""
    if not (np.isfinite(ts) and abs(ts) <= _MAX_EPOCH):
        raise ParameterError(f"{name}: not a plausible time: {value!r}.", name)
    return ts


def to_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def cover(start: int, end: int, levels: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """Ranges ``(level, first_start, last_start_exclusive)`` whose buckets tile [start, end).

    ``start`` and ``end`` must be multiples of the smallest level. Wide aligned
    rollups fill the middle; narrower ones the ragged edges, so 30 days of 1-minute
    buckets are read as ~30 day rows plus a few dozen hours and minutes.
    """
    if end <= start:
        return []
    if len(levels) == 1:
        return [(levels[0], start, end)]
    wide = levels[-1]
    lo = -(-start // wide) * wide
    hi = end // wide * wide
    if lo >= hi:
        return cover(start, end, levels[:-1])
    return [*cover(start, lo, levels[:-1]), (wide, lo, hi), *cover(hi, end, levels[:-1])]
